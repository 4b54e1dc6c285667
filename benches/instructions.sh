#!/usr/bin/env bash
# Instruction counts (valgrind callgrind: counts, not seconds, so repeatable under load) for
# recording one minute of one 1080p ~3 Mbit/s RTSP stream, and where they go.
#   benches/instructions.sh [SECONDS=60]
# The recorder is mostly idle (<1 % of a core per stream), so it keeps up in real time
# even under callgrind's slowdown; the log says if it ever dropped a frame.
set -euo pipefail
secs=${1:-60}
source "$(dirname "$0")/lib.sh"
bench_init
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
# Symbols for the report: an unstripped copy of the release build.
CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --manifest-path "$here/Cargo.toml" --release --locked --quiet --target-dir "$here/target/profiling"
bin="$here/target/profiling/release/edgenvr"
bench_media
bench_rtsp_server 1
bench_camera_config c.toml "$((port + 1))" "$work/data"
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" run --config c.toml --log-level warn 2> run.log &
vpid=$!; pids+=($vpid)
sleep "$secs"
kill -INT $vpid; wait $vpid || true
frames=$(sqlite3 data/index.db "select sum(frames) from chunk")
total=$(callgrind_annotate "$work/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "recorded $frames frames in $secs s under callgrind; drop/loss lines in the log: $(grep -c 'dropping\|lost ' run.log || true)"
echo "instructions: $total in total, $(awk -v t="$total" -v s="$secs" 'BEGIN {printf "%.0f", t * 60 / s}') per minute of one stream, $(awk -v t="$total" -v f="$frames" 'BEGIN {printf "%.0f", t / f}') per frame"
echo "top functions (inclusive of nothing: self cost):"
callgrind_annotate "$work/cg.out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -15
