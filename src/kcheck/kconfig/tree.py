"""A kernel source tree's Kconfig, loaded once and used to read many ``.config`` files.

:class:`KconfigTree` is what the rest of kcheck calls::

    tree = KconfigTree.load(Path("/usr/src/linux"))
    source = tree.read(Path("/usr/src/linux/.config"))
    source.state("BTRFS_FS")    # what Kconfig makes of it, and why
    tree.write_config(out)      # what `make olddefconfig` would write

Reading a ``.config`` here means what ``make olddefconfig`` does: the file's
assignments are *user values*; Kconfig then decides each symbol's value from
them, the dependencies, ``select``/``imply`` and defaults. A value in the
file can therefore lose (a symbol whose dependencies are off cannot be y), a
symbol absent from the file gets its default, and a symbol the tree does not
define is dropped.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import kconfiglib

from kcheck import dotconfig, progress
from kcheck.dotconfig import DotConfig
from kcheck.errors import InputError, KcheckError
from kcheck.kconfig import cache, trust
from kcheck.kconfig.compat import CompatKconfig, conf_rules_for
from kcheck.kconfig.env import kconfig_env
from kcheck.kconfig.why import state_of
from kcheck.model import SymbolState



@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """Temporarily export ``env`` (kconfiglib and the ``$(shell,...)`` probes read os.environ)."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def read_plain(path: Path, plain: DotConfig | None = None) -> DotConfig:
    """The ``.config`` at ``path`` as the plain reader sees it, with its text.

    ``plain`` is the same file already read by :func:`kcheck.dotconfig.load`;
    the check passes it so that a file is read and parsed once: Kconfig then
    loads that same text (gzip and non-UTF-8 files included), never the path
    again, so a file swapped in between cannot be read.
    """
    if plain is not None and plain.text is not None:
        return plain
    # An empty file is a valid input here (Kconfig then takes every default), unlike for the check.
    text = dotconfig.read_bytes(path).decode("utf-8", "replace")
    config = dotconfig.parse(text, path)
    config.text = text
    return config


def read_assignments(path: Path, plain: DotConfig | None = None) -> dict[str, tuple[str, int]]:
    """Return symbol -> (value as written, 1-based line) of a ``.config`` (last one wins)."""
    config = read_plain(path, plain)
    return {symbol: (value.value, value.line) for symbol, value in config.values.items()}


class KconfigSource:
    """One ``.config`` as Kconfig sees it (a :class:`kcheck.model.ConfigSource`, mode "kconfig").

    The tree holds one configuration at a time; when another file has been
    read since, this source loads its own file back before answering, so
    sources stay correct however many files one tree reads.
    """

    mode = "kconfig"

    def __init__(self, tree: KconfigTree, path: Path, written: dict[str, tuple[str, int]], text: str = ""):
        self.tree = tree
        self.path = path
        self.written = written
        #: The file's text as read once; Kconfig loads it from here.
        self.text = text
        self._states: dict[str, SymbolState] = {}

    def warnings(self) -> list[str]:
        """kconfiglib's warnings about the tree and this configuration, every value computed.

        Evaluating every symbol (what writing the ``.config`` does) costs a
        tenth of a second on Linux, so only the reports that show these pay it.
        """
        self.tree._activate(self)
        for sym in self.tree.kconf.unique_defined_syms:
            sym.str_value  # noqa: B018 - evaluation warns as a side effect
        return self.tree.warnings

    def state(self, symbol: str) -> SymbolState:
        """Return Kconfig's value of ``symbol`` (no ``CONFIG_`` prefix), where it was written and why."""
        name = symbol.removeprefix("CONFIG_")
        cached = self._states.get(name)
        if cached is None:
            self.tree._activate(self)
            cached = self._states[name] = state_of(self.tree.kconf, name, self.written.get(name))
        return cached


