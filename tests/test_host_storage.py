"""The filesystem under podman's graphroot and containerd's snapshotter root, on crafted roots (Debian sid's own files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_host_cli import live_root
from test_host_fs import xfs_superblock
from test_runtimes import _from_deb, debian_containerd_toml, put  # noqa: F401 - a fixture

from kcheck.cli import main

DEBIAN_STORAGE_CONF = "usr/share/containers/storage.conf"


@pytest.fixture(autouse=True)
def no_kernel_env(monkeypatch):
    """The user's $KERNEL_DIR / $KBUILD_OUTPUT must not leak into crafted roots."""
    monkeypatch.delenv("KERNEL_DIR", raising=False)
    monkeypatch.delenv("KBUILD_OUTPUT", raising=False)


@pytest.fixture(scope="module")
def debian_storage_conf() -> str:
    return _from_deb("containers-storage", DEBIAN_STORAGE_CONF)




def machine(tmp_path: Path, mounts: list[tuple[str, str, str]], dirs: tuple[str, ...] = ()) -> Path:
    """A live root (see test_host_cli.live_root) whose mount table is ``mounts`` and with ``dirs`` created."""
    root = live_root(tmp_path)
    lines = [f"{20 + i} 1 0:{20 + i} / {point} rw,relatime - {fstype} {source} rw" for i, (point, fstype, source) in enumerate(mounts)]
    (root / "proc/self/mountinfo").write_text("\n".join(lines) + "\n")
    for directory in dirs:
        (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return root


def host(root: Path, *args: str) -> tuple[int, dict[str, dict]]:
    result = CliRunner().invoke(main, ["--root", str(root), "--format", "json", *args], catch_exceptions=False)
    findings = {f["check"]: f for f in json.loads(result.stdout)["findings"] if f["section"] == "host"}
    return result.exit_code, findings


# --- podman ----------------------------------------------------------------------


def test_podman_default_graphroot_on_xfs_without_ftype_fails(tmp_path, debian_storage_conf):
    """Debian's storage.conf: overlay in /var/lib/containers/storage; an XFS made with ftype=0 there cannot hold it."""
    root = machine(tmp_path, [("/", "ext4", "/dev/sda1"), ("/var/lib/containers", "xfs", "/dev/sdb1")],
                   dirs=("/var/lib/containers/storage", "/dev"))
    put(root, DEBIAN_STORAGE_CONF, debian_storage_conf)
    (root / "dev/sdb1").write_bytes(xfs_superblock(5, False) + b"\0" * 4096)
    _, found = host(root, "--runtime", "podman")
    assert found["data-root"]["reason"] == "podman's graphroot /var/lib/containers/storage is on xfs"
    assert found["data-root"]["detail"].startswith("containers/storage's default; from mountinfo")
    assert found["backing-fs"]["status"] == "fail"
    assert found["backing-fs"]["reason"] == "overlay on xfs needs ftype=1 (d_type), and this filesystem was made with ftype=0"
    (root / "dev/sdb1").write_bytes(xfs_superblock(5, True) + b"\0" * 4096)
    assert host(root, "--runtime", "podman")[1]["backing-fs"]["status"] == "ok"
    assert "the backing filesystem of its data root is not checked" not in json.dumps(found)


def test_podman_inside_a_container_needs_fuse_overlayfs(tmp_path, debian_storage_conf):
    """overlay over overlay fails (containers/storage: "a mount_program is required"); with fuse-overlayfs no rule applies."""
    root = machine(tmp_path, [("/", "overlay", "overlay")], dirs=("/var/lib/containers/storage",))
    put(root, DEBIAN_STORAGE_CONF, debian_storage_conf)
    status, found = host(root, "--runtime", "podman")
    assert status == 1 and found["backing-fs"]["status"] == "fail"
    assert found["backing-fs"]["reason"].startswith("overlay cannot run with its data root on overlay")
    assert "graphroot under [storage] in /usr/share/containers/storage.conf" in found["backing-fs"]["fix"]
    edited = debian_storage_conf.replace('#mount_program = "/usr/bin/fuse-overlayfs"', 'mount_program = "/usr/bin/fuse-overlayfs"')
    put(root, "/etc/containers/storage.conf", edited)
    _, found = host(root, "--runtime", "podman")
    assert found["podman-settings"]["reason"] == "podman: storage driver fuse-overlayfs"
    assert "backing-fs" not in found and found["data-root"]["actual"] == "overlay"


def test_podman_btrfs_follows_graphroot_from_a_drop_in(tmp_path, debian_storage_conf):
    root = machine(tmp_path, [("/", "ext4", "/dev/sda1"), ("/srv", "btrfs", "/dev/sdb")], dirs=("/srv",))
    put(root, DEBIAN_STORAGE_CONF, debian_storage_conf)
    put(root, "/etc/containers/storage.conf", '[storage]\ndriver = "btrfs"\n')
    _, found = host(root, "--runtime", "podman")
    assert found["backing-fs"]["status"] == "fail"
    assert found["backing-fs"]["reason"].startswith("btrfs needs podman's graphroot on btrfs, but /var/lib/containers/storage")
    put(root, "/etc/containers/storage.conf.d/50-graphroot.conf", '[storage]\ngraphroot = "/srv/containers"\n')
    _, found = host(root, "--runtime", "podman")
    assert found["backing-fs"]["status"] == "ok"
    assert found["data-root"]["reason"] == "podman's graphroot /srv/containers (not created yet; /srv) is on btrfs"
    assert found["data-root"]["detail"].startswith("graphroot in /etc/containers/storage.conf.d/50-graphroot.conf")


def test_rootless_podman_graphroot_under_home(tmp_path, monkeypatch, debian_storage_conf):
    """Rootless: $HOME/.local/share/containers/storage; an NFS home cannot hold overlay's upper layers."""
    root = machine(tmp_path, [("/", "ext4", "/dev/sda1"), ("/home", "nfs4", "server:/home")], dirs=("/home/u",))
    put(root, DEBIAN_STORAGE_CONF, debian_storage_conf)
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr("kcheck.runtimes.podman_rootless", lambda live: (True, "test: rootless"))
    _, found = host(root, "--runtime", "podman")
    assert found["data-root"]["reason"] == ("rootless podman's graphroot /home/u/.local/share/containers/storage "
                                            "(not created yet; /home/u) is on nfs4")
    assert found["backing-fs"]["status"] == "fail"


def test_driver_given_and_storage_conf_choosing_another_warns(tmp_path):
    root = machine(tmp_path, [("/", "btrfs", "/dev/sda1")], dirs=("/var/lib",))
    put(root, "/etc/containers/storage.conf", '[storage]\ndriver = "vfs"\n')
    _, found = host(root, "--runtime", "podman", "--driver", "btrfs")
    assert found["podman-driver"]["status"] == "warn"
    assert found["podman-driver"]["reason"] == "/etc/containers/storage.conf selects storage driver vfs, not btrfs"
    assert found["backing-fs"]["status"] == "ok"


@pytest.mark.parametrize(("runtime", "path", "text"), [
    ("podman", "/etc/containers/storage.conf", '[storage\ndriver = "btrfs"\n'),
    ("containerd", "/etc/containerd/config.toml", "version = 3\n[plugins\n"),
])
def test_broken_settings_with_driver_given_are_one_finding(tmp_path, runtime, path, text):
    """--driver given: the broken file is not an exit 2 but one failing host finding that names it."""
    root = machine(tmp_path, [("/", "ext4", "/dev/sda1")], dirs=("/var/lib",))
    put(root, path, text)
    driver = "btrfs"
    result = CliRunner().invoke(main, ["--root", str(root), "--runtime", runtime, "--driver", driver])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "not valid TOML" in line]
    assert len(lines) == 1 and lines[0].lstrip().startswith("FAIL") and f"{root}{path}" in lines[0]
    assert "backing-fs" not in host(root, "--runtime", runtime, "--driver", driver)[1]


