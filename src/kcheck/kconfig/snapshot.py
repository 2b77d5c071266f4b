"""A parsed Kconfig tree as plain data, and kconfiglib's objects rebuilt from it on demand.

kconfiglib stays the parser of record and, through :mod:`kcheck.kconfig.compat`,
the only evaluator: this module never computes a value. It turns a freshly
parsed :class:`~kcheck.kconfig.compat.CompatKconfig` into *records* (JSON
arrays of strings and integers, one per symbol or choice) and one expression
table (three 32-bit integers per distinct expression: operator and two
operands, each an item number or an earlier entry), and rebuilds kconfiglib's
own ``Symbol``/``Choice``/``MenuNode`` objects from them.

Rebuilding is lazy. Evaluating a symbol touches only its *cone*: the symbols
and choices named in its ``depends on``, prompts, defaults, ranges, the
``select``/``imply`` conditions aimed at it (``rev_dep``/``weak_rev_dep``), its
choice and that choice's members, and so on transitively. Each record lists
those references, so :meth:`LazyKconfig.materialize` rebuilds exactly the cone
of the symbols asked for: about a quarter of Linux's 17,000 items for
everything docker and the storage drivers check, instead of the whole graph.
A cone is closed, so values computed inside it are those of the whole tree;
``select``/``imply`` lists pointing out of the cone are filled in when their
target arrives. ``explain``, ``fix`` and ``write_config`` ask for everything
(:meth:`LazyKconfig.materialize_all`), menus and the menu tree included.

Not kept, as nothing in kcheck reads them and kconfiglib only prints them:
help texts, include paths, and the per-node copies of properties
(``MenuNode.defaults``/``selects``/``implies``/``ranges`` are empty; the
symbol's own lists are complete).

Nothing here can construct anything but kconfiglib's three classes, lists,
tuples, strings and integers: a damaged record raises :class:`SnapshotError`.
"""

from __future__ import annotations

import array
import gc
import json
import sys

import kconfiglib
from kconfiglib import COMMENT, MENU, NOT, Choice, MenuNode, Symbol

from kcheck.kconfig.compat import CHOICE_RULES_6_11, CompatKconfig

_SYM, _CHOICE = "s", "c"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, check_circular=False).encode


