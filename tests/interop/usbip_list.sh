#!/usr/bin/env bash
# Interop: Debian's `usbip list -r` (package usbip) against usbip-server.
#   usbip_list.sh PATH-TO-usbip-server
# 1. the four default devices: bus ids, VID:PID, device and interface classes;
# 2. an imported device (IMPORT sent from bash over /dev/tcp) is left out, and
#    is back once its connection closes;
# 3. no devices: "no exportable devices found";
# 4. access closed for 127.0.0.1: usbip reports the failure and exits 1.
set -euo pipefail

server=${1:?usage: usbip_list.sh USBIP-SERVER}
for tool in usbip timeout; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: $tool is not installed (apt-get install usbip)" >&2
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/usbip-list-XXXXXX")
daemon_pid=""
failed=1

cleanup() {
    exec 3>&- 2>/dev/null || true
    if [ -n "$daemon_pid" ]; then kill -KILL "$daemon_pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    if [ "$failed" = 1 ]; then
        echo "----- daemon log -----" >&2
        cat "$work/daemon.log" >&2 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Wait up to 20 s for a process to end (it stays a zombie until `wait`).
wait_gone() {
    local _
    for _ in $(seq 1 400); do
        [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = "Z" ] && return 0
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.05
    done
    return 1
}

port=""
start_daemon() {
    "$server" --listen 127.0.0.1 --port 0 "$@" >"$work/daemon.out" 2>>"$work/daemon.log" &
    daemon_pid=$!
    port=""
    for _ in $(seq 1 400); do
        port=$(sed -n 's/^usbip-server listening on .* port \([0-9]*\) (access.*/\1/p' \
               "$work/daemon.out" 2>/dev/null || true)
        [ -n "$port" ] && return 0
        kill -0 "$daemon_pid" 2>/dev/null || fail "usbip-server exited at start"
        sleep 0.05
    done
    fail "no banner from usbip-server"
}

stop_daemon() {
    kill -TERM "$daemon_pid"
    local status=0
    wait_gone "$daemon_pid" || fail "usbip-server did not exit within 20 s of SIGTERM"
    wait "$daemon_pid" || status=$?
    daemon_pid=""
    [ "$status" = 0 ] || fail "usbip-server exit status $status"
}

list() {
    timeout 20 usbip --tcp-port "$port" list -r 127.0.0.1 >"$work/list.out" 2>"$work/list.err"
}

# The lines of one device in `usbip list -r` output: from "BUSID: ..." up to
# the next device.
device_block() {
    awk -v id="$1" '
        $1 ~ /^[0-9]+-[0-9.]+:$/ { inside = ($1 == id ":") }
        inside { print }' "$work/list.out"
}

expect_device() { # BUSID VID:PID DEVICE-CLASS INTERFACE-CLASS...
    local busid=$1 ids=$2 class=$3
    shift 3
    local block
    block=$(device_block "$busid")
    [ -n "$block" ] || fail "usbip list: no device $busid"
    echo "$block" | head -1 | grep -qE "^ *$busid: .*\($ids\)\$" ||
        fail "usbip list: $busid is not ($ids): $(echo "$block" | head -1)"
    echo "$block" | grep -qE "^ *: .*/$busid\$" || fail "usbip list: $busid has no path line"
    echo "$block" | grep -qE "^ *: .*\($class\)\$" || fail "usbip list: $busid device class is not $class"
    local n=0 intf
    for intf in "$@"; do
        echo "$block" | grep -qE "^ *: +$n - .*\($intf\)\$" ||
            fail "usbip list: $busid interface $n is not $intf"
        n=$((n + 1))
    done
    # No interface beyond those.
    ! echo "$block" | grep -qE "^ *: +$n - " || fail "usbip list: $busid has an interface $n"
}

# --- 1. the four default devices ---
start_daemon
list || fail "usbip list failed: $(cat "$work/list.err")"
cat "$work/list.out"
grep -q "^ - 127.0.0.1" "$work/list.out" || fail "usbip list: no host header"
expect_device 1-1 1209:5501 00/00/00 03/01/01
expect_device 1-2 1209:5502 ef/02/01 02/02/01 0a/00/00
expect_device 1-3 1209:5503 00/00/00 08/06/50
expect_device 1-4 0525:a4a0 ff/00/00 ff/00/00
grep -q "Human Interface Device / Boot Interface Subclass / Keyboard (03/01/01)" "$work/list.out" ||
    fail "usbip list: keyboard interface not named as a boot keyboard"
grep -q "Mass Storage / SCSI / Bulk-Only (08/06/50)" "$work/list.out" ||
    fail "usbip list: storage interface not named as SCSI Bulk-Only"
[ "$(grep -cE '^ *[0-9]+-[0-9.]+: ' "$work/list.out")" = 4 ] || fail "usbip list: not 4 devices"

# --- 2. an imported device is not listed ---
exec 3<>"/dev/tcp/127.0.0.1/$port"
# OP_REQ_IMPORT: version 0x0111, code 0x8003, status 0, busid "1-4" NUL-padded to 32.
printf '\x01\x11\x80\x03\x00\x00\x00\x00%s' "1-4" >&3
head -c 29 /dev/zero >&3
timeout 5 head -c 320 <&3 >"$work/import.reply" || fail "no OP_REP_IMPORT"
[ "$(head -c 8 "$work/import.reply" | od -An -tx1 | tr -d ' \n')" = "0111000300000000" ] ||
    fail "OP_REP_IMPORT header: $(head -c 8 "$work/import.reply" | od -An -tx1)"
list || fail "usbip list failed with 1-4 imported"
[ -z "$(device_block 1-4)" ] || fail "usbip list shows 1-4 while it is imported"
[ "$(grep -cE '^ *[0-9]+-[0-9.]+: ' "$work/list.out")" = 3 ] || fail "usbip list: not 3 devices"
exec 3>&-
back=0
for _ in $(seq 1 60); do
    list || fail "usbip list failed"
    if [ -n "$(device_block 1-4)" ]; then back=1; break; fi
    sleep 0.05
done
[ "$back" = 1 ] || fail "1-4 not listed again after its importer closed the connection"
expect_device 1-4 0525:a4a0 ff/00/00 ff/00/00
stop_daemon

# --- 3. no devices ---
start_daemon --no-devices
list || fail "usbip list failed on an empty server"
grep -q "no exportable devices found on 127.0.0.1" "$work/list.err" ||
    fail "usbip list on an empty server: $(cat "$work/list.err")"
stop_daemon

# --- 4. refused by access control ---
start_daemon --access closed --allow 10.0.0.1
status=0
list || status=$?
[ "$status" = 1 ] || fail "usbip list against a closed server: exit $status, expected 1"
grep -q "failed to get device list from 127.0.0.1" "$work/list.err" ||
    fail "usbip list against a closed server: $(cat "$work/list.err")"
stop_daemon

if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$work/daemon.log"; then
    fail "sanitizer report in the daemon log"
fi
failed=0
echo "PASS: usbip list -r agrees with usbip-server"
