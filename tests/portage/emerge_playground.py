"""A real ``emerge`` of a test sys-fs/aufs3 with the kcheck hook installed.

Run by ``test_emerge.py`` in a subprocess whose ``PYTHONPATH`` starts with the
``lib`` directory of the portage sdist: Portage's test playground
(``ResolverPlayground``) and ``bin/emerge`` work only from a source tree, not
from the installed wheel. The playground is a temporary prefix with its own
repository, profile, ``/etc/portage`` and installed-package database; the
sandbox features are off. Prints one JSON object on its last line.

Steps:
1. a kernel tree ``<prefix>/usr/src/linux`` built and installed a day ago,
   its files then merged by a test ``sys-kernel/gentoo-sources`` (no aufs yet:
   the hook stays silent);
2. ``emerge --oneshot --buildpkg sys-fs/aufs3``: its ``pkg_setup`` applies a small
   standalone patch with ``patch -p1`` after a reverse dry run, as the real
   ebuild does; ``/etc/portage/bashrc`` holds ``kcheck portage-hook --snippet``;
3. a simulated kernel rebuild and install, then the hook's check again;
4. ``emerge --usepkgonly sys-fs/aufs3`` from the binary package step 2 built:
   nothing is patched and the hook says nothing;
5. ``emerge sys-kernel/gentoo-sources`` again: the sources' own files replace
   the patched ones, and the hook says the patch is gone and what to do.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script: its own directory is on sys.path, so the unit tests' root builder is too.
from gentoo_root import RELEASE, TOUCHED, Situation, pristine, standalone_patch

DAY = 86400


AUFS3_EBUILD = """
S="${WORKDIR}"

pkg_setup() {
	local tree="${EROOT%/}/usr/src/linux" patch="${T}/aufs3-standalone.patch"
	[[ ${MERGE_TYPE} == binary ]] && return
	cat > "${patch}" <<'PATCH_EOF' || die
@PATCH@PATCH_EOF
	# Like sys-fs/aufs3[kernel-patch]: apply only when a reverse dry run fails.
	if ! patch -p1 -R --dry-run -s -f -d "${tree}" < "${patch}" >/dev/null; then
		patch -p1 -s -f -d "${tree}" < "${patch}" || die "patching ${tree} failed"
		einfo "patched ${tree}"
	fi
}

src_install() {
	insinto /usr/share/${PN}
	echo "aufs.ko stand-in" > "${T}/aufs.ko" || die
	doins "${T}/aufs.ko"
}
"""


def sources_ebuild() -> str:
    """A kernel-sources ebuild that installs the unpatched versions of the files aufs3 patches."""
    lines = ['S="${WORKDIR}"', "", "src_install() {"]
    for rel in TOUCHED:
        folder, _, name = rel.rpartition("/")
        content = " ".join(f"'{line}'" for line in pristine(rel).splitlines())
        lines += [
            f'\tinsinto "/usr/src/linux-{RELEASE}/{folder}"',
            f'\tprintf "%s\\n" {content} > "${{T}}/{name}" || die',
            f'\tdoins "${{T}}/{name}"',
        ]
    return "\n".join([*lines, "}", ""])


def run_check(kcheck: Path, prefix: Path) -> str:
    """The hook's check for sys-fs/aufs3 after its merge, run by hand; its output lines."""
    from portage.const import PORTAGE_PYM_PATH

    check = [
        str(kcheck),
        "portage-hook",
        "run",
        "--phase",
        "post_pkg_postinst",
        "--category",
        "sys-fs",
        "--pn",
        "aufs3",
        "--root",
        str(prefix),
    ]
    env = {**os.environ, "PYTHONPATH": PORTAGE_PYM_PATH}
    return subprocess.run(check, capture_output=True, text=True, env=env, check=True).stdout


