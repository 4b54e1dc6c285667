#!/usr/bin/env bash
# Every benchmark, each figure next to a peer measured in the same run (takes ~30 minutes;
# not part of the test run). Results and their reading live in BENCHMARKS.md.
#   benches/all.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
echo "## Recording: edgenvr vs one ffmpeg -c copy -f segment per camera"
for n in 1 4 8; do "$here/benches/rtsp-recording.sh" "$n" 180; echo; done
echo "## Export: edgenvr HTTP MP4 vs ffmpeg -f concat -c copy -movflags +faststart"
"$here/benches/export.sh"
echo
echo "## Live view: edgenvr live.mp4 vs one ffmpeg -c copy fMP4 per viewer; first fragment, latency"
"$here/benches/live-http.sh"
echo
echo "## Thumbnails: the decoding child vs ffmpeg at 720p and 1080p"
"$here/benches/thumbnail.sh"
echo
echo "## Encode: YUYV conversion + openh264 vs ffmpeg libx264 ultrafast"
cargo bench --manifest-path "$here/Cargo.toml" --locked --bench encode 2>/dev/null
echo
echo "## Instructions (callgrind): one minute of one 1080p stream"
"$here/benches/instructions.sh" 60
echo
echo "## Demo service footprint"
"$here/benches/demo-footprint.sh" 120
echo
echo "## A V4L2 camera over time (arm64 VM: memory, drops)"
"$here/benches/v4l2-soak.sh" 8