class KconfigTree:
    """A parsed kernel Kconfig tree; see the module docs.

    ``kconf`` is the underlying :class:`kconfiglib.Kconfig` (with kcheck's
    compatibility layer), holding the configuration last read.
    """

    def __init__(self, srctree: Path, arch: str, env: dict[str, str], kconf, *,
                 allow_shell: bool, from_cache: bool) -> None:
        self.srctree = srctree
        self.arch = arch
        self.env = env
        self.kconf = kconf
        self.allow_shell = allow_shell
        #: True when the parse came from the per-user cache.
        self.from_cache = from_cache
        #: Why the tree's ``$(shell,...)`` probes were not run although allowed (None: they ran, or were not wanted).
        self.shell_refused: str | None = None
        #: What kconfiglib warned about while parsing the tree (file:line: warning: ...).
        self.parse_warnings: tuple[str, ...] = tuple(kconf.warnings)
        self._active: KconfigSource | None = None

    @property
    def warnings(self) -> list[str]:
        """kconfiglib's warnings: the parse's, then those of the configuration last read.

        Evaluation warnings (a default clamped to an empty ``range``, a select
        against unmet dependencies...) appear as the values they concern are
        computed; after :meth:`write_config` every value has been.
        """
        return list(dict.fromkeys([*self.parse_warnings, *self.kconf.warnings]))

    @classmethod
    def load(
        cls,
        srctree: Path,
        *,
        arch: str | None = None,
        allow_shell: bool = True,
        use_cache: bool = True,
    ) -> KconfigTree:
        """Parse the Kconfig files of the kernel tree ``srctree`` (or take them from the cache).

        ``arch`` is make's ``ARCH`` (``x86_64``, ``x86``, ``arm64``...); None
        uses ``$ARCH`` or this machine, as ``make`` does (pass the config
        header's arch, see :func:`kcheck.kconfig.env.arch_from_config`, to
        follow the file instead). A tree without ``arch/<SRCARCH>`` for that
        arch is refused with a :class:`KcheckError`.

        ``allow_shell=False`` parses without running any ``$(shell,...)``
        from the Kconfig files (for trees you do not trust). Every probe then
        answers "n": toolchain symbols (``CC_IS_GCC``, ``GCC_VERSION``,
        ``CC_HAS_*``, ``AS_*``, ``LD_*``, ``RUST_IS_AVAILABLE``...) come out
        n/empty/0 and symbols depending on them may differ from what
        ``make olddefconfig`` computes; everything else is exact.

        A tree with any part another user controls (see
        :mod:`kcheck.kconfig.trust`) never gets its probes run: it is parsed
        as with ``allow_shell=False`` and :attr:`shell_refused` says why. An
        ``arch`` that is not one of the tree's ``arch/*`` directories, or a
        ``source`` that leaves the tree, is refused with a :class:`KcheckError`.

        ``use_cache=False`` always parses and leaves the cache alone.
        Raises :class:`KcheckError` when ``srctree`` is not a kernel tree or
        its Kconfig files do not parse (the message names file and line).
        """
        srctree = Path(srctree).resolve()
        if not (srctree / "Kconfig").is_file():
            raise KcheckError(
                f"{srctree}: not a kernel source tree (no Kconfig file); "
                "pass --kernel-dir with the kernel sources"
            )
        shell_refused = untrusted_tree(srctree) if allow_shell else None
        if shell_refused:
            allow_shell = False
        check_arch(srctree, arch or os.environ.get("ARCH"))
        env = kconfig_env(srctree, arch, run_tools=allow_shell)
        check_arch(srctree, env["ARCH"], env["SRCARCH"])
        entry = cache.entry_path(srctree, env["ARCH"], allow_shell)
        _release_dropped_trees()
        with _environment(env):
            kconf = cache.load(entry, str(srctree), env) if use_cache else None
            from_cache = kconf is not None
            if kconf is None:
                with progress.step(f"reading the Kconfig files of Linux {env['KERNELVERSION']} in {srctree} for ARCH={env['ARCH']}",
                                   how_often="once per tree; later runs use the cache" if use_cache else "not cached"):
                    rules = conf_rules_for(srctree, env["KERNELVERSION"])
                    try:
                        kconf = _parse(srctree, allow_shell, rules)
                    except trust.Untrusted as exc:
                        # A file or directory on the way belongs to someone else: none of its
                        # probes ran (the check comes first); parse again running none at all.
                        shell_refused, allow_shell = exc.reason, False
                        env = kconfig_env(srctree, arch, run_tools=False)
                        entry = cache.entry_path(srctree, env["ARCH"], allow_shell)
                        os.environ.update(env)
                        kconf = _parse(srctree, allow_shell, rules)
                if use_cache:
                    cache.store_in_background(entry, kconf, env)
        # The parse lives as long as the caller keeps it: keep the collector from walking its
        # ~300k objects again and again (and from tearing them down one by one at exit).
        gc.freeze()
        tree = cls(srctree, env["ARCH"], env, kconf, allow_shell=allow_shell, from_cache=from_cache)
        tree.shell_refused = shell_refused
        return tree

    def read(self, config_path: Path, plain: DotConfig | None = None) -> KconfigSource:
        """Load ``config_path`` as ``make olddefconfig`` would; return its :class:`KconfigSource`.

        ``plain``, when given, is the file as :func:`kcheck.dotconfig.load` read it.
        """
        config_path = Path(config_path)
        config = read_plain(config_path, plain)
        written = {symbol: (value.value, value.line) for symbol, value in config.values.items()}
        source = KconfigSource(self, config_path, written, config.text or "")
        self._load(source)
        return source

    def write_config(self, path: Path) -> None:
        """Write the loaded configuration as ``make olddefconfig`` would, atomically.

        The text goes through :func:`kcheck.safewrite.write_atomic` (no backup:
        this is ``make``'s output, not a user's edit), so a failure leaves the
        old file byte for byte and no temporary file behind.
        """
        from kcheck import safewrite

        header = f"#\n# Automatically generated file; DO NOT EDIT.\n# {self.kconf.mainmenu_text}\n#\n"
        safewrite.write_atomic(Path(path), self.kconf._config_contents(header), backup=False)

    def _activate(self, source: KconfigSource) -> None:
        if self._active is not source:
            self._load(source)

    def _load(self, source: KconfigSource) -> None:
        kconf = self.kconf
        kconf.warnings = []
        kconf.assignment_order = {}  # this file's assignments alone rank choice members
        try:
            load_text(kconf, str(source.path), source.text)
        except (OSError, kconfiglib.KconfigError) as exc:
            raise InputError(f"{source.path}: cannot load the configuration ({exc})") from None
        if kconf.choice_rules:
            # Choice selections depend on the order of assignments too, which
            # kconfiglib's invalidation does not track.
            kconf._invalidate_all()
        self._active = source


