"""A real ``emerge`` of a test sys-fs/aufs3 with the kcheck hook installed.

Run by ``test_emerge.py`` in a subprocess whose ``PYTHONPATH`` starts with the
``lib`` directory of the portage sdist: Portage's test playground
(``ResolverPlayground``) and ``bin/emerge`` work only from a source tree, not
from the installed wheel. The playground is a temporary prefix with its own
repository, profile, ``/etc/portage`` and installed-package database; the
sandbox features are off. Prints one JSON object on its last line.

Steps:
1. a kernel tree ``<prefix>/usr/src/linux`` built and installed a day ago;
2. ``emerge --oneshot --buildpkg sys-fs/aufs3``: its ``pkg_setup`` applies a small
   standalone patch with ``patch -p1`` after a reverse dry run, as the real
   ebuild does; ``/etc/portage/bashrc`` holds ``kcheck portage-hook --snippet``;
3. a simulated kernel rebuild and install, then the hook's check again;
4. ``emerge --usepkgonly sys-fs/aufs3`` from the binary package step 2 built:
   nothing is patched and the hook says nothing.
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

#: Symbols the test patch exports, by file (a subset of what aufs3 exports).
EXPORTS = {
    "fs/dcache.c": ["d_walk"],
    "fs/splice.c": ["do_splice_from"],
    "fs/read_write.c": ["vfs_readf", "vfs_writef"],
    "kernel/task_work.c": ["task_work_run"],
}
RELEASE = "6.1.67-gentoo"
DAY = 86400


def pristine(rel: str) -> str:
    """The unpatched content of a tree file the patch touches."""
    return f"/* {rel} */\nint placeholder;\n"


def standalone_patch() -> str:
    """A unified diff shaped like aufs3's combined base+standalone+mmap patch."""
    parts = [
        "--- /dev/null\n+++ b/mm/prfile.c\n@@ -0,0 +1,2 @@\n"
        "+/* aufs standalone: mmap via a pseudo file */\n+int prfile_placeholder;\n"
    ]
    for rel, symbols in EXPORTS.items():
        added = "".join(f"+EXPORT_SYMBOL_GPL({s});\n" for s in symbols)
        body = "".join(" " + line + "\n" for line in pristine(rel).splitlines())
        parts.append(f"--- a/{rel}\n+++ b/{rel}\n@@ -1,2 +1,{2 + len(symbols)} @@\n{body}{added}")
    return "".join(parts)


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


def bzimage(version: str) -> bytes:
    """An image with an x86 setup header carrying ``version``."""
    data = bytearray(0x800)
    data[0x202:0x206] = b"HdrS"
    data[0x20E:0x210] = (0x300).to_bytes(2, "little")
    raw = version.encode() + b"\0"
    data[0x500 : 0x500 + len(raw)] = raw
    return bytes(data)


def write(path: Path, content: bytes | str, when: float) -> None:
    """Write ``content`` and set the file's mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    os.utime(path, (when, when))


def build_kernel(prefix: Path, when: float, number: int, patched: bool) -> None:
    """Leave what ``make && make modules_install && make install`` leaves, at ``when``."""
    tree = prefix / "usr" / "src" / "linux"
    symbols = [s for names in EXPORTS.values() for s in names] if patched else []
    if patched:
        write(tree / "mm" / "prfile.o", b"\x7fELF", when)
    symvers = "".join(f"0x0000abcd\t{s}\tvmlinux\tEXPORT_SYMBOL_GPL\t\n" for s in ["printk", *symbols])
    write(tree / "Module.symvers", symvers, when)
    write(tree / "vmlinux", b"\x7fELF", when)
    version = f"{RELEASE} (root@playground) #{number} SMP PREEMPT_DYNAMIC"
    write(tree / "arch" / "x86" / "boot" / "bzImage", bzimage(version), when)
    write(tree / "include" / "config" / "kernel.release", RELEASE + "\n", when)
    write(prefix / "boot" / f"vmlinuz-{RELEASE}", bzimage(version), when)


def make_tree(prefix: Path, when: float) -> None:
    """An unpatched kernel tree behind the /usr/src/linux symlink."""
    real = prefix / "usr" / "src" / f"linux-{RELEASE}"
    write(real / "Makefile", "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 67\nEXTRAVERSION = -gentoo\n", when)
    write(real / ".config", "CONFIG_MODULES=y\n# CONFIG_AUFS_FS is not set\n", when)
    for rel in EXPORTS:
        write(real / rel, pristine(rel), when)
    (prefix / "usr" / "src" / "linux").symlink_to(real.name)


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
        }
    }
    playground = ResolverPlayground(ebuilds=ebuilds)
    result: dict = {}
    try:
        prefix = Path(playground.eprefix)
        now = time.time()
        make_tree(prefix, now - 2 * DAY)
        build_kernel(prefix, now - DAY, number=1, patched=False)
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
        # --buildpkg keeps a binary package for step 4.
        proc = subprocess.run([*emerge, "--buildpkg", "sys-fs/aufs3"], env=env, capture_output=True, text=True)
        result["emerge_rc"] = proc.returncode
        result["emerge_output"] = proc.stdout + proc.stderr
        result["prfile"] = (prefix / "usr/src/linux/mm/prfile.c").is_file()

        from kcheck.portage.facts import portage_facts

        result["installed"] = [
            {"cpv": p.cpv, "counter": p.counter, "use": sorted(p.use)}
            for p in portage_facts(prefix).installed("sys-fs/aufs3")
        ]

        # The user rebuilds and installs the kernel, then @module-rebuild.
        later = time.time() + 60
        build_kernel(prefix, later, number=2, patched=True)
        write(prefix / "lib" / "modules" / RELEASE / "misc" / "aufs.ko", b"\x7fELF", later + 60)
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
    finally:
        playground.cleanup()
        shutil.rmtree(gnupg, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
