"""The per-user cache of parsed trees: data, not code; trusted only when it is the user's own; rebuilt when anything changed."""

from __future__ import annotations

import array
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import kconfiglib
import pytest

import kconfig_trees as kt
from kcheck.kconfig import KconfigTree, cache, snapshot

KCHECK = str(Path(sys.executable).with_name("kcheck"))
NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")

KCONFIG = """\
    config MODULES
    \tbool "modules"
    \tmodules
    \tdefault y

    config FROM_ENV
    \tstring "from the environment"
    \tdefault "$(KCHECK_TEST_VAR)"

    config OVERLAY_FS
    \ttristate "overlay"
    \tdefault m

    choice
    \tprompt "pick"
    config PICK_A
    \tbool "a"
    config PICK_B
    \tbool "b"
    endchoice

    config SELECTOR
    \tbool "selector"
    \tselect SUB

    source "sub/Kconfig"
    """

SUB = """\
    config SUB
    \tbool "sub"
    \tdefault y
    """


@pytest.fixture
def tree_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("KCHECK_TEST_VAR", "first")
    return kt.write_tree(tmp_path / "tree", KCONFIG, {"sub/Kconfig": SUB})


def load(root, **kwargs):
    tree = KconfigTree.load(root, **kwargs)
    cache.flush(close_output=False)  # what happens when kcheck exits
    return tree


def entry(tree):
    return cache.entry_path(tree.srctree, tree.arch, tree.allow_shell)


def values(tree, tmp_path):
    src = tree.read(kt.write_config(tmp_path / "given.config", "CONFIG_PICK_B=y\nCONFIG_SELECTOR=y\n"))
    return (src.state("FROM_ENV").value, src.state("SUB").value, src.state("NEW").exists,
            src.state("PICK_B").value, src.state("SUB").note)


EXPECTED = ("first", "y", False, "y", "SUB is not in the file; Kconfig sets it to y: selected by SELECTOR (y)")


def cache_files(tmp_path) -> list[Path]:
    return [p for p in (tmp_path / "xdg").rglob("*") if p.is_file()]


def test_second_load_comes_from_the_cache(tree_dir, tmp_path):
    first = load(tree_dir)
    assert not first.from_cache
    assert entry(first).is_file()
    assert entry(first).parent == tmp_path / "xdg" / "kcheck"
    second = load(tree_dir)
    assert second.from_cache
    assert values(second, tmp_path) == values(first, tmp_path)
    assert values(second, tmp_path)[:4] == ("first", "y", False, "y")


def test_values_need_only_the_cone_and_the_rest_comes_on_demand(tree_dir, tmp_path):
    load(tree_dir)
    tree = load(tree_dir)
    source = tree.read(kt.write_config(tmp_path / "given.config", "CONFIG_OVERLAY_FS=y\n"))
    assert source.state("OVERLAY_FS").value == "y"
    assert "PICK_A" not in tree._kconf.syms  # nothing outside OVERLAY_FS's cone was rebuilt
    assert source.state("PICK_A").value == "y"  # rebuilt later, with the file's values
    assert len(tree.kconf.unique_defined_syms) == 7  # the whole tree on demand


def test_no_file_in_the_cache_is_a_pickle(tree_dir, tmp_path):
    load(tree_dir)
    files = cache_files(tmp_path)
    assert files
    for path in files:
        data = path.read_bytes()
        assert data.startswith(cache.MAGIC), path
        assert not data.startswith(b"\x80")  # every pickle protocol >= 2 starts so
        with pytest.raises(Exception):
            pickle.loads(data)


