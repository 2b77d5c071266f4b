"""The progress line of long steps: on a terminal only, once per tree, never with --quiet.

kcheck runs as a real process whose stderr is a pseudo-terminal (what a user
at a shell has) or a pipe (what a script, CI or emerge has). The step is the
cold parse of a Kconfig tree; a small synthetic tree makes it quick, the line
is the same as on Linux's.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kcheck import progress

KCHECK = str(Path(sys.executable).with_name("kcheck"))
LINE = "kcheck: reading the Kconfig files of Linux 6.12.0 in "


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "linux"
    root.mkdir()
    (root / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (root / "Kconfig").write_text(textwrap.dedent("""\
        config MODULES
        	bool "modules"
        	modules
        config OVERLAY_FS
        	tristate "overlay"
        """))
    (root / "arch" / "x86").mkdir(parents=True)
    (root / ".config").write_text("# Linux/x86 6.12.0 Kernel Configuration\nCONFIG_MODULES=y\nCONFIG_OVERLAY_FS=m\n")
    return root


def run_on(tree: Path, cache: Path, *args: str, tty: bool) -> tuple[str, str, int]:
    """Run ``kcheck ARGS`` on ``tree``; return (stdout, stderr, status), stderr on a pty when ``tty``."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), NO_COLOR="1")
    argv = [KCHECK, *args, "-d", "overlay2", "-k", str(tree), "--no-host"]
    if not tty:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        return proc.stdout, proc.stderr, proc.returncode
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=env)
        os.close(slave)
        chunks = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        out = proc.stdout.read().decode() if proc.stdout else ""
        proc.wait(timeout=60)
        return out, b"".join(chunks).decode(), proc.returncode
    finally:
        os.close(master)


def wait_for_cache(cache: Path) -> None:
    """The parse cache may be written after the check ends; wait until an entry is there."""
    def entries():
        return [p for p in (cache / "kcheck").glob("*") if not p.name.startswith((".", "names-"))]

    deadline = time.monotonic() + 60
    while not entries() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_progress_line_on_a_terminal_once_per_tree(tree, tmp_path):
    cache = tmp_path / "cache"
    out, err, status = run_on(tree, cache, tty=True)
    assert status == 1 and "NOT READY" in out, out + err  # the tiny tree lacks docker's base needs
    assert LINE in err and "(once per tree; later runs use the cache)... done (" in err
    assert err.count("kcheck: reading the Kconfig files") == 1
    assert "reading the Kconfig files" not in out  # the report on stdout is untouched
    wait_for_cache(cache)
    _, again, _ = run_on(tree, cache, tty=True)
    assert "reading the Kconfig files" not in again


def test_no_progress_line_on_a_pipe_or_with_quiet(tree, tmp_path):
    out, err, status = run_on(tree, tmp_path / "pipe", tty=False)
    assert status == 1 and "reading the Kconfig files" not in err + out
    for quiet in ("--quiet", "-q"):
        out, err, status = run_on(tree, tmp_path / quiet, quiet, tty=True)
        assert status == 1 and "reading the Kconfig files" not in err, err


def test_quiet_is_accepted_by_every_command_that_reads_a_tree(tree, tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    for argv in (["fix", "-q", "-d", "overlay2", "-k", str(tree)],
                 ["explain", "-q", "OVERLAY_FS", "-k", str(tree)],
                 ["lint", "-q", "-d", "overlay2", "-k", str(tree), str(tree / ".config")]):
        proc = subprocess.run([KCHECK, *argv], capture_output=True, text=True, env=env, timeout=120)
        assert "no such option" not in proc.stderr, (argv, proc.stderr)
        assert proc.returncode in (0, 1), (argv, proc.stderr)


class FakeTerminal:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_a_failing_step_ends_its_line_and_nested_steps_get_their_own(monkeypatch):
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setattr(progress, "_quiet", False)
    with pytest.raises(RuntimeError):
        with progress.step("parsing", how_often="once per tree"):
            raise RuntimeError("boom")
    assert fake.text == "kcheck: parsing (once per tree)...\n"
    fake.text = ""
    with progress.step("outer", how_often="once"):
        with progress.step("inner", how_often="once"):
            pass
    lines = fake.text.splitlines()
    assert lines[0] == "kcheck: outer (once)..."
    assert lines[1].startswith("kcheck: inner (once)... done (")
    assert lines[2].startswith("kcheck: outer: done (")
