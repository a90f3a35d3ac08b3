#!/usr/bin/env bash
# Build the daemon and start it on localhost with the four virtual devices
# (keyboard, serial port, mass storage, Gadget Zero) and the web dashboard on
# http://127.0.0.1:8080/. It prints how to list and attach them; stop it with
# Ctrl-C. Extra arguments go to usbip-server (see `usbip-server --help`),
# e.g. tools/demo.sh --port 3241.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
ensure_packages "the build" "${BUILD_PACKAGES[@]}"
if command -v npm >/dev/null; then
    tools/build-web.sh || echo "(dashboard page not built: the API still works)"
else
    echo "(Node.js/npm missing: the dashboard page is not built, its API still works)"
fi

build=build/release
cmake -S . -B "$build" -DUSBIP_HOST_BUILD=ON -DUSBIP_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target usbip-server usbip-client >/dev/null
echo "Built $build/host/daemon/usbip-server"
command -v usbip >/dev/null || echo "(To attach from this machine install the client: apt-get install usbip)"
exec "$build/host/daemon/usbip-server" --listen 127.0.0.1 --http 8080 \
    --control "${TMPDIR:-/tmp}/usbip-server.ctl" "$@"
