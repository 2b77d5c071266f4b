"""``kcheck portage-hook``: the emerge-time front end.

``kcheck portage-hook --snippet`` prints the bash hook (also shipped as
``/usr/share/kcheck/portage-hook.bash``). The hook calls ``kcheck
portage-hook run`` for the few packages that change what a kernel must
carry, in two phases:

- ``pre_pkg_setup`` records a snapshot of the kernel tree before
  ``sys-fs/aufs3``'s ``pkg_setup`` patches it (or before kernel sources
  replace it), so the second phase knows exactly what this merge changed;
- ``post_pkg_postinst`` compares, judges the tree with the same evidence
  ``kcheck --driver aufs`` uses, and for docker checks the configured
  storage driver through the shared checker.

Output is one message per line, ``<level> <text>`` with level ``error``,
``warn`` or ``info``; the bash side hands them to ``eerror``, ``ewarn`` and
``elog`` so they land in emerge's "Messages for package" summary.

``portage-hook run`` is bounded in time (``--timeout``, ``KCHECK_HOOK_TIMEOUT``,
60 s by default): the work runs in a child process group that is stopped past
the bound, with a warning, so a broken or hostile tree never stalls emerge.

Snapshots live under ``<root>/var/lib/kcheck`` (0700, files 0600), written
atomically under an exclusive ``flock`` so parallel merges cannot mix them,
and opened with ``O_NOFOLLOW`` relative to the directory: root writes there,
so a symlink planted by someone else must not redirect those writes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import select
import signal
import stat
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import click

from kcheck import readsafe, safewrite
from kcheck.errors import KcheckError
from kcheck.model import Finding, Status

#: Where the hook keeps its snapshots, below ``--root``.
STATE_DIR = Path("var/lib/kcheck")
#: A snapshot is a few KiB of JSON; anything past this is not one of ours.
_SNAPSHOT_LIMIT = 4 * 1024 * 1024
#: The storage driver docker uses when daemon.json names none.
DEFAULT_STORAGE_DRIVER = "overlay2"
_PHASES = ("pre_pkg_setup", "post_pkg_postinst")
#: Seconds ``portage-hook run`` may take before it gives up with a warning.
DEFAULT_TIMEOUT = 60.0
#: CATEGORY and PN as PMS allows them; anything else never reaches a file name.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9+_.-]*$")
_DOCKER = ("app-containers/docker", "app-emulation/docker")


def snippet() -> str:
    """The bash hook users source from ``/etc/portage/bashrc``."""
    return resources.files("kcheck").joinpath("data", "portage-hook.bash").read_text(encoding="utf-8")


@click.group("portage-hook", invoke_without_command=True)
@click.option("--snippet", "show_snippet", is_flag=True, help="Print the bash hook for /etc/portage/bashrc.")
@click.pass_context
def portage_hook(ctx: click.Context, show_snippet: bool) -> None:
    """Warn at emerge time when the kernel no longer fits what was merged.

    \b
    Install the hook by adding this line to /etc/portage/bashrc:
      if [[ -r /usr/share/kcheck/portage-hook.bash ]]; then source /usr/share/kcheck/portage-hook.bash; fi
    (installed by the Gentoo package), or copy it in once:
      kcheck portage-hook --snippet >> /etc/portage/bashrc
    """
    if show_snippet:
        click.echo(snippet(), nl=False)
    elif ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@portage_hook.command("run")
@click.option("--phase", type=click.Choice(_PHASES), required=True, help="The ebuild phase the hook runs in.")
@click.option("--category", required=True, help="CATEGORY of the package being merged.")
@click.option("--pn", required=True, help="PN of the package being merged.")
@click.option(
    "--merge-type", default="source", type=click.Choice(["source", "binary", "buildonly"]), help="MERGE_TYPE."
)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"), help="EROOT of the merge.")
@click.option(
    "--kernel-dir", type=click.Path(file_okay=False, path_type=Path), help="Kernel tree (default <root>/usr/src/linux)."
)
@click.option(
    "--build-dir", type=click.Path(file_okay=False, path_type=Path), help="Kernel build directory (KBUILD_OUTPUT)."
)
@click.option("--timeout", type=click.FloatRange(min=0), default=DEFAULT_TIMEOUT, show_default=True,
              envvar="KCHECK_HOOK_TIMEOUT", metavar="SECONDS",
              help="Give up (with a warning) after this long, so a broken tree never stalls emerge; 0: no limit.")
def run(
    phase: str,
    category: str,
    pn: str,
    merge_type: str,
    root: Path,
    kernel_dir: Path | None,
    build_dir: Path | None,
    timeout: float,
) -> None:
    """Called by the bash hook; prints '<level> <message>' lines. Always exits 0."""
    work = functools.partial(
        hook_messages,
        phase=phase,
        category=category,
        pn=pn,
        merge_type=merge_type,
        root=root,
        kernel_dir=kernel_dir,
        build_dir=build_dir,
    )
    for level, text in within(timeout, work):
        for line in text.splitlines():
            click.echo(f"{level} {line}")


def within(seconds: float, work) -> list[tuple[str, str]]:
    """Run ``work()`` (which returns the hook's messages) in a child process, for at most ``seconds``.

    The child gets its own process group; past the bound the group (the
    check and any Kconfig probe it started) gets SIGTERM, then SIGKILL, and
    the hook says so in a warning instead of stalling the merge. ``0`` means
    no bound (``work`` runs here).
    """
    if not seconds:
        return work()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into click
        status = 0
        try:
            os.close(read_end)
            os.setpgid(0, 0)
            try:
                messages = work()
            except KcheckError as exc:
                messages = [("warn", exc.message)]
            with os.fdopen(write_end, "w", encoding="utf-8") as out:
                json.dump(messages, out)
        except BaseException:  # noqa: BLE001 - the parent reports a silent child
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    deadline = time.monotonic() + seconds
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        try:
            while True:
                left = deadline - time.monotonic()
                ready = select.select([pipe], [], [], max(left, 0))[0] if left > 0 else []
                if not ready:
                    _stop(pid)
                    return [("warn", f"the check did not finish within {seconds:g} s and was stopped; the merge goes "
                                     "on (run 'kcheck' by hand, or set KCHECK_HOOK_TIMEOUT to allow longer)")]
                chunk = os.read(pipe.fileno(), 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except BaseException:
            _stop(pid)  # interrupted (Ctrl-C in emerge): the child's own group would not see it
            raise
    os.waitpid(pid, 0)
    try:
        messages = json.loads(b"".join(chunks))
        return [(str(level), str(text)) for level, text in messages]
    except (ValueError, TypeError):
        return [("warn", "the check stopped without an answer; the merge goes on (run 'kcheck' by hand)")]


def _stop(pid: int) -> None:
    """End the child's process group: SIGTERM (the parse cleans up), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for _ in range(40):
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # probes the child started and left behind


def hook_messages(
    *,
    phase: str,
    category: str,
    pn: str,
    merge_type: str = "source",
    root: Path = Path("/"),
    kernel_dir: Path | None = None,
    build_dir: Path | None = None,
) -> list[tuple[str, str]]:
    """What the hook says for one phase of one merge, as (level, text) pairs.

    Errors a user can cause (an unsafe state directory, an unreadable
    configuration) become a ``warn`` message: a check never fails a merge.
    """
    if not (_NAME_RE.match(category) and _NAME_RE.match(pn)):
        return [("warn", f"ignoring a package name kcheck cannot use: {category}/{pn}")]
    if not Path(root).is_absolute():
        # An empty or relative EROOT would put /var/lib/kcheck below the current directory.
        return [("warn", f"--root {str(root)!r} is not an absolute path (EROOT unset?); nothing checked")]
    cp = f"{category}/{pn}"
    tree = kernel_dir or root / "usr" / "src" / "linux"
    aufs_module = is_aufs_module_name(cp, root)
    try:
        if cp in _DOCKER:
            return _docker_messages(root, kernel_dir) if phase == "post_pkg_postinst" else []
        if aufs_module and merge_type == "binary":
            return []
        if aufs_module or (category == "sys-kernel" and pn.endswith("-sources")):
            with StateStore(root) as store:
                if phase == "pre_pkg_setup":
                    store.save(cp, _snapshot(tree, build_dir))
                    return []
                return _aufs_messages(root, tree, build_dir, cp, store.take(cp))
    except KcheckError as exc:
        return [("warn", exc.message)]
    return []


def is_aufs_module_name(cp: str, root: Path) -> bool:
    """True when merging ``cp`` may patch the kernel tree for aufs or build aufs.ko.

    Any package with aufs in its name (``sys-fs/aufs3``, ``sys-fs/aufs4``, an
    overlay's ``sys-fs/aufs6``) except kernel sources and ``aufs-util``, and
    any package named in ``KCHECK_AUFS_PACKAGES`` or ``/etc/kcheck/aufs-packages``.
    Once merged, the package's own files decide (:func:`kcheck.portage.aufs_state.aufs_packages`).
    """
    from kcheck.portage.aufs_state import extra_names

    category, _, pn = cp.partition("/")
    if category == "sys-kernel" and pn.endswith("-sources"):
        return False
    if "aufs" in pn and not pn.startswith("aufs-util"):
        return True
    return cp in extra_names(root)


def _snapshot(tree: Path, build_dir: Path | None) -> dict:
    from kcheck.portage.aufs_state import read_tree

    return {"evidence": json.loads(read_tree(tree, build_dir).to_json())}


def _aufs_messages(
    root: Path, tree: Path, build_dir: Path | None, cp: str, before: dict | None
) -> list[tuple[str, str]]:
    from kcheck.portage.aufs_state import (
        assess,
        aufs_packages,
        diff,
        read_tree,
    )
    from kcheck.portage.facts import portage_facts

    facts = portage_facts(root)
    packages = aufs_packages(facts)
    after = read_tree(tree, build_dir)
    earlier = _evidence(before)
    changes = diff(earlier, after) if earlier else []
    if not (changes or after.patched or after.partial or after.lost or packages.modules):
        # Kernel sources without any aufs involvement: nothing for this hook to say.
        return []
    messages = [("info", change) for change in changes]
    if before is not None and earlier is None:
        messages.append(("info", "ignored the snapshot taken before this merge: kcheck cannot read it (from another "
                                 "kcheck version?), so what this merge changed is not shown"))
    findings = assess(root, tree, build_dir, facts)
    messages += _finding_messages(findings)
    return messages


#: What each field of a snapshot's evidence may hold (its annotation in TreeEvidence).
_EVIDENCE_TYPES = {
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float | None": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
    "str | None": lambda v: v is None or isinstance(v, str),
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
}


def _evidence(before: dict | None):
    """The snapshot's TreeEvidence, or None when there is none or it is stale, foreign or damaged."""
    from dataclasses import MISSING, fields

    from kcheck.portage.aufs_state import TreeEvidence

    data = before.get("evidence") if isinstance(before, dict) else None
    if not isinstance(data, dict):
        return None
    for f in fields(TreeEvidence):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                return None
            continue
        valid = _EVIDENCE_TYPES.get(str(f.type))
        if valid is None or not valid(data[f.name]):
            return None
    return TreeEvidence.from_dict(data)


def _finding_messages(findings: list[Finding]) -> list[tuple[str, str]]:
    messages = []
    for f in findings:
        if f.check == "aufs-reboot":
            if f.status is Status.OK:
                messages.append(("info", f.reason))
            elif f.reason.startswith("do not build"):
                # Re-merged sources: the kernel built before keeps its patch; the next build is the danger.
                messages.append(("error", f.reason.split("; left to do", 1)[0]))
            else:
                messages.append(("error", "do not reboot yet: aufs will not load until the steps above are done"))
            continue
        if f.status in (Status.FAIL, Status.WARN):
            # Each step is a warning; the closing "do not reboot yet" is the error.
            messages.append(("warn", f.reason + (f" ({f.detail})" if f.detail else "")))
            if f.fix:
                messages.append(("warn", f"  fix: {f.fix}"))
    return messages


def storage_driver(root: Path) -> tuple[str, str | None]:
    """The storage driver docker is configured for, and a problem reading it (or None).

    Read from ``<root>/etc/docker/daemon.json`` (``"storage-driver"``); docker
    picks overlay2 when none is named.
    """
    from kcheck.host.docker import load_daemon_json

    path = root / "etc" / "docker" / "daemon.json"
    try:
        data = load_daemon_json(path)
    except KcheckError as exc:
        # Bounded and depth-safe: a FIFO or a hostile file must not stall or crash the merge.
        return DEFAULT_STORAGE_DRIVER, f"{exc.message}; assuming {DEFAULT_STORAGE_DRIVER}"
    driver = data.get("storage-driver") if isinstance(data, dict) else None
    if not isinstance(driver, str) or not driver:
        return DEFAULT_STORAGE_DRIVER, None
    return driver, None


def _docker_messages(root: Path, kernel_dir: Path | None) -> list[tuple[str, str]]:
    from kcheck.check import run_check

    # A fresh Kconfig parse is cached by a writer left to finish on its own: emerge goes on at once.
    os.environ.setdefault("KCHECK_CACHE_BACKGROUND", "1")
    driver, problem = storage_driver(root)
    messages = [("warn", problem)] if problem else []
    report = run_check(driver=driver, kernel_dir=kernel_dir, root=root)
    bad = [f for f in report.findings if f.status in (Status.FAIL, Status.WARN)]
    for f in bad:
        level = "error" if f.status is Status.FAIL else "warn"
        messages.append((level, f"{f.symbol or f.check}: {f.reason}"))
    verdict = "does not fit" if report.failed() else "fits"
    level = "error" if report.failed() else "info"
    messages.append(
        (
            level,
            f"the kernel configuration {report.config_path} {verdict} docker's {driver} storage driver (details: kcheck --driver {driver})",
        )
    )
    return messages


class StateStore:
    """The hook's snapshot directory, locked for one hook run.

    Use as a context manager: entering creates ``<root>/var/lib/kcheck``
    (0700) when needed, refuses a directory that is a symlink, belongs to
    someone else or is writable by others, and takes an exclusive ``flock``
    that parallel merges wait on.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_DIR
        self._dir_fd: int | None = None
        self._lock_fd: int | None = None

    def __enter__(self) -> StateStore:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.path, 0o700)
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise KcheckError(
                f"cannot use {self.path} for the hook's snapshots ({exc.strerror}); "
                "make it a directory owned by root with mode 0700, or remove it"
            ) from exc
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            os.close(fd)
            raise KcheckError(
                f"{self.path} belongs to uid {st.st_uid}, not to this user; remove it so kcheck can recreate it"
            )
        if st.st_mode & 0o077:
            # Ours, but opened up by hand: snapshots are nobody else's business.
            os.fchmod(fd, 0o700)
        self._dir_fd = fd
        self._lock_fd = self._open("lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        # Holding the lock, no other writer is active: a temporary file here is
        # what a killed (SIGKILL) run left behind.
        for name in os.listdir(self._dir_fd):
            if name.startswith(".snapshot-") and name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=self._dir_fd)
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in (self._lock_fd, self._dir_fd):
            if fd is not None:
                os.close(fd)
        self._lock_fd = self._dir_fd = None

    def _open(self, name: str, flags: int) -> int:
        try:
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self._dir_fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                # A symlink sits where kcheck writes; never follow it as root.
                raise KcheckError(f"cannot open {self.path / name} (it is a symlink); remove it") from exc
            raise KcheckError(
                f"cannot open {self.path / name} ({exc.strerror}); nothing was changed: "
                f"check free space and permissions of {self.path}"
            ) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise KcheckError(f"{self.path / name} is not a regular file; remove it")
        return fd

    @staticmethod
    def _name(cp: str) -> str:
        return "snapshot-" + cp.replace("/", "_") + ".json"

    def save(self, cp: str, data: dict) -> None:
        """Write the snapshot for package ``cp`` atomically (a temporary file, then rename).

        Raises :class:`KcheckError` when it cannot be written (full disk,
        read-only filesystem); the previous snapshot is then left as it was.
        Termination signals wait until the write is done or undone.
        """
        name = self._name(cp)
        tmp = f".{name}.{os.getpid()}.tmp"
        with safewrite.signals_deferred():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=self._dir_fd)
            fd = self._open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=self._dir_fd)
                if isinstance(exc, OSError):
                    raise KcheckError(
                        f"cannot write {self.path / name} ({exc.strerror or exc}); "
                        f"nothing was changed: check free space and permissions of {self.path}"
                    ) from None
                raise
            with contextlib.suppress(OSError):
                os.fsync(self._dir_fd)

    def take(self, cp: str) -> dict | None:
        """Read and remove the snapshot of ``cp`` (None when there is none or it is unreadable)."""
        name = self._name(cp)
        try:
            fd = self._open(name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            data = json.loads(readsafe.read_fd(fd, name, _SNAPSHOT_LIMIT, what="hook snapshot"))
        except (ValueError, RecursionError, readsafe.UNREADABLE):
            data = None  # ignored with a note, as any snapshot it cannot read
        finally:
            os.close(fd)
        os.unlink(name, dir_fd=self._dir_fd)
        return data if isinstance(data, dict) and "evidence" in data else None

    def names(self) -> Iterator[str]:
        """The snapshot files currently kept (for inspection and tests)."""
        return iter(sorted(n for n in os.listdir(self._dir_fd) if n.startswith("snapshot-")))
