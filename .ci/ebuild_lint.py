#!/usr/bin/env python3
"""Check kcheck's Gentoo overlay (``ebuild/``) with pkgcheck, on a host without Gentoo.

Run as ``python3 .ci/ebuild_lint.py``; it needs only the standard library to
start and brings its own tools. Steps:

1. ``bash -n`` on every ebuild of the overlay.
2. Tools: pkgcore, pkgcheck and pkgdev at the versions pinned in
   ``.ci/ebuild-lint-requirements.txt`` go into their own venv under the cache
   directory (``$KCHECK_EBUILD_LINT_CACHE``, else ``$KCHECK_TEST_CACHE/ebuild-lint``
   so the test suite and CI share it, else ``<repo>/.cache/tests/ebuild-lint``),
   reinstalled only when that file changes; a lock file serialises concurrent
   runs. They are kept out of the project's test venv because the pins exist
   only for this host's bash.
3. Distfiles: kcheck's sdist is built from the work tree (what a release would
   upload; setuptools leaves its ignored ``src/kcheck.egg-info`` behind),
   kconfiglib's and python-sat's sdists come from PyPI (cached).
4. A scan copy in a temporary directory: the overlay as committed, and a
   stand-in ``::gentoo`` master holding only what the scan needs, because the
   real Gentoo repository cannot be fetched here (only PyPI and Debian are
   reachable, and neither packages Gentoo's eclasses):

   - the python-r1, distutils-r1 and pypi eclasses from the ``testdata/``
     repositories of pkgcheck's own sdist (the minimal versions pkgcheck's
     authors keep for testing its Python checks);
   - a STUB supplement appended to that distutils-r1 (written below): the
     phase functions Gentoo's distutils-r1 exports and the
     ``distutils-r1_python_install_all`` default, which pkgcheck's minimal
     copy leaves out (without them pkgcheck would call the inherit unused);
   - a STUB line inserted into that pypi eclass (written below): Gentoo's
     pypi eclass translates a ``_pre`` version to PEP 440's ``.dev``, as
     dev-python/python-sat needs, while pkgcheck's minimal copy does not;
   - a shell-completion eclass STUB written below, with only the install
     helpers the kcheck ebuild calls and the directories Gentoo's puts them in;
   - a git-r3 eclass STUB written below, declaring only what a live ebuild's
     metadata needs (``PROPERTIES=live``, the git build dependency,
     ``EGIT_REPO_URI``): pkgcheck's test data has none;
   - profiles (arches, categories, USE_EXPAND descriptions, one profile per
     keyworded arch), the license texts the ebuilds name (GPL-2 from Debian,
     ISC and MIT from kconfiglib's and python-sat's sdists), and stand-in
     ebuilds for the dependencies so pkgcheck can resolve them.

   None of this master is shipped: it lives only in the temporary directory.
   The pkgcore configuration is pkgcore's own non-Gentoo default, which finds
   ``::gentoo`` under ``$HOME/.cache/pkgcore/repos/gentoo``; HOME points into the
   scan copy. (On a Gentoo host pkgcore reads /etc/portage instead, so the
   host's real ::gentoo would be the master; not tried, no Gentoo host here.)
5. Manifests: pkgdev writes them in the scan copy from the distfiles of step 3.
   A Manifest committed in the overlay must equal the generated one (a stale
   Manifest would break every user's emerge); kcheck's own release Manifest is
   not committed, since its hashes exist only once a release sdist is uploaded.
6. ``pkgcheck scan`` of the overlay; every result is printed, and any
   error-level result fails the run.

Exit status: 0 clean, 1 when an ebuild fails the syntax check, a committed
Manifest is stale or pkgcheck reports an error-level result, 2 when the tools
cannot be set up.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OVERLAY = REPO / "ebuild"
REQUIREMENTS = Path(__file__).resolve().parent / "ebuild-lint-requirements.txt"

#: The pkgcheck release whose sdist carries the Python eclasses used as master.
PKGCHECK_SDIST = "pkgcheck==0.10.37"
#: Eclasses taken from that sdist (testdata/repos/python/eclass/).
PKGCHECK_ECLASSES = ("python-r1", "distutils-r1", "pypi")
#: kconfiglib's sdist, the distfile of dev-python/kconfiglib in the overlay.
KCONFIGLIB_SDIST = "kconfiglib==14.1.0"
#: python-sat's sdist, the distfile of dev-python/python-sat-1.9_pre24.
PYSAT_SDIST = "python-sat==1.9.dev24"

ARCHES = ("amd64", "arm64")
PYTHON_TARGETS = ("python3_11", "python3_12", "python3_13")

#: Stand-ins for ::gentoo packages the overlay depends on: cpv -> kind.
#: "python" stand-ins inherit python-r1 so that ``[${PYTHON_USEDEP}]`` resolves.
MASTER_PACKAGES = {
    "dev-lang/python-3.11.11": "interpreter",
    "dev-lang/python-3.12.8": "interpreter",
    "dev-lang/python-3.13.1": "interpreter",
    "dev-python/click-8.1.8": "python",
    "dev-python/gpep517-16": "python",
    "dev-python/packaging-24.2": "python",
    "dev-python/setuptools-75.6.0": "python",
    "dev-python/six-1.17.0": "python",
    "dev-vcs/git-2.47.1": "plain",
    "sys-apps/portage-3.0.83": "python",
}

#: STUB, scan copy only: git-r3 as far as an ebuild's metadata sees it.
GIT_R3_STUB = """\
# Copyright 2026 kcheck developers
# Distributed under the terms of the GNU General Public License v2

