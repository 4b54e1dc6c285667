#!/usr/bin/env bash
# What MQTT adds: the service recording one 1080p RTSP camera (no encoding, so the MQTT
# thread's share is visible) for $secs seconds, without and with `[mqtt]` pointed at a
# local Mosquitto, runs alternated (A B A B). With MQTT, a subscriber takes everything and
# an event starts and ends over MQTT every 2 s (the service publishes event JSON and
# state, Home Assistant discovery at connect). Reported per run: RSS at the end (VmRSS),
# CPU seconds used (utime + stime from /proc/PID/stat) and threads.
#   heavy benches/mqtt.sh          (secs=60 by default: secs=30 heavy benches/mqtt.sh)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init
bench_media
bench_rtsp_server 1
secs=${secs:-60}
mport=$(( 20000 + RANDOM % 20000 ))
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$mport" > mosq.conf
mosquitto -c mosq.conf > mosq.log 2>&1 &
pids+=($!)
until mosquitto_pub -p "$mport" -t ready -m 1 2>/dev/null; do sleep 0.1; done
tck=$(getconf CLK_TCK)

run() { # run NAME WITH_MQTT
  local http=$(( 40000 + RANDOM % 20000 )) root="$work/root-$1"
  mkdir -p "$root"
  bench_camera_config "cfg-$1.toml" "$http" "$root"
  if [[ $2 == 1 ]]; then
    printf '[mqtt]\nhost = "127.0.0.1"\nport = %s\n' "$mport" >> "cfg-$1.toml"
    sed -i 's/^\[server\]$/[server]\nbox_id = "bench"/' "cfg-$1.toml"
    mosquitto_sub -p "$mport" -t '#' > "sub-$1.out" &
    local sub=$!
  fi
  "$bin" run --config "cfg-$1.toml" --log-level warn 2> "svc-$1.log" &
  local pid=$!
  sleep 5 # connect and first chunk
  local t0; t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  local end=$(( SECONDS + secs ))
  while (( SECONDS < end )); do
    if [[ $2 == 1 ]]; then
      mosquitto_pub -p "$mport" -t edgenvr/bench/camera/cam/event/set -m ON
      sleep 1
      mosquitto_pub -p "$mport" -t edgenvr/bench/camera/cam/event/set -m OFF
      sleep 1
    else
      sleep 2
    fi
  done
  local t1 rss threads
  t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  threads=$(awk '/Threads/ {print $2}' "/proc/$pid/status")
  kill -INT "$pid"; wait "$pid" || true
  [[ $2 == 1 ]] && { kill "$sub"; wait "$sub" 2>/dev/null || true; }
  local events=0
  [[ $2 == 1 ]] && events=$(grep -c '"type":"end"' "sub-$1.out" || true)
  printf "%-10s %8s %12s %8s %8s\n" "$1" "$(( rss / 1024 ))" "$(awk -v a="$t0" -v b="$t1" -v t="$tck" 'BEGIN {printf "%.2f", (b - a) / t}')" "$threads" "$events"
}

printf "%-10s %8s %12s %8s %8s   (%s s each)\n" run "RSS MiB" "CPU s" threads events "$secs"
run plain-1 0
run mqtt-1 1
run plain-2 0
run mqtt-2 1
