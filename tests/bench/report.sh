#!/usr/bin/env bash
# The markdown tables of a benchmark run, from its CSV (tests/bench/run.sh):
#
#   tests/bench/report.sh build/bench/results.csv [QUICK [FLOOD.CSV [FLOOD10.CSV]]] > results.md
#
# The tables: the fan-out matrix (with each row's ratio to Redis at the
# same load), the user limit, the paced run, connecting and holding
# clients, the figures issues 7 and 14 ask for, each marked reached or not; then,
# from the flood CSVs when given and not empty, the flood (a fast reader
# and a steady one) and the flood to ten readers (chapters and Redis).
set -euo pipefail
usage="usage: report.sh RESULTS.CSV [QUICK [FLOOD.CSV [FLOOD10.CSV]]]"
csv=${1:?$usage}
quick=${2:-0}
flood=${3:-}
flood10=${4:-}

awk -F, -v quick="$quick" '
NR == 1 { next }
{ row[++nr] = $0 }
!($1 in seen) { seen[$1] = 1; names[++nn] = $1 }
$2 == "fanout" { tried[$1, $3 "/" $4] = 1 }
$2 == "fanout" && $7 == 1 { dps[$1, $3 "/" $4] = $10 }
$2 == "paced" && $7 == 1 { p99[$1] = $12 }
$2 ~ /^limit/ && $7 == 1 { ldps[$1, $2] = $10; lpss[$1, $2] = $20 }
$2 == "hold" && $7 == 1 { kib[$1] = $21; held[$1] = $3; joinrate[$1] = $19 }
function ratio(a, b) { return (a != "" && b != "" && b > 0) ? a / b : "" }
function fmt(x, d) { return x == "" ? "–" : sprintf("%." d "f", x) }
function target(what, got, want, more_is_better, unit,   ok) {
    if (got == "") { printf "| %s | not measured | – |\n", what; return }
    ok = more_is_better ? got >= want : got <= want
    printf "| %s | %s%s | %s |\n", what, fmt(got, 2), unit, ok ? "yes" : "**no**"
}
END {
    printf "Fan-out: 32-byte messages, window 64, %s. CPU %% is of one core.\n\n",
        (quick == 1 ? "one short run each (QUICK=1)" : "median of 3 runs")
    print "| server | clients | senders | deliveries/s | × Redis | p50 µs | p99 µs | p99.9 µs | max µs | server CPU s per M deliveries | generator CPU s per M deliveries | server CPU % | generator CPU % | exact |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for (i = 1; i <= nr; i++) {
        split(row[i], f, ",")
        if (f[2] != "fanout") continue
        if (f[7] != 1) {
            printf "| %s | %s | %s | FAILED | – | – | – | – | – | – | – | – | – | **no** |\n", f[1], f[3], f[4]
            continue
        }
        printf "| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | yes |\n",
            f[1], f[3], f[4], f[10], fmt(ratio(f[10], dps["redis", f[3] "/" f[4]]), 2),
            f[11], f[12], f[13], f[14], f[15], f[16], f[17], f[18]
    }
    print ""
    print "The user limit: the (100,10) load with `-n 116` and with `-n 100000`; Pss of the server before anyone joins. The larger limit should cost nothing: the room pays for who is online."
    print ""
    print "| server | deliveries/s, -n 116 | deliveries/s, -n 100000 | ratio | Pss KiB at start, -n 116 | Pss KiB at start, -n 100000 | added KiB |"
    print "|---|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= nn; i++) {
        c = names[i]
        if (!((c, "limit116") in ldps) && !((c, "limit100000") in ldps)) continue
        a = ldps[c, "limit116"]; b = ldps[c, "limit100000"]
        pa = lpss[c, "limit116"]; pb = lpss[c, "limit100000"]
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", c, fmt(a, 0), fmt(b, 0),
            fmt(ratio(b, a), 2), fmt(pa, 0), fmt(pb, 0),
            (pa != "" && pb != "") ? fmt(pb - pa, 0) : "–"
    }
    print ""
    print "Paced: each sender sends at a fixed rate, so that the room gets 1 M deliveries/s in all; latency from each message'"'"'s scheduled send time."
    print ""
    print "| server | clients | senders | messages/s per sender | deliveries/s | p50 µs | p99 µs | p99.9 µs | max µs | server CPU s per M deliveries | server CPU % | generator CPU % | exact |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for (i = 1; i <= nr; i++) {
        split(row[i], f, ",")
        if (f[2] != "paced") continue
        if (f[7] != 1) {
            printf "| %s | %s | %s | %s | FAILED | – | – | – | – | – | – | – | **no** |\n", f[1], f[3], f[4], f[5]
            continue
        }
        printf "| %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | yes |\n",
            f[1], f[3], f[4], f[5], f[10], f[11], f[12], f[13], f[14], f[15], f[17], f[18]
    }
    print ""
    print "| server | connects/s | idle clients held | connects/s while they joined | idle Pss KiB per client | server Pss MiB while holding |"
    print "|---|---:|---:|---:|---:|---:|"
    for (j = 1; j <= nn; j++) {
        c = names[j]; conn = "–"; h = "–"; jr = "–"; per = "–"; tot = "–"
        for (i = 1; i <= nr; i++) {
            split(row[i], f, ",")
            if (f[1] != c) continue
            if (f[2] == "connect")
                conn = f[7] == 1 ? sprintf("%.0f (%s clients)", f[19], f[3]) : "FAILED"
            if (f[2] == "hold") {
                h = f[3]
                if (f[7] == 1) {
                    jr = sprintf("%.0f", f[19]); per = sprintf("%.1f", f[21])
                    tot = sprintf("%.0f", f[20] / 1024)
                } else {
                    jr = per = tot = "FAILED"
                }
            }
        }
        printf "| %s | %s | %s | %s | %s | %s |\n", c, conn, h, jr, per, tot
    }
    print ""
    print "The figures issue 7 asks for, from this run:"
    print ""
    print "| figure | measured | reached |"
    print "|---|---:|---|"
    target("step02 deliveries/s ÷ Redis at (100,10), want ≥ 1.5", ratio(dps["step02", "100/10"], dps["redis", "100/10"]), 1.5, 1, "×")
    target("step02 deliveries/s ÷ Redis at (1000,10), want ≥ 1.5", ratio(dps["step02", "1000/10"], dps["redis", "1000/10"]), 1.5, 1, "×")
    target("step02 deliveries/s ÷ Redis at (10,1), want ≥ 0.9", ratio(dps["step02", "10/1"], dps["redis", "10/1"]), 0.9, 1, "×")
    target("step02 p99 ÷ Redis p99, paced 1 M deliveries/s, want ≤ 1", ratio(p99["step02"], p99["redis"]), 1.0, 0, "×")
    target("step01 deliveries/s ÷ Redis at (100,10), want ≥ 1.0", ratio(dps["step01", "100/10"], dps["redis", "100/10"]), 1.0, 1, "×")
    target("step03 deliveries/s ÷ step02 at (100,10), want ≥ 0.33", ratio(dps["step03", "100/10"], dps["step02", "100/10"]), 0.33, 1, "×")
    target("step04 deliveries/s ÷ step02 at (1000,10), want ≥ 1.0", ratio(dps["step04", "1000/10"], dps["step02", "1000/10"]), 1.0, 1, "×")
    target(sprintf("step04 Pss per idle client (%s held), want ≤ 4 KiB", held["step04"] == "" ? "–" : held["step04"]), kib["step04"], 4, 0, " KiB")
    target("step04 connects/s ÷ step02 while the idle clients joined, want ≥ 1.0", ratio(joinrate["step04"], joinrate["step02"]), 1.0, 1, "×")
    print ""
    print "The figures issue 14 asks for, from this run:"
    print ""
    print "| figure | measured | reached |"
    print "|---|---:|---|"
    target("step03 deliveries/s ÷ step02 at (100,10), want ≥ 0.8", ratio(dps["step03", "100/10"], dps["step02", "100/10"]), 0.8, 1, "×")
    target("step03 deliveries/s ÷ step02 at (1000,10), want ≥ 0.33", ratio(dps["step03", "1000/10"], dps["step02", "1000/10"]), 0.33, 1, "×")
    if (!(("step03", "5000/10") in tried))
        print "| step03 at (5000,10) delivers, exactly | not measured | – |"
    else if (("step03", "5000/10") in dps)
        printf "| step03 at (5000,10) delivers, exactly | %.0f deliveries/s, exact | yes |\n", dps["step03", "5000/10"]
    else
        print "| step03 at (5000,10) delivers, exactly | failed | **no** |"
    target("step02 deliveries/s ÷ plain at (100,10), want ≥ 1.0", ratio(dps["step02", "100/10"], dps["plain", "100/10"]), 1.0, 1, "×")
    target("step02 deliveries/s ÷ plain at (1000,10), want ≥ 1.0", ratio(dps["step02", "1000/10"], dps["plain", "1000/10"]), 1.0, 1, "×")
    target("step04 deliveries/s ÷ plain at (100,10), want ≥ 1.0", ratio(dps["step04", "100/10"], dps["plain", "100/10"]), 1.0, 1, "×")
    target("step04 deliveries/s ÷ plain at (1000,10), want ≥ 1.0", ratio(dps["step04", "1000/10"], dps["plain", "1000/10"]), 1.0, 1, "×")
    target("step02 deliveries/s ÷ Redis at (100,10), want ≥ 2", ratio(dps["step02", "100/10"], dps["redis", "100/10"]), 2.0, 1, "×")
    target(sprintf("step02 Pss per idle client (%s held), want ≤ 2 KiB", held["step02"] == "" ? "–" : held["step02"]), kib["step02"], 2, 0, " KiB")
    target(sprintf("step04 Pss per idle client (%s held), want ≤ 2 KiB", held["step04"] == "" ? "–" : held["step04"]), kib["step04"], 2, 0, " KiB")
}' "$csv"

