# kcheck's emerge hook: checks the kernel when aufs, kernel sources or docker are merged.
#
# Source this file from /etc/portage/bashrc (a guard keeps emerge quiet
# once kcheck is uninstalled):
#   if [[ -r /usr/share/kcheck/portage-hook.bash ]]; then source /usr/share/kcheck/portage-hook.bash; fi
# or copy it to /etc/portage/env/<category>/<PN> for the packages below only.
# Unrelated packages cost nothing: the filter runs in bash and starts no
# process. Portage saves these functions into installed packages'
# environments, so they may run after kcheck is uninstalled; they then do
# nothing. If your bashrc already defines pre_pkg_setup or
# post_pkg_postinst, call "kcheck_portage_hook <phase>" from yours.

kcheck_portage_hook() {
	local phase=$1
	local cp=${CATEGORY:-}/${PN:-}
	# More aufs module packages (names without "aufs", say): KCHECK_AUFS_PACKAGES="cat/pn ..." in make.conf.
	[[ " ${KCHECK_AUFS_PACKAGES:-} " == *" ${cp} "* ]] && cp=listed/aufs
	case ${cp} in
		sys-kernel/*-sources) ;;
		*/aufs-util|*/aufs-util-*) return 0 ;;
		*/*aufs*)
			# sys-fs/aufs3, aufs4, an overlay's aufs6...: a binary package was patched and built elsewhere.
			[[ ${MERGE_TYPE:-} == binary ]] && return 0
			;;
		app-containers/docker|app-emulation/docker)
			# Only the installed daemon's storage driver is checked; nothing to record before.
			[[ ${phase} == pre_pkg_setup ]] && return 0
			;;
		*) return 0 ;;
	esac
	type -P kcheck >/dev/null || return 0
	local args=(portage-hook run --phase "${phase}" --category "${CATEGORY}"
		--pn "${PN}" --merge-type "${MERGE_TYPE:-source}"
		--root "${EROOT:-${ROOT:-/}}")
	[[ -n ${KERNEL_DIR:-} ]] && args+=(--kernel-dir "${KERNEL_DIR}")
	[[ -n ${KBUILD_OUTPUT:-} ]] && args+=(--build-dir "${KBUILD_OUTPUT}")
	local level text
	# ewarn/eerror/elog, unlike einfo, are repeated in emerge's final
	# "Messages for package" list.
	while IFS=' ' read -r level text; do
		case ${level} in
			error) eerror "kcheck: ${text}" ;;
			warn) ewarn "kcheck: ${text}" ;;
			*) elog "kcheck: ${text}" ;;
		esac
	done < <(kcheck "${args[@]}")
	# A check never fails the merge.
	return 0
}

declare -F pre_pkg_setup >/dev/null || pre_pkg_setup() { kcheck_portage_hook pre_pkg_setup; }
declare -F post_pkg_postinst >/dev/null || post_pkg_postinst() { kcheck_portage_hook post_pkg_postinst; }