def main() -> None:
    """Run the scenario and print the JSON result."""
    kcheck = Path(sys.argv[1])
    os.environ["PORTAGE_USERNAME"] = pwd.getpwuid(os.getuid()).pw_name
    os.environ["PORTAGE_GRPNAME"] = grp.getgrgid(os.getgid()).gr_name
    import portage
    from portage.const import PORTAGE_BIN_PATH, PORTAGE_PYM_PATH

    # The playground signs binary packages with the test keys its own suite uses.
    gnupg = tempfile.mkdtemp(prefix="kcheck-gpg-")
    shutil.copytree(Path(portage.__file__).parent / "tests" / ".gnupg", gnupg, dirs_exist_ok=True)
    os.chmod(gnupg, 0o700)
    os.environ["PORTAGE_GNUPGHOME"] = gnupg
    portage._internal_caller = True
    portage._disable_legacy_globals()
    from portage.tests.resolver.ResolverPlayground import ResolverPlayground

    ebuild = AUFS3_EBUILD.replace("@PATCH@", standalone_patch())
    ebuilds = {
        "sys-fs/aufs3-3_p20160219": {
            "EAPI": "8",
            "IUSE": "+kernel-patch",
            "KEYWORDS": "x86",
            "LICENSE": "GPL-2",
            "MISC_CONTENT": ebuild,
        },
        f"sys-kernel/gentoo-sources-{RELEASE.removesuffix('-gentoo')}": {
            "EAPI": "8",
            "KEYWORDS": "x86",
            "LICENSE": "GPL-2",
            "MISC_CONTENT": sources_ebuild(),
        },
    }
    playground = ResolverPlayground(ebuilds=ebuilds)
    result: dict = {}
    try:
        prefix = Path(playground.eprefix)
        now = time.time()
        # 1. An unpatched tree, built and installed a day ago.
        situation = Situation(prefix)
        situation.make_tree(now - 2 * DAY)
        situation.build(now - DAY, number=1)
        situation.install_kernel(now - DAY)
        snippet = subprocess.run(
            [str(kcheck), "portage-hook", "--snippet"], capture_output=True, text=True, check=True
        ).stdout
        (prefix / "etc" / "portage" / "bashrc").write_text(snippet)

        fake_bin = prefix / "bin"
        fake_bin.mkdir(exist_ok=True)
        for name in ("prepstrip", "scanelf"):
            (fake_bin / name).symlink_to(shutil.which("true"))
        # The hook finds kcheck on PATH, as on a real system.
        (fake_bin / "kcheck").symlink_to(kcheck)
        tmpdir = prefix / "var" / "tmp" / "portage"
        tmpdir.mkdir(parents=True, exist_ok=True)
        (prefix / "var" / "cache" / "edb").mkdir(parents=True, exist_ok=True)
        # Merges take COUNTER values above this, so the test can tell a real record from a default.
        (prefix / "var" / "cache" / "edb" / "counter").write_text("100")
        env = {
            "PORTAGE_OVERRIDE_EPREFIX": str(prefix),
            "CLEAN_DELAY": "0",
            "EMERGE_WARNING_DELAY": "0",
            "NO_COLOR": "1",
            "PATH": f"{fake_bin}:{os.environ['PATH']}",
            "PORTAGE_INST_GID": str(os.getgid()),
            "PORTAGE_INST_UID": str(os.getuid()),
            "PORTAGE_PYTHON": sys.executable,
            "PORTAGE_REPOSITORIES": playground.settings.repositories.config_string(),
            "PORTAGE_TMPDIR": str(tmpdir),
            "PYTHONPATH": PORTAGE_PYM_PATH,
            "PORTAGE_USERNAME": os.environ["PORTAGE_USERNAME"],
            "PORTAGE_GRPNAME": os.environ["PORTAGE_GRPNAME"],
            "PORTAGE_GNUPGHOME": gnupg,
            "__PORTAGE_TEST_PATH_OVERRIDE": str(fake_bin),
            # xpak binary packages carry no signature: no gpg-agent, no keyring to trust.
            "BINPKG_FORMAT": "xpak",
        }
        emerge = [sys.executable, "-b", os.path.join(PORTAGE_BIN_PATH, "emerge"), "--color=n", "--oneshot"]
        # 1. (cont.) The tree's files belong to the kernel-sources package, as on a real system.
        proc = subprocess.run([*emerge, "sys-kernel/gentoo-sources"], env=env, capture_output=True, text=True)
        result["first_sources_rc"] = proc.returncode
        result["first_sources_output"] = proc.stdout + proc.stderr
        # 2. The merge; --buildpkg keeps a binary package for step 4.
        proc = subprocess.run([*emerge, "--buildpkg", "sys-fs/aufs3"], env=env, capture_output=True, text=True)
        result["emerge_rc"] = proc.returncode
        result["emerge_output"] = proc.stdout + proc.stderr
        result["prfile"] = (prefix / "usr/src/linux/mm/prfile.c").is_file()

        from kcheck.portage.facts import portage_facts

        result["installed"] = [
            {"cpv": p.cpv, "counter": p.counter, "use": sorted(p.use)}
            for p in portage_facts(prefix).installed("sys-fs/aufs3")
        ]

        # 3. The user rebuilds and installs the kernel, then runs @module-rebuild.
        later = time.time() + 60
        situation.build(later, number=2)
        situation.install_kernel(later)
        situation.install_module(later + 60)
        result["second_check"] = run_check(kcheck, prefix)

        # 4. The same package again from the binary package: nothing is patched, the hook stays silent.
        prfile = prefix / "usr/src/linux/mm/prfile.c"
        before = prfile.stat().st_mtime
        proc = subprocess.run([*emerge, "--usepkgonly", "sys-fs/aufs3"], env=env, capture_output=True, text=True)
        result["binary_rc"] = proc.returncode
        result["binary_output"] = proc.stdout + proc.stderr
        result["binary_touched_tree"] = prfile.stat().st_mtime != before
        result["snapshots_left"] = sorted(p.name for p in (prefix / "var/lib/kcheck").glob("snapshot-*"))
        result["third_check"] = run_check(kcheck, prefix)

        # 5. The kernel sources re-merged: their files replace the patched ones.
        proc = subprocess.run([*emerge, "sys-kernel/gentoo-sources"], env=env, capture_output=True, text=True)
        result["sources_rc"] = proc.returncode
        result["sources_output"] = proc.stdout + proc.stderr
    finally:
        playground.cleanup()
        shutil.rmtree(gnupg, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
