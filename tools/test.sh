#!/usr/bin/env bash
# Run every test: builds the host programs with clang under AddressSanitizer
# and UndefinedBehaviorSanitizer, then runs the unit, fuzz, integration,
# interop, VM (Linux kernel client under qemu) and web (the dashboard in
# headless Chromium) tests through ctest.
# Installs missing Debian packages when root.
#   tools/test.sh            all tests
#   tools/test.sh -L unit    only one label (unit, fuzz, integration, interop, vm, web)
#   USBIP_VM_TESTS=OFF tools/test.sh   everything but the VM tests
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
ensure_packages "the build" "${BUILD_PACKAGES[@]}"
ensure_packages "the tests" "${TEST_PACKAGES[@]}"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    ensure_packages "the dashboard page" nodejs npm
fi
echo "== dashboard page (web/: npm ci + bundle)"
tools/build-web.sh

build=build/test
jobs=$(nproc 2>/dev/null || echo 2)
echo "== configure ($build: clang, ASan+UBSan, libFuzzer)"
cmake -S . -B "$build" -DUSBIP_HOST_BUILD=ON -DUSBIP_SANITIZE=ON -DUSBIP_FUZZ=ON \
      -DUSBIP_VM_TESTS="${USBIP_VM_TESTS:-ON}" \
      -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug >/dev/null
echo "== build"
if ! cmake --build "$build" -j "$jobs" >"$build/build.log" 2>&1; then
    grep -E "error|Error" -A5 "$build/build.log" | head -60
    echo "build failed: full log in $build/build.log" >&2
    exit 1
fi
grep -E "warning:" "$build/build.log" || true
echo "== test"
cd "$build"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --output-on-failure -j "$jobs" "$@"
