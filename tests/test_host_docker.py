"""docker's daemon.json: storage settings, clear errors, the driver chosen when --driver is omitted."""

from __future__ import annotations

import pytest

from kcheck.errors import InputError
from kcheck.host import docker


def write(root, text: str):
    (root / "etc/docker").mkdir(parents=True, exist_ok=True)
    (root / "etc/docker/daemon.json").write_text(text)


def test_no_daemon_json_means_docker_defaults(tmp_path):
    settings = docker.read_settings(tmp_path)
    assert settings.path is None and settings.storage_driver is None
    assert settings.data_root == "/var/lib/docker"
    assert docker.default_driver(settings) == ("overlay2", "docker's default; no /etc/docker/daemon.json")


def test_storage_settings_are_read(tmp_path):
    write(tmp_path, '{"storage-driver": "devicemapper", "data-root": "/srv/docker",\n'
                    ' "storage-opts": ["dm.thinpooldev=/dev/mapper/thin", "dm.use_deferred_removal=true"], "debug": true}')
    settings = docker.read_settings(tmp_path)
    assert settings.storage_driver == "devicemapper" and settings.data_root == "/srv/docker"
    assert settings.option("dm.thinpooldev") == "/dev/mapper/thin"
    assert settings.option("dm.basesize") is None
    assert docker.default_driver(settings)[0] == "devicemapper"


def test_invalid_json_names_the_file_and_line(tmp_path):
    write(tmp_path, '{\n  "storage-driver": "btrfs",\n  "data-root": "/srv"\n  "debug": true\n}\n')
    with pytest.raises(InputError) as raised:
        docker.read_settings(tmp_path)
    assert f"{tmp_path}/etc/docker/daemon.json:4:" in raised.value.message
    assert raised.value.exit_status == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('["overlay2"]', "JSON object"),
        ('{"storage-driver": 2}', "storage-driver"),
        ('{"data-root": "var/lib/docker"}', "absolute path"),
        ('{"storage-opts": "dm.thinpooldev=/dev/x"}', "list"),
    ],
)
def test_wrong_shapes_are_input_errors(tmp_path, text, words):
    write(tmp_path, text)
    with pytest.raises(InputError, match=words):
        docker.read_settings(tmp_path)


def test_unknown_configured_driver_is_a_usage_error(tmp_path):
    write(tmp_path, '{"storage-driver": "windowsfilter"}')
    with pytest.raises(InputError, match="windowsfilter.*--driver"):
        docker.default_driver(docker.read_settings(tmp_path))


def confd(root, text: str):
    (root / "etc/conf.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/conf.d/docker").write_text(text)


def test_gentoo_docker_opts_are_read(tmp_path):
    confd(tmp_path, '# Gentoo\nDOCKER_OPTS=""\nDOCKER_OPTS="-s btrfs --data-root=\'/srv/my docker\' --storage-opt dm.basesize=20G"  # last wins\n')
    settings = docker.read_settings(tmp_path)
    assert settings.storage_driver == "btrfs" and settings.data_root == "/srv/my docker"
    assert settings.storage_opts == ("dm.basesize=20G",)
    assert settings.origin_of("storage-driver") == "/etc/conf.d/docker (DOCKER_OPTS)"
    assert docker.default_driver(settings) == ("btrfs", "storage-driver in /etc/conf.d/docker (DOCKER_OPTS)")
    assert settings.conflicts == ()


def test_flag_and_daemon_json_conflict(tmp_path):
    write(tmp_path, '{"storage-driver": "overlay2", "data-root": "/srv/docker"}')
    confd(tmp_path, 'DOCKER_OPTS="--storage-driver=btrfs"\n')
    settings = docker.read_settings(tmp_path)
    assert settings.conflicts == ("storage-driver",)
    assert settings.data_root == "/srv/docker" and settings.origin_of("data-root") == "/etc/docker/daemon.json"


def test_unbalanced_quotes_in_docker_opts(tmp_path):
    confd(tmp_path, 'DOCKER_OPTS="-s btrfs\n')
    with pytest.raises(InputError, match="conf.d/docker: DOCKER_OPTS cannot be parsed"):
        docker.read_settings(tmp_path)
