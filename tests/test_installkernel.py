"""kcheck's installkernel plugins, run the way the installers run them.

- Gentoo's traditional installkernel runs ``run-parts --exit-on-error
  --arg=VERSION --arg=IMAGE /etc/kernel/preinst.d`` from the build directory
  (IMAGE relative to it) before it copies the image;
- systemd's ``kernel-install add VERSION IMAGE`` runs each plugin as ``PLUGIN add
  VERSION ENTRY_DIR_ABS IMAGE``; the test runs the machine's real kernel-install
  with only kcheck's plugin (``KERNEL_INSTALL_PLUGINS``) and a temporary BOOT_ROOT.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import realkernel
from kernel_files import make_bzimage

KCHECK = Path(sys.executable).with_name("kcheck")
VERSION = "6.1.192"


def plugin(name: str) -> Path:
    return Path(str(resources.files("kcheck").joinpath("data", name)))


@pytest.fixture
def tree(tmp_path, debian_configs_6_1):
    """A built 6.1.192 tree whose configuration lacks OVERLAY_FS (Debian's, with that line removed)."""
    tree = tmp_path / f"linux-{VERSION}"
    (tree / "include/config").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION =\n")
    text = debian_configs_6_1["amd64_none_amd64"].read_text()
    assert "CONFIG_OVERLAY_FS=m\n" in text
    (tree / ".config").write_text(text.replace("CONFIG_OVERLAY_FS=m\n", ""))
    (tree / "include/config/kernel.release").write_text(VERSION + "\n")
    make_bzimage(tree / "arch/x86/boot/bzImage", f"{VERSION} (root@gentoo) #1 SMP")
    return tree


def run(args, *, cwd=None, strict=False, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k != "KCHECK_INSTALLKERNEL_STRICT"}
    env["PATH"] = f"{KCHECK.parent}:/usr/sbin:/usr/bin:/sbin:/bin"
    if strict:
        env["KCHECK_INSTALLKERNEL_STRICT"] = "1"
    env.update(extra_env or {})
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_acceptance_names_overlay_fs_and_never_blocks(tree, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    image = tree / "arch/x86/boot/bzImage"
    proc = run([KCHECK, "installkernel-hook", VERSION, str(image), "--root", str(root)])
    assert proc.returncode == 0, proc.stderr
    assert "OVERLAY_FS" in proc.stdout and "NOT READY for docker + overlay2" in proc.stdout
    assert f"reading {tree}/.config" in proc.stdout
    assert "KCHECK_INSTALLKERNEL_STRICT=1" in proc.stdout  # says how to make it stop
    strict = run([KCHECK, "installkernel-hook", VERSION, str(image), "--root", str(root)], strict=True)
    assert strict.returncode == 1 and "OVERLAY_FS" in strict.stdout and "stopping the install" in strict.stdout
    # The same setting from the configuration file.
    conf = root / "etc/kcheck/installkernel.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# kcheck's installkernel hook\nstrict=1\n")
    assert run([KCHECK, "installkernel-hook", VERSION, str(image), "--root", str(root)]).returncode == 1
    # The environment wins over the file, both ways.
    relaxed = run([KCHECK, "installkernel-hook", VERSION, str(image), "--root", str(root)],
                  extra_env={"KCHECK_INSTALLKERNEL_STRICT": "0"})
    assert relaxed.returncode == 0


def test_the_configured_driver_is_checked(tree, tmp_path):
    root = tmp_path / "root"
    daemon = root / "etc/docker/daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text('{"storage-driver": "btrfs"}')
    proc = run([KCHECK, "installkernel-hook", VERSION, str(tree / "arch/x86/boot/bzImage"), "--root", str(root)])
    assert proc.returncode == 0 and "for docker's btrfs storage driver" in proc.stdout
    assert "OVERLAY_FS" not in proc.stdout


def test_preinst_plugin_under_run_parts(tree, tmp_path):
    """Gentoo's installkernel: run-parts from the build directory, IMAGE relative to it."""
    hooks = tmp_path / "preinst.d"
    hooks.mkdir()
    shutil.copy(plugin("kcheck-preinst.install"), hooks / "35-kcheck")  # run-parts skips names with a dot
    args = ["run-parts", "--verbose", "--exit-on-error", f"--arg={VERSION}", "--arg=arch/x86/boot/bzImage", str(hooks)]
    proc = run(args, cwd=tree)
    assert proc.returncode == 0, proc.stderr
    assert "OVERLAY_FS" in proc.stdout
    assert run(args, cwd=tree, strict=True).returncode != 0
    # Without kcheck on PATH (uninstalled) the plugin does nothing and never fails.
    gone = subprocess.run(args, cwd=tree, env={"PATH": "/usr/bin:/bin", "KCHECK_INSTALLKERNEL_STRICT": "1"},
                          capture_output=True, text=True)
    assert gone.returncode == 0 and gone.stdout == ""


def test_kernel_install_plugin_as_kernel_install_calls_it(tree, tmp_path):
    """kernel-install(8) calls each plugin as: PLUGIN add KERNEL_VERSION ENTRY_DIR_ABS KERNEL_IMAGE [INITRD...]."""
    entry = tmp_path / "boot/0123456789abcdef0123456789abcdef" / VERSION
    script = str(plugin("kcheck-kernel-install.install"))
    proc = run([script, "add", VERSION, str(entry), "arch/x86/boot/bzImage", "/boot/initrd.img"], cwd=tree)
    assert proc.returncode == 0, proc.stderr
    assert "OVERLAY_FS" in proc.stdout
    assert run([script, "add", VERSION, str(entry), "arch/x86/boot/bzImage"], cwd=tree, strict=True).returncode == 1
    removed = run([script, "remove", VERSION, str(entry)], cwd=tree, strict=True)
    assert removed.returncode == 0 and removed.stdout == ""


def test_kernel_install_plugin_under_the_real_kernel_install(tree, tmp_path):
    """The machine's own kernel-install, with only kcheck's plugin and a temporary BOOT_ROOT."""
    if realkernel.install_tools({"kernel-install": "systemd"}):
        pytest.skip("systemd's kernel-install is not installed (the direct-call test covers the convention)")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "install.conf").write_text("layout=other\n")
    env = {
        "KERNEL_INSTALL_PLUGINS": str(plugin("kcheck-kernel-install.install")),
        "KERNEL_INSTALL_CONF_ROOT": str(conf),
        "BOOT_ROOT": str(tmp_path / "boot"),
        "MACHINE_ID": "0123456789abcdef0123456789abcdef",
    }
    (tmp_path / "boot").mkdir()
    add = ["kernel-install", "add", VERSION, "arch/x86/boot/bzImage"]
    proc = run(add, cwd=tree, extra_env=env)
    assert proc.returncode == 0, proc.stderr
    assert "OVERLAY_FS" in proc.stdout
    assert run(add, cwd=tree, extra_env=env, strict=True).returncode != 0
    removed = run(["kernel-install", "remove", VERSION], cwd=tree, extra_env=env, strict=True)
    assert removed.returncode == 0 and "OVERLAY_FS" not in removed.stdout
    assert list((tmp_path / "boot").iterdir()) == []  # the plugin installs nothing


