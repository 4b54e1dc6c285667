#!/usr/bin/env bash
# Export of the minute being recorded against the same export from a sealed chunk: time to
# first byte and total time of a 20 s MP4 range from the open chunk (its file is scanned at
# plan time, the index row is not final yet) next to a 20 s range from the last sealed chunk
# (planned from the index's keyframe table), same camera, same service, 1080p30 ~3 Mbit/s
# over RTSP. Median of 7 requests each, warm cache.
#   benches/live-export.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
command -v sqlite3 >/dev/null || apt-get install -y -qq sqlite3 >/dev/null
bench_media
bench_rtsp_server 1

http=$((port + 1))
bench_camera_config live.toml "$http" "$work/rec"
"$bin" run --config live.toml --log-level warn &
pids+=($!)
q() { sqlite3 rec/index.db "$1" 2>/dev/null || true; }
echo "recording until a sealed minute and 35 s of the next one exist (up to ~2.5 minutes)..."
until [[ $(q "select count(*) from chunk where state = 1 and end_us - start_us > 50000000") -ge 1 ]]; do sleep 2; done
open_start=$(q "select start_us from chunk where state = 0")
while (( $(date +%s%6N) - open_start < 35000000 )); do sleep 1; done

sealed_end=$(q "select max(end_us) from chunk where state = 1")
now=$(date +%s%6N)
ranges=("sealed $(( sealed_end - 25000000 )) $(( sealed_end - 5000000 ))"
        "live $(( now - 25000000 )) $(( now - 5000000 ))")
printf '%-7s %12s %10s %10s %8s\n' range bytes first_byte total frames
for r in "${ranges[@]}"; do
  read -r name from to <<<"$r"
  url="http://127.0.0.1:$http/api/v1/cameras/cam/export.mp4?from=$(( from / 1000000 )).$(printf %06d $(( from % 1000000 )))&to=$(( to / 1000000 )).$(printf %06d $(( to % 1000000 )))"
  curl -sf -o "$name.mp4" "$url"
  frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$name.mp4")
  for _ in 1 2 3 4 5 6 7; do
    curl -sf -o /dev/null -w '%{size_download} %{time_starttransfer} %{time_total}\n' "$url"
  done > times
  size=$(head -1 times | cut -d' ' -f1)
  ttfb=$(cut -d' ' -f2 times | sort -n | sed -n 4p)
  total=$(cut -d' ' -f3 times | sort -n | sed -n 4p)
  printf '%-7s %12s %10s %10s %8s\n' "$name" "$size" "$ttfb" "$total" "$frames"
done
