# Gadget Zero through usbfs: vendor control requests, bulk, interrupt and
# isochronous (alt 1) in both directions with checked data, and loopback.
. /tests/lib.sh
start_daemon --device zero
attach 1-1
wait_usb 0525 a4a0
node=$(usbfs_node_of 0525 a4a0)
wait_for 10 "[ -c $node ]" || fail "$node did not appear"
timeout 120 vmtool zero "$node" || fail "Gadget Zero checks"
detach 1-1
stop_daemon
