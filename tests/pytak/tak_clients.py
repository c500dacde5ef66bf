#!/usr/bin/env python3
"""Two real TAK clients (pytak, PyPI) against a running `outpost-server serve --cot-listen`.

1. The sender connects to the CoT port with pytak and sends one position event (type
   a-f-G-U-C, uid DEVICE, point LAT/LON, callsign) as pytak sends every event: the XML
   declaration, a newline, then the event. It also sends pytak's hello (t-x-d-d).
2. The receiver is a second pytak client on the same port; it must receive the bound unit as
   Cursor-on-Target: an event with uid UNIT_UID and the point the sender reported.

Run by the Rust integration test `outpost-server/tests/it/pytak.rs` (which binds DEVICE to the
unit first and checks the unit moved on a console's state), or by hand:

    target/pytak-venv/bin/python tests/pytak/tak_clients.py --cot 127.0.0.1:8087 \
        --device pytak-1 --unit-uid outpost-unit-u-01 --lat 39.8201 --lon 109.9801

Exit 0 when the receiver saw the unit at the reported point within --timeout seconds, 1
otherwise (with what it did receive), 2 on a usage error. pytak's CLITool.run() never
returns by itself, so everything runs under one timeout.
"""

import argparse
import asyncio
import os
import re
import sys
import xml.etree.ElementTree as ET
from configparser import ConfigParser

import pytak


class OnePosition(pytak.QueueWorker):
    """Puts one position event on the transmit queue, then idles."""

    def __init__(self, queue, config, event: bytes):
        super().__init__(queue, config)
        self.event = event
        self.sent = False

    async def handle_data(self, data):
        await self.put_queue(data)

    async def run(self, _=-1):
        await self.handle_data(self.event)
        self.sent = True
        while True:
            await asyncio.sleep(3600)


class Watch(pytak.RXWorker):
    """Reads what the server sends and notes whether the unit arrived at the point."""

    def __init__(self, queue, config, reader, unit_uid, lat, lon, found: asyncio.Event, seen):
        super().__init__(queue, config, reader)
        self.unit_uid = unit_uid
        self.lat = lat
        self.lon = lon
        self.found = found
        self.seen = seen

    async def handle_data(self, data):
        pass

    async def run_once(self):
        data = await self.readcot()
        if not data:
            await asyncio.sleep(0.05)
            return
        text = data.decode("utf-8", "replace").strip()
        self.seen.append(text)
        m = re.search(r"<event\b.*</event>", text, re.S)
        if not m:
            return
        try:
            ev = ET.fromstring(m.group(0))
        except ET.ParseError:
            return
        if ev.get("uid") != self.unit_uid:
            return
        point = ev.find("point")
        if point is None:
            return
        lat, lon = float(point.get("lat")), float(point.get("lon"))
        if abs(lat - self.lat) < 1e-7 and abs(lon - self.lon) < 1e-7:
            self.found.set()


def config(url: str, name: str):
    cp = ConfigParser()
    cp["c"] = {
        "COT_URL": url,
        "COT_HOST_ID": name,
        "TAK_PROTO": "0",
    }
    return cp["c"]


async def main(args) -> int:
    url = f"tcp://{args.cot}"
    found = asyncio.Event()
    seen = []

    # The receiver first: it gets the picture on connect, then the change.
    rx_conf = config(url, "outpost-test-receiver")
    rx_conf["PYTAK_NO_HELLO"] = "1"
    receiver = pytak.CLITool(rx_conf)
    reader, writer = await pytak.protocol_factory(rx_conf)
    receiver.add_task(
        Watch(receiver.rx_queue, rx_conf, reader, args.unit_uid, args.lat, args.lon, found, seen)
    )
    receiver.add_task(pytak.TXWorker(receiver.tx_queue, rx_conf, writer))

    tx_conf = config(url, "outpost-test-sender")
    sender = pytak.CLITool(tx_conf)
    await sender.setup()
    event = pytak.gen_cot(
        lat=args.lat,
        lon=args.lon,
        ce=5,
        hae=1200,
        le=10,
        uid=args.device,
        stale=120,
        cot_type="a-f-G-U-C",
        callsign=args.callsign,
    )
    sender.add_task(OnePosition(sender.tx_queue, tx_conf, event))

    tasks = [asyncio.ensure_future(receiver.run()), asyncio.ensure_future(sender.run())]
    try:
        await asyncio.wait_for(found.wait(), timeout=args.timeout)
        print(f"received {args.unit_uid} at {args.lat},{args.lon} as CoT")
        return 0
    except asyncio.TimeoutError:
        print(f"timed out after {args.timeout} s; received {len(seen)} events:", file=sys.stderr)
        for s in seen[-10:]:
            print(s[:400], file=sys.stderr)
        return 1
    finally:
        for t in tasks:
            t.cancel()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cot", required=True, help="HOST:PORT of the CoT TCP listener")
    p.add_argument("--device", required=True, help="uid of the sending device")
    p.add_argument("--unit-uid", required=True, help="uid the unit must arrive under")
    p.add_argument("--lat", type=float, required=True)
    p.add_argument("--lon", type=float, required=True)
    p.add_argument("--callsign", default="pytak")
    p.add_argument("--timeout", type=float, default=20.0)
    a = p.parse_args()
    rc = asyncio.run(main(a))
    sys.stdout.flush()
    sys.stderr.flush()
    # pytak's workers may hold the loop; leave at once.
    os._exit(rc)
