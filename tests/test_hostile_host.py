"""Hostile files on the host side (issue 12): every file the host checks read is bounded and never waited on.

kcheck reads the running system's files (``/proc``, ``/lib/modules``,
``/boot``, a mount's source device) under ``--root``, where whoever can write
that root can plant a FIFO (a plain ``open()`` blocks forever) or a link to
``/dev/zero`` (a read that never ends). Each such file is read only when it
is a regular file (``/proc`` files are: bounded, since their size says
nothing) and a file that cannot be had falls back on the answer for a missing
file. Each case runs kcheck in its own process, with a time limit and an
address-space limit, so a regression fails instead of stalling the suite or
exhausting the machine's memory.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from kernel_files import elf_with_modinfo, make_bzimage
from test_host_cli import RELEASE, live_root

MODULE = f"lib/modules/{RELEASE}/kernel/fs/overlayfs/overlay.ko"
BUILD = "#1 SMP PREEMPT_DYNAMIC Fri Nov 27 12:00:00 UTC 2026"


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def kcheck_json(root: Path) -> dict:
    """``kcheck --root ROOT --format json`` in its own process: the host findings by check name."""
    proc = subprocess.run([sys.executable, "-m", "kcheck", "--root", str(root), "-d", "overlay2", "--format", "json"],
                          capture_output=True, text=True, timeout=60, preexec_fn=_limits)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    return {f["check"]: f for f in json.loads(proc.stdout)["findings"] if f["section"] == "host"}


@pytest.fixture
def machine(tmp_path) -> Path:
    """A running RELEASE without overlay in /proc/filesystems, whose overlay.ko would load (its symbol is exported)."""
    root = live_root(tmp_path, filesystems=("ext4",))
    module = root / MODULE
    module.parent.mkdir(parents=True)
    module.write_bytes(elf_with_modinfo([f"vermagic={RELEASE} SMP"], undefined=["printk"]))
    (root / "proc/kallsyms").write_text("0000000000000000 r __ksymtab_printk\n")
    (root / f"lib/modules/{RELEASE}/modules.symbols").write_text("alias symbol:crc32c libcrc32c\n")
    (root / f"lib/modules/{RELEASE}/modules.builtin").write_text("kernel/fs/ext4/ext4.ko\n")
    (root / "proc/version").write_text(f"Linux version {RELEASE} (root@box) (gcc) {BUILD}\n")
    make_bzimage(root / f"boot/vmlinuz-{RELEASE}", f"{RELEASE} (root@box) {BUILD}")
    return root


def _fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")


#: file -> (host check, a fragment of its reason once that file cannot be read: the fallback).
FALLBACKS = {
    "proc/kallsyms": ("running:overlay", "cannot tell whether"),
    MODULE: ("running:overlay", "cannot tell whether overlay loads"),
    "proc/filesystems": ("running:overlay", "loads on first use"),  # then judged from the module
    "proc/self/mountinfo": ("data-root", "is on"),  # statfs of the real directory instead
    "proc/sys/kernel/version": ("kernel-booted", RELEASE),  # /proc/version instead
    f"lib/modules/{RELEASE}/modules.symbols": ("running:overlay", "loads on first use"),
    f"boot/vmlinuz-{RELEASE}": ("kernel-booted", RELEASE),
}


def test_the_machine_as_built_answers(machine):
    found = kcheck_json(machine)
    assert found["running:overlay"]["status"] == "ok" and "loads on first use" in found["running:overlay"]["reason"]
    assert found["kernel-booted"]["status"] == "ok"


@pytest.mark.parametrize("make", [_fifo, _dev_zero], ids=["fifo", "dev-zero"])
@pytest.mark.parametrize("name", list(FALLBACKS))
def test_a_host_file_that_never_ends_falls_back(machine, name, make):
    make(machine / name)
    check, fragment = FALLBACKS[name]
    found = kcheck_json(machine)
    assert fragment in found[check]["reason"], found[check]


@pytest.mark.parametrize("make", [_fifo, _dev_zero], ids=["fifo", "dev-zero"])
def test_a_mount_source_that_is_no_block_device_is_not_read(tmp_path, make):
    """overlay2 on xfs reads the source device's superblock: a FIFO or /dev/zero there is not one."""
    root = live_root(tmp_path, fstype="xfs")
    (root / "dev").mkdir()
    make(root / "dev/sda2")
    found = kcheck_json(root)
    assert found["backing-fs"]["status"] == "warn" and "could not be verified" in found["backing-fs"]["reason"]


def call(code: str, *args: str) -> str:
    """Run ``code`` (Python, its result printed) in its own process with the same limits; its stdout."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                          preexec_fn=_limits)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("make", [_fifo, _dev_zero], ids=["fifo", "dev-zero"])
def test_settings_of_the_hooks_that_never_end_read_as_absent(tmp_path, make):
    """/etc/kcheck/installkernel.conf and /etc/kcheck/aufs-packages: as if there were none."""
    for name in ("etc/kcheck/installkernel.conf", "etc/kcheck/aufs-packages"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        make(tmp_path / name)
    out = call("import sys; from pathlib import Path; from kcheck import installkernel; "
               "from kcheck.portage.aufs_state import extra_names; "
               "print(installkernel.settings(Path(sys.argv[1])), extra_names(Path(sys.argv[1])))", str(tmp_path))
    assert out == "{} []"


@pytest.mark.parametrize("make", [_fifo, _dev_zero], ids=["fifo", "dev-zero"])
def test_a_build_whose_kernel_release_never_ends_has_no_release(tmp_path, make):
    tree = tmp_path / "linux"
    (tree / "include/config").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 67\nEXTRAVERSION =\n")
    (tree / "mm").mkdir()
    (tree / "mm/mmap.c").write_text("int x;\n")
    make(tree / "include/config/kernel.release")
    (tree / "fs").mkdir()
    make(tree / "fs/dcache.c")  # a file the aufs patch adds exports to: read as absent
    out = call("import sys; from pathlib import Path; from kcheck.portage.aufs_state import read_tree; "
               "ev = read_tree(Path(sys.argv[1]), Path(sys.argv[1])); "
               "print(ev.release, bool(ev.exports_missing))", str(tree))
    assert out == "None True"
