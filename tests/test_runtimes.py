"""podman and containerd: their settings files (Debian sid's own defaults as test data) and their checks."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import realkernel
from click.testing import CliRunner

from kcheck import runtimes
from kcheck.check import check_location, initial_facts, select_profiles
from kcheck.cli import main
from kcheck.errors import InputError
from kcheck.locate import KernelLocation
from kcheck.model import Status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kconfigs"
DEBIAN_6_12 = FIXTURES / "debian-6.12-amd64_none_amd64.config"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _from_deb(package: str, member: str) -> str:
    try:
        return realkernel.deb_member(package, member, newer=True)[1].decode()
    except realkernel.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def debian_storage_conf() -> str:
    """Debian sid's default storage.conf (podman's containers-storage dependency ships it, not podman's .deb)."""
    return _from_deb("containers-storage", "usr/share/containers/storage.conf")


@pytest.fixture(scope="module")
def debian_containers_conf() -> str:
    """Debian sid's default containers.conf (from golang-github-containers-common, which podman depends on)."""
    return _from_deb("golang-github-containers-common", "usr/share/containers/containers.conf")


@pytest.fixture(scope="module")
def debian_containerd_toml() -> str:
    """Debian sid's /etc/containerd/config.toml (containerd 2.1, still a version 2 file)."""
    return _from_deb("containerd", "etc/containerd/config.toml")


