# Several devices at once; a client killed mid-transfer; detach and attach
# again; a device unplugged in the daemon while attached.
. /tests/lib.sh
start_daemon   # keyboard 1-1, serial 1-2, storage 1-3, zero 1-4
for busid in 1-1 1-2 1-3 1-4; do attach $busid; done
wait_usb 1209 5501; wait_usb 1209 5502; wait_usb 1209 5503; wait_usb 0525 a4a0
wait_for 20 "[ -c /dev/ttyACM0 ] && disk_of 1209 5503 >/dev/null" || fail "tty or disk missing"
disk=/dev/$(disk_of 1209 5503)
node=$(usbfs_node_of 0525 a4a0)
log "four devices attached: ttyACM0, $disk, $node, keyboard ($(drivers_of "$(usb_dev_of 1209 5501)"))"

all_work() {
    vmtool echo /dev/ttyACM0 2048 >/dev/null || fail "serial echo ($1)"
    dd if="$disk" of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null || fail "disk read ($1)"
    timeout 120 vmtool zero "$node" >/dev/null || fail "Gadget Zero ($1)"
    log "serial, disk and Gadget Zero all work ($1)"
}
all_work "together"

# A client killed with URBs in flight: the kernel unlinks them.
vmtool flood "$node" &
flood=$!
sleep 2
kill -9 $flood
wait $flood 2>/dev/null
log "killed a client with 16 bulk URBs in flight"
all_work "after the kill"

# Detach returns the device to the list; a second attach works.
detach 1-4
wait_for 15 "! usb_dev_of 0525 a4a0 >/dev/null" || fail "zero still present after detach"
wait_for 10 "usbip list -r 127.0.0.1 2>/dev/null | grep -q '1-4:'" || fail "1-4 not listed after detach"
attach 1-4
wait_usb 0525 a4a0
node=$(usbfs_node_of 0525 a4a0)
wait_for 10 "[ -c $node ]" || fail "$node did not appear again"
all_work "after detach and a second attach"

# Unplugged in the daemon while attached: gone from the guest, no hang.
ctl unplug 1-2 >/dev/null || fail "ctl unplug 1-2"
wait_for 15 "[ ! -e /dev/ttyACM0 ] && ! usb_dev_of 1209 5502 >/dev/null" ||
    fail "the unplugged serial port is still in the guest"
wait_for 10 "[ -z \"\$(port_of 1-2)\" ]" || fail "usbip port still lists 1-2"
usbip list -r 127.0.0.1 2>/dev/null | grep -q '1-2:' && fail "1-2 still listed after unplug"
log "unplugged 1-2: gone from the guest and from the list"
dd if="$disk" of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null || fail "disk after unplug"

for busid in 1-1 1-3 1-4; do detach $busid; done
stop_daemon