class Boom:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_over_every_cache_file_runs_nothing_and_is_rebuilt(tree_dir, tmp_path):
    load(tree_dir)
    marker = tmp_path / "pickle-ran"
    payload = pickle.dumps(Boom(marker))
    pickle.loads(payload)  # the payload is live: it does leave the marker
    assert marker.exists()
    marker.unlink()
    for path in cache_files(tmp_path):
        path.write_bytes(payload)
    # In process and through the command line, as a user would run it.
    tree = load(tree_dir)
    assert not tree.from_cache and not marker.exists()
    assert values(tree, tmp_path) == EXPECTED
    for path in cache_files(tmp_path):
        path.write_bytes(payload)
    config = kt.write_config(tmp_path / "c.config", "CONFIG_OVERLAY_FS=m\n")
    proc = subprocess.run([KCHECK, "-d", "overlay2", "-k", str(tree_dir), "-c", str(config), "--no-host", "-v"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    assert not marker.exists()
    assert "damaged" in proc.stderr  # --verbose says why the entry was not used
    # The command rewrote the entry before it exited: the next load is warm again.
    assert load(tree_dir).from_cache
    assert all(p.read_bytes().startswith(cache.MAGIC) for p in cache_files(tmp_path))


def test_a_changed_kconfig_file_rebuilds(tree_dir, tmp_path):
    load(tree_dir)
    sub = tree_dir / "sub" / "Kconfig"
    sub.write_text(sub.read_text() + "\nconfig NEW\n\tbool \"new\"\n")
    st = sub.stat()
    os.utime(sub, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    tree = load(tree_dir)
    assert not tree.from_cache
    assert values(tree, tmp_path)[2] is True
    assert load(tree_dir).from_cache


def test_a_touched_file_with_same_content_rebuilds(tree_dir):
    load(tree_dir)
    sub = tree_dir / "sub" / "Kconfig"
    st = sub.stat()
    os.utime(sub, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert not load(tree_dir).from_cache


def test_a_changed_environment_variable_rebuilds(tree_dir, tmp_path, monkeypatch):
    load(tree_dir)
    monkeypatch.setenv("KCHECK_TEST_VAR", "second")
    tree = load(tree_dir)
    assert not tree.from_cache
    assert values(tree, tmp_path)[0] == "second"


def test_an_unrelated_environment_variable_does_not_rebuild(tree_dir, monkeypatch):
    load(tree_dir)
    monkeypatch.setenv("KCHECK_SOMETHING_ELSE", "x")
    assert load(tree_dir).from_cache


def test_every_variable_the_makefile_exports_keys_the_entry_set_or_not(tree_dir, monkeypatch):
    # A variable env.py adds (PAHOLE_VERSION, say) counts without any change here,
    # and one unset at the parse that becomes set rebuilds, though no Kconfig read it.
    from kcheck.kconfig import tree as tree_module

    real = tree_module.kconfig_env
    load(tree_dir)
    monkeypatch.setattr(tree_module, "kconfig_env", lambda *a, **k: {**real(*a, **k), "KCHECK_NEW_EXPORT": "1"})
    assert not load(tree_dir).from_cache
    assert load(tree_dir).from_cache
    stored = cache.load(entry(load(tree_dir)), str(tree_dir), load(tree_dir).arch, True,
                        tree_module.kconfig_env(tree_dir))[0].meta["env"]
    assert stored["KCHECK_NEW_EXPORT"] == "1" and "CC" in stored and "KCHECK_TEST_VAR" in stored
    monkeypatch.delenv("KCHECK_UNSET_AT_PARSE", raising=False)

    def exported(*a, **k):  # the Makefile exports it only when it is set, like LLVM or CLANG_FLAGS
        value = os.environ.get("KCHECK_UNSET_AT_PARSE")
        return {**real(*a, **k), **({} if value is None else {"KCHECK_UNSET_AT_PARSE": value})}

    monkeypatch.setattr(tree_module, "kconfig_env", exported)
    load(tree_dir)
    assert load(tree_dir).from_cache
    monkeypatch.setenv("KCHECK_UNSET_AT_PARSE", "set now")
    assert not load(tree_dir).from_cache


@pytest.mark.parametrize("damage", ["empty", "half", "flipped", "version", "b'not a cache'", "longer"])
def test_a_corrupt_entry_is_ignored_and_rewritten(tree_dir, tmp_path, damage):
    first = load(tree_dir)
    path = entry(first)
    data = bytearray(path.read_bytes())
    if damage == "empty":
        data = b""
    elif damage == "half":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        data[len(data) // 2] ^= 0x20
    elif damage == "version":
        data[8] += 1
    elif damage == "longer":
        data += b"\0"
    else:
        data = b"not a cache"
    path.write_bytes(bytes(data))
    tree = load(tree_dir)
    assert not tree.from_cache
    assert values(tree, tmp_path) == EXPECTED
    assert load(tree_dir).from_cache


def test_a_record_that_passes_its_checksum_but_lies_falls_back_to_a_parse(tree_dir, tmp_path, monkeypatch):
    load(tree_dir)
    tree = load(tree_dir)
    assert tree.from_cache
    monkeypatch.setattr(tree._lazy, "_record", lambda i: b'["s","X",{"__class__":"os.system"}]')
    assert values(tree, tmp_path) == EXPECTED
    assert not tree.from_cache and "damaged" in tree.cache_note


def test_no_cache_neither_reads_nor_writes(tree_dir, tmp_path):
    tree = load(tree_dir, use_cache=False)
    assert not tree.from_cache
    assert not (tmp_path / "xdg" / "kcheck").exists()


def test_shell_mode_has_its_own_entry(tree_dir):
    load(tree_dir)
    tree = load(tree_dir, allow_shell=False)
    assert not tree.from_cache
    assert cache.entry_path(tree_dir, tree.arch, False).is_file()


def test_an_unset_variable_set_later_rebuilds(tmp_path, monkeypatch):
    # $(KCHECK_TEST_LATER) expands to "" while unset; setting it must not hit the old parse.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("KCHECK_TEST_LATER", raising=False)
    root = kt.write_tree(tmp_path / "tree", KCONFIG.replace("KCHECK_TEST_VAR", "KCHECK_TEST_LATER"),
                         {"sub/Kconfig": SUB})
    assert values(load(root), tmp_path)[0] == ""
    assert load(root).from_cache
    monkeypatch.setenv("KCHECK_TEST_LATER", "now set")
    tree = load(root)
    assert not tree.from_cache
    assert values(tree, tmp_path)[0] == "now set"


PAHOLE_KCONFIG = """\
    config PAHOLE_VERSION
    \tint
    \tdefault "$(PAHOLE_VERSION)"

    config BTF
    \tbool "BTF"
    \tdefault y
    \tdepends on PAHOLE_VERSION >= 122
    """


def test_installing_pahole_rebuilds_a_7x_parse(tmp_path, monkeypatch):
    # 7.x: the Makefile exports PAHOLE_VERSION ("0" without pahole); a parse cached without
    # pahole must not be used once pahole is there.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PAHOLE_VERSION", raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("PAHOLE", str(bindir / "pahole"))
    root = kt.write_tree(tmp_path / "tree", PAHOLE_KCONFIG, version="7.3")
    config = kt.write_config(tmp_path / "empty.config", "")
    tree = load(root)
    assert tree.env["PAHOLE_VERSION"] == "0"
    assert tree.read(config).state("BTF").value == "n"
    pahole = bindir / "pahole"
    pahole.write_text("#!/bin/sh\necho v1.30\n")
    pahole.chmod(0o755)
    tree = load(root)
    assert not tree.from_cache
    assert tree.env["PAHOLE_VERSION"] == "130"
    assert tree.read(config).state("BTF").value == "y"


def test_a_relative_xdg_cache_home_is_ignored(tree_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative-cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    tree = load(tree_dir)
    assert entry(tree).parent == tmp_path / "home" / ".cache" / "kcheck"
    assert entry(tree).is_file() and not (tmp_path / "relative-cache").exists()


# --- trust -------------------------------------------------------------------------------------

def test_a_group_writable_cache_directory_is_ignored_and_said_with_verbose(tree_dir, tmp_path):
    tree = load(tree_dir)
    path = entry(tree)
    os.chmod(path.parent, 0o775)
    before = path.stat()
    again = load(tree_dir)
    assert not again.from_cache and "writable by its group or others" in again.cache_note
    assert path.stat().st_mtime_ns == before.st_mtime_ns  # not rewritten there either
    config = kt.write_config(tmp_path / "c.config", "CONFIG_OVERLAY_FS=m\n")
    argv = [KCHECK, "-d", "overlay2", "-k", str(tree_dir), "-c", str(config), "--no-host"]
    quiet = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    loud = subprocess.run([*argv, "--verbose"], capture_output=True, text=True, timeout=120)
    assert "cache" not in quiet.stderr
    assert f"cache directory {path.parent} is writable by its group or others" in loud.stderr


def test_a_group_writable_entry_is_ignored(tree_dir):
    path = entry(load(tree_dir))
    os.chmod(path, 0o664)
    assert not load(tree_dir).from_cache


@needs_root
@pytest.mark.parametrize("what", ["entry", "directory", "base"])
def test_root_ignores_a_cache_another_user_owns_and_never_writes_it(tree_dir, tmp_path, what):
    path = entry(load(tree_dir))
    owned = {"entry": path, "directory": path.parent, "base": tmp_path / "xdg"}[what]
    os.chown(owned, NOBODY, NOBODY)
    data = path.read_bytes()
    tree = load(tree_dir)
    assert not tree.from_cache and f"belongs to uid {NOBODY}" in tree.cache_note
    assert values(tree, tmp_path) == EXPECTED
    # Root's fresh parse is not written into another user's place, nor chowned to them.
    assert path.read_bytes() == data and path.stat().st_uid == (NOBODY if what == "entry" else 0)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.parametrize("kind", ["fifo", "huge", "symlink", "directory"])
def test_an_entry_that_is_not_a_small_regular_file_is_refused_without_blocking(tree_dir, tmp_path, kind):
    path = entry(load(tree_dir))
    data = path.read_bytes()
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path, 0o600)  # nobody writes: a blocking open or read would hang the test
    elif kind == "huge":
        with open(path, "wb") as fh:
            fh.truncate(cache.MAX_ENTRY + 1)  # sparse: costs no disk, would cost 256 MiB to read
    elif kind == "symlink":
        real = tmp_path / "elsewhere.kcc"
        real.write_bytes(data)
        path.symlink_to(real)
    else:
        path.mkdir()
    tree = load(tree_dir)
    assert not tree.from_cache
    assert values(tree, tmp_path) == EXPECTED


def test_the_entry_is_written_before_kcheck_exits_and_no_process_outlives_it(tree_dir, tmp_path):
    config = kt.write_config(tmp_path / "c.config", "CONFIG_OVERLAY_FS=m\n")
    argv = [KCHECK, "-d", "overlay2", "-k", str(tree_dir), "-c", str(config), "--no-host"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "KCHECK_CACHE_BACKGROUND": ""}, start_new_session=True)
    out, _ = proc.communicate(timeout=120)
    assert b"overlay2" in out
    # The whole session (kcheck and anything it started) is gone, and the entry is complete.
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
    tree = load(tree_dir)
    assert tree.from_cache


def test_background_writing_only_when_asked(tree_dir, tmp_path):
    read, write = os.pipe()
    script = ("import os; from kcheck.kconfig import KconfigTree, cache; "
              f"KconfigTree.load({str(tree_dir)!r}); cache.flush(); os.write({write}, str(cache._writers).encode())")
    proc = subprocess.run([sys.executable, "-c", script], pass_fds=(write,),
                          env={**os.environ, "KCHECK_CACHE_BACKGROUND": "1"}, timeout=120)
    os.close(write)
    children = os.read(read, 100).decode()
    os.close(read)
    assert proc.returncode == 0 and children not in ("[]", "")
    for _ in range(200):
        if any(p.suffix == cache.SUFFIX for p in cache_files(tmp_path)):
            break
        time.sleep(0.05)
    assert load(tree_dir).from_cache


def test_snapshot_rejects_records_that_are_not_items():
    meta = {"names": ["n", "m", "y", "A"], "n_defined": 1, "n_choices": 0, "n_consts": 3, "modules": 3,
            "defconfig_list": None, "top_prompt": "Main menu", "top_file": ["Kconfig", 1], "srctree": "/x",
            "config_prefix": "CONFIG_", "kconfig_filenames": ["Kconfig"], "env_vars": [], "conf_rules": [], "parse_warnings": [],
            "transitional": [], "n_nodes": 1, "files": ["Kconfig"]}
    looping = array.array("i", [kconfiglib.AND, -1, 0]).tobytes()  # entry 0 built from itself
    cases = [(b'{"a": 1}', b""), (b'["x"]', b""), (b'["s", "A"]', b""), (b"not json", b""),
             (b'["s","A",1,0,null,99,0,0,[],[],[],[],null,0,[],[]]', b""),  # an item that is not there
             (b'["s","A",1,0,null,-1,0,0,[],[],[],[],null,0,[],[]]', b""),  # an expression that is not there
             (b'["s","A",1,0,null,-1,0,0,[],[],[],[],null,0,[],[]]', looping)]
    for record, expressions in cases:
        lazy = snapshot.LazyKconfig(meta, lambda i, r=record: r, lambda: b"[]", expressions)
        with pytest.raises(snapshot.SnapshotError):
            lazy.materialize(["A"])


def test_lint_leaves_no_process_behind_and_a_complete_entry(tree_dir, tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    for number in range(6):
        kt.write_config(configs / f"{number}.config", f"CONFIG_OVERLAY_FS={'ym'[number % 2]}\n")
    argv = [KCHECK, "lint", "-d", "overlay2", "-k", str(tree_dir), "--jobs", "2", "--format", "json", str(configs)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 1), err
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
    assert load(tree_dir).from_cache


def _entry_bytes(meta: bytes, n_items: int = 0, records: bytes = b"", tree: bytes = b"[]", exprs: bytes = b"") -> bytes:
    """An entry with a correct header and checksum around whatever sections the test wants."""
    import struct
    import zlib

    offsets = struct.pack(f"<{n_items + 1}Q", *([0] * n_items + [len(records)]))
    body = meta + offsets + records + tree + exprs
    return cache._HEADER.pack(cache.MAGIC, cache.FORMAT, zlib.crc32(body), len(meta), n_items, len(records),
                              len(tree), len(exprs)) + body


@pytest.mark.parametrize("meta", [b"[" * 100_000 + b"]" * 100_000, b'{"tree": {"names": []}}',
                                  b'{"tree": {"names": ["n", "m", "y"], "n_consts": 3}}'])
def test_a_well_checksummed_entry_with_a_bad_description_is_parsed_again(tree_dir, tmp_path, meta):
    path = entry(load(tree_dir))
    path.write_bytes(_entry_bytes(meta))
    tree = load(tree_dir)
    assert not tree.from_cache
    assert values(tree, tmp_path) == EXPECTED


def test_a_description_that_matches_the_stamp_but_not_the_format_is_parsed_again(tree_dir, tmp_path, monkeypatch):
    real = snapshot.encode

    def broken(kconf):
        meta, records, tree, exprs = real(kconf)
        del meta["n_defined"]
        return meta, records, tree, exprs

    monkeypatch.setattr(snapshot, "encode", broken)
    load(tree_dir)
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("KCHECK_TEST_VAR", "first")
    tree = load(tree_dir)
    assert not tree.from_cache and "damaged" in tree.cache_note
    assert values(tree, tmp_path) == EXPECTED


def test_pickled_entries_of_earlier_versions_are_removed(tree_dir, tmp_path):
    old = tmp_path / "xdg" / "kcheck" / "kconfig-0123456789abcdef01234567.pickle"
    old.parent.mkdir(parents=True)
    old.write_bytes(pickle.dumps({"format": 3}))
    load(tree_dir)
    assert not old.exists()
    assert [p.suffix for p in cache_files(tmp_path)] == [cache.SUFFIX]


@needs_root
def test_a_tree_whose_probes_trust_refused_is_warm_until_the_file_is_fixed(tree_dir, tmp_path):
    # The parse meets sub/Kconfig, another user's, and falls back to no probes: that parse is cached
    # for the runs that allow probes too, while the file stays another user's.
    sub = tree_dir / "sub" / "Kconfig"
    os.chown(sub, NOBODY, NOBODY)
    first = load(tree_dir)
    assert not first.from_cache and not first.allow_shell and str(sub) in first.shell_refused
    second = load(tree_dir)
    assert second.from_cache and not second.allow_shell and str(sub) in second.shell_refused
    assert values(second, tmp_path) == values(first, tmp_path)
    os.chown(sub, 0, 0)
    fixed = load(tree_dir)
    assert not fixed.from_cache and fixed.allow_shell and fixed.shell_refused is None
    assert load(tree_dir).from_cache
