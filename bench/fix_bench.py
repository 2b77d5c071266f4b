"""Time ``kcheck fix`` per driver next to the kernel's ``make olddefconfig`` on the same tree.

Usage: ``python bench/fix_bench.py [--series 6.1] [--runs 3] [--starts tinyconfig,defconfig,debian]``

For each starting configuration (tinyconfig, defconfig, Debian's amd64 config
with the driver's symbols off) and each profile it prints the median
wall-clock time of the whole ``kcheck fix`` command (dry run, warm parse
cache and conf already built, so what a user sees on the second run; this
includes the verification by the kernel's own conf: ``make olddefconfig`` of
the unchanged file, overlapped with the plan, and of the edited file), of
``make olddefconfig`` on the same input, their ratio (target: <= 2x), the plan
size and who verified the plan. The one-time build of conf is timed too. The
tree comes from the test suite's cache (``$KCHECK_TEST_CACHE``).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "fix"))

import realkernel  # noqa: E402
from test_fix_realtree import CASES, turned_off  # noqa: E402


def timed(cmd, **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - start, proc


def cpu_timed(cmd, **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall-clock and CPU seconds (user + system, the command and every process it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, proc = timed(cmd, **kwargs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="6.1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--starts", default="tinyconfig,defconfig,debian",
                        help="comma-separated starting configurations (tinyconfig, defconfig, debian)")
    args = parser.parse_args()
    chosen = args.starts.split(",")
    tree = realkernel.source_tree(args.series)
    work = Path(tempfile.mkdtemp(prefix="fix-bench-"))
    outdir = work / "oracle"
    starts = {
        "tinyconfig": shutil.copyfile(realkernel.make_config(tree, "tinyconfig", outdir=outdir), work / "tiny.config"),
        "defconfig": shutil.copyfile(realkernel.make_config(tree, "defconfig", outdir=outdir), work / "def.config"),
        "debian": realkernel.debian_configs(args.series)["amd64_none_amd64"],
    }
    kcheck = [sys.executable, "-m", "kcheck", "fix"]
    from kcheck.fix import oracle

    arch = "x86_64"
    seconds, _ = timed([sys.executable, "-c", "import sys; from pathlib import Path; from kcheck.fix import oracle; "
                        "oracle.prepare(Path(sys.argv[1]), sys.argv[2])", str(tree), arch])
    built = (oracle.entry_dir(tree, arch) / "build-0").is_dir()
    print(f"Linux {args.series}: conf ready in {seconds:.2f} s ({'built once' if built else 'not buildable'} in kcheck's cache; "
          "0 s on later runs)")
    print(f"median of {args.runs} runs (seconds); kcheck fix includes the verification by conf")
    print("(wall-clock, and CPU seconds of every process: on a busy machine the CPU ratio is the steadier one)")
    print(f"{'start':<11} {'profile':<15} {'kcheck fix':>10} {'olddefconfig':>12} {'ratio':>6} "
          f"{'fix cpu':>8} {'make cpu':>8} {'ratio':>6} {'changes':>8} {'verified':>9}")
    for start, base in starts.items():
        if start not in chosen:
            continue
        for profile in sorted(CASES):
            config = work / f"{start}-{profile}.config"
            if start == "debian":
                turned_off(base, CASES[profile], config)
            else:
                shutil.copyfile(base, config)
            # kcheck fix always includes docker's base profile; "docker" rows use overlay2, the default driver.
            driver = ["-d", "overlay2"] if profile == "docker" else ["-d", profile]
            cmd = [*kcheck, *driver, "-k", str(tree), "-c", str(config), "--format", "json"]
            subprocess.run(cmd, capture_output=True)  # warm the parse cache
            fix_times, make_times, fix_cpu, make_cpu = [], [], [], []
            for _ in range(args.runs):
                seconds, cpu, proc = cpu_timed(cmd)
                fix_times.append(seconds)
                fix_cpu.append(cpu)
                shutil.copyfile(config, outdir / ".config")
                seconds, cpu, _ = cpu_timed(["make", "-s", "-C", str(tree), f"O={outdir}", "ARCH=x86_64", "olddefconfig"],
                                            env=realkernel.oracle_env())
                make_times.append(seconds)
                make_cpu.append(cpu)
            data = json.loads(proc.stdout) if proc.stdout.strip() else {}
            size = len(data.get("changes", [])) if data else -1
            fix_m, make_m = statistics.median(fix_times), statistics.median(make_times)
            fcpu, mcpu = statistics.median(fix_cpu), statistics.median(make_cpu)
            print(f"{start:<11} {profile:<15} {fix_m:>10.2f} {make_m:>12.2f} {fix_m / make_m:>6.2f} "
                  f"{fcpu:>8.2f} {mcpu:>8.2f} {fcpu / mcpu:>6.2f} {size:>8} {data.get('verified_by', '-'):>9}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