def untrusted_tree(srctree: Path) -> str | None:
    """Why ``srctree``'s ``$(shell,...)`` commands must not run for this user, or None when they may.

    The tree's directory and top Kconfig file are checked here, before
    anything is parsed; every other file the parse reads (and every directory
    above it) is checked as it is reached, before any of its probes can run
    (:mod:`kcheck.kconfig.trust`).
    """
    return trust.TrustGuard(srctree).check(srctree / "Kconfig")


#: What an architecture name may look like (arch/ directory names of every Linux release).
_ARCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_arch(srctree: Path, arch: str | None, src_arch: str | None = None) -> None:
    """Refuse an architecture that is not one of the tree's own ``arch/*`` directories.

    The arch comes from a ``.config`` header another user may have written
    (``# Linux/../../tmp/x 6.1.0 Kernel Configuration``), and Kconfig sources
    ``arch/$(SRCARCH)/Kconfig``: a name that is a path would pick a Kconfig file,
    and its ``$(shell,...)`` commands, outside the tree.
    """
    for name in (arch, src_arch):
        if name is None:
            continue
        if not _ARCH_NAME.fullmatch(name):
            raise KcheckError(
                f"ARCH={name!r} (from the configuration's header or $ARCH) is not an architecture name; "
                f"fix the '# Linux/<arch> ...' line of the configuration, or pass --no-kconfig"
            )
    if src_arch is None:
        return
    try:
        arches = {entry.name for entry in os.scandir(srctree / "arch") if entry.is_dir(follow_symlinks=False)}
    except FileNotFoundError:
        return  # a tree without arch/ (a test tree) sources no arch Kconfig
    except OSError as exc:
        raise KcheckError(f"{srctree / 'arch'} cannot be read ({exc.strerror}); check the kernel tree") from None
    if src_arch not in arches:
        # A .config is read for the architecture its header names (as make would need ARCH= for it).
        raise KcheckError(
            f"{srctree} has no arch/{src_arch} for ARCH={arch} (the configuration's "
            "architecture): pass the kernel sources for it with --kernel-dir, or --no-kconfig"
        )


def load_text(kconf, filename: str, text: str) -> None:
    """``kconf.load_config(filename)``, reading ``text`` instead of the file (see :func:`read_plain`)."""
    kconf._config_text = (filename, text)
    try:
        kconf.load_config(filename, replace=True)
    finally:
        kconf._config_text = None


def _release_dropped_trees() -> None:
    """Let the collector free the trees this process parsed before and no longer uses.

    A parse is frozen (``gc.freeze``) and full of reference cycles, so a tree
    dropped by its caller is only freed once unfrozen and collected: without
    this, every further load in one process (``lint`` over several arches, a
    test session) would keep another ~34 MB for good.
    """
    if gc.get_freeze_count():
        gc.unfreeze()
        gc.collect()


def _parse(srctree: Path, allow_shell: bool, conf_rules: frozenset[str]):
    """Parse ``srctree``'s Kconfig with the compat layer; errors name file and line."""
    try:
        kconf = CompatKconfig("Kconfig", warn_to_stderr=False, allow_shell=allow_shell,
                              conf_rules=conf_rules, guard=trust.TrustGuard(srctree))
    except kconfiglib.KconfigError as exc:
        message = " ".join(str(exc).split())
        raise KcheckError(
            f"{srctree}: the Kconfig files do not parse: {message}"
        ) from None
    except OSError as exc:
        raise KcheckError(
            f"{exc.filename or srctree}: cannot read a Kconfig file ({exc.strerror})"
        ) from None
    kconf._readline = None  # a closed file's method; nothing to keep or pickle
    kconf.warn_assign_undef = False
    kconf.warn_assign_override = False
    kconf.warn_assign_redun = False
    return kconf
