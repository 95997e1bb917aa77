"""A real ``redis-server`` on 127.0.0.1, for tests and benchmarks of the shared state.

Never a mock: the process Debian's ``redis-server`` package installs, on a free port, with no
persistence, in a directory of the caller's. :meth:`RedisServer.stop` kills it as abruptly as
a crash; :meth:`RedisServer.start` brings it back on the same port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .server import free_port


class RedisServer:
    """One redis-server process: ``url``, ``port``, and ``start()``/``stop()``."""

    def __init__(self, directory: Path, *, arguments: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.directory = directory
        self.arguments = arguments
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str | None:
        """Where ``redis-server`` is installed, or ``None``."""
        return shutil.which("redis-server")

    def start(self) -> None:
        """Start the server and wait (up to 10 s) until it answers ``PING``."""
        binary = self.binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
                *self.arguments,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not start in 10 s")

    def stop(self) -> None:
        """Kill it (SIGKILL: as abrupt as a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def cpu_seconds(self) -> float:
        """The server's CPU time so far (user + system), from ``/proc`` (Linux)."""
        if self.process is None:
            return 0.0
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_redis(directory: Path, *, arguments: tuple[str, ...] = ()) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, killed when the block ends."""
    server = RedisServer(directory, arguments=arguments)
    server.start()
    try:
        yield server
    finally:
        server.stop()
