# lib.sh: helpers for the guest tests (sourced). The daemon under test is
# /opt/bin/usbip-server; the client is the kernel's vhci-hcd driven by
# Debian's usbip tool; vhci-hcd is the only USB host controller here.
CTL=/run/usbip-server.ctl
DAEMON_PID=

log() { echo "  [$(cut -d' ' -f1 /proc/uptime)] $*"; }

fail() {
    echo "VMTEST-FAIL: $*"
    echo "---- usbip-server log ----"
    cat /tmp/daemon.log 2>/dev/null
    echo "---- usbip port ----"
    usbip port 2>&1
    exit 1
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds; 1 on timeout.
wait_for() {
    local tenths=$(( $1 * 10 ))
    shift
    while ! eval "$@"; do
        tenths=$((tenths - 1))
        [ $tenths -gt 0 ] || return 1
        usleep 100000
    done
}

start_daemon() {
    usbip-server --listen 127.0.0.1 --control "$CTL" "$@" >/tmp/daemon.out 2>/tmp/daemon.log &
    DAEMON_PID=$!
    wait_for 20 "[ -S $CTL ] && usbip list -r 127.0.0.1 >/dev/null 2>&1" ||
        fail "usbip-server did not start"
    log "usbip-server running: $(ctl list | tail -n +2 | tr '\n' ';')"
}

# SIGTERM, then exit status 0 and no sanitizer report.
stop_daemon() {
    kill -TERM "$DAEMON_PID"
    wait "$DAEMON_PID"
    local rc=$?
    [ $rc -eq 0 ] || fail "usbip-server exited with status $rc"
    if grep -q -e "ERROR: AddressSanitizer" -e "runtime error:" -e "LeakSanitizer" /tmp/daemon.log; then
        fail "sanitizer report in the usbip-server log"
    fi
    log "usbip-server stopped cleanly"
}

ctl() { timeout 15 usbip-server ctl --control "$CTL" "$@"; }

# The usbip tool reads vhci's sysfs status before attaching; while the
# kernel is still enumerating the previous import that read can fail with
# "open vhci_driver" (a local, transient error: the server is not asked).
# Only that error is retried; anything the server answers fails at once.
attach() {
    local try out
    for try in 1 2 3; do
        if out=$(timeout 60 usbip attach -r 127.0.0.1 -b "$1" 2>&1); then
            log "attached $1"
            return 0
        fi
        echo "$out" >&2
        case "$out" in
            *"open vhci_driver"*) log "usbip could not read vhci state (try $try), again in 1 s"; sleep 1 ;;
            *) break ;;
        esac
    done
    fail "usbip attach -b $1 failed"
}

# The vhci port number a remote bus id is attached at (for usbip detach -p).
port_of() {
    usbip port 2>/dev/null | awk -v busid="$1" '
        /^Port /{port = $2; sub(":", "", port)}
        /usbip:\/\//{n = split($0, parts, "/"); if (parts[n] == busid) {print port + 0; exit}}'
}

detach() {
    local port
    port=$(port_of "$1")
    [ -n "$port" ] || fail "bus id $1 is not attached"
    timeout 30 usbip detach -p "$port" >/dev/null || fail "usbip detach -p $port ($1) failed"
    log "detached $1 (port $port)"
}

# sysfs name ("1-1") of the USB device with this VID and PID.
usb_dev_of() {
    local d
    for d in /sys/bus/usb/devices/*; do
        [ -f "$d/idVendor" ] || continue
        if [ "$(cat "$d/idVendor")" = "$1" ] && [ "$(cat "$d/idProduct")" = "$2" ]; then
            basename "$d"
            return 0
        fi
    done
    return 1
}

wait_usb() {
    wait_for 20 "usb_dev_of $1 $2 >/dev/null" || fail "USB device $1:$2 did not appear"
}

# Drivers bound to the device's interfaces, e.g. "cdc_acm".
drivers_of() {
    local i
    for i in /sys/bus/usb/devices/"$1":*; do
        [ -e "$i/driver" ] && basename "$(readlink "$i/driver")"
    done | sort -u | tr '\n' ' '
}

# /dev/bus/usb/BBB/DDD of the device with this VID and PID.
usbfs_node_of() {
    local d
    d=/sys/bus/usb/devices/$(usb_dev_of "$1" "$2") || return 1
    printf '/dev/bus/usb/%03d/%03d\n' "$(cat "$d/busnum")" "$(cat "$d/devnum")"
}

# Block device name ("sda") of the USB disk with this VID and PID.
disk_of() {
    local dev b
    dev=$(usb_dev_of "$1" "$2") || return 1
    for b in /sys/bus/usb/devices/"$dev":*/host*/target*/*/block/*; do
        [ -e "$b" ] && basename "$b" && return 0
    done
    return 1
}
