"""Parsing a tree again in one process does not keep the earlier parses alive.

A parse is hidden from the collector (``gc.freeze``) for speed, and full of
reference cycles; a long ``kcheck lint`` or a test session loads many. Each
load must give back what the previous, dropped ones held.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.realtree

LOADS = """
import sys
from pathlib import Path
from kcheck.kconfig import KconfigTree

def peak_kib():
    # VmHWM belongs to this process image; ru_maxrss would carry the forking parent's peak over.
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))

base = peak_kib()
for _ in range(int(sys.argv[2])):
    tree = KconfigTree.load(Path(sys.argv[1]), arch="x86_64", allow_shell=False, use_cache=False)
    tree.read(Path(sys.argv[3]))
    del tree
print(base, peak_kib())
"""


def peak_growth(tree, config, loads: int) -> int:
    """Peak RSS (KiB) a process gains over its imports by loading ``tree`` ``loads`` times."""
    proc = subprocess.run([sys.executable, "-c", LOADS, str(tree), str(loads), str(config)],
                          capture_output=True, text=True, check=True)
    base, peak = map(int, proc.stdout.split())
    return peak - base


def test_n_loads_cost_what_one_load_costs(linux_6_12, debian_configs_6_12):
    config = debian_configs_6_12["amd64_none_amd64"]
    one = peak_growth(linux_6_12, config, 1)
    three = peak_growth(linux_6_12, config, 3)
    assert one > 20_000  # a real parse was measured (tens of MiB)
    assert three <= 1.2 * one, f"1 load: +{one} KiB, 3 loads: +{three} KiB"
