#!/usr/bin/env bash
# The tools the tests, the demo and the docs need, and where they come from.
#
#   tests/deps.sh check [TOOL...]   exit 0 if every (or every named) tool is
#                                   present, else name what is missing
#   tests/deps.sh install [TOOL...] apt-get install what is missing of every
#                                   (or every named) tool (as root), or print
#                                   the exact command to run
#
# Without names, both mean every tool in ORDER below: the tests, the demo,
# the docs, make lint, make valgrind and make compile_commands.json. The
# benchmark (tests/bench/run.sh) names its own: gnuplot and redis-server.
# `make fuzz` names its own: clang and libfuzzer (clang's libFuzzer
# runtime, which Debian 12 only recommends: with --no-install-recommends
# clang comes without it). `make site-check` names its own: chromium,
# chromedriver and cjk-font (a font for the book's title in screenshots).
set -u

# clang_major: clang's major version (14 on Debian 12), for the name of the
# package of its runtime libraries.
clang_major() {
    local v
    v=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p')
    echo "${v:-14}"
}

# tool -> Debian package that provides it
declare -A PKG=(
    [bats]=bats
    [bats-support]=bats-support
    [bats-assert]=bats-assert
    [parallel]=parallel
    [socat]=socat
    [nc]=netcat-openbsd
    [doxygen]=doxygen
    [dot]=graphviz
    [perl]=perl-base
    [script]=bsdutils
    [ipcs]=util-linux
    [ipcrm]=util-linux
    [cppcheck]=cppcheck
    [clang-tidy]=clang-tidy
    [shellcheck]=shellcheck
    [valgrind]=valgrind
    [bear]=bear
    [gnuplot]=gnuplot-nox
    [redis-server]=redis-server
    [clang]=clang
    [libfuzzer]=libclang-rt-$(clang_major)-dev
    [telnet]=telnet
    [chromium]=chromium
    [chromedriver]=chromium-driver
    [cjk-font]=fonts-wqy-zenhei
)
# The tests, the demo, telnet (the README offers it) and the docs; then what
# make lint runs (cppcheck,
# clang-tidy and shellcheck), make valgrind and make compile_commands.json.
ORDER=(bats bats-support bats-assert parallel socat nc telnet doxygen dot perl
    script ipcs ipcrm cppcheck clang-tidy shellcheck valgrind bear)

# present TOOL: is TOOL usable?
present() {
    case $1 in
    bats-support | bats-assert) [ -f "/usr/lib/bats/$1/load.bash" ] ;;
    # The tests use OpenBSD nc's -N (shut down on end of input).
    nc) [ -x /bin/nc.openbsd ] && command -v nc >/dev/null ;;
    cjk-font) fc-list :lang=zh 2>/dev/null | grep -q . ;;
    # -print-file-name prints the bare name when the file is not there.
    libfuzzer)
        local f
        f="libclang_rt.fuzzer-$(uname -m).a"
        command -v clang >/dev/null && [ -f "$(clang -print-file-name="$f")" ]
        ;;
    *) command -v "$1" >/dev/null ;;
    esac
}

# missing_packages [TOOL...]: the packages of the tools not present.
missing_packages() {
    local tool
    for tool in "${@:-${ORDER[@]}}"; do
        present "$tool" || echo "${PKG[$tool]}"
    done | sort -u
}

case ${1:-check} in
check)
    shift
    pkgs=$(missing_packages "$@")
    if [ -n "$pkgs" ]; then
        echo "missing: ${pkgs//$'\n'/ }" >&2
        exit 1
    fi
    ;;
install)
    shift
    pkgs=$(missing_packages "$@")
    if [ -z "$pkgs" ]; then
        echo "deps: everything the tests need is installed"
        exit 0
    fi
    # shellcheck disable=SC2086 # one word per package
    set -- $pkgs
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing packages; run as root:" >&2
        echo "    apt-get update && apt-get install -y --no-install-recommends $*" >&2
        exit 1
    fi
    echo "deps: installing $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update -qq ||
        ! apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
        echo "deps: apt-get install $* failed" >&2
        exit 1
    fi
    # netcat-traditional may own the nc name; the tests need OpenBSD's.
    if [ "$(readlink -f "$(command -v nc)")" != /bin/nc.openbsd ]; then
        update-alternatives --set nc /bin/nc.openbsd >/dev/null 2>&1 || true
    fi
    ;;
*)
    echo "usage: $0 check [TOOL...] | install [TOOL...]" >&2
    exit 2
    ;;
esac
