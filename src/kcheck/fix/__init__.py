"""``kcheck fix``: the fewest Kconfig changes that make a driver's requirements hold.

- :mod:`kcheck.fix.encode`: Kconfig's value rules as SAT clauses over a dependency cone.
- :mod:`kcheck.fix.plan`: solve (MaxSAT), replay through kconfiglib, verify with the engine.
- :mod:`kcheck.fix.render`: the plan as text, JSON, ``scripts/config`` commands or a fragment.
- :mod:`kcheck.fix.cli`: the command line.

The design and its limits are in ``docs/fix-design.md``.
"""
