# Copyright 2026 kcheck developers
# Distributed under the terms of the GNU General Public License v2

# The release and live ebuilds are one file: only the source block differs
# by version, so the two cannot drift apart.

EAPI=8

DISTUTILS_USE_PEP517=setuptools
PYTHON_COMPAT=( python3_{11..13} )

inherit distutils-r1 shell-completion

if [[ ${PV} == *9999 ]]; then
	inherit git-r3
	EGIT_REPO_URI="https://example.invalid/kcheck.git"
else
	SRC_URI="https://example.invalid/kcheck/releases/${P}.tar.gz"
	KEYWORDS="~amd64 ~arm64"
fi

DESCRIPTION="Check a kernel config for a container storage driver before rebooting"
HOMEPAGE="https://example.invalid/kcheck"

LICENSE="GPL-2"
SLOT="0"
# The test suite downloads Debian kernel trees, which the build sandbox forbids.
RESTRICT="test"

RDEPEND="
	>=dev-python/click-8.1[${PYTHON_USEDEP}]
	~dev-python/kconfiglib-14.1.0[${PYTHON_USEDEP}]
	>=dev-python/packaging-23[${PYTHON_USEDEP}]
	~dev-python/python-sat-1.9_pre24[${PYTHON_USEDEP}]
	sys-apps/portage[${PYTHON_USEDEP}]
"

python_install_all() {
	distutils-r1_python_install_all

	# The emerge hook, as a file users can source: the package never
	# enables it by itself (see pkg_postinst).
	insinto /usr/share/kcheck
	doins src/kcheck/data/portage-hook.bash

	# Shell completion: click's own scripts for kcheck, shipped in the
	# package (tests/test_completion.py keeps them equal to what the CLI
	# generates), where each shell looks system-wide (shell-completion.eclass).
	newbashcomp src/kcheck/data/kcheck.bash kcheck
	newzshcomp src/kcheck/data/kcheck.zsh _kcheck
	newfishcomp src/kcheck/data/kcheck.fish kcheck.fish

	# The kernel installer's plugins: sys-kernel/installkernel runs preinst.d,
	# systemd's kernel-install runs install.d. Each checks the kernel being
	# installed for docker's storage driver and never stops the install unless
	# KCHECK_INSTALLKERNEL_STRICT=1 or /etc/kcheck/installkernel.conf asks it to.
	exeinto /usr/lib/kernel/preinst.d
	newexe src/kcheck/data/kcheck-preinst.install 35-kcheck.install
	exeinto /usr/lib/kernel/install.d
	newexe src/kcheck/data/kcheck-kernel-install.install 35-kcheck.install
}

# The snippet users are told to source; pkg_postrm looks for it too.
_kcheck_snippet() {
	echo "${EPREFIX}/usr/share/kcheck/portage-hook.bash"
}

pkg_postinst() {
	local snippet=$(_kcheck_snippet)

	# Users who already source the snippet need no instructions again.
	if grep -qsF "${snippet}" "${EROOT}/etc/portage/bashrc"; then
		return
	fi

	elog "kcheck can check the kernel at the end of an emerge of the packages"
	elog "that change what docker needs from it (sys-fs/aufs3, sys-fs/aufs4,"
	elog "sys-kernel/*-sources, docker). This package does not enable it."
	elog
	elog "To enable it for all merges (other packages cost nothing), add to"
	elog "${EROOT}/etc/portage/bashrc the line:"
	elog "    [[ -f ${snippet} ]] && source ${snippet}"
	elog "If your bashrc defines pre_pkg_setup or post_pkg_postinst itself,"
	elog "call \"kcheck_portage_hook <phase>\" from those functions."
	elog
	elog "Or enable it for single packages only, e.g. sys-fs/aufs3, since Portage"
	elog "reads /etc/portage/env/<category>/<PN> as that package's bashrc:"
	elog "    mkdir -p ${EROOT}/etc/portage/env/sys-fs"
	elog "    ln -s ${snippet} ${EROOT}/etc/portage/env/sys-fs/aufs3"
	elog "(/etc/portage/package.env does not work for this: its files may only"
	elog "set variables.)"
}

pkg_postrm() {
	local snippet=$(_kcheck_snippet)

	# On removal (not upgrade), a bashrc line naming the snippet is now dead.
	if [[ -z ${REPLACED_BY_VERSION} ]] && grep -qsF "${snippet}" "${EROOT}/etc/portage/bashrc"; then
		elog "${EROOT}/etc/portage/bashrc still names ${snippet};"
		elog "remove that line now that kcheck is uninstalled."
	fi
}
