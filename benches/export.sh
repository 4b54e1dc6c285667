#!/usr/bin/env bash
# Export cost: time to first byte and throughput of edgenvr's HTTP MP4 export for 10- and
# 60-minute ranges of 1080p ~3 Mbit/s footage (warm cache), next to
# `ffmpeg -f concat -safe 0 -i list -c copy -movflags +faststart` over equivalent one-minute
# MP4 segments (what an ffmpeg-based recorder has on disk).
#   benches/export.sh
# Footage: one real minute recorded over RTSP from GStreamer's server, copied 60 times with
# shifted timestamps and imported with `edgenvr check --repair`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
bench_media
bench_rtsp_server 1

# 1-2. An hour of footage: one real minute recorded over RTSP, copied 60 times with
# shifted timestamps, imported by check --repair.
bench_hour_footage "$work/hour"
bench_serve_hour serve.toml "$((port + 2))" "$work/hour"
"$bin" run --config serve.toml --log-level warn &
pids+=($!)
sleep 1
read -r first last < <(sqlite3 -separator ' ' hour/index.db "select min(start_us), max(end_us) from chunk")
api="http://127.0.0.1:$((port + 2))/api/v1/cameras/cam/export.mp4"

measure() { # $1 = minutes
  local from=$(( first / 1000000 )) to=$(( first / 1000000 + $1 * 60 ))
  curl -s -o /dev/null "$api?from=$from&to=$to"  # warm the cache
  curl -s -o "edgenvr-$1.mp4" -w '%{time_starttransfer} %{time_total} %{size_download}\n' "$api?from=$from&to=$to"
}
# 3. ffmpeg's equivalent: one-minute MP4 segments (the first exported minute, repeated).
curl -s -o seg.mp4 "$api?from=$(( first / 1000000 ))&to=$(( first / 1000000 + 60 ))"
ffconcat() { # $1 = minutes
  : > list.txt; for _ in $(seq 1 "$1"); do echo "file '$work/seg.mp4'" >> list.txt; done
  ffmpeg -v error -y -f concat -safe 0 -i list.txt -c copy -movflags +faststart "ff-$1.mp4"  # warm
  local t0=$(date +%s.%N)
  ffmpeg -v error -y -f concat -safe 0 -i list.txt -c copy -movflags +faststart "ff-$1.mp4"
  local t1=$(date +%s.%N)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') $(stat -c %s "ff-$1.mp4")"
}
echo "machine: $(nproc) cores; footage 1080p30 ~3 Mbit/s; warm page cache"
echo "| range | edgenvr first byte | edgenvr total | edgenvr MB/s | ffmpeg concat total (= first byte, faststart) | ffmpeg MB/s | first-byte ratio |"
echo "|---|---|---|---|---|---|---|"
for m in 10 60; do
  read -r ttfb total size < <(measure "$m")
  read -r ftotal fsize < <(ffconcat "$m")
  ffprobe -v error -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "edgenvr-$m.mp4" > "frames-$m.txt"
  awk -v m="$m" -v t="$ttfb" -v tt="$total" -v s="$size" -v ft="$ftotal" -v fs="$fsize" 'BEGIN {
    printf "| %d min | %.3f s | %.3f s | %.0f | %.3f s | %.0f | %.0fx |\n", m, t, tt, s / tt / 1e6, ft, fs / ft / 1e6, ft / t }'
done
echo "edgenvr export frames (ffprobe -count_frames): 10 min $(cat frames-10.txt), 60 min $(cat frames-60.txt)"
