"""The Python twin of main.go: the work of a small web service (JSON, hashing, sorting,
compression, regular expressions, string building), profiled by the real Pyroscope Python SDK
(pyroscope-io) pushing to SERVER as APP_NAME. Run by scripts/record_loadgen_profiles.sh."""
import hashlib
import json
import os
import re
import sys
import time
import zlib

import pyroscope

pyroscope.configure(
    application_name=os.environ["APP_NAME"],
    server_address=os.environ["SERVER"],
    sample_rate=100,
    upload_interval=1,
)

SKU = re.compile(r"sku-0*(\d+)7\b")
retained = []


def make_orders(n):
    return [
        {
            "id": i,
            "customer": f"customer-{i % 1000}",
            "items": [
                {"sku": f"sku-{(i * 31 + j) % 20000:05d}", "quantity": 1 + j, "price": i % 97 + 0.99}
                for j in range(1 + i % 7)
            ],
            "tags": {"region": ("eu", "us", "ap")[i % 3], "channel": "web"},
        }
        for i in range(n)
    ]


def encode_orders(orders):
    return json.dumps(orders).encode()


def decode_orders(body):
    return json.loads(body)


def checksum(body):
    return hashlib.sha256(body).digest()


def compress(body):
    return zlib.compress(body, 6)


def match_skus(orders):
    return sum(1 for o in orders for it in o["items"] if SKU.search(it["sku"]))


def rank_customers(orders):
    totals = {}
    for o in orders:
        for it in o["items"]:
            totals[o["customer"]] = totals.get(o["customer"], 0.0) + it["quantity"] * it["price"]
    return sorted(totals, key=totals.get, reverse=True)


def render_report(names):
    return "".join(f"{i + 1}. {name.upper()}\n" for i, name in enumerate(names))


def handle_request(n):
    orders = make_orders(n)
    body = encode_orders(orders)
    decoded = decode_orders(body)
    digest = checksum(body)
    packed = compress(body)
    report = render_report(rank_customers(decoded))
    if n % 3 == 0:
        retained.append(packed)
        del retained[:-64]
    return match_skus(decoded) + digest[0] + len(report)


def main(seconds):
    end = time.time() + seconds
    total, i = 0, 0
    while time.time() < end:
        with pyroscope.tag_wrapper({"endpoint": ("/orders", "/report")[i % 2]}):
            total += handle_request(200 + i % 400)
        i += 1
    return total


main(float(sys.argv[1]) if len(sys.argv) > 1 else 8.0)
pyroscope.shutdown()
