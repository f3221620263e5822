#!/usr/bin/env bash
# Keeps the chapters' diffs true to their lessons (make lint runs it):
#
# 1. Every file listed in tests/lint/carried.txt is byte-identical in
#    every chapter that carries it (the room module, room.c and room.h).
# 2. A `/* [name] */` snippet that an earlier chapter also has, in a file
#    of the same name, is unchanged from the latest such chapter -- or the
#    change is listed in tests/lint/changes.txt with one line of reason:
#        step02 server.c [loop-events]: epoll_wait() replaces poll()
#    A listed change that is no longer a change is a finding too.
#
# Prints one line per finding and exits 1 if there is any.
set -u
cd "$(dirname "$0")/../.." || exit 1
carried=tests/lint/carried.txt
changes=tests/lint/changes.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
findings=0

# finding TEXT: report one finding.
finding() {
    echo "carried: $1"
    findings=$((findings + 1))
}

# --- 1. carried files ------------------------------------------------------------
while read -r file first rest; do
    case $file in '' | '#'*) continue ;; esac
    for step in $rest; do
        a=$(echo "${first}"_*/"$file") b=$(echo "${step}"_*/"$file")
        if ! cmp -s "$a" "$b"; then
            finding "$b differs from $a, which it carries (tests/lint/carried.txt)"
        fi
    done
done <"$carried"

# --- 2. snippets ---------------------------------------------------------------
# extract FILE DIR: writes each snippet of FILE to DIR/NAME.
extract() {
    mkdir -p "$2"
    awk -v dir="$2" '
        match($0, /\/\* \[[a-z0-9-]+\] \*\//) {
            name = substr($0, RSTART + 4, RLENGTH - 8)
            if (name in open) delete open[name]; else open[name] = 1
            next
        }
        { for (n in open) print > (dir "/" n) }
    ' "$1"
}

steps=()
for d in step0[0-9]_*/; do
    d=${d%/}
    steps+=("$d")
    for f in "$d"/*.c "$d"/*.h; do
        [ -e "$f" ] && extract "$f" "$tmp/$d/$(basename "$f")"
    done
done

seen=$tmp/seen
: >"$seen"
for ((i = 1; i < ${#steps[@]}; i++)); do
    d=${steps[i]} step=${steps[i]%%_*}
    for fdir in "$tmp/$d"/*; do
        [ -d "$fdir" ] || continue
        file=$(basename "$fdir")
        for snip in "$fdir"/*; do
            [ -e "$snip" ] || continue
            name=$(basename "$snip")
            # The latest earlier chapter with this snippet in this file.
            prev=
            for ((j = i - 1; j >= 0; j--)); do
                if [ -e "$tmp/${steps[j]}/$file/$name" ]; then
                    prev=$tmp/${steps[j]}/$file/$name
                    break
                fi
            done
            [ -n "$prev" ] || continue
            key="$step $file [$name]"
            listed=$(grep -cF -- "$key:" "$changes")
            if cmp -s "$prev" "$snip"; then
                ((listed == 0)) || finding "$key is listed in $changes but unchanged"
            else
                echo "$key" >>"$seen"
                ((listed > 0)) || finding "$key differs from ${prev#"$tmp"/} and is not listed in $changes"
            fi
        done
    done
done
# Listed changes of snippets that do not exist any more.
while IFS= read -r line; do
    case $line in '' | '#'*) continue ;; esac
    key=${line%%:*}
    grep -qxF -- "$key" "$seen" ||
        finding "$key is listed in $changes but is no change between chapters"
done <"$changes"

echo "carried: $findings findings"
[ "$findings" -eq 0 ]
