#!/usr/bin/env bash
# What kcheck's emerge hook costs a merge.
#
# Sources the snippet (kcheck portage-hook --snippet) in bash the way Portage
# does and calls pre_pkg_setup + post_pkg_postinst:
#  - N times for an unrelated package (CATEGORY=dev-libs PN=foo), side by side
#    with a loop calling the builtin `true` (no process) and one calling
#    /bin/true (a fork+exec per call), so "no process started" shows in the
#    figures; the kernel's last-PID counter, read with the `read` builtin
#    before and after, counts the processes started meanwhile (others on the
#    machine add a few);
#  - sourcing the snippet itself (Portage sources bashrc in each phase);
#  - a few times for sys-fs/aufs3 against a small temporary root, where the
#    hook runs kcheck for real.
#
# Usage: bench/hook_bench.sh [N]   (kcheck must be on PATH, e.g. .venv/bin)
set -euo pipefail
N=${1:-20000}
RELATED_N=${RELATED_N:-5}

command -v kcheck >/dev/null || { echo "kcheck is not on PATH (try PATH=.venv/bin:\$PATH)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
kcheck portage-hook --snippet > "${work}/snippet.bash"

ewarn() { :; }
eerror() { :; }
elog() { :; }
# shellcheck source=/dev/null
source "${work}/snippet.bash"

# per_call LABEL COUNT COMMAND...: run COMMAND COUNT times; print µs per call,
# the PIDs the machine handed out meanwhile (ours and everyone else's), and
# the CPU time of the child processes this shell ran.
per_call() {
	local label=$1 count=$2 i start end pid0 pid1
	shift 2
	times > "${work}/times.before"
	read -r pid0 < /proc/sys/kernel/ns_last_pid
	start=${EPOCHREALTIME}
	for ((i = 0; i < count; i++)); do
		"$@"
	done
	end=${EPOCHREALTIME}
	read -r pid1 < /proc/sys/kernel/ns_last_pid
	times > "${work}/times.after"
	local cpu0 cpu1
	cpu0=$(children_cpu_of "${work}/times.before")
	cpu1=$(children_cpu_of "${work}/times.after")
	awk -v l="${label}" -v n="${count}" -v s="${start}" -v e="${end}" -v p=$((pid1 - pid0)) -v c0="${cpu0}" -v c1="${cpu1}" \
		'BEGIN { printf "%-44s %7d calls %10.2f us/call %7d PIDs (machine) %8.3f s child CPU\n", l, n, (e - s) * 1e6 / n, p, c1 - c0 }'
}

# children_cpu_of FILE: child CPU seconds from a saved `times` output.
children_cpu_of() {
	local shell_line child_user child_sys
	{ read -r shell_line; read -r child_user child_sys; } < "$1"
	awk -v u="${child_user}" -v s="${child_sys}" 'BEGIN { split(u, a, "m"); split(s, b, "m"); printf "%.3f", a[1] * 60 + a[2] + b[1] * 60 + b[2] }'
}

hooks() { pre_pkg_setup; post_pkg_postinst; }

echo "== Portage hook: unrelated package (CATEGORY=dev-libs PN=foo MERGE_TYPE=source)"
CATEGORY=dev-libs PN=foo MERGE_TYPE=source EROOT=/
per_call "builtin true (reference: no process)" "${N}" true
per_call "pre_pkg_setup + post_pkg_postinst" "${N}" hooks
per_call "/bin/true (reference: one process per call)" $((N / 20)) /bin/true
# Portage sources bashrc once per phase of every package: parsing the snippet is a cost too.
: > "${work}/empty.bash"
per_call "source an empty file (reference)" $((N / 10)) source "${work}/empty.bash"
per_call "source the snippet" $((N / 10)) source "${work}/snippet.bash"

echo "== Portage hook: sys-fs/aufs3 binary merge (filtered in bash)"
CATEGORY=sys-fs PN=aufs3 MERGE_TYPE=binary
per_call "pre_pkg_setup + post_pkg_postinst" "${N}" hooks

echo "== Portage hook: related package (sys-fs/aufs3, source merge; runs kcheck twice)"
root="${work}/root"
mkdir -p "${root}/var/db/pkg" "${root}/usr/src/linux-6.1.67-gentoo/mm" "${root}/usr/src/linux-6.1.67-gentoo/fs"
ln -s linux-6.1.67-gentoo "${root}/usr/src/linux"
echo 'int placeholder;' > "${root}/usr/src/linux/fs/dcache.c"
CATEGORY=sys-fs PN=aufs3 MERGE_TYPE=source EROOT="${root}"
per_call "pre_pkg_setup + post_pkg_postinst" "${RELATED_N}" hooks