# @ECLASS: git-r3.eclass
# @MAINTAINER:
# kcheck developers <kcheck@example.invalid>
# @SUPPORTED_EAPIS: 7 8
# @BLURB: STUB for kcheck's CI scan only; the metadata of ::gentoo's git-r3.
# @DESCRIPTION:
# Written by .ci/ebuild_lint.py into a temporary scan copy, never shipped:
# Gentoo's eclasses cannot be fetched where kcheck's CI runs.

# @ECLASS_VARIABLE: EGIT_REPO_URI
# @REQUIRED
# @DESCRIPTION:
# URIs of the repository to clone.

PROPERTIES+=" live"
BDEPEND+=" >=dev-vcs/git-1.8.2.1"

# @FUNCTION: git-r3_src_unpack
# @DESCRIPTION:
# Clone EGIT_REPO_URI into S (not implemented: the scan never unpacks).
git-r3_src_unpack() { die "git-r3 stub: only for pkgcheck scans"; }

EXPORT_FUNCTIONS src_unpack
"""


#: STUB, scan copy only: ::gentoo's shell-completion eclass (which since 2026 also
#: carries bash-completion-r1's helpers) as far as the kcheck ebuild calls it.
SHELL_COMPLETION_STUB = """\
# Copyright 2026 kcheck developers
# Distributed under the terms of the GNU General Public License v2

# @ECLASS: shell-completion.eclass
# @MAINTAINER:
# kcheck developers <kcheck@example.invalid>
# @SUPPORTED_EAPIS: 7 8
# @BLURB: STUB for kcheck's CI scan only; ::gentoo's completion install helpers.
# @DESCRIPTION:
# Written by .ci/ebuild_lint.py into a temporary scan copy, never shipped:
# Gentoo's eclasses cannot be fetched where kcheck's CI runs.

# @FUNCTION: _kcheck_stub_newcomp
# @INTERNAL
# @USAGE: <dir> <file> <newname>
# @DESCRIPTION:
# Install one completion file as <dir>/<newname>, mode 0644.
_kcheck_stub_newcomp() { ( insopts -m 0644; insinto "${1}"; shift; newins "$@" ); }