# --- containerd ------------------------------------------------------------------


def test_containerd_debian_config_checks_the_overlayfs_plugin_root(tmp_path, debian_containerd_toml):
    root = machine(tmp_path, [("/", "ext4", "/dev/sda1"), ("/var/lib/containerd", "overlay", "overlay")],
                   dirs=("/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs",))
    put(root, "/etc/containerd/config.toml", debian_containerd_toml)
    _, found = host(root, "--runtime", "containerd")
    assert found["data-root"]["reason"] == ("containerd's overlayfs snapshotter root "
                                            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs is on overlay")
    assert found["backing-fs"]["status"] == "fail"
    assert found["backing-fs"]["reason"].startswith("overlayfs cannot run with its data root on overlay")
    assert 'root_path under [plugins."io.containerd.snapshotter.v1.overlayfs"]' in found["backing-fs"]["fix"]


@pytest.mark.parametrize(("driver", "fstype", "status"), [("btrfs", "btrfs", "ok"), ("btrfs", "xfs", "fail"),
                                                          ("zfs", "zfs", "ok"), ("zfs", "ext4", "fail")])
def test_containerd_snapshotter_root_path(tmp_path, driver, fstype, status):
    """A snapshotter's own root_path decides; under containerd's root it would be elsewhere."""
    root = machine(tmp_path, [("/", "ext4", "/dev/sda1"), ("/srv/layers", fstype, "/dev/sdb")], dirs=("/srv/layers",))
    put(root, "/etc/containerd/config.toml",
        f"version = 3\nroot = '/srv/containerd'\n[plugins.'io.containerd.cri.v1.images']\nsnapshotter = '{driver}'\n"
        f"[plugins.'io.containerd.snapshotter.v1.{driver}']\nroot_path = '/srv/layers'\n")
    _, found = host(root, "--runtime", "containerd")
    assert found["backing-fs"]["status"] == status
    assert found["data-root"]["reason"] == f"containerd's {driver} snapshotter root /srv/layers is on {fstype}"
    put(root, "/etc/containerd/config.toml",
        f"version = 3\nroot = '/srv/containerd'\n[plugins.'io.containerd.cri.v1.images']\nsnapshotter = '{driver}'\n")
    _, found = host(root, "--runtime", "containerd")
    assert found["data-root"]["reason"].startswith(f"containerd's {driver} snapshotter root /srv/containerd/io.containerd.snapshotter.v1.{driver}")
    assert found["data-root"]["actual"] == "ext4"


def test_containerd_native_copies_and_devmapper_needs_a_pool(tmp_path):
    root = machine(tmp_path, [("/", "ext4", "/dev/sda1")], dirs=("/var/lib",))
    _, found = host(root, "--runtime", "containerd", "--driver", "native")
    assert found["vfs-space"]["reason"].startswith("every native layer is a full copy on /var/lib")
    put(root, "/etc/containerd/config.toml", "version = 2\n[plugins.'io.containerd.grpc.v1.cri'.containerd]\nsnapshotter = 'devmapper'\n")
    _, found = host(root, "--runtime", "containerd")
    assert found["devmapper-pool"]["status"] == "fail" and "pool_name is required" in found["devmapper-pool"]["reason"]
    put(root, "/etc/containerd/config.toml", "version = 2\n[plugins.'io.containerd.grpc.v1.cri'.containerd]\nsnapshotter = 'devmapper'\n"
                                             "[plugins.'io.containerd.snapshotter.v1.devmapper']\npool_name = 'containerd-pool'\n")
    _, found = host(root, "--runtime", "containerd")
    assert found["devmapper-pool"]["status"] == "ok" and found["devmapper-pool"]["actual"] == "containerd-pool"
    # --driver other than config.toml's: said, as for docker's daemon.json.
    _, found = host(root, "--runtime", "containerd", "--driver", "overlayfs")
    assert found["containerd-driver"]["status"] == "warn" and "selects snapshotter devmapper" in found["containerd-driver"]["reason"]
