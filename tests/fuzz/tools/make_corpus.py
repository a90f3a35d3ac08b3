#!/usr/bin/env python3
"""Write the seed corpora under tests/fuzz/corpus/ (run: python3 tests/fuzz/tools/make_corpus.py) (checked in; rerun after
changing the protocol or the fake device). Standard library only.

The fuzz_session seeds talk to the fake device of tests/unit/fake_backend.c:
busid "3-1.4", devid 0x00030001, endpoints 0 control, 1 bulk IN, 2 bulk OUT,
3 interrupt IN, 4 iso IN, 5 iso OUT."""
import os
import struct

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVID = 0x00030001


def op(version, code, status=0):
    return struct.pack(">HHI", version, code, status)


def import_req(busid="3-1.4", version=0x0111):
    return op(version, 0x8003) + busid.encode().ljust(32, b"\0")


def submit(seq, direction, ep, length, flags=0, npk=0, setup=b"\0" * 8, devid=DEVID,
           start_frame=0, interval=0):
    return struct.pack(">IIIIIIiiii", 1, seq, devid, direction, ep, flags, length,
                       start_frame, npk, interval) + setup


def unlink(seq, victim, devid=DEVID):
    return struct.pack(">IIIIII", 2, seq, devid, 0, 0, victim) + b"\0" * 24


def iso(*packets):
    return b"".join(struct.pack(">IIIi", off, ln, 0, 0) for off, ln in packets)


def setup(request_type, request, value=0, index=0, length=0):
    return struct.pack("<BBHHH", request_type, request, value, index, length)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def session_seeds():
    t = "fuzz_session"
    write(t, "devlist", op(0x0111, 0x8005))
    write(t, "devlist_v0100", op(0x0100, 0x8005))
    write(t, "bad_version", op(0x0200, 0x8005))
    write(t, "import_unknown_busid", import_req("9-9"))
    write(t, "import_only", import_req())
    urbs = (import_req()
            + submit(1, 1, 0, 18, setup=setup(0x80, 6, 0x0100, 0, 18))
            + submit(2, 0, 0, 0, setup=setup(0x00, 9, 1))
            + submit(3, 1, 1, 512, flags=0x201)
            + submit(4, 0, 2, 16, flags=0x40) + bytes(range(16))
            + submit(5, 1, 3, 8, npk=-1, start_frame=-1, interval=4)
            + unlink(6, 5)
            + submit(7, 0, 2, 0)
            + submit(8, 1, 9, 8)
            + unlink(9, 1234))
    write(t, "import_urbs", urbs)
    iso_seed = (import_req()
                + submit(1, 0, 0, 0, setup=setup(0x01, 11, 1, 1))
                + submit(2, 1, 4, 576, flags=2, npk=3) + iso((0, 192), (192, 192), (384, 192))
                + submit(3, 0, 5, 200, flags=2, npk=2) + b"\x11" * 200 + iso((0, 100), (100, 100))
                + submit(4, 0, 0, 0, setup=setup(0x01, 11, 0, 1))
                + submit(5, 1, 4, 64, npk=1) + iso((0, 64)))
    write(t, "import_iso", iso_seed)
    special = (import_req()
               + submit(1, 0, 0, 0, setup=setup(0x02, 1, 0, 0x81))
               + submit(2, 0, 0, 0, setup=setup(0x23, 3, 4, 1))
               + submit(3, 0, 0, 0, setup=setup(0x00, 5, 7))
               + submit(4, 0, 0, 4, setup=setup(0x21, 9, 0x200, 0, 4)) + b"\1\2\3\4"
               + unlink(5, 1) + unlink(6, 2))
    write(t, "import_special_requests", special)
    many = import_req()
    for i in range(24):
        many += submit(100 + 2 * i, 1, 1, 64)
        many += submit(101 + 2 * i, 0, 2, 32) + bytes([i]) * 32
        if i % 3 == 0:
            many += unlink(1000 + i, 100 + 2 * i)
    write(t, "import_many_urbs", many)


def proto_seeds():
    t = "fuzz_proto"
    write(t, "op_devlist", op(0x0111, 0x8005))
    write(t, "op_import", import_req("1-1.3"))
    rec = (b"/sys/devices/platform/usbip-esp32p4/usb1/1-1".ljust(256, b"\0")
           + b"1-1".ljust(32, b"\0")
           + struct.pack(">IIIHHHBBBBBB", 1, 1, 3, 0x1234, 0x5678, 0x0102, 0xEF, 2, 1, 1, 1, 2))
    write(t, "rep_devlist", op(0x0111, 0x0005) + struct.pack(">I", 1) + rec
          + b"\x03\x01\x02\x00\x08\x06\x50\x00")
    write(t, "cmd_submit_iso", submit(7, 1, 4, 576, flags=2, npk=3)
          + iso((0, 192), (192, 192), (384, 192)) + struct.pack(">I", 576))
    write(t, "cmd_submit_control", submit(1, 1, 0, 18, setup=setup(0x80, 6, 0x0100, 0, 18)))
    write(t, "ret_submit", struct.pack(">IIIIIiiiii", 3, 7, 0, 0, 0, -32, 18, 0, 0, 0) + b"\0" * 8)
    write(t, "cmd_unlink", unlink(8, 7))
    write(t, "ret_unlink", struct.pack(">IIIIIi", 4, 8, 0, 0, 0, -104) + b"\0" * 24)
    write(t, "busid_deep", bytes([255, 7, 255, 255, 255, 255, 255, 255, 255]))


if __name__ == "__main__":
    session_seeds()
    proto_seeds()
