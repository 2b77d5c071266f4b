"""Real Debian kernel trees and configs for the test suite, downloaded once and cached.

The suite's ground truth is the kernel itself: Debian's ``linux-source-X`` (a
whole source tree) and ``linux-config-X`` (the configs Debian builds with),
fetched with ``apt-get download`` and unpacked under a cache directory the
suite owns:

- ``$KCHECK_TEST_CACHE`` when set (helpers and CI share one download), else
  ``<repo>/.cache/tests``.

Unpacking happens under an ``fcntl`` lock with a completion marker, so
concurrent test runs wait for each other instead of reading a half-written
tree, and a run that died mid-way is redone. The whole tree is unpacked (not
only the Kconfig files): the oracle, ``make olddefconfig``, runs scripts and
``$(shell,...)`` probes from all over the tree, and exactness matters more
than disk space.

:func:`make_config` runs the kernel's own ``make <target>`` with ``O=`` so the
cached source tree is never modified.
"""

from __future__ import annotations

import contextlib
import fcntl
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

#: Kernel series the suite tests against from the machine's own suites (Debian bookworm /
#: bookworm-security).
SERIES = ("6.1", "6.12")
#: Current kernels, from Debian's newer suites through a private apt state (see :func:`deb_file`).
NEW_SERIES = ("7.2", "7.3")
#: Every series the suite knows.
ALL_SERIES = SERIES + NEW_SERIES
#: Debian's amd64 flavours of the 6.x series; each ships a config in linux-config-X.
FLAVOURS = ("amd64_none_amd64", "amd64_none_cloud-amd64", "amd64_rt_amd64")
#: The 7.x packages spell the real-time flavour differently.
FLAVOURS_7 = ("amd64_none_amd64", "amd64_none_cloud-amd64", "amd64_none_rt-amd64")
#: Suites the private apt state reads (newer kernels, docker.io, podman, containerd).
NEWER_SUITES = ("sid", "trixie-backports")
#: Debian's archive key, which signs the newer suites too.
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def flavours(series: str) -> tuple[str, ...]:
    """Return the amd64 flavour names Debian's ``linux-config-<series>`` ships."""
    return FLAVOURS_7 if series.split(".")[0] >= "7" else FLAVOURS
#: The architecture the oracle and kcheck evaluate for.
ARCH = "x86_64"

REPO = Path(__file__).resolve().parent.parent

#: Variables that change what Kconfig computes; the oracle runs without them
#: so a developer's shell (CC=clang, LLVM=1, ...) cannot skew a comparison.
TOOLCHAIN_VARS = (
    "ARCH", "SRCARCH", "CROSS_COMPILE", "LLVM", "LLVM_IAS", "CC", "LD", "HOSTCC", "HOSTCXX",
    "HOSTLD", "AR", "NM", "OBJCOPY", "OBJDUMP", "READELF", "STRIP", "RUSTC", "BINDGEN",
    "PAHOLE", "CC_VERSION_TEXT", "RUSTC_VERSION_TEXT", "KERNELVERSION", "srctree", "objtree",
    "KCONFIG_CONFIG", "KCONFIG_ALLCONFIG", "KCONFIG_DEFCONFIG_LIST", "KBUILD_DEFCONFIG",
    "HOSTPKG_CONFIG", "KBUILD_OUTPUT", "O",
)


#: Measured sizes per kernel series: the linux-source .deb (MB) and its unpacked tree (GB).
#: The linux-config .deb adds about 1 MB a series.
SERIES_SIZES = {"6.1": (139, 1.5), "6.12": (153, 1.7), "7.2": (164, 1.8), "7.3": (167, 1.8)}
#: The container packages the oracles read (docker.io, podman, containerd...) and apt's lists, MB.
OTHER_DOWNLOADS_MB = 140


def notify(message: str) -> None:
    """Tell the person running the suite what is being downloaded (conftest routes it past pytest's capture)."""
    print(message, flush=True)


