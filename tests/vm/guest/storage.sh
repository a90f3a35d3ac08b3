# Mass storage through the kernel's usb-storage: a 32 MiB random pattern
# written and read back with O_DIRECT, then a FAT filesystem made, mounted,
# filled, remounted and checked.
. /tests/lib.sh
start_daemon --device storage:size=48M
attach 1-1
wait_usb 1209 5503
wait_for 20 "disk_of 1209 5503 >/dev/null" || fail "no block device for the USB disk"
disk=/dev/$(disk_of 1209 5503)
dev=$(usb_dev_of 1209 5503)
log "drivers: $(drivers_of "$dev"); disk $disk, $(cat /sys/block/${disk#/dev/}/size) sectors"
case "$(drivers_of "$dev")" in *usb-storage*) ;; *) fail "usb-storage did not bind" ;; esac

dd if=/dev/urandom of=/tmp/pattern bs=1M count=32 2>/dev/null
want=$(md5sum < /tmp/pattern | cut -d' ' -f1)
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/tmp/pattern of="$disk" bs=1M oflag=direct conv=fsync 2>/dev/null || fail "O_DIRECT write failed"
t1=$(cut -d' ' -f1 /proc/uptime)
dd if="$disk" of=/tmp/readback bs=1M count=32 iflag=direct 2>/dev/null || fail "O_DIRECT read failed"
t2=$(cut -d' ' -f1 /proc/uptime)
got=$(md5sum < /tmp/readback | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "read back $got, wrote $want"
rm -f /tmp/readback
log "32 MiB O_DIRECT: write $(awk "BEGIN{print $t1-$t0}") s, read $(awk "BEGIN{print $t2-$t1}") s, md5 $got equal"

mkdosfs -n USBIPTEST "$disk" >/dev/null || fail "mkdosfs failed"
mkdir -p /mnt/usb
mount -t vfat "$disk" /mnt/usb || fail "mount failed"
cp /tmp/pattern /mnt/usb/pattern.bin
mkdir /mnt/usb/dir
cp /bin/busybox /mnt/usb/dir/busybox
echo "hello through usbip" > /mnt/usb/hello.txt
umount /mnt/usb || fail "umount failed"
echo 3 > /proc/sys/vm/drop_caches
mount -t vfat -o ro "$disk" /mnt/usb || fail "second mount failed"
[ "$(md5sum < /mnt/usb/pattern.bin | cut -d' ' -f1)" = "$want" ] || fail "pattern.bin differs"
cmp /mnt/usb/dir/busybox /bin/busybox || fail "dir/busybox differs"
[ "$(cat /mnt/usb/hello.txt)" = "hello through usbip" ] || fail "hello.txt differs"
cp /mnt/usb/dir/busybox /tmp/copied && cmp /tmp/copied /bin/busybox || fail "copy out differs"
umount /mnt/usb || fail "final umount failed"
log "vfat: made, mounted, 3 files written, remounted read-only, all equal"

detach 1-1
wait_for 15 "! usb_dev_of 1209 5503 >/dev/null" || fail "disk still present after detach"
stop_daemon