# @FUNCTION: newbashcomp
# @USAGE: <file> <newname>
# @DESCRIPTION:
# Install a bash completion file under a new name.
newbashcomp() { _kcheck_stub_newcomp /usr/share/bash-completion/completions "$@"; }

# @FUNCTION: newzshcomp
# @USAGE: <file> <newname>
# @DESCRIPTION:
# Install a zsh completion file under a new name.
newzshcomp() { _kcheck_stub_newcomp /usr/share/zsh/site-functions "$@"; }

# @FUNCTION: newfishcomp
# @USAGE: <file> <newname>
# @DESCRIPTION:
# Install a fish completion file under a new name.
newfishcomp() { _kcheck_stub_newcomp /usr/share/fish/vendor_completions.d "$@"; }
"""


#: STUB supplement, scan copy only: what Gentoo's distutils-r1 exports, as names.
DISTUTILS_R1_SUPPLEMENT = """
# Appended by kcheck's .ci/ebuild_lint.py to the scan copy only (STUB): the
# functions Gentoo's distutils-r1 defines for ebuilds, without their bodies.

# @FUNCTION: distutils-r1_python_install_all
# @DESCRIPTION:
# Default python_install_all: installs the documentation (STUB).
distutils-r1_python_install_all() { :; }

# @FUNCTION: distutils-r1_src_prepare
# @DESCRIPTION:
# STUB of the exported src_prepare.
distutils-r1_src_prepare() { :; }

# @FUNCTION: distutils-r1_src_configure
# @DESCRIPTION:
# STUB of the exported src_configure.
distutils-r1_src_configure() { :; }

# @FUNCTION: distutils-r1_src_compile
# @DESCRIPTION:
# STUB of the exported src_compile.
distutils-r1_src_compile() { :; }

# @FUNCTION: distutils-r1_src_test
# @DESCRIPTION:
# STUB of the exported src_test.
distutils-r1_src_test() { :; }

# @FUNCTION: distutils-r1_src_install
# @DESCRIPTION:
# STUB of the exported src_install.
distutils-r1_src_install() { :; }

EXPORT_FUNCTIONS src_prepare src_configure src_compile src_test src_install
"""


#: STUB line, scan copy only: ``_pre`` -> ``.dev``, inserted into pkgcheck's
#: minimal pypi_translate_version before its ``_rc`` line, the place Gentoo's
#: own pypi eclass translates it (``_pre`` must go before ``_p`` -> ``.post``).
PYPI_PRE_ANCHOR = "\tversion=${version/_rc/rc}\n"
PYPI_PRE_STUB = (
    "\t# STUB, kcheck's .ci/ebuild_lint.py (scan copy only): as Gentoo's pypi eclass.\n"
    "\tversion=${version/_pre/.dev}\n"
)


class LintError(Exception):
    """The tools or inputs for the scan could not be set up (exit status 2)."""


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run *cmd*, raising LintError with its output when it fails."""
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise LintError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def ensure_venv(cache: Path) -> Path:
    """Create or reuse the venv with the pinned lint tools; return its bin dir."""
    venv = cache / "venv"
    bindir = venv / "bin"
    stamp = venv / "requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted and (bindir / "pkgcheck").exists():
        return bindir
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(bindir / "pip"), "install", "-q", "-r", str(REQUIREMENTS)])
    stamp.write_text(wanted)
    return bindir


def pip_sdist(bindir: Path, requirement: str, dest: Path) -> Path:
    """Download the sdist of *requirement* from PyPI into *dest* (cached); return it."""
    name, _, version = requirement.partition("==")
    # Sdists are named after the normalised project name (python-sat -> python_sat).
    filename = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}.tar.gz"
    found = sorted(dest.glob(filename))
    if not found:
        dest.mkdir(parents=True, exist_ok=True)
        run([str(bindir / "pip"), "download", "-q", "--no-deps", "--no-binary", name, "-d", str(dest), requirement])
        found = sorted(dest.glob(filename))
        if not found:
            raise LintError(f"pip did not leave {filename} in {dest}")
    return found[0]


