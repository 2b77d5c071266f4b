"""kcheck's Gentoo overlay (``ebuild/``) against what the project really builds.

The ebuilds are evaluated by bash itself (with ``inherit`` a no-op), the sdist is
built by the same PEP 517 backend a release uses, and the overlay is scanned by
pkgcheck through ``.ci/ebuild_lint.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
OVERLAY = REPO / "ebuild"
KCHECK_DIR = OVERLAY / "app-portage" / "kcheck"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
RELEASE_EBUILD = KCHECK_DIR / f"kcheck-{VERSION}.ebuild"
LIVE_EBUILD = KCHECK_DIR / "kcheck-9999.ebuild"
LINT = REPO / ".ci" / "ebuild_lint.py"

#: PyPI project -> Gentoo package, for every dependency kcheck declares.
GENTOO_NAMES = {
    "click": "dev-python/click",
    "packaging": "dev-python/packaging",
    "kconfiglib": "dev-python/kconfiglib",
    "python-sat": "dev-python/python-sat",
    "portage": "sys-apps/portage",
}

#: Variables read from an evaluated ebuild (PYTHON_COMPAT is an array).
EBUILD_VARS = ("SRC_URI", "S", "RDEPEND", "KEYWORDS", "EGIT_REPO_URI", "HOMEPAGE", "PYTHON_COMPAT")


def evaluate_ebuild(path: Path) -> dict[str, str]:
    """Source *path* in bash the way the package manager's metadata phase does.

    ``inherit`` is a no-op, so only what the ebuild itself sets is seen; S gets
    the package manager's default, ``${WORKDIR}/${P}``, when the ebuild leaves it
    unset. WORKDIR is the literal ``WORKDIR``.
    """
    pn = path.parent.name
    pv = path.stem[len(pn) + 1 :]
    script = """
        inherit() { :; }
        PYTHON_USEDEP='${PYTHON_USEDEP}'
        source "$1" || exit 1
        : "${S:=${WORKDIR}/${P}}"
        for v in SRC_URI S RDEPEND KEYWORDS EGIT_REPO_URI HOMEPAGE; do printf '%s\\0' "${!v}"; done
        printf '%s\\0' "${PYTHON_COMPAT[*]}"
    """
    env = {
        "PATH": os.environ["PATH"],
        "CATEGORY": path.parent.parent.name,
        "PN": pn,
        "PV": pv,
        "P": f"{pn}-{pv}",
        "PF": path.stem,
        "WORKDIR": "WORKDIR",
        "EPREFIX": "",
    }
    out = subprocess.run(
        ["bash", "-c", script, "bash", str(path)], env=env, capture_output=True, text=True, check=True
    ).stdout
    return dict(zip(EBUILD_VARS, out.split("\0")))


def dependency_atoms(depstring: str) -> dict[str, str]:
    """Map package name (category/PN) to its atom for a flat dependency string."""
    atoms = {}
    for token in depstring.split():
        bare = token.split("[", 1)[0].lstrip("<>=~!")
        category, _, rest = bare.partition("/")
        # Strip a version: PN ends before the first "-<digit>".
        pn = rest
        for i, ch in enumerate(rest):
            if ch == "-" and i + 1 < len(rest) and rest[i + 1].isdigit():
                pn = rest[:i]
                break
        atoms[f"{category}/{pn}"] = token
    return atoms


def atom_for(package: str, specifier: SpecifierSet) -> str:
    """Return the Gentoo atom (without USE deps) that expresses *specifier* exactly."""
    specs = list(specifier)
    if not specs:
        return package
    assert len(specs) == 1, f"{package}: a multi-clause specifier needs a hand-written atom: {specifier}"
    spec = specs[0]
    prefix = {">=": ">=", "==": "~", "<": "<", "<=": "<=", ">": ">"}[spec.operator]
    return f"{prefix}{package}-{gentoo_version(spec.version)}"


def gentoo_version(pep440: str) -> str:
    """Return the Gentoo version for the PEP 440 release *pep440*.

    Only the forms kcheck's pins use are translated: a plain release, and a
    development release ``X.Y.devN``, which Gentoo spells ``X.Y_preN`` (the
    pypi eclass turns it back into ``.devN`` for the distfile name).
    """
    version = Version(pep440)
    assert version.epoch == 0 and version.pre is None and version.post is None and version.local is None, (
        f"{pep440}: no Gentoo spelling written for this kind of version"
    )
    release = ".".join(map(str, version.release))
    return release if version.dev is None else f"{release}_pre{version.dev}"


@pytest.fixture(scope="session")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kcheck's sdist, built from the work tree by the project's own build backend."""
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("*.tar.gz")
    return built


