#!/usr/bin/env bash
# Runs a command with a /dev/shm of its own, in a private mount namespace,
# so that nothing outside it sees the change (tests/faults/shm.bats):
#
#   shm_jail.sh MODE COMMAND [ARGS...]
#
# MODE is how /dev/shm looks inside:
#   tiny     a tmpfs of 64 KiB: far too small for any server's rings
#   full     a tmpfs of 1 MiB, filled to the last byte
#   ro       a tmpfs mounted read-only: nothing can be created in it
#   size=S   a tmpfs of size S (e.g. 64m), empty: room to start, and for
#            the test to fill it up later (nsenter -m -t PID)
#
# COMMAND replaces this script (exec), so it keeps this script's pid. With
# SHM_JAIL_LIST=FILE, COMMAND runs as a child instead, and once it is gone
# the names left in /dev/shm are written to FILE; the script exits with
# COMMAND's status. Needs root and unshare(1) (util-linux).
set -u

if [ "${SHM_JAIL_INSIDE:-}" != 1 ]; then
    # Re-run this script in a new mount namespace. Private propagation:
    # our mounts do not leak out to the machine's namespace.
    SHM_JAIL_INSIDE=1 exec unshare --mount --propagation private "$0" "$@"
fi
unset SHM_JAIL_INSIDE

mode=${1:?usage: shm_jail.sh tiny|full|ro|size=S COMMAND [ARGS...]}
shift
[ $# -gt 0 ] || {
    echo "shm_jail.sh: no command" >&2
    exit 2
}

# jail_mount OPTIONS: a fresh tmpfs on /dev/shm, for this namespace only.
jail_mount() {
    mount -t tmpfs -o "mode=1777,$1" shm-jail /dev/shm || {
        echo "shm_jail.sh: cannot mount a tmpfs on /dev/shm" >&2
        exit 2
    }
}

case $mode in
tiny) jail_mount size=64k ;;
full)
    jail_mount size=1m
    # Until ENOSPC: afterwards not one more page can be had.
    dd if=/dev/zero of=/dev/shm/filler bs=4096 2>/dev/null
    [ "$(df --output=avail /dev/shm | tail -n 1)" -eq 0 ] || {
        echo "shm_jail.sh: could not fill /dev/shm" >&2
        exit 2
    }
    ;;
ro) jail_mount ro ;;
size=*) jail_mount "$mode" ;;
*)
    echo "shm_jail.sh: unknown mode $mode" >&2
    exit 2
    ;;
esac

if [ -z "${SHM_JAIL_LIST:-}" ]; then
    exec "$@"
fi
list=$SHM_JAIL_LIST
unset SHM_JAIL_LIST
"$@"
rc=$?
ls -A /dev/shm >"$list"
exit "$rc"
