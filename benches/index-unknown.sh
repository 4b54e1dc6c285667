#!/usr/bin/env bash
# The background indexer on FILES chunk files the index does not know (an index lost, a
# card from another box), on a loop-mounted ext4 disk, while a camera records to the same
# disk; a peer service records the same camera stream at the same time with nothing to
# index. Reports the time to index, the indexer's CPU, each service's CPU and peak RSS, and
# what each camera recorded (frames, drops, gaps); then the cost of the walk at the next
# start, when every file is known.
#   benches/index-unknown.sh [FILES]      (default 100000; needs root for the mount)
set -euo pipefail
files=${1:-100000}
source "$(dirname "$0")/lib.sh"
bench_init
bench_media
bench_rtsp_server 2
tick=$(getconf CLK_TCK)

# The disk: 4 GiB ext4 in a file, remounted before the run so nothing is in the page cache.
truncate -s 4G disk.img
mkfs.ext4 -q -F disk.img
mkdir -p mnt
mount -o loop disk.img mnt
trap 'umount -l "$work/mnt" 2>/dev/null || true; bench_cleanup' EXIT

# One real chunk of about 2 s (~10 KB), recorded by edgenvr itself, copied FILES times under other
# names: 10 cameras x (FILES / 10 / 100) days x 100 minutes, dated an hour back.
cat > make.toml <<EOT
[index]
path = "$work/make.db"
[[storage]]
path = "$work/made"
[[camera]]
id = "src"
source = "testsrc"
width = 160
height = 120
fps = 15
bitrate = 32000
keyframe_interval = 15
EOT
"$bin" run --config make.toml --log-level warn & mk=$!
sleep 3; kill -INT $mk; wait $mk || true
chunk=$(find made -name '*.chunk' -size +1k | head -1)
python3 - "$chunk" mnt/old "$files" <<'EOT'
import os, sys, time
src, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, 'rb').read()
old = time.time() - 3600
made = 0
for cam in range(10):
    day = 0
    while made < n * (cam + 1) // 10:
        d = os.path.join(root, f"cam{cam}", f"2025{1 + day // 28:02d}{1 + day % 28:02d}")
        os.makedirs(d)
        for m in range(min(100, n * (cam + 1) // 10 - made)):
            p = os.path.join(d, f"cam{cam}.{os.path.basename(d)}.{m // 60:02d}{m % 60:02d}.chunk")
            with open(p, 'wb') as f:
                f.write(data)
            os.utime(p, (old, old))
            made += 1
        day += 1
print(f"{made} files of {len(data)} bytes")
EOT
umount mnt && mount -o loop disk.img mnt

service_config() { # FILE PORT ROOT INDEX RTSP_MOUNT
  cat > "$1" <<EOT
[server]
listen = "127.0.0.1:$2"
[index]
path = "$4"
[[storage]]
path = "$3"
[[camera]]
id = "live"
url = "rtsp://127.0.0.1:$port/$5"
EOT
}
http_a=$(( 40000 + RANDOM % 10000 )); http_b=$(( http_a + 1 ))
service_config a.toml "$http_a" "$work/mnt/old" "$work/a.db" cam1
service_config b.toml "$http_b" "$work/mnt/peer" "$work/b.db" cam2
"$bin" run --config a.toml --log-level info > a.log 2>&1 & a=$!; pids+=($a)
"$bin" run --config b.toml --log-level info > b.log 2>&1 & b=$!; pids+=($b)
start=$(date +%s.%N)
indexed() { sqlite3 -readonly "$work/a.db" "select count(*) from chunk where camera like 'cam%'" 2>/dev/null || echo 0; }
until [[ $(indexed) -ge $files ]]; do
  sleep 1
  (( $(date +%s) - ${start%.*} < 3600 )) || { echo "not indexed within an hour"; exit 1; }
done
took=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }")
cpu() { awk -v t="$tick" '{ printf "%.2f", ($14 + $15) / t }' "$1"; }
indexer_cpu=$(for t in /proc/$a/task/*; do if [[ $(cat "$t/comm") == indexer ]]; then cpu "$t/stat"; fi; done)
report() { # NAME PID HTTP_PORT
  local st; st=$(python3 -c "
import json, urllib.request
s = json.load(urllib.request.urlopen('http://127.0.0.1:$3/api/v1/status'))
c = s['cameras'][0]
print(c['frames'], c['frames_dropped'], c['gaps'])")
  printf '%-28s cpu %6s s  peak RSS %6s KiB  live camera: frames/dropped/gaps %s\n' "$1" \
    "$(cpu /proc/$2/stat)" "$(awk '/VmHWM/ {print $2}' /proc/$2/status)" "$st"
}
echo "indexed $files files in $took s ($(awk "BEGIN { printf \"%d\", $files / $took }") files/s); indexer thread cpu $indexer_cpu s"
report "with $files unknown files" "$a" "$http_a"
report "peer, nothing to index" "$b" "$http_b"
kill -INT "$a" "$b"; wait "$a" "$b" || true
grep -h "indexer:" a.log | tail -2

# The next start: every file known, one count query per day directory.
umount mnt && mount -o loop disk.img mnt
"$bin" run --config a.toml --log-level debug > a2.log 2>&1 & a=$!; pids+=($a)
until grep -q "indexer: .*pass done" a2.log; do sleep 1; done
kill -INT "$a"; wait "$a" || true
grep -h "pass done" a2.log
