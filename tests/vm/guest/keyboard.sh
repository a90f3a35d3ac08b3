# HID keyboard through usbhid: the input device appears and the text the
# virtual keyboard types arrives as key events.
. /tests/lib.sh
text="usbip keys: Hello, World 42!"
start_daemon --device "keyboard:delay=5000,text=$text"
attach 1-1
wait_usb 1209 5501
log "drivers: $(drivers_of "$(usb_dev_of 1209 5501)")"
got=$(vmtool keys "Virtual Keyboard" 20) || fail "no input device for the keyboard"
[ "$got" = "$text" ] || fail "typed \"$got\", expected \"$text\""
log "key events spelled \"$got\""
detach 1-1
stop_daemon
