"""Throughput of ``kcheck lint`` on a corpus of real-sized configurations, beside docker's check-config.sh.

The corpus is generated from the real Debian configurations in
``fixtures/kconfigs/`` (deterministic seed): each file is a Debian config with
a few dozen symbols varied (turned off, on, to modules, or dropped), and one
in ten loses a symbol docker needs, so the corpus holds passing and failing
configurations as a real fleet repository would.

Measured, as whole commands (interpreter start included), median of
``--runs`` runs:

- plain mode, one worker and one per CPU;
- Kconfig mode (one parsed tree reused for every file) when
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
TARGETS = {"plain": 50.0, "kconfig": 5.0}


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


def timed(argv: list[str], runs: int, cwd: Path | None = None) -> tuple[float, int]:
    """Median wall seconds of ``argv`` over ``runs`` runs, and its exit status."""
    walls, status = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        status = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd).returncode
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), status


def reference_rate(paths: list[Path], sample: int) -> tuple[float, int] | None:
    """configs/s of check-config.sh, one run per file over a sample of the corpus."""
    if not CHECK_CONFIG.is_file() or shutil.which("bash") is None:
        return None
    chosen = paths[:: max(1, len(paths) // sample)][:sample]
    start = time.perf_counter()
    for path in chosen:
        subprocess.run(["bash", str(CHECK_CONFIG), str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return len(chosen) / (time.perf_counter() - start), len(chosen)


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
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--reference-sample", type=int, default=10, help="files check-config.sh is run on")
    parser.add_argument("--kernel-dir", type=Path, help="kernel tree for Kconfig mode")
    parser.add_argument("--kconfig-count", type=int, default=100, help="6.1-based files checked in Kconfig mode")
    args = parser.parse_args()

    kcheck = [sys.executable, "-m", "kcheck", "lint", "--driver", "overlay2", "--format", "json"]
    rows: list[tuple[str, int, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="kcheck-lint-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        paths = make_corpus(corpus, args.count, args.seed)
        size = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        cpus = os.cpu_count() or 1
        for jobs in (1, cpus):
            wall, status = timed([*kcheck, "--jobs", str(jobs), str(corpus)], args.runs)
            target = TARGETS["plain"]
            rows.append((f"kcheck lint, plain, --jobs {jobs}", len(paths), wall, len(paths) / wall,
                         f"exit {status}; target >= {target:.0f}/s: {'met' if len(paths) / wall >= target else 'NOT met'}"))
        tree = kernel_tree(args.kernel_dir)
        if tree is not None:
            subset = [p for p in paths if "-6.1-" in p.name][: args.kconfig_count]
            listed = Path(tmp) / "kconfig-subset"
            listed.mkdir()
            for path in subset:
                os.symlink(path, listed / path.name)
            for jobs in (1, cpus):
                wall, status = timed([*kcheck, "--jobs", str(jobs), "--kernel-dir", str(tree), str(listed)], 1)
                target = TARGETS["kconfig"]
                rows.append((f"kcheck lint, Kconfig ({tree.name}), --jobs {jobs}", len(subset), wall, len(subset) / wall,
                             f"exit {status}; tree parsed once; target >= {target:.0f}/s: "
                             f"{'met' if len(subset) / wall >= target else 'NOT met'}"))
        else:
            rows.append(("kcheck lint, Kconfig mode", 0, 0.0, 0.0, "not measured: kcheck.kconfig or a kernel tree is missing"))
        reference = reference_rate(paths, args.reference_sample)
        if reference is not None:
            rate, sampled = reference
            rows.append(("docker check-config.sh (reference)", sampled, sampled / rate, rate, "one run per file"))

    print(f"lint throughput: {len(paths)} configs of {size:.0f} KiB on average; "
          f"{date.today()}, {platform.machine()}, {cpus} cores, Python {platform.python_version()}")
    print()
    print("| what | configs | wall | configs/s | note |")
    print("|---|---|---|---|---|")
    for what, count, wall, rate, note in rows:
        shown = f"{wall:.2f} s" if count else "-"
        print(f"| {what} | {count or '-'} | {shown} | {rate:.1f} | {note} |" if count else f"| {what} | - | - | - | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
