"""Plain check of real configs vs the interpreter's floor and docker's check-config.sh.

Run: .venv/bin/python bench/plain_bench.py [--runs N]
Prints a Markdown table; targets (issue 8): <= 2.5x `python3 -c 'import click'` wall, <= 30 MiB RSS.
check-config.sh comes from Debian's docker.io package (cached by the test suite under
$KCHECK_TEST_CACHE or .cache/tests); it is skipped when that is not there.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from common import machine, measure, table

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [REPO / "fixtures/kconfigs/debian-6.1-amd64_none_amd64.config",
           REPO / "fixtures/kconfigs/debian-6.12-amd64_none_amd64.config"]


def check_config_sh() -> Path | None:
    cache = Path(os.environ.get("KCHECK_TEST_CACHE") or REPO / ".cache/tests")
    debs = sorted((cache / "debs").glob("docker.io_*.deb"))
    if not debs:
        return None
    out = cache / "docker-io-extracted"
    if not out.exists():
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(out)], check=True)
    return next(out.rglob("check-config.sh"), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    py = sys.executable
    kcheck = str(Path(py).with_name("kcheck"))
    env = {**os.environ, "NO_COLOR": "1"}
    floor = measure([py, "-c", "pass"], args.runs)
    click = measure([py, "-c", "import click"], args.runs)
    rows = [("python3 -c pass", *floor, "interpreter floor"), ("python3 -c 'import click'", *click, "reference")]
    for config in CONFIGS:
        wall, mem = measure([kcheck, "--driver", "overlay2", "--config", str(config)], args.runs, env)
        rows.append((f"kcheck -d overlay2 ({config.stem})", wall, mem, f"{wall / click[0]:.2f}x click start"))
    script = check_config_sh()
    if script:
        wall, mem = measure(["bash", str(script), str(CONFIGS[0])], max(3, args.runs // 3), env)
        rows.append(("docker check-config.sh (6.1)", wall, mem, f"kcheck is {wall / rows[2][1]:.1f}x faster"))
    print(f"Plain check, {machine()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
