# Copyright 2026 kcheck developers
# Distributed under the terms of the GNU General Public License v2

EAPI=8

DISTUTILS_USE_PEP517=setuptools
PYTHON_COMPAT=( python3_{11..13} )

inherit distutils-r1 pypi

DESCRIPTION="A flexible Python Kconfig implementation"
HOMEPAGE="
	https://github.com/ulfalizer/Kconfiglib
	https://pypi.org/project/kconfiglib/
"

LICENSE="ISC"
SLOT="0"
KEYWORDS="~amd64 ~arm64"
# The upstream test suite needs a Linux kernel source tree and is not in
# the sdist.
RESTRICT="test"