def build_kcheck_sdist(bindir: Path, dest: Path) -> Path:
    """Build kcheck's sdist from the work tree into *dest*; return its path."""
    run([str(bindir / "python"), "-m", "build", "--sdist", "--no-isolation", "-o", str(dest), str(REPO)])
    sdists = sorted(dest.glob("kcheck-*.tar.gz"))
    if len(sdists) != 1:
        raise LintError(f"expected one kcheck sdist in {dest}, found {sdists}")
    return sdists[0]


def syntax_errors(overlay: Path) -> list[str]:
    """Return ``bash -n`` complaints about the ebuilds of *overlay*."""
    errors = []
    for ebuild in sorted(overlay.glob("*/*/*.ebuild")):
        proc = subprocess.run(["bash", "-n", str(ebuild)], check=False, capture_output=True, text=True)
        if proc.returncode != 0:
            errors.append(f"{ebuild}: bash syntax error:\n{proc.stderr}")
    return errors


def write(path: Path, text: str) -> None:
    """Write *text* to *path*, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def stand_in_ebuild(cpv: str, kind: str) -> str:
    """Return a stand-in ebuild for the ::gentoo package *cpv*."""
    category, pf = cpv.split("/")
    pn, _, pv = pf.rpartition("-")
    lines = ["EAPI=8", ""]
    if kind == "python":
        lines += [f"PYTHON_COMPAT=( {' '.join(PYTHON_TARGETS)} )", "inherit python-r1", ""]
    slot = ".".join(pv.split(".")[:2]) if kind == "interpreter" else "0"
    lines += [
        f'DESCRIPTION="Stand-in for ::gentoo {category}/{pn} in kcheck\'s CI scan"',
        'HOMEPAGE="https://www.gentoo.org/"',
        'LICENSE="GPL-2"',
        f'SLOT="{slot}"',
        f'KEYWORDS="{" ".join(ARCHES)}"',
    ]
    if kind == "python":
        lines.append('REQUIRED_USE="${PYTHON_REQUIRED_USE}"')
    return "\n".join(lines) + "\n"


def sdist_license(sdist: Path, member: str) -> str:
    """Return the text of *member* (relative to the top directory) of *sdist*."""
    with tarfile.open(sdist) as tar:
        extracted = tar.extractfile(f"{sdist.name[: -len('.tar.gz')]}/{member}")
        if extracted is None:
            raise LintError(f"{sdist} has no {member}")
        return extracted.read().decode()


def lay_out_master(master: Path, pkgcheck_sdist: Path, kconfiglib_sdist: Path, pysat_sdist: Path) -> None:
    """Create the stand-in ::gentoo repository at *master* (see the module docstring)."""
    write(master / "profiles" / "repo_name", "gentoo\n")
    write(master / "metadata" / "layout.conf", "masters =\nthin-manifests = true\ncache-formats =\n")
    write(master / "profiles" / "arch.list", "\n".join(ARCHES) + "\n")
    write(master / "profiles" / "arches.desc", "".join(f"{a} stable\n" for a in ARCHES))
    categories = sorted({cpv.split("/")[0] for cpv in MASTER_PACKAGES} | {"app-portage", "dev-python"})
    write(master / "profiles" / "categories", "\n".join(categories) + "\n")
    write(master / "profiles" / "use.desc", "test - Enable dependencies and/or preparations necessary to run tests\n")
    write(
        master / "profiles" / "desc" / "python_targets.desc",
        "".join(f"{t} - Build with Python {t[6:].replace('_', '.')}\n" for t in PYTHON_TARGETS),
    )
    desc = []
    for arch in ARCHES:
        profile = f"default/linux/{arch}"
        desc.append(f"{arch} {profile} stable\n")
        write(master / "profiles" / profile / "eapi", "8\n")
        write(
            master / "profiles" / profile / "make.defaults",
            f'ARCH="{arch}"\nACCEPT_KEYWORDS="{arch}"\nELIBC="glibc"\nKERNEL="linux"\n'
            'USE_EXPAND="PYTHON_TARGETS"\nUSE_EXPAND_IMPLICIT="ARCH ELIBC KERNEL"\n'
            f'USE_EXPAND_VALUES_ARCH="{" ".join(ARCHES)}"\nUSE_EXPAND_VALUES_ELIBC="glibc"\n'
            'USE_EXPAND_VALUES_KERNEL="linux"\nIUSE_IMPLICIT="prefix test"\n'
            'PYTHON_TARGETS="python3_12"\n',
        )
    write(master / "profiles" / "profiles.desc", "".join(desc))

    # License texts: Debian's copy of the GPL-2, kconfiglib's ISC and PySAT's MIT texts.
    gpl2 = Path("/usr/share/common-licenses/GPL-2")
    if not gpl2.is_file():
        raise LintError(f"{gpl2} is missing: install Debian's base-files package")
    write(master / "licenses" / "GPL-2", gpl2.read_text())
    write(master / "licenses" / "ISC", sdist_license(kconfiglib_sdist, "LICENSE.txt"))
    write(master / "licenses" / "MIT", sdist_license(pysat_sdist, "LICENSE.txt"))

    with tarfile.open(pkgcheck_sdist) as tar:
        top = pkgcheck_sdist.name[: -len(".tar.gz")]
        for eclass in PKGCHECK_ECLASSES:
            member = tar.extractfile(f"{top}/testdata/repos/python/eclass/{eclass}.eclass")
            if member is None:
                raise LintError(f"{pkgcheck_sdist} has no {eclass}.eclass in its test data")
            text = member.read().decode()
            if eclass == "distutils-r1":
                text += DISTUTILS_R1_SUPPLEMENT
            if eclass == "pypi":
                if text.count(PYPI_PRE_ANCHOR) != 1:
                    raise LintError(f"{pkgcheck_sdist}: pypi.eclass no longer has the line the _pre stub goes before")
                text = text.replace(PYPI_PRE_ANCHOR, PYPI_PRE_STUB + PYPI_PRE_ANCHOR)
            write(master / "eclass" / f"{eclass}.eclass", text)
    write(master / "eclass" / "git-r3.eclass", GIT_R3_STUB)
    write(master / "eclass" / "shell-completion.eclass", SHELL_COMPLETION_STUB)

    for cpv, kind in MASTER_PACKAGES.items():
        category, pf = cpv.split("/")
        pn = pf.rpartition("-")[0]
        write(master / category / pn / f"{pf}.ebuild", stand_in_ebuild(cpv, kind))


def scan_env(home: Path) -> dict[str, str]:
    """Environment for pkgcore tools: a private HOME so the stand-in master is found."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "PKGCORE_", "PORTAGE_"))}
    env["HOME"] = str(home)
    return env


