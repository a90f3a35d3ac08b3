#!/usr/bin/env bash
# run.sh WORKDIR TEST [BINARY...]: boot the guest built by guest-build.sh with
# the given project binaries added under /opt/bin (with their libraries), run
# guest/TEST.sh inside, and exit 0 only if it printed VMTEST-RESULT: PASS.
# The console log is kept in WORKDIR/TEST.log; on failure it is printed,
# including the guest's kernel log.
set -uo pipefail
work=$(realpath "${1:?usage: run.sh WORKDIR TEST [BINARY...]}")
test=${2:?usage: run.sh WORKDIR TEST [BINARY...]}
shift 2
log=$work/$test.log
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT

# The project's binaries, and the guest test scripts as they are now.
mkdir -p "$overlay/root/opt/bin" "$overlay/root/tests"
for bin in "$@"; do
    cp -L "$bin" "$overlay/root/opt/bin/"
    for lib in $(ldd "$bin" 2>/dev/null | awk '$2=="=>" && $3~/^\//{print $3} $1~/^\//{print $1}'); do
        mkdir -p "$overlay/root${lib%/*}"
        cp -L "$lib" "$overlay/root$lib"
    done
done
cp "$(dirname "$0")"/guest/*.sh "$overlay/root/tests/"
(cd "$overlay/root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) > "$overlay/extra.cpio"
cat "$work/base.cpio" "$overlay/extra.cpio" > "$overlay/initrd.cpio"

start=$(date +%s)
timeout "${VM_TIMEOUT:-420}" qemu-system-x86_64 \
    -machine pc -accel tcg,thread=multi -cpu max -smp 2 -m 1536 \
    -nodefaults -no-user-config -display none -serial stdio -nic none -no-reboot \
    -kernel "$work/vmlinux" -initrd "$overlay/initrd.cpio" \
    -append "console=ttyS0 quiet panic=-1 vmtest=$test" </dev/null > "$log" 2>&1
qemu_rc=$?
elapsed=$(( $(date +%s) - start ))
if grep -q '^VMTEST-RESULT: PASS' "$log"; then
    grep -E '^(VMTEST-|  )' "$log" | grep -v '^VMTEST-STAGE' || true
    echo "vm test $test: PASS in ${elapsed} s"
    exit 0
fi
echo "vm test $test: FAILED after ${elapsed} s (qemu exit $qemu_rc); guest console follows"
cat "$log"
exit 1
