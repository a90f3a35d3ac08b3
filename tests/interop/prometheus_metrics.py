#!/usr/bin/env python3
"""Interop: the dashboard's /metrics read by the Prometheus text-format parser
of the official Python client (Debian's python3-prometheus-client).

    prometheus_metrics.py USBIP_SERVER USBIP_CLIENT

Starts usbip-server with its dashboard, moves data with `usbip-client read`,
then checks that the text parses, that every family has its type, and that
the per-device and per-client counters say what the traffic did."""
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def fail(message, log=""):
    print(f"FAIL: {message}\n{log}", file=sys.stderr)
    sys.exit(1)


def start(server, work):
    out = open(f"{work}/daemon.out", "w+")
    log = open(f"{work}/daemon.log", "w+")
    proc = subprocess.Popen([server, "--listen", "127.0.0.1", "--port", "0", "--http", "0"],
                            stdout=out, stderr=log)
    for _ in range(400):
        out.seek(0)
        text = out.read()
        usbip = re.search(r"listening on 127\.0\.0\.1 port (\d+)", text)
        web = re.search(r"Dashboard: http://127\.0\.0\.1:(\d+)/", text)
        if usbip and web:
            return proc, usbip.group(1), web.group(1), log
        if proc.poll() is not None:
            log.seek(0)
            fail("usbip-server exited at start", log.read())
        time.sleep(0.05)
    fail("usbip-server did not start")


def main():
    server, client = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as work:
        proc, usbip_port, web_port, log = start(server, work)
        try:
            # Keep a session open while reading: a client in the metrics.
            reader = subprocess.Popen([client, "--port", usbip_port, "--seconds", "3",
                                       "read", "1-4"], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
            time.sleep(1.5)
            body = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics",
                                          timeout=10).read().decode()
            out, _ = reader.communicate(timeout=30)
            if reader.returncode != 0:
                fail("usbip-client read failed", out)
            families = {f.name: f for f in text_string_to_metric_families(body)}
            for name, kind in [("usbip_up", "gauge"), ("usbip_devices", "gauge"),
                               ("usbip_clients", "gauge"),
                               ("usbip_device_bytes_in", "counter"),
                               ("usbip_device_urbs", "counter"),
                               ("usbip_client_bytes_in", "counter"),
                               ("usbip_client_errors", "counter")]:
                if name not in families or families[name].type != kind:
                    fail(f"family {name} ({kind}) missing or mistyped", body)
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for f in families.values() for s in f.samples}
            if samples.get(("usbip_devices", ())) != 4:
                fail("usbip_devices is not 4", body)
            moved = samples.get(("usbip_device_bytes_in_total", (("busid", "1-4"),)), 0)
            if moved <= 0:
                fail("no bytes counted for 1-4 while it was being read", body)
            clients = [v for (n, labels), v in samples.items()
                       if n == "usbip_client_bytes_in_total"
                       and dict(labels).get("address") == "127.0.0.1"]
            if not clients or clients[0] <= 0:
                fail("the reading client is not in the metrics", body)
            print(f"ok: {len(families)} families parsed; 1-4 sent {int(moved)} bytes")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
