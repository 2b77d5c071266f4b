"""Fixtures for the Portage tests: a temporary Gentoo-like root (see ``gentoo_root``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gentoo_root import Situation

from kcheck.portage.facts import portage_facts


@pytest.fixture
def situation(tmp_path: Path) -> Situation:
    """An empty Gentoo-like root (with an empty installed-package database)."""
    root = tmp_path / "root"
    (root / "var" / "db" / "pkg").mkdir(parents=True)
    portage_facts.cache_clear()
    return Situation(root)
