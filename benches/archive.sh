#!/usr/bin/env bash
# Archive upload cost: edgenvr's uploader against `rclone copy` of the same chunk files to
# the same SeaweedFS (`weed mini` on loopback), in the same run: throughput (MB/s) and CPU
# seconds per GB (user + system of the whole process), one transfer at a time for both
# (rclone --transfers 1 --checkers 1; edgenvr uploads one chunk at a time by design).
#   heavy benches/archive.sh [CHUNKS]      (default 16 one-minute 1080p chunks, ~380 MB)
# edgenvr runs with no camera, so its CPU is the uploader's (plus an idle service); its
# peak RSS and threads are compared with the same service without [[archive]].
# rclone is not installed by install-deps.sh (benches are not in CI): apt-get install rclone.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init
bench_media
chunks=${1:-16}
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; } # utime+stime, clock ticks
now() { date +%s.%N; }

# The footage: $chunks one-minute chunk files of the 1080p media, looped, PyNVR layout,
# imported into an index by `edgenvr check --repair`.
python3 - "$media" "$chunks" <<'PY'
import os, re, struct, sys
data = open(sys.argv[1], 'rb').read()
starts = [m.end() for m in re.finditer(b'\x00\x00\x01', data)]
nals = []
for i, s in enumerate(starts):
    e = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
    nals.append(data[s:e].rstrip(b'\x00'))
aus, cur = [], []
for n in nals:  # access units: everything up to and including a slice
    cur.append(n)
    if n[0] & 0x1f in (1, 5):
        aus.append(cur); cur = []
t0 = 1795272960 * 1_000_000  # 2026-11-21T14:56:00Z
for c in range(int(sys.argv[2])):
    start = t0 + c * 60_000_000
    d = f"root/cam/20261121"
    os.makedirs(d, exist_ok=True)
    import time
    hhmm = time.strftime('%H%M', time.gmtime(start // 1_000_000))
    with open(f"{d}/cam.20261121.{hhmm}.chunk", 'wb') as f:
        for k in range(1800):  # 60 s at 30 fps
            ts = start + k * 33_333
            for n in aus[k % len(aus)]:
                f.write(struct.pack('>BQQ', 0, ts, len(n)) + n)
PY
bytes=$(du -cb root/cam/20261121/*.chunk | tail -1 | cut -f1)
s3=$(port)
args=(-ip=127.0.0.1 -ip.bind=127.0.0.1 -bucket=nvr -admin.ui=false -webdav=false -master.telemetry=false
  -dir="$work/weed" -s3.port=$s3)
for p in master.port master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc s3.port.grpc \
  admin.port admin.port.grpc s3.port.iceberg s3.port.lance webdav.port; do args+=("-$p=$(port)"); done
mkdir -p weed
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret weed mini "${args[@]}" > weed.log 2>&1 &
pids+=($!)
until curl -s -o /dev/null "http://127.0.0.1:$s3/"; do sleep 0.5; done
sleep 5 # the bucket is created a moment after the port answers
printf 'bench\nbench-secret\n' > s3.key; chmod 600 s3.key
cat > edgenvr.toml <<EOT
[server]
listen = "127.0.0.1:$(port)"
box_id = "bench"
[[storage]]
path = "$work/root"
[[archive]]
endpoint = "http://127.0.0.1:$s3"
bucket = "nvr"
credentials_file = "$work/s3.key"
delay = "1s"
EOT
"$bin" check --repair --config edgenvr.toml --log-level warn > /dev/null || true

t=$(now)
"$bin" run --config edgenvr.toml --log-level warn > edgenvr.log 2>&1 &
pid=$!; pids+=($pid)
until "$bin" archive status --config edgenvr.toml 2>/dev/null | grep -q "backlog: 0 chunks"; do sleep 0.2; done
ours_s=$(echo "$(now) - $t" | bc); ours_cpu=$(cpu_s $pid)
status_of() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
ours_hwm=$(status_of $pid VmHWM); ours_threads=$(status_of $pid Threads)
kill -INT $pid; wait $pid || true

# The same service without [[archive]] (nothing to upload), as long: its peak RSS and
# threads are the baseline of the uploader's cost.
sed '/^\[\[archive\]\]/,$d' edgenvr.toml > plain.toml
"$bin" run --config plain.toml --log-level warn > plain.log 2>&1 &
pid=$!; pids+=($pid)
sleep "$ours_s"
plain_hwm=$(status_of $pid VmHWM); plain_threads=$(status_of $pid Threads)
kill -INT $pid; wait $pid || true

export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=SeaweedFS RCLONE_CONFIG_S3_ENDPOINT="http://127.0.0.1:$s3" \
  RCLONE_CONFIG_S3_ACCESS_KEY_ID=bench RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=bench-secret
# rclone's S3 client fails on any AWS_CA_BUNDLE ("unsupported transport"); the store is
# plain http here.
/usr/bin/time -f "%e %U %S" -o rclone.t env -u AWS_CA_BUNDLE rclone copy --transfers 1 --checkers 1 root/cam s3:nvr/rclone/cam
read -r r_s r_u r_k < rclone.t
r_cpu=$(echo "$r_u + $r_k" | bc)

gb=$(echo "scale=6; $bytes / 1000000000" | bc)
printf "%-28s %10s %10s %12s\n" tool "MB/s" "CPU s" "CPU s per GB"
printf "%-28s %10.1f %10.2f %12.2f\n" "edgenvr archive (1 thread)" "$(echo "$bytes / $ours_s / 1000000" | bc -l)" "$ours_cpu" "$(echo "$ours_cpu / $gb" | bc -l)"
printf "%-28s %10.1f %10.2f %12.2f\n" "rclone copy --transfers 1" "$(echo "$bytes / $r_s / 1000000" | bc -l)" "$r_cpu" "$(echo "$r_cpu / $gb" | bc -l)"
echo "($chunks chunks, $bytes bytes; edgenvr's time includes its start and its 0.2 s status polls)"
echo "edgenvr peak RSS: ${ours_hwm} KiB uploading, ${plain_hwm} KiB without [[archive]] (+$((ours_hwm - plain_hwm)) KiB);" \
  "threads: ${ours_threads} vs ${plain_threads}"
