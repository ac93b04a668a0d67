"""A small program profiled by the real Pyroscope Python SDK (pyroscope-io), pushing to the
server under test. It burns CPU in a known function, with a static and a dynamic tag."""
import os
import sys
import time

import pyroscope

pyroscope.configure(
    application_name=os.environ["APP_NAME"],
    server_address=os.environ["SERVER"],
    tenant_id=os.environ.get("TENANT", ""),
    tags={"region": "test-region"},
    sample_rate=100,
    upload_interval=1,
)


def burn_cpu_in_known_function(seconds):
    end = time.time() + seconds
    total = 0
    while time.time() < end:
        for i in range(10000):
            total += i * i
    return total


with pyroscope.tag_wrapper({"phase": "busy"}):
    burn_cpu_in_known_function(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0)

pyroscope.shutdown()
