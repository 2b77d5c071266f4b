"""Gentoo Portage integration: installed-package facts and the emerge hook.

Everything here imports ``portage`` lazily: the common ``kcheck --driver D``
path must not pay for it, and kcheck installed from PyPI on another
distribution works without it (Portage-specific checks then say once that
Portage is not available).
"""
