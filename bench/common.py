"""Shared timing helpers for the bench scripts: medians of wall time and peak RSS of whole commands."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Sequence
from datetime import date


def measure(argv: Sequence[str], runs: int = 7, env: dict[str, str] | None = None, cwd=None) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MiB) of ``argv`` over ``runs`` runs (after one warm-up)."""
    walls, rss = [], []
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
        _, _, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        rss.append(usage.ru_maxrss / 1024)
    return statistics.median(walls), statistics.median(rss)


def machine() -> str:
    """One line naming the machine and the date, for RESULTS.md."""
    return f"{date.today()} on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(rows: list[tuple[str, float, float, str]]) -> str:
    """A Markdown table of (what, wall s, peak RSS MiB, note) rows."""
    out = ["| what | median wall | peak RSS | note |", "|---|---|---|---|"]
    out += [f"| {what} | {wall:.3f} s | {mem:.0f} MiB | {note} |" for what, wall, mem, note in rows]
    return "\n".join(out)


