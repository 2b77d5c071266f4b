"""Kconfig-aware reading of a kernel configuration, agreeing with the kernel's own ``conf``.

- :mod:`kcheck.kconfig.compat`: the compatibility layer that lets the frozen
  kconfiglib 14.1.0 parse current Linux (``modules``, ``transitional``,
  ``depends on X if Y``) and evaluate with Linux 6.x's rules.
- :mod:`kcheck.kconfig.env`: the environment the kernel Makefile gives Kconfig.
- :mod:`kcheck.kconfig.cache`: the per-user cache of parsed trees.
- :mod:`kcheck.kconfig.tree`: :class:`KconfigTree`, what the rest of kcheck calls.
- :mod:`kcheck.kconfig.why`: why a symbol has its value (notes, ``kcheck explain``).
"""

from kcheck.kconfig.tree import KconfigSource, KconfigTree

__all__ = ["KconfigSource", "KconfigTree"]
