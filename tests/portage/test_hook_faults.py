"""Fault injection on the hook's snapshot store: a failed or killed save leaves the old snapshot and no temporary file."""

from __future__ import annotations

import os

import pytest
from faults import ERRNOS, SIGNALS, failing, signal_when_stalled
from gentoo_root import T0

from kcheck.portage import hook
from kcheck.portage.hook import StateStore, hook_messages

CP = "sys-fs/aufs3"
OLD = {"evidence": {"old": True}}


@pytest.fixture
def store_root(situation):
    situation.make_tree(T0)
    with StateStore(situation.root) as store:
        store.save(CP, OLD)
    state = situation.root / "var/lib/kcheck"
    return situation.root, state / "snapshot-sys-fs_aufs3.json", state


def others(state):
    return sorted(n for n in os.listdir(state) if n not in ("lock", "snapshot-sys-fs_aufs3.json"))


@pytest.mark.parametrize("code", ERRNOS)
@pytest.mark.parametrize("where", ["open", "fsync", "replace"])
def test_failed_save_keeps_the_old_snapshot(store_root, monkeypatch, code, where):
    root, snapshot, state = store_root
    before = snapshot.read_bytes()
    with StateStore(root) as store:
        monkeypatch.setattr(hook.os, where, failing(ERRNOS[code]))
        with pytest.raises(hook.KcheckError, match="nothing was changed"):
            store.save(CP, {"evidence": {"new": True}})
        monkeypatch.undo()
    assert snapshot.read_bytes() == before and others(state) == []


def test_disk_full_mid_write_keeps_the_old_snapshot(store_root, monkeypatch):
    root, snapshot, state = store_root
    before = snapshot.read_bytes()
    real_fdopen = os.fdopen

    class Full:
        """A file whose disk fills after the first bytes."""

        def __init__(self, f):
            self.f = f

        def write(self, text):
            self.f.write(text[:10])
            self.f.flush()
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    with StateStore(root) as store:
        monkeypatch.setattr(hook.os, "fdopen", lambda *a, **k: Full(real_fdopen(*a, **k)))
        with pytest.raises(hook.KcheckError, match="No space left on device"):
            store.save(CP, {"evidence": {"new": "x" * 10000}})
        monkeypatch.undo()
    assert snapshot.read_bytes() == before and others(state) == []


def test_a_failed_save_is_a_warning_not_a_crash(store_root, monkeypatch):
    root, snapshot, _ = store_root
    monkeypatch.setattr(hook.os, "fsync", failing(28))
    [(level, text)] = hook_messages(phase="pre_pkg_setup", category="sys-fs", pn="aufs3", root=root)
    assert level == "warn" and str(snapshot) in text and "No space left on device" in text


@pytest.mark.parametrize("name", SIGNALS)
def test_signal_between_write_and_rename(store_root, name):
    root, snapshot, state = store_root
    before = snapshot.read_bytes()
    signum, seconds = SIGNALS[name]
    status = signal_when_stalled(
        f"""
from pathlib import Path
from kcheck.portage.hook import StateStore
with StateStore(Path({str(root)!r})) as store:
    os.replace = stall(os.replace, {seconds})
    store.save({CP!r}, {{"evidence": {{"new": True}}}})
""",
        signum,
    )
    assert status == -signum
    if name == "SIGKILL":
        assert snapshot.read_bytes() == before
        # The next run, holding the lock, clears what the killed one left.
        with StateStore(root):
            pass
    else:  # held until the rename was done
        assert snapshot.read_text() == '{"evidence": {"new": true}}'
    assert others(state) == []
