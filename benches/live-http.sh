#!/usr/bin/env bash
# The live view over HTTP against its peer, in the same run: one 1080p30 ~3 Mbit/s RTSP
# camera (GStreamer's server) recorded by the release build, then
#  - first-frame time: from connecting to the first fragment (`moof`) of live.mp4;
#  - latency frame-in -> bytes-out: for every fragment, the time its bytes arrive at the
#    client minus its tfdt (the frame's wall-clock time when the recorder received it, at
#    90 kHz; same machine, same clock), median / p99 / max over 20 s;
#  - CPU per viewer with 1 and 10 viewers: the service's CPU time (utime+stime) over 20 s
#    less the same with no viewer, divided by viewers; against `ffmpeg -rtsp_transport tcp
#    -i URL -c copy -f mp4 -movflags frag_keyframe+empty_moov` per viewer (its own CPU),
#    which is what a box without a live view would run per viewer.
#   heavy benches/live-http.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init
bench_media
bench_rtsp_server 1
http=$(( 40000 + RANDOM % 10000 ))
mkdir data
bench_camera_config edgenvr.toml "$http" "$work/data"
sed -i 's/^\[server\]$/[server]\nmax_viewers = 16/' edgenvr.toml
"$bin" run --config edgenvr.toml > service.log 2>&1 &
svc=$!
pids+=($svc)
url="http://127.0.0.1:$http/api/v1/cameras/cam/live.mp4"
until curl -sf "http://127.0.0.1:$http/api/v1/status" | grep -q '"frames":[1-9]'; do sleep 0.5; done
sleep 3

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
secs=20

# First frame and latency (one viewer, python reading fragments and their tfdt).
cat > client.py <<'PY'
import socket, struct, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
t0 = time.time()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /api/v1/cameras/cam/live.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
buf, body, head_done, first, lat = b"", b"", False, None, []
end = t0 + secs
while time.time() < end:
    d = s.recv(1 << 16)
    if not d:
        break
    now = time.time()
    buf += d
    if not head_done:
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            continue
        buf, head_done = buf[i + 4:], True
    # de-chunk what is complete
    while True:
        i = buf.find(b"\r\n")
        if i < 0:
            break
        n = int(buf[:i], 16)
        if len(buf) < i + 2 + n + 2:
            break
        body += buf[i + 2:i + 2 + n]
        buf = buf[i + 2 + n + 2:]
    # walk complete top-level boxes
    while len(body) >= 8:
        size, kind = struct.unpack(">I4s", body[:8])
        if len(body) < size:
            break
        box, body = body[:size], body[size:]
        if kind == b"moof":
            if first is None:
                first = now - t0
            j = box.find(b"tfdt")
            ver = box[j + 4]
            tfdt = struct.unpack(">Q", box[j + 8:j + 16])[0] if ver == 1 else struct.unpack(">I", box[j + 8:j + 12])[0]
            lat.append(now - tfdt / 90000.0)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
print(f"first_fragment_ms={first * 1000:.0f} fragments={len(lat)} latency_ms_median={q(0.5):.0f} p99={q(0.99):.0f} max={lat[-1] * 1000:.0f}")
PY
/usr/bin/python3 client.py "$http" "$secs" | tee latency.txt

# CPU: the service with 0, 1 and 10 viewers; ffmpeg with 1 and 10.
service_cpu() { # viewers -> CPU % of one core, of the service
  local n=$1 cs=()
  for _ in $(seq "$n"); do curl -s -o /dev/null "$url" & cs+=($!); done
  sleep 2
  local a; a=$(cpu_ticks "$svc"); sleep "$secs"; local b; b=$(cpu_ticks "$svc")
  for c in "${cs[@]}"; do kill "$c" 2>/dev/null || true; done
  wait "${cs[@]}" 2>/dev/null || true
  echo "scale=2; ($b - $a) * 100 / $hz / $secs" | bc
}
ffmpeg_cpu() { # viewers -> CPU % of one core, all ffmpeg processes together
  local n=$1 fs=()
  for i in $(seq "$n"); do
    ffmpeg -v error -rtsp_transport tcp -i "rtsp://127.0.0.1:$port/cam1" -c copy -f mp4 \
      -movflags frag_keyframe+empty_moov -y "/dev/null" </dev/null & fs+=($!)
  done
  sleep 2
  local a=0 b=0 p
  for p in "${fs[@]}"; do a=$((a + $(cpu_ticks "$p"))); done
  sleep "$secs"
  for p in "${fs[@]}"; do b=$((b + $(cpu_ticks "$p"))); done
  for p in "${fs[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${fs[@]}" 2>/dev/null || true
  echo "scale=2; ($b - $a) * 100 / $hz / $secs" | bc
}
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
base=$(service_cpu 0)
printf "%-8s %-28s %-28s %s\n" viewers "edgenvr CPU%/viewer" "ffmpeg CPU%/viewer" "ratio"
for n in 1 10; do
  ours=$(service_cpu "$n")
  theirs=$(ffmpeg_cpu "$n")
  per_ours=$(echo "scale=2; ($ours - $base) / $n" | bc)
  per_theirs=$(echo "scale=2; $theirs / $n" | bc)
  ratio=$(echo "scale=3; $per_ours / $per_theirs" | bc)
  printf "%-8s %-28s %-28s %s\n" "$n" "$per_ours (service $ours, idle $base)" "$per_theirs (total $theirs)" "$ratio"
done
grep -o '"live":{[^}]*}' <(curl -s "http://127.0.0.1:$http/api/v1/status") || true
