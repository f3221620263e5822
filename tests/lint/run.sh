#!/usr/bin/env bash
# make lint: cppcheck and clang-tidy over every C file of the tree, with
# the compile flags of the real build, and shellcheck over every shell
# script and Bats file. Any finding fails (exit 1); tools missing: exit 1.
#
#   LINT_FLAGS="-D_GNU_SOURCE -Icommon -std=c11 -Wall ..." tests/lint/run.sh
#
# make lint passes LINT_FLAGS from the Makefile (CPPFLAGS and the warning
# flags every object is built with). The checks chosen, and why some are
# left out: .clang-tidy, tests/lint/cppcheck.supp, tests/lint/README.md.
# JOBS (default 2) clang-tidy processes run at once; the reports of each
# tool are kept in build/lint/.
set -u
cd "$(dirname "$0")/../.." || exit 1
OUT=build/lint
JOBS=${JOBS:-2}
: "${LINT_FLAGS:?LINT_FLAGS must hold the compile flags (make lint sets them)}"

for tool in cppcheck clang-tidy shellcheck; do
    command -v "$tool" >/dev/null || {
        echo "lint: $tool is not installed (make deps)" >&2
        exit 1
    }
done
rm -rf "$OUT"
mkdir -p "$OUT/clang-tidy"

# Everything in the tree but build output and version control.
PRUNE=(\( -path ./build -o -path ./.git \) -prune -o)

mapfile -t c_files < <(find . "${PRUNE[@]}" -type f -name '*.c' -print |
    sed 's|^\./||' | sort)
# Shell: by name, and files without a suffix whose first line runs a shell
# (.ci/run). Symbolic links (tests/stepNN/protocol.bats...) are checked
# once, where they point.
mapfile -t sh_files < <({
    find . "${PRUNE[@]}" -type f \( -name '*.sh' -o -name '*.bash' \
        -o -name '*.bats' \) -print
    find . "${PRUNE[@]}" -type f ! -name '*.*' -print |
        while IFS= read -r f; do
            head -n 1 "$f" | grep -qE '^#!.*[/ ](ba|da)?sh( |$)' && echo "$f"
        done
} | sed 's|^\./||' | sort -u)

status=0
findings=0

# --- cppcheck -----------------------------------------------------------------
# -I and -D of the build's flags; the POSIX library description tells
# cppcheck what read(), close()... do with their arguments.
cpp_defs=()
for flag in $LINT_FLAGS; do
    case $flag in -I* | -D* | -U*) cpp_defs+=("$flag") ;; esac
done
echo "== cppcheck: ${#c_files[@]} C files"
SECONDS=0
cppcheck --quiet --std=c11 --library=posix "${cpp_defs[@]}" \
    --enable=warning,style,performance,portability \
    --inline-suppr --suppressions-list=tests/lint/cppcheck.supp \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
    --error-exitcode=1 -j "$JOBS" "${c_files[@]}" 2>"$OUT/cppcheck.txt"
rc=$?
n=$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: ' "$OUT/cppcheck.txt")
cat "$OUT/cppcheck.txt"
if [ "$rc" -ne 0 ] || [ "$n" -ne 0 ]; then
    echo "   cppcheck: $n findings (exit $rc)"
    findings=$((findings + (n > 0 ? n : 1)))
    status=1
fi
echo "   cppcheck took ${SECONDS}s"

# --- clang-tidy ---------------------------------------------------------------
# One process per file, JOBS at a time, each report in its own file so
# that the output does not interleave. The configuration is .clang-tidy.
echo "== clang-tidy: ${#c_files[@]} C files"
SECONDS=0
# shellcheck disable=SC2016 # $1 and $2 belong to the inner shell
printf '%s\n' "${c_files[@]}" |
    xargs -P "$JOBS" -I{} sh -c \
        'clang-tidy --quiet "$1" -- $2 >"$3/$(echo "$1" | tr / _).txt" 2>&1 ||
         echo "$1" >>"$3/failed"' _ {} "$LINT_FLAGS" "$OUT/clang-tidy"
cat "$OUT"/clang-tidy/*.txt >"$OUT/clang-tidy.txt" 2>/dev/null
# A warning in a header shows once per file including it: count it once.
n=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error): ' "$OUT/clang-tidy.txt" |
    sort -u | wc -l)
grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' \
    "$OUT/clang-tidy.txt"
if [ -s "$OUT/clang-tidy/failed" ] || [ "$n" -ne 0 ]; then
    echo "   clang-tidy: $n findings in: $(tr '\n' ' ' <"$OUT/clang-tidy/failed")"
    findings=$((findings + (n > 0 ? n : 1)))
    status=1
fi
echo "   clang-tidy took ${SECONDS}s"

# --- shellcheck ---------------------------------------------------------------
# Every severity, style included. Bats files are recognised by their
# #!/usr/bin/env bats line (shellcheck 0.9 knows the dialect).
echo "== shellcheck: ${#sh_files[@]} shell scripts and Bats files"
SECONDS=0
shellcheck --format=gcc "${sh_files[@]}" >"$OUT/shellcheck.txt" 2>&1
rc=$?
cat "$OUT/shellcheck.txt"
n=$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: ' "$OUT/shellcheck.txt")
if [ "$rc" -ne 0 ]; then
    echo "   shellcheck: $n findings (exit $rc)"
    findings=$((findings + (n > 0 ? n : 1)))
    status=1
fi
echo "   shellcheck took ${SECONDS}s"

# --- carried code --------------------------------------------------------------
# Carried files identical, and every changed snippet listed with a reason.
echo "== carried: tests/lint/carried.txt and tests/lint/changes.txt"
bash tests/lint/carried.sh >"$OUT/carried.txt" 2>&1
rc=$?
cat "$OUT/carried.txt"
if [ "$rc" -ne 0 ]; then
    n=$(grep -c '^carried: step' "$OUT/carried.txt")
    findings=$((findings + (n > 0 ? n : 1)))
    status=1
fi

echo "lint: ${#c_files[@]} C files (cppcheck, clang-tidy), ${#sh_files[@]} shell" \
    "and Bats files (shellcheck): $findings findings"
exit $status
