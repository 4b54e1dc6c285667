# Shared setup for the benchmark scripts (sourced, not run): release build, a scratch
# directory cleaned on exit with every started process, the 1080p test media, and
# GStreamer's RTSP server.

# bench_init: installs test packages, builds the release binary ($bin), enters a scratch
# directory ($work). Set KEEP=1 to keep it.
bench_init() {
  here=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
  "$here/scripts/install-deps.sh" test >/dev/null
  cargo build --manifest-path "$here/Cargo.toml" --release --locked --quiet
  bin="$here/target/release/edgenvr"
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
bench_rtsp_server() {
  port=$(( 20000 + RANDOM % 20000 ))
  local mounts=()
  for i in $(seq 1 "$1"); do mounts+=("cam$i=$media:h264:30"); done
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
