"""Throughput of ``kcheck lint`` on a corpus of real-sized configurations, beside docker's check-config.sh.

The corpus is generated from the real Debian configurations in
``fixtures/kconfigs/`` (deterministic seed): each file is a Debian config with
a few dozen symbols varied (turned off, on, to modules, or dropped), and one
in ten loses a symbol docker needs, so the corpus holds passing and failing
configurations as a real fleet repository would.

Measured, as whole commands (interpreter start included), ``--runs`` runs of
each variant interleaved (best and median wall, median CPU):

- plain mode, one worker and one per CPU (the default);
- Kconfig mode (one parsed tree reused for every file; one process, and
  workers forked after the parse) when
  ``kcheck.kconfig`` is importable and a kernel tree is available
  (``--kernel-dir``, else Debian's linux-source-6.1 in the test suite's cache
  ``$KCHECK_TEST_CACHE/linux-source-6.1``); only the 6.1-based files are
  used, as they match that tree;
- the reference, docker's ``contrib/check-config.sh`` (from Debian's docker.io
  package), run once per file on a sample, as it checks one config per run.

Usage: ``.venv/bin/python bench/lint_bench.py [--count 500] [--kernel-dir DIR]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "kconfigs"
CHECK_CONFIG = Path(os.environ.get("CHECK_CONFIG_SH", "/work/cache/check-config.sh"))
#: docker needs these; dropping one makes a failing configuration.
DOCKER_SYMBOLS = ("OVERLAY_FS", "VETH", "BRIDGE", "NF_NAT", "MEMCG", "CGROUP_DEVICE", "IP_NF_FILTER")
TARGETS = {"plain": 50.0, "kconfig": 40.0}  # Kconfig mode: issue 15 (was 5)


def vary(lines: list[str], rng: random.Random, changes: int) -> list[str]:
    """A copy of a config's lines with ``changes`` symbol lines varied, as a fleet's edits would."""
    out = list(lines)
    symbol_lines = [i for i, line in enumerate(out) if line.startswith("CONFIG_") or line.endswith(" is not set")]
    for index in rng.sample(symbol_lines, min(changes, len(symbol_lines))):
        line = out[index]
        name = line[len("# CONFIG_"):-len(" is not set")] if line.startswith("#") else line.split("=", 1)[0][len("CONFIG_"):]
        value = line.split("=", 1)[1] if "=" in line else "n"
        if value not in ("y", "m", "n"):
            continue  # strings and numbers are kept: a bool flip is what fleets change
        choice = rng.choice([v for v in ("y", "m", "n", "drop") if v != value])
        out[index] = "" if choice == "drop" else (f"# CONFIG_{name} is not set" if choice == "n" else f"CONFIG_{name}={choice}")
    if rng.random() < 0.1:
        victim = rng.choice(DOCKER_SYMBOLS)
        out = [f"# CONFIG_{victim} is not set" if line.startswith(f"CONFIG_{victim}=") else line for line in out]
    return [line for line in out if line]


def make_corpus(directory: Path, count: int, seed: int) -> list[Path]:
    """Write ``count`` varied Debian configurations into ``directory``; returns their paths."""
    rng = random.Random(seed)
    bases = sorted(FIXTURES.glob("debian-*.config"))
    texts = {base: base.read_text().splitlines() for base in bases}
    paths = []
    for number in range(count):
        base = bases[number % len(bases)]
        path = directory / f"{number:04d}-{base.stem.removeprefix('debian-')}.config"
        path.write_text("\n".join(vary(texts[base], rng, rng.randint(10, 80))) + "\n")
        paths.append(path)
    return paths


def run_once(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system, workers included) and exit status of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, code, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(code)


def compare(variants: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float, float, int]]:
    """Run the variants interleaved ``runs`` times: label -> (best wall, median wall, median CPU, status).

    Interleaving gives every variant the same share of whatever else the
    machine is doing; the best wall is what the machine can do, the median
    what a run met. CPU time does not grow when other processes compete for
    the cores, so it shows kcheck's own cost even on a busy machine.
    """
    samples: dict[str, list[tuple[float, float, int]]] = {label: [] for label in variants}
    for _ in range(runs):
        for label, argv in variants.items():
            samples[label].append(run_once(argv))
    return {
        label: (
            min(wall for wall, _, _ in runs_),
            statistics.median(wall for wall, _, _ in runs_),
            statistics.median(cpu for _, cpu, _ in runs_),
            runs_[-1][2],
        )
        for label, runs_ in samples.items()
    }


def reference(paths: list[Path], sample: int) -> tuple[int, float, float] | None:
    """check-config.sh run once per file over a sample: (files, wall s, CPU s)."""
    if not CHECK_CONFIG.is_file() or shutil.which("bash") is None:
        return None
    chosen = paths[:: max(1, len(paths) // sample)][:sample]
    wall = cpu = 0.0
    for path in chosen:
        one_wall, one_cpu, _ = run_once(["bash", str(CHECK_CONFIG), str(path)])
        wall, cpu = wall + one_wall, cpu + one_cpu
    return len(chosen), wall, cpu


def kernel_tree(given: Path | None) -> Path | None:
    """The tree for Kconfig mode, or None when it (or kcheck.kconfig) is not there."""
    if importlib.util.find_spec("kcheck.kconfig") is None:
        return None
    if given is not None:
        return given
    cache = Path(os.environ.get("KCHECK_TEST_CACHE", REPO / ".cache" / "tests"))
    tree = cache / "linux-source-6.1"
    return tree if (tree / "Kconfig").is_file() else None


def main() -> int:
    """Generate the corpus, measure, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="configurations in the corpus")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs per variant")
    parser.add_argument("--reference-sample", type=int, default=10, help="files check-config.sh is run on")
    parser.add_argument("--kernel-dir", type=Path, help="kernel tree for Kconfig mode")
    parser.add_argument("--kconfig-count", type=int, default=100, help="6.1-based files checked in Kconfig mode")
    args = parser.parse_args()

    kcheck = [sys.executable, "-m", "kcheck", "lint", "--driver", "overlay2", "--format", "json"]
    rows: list[tuple[str, int, float, float, float, str]] = []  # what, files, best, median wall, CPU, note
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="kcheck-lint-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        paths = make_corpus(corpus, args.count, args.seed)
        size = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        cpus = os.cpu_count() or 1
        plain = {f"kcheck lint, plain, --jobs {jobs}": [*kcheck, "--jobs", str(jobs), str(corpus)] for jobs in (1, cpus)}
        for label, (best, median, cpu, status) in compare(plain, args.runs).items():
            how = "one process" if label.endswith(" 1") else "one worker per CPU (the default)"
            rows.append((label, len(paths), best, median, cpu, f"exit {status}; {how}"))
        tree = kernel_tree(args.kernel_dir)
        if tree is not None:
            subset = [p for p in paths if "-6.1-" in p.name][: args.kconfig_count]
            listed = Path(tmp) / "kconfig-subset"
            listed.mkdir()
            for path in subset:
                os.symlink(path, listed / path.name)
            kconfig = {
                f"kcheck lint, Kconfig ({tree.name}), --jobs {jobs}": [*kcheck, "--jobs", str(jobs), "--kernel-dir", str(tree), str(listed)]
                for jobs in (1, cpus)
            }
            for label, (best, median, cpu, status) in compare(kconfig, args.runs).items():
                how = "one process" if label.endswith(" 1") else f"{cpus} workers forked after the parse (the default)"
                rows.append((label, len(subset), best, median, cpu, f"exit {status}; tree parsed once; {how}"))
        else:
            rows.append(("kcheck lint, Kconfig mode", 0, 0.0, 0.0, 0.0, "not measured: kcheck.kconfig or a kernel tree is missing"))
        measured = reference(paths, args.reference_sample)
        if measured is not None:
            sampled, wall, cpu = measured
            rows.append(("docker check-config.sh (reference)", sampled, wall, wall, cpu, "one run per file"))

    print(f"lint throughput: {len(paths)} configs of {size:.0f} KiB on average; {date.today()}, "
          f"{platform.machine()}, {cpus} cores, Python {platform.python_version()}; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; {args.runs} interleaved runs")
    print()
    print("| what | configs | best wall | median wall | configs/s (best) | CPU | configs per CPU-s | note |")
    print("|---|---|---|---|---|---|---|---|")
    for what, count, best, median, cpu, note in rows:
        if not count:
            print(f"| {what} | - | - | - | - | - | - | {note} |")
            continue
        mode = "kconfig" if "Kconfig" in what else "plain"
        if "check-config" not in what:
            note += f"; target >= {TARGETS[mode]:.0f}/s {'met' if count / best >= TARGETS[mode] else 'NOT met'}"
        print(f"| {what} | {count} | {best:.2f} s | {median:.2f} s | {count / best:.1f} | {cpu:.2f} s | {count / cpu:.1f} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