def test_configuration_found_where_installers_leave_it(tree, tmp_path):
    from kcheck.installkernel import find_config

    root = tmp_path / "root"
    (root / f"lib/modules/{VERSION}").mkdir(parents=True)
    # A distribution kernel: the image in /boot, the tree linked from /lib/modules/VERSION/build.
    (root / f"lib/modules/{VERSION}/build").symlink_to(tree)
    location, note = find_config(VERSION, root / f"boot/vmlinuz-{VERSION}", root)
    assert location.config == root / f"lib/modules/{VERSION}/build/.config" and note == ""
    # A tree that last built another release is passed over for one that fits.
    other = tmp_path / "other/arch/x86/boot"
    other.mkdir(parents=True)
    (tmp_path / "other/.config").write_text("CONFIG_MODULES=y\n")
    (tmp_path / "other/include/config").mkdir(parents=True)
    (tmp_path / "other/include/config/kernel.release").write_text("6.1.0-old\n")
    location, note = find_config(VERSION, other / "bzImage", root)
    assert location.config.parent.resolve() == tree.resolve()
    (root / f"lib/modules/{VERSION}/build").unlink()
    location, note = find_config(VERSION, other / "bzImage", root)
    assert location.config == tmp_path / "other/.config" and "last built 6.1.0-old" in note
    # Only a config-VERSION beside the image (postinst style, or a binary distribution kernel).
    boot = root / "boot"
    boot.mkdir()
    (boot / f"config-{VERSION}").write_text("CONFIG_MODULES=y\n")
    location, _ = find_config(VERSION, boot / f"vmlinuz-{VERSION}", root)
    assert location.config == boot / f"config-{VERSION}"


def test_no_configuration_is_said_and_only_strict_stops(tmp_path):
    image = tmp_path / "vmlinuz"
    image.write_bytes(b"")
    proc = run([KCHECK, "installkernel-hook", "9.9.9", str(image), "--root", str(tmp_path)])
    assert proc.returncode == 0 and "no configuration found for kernel 9.9.9" in proc.stdout
    assert run([KCHECK, "installkernel-hook", "9.9.9", str(image), "--root", str(tmp_path)], strict=True).returncode == 1
