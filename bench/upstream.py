"""Fake upstreams for the benchmark, in their own process so they do not share our GIL.

Prints one line of JSON with their base URLs, then serves until killed.
"""

from __future__ import annotations

import json
import socketserver
import time

from hypotez_providers.testing import FakeOpenAI, Fault

MODEL = "bench-model"


def main() -> None:
    """Start the upstreams and print where they are."""
    # A real server's accept queue: Python's default of 5 drops some of a burst of 64 connects.
    socketserver.TCPServer.request_queue_size = 128
    fast = FakeOpenAI(models=None, reply="The answer is forty-two.")
    stream = FakeOpenAI(models=None, chunk_count=10_000)
    short = FakeOpenAI(models=None, chunk_count=1_000)  # for many streams at once
    failing = FakeOpenAI(models=None)
    failing.fail_every_request = Fault(status=503)
    for fake in (fast, stream, short, failing):
        fake.start()
    urls = {"fast": fast.url, "stream": stream.url, "short": short.url, "failing": failing.url}
    print(json.dumps(urls), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
