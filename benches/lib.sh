# Shared setup for the benchmark scripts (sourced, not run): release build, a scratch
# directory cleaned on exit with every started process, the 1080p test media, and
# GStreamer's RTSP server.

# bench_init: installs test packages, builds the release binary ($bin), enters a scratch
# directory ($work). Set KEEP=1 to keep it. EDGENVR_BIN=PATH measures that binary instead
# of building this tree (e.g. an older build, for before/after figures).
bench_init() {
  here=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
  "$here/scripts/install-deps.sh" test >/dev/null
  if [[ -n ${EDGENVR_BIN:-} ]]; then
    bin=$(realpath "$EDGENVR_BIN")
  else
    cargo build --manifest-path "$here/Cargo.toml" --release --locked --quiet
    bin="$here/target/release/edgenvr"
  fi
  work=$(mktemp -d)
  pids=()
  trap bench_cleanup EXIT
  cd "$work"
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n ${KEEP:-} ]] || rm -rf "$work"
}

# bench_media: 10 s of 1080p30 ~3 Mbit/s H.264 (1 s GOP) in $media, made once and cached.
bench_media() {
  media="${TMPDIR:-/tmp}/edgenvr-bench-1080p.264"
  if [[ ! -f $media ]]; then
    ffmpeg -v error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30" -t 10 -pix_fmt yuv420p -c:v libx264 \
      -preset veryfast -bf 0 -b:v 3M -maxrate 3M -bufsize 3M -g 30 -keyint_min 30 -sc_threshold 0 \
      -bsf:v h264_mp4toannexb -f h264 "$media.tmp" && mv "$media.tmp" "$media"
  fi
}

# bench_rtsp_server N: serves $media as cam1..camN on a random port ($port), waits until ready.
# With AUDIO=aac (or pcmu, pcma) each mount also sends that audio (tests/fixtures/rtsp_server.py),
# as "-noise": a live microphone's steady bitrate (AAC 64 kbit/s, G.711 64 kbit/s), not ticks.
bench_rtsp_server() {
  port=$(( 20000 + RANDOM % 20000 ))
  local mounts=()
  for i in $(seq 1 "$1"); do mounts+=("cam$i=$media:h264:30${AUDIO:+:$AUDIO-noise}"); done
  /usr/bin/python3 "$here/tests/fixtures/rtsp_server.py" "$port" "${mounts[@]}" > server.out &
  pids+=($!)
  until grep -q ready server.out; do sleep 0.1; done
}

# bench_camera_config FILE HTTP_PORT ROOT: a config recording the server's cam1 as camera
# "cam" into ROOT, with the API on HTTP_PORT.
bench_camera_config() {
  cat > "$1" <<EOT
[server]
listen = "127.0.0.1:$2"
[[storage]]
path = "$3"
[[camera]]
id = "cam"
url = "rtsp://127.0.0.1:$port/cam1"
EOT
}

# bench_hour_footage ROOT: an hour of 1080p30 ~3 Mbit/s footage for camera "cam" in ROOT:
# one real minute recorded over RTSP from GStreamer's server (needs bench_media and
# bench_rtsp_server 1 first; cached between runs), copied 60 times with shifted timestamps
# (a day ago), ready for `edgenvr check --repair` to import.
bench_hour_footage() {
  local minute_cache="${TMPDIR:-/tmp}/edgenvr-bench-minute.chunk"
  if [[ ! -f $minute_cache ]]; then
    bench_camera_config rec.toml "$((port + 1))" "$work/rec"
    "$bin" run --config rec.toml --log-level warn &
    local rpid=$!; pids+=($rpid)
    echo "recording one full minute of 1080p (up to ~2 minutes)..."
    until [[ $(sqlite3 rec/index.db "select count(*) from chunk where state = 1" 2>/dev/null || echo 0) -ge 2 ]]; do sleep 2; done
    kill -INT $rpid; wait $rpid || true
    cp "rec/$(sqlite3 rec/index.db "select rel_path from chunk where state = 1 order by start_us limit 1 offset 1")" "$minute_cache"
  fi
  /usr/bin/python3 - "$minute_cache" "$1" <<'PY'
import os, struct, sys, time
src, root = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
recs, i = [], 0
while i < len(data):
    v, ts, n = struct.unpack(">BQQ", data[i:i + 17]); recs.append((ts, data[i + 17:i + 17 + n])); i += 17 + n
base = (recs[0][0] // 60_000_000 - 24 * 60) * 60_000_000  # a day ago, on a minute boundary
off0 = base - (recs[0][0] // 60_000_000) * 60_000_000
for k in range(60):
    shift = off0 + k * 60_000_000
    t = time.gmtime((recs[0][0] + shift) // 1_000_000)
    day = time.strftime("%Y%m%d", t); hhmm = time.strftime("%H%M", t)
    d = os.path.join(root, "cam", day); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"cam.{day}.{hhmm}.chunk"), "wb") as f:
        for ts, nal in recs:
            f.write(struct.pack(">BQQ", 0, ts + shift, len(nal))); f.write(nal)
PY
}

# bench_serve_hour FILE HTTP_PORT ROOT: a config serving the footage in ROOT (from
# bench_hour_footage) with the API on HTTP_PORT and the camera disabled (nothing records
# meanwhile), imported into ROOT's index by `edgenvr check --repair`. Shared by
# benches/export.sh and benches/http.sh.
bench_serve_hour() {
  bench_camera_config "$@"
  echo "enabled = false" >> "$1"
  "$bin" check --config "$1" --repair --log-level warn > /dev/null || true
}
