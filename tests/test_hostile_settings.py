"""Hostile profiles and settings files (issue 12): no code named by a profile, no hang, no RecursionError traceback.

kcheck runs as root from emerge on files other users can write. A profile may
only name kcheck's own functions; daemon.json and the other settings files are
read bounded, and only when they are regular files; a document nested 100,000
levels deep is one line and exit status 2, in the emerge hook too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_host_cli import live_root

from kcheck import engine, profile
from kcheck.cli import main
from kcheck.errors import InputError, ProfileError
from kcheck.host.docker import load_daemon_json
from kcheck.portage.hook import hook_messages, storage_driver

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kconfigs"
GOOD = FIXTURES / "minimal-6.1-overlay2.config"
DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_TOML = "name = \"x\"\nfacts = " + "[" * 100_000 + "]" * 100_000 + "\n"


def kcheck(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (a hang becomes a test failure, not a stuck suite)."""
    return subprocess.run([sys.executable, "-m", "kcheck", *args], capture_output=True, text=True, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess[str], status: int, fragment: str) -> None:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert fragment in proc.stderr, proc.stderr


@pytest.mark.parametrize("name", [
    "os:system",                   # another module
    "kcheck.cli:main",             # kcheck's own, but re-runs the command line
    "kcheck.aufs",                 # a module, no function
    "kcheck.aufs:os.system",       # a dotted attribute reaching through a module
    "kcheck.nothere:f",            # a module that does not exist
    "kcheck.aufs:aufs_facts ",     # near miss
])
def test_profile_may_name_only_registered_functions(tmp_path, name):
    path = tmp_path / "p.toml"
    path.write_text(f'name = "x"\nfacts = ["{name}"]\n')
    with pytest.raises(ProfileError, match="not one of kcheck's own functions|kcheck.module:function"):
        profile.load_file(path)
    one_line(kcheck("-c", str(GOOD), "-d", "overlay2", "--profile", str(path)), 2, f"{path}:2:")


def test_engine_refuses_unregistered_names_even_from_code():
    with pytest.raises(ValueError):
        engine.resolve("kcheck.cli:main")
    assert engine.resolve("kcheck.firewall:firewall_facts").__name__ == "firewall_facts"


def test_every_registered_function_exists():
    for name in profile.CALLABLES:
        assert callable(engine.resolve(name)), name


def test_deeply_nested_profile_is_one_line(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text(DEEP_TOML)
    one_line(kcheck("-c", str(GOOD), "-d", "overlay2", "--profile", str(path)), 2, "nested too deeply")


def test_profile_that_is_a_fifo_is_refused(tmp_path):
    path = tmp_path / "fifo.toml"
    os.mkfifo(path)
    one_line(kcheck("-c", str(GOOD), "-d", "overlay2", "--profile", str(path), timeout=30), 2, "not a regular file")


def _daemon(tmp_path: Path, make) -> Path:
    root = live_root(tmp_path)
    path = root / "etc/docker/daemon.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    return root


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda p: p.write_text(DEEP_JSON), "nested too deeply"),
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
    (lambda p: p.write_bytes(b" " * (5 * 1024 * 1024) + b"{}"), "larger than 4 MiB"),
], ids=["nested", "fifo", "dev-zero", "huge"])
def test_hostile_daemon_json_is_one_line(tmp_path, make, fragment):
    root = _daemon(tmp_path, make)
    one_line(kcheck("--root", str(root), "-d", "overlay2", timeout=30), 2, fragment)
    with pytest.raises(InputError, match=fragment):
        load_daemon_json(root / "etc/docker/daemon.json")


@pytest.mark.parametrize("make", [lambda p: p.write_text(DEEP_JSON), lambda p: os.mkfifo(p)], ids=["nested", "fifo"])
def test_emerge_hook_survives_hostile_daemon_json(tmp_path, make):
    root = _daemon(tmp_path, make)
    driver, problem = storage_driver(root)
    assert driver == "overlay2" and problem and "assuming overlay2" in problem
    messages = hook_messages(phase="post_pkg_postinst", category="app-containers", pn="docker", root=root)
    assert messages and all(level in ("info", "warn", "error") for level, _ in messages)
    assert any("daemon.json" in text for _, text in messages)


def test_user_profile_named_docker_is_not_printed_twice(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('name = "docker"\n[[group]]\nrequirements = [ { symbol = "HZ_1000", reason = "latency" } ]\n')
    result = CliRunner().invoke(main, ["--no-host", "-c", str(GOOD), "-d", "overlay2", "--profile", str(path)])
    headings = [line.split(":")[0] for line in result.output.splitlines() if line and not line.startswith(" ")
                and ": " in line and " of " in line]
    assert headings.count("docker") == 1 and "docker (fleet.toml)" in headings, headings


RUNTIME_FILES = {
    "etc/containers/storage.conf": "from kcheck.runtimes import podman_storage as f",
    "etc/containers/containers.conf": "from kcheck.runtimes import podman_firewall_driver as f",
    "etc/containerd/config.toml": "from kcheck.runtimes import containerd_settings as f",
}


@pytest.mark.parametrize("make", [lambda p: os.mkfifo(p), lambda p: p.symlink_to("/dev/zero")], ids=["fifo", "dev-zero"])
@pytest.mark.parametrize("name", list(RUNTIME_FILES))
def test_hostile_runtime_settings_are_one_line(tmp_path, name, make):
    """podman's and containerd's files, as daemon.json: refused with one line, in a process that cannot hang the suite."""
    path = tmp_path / name
    path.parent.mkdir(parents=True)
    make(path)
    code = ("import sys\nfrom pathlib import Path\nfrom kcheck.errors import InputError\n" + RUNTIME_FILES[name] + "\n"
            "try:\n    f(Path(sys.argv[1]))\nexcept InputError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    assert len(proc.stdout.splitlines()) == 1 and str(path) in proc.stdout and "not a regular file" in proc.stdout
