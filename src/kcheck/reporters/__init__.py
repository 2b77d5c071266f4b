"""Reporters only format a :class:`~kcheck.model.Report`; they never decide a verdict.

Each module exposes ``render(report, *, verbose=False, strict=False) -> str``.
"""

from __future__ import annotations

import importlib

#: --format name -> module implementing it.
FORMATS = {"text": "kcheck.reporters.text", "json": "kcheck.reporters.json_report"}


def render(fmt: str, report, **options) -> str:
    """Format ``report`` with the reporter named ``fmt``."""
    return importlib.import_module(FORMATS[fmt]).render(report, **options)
