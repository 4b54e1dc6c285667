#!/usr/bin/env bash
# Recording cost: N RTSP streams (1080p, 30 fps, ~3 Mbit/s, from GStreamer's RTSP server on
# 127.0.0.1) recorded for SECONDS by edgenvr and, in the same run and from the same server,
# by one `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment -segment_time 60` per stream
# (as ffmpeg-based recorders do). Prints each figure next to ffmpeg's, with the ratio.
#   benches/rtsp-recording.sh [N=4] [SECONDS=120]
# AUDIO=aac adds a 48 kHz mono AAC stream (avenc_aac, 128 kbit/s) to every camera, AUDIO=pcmu
# (or pcma) G.711 at 8 kHz (64 kbit/s); both recorders record it (ffmpeg's G.711 segments are
# QuickTime files, as mp4 cannot hold G.711). Each run prints its stored bytes per stream-minute,
# video chunks and .audio siblings apart, and each camera's frame counts from /api/v1/status
# (a camera whose audio was not recorded shows "audio: none"). What audio adds: alternate runs
# with and without AUDIO on one build (EDGENVR_BIN=...), as in BENCHMARKS.md, "Audio".
# EDGENVR_AUDIO=false sets `audio = false` on edgenvr's cameras: the server still makes the
# audio and ffmpeg still records it, so the machine's load is the same, but edgenvr takes
# none (the control for what audio costs edgenvr itself).
# Needs the test packages (scripts/install-deps.sh test).
set -euo pipefail
n=${1:-4}
secs=${2:-120}
source "$(dirname "$0")/lib.sh"
bench_init
bench_media
bench_rtsp_server "$n"

http="127.0.0.1:$((port + 1))"
{ echo "[server]"; echo "listen = \"$http\""; echo "[recording]"; echo 'sync_interval = "2s"'
  echo "[[storage]]"; echo "path = \"$work/edgenvr\"";
  for i in $(seq 1 "$n"); do echo "[[camera]]"; echo "id = \"cam$i\""; echo "url = \"rtsp://127.0.0.1:$port/cam$i\""
    if [[ -n ${EDGENVR_AUDIO:-} ]]; then echo "audio = $EDGENVR_AUDIO"; fi; done
} > edgenvr.toml
"$bin" run --config edgenvr.toml --log-level info 2> edgenvr.log &
epid=$!; pids+=($epid)
fpids=()
# mp4 cannot hold G.711: its segments go into QuickTime files (same muxer family, same extension).
fmt=(); [[ ${AUDIO:-} == pcm* ]] && fmt=(-segment_format mov)
for i in $(seq 1 "$n"); do
  mkdir -p "ffmpeg/cam$i"
  ffmpeg -nostdin -loglevel error -rtsp_transport tcp -i "rtsp://127.0.0.1:$port/cam$i" -c copy \
    -f segment "${fmt[@]}" -segment_time 60 -reset_timestamps 1 "ffmpeg/cam$i/%03d.mp4" &
  fpids+=($!); pids+=($!)
done
sleep "$secs"

tick=$(getconf CLK_TCK)
cpu() { awk -v t="$tick" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
wio() { awk '/^write_bytes/ {print $2}' "/proc/$1/io"; }
# Video bytes on disk at the same instant as the I/O counters, so the ratio compares like
# with like (after the stop, the last buffered GOP would be counted on one side only).
e_video=$(find edgenvr -name '*.chunk' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
e_audio=$(find edgenvr -name '*.audio' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
f_video=$(find ffmpeg -name '*.mp4' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
status=$(curl -sf "http://$http/api/v1/status" || echo '{}')
e_cpu=$(cpu $epid); e_hwm=$(hwm $epid); e_io=$(wio $epid)
f_cpu=0; f_hwm_sum=0; f_hwm_max=0; f_io=0
for p in "${fpids[@]}"; do
  f_cpu=$(awk -v a="$f_cpu" -v b="$(cpu "$p")" 'BEGIN {printf "%.2f", a + b}')
  h=$(hwm "$p"); f_hwm_sum=$((f_hwm_sum + h)); (( h > f_hwm_max )) && f_hwm_max=$h
  f_io=$((f_io + $(wio "$p")))
done
kill -INT "$epid"; for p in "${fpids[@]}"; do kill -INT "$p"; done
wait "$epid" 2>/dev/null || true; for p in "${fpids[@]}"; do wait "$p" 2>/dev/null || true; done
e_tx=$(grep -o '[0-9]* index transactions' edgenvr.log | awk '{print $1}')
e_drop=$(grep -c 'dropping\|lost ' edgenvr.log || true)
minutes=$(awk -v s="$secs" -v n="$n" 'BEGIN {print s / 60 * n}')

row() { awk -v name="$1" -v e="$2" -v f="$3" -v u="$4" 'BEGIN {
  r = (f > 0) ? e / f : 0; printf "| %-38s | %12s | %12s | %6.3f |\n", name " (" u ")", e, f, r }'; }
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'); $n streams x $secs s"
echo "| figure                                 |      edgenvr |       ffmpeg |  ratio |"
echo "|----------------------------------------|--------------|--------------|--------|"
row "CPU per stream-minute" "$(awk -v c="$e_cpu" -v m="$minutes" 'BEGIN {printf "%.3f", c / m}')" \
    "$(awk -v c="$f_cpu" -v m="$minutes" 'BEGIN {printf "%.3f", c / m}')" "s"
row "peak RSS, whole recorder" "$e_hwm" "$f_hwm_sum" "KiB; ffmpeg: sum of $n"
row "peak RSS, largest process" "$e_hwm" "$f_hwm_max" "KiB"
# With audio, ffmpeg's segments hold both tracks: edgenvr's side counts chunks plus siblings.
e_stored=$((e_video + e_audio)); what="video"; [[ -n ${AUDIO:-} ]] && what="video + audio"
per_min() { awk -v b="$1" -v m="$minutes" 'BEGIN {printf "%.0f", b / m}'; }
row "bytes written per byte of $what" "$(awk -v a="$e_io" -v b="$e_stored" 'BEGIN {printf "%.4f", a / b}')" \
    "$(awk -v a="$f_io" -v b="$f_video" 'BEGIN {printf "%.4f", a / b}')" "ratio"
row "$what bytes stored" "$e_stored" "$f_video" "bytes"
row "$what bytes stored per stream-minute" "$(per_min "$e_stored")" "$(per_min "$f_video")" "bytes"
echo "edgenvr per stream-minute: video chunks $(per_min "$e_video") bytes, .audio siblings $(per_min "$e_audio") bytes ($(find edgenvr -name '*.audio' | wc -l) files); written (I/O) $(per_min "$e_io") bytes"
echo "edgenvr SQLite transactions: $e_tx in $secs s ($(awk -v t="$e_tx" -v s="$secs" 'BEGIN {printf "%.1f", t * 60 / s}') per minute); drop/loss log lines: $e_drop"
echo "$status" | jq -r '.cameras[]? | "status \(.id): \(.frames) frames, \(.frames_dropped) dropped, \(.gaps) gaps; audio: \(if .audio then "\(.audio.frames) frames, \(.audio.bytes) bytes, \(.audio.dropped) dropped" else "none" end)"'
