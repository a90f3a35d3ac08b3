# CDC-ACM through the kernel's cdc-acm: /dev/ttyACM0 echoes, and line coding
# and DTR/RTS changes made with stty and modem ioctls reach the device.
. /tests/lib.sh
start_daemon --device serial
attach 1-1
wait_usb 1209 5502
wait_for 20 "[ -c /dev/ttyACM0 ]" || fail "/dev/ttyACM0 did not appear"
log "drivers: $(drivers_of "$(usb_dev_of 1209 5502)")"
vmtool echo /dev/ttyACM0 8192 || fail "echo through /dev/ttyACM0"

expect_status() {
    local status
    status=$(ctl status 1-1)
    case "$status" in *"$1"*) log "device state: $status" ;; *) fail "device state \"$status\" lacks \"$1\"" ;; esac
}
stty -F /dev/ttyACM0 9600 cs7 parenb -parodd -cstopb || fail "stty 9600 7E1"
expect_status "9600 7E1"
stty -F /dev/ttyACM0 115200 cs8 -parenb cstopb || fail "stty 115200 8N2"
expect_status "115200 8N2"
vmtool modem /dev/ttyACM0 1 0 || fail "set DTR=1 RTS=0"
expect_status "dtr=1 rts=0"
vmtool modem /dev/ttyACM0 0 1 || fail "set DTR=0 RTS=1"
expect_status "dtr=0 rts=1"
grep -q "line coding 9600 7E1" /tmp/daemon.log || fail "line coding change not in the daemon log"
grep -q "DTR=0 RTS=1" /tmp/daemon.log || fail "DTR/RTS change not in the daemon log"
log "daemon log: $(grep -c 'serial' /tmp/daemon.log) serial lines"

detach 1-1
wait_for 15 "[ ! -e /dev/ttyACM0 ]" || fail "/dev/ttyACM0 still present after detach"
stop_daemon
