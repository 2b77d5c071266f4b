"""16 hook runs at once on one root (emerge --jobs 16): the state stays consistent, each warning comes once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gentoo_root import HOUR, T0

KCHECK = str(Path(sys.executable).with_name("kcheck"))
AUFS3 = "sys-fs/aufs3-3_p20160219"
#: Packages the hook keeps a snapshot for: the aufs modules and kernel sources (distinct, as emerge never merges one twice at once).
PACKAGES = ["sys-fs/aufs3", "sys-fs/aufs4"] + [
    f"sys-kernel/{name}-sources"
    for name in ("gentoo", "vanilla", "aufs", "git", "zen", "pf", "xanmod", "rt", "ck", "mips", "raspberrypi",
                 "hardened", "ali", "liquorix")
]


def start(root: Path, phase: str, cp: str) -> subprocess.Popen:
    category, pn = cp.split("/")
    argv = [KCHECK, "portage-hook", "run", "--phase", phase, "--category", category, "--pn", pn, "--root", str(root)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_all_at_once(root: Path, phase: str) -> dict[str, tuple[list[str], str]]:
    procs = {cp: start(root, phase, cp) for cp in PACKAGES}
    results = {}
    for cp, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results[cp] = (out.splitlines(), err)
    return results


def state_files(root: Path) -> list[str]:
    return sorted(os.listdir(root / "var/lib/kcheck"))


def test_sixteen_parallel_hook_runs(situation):
    assert len(PACKAGES) == 16
    situation.make_tree(T0)
    situation.build(T0 + HOUR)
    situation.merge(AUFS3, 10, T0, use="kernel-patch")
    root = situation.root

    # Phase 1: every package snapshots the tree before its merge, all at once.
    before = run_all_at_once(root, "pre_pkg_setup")
    assert all(out == [] and err == "" for out, err in before.values())
    expected_files = sorted(["lock"] + [f"snapshot-{cp.replace('/', '_')}.json" for cp in PACKAGES])
    assert state_files(root) == expected_files  # no temporary file left
    for name in expected_files[1:]:
        data = json.loads((root / "var/lib/kcheck" / name).read_text())
        assert set(data) == {"evidence"}

    # What the merges do: aufs3's pkg_setup patches the tree.
    situation.patch(T0 + 2 * HOUR)

    # Phase 2: all finish at once; each consumes its own snapshot and reports the change once.
    after = run_all_at_once(root, "post_pkg_postinst")
    assert state_files(root) == ["lock"]
    for cp, (lines, err) in after.items():
        assert err == ""
        patched = f"info this merge patched {situation.tree.resolve()} for aufs ("
        assert sum(line.startswith(patched) for line in lines) == 1, (cp, lines)
        assert len(lines) == len(set(lines)), f"{cp} repeated a message: {lines}"
        assert lines[-1].startswith("error do not reboot yet"), (cp, lines)
    # Every run judged the same tree: the same messages, each once.
    assert len({tuple(lines) for lines, _ in after.values()}) == 1