def cache_summary() -> str:
    """One line: where the downloads live, and what the first run fetches and how big it is."""
    root = cache_root()
    missing = [s for s in ALL_SERIES if not (root / f"linux-source-{s}.complete").exists()]
    where = f"kcheck tests: Debian packages cached in {root} (KCHECK_TEST_CACHE moves it)"
    if not missing:
        total = sum(gb for _, gb in SERIES_SIZES.values())
        return f"{where}; kernel trees {', '.join(ALL_SERIES)} present (about {total:.0f} GB)"
    download = sum(SERIES_SIZES[s][0] + 1 for s in missing) + OTHER_DOWNLOADS_MB
    unpacked = sum(SERIES_SIZES[s][1] for s in missing)
    return (f"{where}; the tests that need them download about {download} MB once (linux-source and "
            f"linux-config {', '.join(missing)}, container packages) and unpack about {unpacked:.1f} GB")


class Unavailable(Exception):
    """A real tree or a tool the oracle needs cannot be had here (tests skip)."""


def cache_root() -> Path:
    """Return the suite's download cache (created on first use)."""
    root = Path(os.environ.get("KCHECK_TEST_CACHE") or REPO / ".cache" / "tests")
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold an exclusive lock named ``name`` in the cache, across processes."""
    lockdir = cache_root() / "locks"
    lockdir.mkdir(exist_ok=True)
    with open(lockdir / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def machine_mirror() -> str:
    """Return the Debian mirror this machine's apt already uses (its main archive's URI)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for line in path.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "URIs":
                for uri in value.split():
                    if not uri.rstrip("/").endswith("-security"):
                        return uri.rstrip("/")
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text(errors="replace").splitlines():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and not words[2].endswith("-security"):
                return words[1].rstrip("/")
    raise Unavailable("no Debian mirror found in /etc/apt/sources.list.d/*.sources")


