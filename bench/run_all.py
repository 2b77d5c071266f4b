"""Run every benchmark with modest run counts and print one table against the targets (issues 8 and 15).

Run: ``KCHECK_TEST_CACHE=... .venv/bin/python bench/run_all.py [--runs N]``

Each row is measured side by side with its reference in this one run, by the
functions of the individual bench scripts (``plain_bench``, ``kconfig_bench``,
``fix_bench``'s cases, ``lint_bench``, ``hook_bench.sh``); run those for the
detailed tables. The real trees come from the test suite's cache.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests"), str(REPO / "tests" / "fix")]

# Only the lean helpers at the top: a child's peak RSS counts the parent it was forked from,
# so the plain-check figures are taken before the heavier bench modules are imported.
from common import machine, measure  # noqa: E402

PY = sys.executable
KCHECK = str(Path(PY).with_name("kcheck"))


def row(what: str, kcheck: str, reference: str, ratio: str, target: str, met: bool | None) -> tuple:
    """One line of the summary (``met`` None: informative, no target)."""
    return what, kcheck, reference, ratio, target, {True: "yes", False: "**no**", None: "-"}[met]


def plain(runs: int) -> list[tuple]:
    """Plain check of a real config vs ``python3 -c 'import click'``: wall and peak RSS."""
    config = REPO / "fixtures/kconfigs/debian-6.1-amd64_none_amd64.config"
    click_wall, click_rss = measure([PY, "-c", "import click"], runs)
    wall, rss = measure([KCHECK, "-d", "overlay2", "-c", str(config)], runs, {**os.environ, "NO_COLOR": "1"})
    return [
        row("plain check (Debian 6.1 config), wall", f"{wall:.3f} s", f"{click_wall:.3f} s (import click)",
            f"{wall / click_wall:.2f}x", "<= 2.5x", wall / click_wall <= 2.5),
        row("plain check, peak RSS", f"{rss:.0f} MiB", f"{click_rss:.0f} MiB (import click)", "-", "<= 30 MiB", rss <= 30),
    ]


def kconfig(runs: int, series: str) -> tuple[list[tuple], float]:
    """Kconfig-aware check cold and warm vs ``make olddefconfig`` on the same real tree."""
    import kconfig_bench

    r = kconfig_bench.bench_series(series, runs)
    make_t, make_rss = r["make"]
    cold_t, cold_rss = r["cold"]
    warm_t, warm_rss = r["warm"]
    ref = f"{make_t:.2f} s (make olddefconfig)"
    rows = [
        row(f"Kconfig-aware check, cold (Linux {series})", f"{cold_t:.2f} s", ref, f"{cold_t / make_t:.2f}x",
            "<= 1.0x", cold_t <= make_t),
        row(f"Kconfig-aware check, cold, peak RSS (Linux {series})", f"{cold_rss} MiB", f"{make_rss} MiB", "-",
            "<= 150 MiB", cold_rss <= 150),
        row(f"Kconfig-aware check, warm (Linux {series})", f"{warm_t:.2f} s", ref, f"{warm_t / make_t:.2f}x",
            "<= 0.2x", warm_t <= 0.2 * make_t),
        row(f"Kconfig-aware check, warm, peak RSS (Linux {series})", f"{warm_rss} MiB", f"{make_rss} MiB", "-",
            "<= 100 MiB", warm_rss <= 100),
        row(f"kcheck -d overlay2 -k -c --no-host, warm: the whole command (Linux {series})", f"{r['cli'][0]:.2f} s",
            ref, f"{r['cli'][0] / make_t:.2f}x", "<= 0.2x", r["cli"][0] <= 0.2 * make_t),
    ]
    return rows, make_t


def fix(runs: int, series: str) -> list[tuple]:
    """``kcheck fix`` per driver (Debian's config with the driver's symbols off, warm cache) vs ``make olddefconfig``."""
    import realkernel
    from fix_bench import timed
    from test_fix_realtree import CASES, turned_off

    tree = realkernel.source_tree(series)
    base = realkernel.debian_configs(series)["amd64_none_amd64"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kcheck-run-all-fix-") as tmp:
        outdir = Path(tmp) / "oracle"
        outdir.mkdir()
        make = ["make", "-s", "-C", str(tree), f"O={outdir}", "ARCH=x86_64", "olddefconfig"]
        for profile in sorted(CASES):
            config = turned_off(base, CASES[profile], Path(tmp) / f"{profile}.config")
            driver = "overlay2" if profile == "docker" else profile
            cmd = [KCHECK, "fix", "-d", driver, "-k", str(tree), "-c", str(config), "--format", "json"]
            subprocess.run(cmd, capture_output=True)  # warm the parse cache
            fix_times, make_times = [], []
            for _ in range(runs):
                fix_times.append(timed(cmd)[0])
                shutil.copyfile(config, outdir / ".config")
                make_times.append(timed(make, env=realkernel.oracle_env())[0])
            f, m = statistics.median(fix_times), statistics.median(make_times)
            rows.append(row(f"kcheck fix -d {driver} (Linux {series}{', docker symbols off' if profile == 'docker' else ''})",
                            f"{f:.2f} s", f"{m:.2f} s (make olddefconfig)", f"{f / m:.2f}x", "<= 2x", f <= 2 * m))
    return rows


def lint(runs: int, count: int, kconfig_count: int) -> list[tuple]:
    """``kcheck lint`` throughput, plain and Kconfig mode, default jobs, vs check-config.sh per file."""
    import lint_bench

    rows = []
    with tempfile.TemporaryDirectory(prefix="kcheck-run-all-lint-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        paths = lint_bench.make_corpus(corpus, count, 20261127)
        sampled = lint_bench.reference(paths, 3)
        ref = f"{sampled[0] / sampled[1]:.1f} configs/s (check-config.sh)" if sampled else "-"
        base = [KCHECK, "lint", "--driver", "overlay2", "--format", "json"]
        variants = {"plain": [*base, str(corpus)]}
        tree = lint_bench.kernel_tree(None)
        if tree is not None:
            subset = Path(tmp) / "subset"
            subset.mkdir()
            chosen = [p for p in paths if "-6.1-" in p.name][:kconfig_count]
            for path in chosen:
                os.symlink(path, subset / path.name)
            variants["Kconfig"] = [*base, "--kernel-dir", str(tree), str(subset)]
        results = lint_bench.compare(variants, runs)
        for mode, (_, median, _, _) in results.items():
            files = count if mode == "plain" else kconfig_count
            target = 50 if mode == "plain" else 40
            rate = files / median
            rows.append(row(f"kcheck lint, {mode} mode ({files} configs, default --jobs)", f"{rate:.1f} configs/s", ref,
                            f"{rate / (sampled[0] / sampled[1]):.0f}x" if sampled else "-", f">= {target} configs/s",
                            rate >= target))
    return rows


def hook(calls: int) -> list[tuple]:
    """The emerge hook for an unrelated package: µs per call of both phases, and processes started."""
    env = {**os.environ, "PATH": f"{Path(PY).parent}:{os.environ['PATH']}", "RELATED_N": "2"}
    out = subprocess.run(["bash", str(BENCH / "hook_bench.sh"), str(calls)], capture_output=True, text=True,
                         env=env, check=True).stdout
    section = out.split("== Portage hook: unrelated package", 1)[1].split("==", 1)[0]
    hooks = re.search(r"pre_pkg_setup \+ post_pkg_postinst\s+\d+ calls\s+([\d.]+) us/call.*?([\d.]+) s child CPU", section)
    true = re.search(r"/bin/true.*?([\d.]+) us/call", section)
    per_call, child_cpu = float(hooks.group(1)), float(hooks.group(2))
    related = re.search(r"== Portage hook: related package.*\n.*?([\d.]+) us/call", out)
    rows = [row("portage hook, unrelated package (both phases)", f"{per_call / 1000:.3f} ms, child CPU {child_cpu:.3f} s",
                f"{float(true.group(1)) / 1000:.2f} ms (one /bin/true)", "-", "< 2 ms, no process",
                per_call < 2000 and child_cpu == 0.0)]
    if related:
        rows.append(row("portage hook, related package (sys-fs/aufs3: kcheck runs twice)",
                        f"{float(related.group(1)) / 1e6:.2f} s", "-", "-", "-", None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (medians)")
    parser.add_argument("--series", nargs="+", default=["6.1", "7.3"],
                        help="the real trees for the Kconfig rows (the first one also for the fix rows)")
    parser.add_argument("--lint-count", type=int, default=200)
    parser.add_argument("--hook-calls", type=int, default=5000)
    args = parser.parse_args()
    # Users' kcheck starts from cached bytecode; without it every start compiles the sources (+20 ms).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.time()
    load = os.getloadavg()[0]
    rows = plain(max(5, args.runs))
    for series in args.series:
        rows += kconfig(args.runs, series)[0]
    rows += fix(args.runs, args.series[0])
    rows += lint(args.runs, args.lint_count, 50)
    rows += hook(args.hook_calls)
    print(f"{machine()}; medians of {args.runs} runs (plain: {max(5, args.runs)}); "
          f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at the end; {time.time() - started:.0f} s in all")
    print()
    print("| what | kcheck median | reference median | ratio | target | met? |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
