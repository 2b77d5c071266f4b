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
from kcheck.kconfig import cache, snapshot, trust
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


def _assignment_lines(text: str, prefix: str, names) -> str:
    """The lines of ``text`` that assign (``PREFIXX=...``, ``# PREFIXX is not set``) a symbol in ``names``."""
    pattern = _ASSIGNMENT_PATTERNS.get(prefix)
    if pattern is None:
        escaped = re.escape(prefix)
        # kconfiglib's own patterns, anchored at each line: "PREFIX([^=]+)=(.*)" and "# PREFIX([^ ]+) is not set".
        pattern = _ASSIGNMENT_PATTERNS[prefix] = re.compile(
            rf"^(?:{escaped}([^=\n]+)=|# {escaped}([^ \n]+) is not set)[^\n]*", re.M)
    return "".join([m[0] + "\n" for m in pattern.finditer(text) if (m[1] or m[2]) in names])


_ASSIGNMENT_PATTERNS: dict[str, re.Pattern] = {}


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


def read_assignments(path: Path, plain: DotConfig | None = None) -> Mapping[str, tuple[str, int]]:
    """Return symbol -> (value as written, 1-based line) of a ``.config`` (last one wins)."""
    return _Written(read_plain(path, plain).values)


class _Written(Mapping):
    """symbol -> (value, line), read through the plain reader's values (no copy of thousands of entries)."""

    def __init__(self, values) -> None:
        self._values = values

    def __getitem__(self, symbol: str) -> tuple[str, int]:
        value = self._values[symbol]
        return value.value, value.line

    def get(self, symbol: str, default=None):
        """The (value, line) of ``symbol``, or ``default``."""
        value = self._values.get(symbol)
        return default if value is None else (value.value, value.line)

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class KconfigSource:
    """One ``.config`` as Kconfig sees it (a :class:`kcheck.model.ConfigSource`, mode "kconfig").

    The tree holds one configuration at a time; when another file has been
    read since, this source loads its own file back before answering, so
    sources stay correct however many files one tree reads.
    """

    mode = "kconfig"

    def __init__(self, tree: KconfigTree, path: Path, written: Mapping[str, tuple[str, int]], text: str = ""):
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

    def prepare(self, symbols) -> None:
        """Make the symbols about to be asked for ready at once (one rebuild of their Kconfig cone)."""
        self.tree._activate(self)
        self.tree._need(name.removeprefix("CONFIG_") for name in symbols)

    def state(self, symbol: str) -> SymbolState:
        """Return Kconfig's value of ``symbol`` (no ``CONFIG_`` prefix), where it was written and why."""
        name = symbol.removeprefix("CONFIG_")
        cached = self._states.get(name)
        if cached is None:
            self.tree._activate(self)
            self.tree._need((name,))
            cached = self._states[name] = state_of(self.tree._kconf, name, self.written.get(name))
        return cached