@pytest.fixture(scope="session")
def sdist_names(sdist: Path) -> list[str]:
    """Member names of the sdist."""
    with tarfile.open(sdist) as tar:
        return tar.getnames()


@pytest.fixture(scope="session")
def release() -> dict[str, str]:
    """The evaluated release ebuild for the version in pyproject.toml."""
    assert RELEASE_EBUILD.is_file(), (
        f"no ebuild for version {VERSION}: copy {LIVE_EBUILD.name} to {RELEASE_EBUILD.name}"
    )
    return evaluate_ebuild(RELEASE_EBUILD)


def test_release_src_uri_fetches_the_sdist(release: dict[str, str], sdist: Path) -> None:
    """The distfile the release ebuild fetches is the file the sdist build makes."""
    (uri,) = release["SRC_URI"].split()
    assert uri.rsplit("/", 1)[1] == sdist.name


def test_release_s_is_the_sdist_top_directory(release: dict[str, str], sdist_names: list[str]) -> None:
    """S names the single directory the sdist unpacks to."""
    tops = {name.split("/", 1)[0] for name in sdist_names}
    assert tops == {release["S"].removeprefix("WORKDIR/")}


def test_sdist_carries_what_the_ebuild_installs(sdist_names: list[str]) -> None:
    """Package, shipped profiles and every file the ebuild ``doins`` are in the sdist."""
    top = sdist_names[0].split("/", 1)[0]
    names = set(sdist_names)
    assert f"{top}/src/kcheck/__init__.py" in names
    for profile in (REPO / "src" / "kcheck" / "profiles").rglob("*.toml"):
        assert f"{top}/{profile.relative_to(REPO)}" in names
    doins = [line.split()[1] for line in RELEASE_EBUILD.read_text().splitlines() if line.strip().startswith(("doins ", "newexe "))]
    assert doins, "the ebuild installs the Portage hook snippet with doins"
    assert "src/kcheck/data/kcheck-preinst.install" in doins and "src/kcheck/data/kcheck-kernel-install.install" in doins
    for path in doins:
        if not (REPO / path).is_file():
            pytest.skip(f"{path} is not in this work tree yet (written with the Portage hook)")
        assert f"{top}/{path}" in names


def test_live_and_release_ebuilds_are_one_file() -> None:
    """The live ebuild and the release differ only by name, so they cannot drift."""
    assert LIVE_EBUILD.read_text() == RELEASE_EBUILD.read_text()


def test_live_ebuild_clones_the_project_homepage() -> None:
    """The live ebuild has no distfile and no keywords, and clones the project's home."""
    live = evaluate_ebuild(LIVE_EBUILD)
    assert live["SRC_URI"] == "" and live["KEYWORDS"] == ""
    homepage = PYPROJECT["project"]["urls"]["Homepage"]
    assert live["HOMEPAGE"] == homepage
    assert live["EGIT_REPO_URI"] == f"{homepage}.git"


