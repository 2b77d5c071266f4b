"""The safe write: a failure at any point leaves the original byte for byte, and no temporary file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from kcheck import safewrite
from kcheck.errors import InputError

ORIGINAL = b"CONFIG_OLD=y\n# a user's file, with bytes that must survive: \xc3\xa9\n"
NEW = "CONFIG_NEW=y\n" * 1000


@pytest.fixture
def config(tmp_path):
    path = tmp_path / ".config"
    path.write_bytes(ORIGINAL)
    os.chmod(path, 0o640)
    return path


def leftovers(path):
    return sorted(p.name for p in path.parent.iterdir() if ".kcheck-" in p.name)


def test_write_replaces_keeps_backup_mode_and_owner(config):
    os.chown(config, 1234, 5678)
    saved = safewrite.write_atomic(config, NEW)
    assert config.read_text() == NEW
    assert saved == config.with_name(".config.old") and saved.read_bytes() == ORIGINAL
    st = os.stat(config)
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 1234, 5678)
    assert leftovers(config) == []


def test_no_backup_means_none(config):
    assert safewrite.write_atomic(config, NEW, backup=False) is None
    assert not config.with_name(".config.old").exists()


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may add to: mode 0555, and immutable (chattr +i) when running as root."""
    directory = tmp_path / "ro"
    directory.mkdir()
    (directory / ".config").write_bytes(ORIGINAL)
    os.chmod(directory, 0o555)
    immutable = os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode != 0:
        os.chmod(directory, 0o755)
        pytest.skip("running as root and chattr +i is not available: root writes into any directory")
    yield directory
    if immutable:
        subprocess.run(["chattr", "-i", str(directory)], check=True)
    os.chmod(directory, 0o755)


def test_read_only_directory_leaves_the_original(read_only_dir):
    config = read_only_dir / ".config"
    with pytest.raises(InputError, match="nothing was changed") as exc:
        safewrite.write_atomic(config, NEW)
    assert str(config) in str(exc.value)
    assert config.read_bytes() == ORIGINAL and leftovers(config) == []


def test_read_only_filesystem_injected(config, monkeypatch):
    def erofs(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(safewrite.tempfile, "mkstemp", erofs)
    with pytest.raises(InputError, match="Read-only file system"):
        safewrite.write_atomic(config, NEW)
    assert config.read_bytes() == ORIGINAL


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_full_disk_at_any_step_leaves_the_original(config, monkeypatch, where):
    real = {"write": os.write, "fsync": os.fsync, "replace": os.replace}[where]
    calls = []

    def enospc(*args, **kwargs):
        calls.append(args)
        if where == "write" and len(calls) == 1:
            return real(args[0], bytes(args[1])[:100])  # a short write first, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safewrite.os, where, enospc)
    with pytest.raises(InputError, match="No space left on device"):
        safewrite.write_atomic(config, NEW)
    assert config.read_bytes() == ORIGINAL
    assert leftovers(config) == []


def test_exception_mid_write_leaves_the_original(config, monkeypatch):
    def boom(fd, data):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(safewrite.os, "write", boom)
    with pytest.raises(RuntimeError):
        safewrite.write_atomic(config, NEW)
    assert config.read_bytes() == ORIGINAL and leftovers(config) == []


def test_kill_mid_write_leaves_the_original(config, tmp_path):
    # A child starts the write, stalls inside fsync, and is killed with SIGKILL.
    script = f"""
import os, sys, time
from kcheck import safewrite
real = os.fsync
def slow(fd):
    sys.stdout.write("in-fsync\\n"); sys.stdout.flush(); time.sleep(60)
os.fsync = slow
safewrite.write_atomic({str(config)!r}, "CONFIG_NEW=y\\n" * 100000)
"""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "in-fsync"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert config.read_bytes() == ORIGINAL
    # At worst a temporary file is left beside it; the original name is never touched.
    assert all(name.startswith(f".{config.name}.kcheck-") for name in leftovers(config))


def test_new_file_is_created(tmp_path):
    target = tmp_path / "frag.config"
    assert safewrite.write_atomic(target, "CONFIG_X=y\n") is None
    assert target.read_text() == "CONFIG_X=y\n"


# --- symlinks planted in world-writable places -------------------------------------------------

NOBODY = 65534


@pytest.fixture
def shared(tmp_path):
    """A /tmp-like directory: world-writable and sticky."""
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_bytes(ORIGINAL)
    return directory, victim


@pytest.mark.skipif(os.geteuid() != 0, reason="planting a symlink as another user needs root")
@pytest.mark.parametrize("planted", ["target", "directory"])
def test_symlink_planted_by_another_user_is_refused(shared, planted):
    directory, victim = shared
    if planted == "target":
        link = target = directory / "kcheck.config"
        link.symlink_to(victim)
    else:
        link = directory / "out"
        link.symlink_to(victim.parent)
        target = link / "victim"
    os.lchown(link, NOBODY, NOBODY)
    with pytest.raises(InputError, match=f"symlink owned by uid {NOBODY}"):
        safewrite.write_atomic(target, NEW)
    assert victim.read_bytes() == ORIGINAL and not victim.with_name("victim.old").exists()
    assert sorted(p.name for p in directory.iterdir()) == [link.name]


def test_own_symlink_in_a_shared_directory_is_written_through(shared):
    """A symlink this user made is theirs to follow: the file it names is replaced, the link stays."""
    directory, victim = shared
    link = directory / "kcheck.config"
    link.symlink_to(victim)
    safewrite.write_atomic(link, NEW, backup=False)
    assert victim.read_text() == NEW
    assert link.is_symlink() and os.readlink(link) == str(victim)


@pytest.mark.skipif(os.geteuid() != 0, reason="a symlink owned by another user needs root")
def test_foreign_symlink_outside_shared_directories_is_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(ORIGINAL)
    link = tmp_path / "link.config"
    link.symlink_to(victim)
    os.lchown(link, NOBODY, NOBODY)
    safewrite.write_atomic(link, NEW, backup=False)
    assert victim.read_text() == NEW and link.is_symlink()


def test_sigterm_mid_write_finishes_and_leaves_no_temporary_file(config):
    script = f"""
import os, sys, time
from kcheck import safewrite
real = os.fsync
def slow(fd):
    sys.stdout.write("in-fsync\\n"); sys.stdout.flush(); time.sleep(1); real(fd)
os.fsync = slow
safewrite.write_atomic({str(config)!r}, {NEW!r})
"""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "in-fsync"
    os.kill(child.pid, signal.SIGTERM)
    assert child.wait() == -signal.SIGTERM
    child.stdout.close()
    # The signal was held until the file was replaced: the new content, whole, and nothing else.
    assert config.read_text() == NEW and leftovers(config) == []
