#!/usr/bin/env bash
# Build a release usbip-server and usbip_bench, serve the virtual Gadget Zero
# on loopback and measure bulk throughput and control latency. Prints the
# table and writes bench/results/loopback.json. Figures depend on the
# machine; compare runs on the same one.
#   bench/run.sh [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
ensure_packages "the build" "${BUILD_PACKAGES[@]}"
build=build/release
cmake -S . -B "$build" -DUSBIP_HOST_BUILD=ON -DUSBIP_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target usbip-server usbip_bench >/dev/null
out=$(mktemp)
"$build/host/daemon/usbip-server" --listen 127.0.0.1 --port 0 --device zero >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
port=""
for _ in $(seq 1 200); do
    port=$(sed -n 's/^usbip-server listening on .* port \([0-9]*\) .*/\1/p' "$out")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "usbip-server did not start" >&2; exit 1; }
mkdir -p bench/results
"$build/bench/usbip_bench" --port "$port" --busid 1-1 --json bench/results/loopback.json "$@"
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "usbip-server peak RSS: ${rss_kb} kB"
echo "wrote bench/results/loopback.json"