def manifest_problems(bindir: Path, overlay: Path, distdir: Path, env: dict[str, str]) -> list[str]:
    """Write Manifests in the scan copy; report committed ones that differ."""
    committed = {m.relative_to(overlay): m.read_text() for m in overlay.glob("*/*/Manifest")}
    # Generate from scratch: pkgdev would otherwise re-fetch a distfile whose
    # committed hashes do not match, instead of reporting the stale Manifest.
    for rel in committed:
        (overlay / rel).unlink()
    run([str(bindir / "pkgdev"), "manifest", "-d", str(distdir), "-f"], cwd=overlay, env=env)
    problems = []
    for rel, text in sorted(committed.items()):
        fresh = (overlay / rel).read_text()
        if fresh != text:
            problems.append(
                f"{rel} is stale; regenerate it with pkgdev manifest.\ncommitted:\n{text}generated:\n{fresh}"
            )
    return problems


#: Record and field separators for pkgcheck's FormatReporter (descriptions may span lines).
RS, FS = "\x1e", "\x1f"


def pkgcheck_results(bindir: Path, overlay: Path, env: dict[str, str], cache: Path) -> list[tuple[str, str, str]]:
    """Run pkgcheck scan on *overlay*; return (level, where, message) for every result."""
    fmt = RS + FS.join(["{level}", "{category}/{package}-{version}", "{name}: {desc}"])
    proc = subprocess.run(
        [
            str(bindir / "pkgcheck"),
            "scan",
            "--config",
            "no",
            "--cache-dir",
            str(cache),
            "-R",
            "FormatReporter",
            "--format",
            fmt,
            "--repo",
            str(overlay),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=overlay,
        env=env,
    )
    if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:
        raise LintError(f"pkgcheck scan failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    results = []
    for record in proc.stdout.split(RS)[1:]:
        level, where, message = record.rstrip("\n").split(FS, 2)
        results.append((level, where.strip("/-") or "(repository)", message))
    if proc.stderr.strip():
        # pkgcore's own warnings (e.g. about the repository layout) are worth seeing.
        print(proc.stderr.rstrip(), file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the whole check; return the exit status described in the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--overlay", type=Path, default=DEFAULT_OVERLAY, help="overlay to check (default: the repository's ebuild/)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scan copy and print its path (to debug the scan)")
    args = parser.parse_args(argv)
    cache = Path(
        os.environ.get("KCHECK_EBUILD_LINT_CACHE")
        or Path(os.environ.get("KCHECK_TEST_CACHE") or REPO / ".cache" / "tests") / "ebuild-lint"
    )
    cache.mkdir(parents=True, exist_ok=True)

    failures = syntax_errors(args.overlay)
    try:
        work = Path(tempfile.mkdtemp(prefix="kcheck-ebuild-lint-"))
        try:
            distdir = work / "distfiles"
            with open(cache / "lock", "w") as lock:
                # Another run (a parallel test, a second helper) may be filling the cache.
                fcntl.flock(lock, fcntl.LOCK_EX)
                bindir = ensure_venv(cache)
                kcheck_sdist = build_kcheck_sdist(bindir, distdir)
                kconfiglib_sdist = pip_sdist(bindir, KCONFIGLIB_SDIST, cache / "distfiles")
                pysat_sdist = pip_sdist(bindir, PYSAT_SDIST, cache / "distfiles")
                pkgcheck_sdist = pip_sdist(bindir, PKGCHECK_SDIST, cache / "sdists")
            shutil.copy2(kconfiglib_sdist, distdir)
            shutil.copy2(pysat_sdist, distdir)

            home = work / "home"
            master = home / ".cache" / "pkgcore" / "repos" / "gentoo"
            lay_out_master(master, pkgcheck_sdist, kconfiglib_sdist, pysat_sdist)
            overlay = work / "overlay"
            shutil.copytree(args.overlay, overlay)
            env = scan_env(home)
            failures += manifest_problems(bindir, overlay, distdir, env)
            results = pkgcheck_results(bindir, overlay, env, work / "pkgcheck-cache")
        finally:
            if args.keep:
                print(f"scan copy kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    except LintError as exc:
        print(f"ebuild lint could not run: {exc}", file=sys.stderr)
        return 2

    for level, where, message in results:
        print(f"{level}: {where}: {message}")
    errors = [r for r in results if r[0] == "error"]
    for failure in failures:
        print(f"error: {failure}")
    print(
        f"ebuild lint: {len(results)} pkgcheck results ({len(errors)} errors), "
        f"{len(failures)} other problems; kcheck sdist {kcheck_sdist.name}"
    )
    return 1 if errors or failures else 0


if __name__ == "__main__":
    sys.exit(main())
