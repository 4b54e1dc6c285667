#!/usr/bin/env bash
# Thumbnail cost: time and peak RSS of the decoding child (`edgenvr thumbnail-decode`,
# openh264 + area scaling + jpeg-encoder) for one 720p and one 1080p keyframe, next to
# `ffmpeg -i key.h264 -frames:v 1 -vf scale=320:-2:flags=area thumb.jpg` on the same
# keyframe, run alternately in the same session. Median of 9 runs each.
#   heavy benches/thumbnail.sh
# The service itself never decodes: its RSS does not change with thumbnails (the child's
# peak ends with the child).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init
runs=9
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# measure CMD...: prints "seconds peak_rss_kib" of one run (GNU time's %e %M).
measure() { /usr/bin/time -f "%e %M" -o t.out "$@" >/dev/null 2>&1; cat t.out; }
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null

printf "%-6s %-34s %10s %14s\n" size tool "time ms" "peak RSS MiB"
for size in 1280x720 1920x1080; do
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=$size:rate=30" -t 1 -pix_fmt yuv420p -c:v libx264 \
    -preset veryfast -bf 0 -b:v 4M -g 30 -bsf:v h264_mp4toannexb -f h264 all.h264
  # The first access unit: everything up to and including the first slice.
  /usr/bin/python3 - <<'PY'
import re
d = open('all.h264', 'rb').read()
starts = [m.end() for m in re.finditer(b'\x00\x00\x01', d)]
out = b''
for i, s in enumerate(starts):
    e = starts[i + 1] - 3 if i + 1 < len(starts) else len(d)
    nal = d[s:e].rstrip(b'\x00')
    out += b'\x00\x00\x00\x01' + nal
    if nal[0] & 0x1f in (1, 5):
        break
open('key.h264', 'wb').write(out)
PY
  : > child.txt; : > ffmpeg.txt
  for _ in $(seq $runs); do
    measure sh -c "'$bin' thumbnail-decode --width 320 < key.h264 > ours.jpg" >> child.txt
    measure ffmpeg -v error -y -i key.h264 -frames:v 1 -vf scale=320:-2:flags=area theirs.jpg >> ffmpeg.txt
  done
  for f in child ffmpeg; do
    t=$(awk '{print $1 * 1000}' $f.txt | median)
    m=$(awk '{print $2 / 1024}' $f.txt | median)
    name=$([[ $f == child ]] && echo "edgenvr thumbnail-decode (child)" || echo "ffmpeg (decode+scale+jpeg)")
    printf "%-6s %-34s %10.0f %14.1f\n" "${size#*x}p" "$name" "$t" "$m"
  done
done

# The service's side at 1080p: a release service recording the 1080p30 RTSP camera answers
# thumbnail.jpg (the child decodes); its RSS and peak RSS (VmHWM) before and after, and
# each request's time (curl), median of $runs; the cache is defeated by asking a second
# earlier each time, so every request decodes.
bench_media
bench_rtsp_server 1
http=$(( 40000 + RANDOM % 10000 ))
mkdir -p data
bench_camera_config edgenvr.toml "$http" "$work/data"
"$bin" run --config edgenvr.toml > service.log 2>&1 &
svc=$!
pids+=($svc)
until curl -sf "http://127.0.0.1:$http/api/v1/status" | grep -q '"frames":[1-9]'; do sleep 0.5; done
sleep $((runs + 3))
mem() { awk '/^VmRSS:/ {r = $2} /^VmHWM:/ {h = $2} END {printf "%.1f %.1f\n", r / 1024, h / 1024}' "/proc/$svc/status"; }
read -r rss0 hwm0 < <(mem)
now=$(date +%s)
: > service.txt
for i in $(seq $runs); do
  curl -s -o "svc-$i.jpg" -w '%{http_code} %{time_total}\n' \
    "http://127.0.0.1:$http/api/v1/cameras/cam/thumbnail.jpg?at=$((now - 2 - i))&width=320" >> service.txt
done
read -r rss1 hwm1 < <(mem)
grep -qv '^200 ' service.txt && { echo "a thumbnail request failed:"; cat service.txt; exit 1; }
t=$(awk '{print $2 * 1000}' service.txt | median)
echo "1080p via the service (thumbnail.jpg, $runs requests, each decoding): median $t ms per request;" \
  "service RSS $rss0 -> $rss1 MiB, peak (VmHWM) $hwm0 -> $hwm1 MiB"
