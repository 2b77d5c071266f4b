#!/usr/bin/env python3
"""Kconfig engine speed: kcheck's Kconfig-aware read vs the kernel's ``make olddefconfig``.

For each Debian tree (6.1, 6.12; downloaded and cached like the test suite,
see ``tests/realkernel.py``) and Debian's amd64 config, it times, as whole
processes (interpreter start and imports included):

- ``make olddefconfig``: the kernel's own ``make -s O=<dir> ARCH=x86_64
  olddefconfig``, with ``conf`` already built in ``<dir>`` (the reference);
- kcheck cold: ``KconfigTree.load`` + ``read`` + ``state`` of the docker
  storage symbols, with an empty per-user cache (a full parse);
- kcheck warm: the same with the cache primed (the symbols' Kconfig cones are rebuilt
  from the data cache; kcheck writes the entry itself before the cold run exits);
- kcheck warm CLI: the whole command a user runs, ``kcheck -d overlay2 -k <tree> -c <config>
  --no-host``, warm: docker's and overlay2's ~90 symbols, so a far larger Kconfig cone
  (about 3,900 of 6.1's 17,400 items) than the five storage symbols above (about 300).

It prints medians over ``--runs`` runs and the peak RSS of each process.
Usage: ``python bench/kconfig_bench.py [--runs 5] [--series 6.1 6.12]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import realkernel  # noqa: E402

CHECK = """
import sys
from pathlib import Path
from kcheck.kconfig import KconfigTree
tree = KconfigTree.load(Path(sys.argv[1]), arch="x86_64")
source = tree.read(Path(sys.argv[2]))
for name in ("OVERLAY_FS", "BTRFS_FS", "BLK_DEV_DM", "DM_THIN_PROVISIONING", "AUFS_FS"):
    source.state(name)
assert tree.from_cache == (sys.argv[3] == "warm"), tree.from_cache
"""


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, int]:
    """Run ``argv``; return (wall seconds, peak RSS in MiB of it and its waited-for children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in ok:
        raise SystemExit(f"{argv[:3]} failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    proc.returncode = 0
    return elapsed, usage.ru_maxrss // 1024


def entry_written(cache_dir: Path) -> None:
    """Check the cold run left its cache entry: kcheck writes it before it exits, no process outlives it."""
    if not list(cache_dir.glob("kconfig-*.kcc")):
        raise SystemExit(f"no cache entry in {cache_dir} after the cold run")


def bench_series(series: str, runs: int) -> dict:
    tree = realkernel.source_tree(series)
    config = realkernel.debian_configs(series)["amd64_none_amd64"]
    env = realkernel.oracle_env()
    build = Path(tempfile.mkdtemp(prefix="kcheck-bench-build-"))
    realkernel.make_config(tree, "olddefconfig", config, outdir=build)  # builds conf once
    make_argv = ["make", "-s", "-C", str(tree), f"O={build}", "ARCH=x86_64", "olddefconfig"]

    results: dict[str, list[tuple[float, int]]] = {"make": [], "cold": [], "warm": [], "cli": []}
    kcheck = str(Path(sys.executable).with_name("kcheck"))
    cli = [kcheck, "-d", "overlay2", "-k", str(tree), "-c", str(config), "--no-host", "--format", "json"]
    for _ in range(runs):
        shutil.copyfile(config, build / ".config")
        results["make"].append(timed(make_argv, env))

        xdg = Path(tempfile.mkdtemp(prefix="kcheck-bench-xdg-"))
        run_env = dict(env, XDG_CACHE_HOME=str(xdg))
        check = [sys.executable, "-c", CHECK, str(tree), str(config)]
        results["cold"].append(timed([*check, "cold"], run_env))
        entry_written(xdg / "kcheck")
        results["warm"].append(timed([*check, "warm"], run_env))
        subprocess.run(cli, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # its own entry (ARCH=x86)
        results["cli"].append(timed(cli, run_env, ok=(0, 1)))
        shutil.rmtree(xdg)
    shutil.rmtree(build)
    return {
        kind: (statistics.median(t for t, _ in values), max(r for _, r in values))
        for kind, values in results.items()
    }


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (or the machine type)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--series", nargs="+", default=list(realkernel.SERIES))
    args = parser.parse_args()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs ({cpu_model()}), "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M %Z')}, "
          f"median of {args.runs} runs, load average {os.getloadavg()[0]:.1f} at start")
    print("| tree | make olddefconfig | kcheck cold | cold/make | kcheck warm | warm/make "
          "| warm CLI (docker + overlay2) | CLI/make | peak RSS make / cold / warm / warm CLI |")
    print("|---|---|---|---|---|---|---|---|---|")
    for series in args.series:
        r = bench_series(series, args.runs)
        make_t, cold_t, warm_t, cli_t = r["make"][0], r["cold"][0], r["warm"][0], r["cli"][0]
        print(f"| Debian {series} amd64 | {make_t:.2f} s | {cold_t:.2f} s | {cold_t / make_t:.2f}x "
              f"| {warm_t:.2f} s | {warm_t / make_t:.2f}x | {cli_t:.2f} s | {cli_t / make_t:.2f}x "
              f"| {r['make'][1]} / {r['cold'][1]} / {r['warm'][1]} / {r['cli'][1]} MiB |", flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end (other work on the machine skews wall times)")


if __name__ == "__main__":
    main()
