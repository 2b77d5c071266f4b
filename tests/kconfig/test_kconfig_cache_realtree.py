"""Acceptance: a tree taken from the data cache computes exactly what the fresh parse computes.

For Debian's real trees and configs (every amd64 flavour) and a few
randconfigs, the same ``.config`` is read through a fresh parse (cold) and
through the cache entry that parse wrote (warm). Warm is checked twice: value
by value while the cache rebuilds only the Kconfig cones asked for (value,
origin line and note, growing the rebuilt part in steps, as the check does:
every symbol for the first config, a sample for the others), and after
rebuilding the whole tree, where the ``.config`` it writes must be the fresh
parse's, line for line.

6.1 and 7.3 run by default; 6.12, 7.2 and more randconfigs with ``-m sweep``.
"""

from __future__ import annotations

import random

import pytest

import realkernel
from kcheck.kconfig import KconfigTree, cache

pytestmark = pytest.mark.realtree

DEFAULT = ("6.1", "7.3")
SWEEP = ("6.12", "7.2")


def _trees(series: str, request, tmp_path_factory):
    """(cold tree, a function loading the warm one) for ``series``, with a private cache."""
    tree = request.getfixturevalue(f"linux_{series.replace('.', '_')}")
    xdg = tmp_path_factory.mktemp(f"xdg-{series}")
    with pytest.MonkeyPatch.context() as mp:
        for var in realkernel.TOOLCHAIN_VARS:
            mp.delenv(var, raising=False)
        mp.setenv("XDG_CACHE_HOME", str(xdg))
        cold = KconfigTree.load(tree, arch=realkernel.ARCH, use_cache=False)
        cold._store_later()  # what a load with the cache does after its parse
        cache.flush(close_output=False)

    def warm() -> KconfigTree:
        with pytest.MonkeyPatch.context() as mp:
            for var in realkernel.TOOLCHAIN_VARS:
                mp.delenv(var, raising=False)
            mp.setenv("XDG_CACHE_HOME", str(xdg))
            loaded = KconfigTree.load(tree, arch=realkernel.ARCH)
        assert loaded.from_cache, loaded.cache_note
        return loaded

    return tree, cold, warm


def _inputs(series: str, tree, request, make_config, monkeypatch, randconfigs: int) -> list:
    configs = request.getfixturevalue(f"debian_configs_{series.replace('.', '_')}")
    inputs = [configs[f] for f in realkernel.flavours(series)]
    for seed in range(randconfigs):
        monkeypatch.setenv("KCONFIG_SEED", str(0x5EED + seed))
        inputs.append(make_config(tree, "randconfig"))
    monkeypatch.delenv("KCONFIG_SEED", raising=False)
    return inputs


def _compare(series, request, tmp_path, tmp_path_factory, make_config, monkeypatch, randconfigs):
    tree, cold, warm = _trees(series, request, tmp_path_factory)
    names = [sym.name for sym in cold.kconf.unique_defined_syms]
    for number, given in enumerate(_inputs(series, tree, request, make_config, monkeypatch, randconfigs)):
        lazy = warm()
        fresh_source, lazy_source = cold.read(given), lazy.read(given)
        order = list(names)
        random.Random(number).shuffle(order)
        # The rebuilt part grows in steps; every symbol for the first input, a sample for the others
        # (the whole-tree comparison below covers every value of those).
        steps = [order[:100], order[100:3000], order[3000:]] if number == 0 else [order[:100], order[100:600]]
        for step in steps:
            lazy_source.prepare(step)
            differing = [(n, fresh_source.state(n), lazy_source.state(n)) for n in step
                         if fresh_source.state(n) != lazy_source.state(n)]
            assert not differing, f"{given.name}: {differing[:5]}"
        whole = warm()
        whole.read(given)
        cold.read(given)
        cold.write_config(tmp_path / "cold.config")
        whole.write_config(tmp_path / "warm.config")
        assert (tmp_path / "warm.config").read_text() == (tmp_path / "cold.config").read_text(), given.name


@pytest.mark.parametrize("series", DEFAULT)
def test_warm_equals_cold(series, request, tmp_path, tmp_path_factory, make_config, monkeypatch):
    _compare(series, request, tmp_path, tmp_path_factory, make_config, monkeypatch,
             randconfigs=1 if series == "7.3" else 0)


@pytest.mark.sweep
@pytest.mark.parametrize("series", SWEEP + DEFAULT)
def test_warm_equals_cold_sweep(series, request, tmp_path, tmp_path_factory, make_config, monkeypatch):
    _compare(series, request, tmp_path, tmp_path_factory, make_config, monkeypatch, randconfigs=3)
