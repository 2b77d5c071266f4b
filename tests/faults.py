"""Fault injection shared by the write tests: the failures every writer of kcheck must survive.

A writer must leave the file it replaces byte for byte and no temporary file
behind when the disk is full (ENOSPC), permission is denied (EACCES), the
filesystem is read-only (EROFS), or the process dies between writing and
renaming (SIGKILL: only the temporary file may stay) or is asked to stop
(SIGTERM: the write finishes or is undone, then the process ends).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

#: The error numbers injected, by name.
ERRNOS = {"ENOSPC": errno.ENOSPC, "EACCES": errno.EACCES, "EROFS": errno.EROFS}


def failing(code: int):
    """A stand-in for an ``os`` call that fails with ``code``."""

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


#: Prepended to a child's script: ``stall(real, seconds)`` wraps a call so the child
#: announces "stalled" on stdout and waits before doing it.
STALL = """
import os, sys, time
def stall(real, seconds):
    def wrapper(*args, **kwargs):
        sys.stdout.write("stalled\\n"); sys.stdout.flush()
        time.sleep(seconds)
        return real(*args, **kwargs)
    return wrapper
"""


def signal_when_stalled(script: str, signum: int) -> int:
    """Run ``STALL + script`` in a child, send ``signum`` once it stalls; return its exit status."""
    child = subprocess.Popen([sys.executable, "-c", STALL + script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "stalled"
    os.kill(child.pid, signum)
    status = child.wait(timeout=120)
    child.stdout.close()
    return status


#: The signals tried: SIGKILL cannot be held (the rename never happens), SIGTERM is held until the write is done.
SIGNALS = {"SIGKILL": (signal.SIGKILL, 60), "SIGTERM": (signal.SIGTERM, 1)}