class KconfigTree:
    """A parsed kernel Kconfig tree; see the module docs.

    ``kconf`` is the underlying :class:`kconfiglib.Kconfig` (with kcheck's
    compatibility layer), holding the configuration last read. A tree taken
    from the cache rebuilds kconfiglib's objects lazily: reading values
    (:meth:`KconfigSource.state`) rebuilds only the symbols they depend on;
    the first use of :attr:`kconf` rebuilds the rest.
    """

    def __init__(self, srctree: Path, arch: str, env: dict[str, str], kconf=None, *,
                 allow_shell: bool, from_cache: bool, lazy: snapshot.LazyKconfig | None = None) -> None:
        self.srctree = srctree
        self.arch = arch
        self.env = env
        self._kconf = kconf if lazy is None else lazy.kconf
        self._lazy = lazy
        self.allow_shell = allow_shell
        #: True when the parse came from the per-user cache.
        self.from_cache = from_cache
        #: Why the cache was not used, when that is worth a line under --verbose (None otherwise).
        self.cache_note: str | None = None
        #: Why the tree's ``$(shell,...)`` probes were not run although allowed (None: they ran, or were not wanted).
        self.shell_refused: str | None = None
        #: What kconfiglib warned about while parsing the tree (file:line: warning: ...).
        self.parse_warnings: tuple[str, ...] = tuple(self._kconf.warnings)
        self._active: KconfigSource | None = None

    @property
    def warnings(self) -> list[str]:
        """kconfiglib's warnings: the parse's, then those of the configuration last read.

        Evaluation warnings (a default clamped to an empty ``range``, a select
        against unmet dependencies...) appear as the values they concern are
        computed; after :meth:`write_config` every value has been. A tree from
        the cache is not rebuilt for this: only the symbols rebuilt so far
        (what the check looked at) have had their lines loaded and values
        computed (:meth:`KconfigSource.warnings` asks for all).
        """
        return list(dict.fromkeys([*self.parse_warnings, *self._kconf.warnings]))

    @property
    def kconf(self):
        """The whole :class:`kconfiglib.Kconfig` (a tree from the cache is rebuilt in full on first use)."""
        if self._lazy is not None and not self._lazy.complete:
            self._grow(self._lazy.materialize_all)
        return self._kconf

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

        A fresh parse is written to the cache when the process ends (see
        :mod:`kcheck.kconfig.cache`). ``use_cache=False`` always parses and
        leaves the cache alone. Raises :class:`KcheckError` when ``srctree``
        is not a kernel tree or its Kconfig files do not parse (the message
        names file and line).
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
        entry_path = cache.entry_path(srctree, env["ARCH"], allow_shell)
        _release_dropped_trees()
        entry, note = (cache.load(entry_path, str(srctree), env["ARCH"], allow_shell, env)
                       if use_cache else (None, None))
        if entry is None and use_cache and allow_shell:
            refused = _refused_entry(srctree, arch)
            if refused is not None:
                entry, env, shell_refused, allow_shell = *refused, False
        if entry is not None:
            tree = cls(srctree, env["ARCH"], env, allow_shell=allow_shell, from_cache=True, lazy=entry.lazy())
        else:
            with progress.step(f"reading the Kconfig files of Linux {env['KERNELVERSION']} in {srctree} for ARCH={env['ARCH']}",
                               how_often="once per tree; later runs use the cache" if use_cache else "not cached"):
                try:
                    kconf = _parse(srctree, env, allow_shell)
                except trust.Untrusted as exc:
                    # A file or directory on the way belongs to someone else: none of its
                    # probes ran (the check comes first); parse again running none at all.
                    shell_refused, allow_shell = exc.reason, False
                    env = kconfig_env(srctree, arch, run_tools=False)
                    kconf = _parse(srctree, env, allow_shell)
            tree = cls(srctree, env["ARCH"], env, kconf, allow_shell=allow_shell, from_cache=False)
            tree.shell_refused = shell_refused
            if use_cache:
                tree._store_later()
        tree.cache_note = note
        tree.shell_refused = shell_refused
        return tree

    def read(self, config_path: Path, plain: DotConfig | None = None) -> KconfigSource:
        """Load ``config_path`` as ``make olddefconfig`` would; return its :class:`KconfigSource`.

        ``plain``, when given, is the file as :func:`kcheck.dotconfig.load` read it.
        """
        config_path = Path(config_path)
        config = read_plain(config_path, plain)
        source = KconfigSource(self, config_path, _Written(config.values), config.text or "")
        self._load(source)
        return source

    def write_config(self, path: Path) -> None:
        """Write the loaded configuration as ``make olddefconfig`` would, atomically.

        The text goes through :func:`kcheck.safewrite.write_atomic` (no backup:
        this is ``make``'s output, not a user's edit), so a failure leaves the
        old file byte for byte and no temporary file behind.
        """
        from kcheck import safewrite

        kconf = self.kconf
        header = f"#\n# Automatically generated file; DO NOT EDIT.\n# {kconf.mainmenu_text}\n#\n"
        safewrite.write_atomic(Path(path), kconf._config_contents(header), backup=False)

    def _store_later(self) -> None:
        entry_path = cache.entry_path(self.srctree, self.arch, self.allow_shell)
        path = _refused_path(self.shell_refused) if self.shell_refused else None
        refused = {"path": path, "reason": self.shell_refused} if path else None
        cache.store_later(entry_path, self._kconf, str(self.srctree), self.arch, self.allow_shell, self.env,
                          refused=refused)

    def _need(self, names) -> None:
        """Rebuild the Kconfig cones of ``names`` from the cache, if not done yet."""
        if self._lazy is not None and not self._lazy.complete:
            self._grow(lambda: self._lazy.materialize(names))

    def _grow(self, step) -> None:
        try:
            new = step()
        except snapshot.SnapshotError as exc:
            # A damaged entry (it passed its checksum, so hardly ever): parse as if there were none.
            self.cache_note = cache.note(f"the Kconfig cache entry is damaged ({exc}): parsed again")
            self._kconf, self._lazy, self.from_cache = _parse(self.srctree, self.env, self.allow_shell), None, False
            self._store_later()
            if self._active is not None:
                self._load(self._active)
            return
        if new and self._active is not None:
            self._load_new(self._active, new)

    def _load_new(self, source: KconfigSource, new: list) -> None:
        """Give items just rebuilt their user values from the loaded configuration.

        Items rebuilt together form closed cones (a choice comes with its
        members), and nothing rebuilt earlier depends on them, so loading the
        file for these items alone gives what loading it for all would.
        """
        kconf = self._kconf
        saved = kconf.syms
        kconf.syms = {item.name: item for item in new
                      if item.__class__ is kconfiglib.Symbol and not item.is_constant}
        try:
            self._load_lines(source, replace=False)
        finally:
            kconf.syms = saved
        if kconf.choice_rules:
            for item in new:
                item._invalidate()

    def _load_lines(self, source: KconfigSource, *, replace: bool) -> None:
        """kconfiglib's own ``load_config`` of ``source``, fed only the lines naming symbols in ``kconf.syms``.

        A tree rebuilt in part knows a fraction of the symbols a ``.config``
        assigns; kconfiglib would skip the other lines one by one as
        undefined. Lines are picked with kconfiglib's own patterns, in file
        order, duplicates included, from the text the plain reader read.
        """
        kconf = self._kconf
        text = _assignment_lines(source.text, kconf.config_prefix, kconf.syms)
        try:
            load_text(kconf, str(source.path), text, replace=replace)
        except (OSError, kconfiglib.KconfigError) as exc:
            raise InputError(f"{source.path}: cannot load the configuration ({exc})") from None

    def _activate(self, source: KconfigSource) -> None:
        if self._active is not source:
            self._load(source)

    def _load(self, source: KconfigSource) -> None:
        kconf = self._kconf
        kconf.warnings = []
        kconf.assignment_order = {}  # this file's assignments alone rank choice members
        if self._lazy is not None and not self._lazy.complete:
            self._load_lines(source, replace=True)
        else:
            try:
                load_text(kconf, str(source.path), source.text)
            except (OSError, kconfiglib.KconfigError) as exc:
                raise InputError(f"{source.path}: cannot load the configuration ({exc})") from None
        if kconf.choice_rules or (self._lazy is not None and not self._lazy.complete):
            # Choice selections depend on the order of assignments too, which
            # kconfiglib's invalidation does not track; a tree rebuilt only in
            # part has no invalidation graph yet (see kcheck.kconfig.snapshot).
            kconf._invalidate_all()
        self._active = source


