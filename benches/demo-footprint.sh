#!/usr/bin/env bash
# Measures the embedded-default service (one 640x480 15 fps testsrc camera): CPU time, peak
# RSS, bytes written to storage (from /proc/PID/io) and bytes of video per minute.
#   benches/demo-footprint.sh [SECONDS]      (default 120)
# The testsrc camera encodes its own video with openh264, so its CPU figure is mostly the
# encoder; an RTSP camera (stored without re-encoding) costs far less.
set -euo pipefail
secs=${1:-120}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --manifest-path "$here/Cargo.toml" --release --locked --quiet
bin="$here/target/release/edgenvr"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" run --log-level warn &
pid=$!
tick=$(getconf CLK_TCK)
sleep "$secs"
read -r utime stime < <(awk '{print $14, $15}' "/proc/$pid/stat")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
threads=$(awk '/Threads/ {print $2}' "/proc/$pid/status")
wbytes=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
kill -INT "$pid"; wait "$pid" || true
video=$(find edgenvr-data -name '*.chunk' -printf '%s\n' | awk '{s+=$1} END {print s}')
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
cpu=$(calc %.2f "($utime + $stime) / $tick")
echo "seconds recorded:        $secs"
echo "cpu seconds:             $cpu  ($(calc %.1f "100 * $cpu / $secs")% of one core)"
echo "rss now / peak (KiB):    $rss / $hwm"
echo "threads:                 $threads"
echo "video bytes:             $video  ($(calc %d "$video * 60 / $secs") per minute)"
echo "bytes written (io):      $wbytes  (ratio to video $(calc %.4f "$wbytes / $video"))"
echo "index size (bytes):      $(du -cb edgenvr-data/index.db* | tail -1 | cut -f1)"
