"""Fake upstreams for the benchmark, in their own process so they do not share our GIL.

Prints one line of JSON with their base URLs, then serves until killed.
"""

from __future__ import annotations

import json
import time

from hypotez_providers.testing import FakeOpenAI, Fault

MODEL = "bench-model"


def main() -> None:
    """Start the upstreams and print where they are."""
    fast = FakeOpenAI(models=None, reply="The answer is forty-two.")
    stream = FakeOpenAI(models=None, chunk_count=10_000)
    failing = FakeOpenAI(models=None)
    failing.fail_every_request = Fault(status=503)
    for fake in (fast, stream, failing):
        fake.start()
    print(json.dumps({"fast": fast.url, "stream": stream.url, "failing": failing.url}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