def _refused_entry(srctree: Path, arch: str | None):
    """(entry, env, reason) of the cached no-probe parse of a tree whose files someone else controls, or None.

    Such a tree is parsed without probes even when they are allowed (the
    parse meets the file and falls back), so its only cache entry is the
    no-probe one, which records the file that stopped the probes. It stands
    for the allowed parse while that file still fails the trust rule; once
    fixed, the tree is parsed again with its probes.
    """
    env = kconfig_env(srctree, arch, run_tools=False)
    entry, _ = cache.load(cache.entry_path(srctree, env["ARCH"], False), str(srctree), env["ARCH"], False, env)
    refused = entry.meta.get("refused") if entry is not None else None
    if not isinstance(refused, dict) or not isinstance(refused.get("path"), str):
        return None
    try:
        info = os.lstat(refused["path"])
    except OSError:
        return None  # gone: parse again, with the probes if nothing else stops them
    # Judged as the parse judged it: the file itself (a symlink is not followed), then its directories.
    reason = trust.TrustGuard(srctree).check_open(refused["path"], info)
    return (entry, env, reason) if reason else None


_TRUST_PHRASES = (" belongs to uid ", " is writable by every user", " is outside the kernel tree ")


def _refused_path(reason: str) -> str | None:
    """The file a :mod:`kcheck.kconfig.trust` reason names (its messages start with it), or None."""
    cut = min((reason.find(phrase) for phrase in _TRUST_PHRASES if phrase in reason), default=-1)
    return reason[:cut] if cut > 0 else None


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


def load_text(kconf, filename: str, text: str, *, replace: bool = True) -> None:
    """``kconf.load_config(filename)``, reading ``text`` instead of the file (see :func:`read_plain`)."""
    kconf._config_text = (filename, text)
    try:
        kconf.load_config(filename, replace=replace)
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


def _parse(srctree: Path, env: Mapping[str, str], allow_shell: bool):
    """Parse ``srctree``'s Kconfig with the compat layer in ``env``; errors name file and line.

    Raises :class:`kcheck.kconfig.trust.Untrusted` when a file the parse
    reaches belongs to someone else (before any of its probes ran).
    """
    # The parse makes ~300k objects that live as long as the process: collecting while it
    # runs only walks them again and again (a third of the parse's time on Linux 6.1).
    collecting = gc.isenabled()
    gc.disable()
    with _environment(env):
        try:
            kconf = CompatKconfig("Kconfig", warn_to_stderr=False, allow_shell=allow_shell,
                                  conf_rules=conf_rules_for(srctree, env["KERNELVERSION"]),
                                  guard=trust.TrustGuard(srctree))
        except kconfiglib.KconfigError as exc:
            message = " ".join(str(exc).split())
            raise KcheckError(
                f"{srctree}: the Kconfig files do not parse: {message}"
            ) from None
        except OSError as exc:
            raise KcheckError(
                f"{exc.filename or srctree}: cannot read a Kconfig file ({exc.strerror})"
            ) from None
        finally:
            # Keep the collector off the parse for good (and from tearing it down one by one at exit).
            gc.freeze()
            if collecting:
                gc.enable()
    kconf._readline = None  # a closed file's method; nothing to keep
    kconf.warn_assign_undef = False
    kconf.warn_assign_override = False
    kconf.warn_assign_redun = False
    return kconf
