"""Hostile installed-package records (issue 12): Portage is never asked to read a FIFO or an endless file.

kcheck asks Portage about the installed packages of a root (the aufs checks,
the emerge hook). Portage opens a record's files by name and reads them whole:
a FIFO among them blocks it forever, a link to ``/dev/zero`` fills memory.
kcheck looks at the record first; a file that is not a regular file makes the
installed packages unknown, with the file named (the documented fallback: the
aufs checks then say "installed packages unknown"). Each case runs in its own
process with a time limit and a memory limit, so that a regression fails the
test instead of stalling the suite or the machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap

import pytest
from gentoo_root import T0

AUFS3 = "sys-fs/aufs3-3_p20160219"
SOURCES = "sys-kernel/gentoo-sources-6.1.67"

PROBE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from kcheck.portage.facts import portage_facts
    facts = portage_facts(Path(sys.argv[1]))
    found = [p.cpv for p in facts.installed("*/*")]
    owners = [p.cpv for p in facts.owners(["/lib/modules/x/misc/aufs.ko"])]
    print(json.dumps({"installed": found, "owners": owners, "reason": facts.reason}))
""")


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def ask_portage(root) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, timeout=60,
                          preexec_fn=_limits)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def _fifo(path):
    path.unlink()
    os.mkfifo(path)


def _dev_zero(path):
    path.unlink()
    path.symlink_to("/dev/zero")


@pytest.mark.parametrize("make", [_fifo, _dev_zero], ids=["fifo", "dev-zero"])
@pytest.mark.parametrize("name", ["CONTENTS", "COUNTER"])
def test_a_record_file_that_never_ends_makes_the_packages_unknown(situation, make, name):
    situation.merge(SOURCES, 5, T0)
    situation.merge(AUFS3, 10, T0, files=("/lib/modules/x/misc/aufs.ko",))
    assert ask_portage(situation.root) == {"installed": [SOURCES, AUFS3], "owners": [AUFS3], "reason": None}
    bad = situation.root / "var/db/pkg" / AUFS3 / name
    make(bad)
    answer = ask_portage(situation.root)
    assert answer["reason"] and str(bad) in answer["reason"] and "installed packages unknown" in answer["reason"]
    assert answer["owners"] == []  # unknown, never a wrong "nobody owns it"