# rows CSV: does CSV exist and hold a row below its header?
rows() { [ -n "$1" ] && [ -f "$1" ] && [ "$(wc -l <"$1")" -gt 1 ]; }

# An awk function: N with a comma every three digits (1000 -> 1,000).
COMMAS='function commas(n) { while (n ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", n); return n }'

if rows "$flood"; then
    awk -F, "$COMMAS"'
    NR == 2 {
        printf "\nFlood: %s lines of %s bytes at full speed, a fast reader,\n", $2, commas($3)
        printf "a reader at %s B/s, a short line said halfway (its latency to\n", $4
        print "the fast reader); every line checked exactly once, in order."
        print ""
        print "| server | exact | flood MB/s (to the fast reader) | steady reader s | short line ms |"
        print "|---|---|---:|---:|---:|"
    }
    NR > 1 { printf "| %s | %s | %s | %s | %s |\n", $1,
                    $5 == 1 ? "yes" : "NO", $7, $8, $9 }' "$flood"
fi

if rows "$flood10"; then
    awk -F, "$COMMAS"'
    NR == 2 {
        printf "\nFlood to %s readers: %s lines of %s bytes at full speed, every\n", $2, $3, commas($4)
        print "reader as fast as it can, each checking every line exactly once, in"
        print "order. Sender MB/s and lines/s: from its first line until the server"
        print "had its last (Redis: the last PUBLISH reply; the chat room: the first"
        print "reader to have it). Dropped: the connection ended before the last line"
        print "(or the reader was announced as left). A chapter that drops a reader"
        print "is not exact; Redis, which drops a subscriber past its client output"
        print "buffer limit (pubsub 32mb 8mb 60 by default), is exact if every line"
        print "its subscribers got was right."
        print ""
        print "| server | exact | sender MB/s | sender lines/s | readers complete | readers dropped |"
        print "|---|---|---:|---:|---:|---:|"
    }
    NR > 1 { printf "| %s | %s | %s | %s | %s of %s | %s |\n", $1,
                    $5 == 1 ? "yes" : "**no**", $5 == 1 ? $7 : "–",
                    $5 == 1 ? $8 : "–", $9 == "" ? 0 : $9, $2,
                    $10 == "" ? "–" : $10 }' "$flood10"
fi