def put(root: Path, path: str, text: str) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def kernel_tree(root: Path, config: Path = DEBIAN_6_12) -> None:
    """A kernel tree at <root>/usr/src/linux, enough for the plain reader: Makefile, Kconfig, .config."""
    put(root, "/usr/src/linux/Makefile", "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    put(root, "/usr/src/linux/Kconfig", "")
    put(root, "/usr/src/linux/.config", config.read_text())


def test_podman_with_btrfs_in_storage_conf_checks_btrfs(tmp_path):
    """The issue's acceptance: --runtime podman --root R, R holding storage.conf with driver = "btrfs" and a tree."""
    put(tmp_path, "/etc/containers/storage.conf", '[storage]\ndriver = "btrfs"\n')
    kernel_tree(tmp_path)
    result = CliRunner().invoke(main, ["--runtime", "podman", "--root", str(tmp_path), "--no-kconfig"])
    assert "checking btrfs (driver = \"btrfs\" in /etc/containers/storage.conf)" in result.output
    assert re.search(r"^btrfs: 2 of 2 hold", result.output, re.M) and re.search(r"^podman: ", result.output, re.M)
    data = json.loads(run("--runtime", "podman", "--root", str(tmp_path), "--no-kconfig", "--format", "json").output)
    assert data["profiles"] == ["podman", "btrfs"]
    assert {f["check"] for f in data["findings"] if f["profile"] == "btrfs"} >= {"BTRFS_FS", "BTRFS_FS_POSIX_ACL"}


def test_debian_default_storage_conf_means_overlay(tmp_path, debian_storage_conf):
    put(tmp_path, "/usr/share/containers/storage.conf", debian_storage_conf)
    storage = runtimes.podman_storage(tmp_path)
    assert (storage.driver, storage.configured, storage.profile) == ("overlay", False, "overlay")
    assert storage.why == "/usr/share/containers/storage.conf names no driver: containers/storage tries overlay first"


def test_etc_storage_conf_wins_and_mount_program_means_fuse_overlayfs(tmp_path, debian_storage_conf):
    put(tmp_path, "/usr/share/containers/storage.conf", '[storage]\ndriver = "vfs"\n')
    # The same file with its commented examples switched on, as a user edits it.
    edited = debian_storage_conf.replace('# driver = "overlay"', 'driver = "overlay"')
    edited = edited.replace('#mount_program = "/usr/bin/fuse-overlayfs"', 'mount_program = "/usr/bin/fuse-overlayfs"')
    assert edited != debian_storage_conf
    put(tmp_path, "/etc/containers/storage.conf", edited)
    storage = runtimes.podman_storage(tmp_path)
    assert (storage.path, storage.profile) == ("/etc/containers/storage.conf", "fuse-overlayfs")
    assert "mount_program /usr/bin/fuse-overlayfs" in storage.why


def test_overlay2_is_containers_storage_alias_for_overlay(tmp_path):
    put(tmp_path, "/etc/containers/storage.conf", '[storage]\ndriver = "overlay2"\n')
    assert runtimes.podman_storage(tmp_path).profile == "overlay"


def test_rootless_reads_xdg_config_home_first(tmp_path):
    put(tmp_path, "/etc/containers/storage.conf", '[storage]\ndriver = "overlay"\n')
    put(tmp_path, "/home/u/.config/containers/storage.conf", '[storage]\ndriver = "vfs"\n')
    env = {"HOME": "/home/u"}
    assert runtimes.podman_storage(tmp_path, rootless=True, environ=env).driver == "vfs"
    assert runtimes.podman_storage(tmp_path, rootless=False, environ=env).driver == "overlay"
    # A relative XDG_CONFIG_HOME is ignored (XDG spec): HOME's .config is used.
    relative = {"HOME": "/home/u", "XDG_CONFIG_HOME": "cfg"}
    assert runtimes.podman_storage(tmp_path, rootless=True, environ=relative).driver == "vfs"


def test_debian_containers_conf_leaves_the_firewall_to_netavark(tmp_path, debian_containers_conf):
    put(tmp_path, "/usr/share/containers/containers.conf", debian_containers_conf)
    assert runtimes.podman_firewall_driver(tmp_path) == (None, "/usr/share/containers/containers.conf")
    chosen = debian_containers_conf.replace('#firewall_driver = ""', 'firewall_driver = "nftables"')
    put(tmp_path, "/etc/containers/containers.conf", chosen)
    assert runtimes.podman_firewall_driver(tmp_path) == ("nftables", "/etc/containers/containers.conf")


def _podman(config: Path, **facts) -> dict:
    report = check_location(KernelLocation(config, "test", None, None), select_profiles("overlay", runtime="podman"),
                            facts={**initial_facts("podman"), **facts})
    return {f.check: f for f in report.findings}


def _with_version(config: Path, tmp_path: Path, release: str, drop: tuple[str, ...] = ()) -> Path:
    text = re.sub(r"^# Linux/x86 \S+ Kernel Configuration$", f"# Linux/x86 {release} Kernel Configuration",
                  config.read_text(), count=1, flags=re.M)
    for symbol in drop:
        text = re.sub(rf"^CONFIG_{symbol}=.*$", f"# CONFIG_{symbol} is not set", text, flags=re.M)
    out = tmp_path / f"{release}-{'-'.join(drop)}.config"
    out.write_text(text)
    return out


def test_rootless_podman_needs_user_namespaces_and_fuse_before_5_11(tmp_path):
    old = _with_version(DEBIAN_6_12, tmp_path, "5.10.0", drop=("FUSE_FS", "USER_NS"))
    rootless = _podman(old, **{"podman-mode": "rootless"})
    assert rootless["USER_NS"].status is Status.FAIL and rootless["FUSE_FS"].status is Status.FAIL
    new = _with_version(DEBIAN_6_12, tmp_path, "5.11.0", drop=("FUSE_FS",))
    assert _podman(new, **{"podman-mode": "rootless"})["FUSE_FS"].status is Status.SKIP
    rootful = _podman(old, **{"podman-mode": "rootful"})
    assert "FUSE_FS" not in rootful and rootful["USER_NS"].status is Status.WARN


def test_podman_netavark_nftables_needs_the_inet_family(tmp_path):
    config = _with_version(DEBIAN_6_12, tmp_path, "6.12.0", drop=("NF_TABLES_INET",))
    found = _podman(config, firewall="nftables")
    assert found["NF_TABLES_INET"].status is Status.FAIL and "IP_NF_FILTER" not in found


def test_debian_containerd_config_is_version_2_without_a_snapshotter(tmp_path, debian_containerd_toml):
    put(tmp_path, "/etc/containerd/config.toml", debian_containerd_toml)
    settings = runtimes.containerd_settings(tmp_path)
    assert (settings.snapshotter, settings.version, settings.configured) == ("overlayfs", 2, False)
    with_snapshotter = debian_containerd_toml.replace(
        '[plugins."io.containerd.grpc.v1.cri".cni]',
        '[plugins."io.containerd.grpc.v1.cri".containerd]\n      snapshotter = "btrfs"\n    [plugins."io.containerd.grpc.v1.cri".cni]')
    put(tmp_path, "/etc/containerd/config.toml", with_snapshotter)
    assert runtimes.containerd_settings(tmp_path).snapshotter == "btrfs"


def test_containerd_2_version_3_layout(tmp_path):
    put(tmp_path, "/etc/containerd/config.toml",
        "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'zfs'\n")
    settings = runtimes.containerd_settings(tmp_path)
    assert (settings.snapshotter, settings.version) == ("zfs", 3)
    assert "config version 3" in settings.why
    # The default runtime's own snapshotter wins over the CRI-wide one.
    put(tmp_path, "/etc/containerd/config.toml",
        "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  snapshotter = 'zfs'\n"
        "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n  snapshotter = 'native'\n")
    assert runtimes.containerd_settings(tmp_path).snapshotter == "native"
    # A version 2 key in a version 3 file is not what containerd 2.x reads.
    put(tmp_path, "/etc/containerd/config.toml",
        'version = 3\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "btrfs"\n')
    assert runtimes.containerd_settings(tmp_path).snapshotter == "overlayfs"


def test_containerd_run_checks_the_snapshotter_and_the_kubernetes_spec(tmp_path):
    put(tmp_path, "/etc/containerd/config.toml", "version = 3\n[plugins.'io.containerd.cri.v1.images']\nsnapshotter = 'devmapper'\n")
    kernel_tree(tmp_path)
    data = json.loads(run("--runtime", "containerd", "--root", str(tmp_path), "--no-kconfig", "--format", "json").output)
    assert data["profiles"] == ["containerd", "devmapper"]
    by = {f["check"]: f for f in data["findings"]}
    assert by["NETFILTER_XT_MATCH_COMMENT"]["source"].startswith("kubernetes system-validators")
    assert by["DM_THIN_PROVISIONING"]["profile"] == "devmapper"
    assert "snapshotter = \"devmapper\"" in by["containerd-snapshotter"]["detail"]


@pytest.mark.parametrize("text", ["version = 3\n[plugins.'io.containerd.cri.v1.images']\nsnapshotter = 'stargz'\n",
                                  "version = 2\n[plugins\n"])
def test_containerd_unknown_or_broken_config_is_one_line(tmp_path, text):
    put(tmp_path, "/etc/containerd/config.toml", text)
    kernel_tree(tmp_path)
    result = CliRunner().invoke(main, ["--runtime", "containerd", "--root", str(tmp_path), "--no-kconfig"])
    assert result.exit_code == 2 and "config.toml" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_installed_runtime_is_detected(tmp_path):
    assert runtimes.detect_runtime(tmp_path)[0] == "docker"
    put(tmp_path, "/etc/containerd/config.toml", "version = 2\n")
    assert runtimes.detect_runtime(tmp_path) == ("containerd", "/etc/containerd/config.toml exists")
    podman = put(tmp_path, "/usr/bin/podman", "#!/bin/sh\n")
    podman.chmod(0o755)
    assert runtimes.detect_runtime(tmp_path) == ("podman", "/usr/bin/podman is installed")


def test_storage_conf_fifo_and_deep_nesting_are_refused(tmp_path):
    import os

    os.mkfifo(put(tmp_path, "/etc/containers/x", "").parent / "storage.conf")
    with pytest.raises(InputError, match="not a regular file"):
        runtimes.podman_storage(tmp_path)
    (tmp_path / "etc/containers/storage.conf").unlink()
    put(tmp_path, "/etc/containers/storage.conf", "a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(InputError, match="nested too deeply"):
        runtimes.podman_storage(tmp_path)


def test_rootless_podman_host_needs_the_id_mapping_helpers(tmp_path):
    from kcheck import host

    kernel_tree(tmp_path)
    location = KernelLocation(tmp_path / "usr/src/linux/.config", "test", tmp_path / "usr/src/linux", None, True)
    facts = {**initial_facts("podman"), "podman-mode": "rootless", "driver": "overlay"}
    report = check_location(location, select_profiles("overlay", runtime="podman"), root=tmp_path, host=True,
                            explicit=False, facts=facts)
    helpers = {f.check: f.status for f in report.findings if f.check.startswith("command:new")}
    assert helpers == {"command:newuidmap": Status.FAIL, "command:newgidmap": Status.FAIL}
    for name in ("newuidmap", "newgidmap"):
        put(tmp_path, f"/usr/bin/{name}", "#!/bin/sh\n").chmod(0o755)
    report = check_location(location, select_profiles("overlay", runtime="podman"), root=tmp_path, host=True,
                            explicit=False, facts=facts)
    assert {f.status for f in report.findings if f.check.startswith("command:new")} == {Status.OK}
    assert not any(f.check == "docker-settings" for f in report.findings)
    assert host.DRIVER_FILESYSTEM["overlay"][1] == "OVERLAY_FS"


def test_lint_takes_the_runtime_and_the_firewall():
    from kcheck.lint import lint

    config = str(FIXTURES / "debian-6.12-amd64_none_amd64.config")
    podman = CliRunner().invoke(lint, ["--runtime", "podman", "--driver", "overlay", "--firewall", "nftables", "--format", "json",
                                       config])
    data = json.loads(podman.stdout)
    assert podman.exit_code == 0, podman.output
    assert data["files"][0]["report"]["profiles"] == ["podman", "overlay"]
    docker = CliRunner().invoke(main, ["lint", "--driver", "overlay", config])
    assert docker.exit_code == 2 and "unknown driver 'overlay' for docker" in docker.output


@pytest.mark.realtree
def test_podman_btrfs_from_storage_conf_through_a_real_tree(tmp_path, linux_6_12, debian_configs_6_12, monkeypatch):
    """The same acceptance, Kconfig-aware: R/usr/src/linux is Debian's 6.12 tree, its .config in $KBUILD_OUTPUT."""
    put(tmp_path, "/etc/containers/storage.conf", '[storage]\ndriver = "btrfs"\n')
    (tmp_path / "usr/src").mkdir(parents=True)
    (tmp_path / "usr/src/linux").symlink_to(linux_6_12)
    build = tmp_path / "build"
    put(build, "/.config", debian_configs_6_12["amd64_none_amd64"].read_text())
    for var in realkernel.TOOLCHAIN_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KBUILD_OUTPUT", str(build))
    result = CliRunner().invoke(main, ["--runtime", "podman", "--root", str(tmp_path), "--format", "json"])
    data = json.loads(result.stdout)
    assert data["input"]["mode"] == "kconfig" and data["profiles"] == ["podman", "btrfs"]
    by = {f["check"]: f for f in data["findings"]}
    assert by["BTRFS_FS"]["status"] == "ok" and by["BTRFS_FS_POSIX_ACL"]["status"] == "ok"
    assert "storage.conf" in by["podman-driver"]["detail"]


# --- where the layers live: podman's graphroot, containerd's snapshotter root ---


def test_debian_storage_conf_means_the_default_graphroots(tmp_path, debian_storage_conf):
    """Debian's storage.conf sets no graphroot: /var/lib/containers/storage, or under the user's data home when rootless."""
    put(tmp_path, "/usr/share/containers/storage.conf", debian_storage_conf)
    rootful = runtimes.podman_storage(tmp_path, uid=0)
    assert (rootful.graphroot, rootful.graphroot_why) == ("/var/lib/containers/storage", "containers/storage's default")
    env = {"HOME": "/home/u"}
    assert runtimes.podman_storage(tmp_path, rootless=True, environ=env, uid=1000).graphroot == \
        "/home/u/.local/share/containers/storage"
    env["XDG_DATA_HOME"] = "/data/u"
    assert runtimes.podman_storage(tmp_path, rootless=True, environ=env, uid=1000).graphroot == "/data/u/containers/storage"
    assert runtimes.podman_storage(tmp_path, rootless=True, environ={}, uid=1000).graphroot is None


def test_graphroot_and_rootless_storage_path_as_a_user_edits_debians_file(tmp_path, debian_storage_conf):
    env = {"HOME": "/home/u", "USER": "u"}
    edited = debian_storage_conf.replace('# rootless_storage_path = "$HOME/.local/share/containers/storage"',
                                         'rootless_storage_path = "/var/lib/containers/user/$USER/$UID"')
    assert edited != debian_storage_conf
    put(tmp_path, "/etc/containers/storage.conf", edited)
    rootless = runtimes.podman_storage(tmp_path, rootless=True, environ=env, uid=1000)
    assert rootless.graphroot == "/var/lib/containers/user/u/1000"
    assert "rootless_storage_path in /etc/containers/storage.conf" in rootless.graphroot_why
    # rootless_storage_path is for rootless podman only.
    assert runtimes.podman_storage(tmp_path, environ=env, uid=0).graphroot == "/var/lib/containers/storage"
    # graphroot wins over the deprecated rootless_storage_path (containers-storage 1.64, podman 5.8).
    both = edited.replace('# graphroot = "/var/lib/containers/storage"', 'graphroot = "/srv/containers/${USER}"')
    assert both != edited
    put(tmp_path, "/etc/containers/storage.conf", both)
    assert runtimes.podman_storage(tmp_path, rootless=True, environ=env, uid=1000).graphroot == "/srv/containers/u"
    relative = both.replace('graphroot = "/srv/containers/${USER}"', 'graphroot = "${NOSUCHVAR}storage"')
    put(tmp_path, "/etc/containers/storage.conf", relative)
    storage = runtimes.podman_storage(tmp_path, environ=env, uid=0)
    assert storage.graphroot is None and "not an absolute path" in storage.graphroot_why


def test_storage_conf_drop_ins_follow_the_main_file_in_name_order(tmp_path, debian_storage_conf):
    put(tmp_path, "/usr/share/containers/storage.conf", debian_storage_conf)
    put(tmp_path, "/usr/share/containers/storage.conf.d/10-driver.conf", '[storage]\ndriver = "vfs"\n')
    put(tmp_path, "/etc/containers/storage.conf.d/20-root.conf", '[storage]\ngraphroot = "/srv/podman"\n')
    storage = runtimes.podman_storage(tmp_path, uid=0)
    assert (storage.driver, storage.path, storage.graphroot) == ("vfs", "/usr/share/containers/storage.conf.d/10-driver.conf",
                                                                  "/srv/podman")
    assert storage.files == ("/usr/share/containers/storage.conf", "/usr/share/containers/storage.conf.d/10-driver.conf",
                             "/etc/containers/storage.conf.d/20-root.conf")
    # /etc's file of the same name replaces the vendor's; the rootful and rootless directories are read by their mode only.
    put(tmp_path, "/etc/containers/storage.conf.d/10-driver.conf", '[storage]\ndriver = "btrfs"\n')
    put(tmp_path, "/etc/containers/storage.rootless.conf.d/1000/30-user.conf", '[storage]\ndriver = "overlay"\n')
    put(tmp_path, "/etc/containers/storage.rootful.conf.d/30-root.conf", '[storage]\ndriver = "zfs"\n')
    assert runtimes.podman_storage(tmp_path, uid=0).driver == "zfs"
    assert runtimes.podman_storage(tmp_path, rootless=True, environ={"HOME": "/home/u"}, uid=1000).driver == "overlay"
    assert runtimes.podman_storage(tmp_path, rootless=True, environ={"HOME": "/home/u"}, uid=1001).driver == "btrfs"
    # A symlink is not a drop-in (containers/storage reads regular files only).
    (tmp_path / "etc/containers/storage.rootful.conf.d/30-root.conf").unlink()
    (tmp_path / "etc/containers/storage.rootful.conf.d/40-link.conf").symlink_to(tmp_path / "etc/containers/storage.conf.d/10-driver.conf")
    assert runtimes.podman_storage(tmp_path, uid=0).driver == "btrfs"
    assert "40-link.conf" not in " ".join(runtimes.podman_storage(tmp_path, uid=0).files)


def test_too_many_drop_ins_is_one_line(tmp_path):
    for n in range(runtimes.MAX_DROP_INS + 1):
        put(tmp_path, f"/etc/containers/storage.conf.d/{n:03}.conf", "")
    with pytest.raises(InputError, match="more than 64 storage.conf drop-in files"):
        runtimes.podman_storage(tmp_path, uid=0)


def test_debian_containerd_config_keeps_layers_under_var_lib_containerd(tmp_path, debian_containerd_toml):
    put(tmp_path, "/etc/containerd/config.toml", debian_containerd_toml)
    settings = runtimes.containerd_settings(tmp_path)
    assert settings.root == "/var/lib/containerd"
    assert settings.snapshotter_root == "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"
    # --driver's snapshotter has its own plugin root; a version 2 file names it by its full plugin ID.
    moved = debian_containerd_toml.replace('[plugins."io.containerd.internal.v1.opt"]',
                                           '[plugins."io.containerd.snapshotter.v1.btrfs"]\n    root_path = "/srv/btrfs"\n'
                                           '  [plugins."io.containerd.internal.v1.opt"]')
    put(tmp_path, "/etc/containerd/config.toml", 'root = "/srv/containerd"\n' + moved)
    assert runtimes.containerd_settings(tmp_path).snapshotter_root == "/srv/containerd/io.containerd.snapshotter.v1.overlayfs"
    btrfs = runtimes.containerd_settings(tmp_path, "btrfs")
    assert (btrfs.snapshotter_root, btrfs.configured) == ("/srv/btrfs", False)
    assert btrfs.snapshotter_root_why == 'root_path under [plugins."io.containerd.snapshotter.v1.btrfs"] in /etc/containerd/config.toml'


@pytest.fixture(scope="module")
def containerd_default_config(tmp_path_factory) -> str:
    """What Debian sid's containerd 2.x prints for 'containerd config default' (a version 3 file), run from its .deb."""
    try:
        deb, data = realkernel.deb_member("containerd", "usr/bin/containerd", newer=True)
    except realkernel.Unavailable as exc:
        pytest.skip(str(exc))
    binary = tmp_path_factory.mktemp("containerd") / "containerd"
    binary.write_bytes(data)
    binary.chmod(0o755)
    try:
        proc = subprocess.run([str(binary), "config", "default"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        pytest.skip(f"containerd from {deb.name} does not run here ({exc})")
    if proc.returncode != 0:
        pytest.skip(f"containerd config default failed: {proc.stderr.strip()[:200]}")
    return proc.stdout


def test_containerd_default_config_version_3(tmp_path, containerd_default_config):
    """containerd's own default: root /var/lib/containerd, overlayfs, and an empty root_path in every snapshotter's table."""
    put(tmp_path, "/etc/containerd/config.toml", containerd_default_config)
    settings = runtimes.containerd_settings(tmp_path)
    assert (settings.version, settings.snapshotter, settings.configured, settings.root) == (3, "overlayfs", True, "/var/lib/containerd")
    assert settings.snapshotter_root == "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"
    assert dict(settings.plugin) == {"root_path": ""}
    moved = containerd_default_config.replace(
        "[plugins.'io.containerd.snapshotter.v1.overlayfs']\n    root_path = ''",
        "[plugins.'io.containerd.snapshotter.v1.overlayfs']\n    root_path = '/srv/overlayfs'")
    assert moved != containerd_default_config
    put(tmp_path, "/etc/containerd/config.toml", moved)
    assert runtimes.containerd_settings(tmp_path).snapshotter_root == "/srv/overlayfs"
    assert runtimes.containerd_settings(tmp_path, "native").snapshotter_root == "/var/lib/containerd/io.containerd.snapshotter.v1.native"


@pytest.mark.parametrize("text", ['root = "var/lib/containerd"\n', "version = 2\n[plugins.'io.containerd.snapshotter.v1.overlayfs']\nroot_path = 3\n"])
def test_containerd_root_must_be_an_absolute_path(tmp_path, text):
    put(tmp_path, "/etc/containerd/config.toml", text)
    with pytest.raises(InputError, match="absolute path"):
        runtimes.containerd_settings(tmp_path)