def _record_encoder():
    """``encode(list) -> str``: compact ASCII JSON, as ``_dumps`` writes it.

    ``JSONEncoder.encode`` sets up a new C encoder on every call, which costs
    more than encoding a small record; one is made here for all of them
    (``_dumps`` where the interpreter has no C accelerator).
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _dumps
    encode = make(None, None, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


#: kconfiglib's operator constants by value: rebuilt tuples hold kconfiglib's own objects
#: (it compares operators with ``is``).
_OPERATORS = {op: op for op in (kconfiglib.AND, kconfiglib.OR, kconfiglib.NOT, kconfiglib.EQUAL,
                                kconfiglib.UNEQUAL, kconfiglib.LESS, kconfiglib.LESS_EQUAL,
                                kconfiglib.GREATER, kconfiglib.GREATER_EQUAL)}


class SnapshotError(Exception):
    """A record does not describe a valid Kconfig item (a damaged or foreign cache entry)."""


# ---------------------------------------------------------------------------------------------
# Encoding: kconfiglib objects -> records
# ---------------------------------------------------------------------------------------------

class _Encoder:
    def __init__(self, kconf) -> None:
        self.kconf = kconf
        n, m, y = kconf.n, kconf.m, kconf.y
        consts = [n, m, y] + [s for s in kconf.const_syms.values() if s not in (n, m, y)]
        defined = list(kconf.unique_defined_syms)
        seen = set(map(id, defined))
        undefined = [s for s in kconf.syms.values() if id(s) not in seen]
        self.items: list = consts[:3] + defined + list(kconf.unique_choices) + undefined + consts[3:]
        self.first_const = len(self.items) - len(consts) + 3
        #: item -> its number (kconfiglib's items hash and compare by identity)
        self.index = {item: i for i, item in enumerate(self.items)}
        self.node_ids: dict[int, int] = {}
        self.tree_nodes: list = []  # every MenuNode, in menu order
        self.files: dict[str, int] = {}  # file name -> number (nodes name files by number)
        self.table = array.array("i")  # the expression table, three integers per entry
        self.expr = self._expression_encoder()
        self.refs = self._cones()

    def _cones(self) -> list[set]:
        """Per item, the items its value is computed from: kconfiglib's own ``_dependents``, reversed.

        ``Kconfig._build_dep`` records exactly what evaluation reads (prompt
        conditions, defaults, ranges, ``rev_dep``, ``weak_rev_dep``,
        ``direct_dep``; a choice and its members both ways). Constants are
        left out: they are rebuilt with the skeleton.
        """
        index = self.index
        refs: list[set] = [set() for _ in self.items]
        for i, item in enumerate(self.items[: self.first_const]):
            for dependent in item._dependents:
                refs[index[dependent]].add(i)
        for choice in self.kconf.unique_choices:
            c = index[choice]
            for member in choice.syms:
                m = index[member]
                refs[c].add(m)
                refs[m].add(c)
        return refs

    def file(self, name: str) -> int:
        number = self.files.get(name)
        if number is None:
            number = self.files[name] = len(self.files)
        return number

    def _expression_encoder(self):
        """Return ``expr(e)``: an item number (>= 0), or ``-1 - k`` for entry k of the expression table.

        Every distinct expression tuple becomes one table entry ``(operator,
        operand, operand)`` whose operands are encoded the same way and come
        before it, so the sharing kconfiglib builds in (a menu's dependencies
        in every symbol of the menu) is kept, on disk and when rebuilt.
        """
        index = self.index
        built: dict[int, int] = {}  # id of an encoded tuple -> its reference
        known = built.get
        table = self.table
        extend = table.extend

        def expr(e) -> int:
            if e.__class__ is not tuple:
                return index[e]
            ref = known(id(e))
            if ref is not None:
                return ref
            first = e[1]
            first = index[first] if first.__class__ is not tuple else expr(first)
            if e[0] is NOT:
                second = 0
            else:
                second = e[2]
                second = index[second] if second.__class__ is not tuple else expr(second)
            extend((e[0], first, second))
            ref = built[id(e)] = -(len(table) // 3)
            return ref

        return expr

    def node(self, node, ex) -> list:
        prompt = node.prompt
        vis = getattr(node, "visibility", None)  # kconfiglib sets it on menus only
        file = self.files.get(node.filename)
        if file is None:
            file = self.file(node.filename)
        return [
            self.node_ids[id(node)], file, node.linenr,
            None if prompt is None else prompt[0], None if prompt is None else ex(prompt[1]),
            ex(node.dep), None if vis is None else ex(vis), getattr(node, "is_menuconfig", False),
        ]

    def record(self, i: int, item) -> list:
        ex = self.expr
        node = self.node
        nodes = [node(n, ex) for n in item.nodes]
        if item.__class__ is Choice:
            body = [
                _CHOICE, item.name, item.orig_type, item.is_optional, ex(item.direct_dep),
                [[ex(s), ex(c)] for s, c in item.defaults], [ex(s) for s in item.syms], nodes,
            ]
        else:
            choice = item.choice
            body = [
                _SYM, item.name, item.orig_type, item.is_constant,
                None if choice is None else ex(choice),
                ex(item.direct_dep), ex(item.rev_dep), ex(item.weak_rev_dep),
                [[ex(v), ex(c)] for v, c in item.defaults] if item.defaults else [],
                [[ex(t), ex(c)] for t, c in item.selects] if item.selects else [],
                [[ex(t), ex(c)] for t, c in item.implies] if item.implies else [],
                [[ex(lo), ex(hi), ex(c)] for lo, hi, c in item.ranges] if item.ranges else [],
                item.env_var, item.is_allnoconfig_y, nodes,
            ]
        refs = self.refs[i]
        refs.discard(i)
        body.append(sorted(refs))
        return body

    def walk_tree(self) -> None:
        node = self.kconf.top_node
        stack = []
        while node is not None:
            self.node_ids[id(node)] = len(self.tree_nodes)
            self.tree_nodes.append(node)
            if node.list is not None:
                stack.append(node.next)
                node = node.list
                continue
            node = node.next
            while node is None and stack:
                node = stack.pop()

    def tree_table(self) -> list:
        """[item, parent, list, next] per node id; item is an item number or [kind, node record]."""
        ids = self.node_ids
        index = self.index
        out = []
        append = out.append
        for node in self.tree_nodes:
            item = node.item
            if item is MENU or item is COMMENT:
                item = ["menu" if item is MENU else "comment", self.node(node, self.expr)]
            else:
                item = index[item]
            parent, first, following = node.parent, node.list, node.next
            append([item, None if parent is None else ids[id(parent)], None if first is None else ids[id(first)],
                    None if following is None else ids[id(following)]])
        return out


def encode(kconf) -> tuple[dict, list[bytes], bytes, bytes]:
    """Return (meta, one JSON record per item, the menu tree as JSON, the expression table) for a fresh parse."""
    enc = _Encoder(kconf)
    enc.walk_tree()
    for item in enc.items:  # nodes outside the menu tree (none in Linux) still get ids
        for node in item.nodes:
            if id(node) not in enc.node_ids:
                enc.node_ids[id(node)] = len(enc.tree_nodes)
                enc.tree_nodes.append(node)
    dump, record = _record_encoder(), enc.record
    records = [dump(record(i, item)).encode("ascii") for i, item in enumerate(enc.items[: enc.first_const])]
    meta = {
        "names": [item.name for item in enc.items],
        "n_defined": len(kconf.unique_defined_syms),
        "n_choices": len(kconf.unique_choices),
        "n_consts": len(kconf.const_syms),  # records stop before the constants (index first_const on)
        "modules": enc.index[kconf.modules],
        "defconfig_list": None if kconf.defconfig_list is None else enc.index[kconf.defconfig_list],
        "top_prompt": kconf.top_node.prompt[0],
        "top_file": [kconf.top_node.filename, kconf.top_node.linenr],
        "srctree": kconf.srctree,
        "config_prefix": kconf.config_prefix,
        "kconfig_filenames": list(kconf.kconfig_filenames),
        "env_vars": sorted(kconf.env_vars),
        "conf_rules": sorted(getattr(kconf, "conf_rules", ())),
        "parse_warnings": list(kconf.warnings),  # written right after the parse: the parse's own
        "transitional": sorted(getattr(kconf, "transitional_names", ())),
        "n_nodes": len(enc.tree_nodes),
    }
    tree = _dumps(enc.tree_table()).encode("ascii")
    meta["files"] = list(enc.files)  # complete only after the menu nodes
    if sys.byteorder != "little":
        enc.table.byteswap()
    return meta, records, tree, enc.table.tobytes()


# ---------------------------------------------------------------------------------------------
# Decoding: records -> kconfiglib objects, on demand
# ---------------------------------------------------------------------------------------------

def _skeleton(meta: dict) -> CompatKconfig:
    """A CompatKconfig with kconfiglib's own n/m/y and no items, as ``Kconfig.__init__`` leaves it."""
    kconf = CompatKconfig.__new__(CompatKconfig)
    kconf._encoding = "utf-8"
    kconf.srctree = meta["srctree"]
    kconf._srctree_prefix = kconfiglib.realpath(kconf.srctree) + kconfiglib.os.sep
    kconf.warn = True
    kconf.warn_to_stderr = False
    kconf.warn_assign_undef = kconf.warn_assign_override = kconf.warn_assign_redun = False
    kconf._warn_assign_no_prompt = True
    kconf.warnings = [w for w in meta["parse_warnings"] if isinstance(w, str)]
    kconf.config_prefix = meta["config_prefix"]
    kconf._set_match = kconfiglib._re_match(kconf.config_prefix + r"([^=]+)=(.*)")
    kconf._unset_match = kconfiglib._re_match(r"# {}([^ ]+) is not set".format(kconf.config_prefix))
    kconf.config_header = kconf.header_header = ""
    kconf.syms, kconf.const_syms, kconf.named_choices = {}, {}, {}
    kconf.defined_syms, kconf.unique_defined_syms, kconf.missing_syms = [], [], []
    kconf.choices, kconf.unique_choices, kconf.menus, kconf.comments = [], [], [], []
    for name in "nmy":
        sym = Symbol()
        sym.kconfig, sym.name, sym.is_constant = kconf, name, True
        sym.orig_type = kconfiglib.TRISTATE
        sym._cached_tri_val = kconfiglib.STR_TO_TRI[name]
        kconf.const_syms[name] = sym
    kconf.n, kconf.m, kconf.y = (kconf.const_syms[c] for c in "nmy")
    for sym in (kconf.n, kconf.m, kconf.y):
        sym.rev_dep = sym.weak_rev_dep = sym.direct_dep = kconf.n
    kconf.variables = {}
    kconf._functions = {}
    kconf.defconfig_list = None
    top = MenuNode()
    top.kconfig, top.item, top.is_menuconfig = kconf, MENU, True
    top.visibility, top.prompt, top.parent, top.dep = kconf.y, (meta["top_prompt"], kconf.y), None, kconf.y
    top.filename, top.linenr = meta["top_file"]
    top.include_path, top.list, top.next = (), None, None
    kconf.top_node = top
    kconf.kconfig_filenames = list(meta["kconfig_filenames"])
    kconf.env_vars = set(meta["env_vars"])
    kconf._parsing_kconfigs = False
    kconf._config_text = None  # CompatKconfig serves a .config's text from here (tree.load_text)
    kconf._guard = None
    kconf.conf_rules = frozenset(meta["conf_rules"])
    kconf.assignment_order = {}
    kconf.transitional_names = frozenset(meta["transitional"])
    return kconf