def private_apt_options() -> list[str]:
    """Return apt options for a private apt state that reads Debian's newer suites.

    The state (sources list, package lists, apt's cache) lives under the suite's
    cache; the machine's own apt setup is never touched. The lists are fetched
    once (``apt-get update`` under a lock) and reused.
    """
    state = cache_root() / "apt-newer"
    options = [
        "-o", f"Dir::Etc::SourceList={state / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={state / 'lists'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        "-o", "APT::Sandbox::User=root",
    ]
    with locked("apt-newer"):
        marker = state / "lists.complete"
        if not marker.exists():
            (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
            (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
            mirror = machine_mirror()
            (state / "sources.list").write_text("".join(
                f"deb [signed-by={DEBIAN_KEYRING}] {mirror} {suite} main\n" for suite in NEWER_SUITES
            ))
            notify(f"kcheck tests: fetching package lists of {', '.join(NEWER_SUITES)} "
                   f"(about 12 MB, once)")
            proc = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True)
            if proc.returncode != 0:
                raise Unavailable(f"apt-get update of {', '.join(NEWER_SUITES)} failed: {proc.stderr.strip()}")
            marker.write_text("ok\n")
    return options


def _download(package: str, debdir: Path, options: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``apt-get download package`` into ``debdir`` with extra apt ``options``."""
    return subprocess.run(
        ["apt-get", *options, "download", package], cwd=debdir, capture_output=True, text=True
    )


def deb_file(package: str, *, newer: bool = False) -> Path:
    """Return the cached .deb of ``package``, downloading it with apt-get when absent.

    ``newer`` takes the package from Debian's newer suites (sid,
    trixie-backports) through :func:`private_apt_options` instead of the
    machine's own suites.
    """
    if shutil.which("apt-get") is None:
        raise Unavailable(f"apt-get is not available to download {package}")
    debdir = cache_root() / ("debs-newer" if newer else "debs")
    debdir.mkdir(exist_ok=True)
    with locked(f"deb-{package}"):
        found = sorted(debdir.glob(f"{package}_*.deb"))
        if not found:
            options = private_apt_options() if newer else []
            notify(f"kcheck tests: downloading {package} with apt-get (once)")
            proc = _download(package, debdir, options)
            if proc.returncode != 0 and not newer and os.geteuid() == 0:
                # A fresh CI image has no package lists yet: fetch them once and retry.
                with locked("apt-get"):
                    subprocess.run(["apt-get", "update"], capture_output=True)
                proc = _download(package, debdir, options)
            found = sorted(debdir.glob(f"{package}_*.deb"))
            if proc.returncode != 0 or not found:
                raise Unavailable(f"apt-get download {package} failed: {proc.stderr.strip()}")
            notify(f"kcheck tests: {found[-1].name}, {found[-1].stat().st_size / 1e6:.0f} MB")
        return found[-1]


def _deb_member(deb: Path, member: str) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Yield the data tarball of ``deb`` and the member whose path ends with ``member``."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for info in tar:
                if info.isfile() and info.name.endswith(member):
                    yield tar, info
    finally:
        proc.stdout.close()
        proc.wait()


def deb_member(package: str, member: str, *, newer: bool = False) -> tuple[Path, bytes]:
    """The cached ``.deb`` of ``package`` and the bytes of its file whose path ends with ``member``."""
    deb = deb_file(package, newer=newer)
    for tar, info in _deb_member(deb, member):
        return deb, tar.extractfile(info).read()  # type: ignore[union-attr]
    raise AssertionError(f"{deb.name} has no {member}")


def source_tree(series: str) -> Path:
    """Return the unpacked Debian ``linux-source-<series>`` tree (unpacked once)."""
    root = cache_root()
    tree = root / f"linux-source-{series}"
    marker = root / f"linux-source-{series}.complete"
    if marker.exists():
        return tree
    deb = deb_file(f"linux-source-{series}", newer=series in NEW_SERIES)
    with locked(f"tree-{series}"):
        if marker.exists():
            return tree
        if tree.exists():
            shutil.rmtree(tree)  # a run died mid-way; start over
        with tempfile.TemporaryDirectory(dir=root, prefix=f".unpack-{series}-") as tmp:
            _unpack_source(deb, f"./usr/src/linux-source-{series}.tar.xz", Path(tmp))
            unpacked = Path(tmp) / f"linux-source-{series}"
            if not (unpacked / "Makefile").is_file():
                raise Unavailable(f"{deb.name} holds no linux-source-{series} tree")
            unpacked.rename(tree)
        marker.write_text(deb.name + "\n")
    return tree


def _unpack_source(deb: Path, member: str, dest: Path) -> None:
    """Unpack the tarball ``member`` of ``deb`` into ``dest`` (dpkg-deb | tar | tar, streamed)."""
    fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    inner = subprocess.Popen(["tar", "-xOf", "-", member], stdin=fsys.stdout, stdout=subprocess.PIPE)
    assert fsys.stdout is not None and inner.stdout is not None
    fsys.stdout.close()  # so dpkg-deb sees SIGPIPE if tar stops early
    outer = subprocess.run(["tar", "-xJf", "-", "-C", str(dest)], stdin=inner.stdout)
    inner.stdout.close()
    if (fsys.wait(), inner.wait(), outer.returncode) != (0, 0, 0):
        raise Unavailable(f"could not unpack {member} from {deb.name}")


def debian_configs(series: str) -> dict[str, Path]:
    """Return flavour -> decompressed Debian amd64 config of ``series``."""
    root = cache_root()
    outdir = root / f"linux-config-{series}"
    marker = root / f"linux-config-{series}.complete"
    if not marker.exists():
        deb = deb_file(f"linux-config-{series}", newer=series in NEW_SERIES)
        with locked(f"config-{series}"):
            if not marker.exists():
                outdir.mkdir(exist_ok=True)
                for tar, info in _deb_member(deb, ".xz"):
                    name = Path(info.name).name.removesuffix(".xz").removeprefix("config.")
                    if name in flavours(series):
                        data = lzma.decompress(tar.extractfile(info).read())  # type: ignore[union-attr]
                        (outdir / f"{name}.config").write_bytes(data)
                marker.write_text(deb.name + "\n")
    configs = {flavour: outdir / f"{flavour}.config" for flavour in flavours(series)}
    missing = [f for f, p in configs.items() if not p.is_file()]
    if missing:
        raise Unavailable(f"linux-config-{series} lacks flavours {missing}")
    return configs


def install_tools(tools: Mapping[str, str]) -> list[str]:
    """Install the missing commands of ``tools`` (command -> Debian package); return those still missing.

    As root on a Debian-like host (CI) this is the suite's own setup, done with
    apt-get under a lock (refreshing the package lists once if an install
    fails); elsewhere nothing is installed and the caller skips, naming them.
    """
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        with locked("apt-get"):
            install = ["apt-get", "install", "-y", "--no-install-recommends", *sorted({tools[t] for t in missing})]
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            if subprocess.run(install, env=env, capture_output=True).returncode != 0:
                subprocess.run(["apt-get", "update"], env=env, capture_output=True)
                subprocess.run(install, env=env, capture_output=True)
        missing = [tool for tool in tools if shutil.which(tool) is None]
    return missing


def ensure_build_tools() -> None:
    """Make sure ``make`` can build the kernel's ``conf`` (flex, bison, a C compiler)."""
    missing = install_tools({"flex": "flex", "bison": "bison", "make": "make", "gcc": "gcc"})
    if missing:
        raise Unavailable(f"the kernel's conf needs {', '.join(missing)}; install them")


def oracle_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return ``base`` (default: this process's environment) without toolchain overrides."""
    env = dict(os.environ if base is None else base)
    for var in TOOLCHAIN_VARS:
        env.pop(var, None)
    return env


def make_config(
    tree: Path,
    target: str,
    input_config: Path | None = None,
    *,
    outdir: Path | None = None,
    arch: str = ARCH,
    variables: Mapping[str, str] | None = None,
) -> Path:
    """Run the kernel's ``make -s O=<outdir> ARCH=<arch> <target>``; return the written ``.config``.

    ``target`` is a config target such as ``olddefconfig``, ``tinyconfig``,
    ``defconfig`` or ``allnoconfig``. ``input_config`` is copied in as the
    starting ``.config`` first. Reusing ``outdir`` keeps the built ``conf``
    (a few seconds per build); by default a fresh directory under the cache
    is used. ``variables`` are more make variables for the command line
    (``KCONFIG_SEED``, ``PAHOLE``...). The source tree itself is never written to.
    """
    ensure_build_tools()
    if outdir is None:
        tmproot = cache_root() / "tmp"
        tmproot.mkdir(exist_ok=True)
        outdir = Path(tempfile.mkdtemp(prefix="make-", dir=tmproot))
    outdir.mkdir(parents=True, exist_ok=True)
    config = outdir / ".config"
    if input_config is not None:
        shutil.copyfile(input_config, config)
    else:
        config.unlink(missing_ok=True)
    proc = subprocess.run(
        ["make", "-s", "-C", str(tree), f"O={outdir}", f"ARCH={arch}",
         *(f"{name}={value}" for name, value in (variables or {}).items()), target],
        env=oracle_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"make {target} in {tree} failed:\n{proc.stdout}\n{proc.stderr}")
    return config


def read_assignments(config: Path) -> dict[str, str]:
    """Return symbol -> value of a ``.config`` (``n`` for ``# CONFIG_X is not set``).

    Comments and the header are ignored: two configs are the same configuration
    when these dicts are equal.
    """
    values: dict[str, str] = {}
    for line in config.read_text().splitlines():
        if line.startswith("CONFIG_"):
            name, _, value = line[len("CONFIG_"):].partition("=")
            values[name] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            values[line[len("# CONFIG_"):-len(" is not set")]] = "n"
    return values
