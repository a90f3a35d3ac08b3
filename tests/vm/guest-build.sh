#!/usr/bin/env bash
# guest-build.sh WORKDIR: build the test guest from Debian packages only.
#  - installs qemu-system-x86, busybox-static, usbip, cpio, kmod, xz-utils if missing
#  - downloads the current linux-image-*-amd64 package once into the cache
#    (${USBIP_VM_CACHE:-~/.cache/usbip-esp32p4/vm}) and extracts its kernel as an
#    uncompressed vmlinux (booting it skips ~4 s of XZ decompression under TCG)
#  - builds WORKDIR/base.cpio: busybox, the modules of modules.list with their
#    dependencies, Debian's usbip and usbipd with their libraries, /init and the
#    guest test scripts.
# The project's own binaries are added per run by run.sh as a second cpio.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(realpath -m "${1:?usage: guest-build.sh WORKDIR}")
cache=${USBIP_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usbip-esp32p4/vm}
mkdir -p "$work" "$cache"
source "$here/../../tools/deps.sh"
ensure_packages "the VM tests" qemu-system-x86 busybox-static usbip cpio kmod xz-utils libc-bin

# ---- kernel: download once, keep in the cache ----
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'
}
pkg=$(kernel_package)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && pkg=$(kernel_package)
fi
if [ -z "$pkg" ]; then
    echo "guest-build: cannot resolve linux-image-amd64 (is this Debian with apt lists? run apt-get update)" >&2
    exit 1
fi
kroot=$cache/$pkg
if [ ! -f "$kroot/vmlinux" ]; then
    echo "guest-build: downloading $pkg into $cache"
    rm -rf "$kroot" "$cache"/"$pkg"_*.deb
    (cd "$cache" && apt-get download -qq "$pkg" 2>/dev/null)
    dpkg -x "$cache"/"$pkg"_*.deb "$kroot.tmp"
    kv=$(ls "$kroot.tmp/lib/modules")
    depmod -b "$kroot.tmp" "$kv"
    vmlinuz=$kroot.tmp/boot/vmlinuz-$kv
    offset=$(LC_ALL=C grep -m1 -obUaP '\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1)
    tail -c +$((offset + 1)) "$vmlinuz" > "$kroot.tmp/vmlinux.xz"
    xz -dc --single-stream "$kroot.tmp/vmlinux.xz" > "$kroot.tmp/vmlinux"
    rm -f "$kroot.tmp/vmlinux.xz" "$cache"/"$pkg"_*.deb
    [ "$(head -c4 "$kroot.tmp/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ]
    mv "$kroot.tmp" "$kroot"
fi
kv=$(ls "$kroot/lib/modules")
ln -sfn "$kroot/vmlinux" "$work/vmlinux"

# ---- base initramfs ----
root=$work/rootfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,var/run,mnt,opt/bin,root,tests,lib/modules/$kv}
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list-full); do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done
grep -v '^#' "$here/modules.list" | awk 'NF{print $1}' | while read -r module; do
    modprobe -d "$kroot" -S "$kv" --show-depends "$module" | awk '$1=="insmod"{print $2}'
done | sort -u | while read -r file; do
    rel=${file#$kroot/}
    mkdir -p "$root/${rel%/*}"
    cp "$file" "$root/$rel"
done
cp "$kroot/lib/modules/$kv"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kv/"
depmod -b "$root" "$kv"
grep -v '^#' "$here/modules.list" | sed '/^ *$/d' > "$root/etc/vmtest-modules"

# ELF files with the libraries ldd names, at the same paths.
copy_elf() {
    local dest=$1 file lib
    shift
    for file in "$@"; do
        cp -L "$file" "$root$dest/"
        for lib in $(ldd "$file" | awk '$2=="=>" && $3~/^\//{print $3} $1~/^\//{print $1}'); do
            mkdir -p "$root${lib%/*}"
            cp -L "$lib" "$root$lib"
        done
    done
}
copy_elf /usr/sbin /usr/sbin/usbip /usr/sbin/usbipd
[ -e /usr/share/misc/usb.ids ] && mkdir -p "$root/usr/share/misc" && cp -L /usr/share/misc/usb.ids "$root/usr/share/misc/"
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$root/etc/hosts"
install -m 755 "$here/init" "$root/init"
cp "$here"/guest/*.sh "$root/tests/"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner=0:0 --quiet) > "$work/base.cpio"
echo "guest-build: kernel $kv, base initramfs $(du -h "$work/base.cpio" | cut -f1) in $work"
