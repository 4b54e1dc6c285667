#!/usr/bin/env bash
# HTTP layer cost: the service's memory (RSS) and threads when idle and while 8 clients
# download 10-minute MP4 exports of 1080p footage at full speed and 64 more hold idle
# connections, and how long /api/v1/health takes meanwhile.
#   benches/http.sh                      this tree's release build
#   EDGENVR_BIN=path benches/http.sh     another build (before/after figures)
# Footage: the hour benches/export.sh uses (one real RTSP minute copied 60 times).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init
command -v sqlite3 >/dev/null || apt-get install -y -qq sqlite3 >/dev/null
bench_media
bench_rtsp_server 1
bench_hour_footage "$work/hour"
http=$((port + 2))
bench_serve_hour serve.toml "$http" "$work/hour"
"$bin" run --config serve.toml --log-level warn &
pid=$!
pids+=($pid)
until curl -s -o /dev/null "http://127.0.0.1:$http/api/v1/health"; do sleep 0.2; done
first=$(sqlite3 hour/index.db "select min(start_us) / 1000000 from chunk")
sleep 5
/usr/bin/python3 - "$pid" "$http" "$first" <<'PY'
import http.client, socket, sys, threading, time
pid, port, first = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def status():
    d = {}
    for line in open(f"/proc/{pid}/status"):
        # A line may have no value ("Groups:" of a process without supplementary groups).
        k, _, v = line.partition(":")
        if v.split():
            d[k] = v.split()[0]
    return int(d["VmRSS"]), int(d["VmHWM"]), int(d["Threads"])

idle_rss, _, idle_threads = status()
stop = time.time() + 20
downloaded = [0]
def download():
    while time.time() < stop:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", f"/api/v1/cameras/cam/export.mp4?from={first}&to={first + 600}")
        r = c.getresponse()
        while time.time() < stop:
            b = r.read(1 << 16)
            if not b:
                break
            downloaded[0] += len(b)
        c.close()
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
workers = [threading.Thread(target=download) for _ in range(8)]
for w in workers:
    w.start()
peak_rss, peak_threads, health = 0, 0, []
while time.time() < stop:
    rss, _, threads = status()
    peak_rss, peak_threads = max(peak_rss, rss), max(peak_threads, threads)
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/api/v1/health")
        c.getresponse().read()
        c.close()
        health.append(time.time() - t0)
    except OSError:
        health.append(float("inf"))
    time.sleep(0.1)
for w in workers:
    w.join()
_, hwm, _ = status()
health.sort()
print(f"idle: RSS {idle_rss} KiB, {idle_threads} threads")
print(f"load (8 downloads + 64 idle connections, 20 s): peak RSS {peak_rss} KiB (VmHWM {hwm} KiB), "
      f"peak {peak_threads} threads, {downloaded[0] / 20 / 1e6:.0f} MB/s served")
print(f"health during load: median {health[len(health) // 2] * 1000:.1f} ms, "
      f"max {health[-1] * 1000:.1f} ms over {len(health)} requests")
PY
