"""A real ``emerge`` with the kcheck hook, in Portage's own test playground.

The playground and ``bin/emerge`` run from the portage sdist (the wheel in
the venv lacks them), downloaded once with pip into the suite's cache and
extracted under a file lock, since other test runs may share the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
import realkernel

PORTAGE_VERSION = "3.0.83"
HERE = Path(__file__).parent
REPO = HERE.parent.parent
#: Tools the playground links into its prefix (ResolverPlayground's list) or the test ebuild runs,
#: and the Debian package that has each.
TOOLS = {
    "bash": "bash",
    "patch": "patch",
    "tar": "tar",
    "zstd": "zstd",
    "bzip2": "bzip2",
    "flock": "util-linux",
    "find": "findutils",
    "xargs": "findutils",
    "mkfifo": "coreutils",
}


@pytest.fixture(scope="session")
def portage_sdist() -> Path:
    """``lib`` of the portage sdist, downloaded and extracted once per cache."""
    base = realkernel.cache_root() / "portage-sdist"
    base.mkdir(parents=True, exist_ok=True)
    lib = base / f"portage-{PORTAGE_VERSION}" / "lib"
    with realkernel.locked("portage-sdist"):
        if not (lib / "portage" / "tests" / "resolver" / "ResolverPlayground.py").is_file():
            archive = base / f"portage-{PORTAGE_VERSION}.tar.gz"
            if not archive.is_file():
                # Only portage itself must come as source; its build backend may use wheels
                # (":all:" would also force meson-python's own build dependencies to build from source).
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--no-binary",
                        "portage",
                        "--no-deps",
                        f"portage=={PORTAGE_VERSION}",
                        "-d",
                        str(base),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            with tempfile.TemporaryDirectory(dir=base) as tmp:
                with tarfile.open(archive) as tar:
                    # The "data" filter (refuse links and paths out of tmp) exists from 3.11.4 on.
                    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                    tar.extractall(tmp, **safe)
                shutil.rmtree(base / f"portage-{PORTAGE_VERSION}", ignore_errors=True)
                os.rename(Path(tmp) / f"portage-{PORTAGE_VERSION}", base / f"portage-{PORTAGE_VERSION}")
    return lib


@pytest.fixture(scope="session")
def tool_path(tmp_path_factory) -> str:
    """PATH for the playground, which also wants GNU tar under the name ``gtar``.

    As root on a Debian-like host (CI), missing tools are installed with
    apt-get as the suite's own setup; elsewhere the test skips naming them.
    """
    missing = realkernel.install_tools(TOOLS)
    if missing:
        pytest.skip(f"the Portage playground needs {', '.join(missing)}; install them")
    bindir = tmp_path_factory.mktemp("bin")
    if shutil.which("gtar") is None:
        (bindir / "gtar").symlink_to(shutil.which("tar"))
    return f"{bindir}:{os.environ['PATH']}"


@pytest.mark.slow
def test_emerge_with_the_hook(portage_sdist, tool_path):
    """Four real merges with the snippet in bashrc (steps in emerge_playground.py).

    aufs3 patches the tree -> the warning is in emerge's summary; after a
    rebuild the check is content; a binary re-merge is silent; re-merged
    kernel sources drop the patch -> the hook says so and how to fix it.
    """
    kcheck = Path(sys.executable).with_name("kcheck")
    # tests/ on the path too: the root builder writes its kernel files with tests/kernel_files.py.
    pythonpath = os.pathsep.join([str(portage_sdist), str(HERE.parent)])
    env = {**os.environ, "PATH": tool_path, "PYTHONPATH": pythonpath, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, str(HERE / "emerge_playground.py"), str(kcheck)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    output = result["emerge_output"]
    assert result["emerge_rc"] == 0, output[-4000:]
    assert result["prfile"], "the test ebuild did not patch the tree"

    # The warning is in emerge's final summary, not only in the scrolling build output.
    summary = output[output.index("Messages for package sys-fs/aufs3-3_p20160219") :]
    assert "kcheck: this merge patched " in summary
    assert "was patched for aufs but not rebuilt since: mm/prfile.o is missing" in summary
    assert "Module.symvers lacks 25 of the patch's exports (__mnt_drop_write, alloc_empty_file, d_exchange, d_walk, ...)" in summary
    assert "(sys-fs/aufs3-3_p20160219 was merged after the last kernel build; commands aimed at " in summary
    # The playground's EROOT is not this machine's root: the commands install under it.
    assert "modules_install && make INSTALL_PATH=" in summary and " --oneshot @module-rebuild" in summary
    assert "kcheck: do not reboot yet" in summary

    # The merge's record, written by emerge, read back through Portage's API.
    [installed] = result["installed"]
    assert installed["cpv"] == "sys-fs/aufs3-3_p20160219" and "kernel-patch" in installed["use"]
    assert installed["counter"] > 100  # the playground's counter starts at 100

    # After the (simulated) rebuild, install and @module-rebuild, the same check is content.
    assert result["second_check"].splitlines() == [
        "info safe to reboot: nothing is left to do for aufs in the kernel tree"
    ]

    # A binary merge patches nothing and the hook stays silent (the bash filter starts no kcheck).
    assert result["binary_rc"] == 0, result["binary_output"][-4000:]
    assert "Emerging binary (1 of 1) sys-fs/aufs3-3_p20160219" in result["binary_output"]
    assert "kcheck:" not in result["binary_output"]
    assert not result["binary_touched_tree"]
    assert result["snapshots_left"] == []
    assert result["third_check"] == result["second_check"]

    # Kernel sources merged before any aufs: the hook has nothing to say.
    assert result["first_sources_rc"] == 0, result["first_sources_output"][-4000:]
    assert "kcheck:" not in result["first_sources_output"]

    # The sources re-merged over the patched tree: the patch is gone, and the hook says so.
    assert result["sources_rc"] == 0, result["sources_output"][-4000:]
    out = result["sources_output"]
    summary = out[out.index("Messages for package sys-kernel/gentoo-sources-6.1.67") :]
    assert "kcheck: this merge removed the aufs patch from " in summary
    assert (
        "kcheck: sys-kernel/gentoo-sources-6.1.67 was merged after sys-fs/aufs3-3_p20160219 and replaced the patched files"
        in summary
    )
    assert "mm/prfile.c is there but none of the 25 exports of the standalone patch" in summary
    assert " --oneshot sys-fs/aufs3 && cd " in summary
    # The running (or installed) kernel keeps its patch: the danger is the next build, not the reboot.
    assert "kcheck: do not build a kernel from " in summary and "do not reboot" not in summary