class LazyKconfig:
    """kconfiglib objects rebuilt from records as they are needed (see the module docs).

    ``record(i)`` returns the raw JSON bytes of item ``i``; ``tree()`` the
    menu tree table. :attr:`kconf` is a real :class:`CompatKconfig` holding
    the items materialized so far (``kconf.syms`` names only those).
    """

    def __init__(self, meta: dict, record, tree, expressions: bytes) -> None:
        self.meta = meta
        table = array.array("i")
        table.frombytes(expressions)
        if sys.byteorder != "little":
            table.byteswap()
        self._table = table
        self._built: dict[int, tuple] = {}  # table reference -> the tuple rebuilt for it
        self._record = record
        self._tree = tree
        names = meta["names"]
        self.n_items = len(names)
        first_undefined = 3 + meta["n_defined"] + meta["n_choices"]
        self.n_defined = meta["n_defined"]
        self._first_choice = 3 + self.n_defined
        self._first_const = self.n_items - (meta["n_consts"] - 3)
        #: name -> item number, for the symbols the tree defines or references (not constants).
        self.index = {names[i]: i for i in range(3, self._first_choice)}
        self.index.update((names[i], i) for i in range(first_undefined, self._first_const))
        self.kconf = _skeleton(meta)
        self._files = meta["files"]
        self._objects: list = [None] * self.n_items
        self._objects[0:3] = [self.kconf.n, self.kconf.m, self.kconf.y]
        for i in range(self._first_const, self.n_items):  # constants, as Kconfig._lookup_const_sym makes them
            const = self._objects[i] = Symbol()
            const.kconfig, const.name, const.is_constant = self.kconf, names[i], True
            const.rev_dep = const.weak_rev_dep = const.direct_dep = self.kconf.n
            self.kconf.const_syms[const.name] = const
        self._nodes: dict[int, MenuNode] = {0: self.kconf.top_node}
        self._pending: dict[int, list] = {}  # target item -> [(list to append to, cond)]
        self.complete = False

    # -- public ------------------------------------------------------------------------------

    def materialize(self, names) -> list:
        """Rebuild the cones of the symbols ``names`` (unknown names are skipped); return the new items."""
        wanted = [self.index[n] for n in names if n in self.index]
        wanted.append(self.meta["modules"])
        return self._grow(wanted)

    def materialize_all(self) -> list:
        """Rebuild every item and the menu tree (for explain, fix and write_config)."""
        if self.complete:
            return []
        new = self._grow(range(3, self._first_const))
        self._link_tree()
        # Only now: values read lazily are computed after their file is loaded (the tree
        # invalidates everything after each load), but fix and set_value need kconfiglib's
        # invalidation graph.
        for item in self._objects[3: self._first_const]:
            self._depend(item)
        self.complete = True
        return new

    # -- internals ---------------------------------------------------------------------------

    def _decode(self, i: int) -> list:
        try:
            rec = json.loads(self._record(i))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise SnapshotError(f"record {i}: {exc!r}") from None
        if rec.__class__ is not list or not rec or rec[0] not in (_SYM, _CHOICE):
            raise SnapshotError(f"record {i} is not a symbol or a choice")
        return rec

    def _grow(self, wanted) -> list:
        # Tens of thousands of new objects that live as long as the tree: collecting while
        # they are made only walks them again and again (a parse is frozen the same way).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._grow_unchecked(wanted)
        finally:
            if enabled:
                gc.freeze()
                gc.enable()

    def _grow_unchecked(self, wanted) -> list:
        objects = self._objects
        records: dict[int, list] = {}
        try:
            stack = [i for i in wanted if objects[i] is None]
            while stack:
                i = stack.pop()
                if i in records or objects[i] is not None:
                    continue
                rec = records[i] = self._decode(i)
                stack.extend(j for j in rec[-1] if objects[j] is None and j not in records)
            if not records:
                return []
            return self._build(records)
        except (IndexError, KeyError, TypeError, ValueError, RecursionError) as exc:
            raise SnapshotError(f"damaged record: {exc!r}") from None

    def _build(self, records: dict[int, list]) -> list:
        kconf = self.kconf
        objects = self._objects
        order = sorted(records)
        for i in order:
            objects[i] = Choice() if records[i][0] == _CHOICE else Symbol()
        new = []
        ex = self._expr
        for i in order:
            rec, item = records[i], objects[i]
            item.kconfig = kconf
            if rec[0] == _CHOICE:
                (_, item.name, item.orig_type, item.is_optional, dep, defaults, syms, nodes, _) = rec
                item.direct_dep = ex(dep)
                item.defaults = [(ex(s), ex(c)) for s, c in defaults]
                item.syms = [objects[s] for s in syms]
                item.nodes = [self._node(n, item, ex) for n in nodes]
            else:
                (_, item.name, item.orig_type, item.is_constant, choice, dep, rev, weak, defaults,
                 selects, implies, ranges, item.env_var, item.is_allnoconfig_y, nodes, _) = rec
                item.choice = None if choice is None else objects[choice]
                item.direct_dep, item.rev_dep, item.weak_rev_dep = ex(dep), ex(rev), ex(weak)
                item.defaults = [(ex(v), ex(c)) for v, c in defaults]
                item.ranges = [(ex(lo), ex(hi), ex(c)) for lo, hi, c in ranges]
                item.nodes = [self._node(n, item, ex) for n in nodes]
                self._links(item.selects, selects)
                self._links(item.implies, implies)
            new.append(item)
            self._place(i, item)
        for i in order:  # select/imply lists elsewhere that waited for these targets
            for target_list, target, cond in self._pending.pop(i, ()):
                target_list.append((objects[target], self._expr(cond)))
        # Kconfig order, as a parse leaves them (why.py lists selectors in this order).
        kconf.unique_defined_syms = [o for o in objects[3: self._first_choice] if o is not None]
        kconf.defined_syms = list(kconf.unique_defined_syms)
        kconf.unique_choices = [o for o in objects[self._first_choice: self._first_choice + self.meta["n_choices"]]
                                if o is not None]
        kconf.choices = list(kconf.unique_choices)
        kconf.__dict__.pop("_kcheck_reverse", None)  # why.py's reverse index must see the new selects
        return new

    def _place(self, i: int, item) -> None:
        kconf = self.kconf
        if item.__class__ is Choice:
            if item.name is not None:
                kconf.named_choices[item.name] = item
        elif item.is_constant:
            kconf.const_syms[item.name] = item
        else:
            kconf.syms[item.name] = item
            if i == self.meta["modules"]:
                kconf.modules = item
            if i == self.meta["defconfig_list"]:
                kconf.defconfig_list = item

    def _expr(self, ref: int):
        """The kconfiglib expression for a reference: an item, or a tuple rebuilt once and shared."""
        if ref >= 0:
            item = self._objects[ref]
            if item is None:
                raise SnapshotError(f"item {ref} referenced outside its cone")
            return item
        built = self._built.get(ref)
        if built is None:
            k = -1 - ref
            table = self._table
            op, first, second = table[3 * k], table[3 * k + 1], table[3 * k + 2]
            if first < 0 and -1 - first >= k or second < 0 and -1 - second >= k:
                raise SnapshotError(f"expression {k} is not built from earlier ones")
            if op == NOT:
                built = (NOT, self._expr(first))
            else:
                built = (_OPERATORS[op], self._expr(first), self._expr(second))
            self._built[ref] = built
        return built

    def _links(self, target_list: list, pairs: list) -> None:
        """Fill a select/imply list; targets outside the materialized cones wait in _pending."""
        objects = self._objects
        for target, cond in pairs:
            if objects[target] is not None:
                target_list.append((objects[target], self._expr(cond)))
            else:
                self._pending.setdefault(target, []).append((target_list, target, cond))

    def _node(self, rec: list, item, ex) -> MenuNode:
        node_id, file_number, linenr, prompt, prompt_cond, dep, vis, is_menuconfig = rec
        node = MenuNode()
        node.kconfig, node.item = self.kconf, item
        node.filename, node.linenr, node.is_menuconfig = self._files[file_number], linenr, is_menuconfig
        node.help = None  # help texts are not kept: nothing in kcheck shows them
        node.prompt = None if prompt is None else (prompt, ex(prompt_cond))
        node.dep = ex(dep)
        if vis is not None:
            node.visibility = ex(vis)
        node.include_path = ()  # where each file was sourced from is not kept either
        node.parent = node.list = node.next = None
        self._nodes[node_id] = node
        return node

    def _depend(self, item) -> None:
        """Register ``item`` as a dependent of what it reads, as ``Kconfig._build_dep`` does."""
        depend_on = kconfiglib._depend_on
        if item.__class__ is Choice:
            for node in item.nodes:
                if node.prompt:
                    depend_on(item, node.prompt[1])
            for _, cond in item.defaults:
                depend_on(item, cond)
            for member in item.syms:
                member._dependents.add(item)
                if CHOICE_RULES_6_11 in item.kconfig.conf_rules:
                    item._dependents.add(member)  # as CompatKconfig._add_choice_deps does
            return
        if item.is_constant or not item.nodes:
            return
        for node in item.nodes:
            if node.prompt:
                depend_on(item, node.prompt[1])
        for value, cond in item.defaults:
            depend_on(item, value)
            depend_on(item, cond)
        depend_on(item, item.rev_dep)
        depend_on(item, item.weak_rev_dep)
        for low, high, cond in item.ranges:
            depend_on(item, low)
            depend_on(item, high)
            depend_on(item, cond)
        depend_on(item, item.direct_dep)

    def _link_tree(self) -> None:
        """Rebuild menus, comments and the parent/list/next links of every menu node."""
        try:
            table = json.loads(self._tree())
            if table.__class__ is not list or len(table) != self.meta["n_nodes"]:
                raise SnapshotError("the menu tree does not match the items")
            kconf, nodes = self.kconf, self._nodes
            for node_id, (item, *_links) in enumerate(table):
                if item.__class__ is list and node_id:  # node 0 is the top menu, already there
                    kind, rec = item
                    node = self._node(rec, MENU if kind == "menu" else COMMENT, self._expr)
                    (kconf.menus if kind == "menu" else kconf.comments).append(node)
            for node_id, (_, parent, first, following) in enumerate(table):
                node = nodes[node_id]
                node.parent = None if parent is None else nodes[parent]
                node.list = None if first is None else nodes[first]
                node.next = None if following is None else nodes[following]
        except (IndexError, KeyError, TypeError, ValueError, RecursionError) as exc:
            raise SnapshotError(f"damaged menu tree: {exc!r}") from None