def test_rdepend_covers_pyproject_dependencies(release: dict[str, str]) -> None:
    """Every runtime requirement of pyproject.toml is in RDEPEND with the same bounds.

    Portage comes from the system on Gentoo; pyproject names it as the
    ``portage`` extra, which the ebuild must require outright.
    """
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    requirements += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["portage"]]
    atoms = dependency_atoms(release["RDEPEND"])
    for req in requirements:
        package = GENTOO_NAMES[req.name]
        assert package in atoms, f"RDEPEND lacks {package} (pyproject: {req})"
        if req.name == "portage":
            continue  # pinned for the tests only; any installed Portage will do
        assert atoms[package] == f"{atom_for(package, req.specifier)}[${{PYTHON_USEDEP}}]"
    assert set(atoms) == {GENTOO_NAMES[r.name] for r in requirements}, "RDEPEND has packages pyproject lacks"


def test_kconfiglib_ebuild_is_the_pinned_release() -> None:
    """The overlay packages exactly the kconfiglib release pyproject pins."""
    (req,) = [Requirement(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("kconfiglib")]
    (pinned,) = list(req.specifier)
    ebuilds = sorted(p.name for p in (OVERLAY / "dev-python" / "kconfiglib").glob("*.ebuild"))
    assert ebuilds == [f"kconfiglib-{pinned.version}.ebuild"]


def test_python_sat_ebuild_is_the_pinned_release() -> None:
    """The overlay packages exactly the python-sat development release pyproject pins."""
    (req,) = [Requirement(r) for r in PYPROJECT["project"]["dependencies"] if r.startswith("python-sat")]
    (pinned,) = list(req.specifier)
    assert pinned.operator == "=="
    ebuilds = sorted(p.name for p in (OVERLAY / "dev-python" / "python-sat").glob("*.ebuild"))
    assert ebuilds == [f"python-sat-{gentoo_version(pinned.version)}.ebuild"]


@pytest.mark.parametrize(
    ("pep440", "gentoo"), [("14.1.0", "14.1.0"), ("1.9.dev24", "1.9_pre24"), ("1.8.dev13", "1.8_pre13")]
)
def test_gentoo_version_spells_dev_releases_as_pre(pep440: str, gentoo: str) -> None:
    """A PEP 440 ``.devN`` becomes Gentoo's ``_preN``; a plain release is unchanged."""
    assert gentoo_version(pep440) == gentoo


def test_atom_for_pins_a_dev_release_with_the_exact_version_operator() -> None:
    """``==X.Y.devN`` is ``~cat/pkg-X.Y_preN``, as ``==`` is ``~`` for a plain release."""
    assert atom_for("dev-python/python-sat", SpecifierSet("==1.9.dev24")) == "~dev-python/python-sat-1.9_pre24"
    assert atom_for("dev-python/kconfiglib", SpecifierSet("==14.1.0")) == "~dev-python/kconfiglib-14.1.0"


def test_python_compat_matches_requires_python(release: dict[str, str]) -> None:
    """PYTHON_COMPAT starts at the oldest Python the project supports and lists only supported ones."""
    supported = SpecifierSet(PYPROJECT["project"]["requires-python"])
    versions = [Version(impl.removeprefix("python").replace("_", ".")) for impl in release["PYTHON_COMPAT"].split()]
    assert versions and all(v in supported for v in versions)
    lower = min(Version(s.version) for s in supported if s.operator == ">=")
    assert min(versions) == lower


def run_lint(*args: str) -> subprocess.CompletedProcess:
    """Run .ci/ebuild_lint.py (its tools cached under $KCHECK_TEST_CACHE/ebuild-lint)."""
    proc = subprocess.run([sys.executable, str(LINT), *args], check=False, capture_output=True, text=True)
    if proc.returncode == 2:
        pytest.skip(f"pkgcheck could not be set up here:\n{proc.stderr}")
    return proc


@pytest.mark.slow
def test_pkgcheck_finds_no_errors_in_the_overlay() -> None:
    """pkgcheck scans the overlay with no error-level result and no stale Manifest."""
    proc = run_lint()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(0 errors), 0 other problems" in proc.stdout


@pytest.mark.slow
def test_pkgcheck_scan_fails_on_a_broken_overlay(tmp_path: Path) -> None:
    """The scan really checks: an unknown license and a bad dependency fail it."""
    broken = tmp_path / "overlay"
    shutil.copytree(OVERLAY, broken)
    ebuild = broken / "dev-python" / "kconfiglib" / "kconfiglib-14.1.0.ebuild"
    ebuild.write_text(ebuild.read_text().replace('LICENSE="ISC"', 'LICENSE="no-such-license"'))
    kcheck = broken / "app-portage" / "kcheck" / RELEASE_EBUILD.name
    kcheck.write_text(kcheck.read_text().replace("dev-python/click-8.1", "dev-python/no-such-click-8.1"))
    proc = run_lint("--overlay", str(broken))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error: dev-python/kconfiglib-14.1.0: UnknownLicense" in proc.stdout
    assert "NonexistentDeps" in proc.stdout or "NonsolvableDeps" in proc.stdout


def run_phase(ebuild: Path, phase: str, eroot: Path, **env: str) -> list[str]:
    """Run the ebuild's own *phase* function in bash; return what it passed to elog, by line."""
    script = """
        inherit() { :; }
        elog() { printf '%s\\n' "$*"; }
        source "$1" || exit 1
        "$2"
    """
    base = {"PATH": os.environ["PATH"], "PN": "kcheck", "PV": VERSION, "P": f"kcheck-{VERSION}"}
    base |= {"EROOT": str(eroot), "EPREFIX": "", **env}
    out = subprocess.run(
        ["bash", "-c", script, "bash", str(ebuild), phase], env=base, capture_output=True, text=True, check=True
    ).stdout
    return out.splitlines()


def test_postinst_tells_how_to_enable_the_hook(tmp_path: Path) -> None:
    """pkg_postinst names the installed snippet and both ways to enable it, and touches nothing."""
    lines = run_phase(RELEASE_EBUILD, "pkg_postinst", tmp_path)
    text = "\n".join(lines)
    assert "[[ -f /usr/share/kcheck/portage-hook.bash ]] && source /usr/share/kcheck/portage-hook.bash" in text
    assert f"{tmp_path}/etc/portage/bashrc" in text
    assert f"ln -s /usr/share/kcheck/portage-hook.bash {tmp_path}/etc/portage/env/sys-fs/aufs3" in text
    assert list(tmp_path.iterdir()) == []


def test_postinst_is_quiet_once_the_hook_is_enabled(tmp_path: Path) -> None:
    """The bashrc line pkg_postinst suggests is recognised on the next upgrade."""
    suggested = [line.strip() for line in run_phase(RELEASE_EBUILD, "pkg_postinst", tmp_path) if "source" in line]
    bashrc = tmp_path / "etc" / "portage" / "bashrc"
    bashrc.parent.mkdir(parents=True)
    bashrc.write_text("# local settings\n" + "\n".join(suggested) + "\n")
    assert run_phase(RELEASE_EBUILD, "pkg_postinst", tmp_path) == []


def test_postrm_reminds_of_the_dead_bashrc_line_on_removal_only(tmp_path: Path) -> None:
    """After an uninstall the user hears about the bashrc line; after an upgrade not."""
    bashrc = tmp_path / "etc" / "portage" / "bashrc"
    bashrc.parent.mkdir(parents=True)
    bashrc.write_text("source /usr/share/kcheck/portage-hook.bash\n")
    removed = run_phase(RELEASE_EBUILD, "pkg_postrm", tmp_path, REPLACED_BY_VERSION="")
    assert any("remove that line" in line for line in removed)
    assert run_phase(RELEASE_EBUILD, "pkg_postrm", tmp_path, REPLACED_BY_VERSION="0.2.0") == []
