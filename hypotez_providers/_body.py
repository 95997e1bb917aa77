"""Reading an answer's body with bounded memory, content decoding included (internal).

The body is read as it arrives, with socket reads the deadline watch can interrupt:
``read_chunked`` for a chunked body, ``read1`` otherwise. gzip and deflate are decoded here,
not by urllib3, so they are decoded whether the body is chunked or has a Content-Length, and
no decoded piece is longer than :data:`PIECE` bytes whatever the compression ratio: a limit
counted on the decoded bytes then bounds memory, and a compression bomb stops at it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import requests
import urllib3.exceptions

from .limits import LimitExceeded

#: Bytes: the most read from the socket, or decoded, at a time.
PIECE = 65536
#: Bytes of an error answer's body kept for its message.
ERROR_BODY_LIMIT = 64 * 1024
#: The codings this module decodes, as the Accept-Encoding request header.
ACCEPT_ENCODING = "gzip, deflate"


class Undecodable(ValueError):
    """The body's Content-Encoding is not gzip or deflate, or its bytes do not decode."""


def body_pieces(response: requests.Response) -> Iterator[bytes]:
    """The body, decoded, as it arrives; no piece is longer than :data:`PIECE` bytes."""
    raw = response.raw
    pieces: Iterator[bytes]
    if raw.chunked and raw.supports_chunked_reads():
        pieces = raw.read_chunked(PIECE, decode_content=False)
    else:
        pieces = _read1(raw)
    encoding = response.headers.get("content-encoding")
    if not encoding or encoding.strip().lower() == "identity":
        return pieces
    return _inflated(pieces, _Inflater(encoding))


def read_body(response: requests.Response, limit: int) -> bytes:
    """The whole decoded body; :class:`LimitExceeded` as soon as it passes ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    for piece in body_pieces(response):
        size += len(piece)
        if size > limit:
            raise LimitExceeded("the answer", limit, "max_body")
        parts.append(piece)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_error_body(response: requests.Response) -> bytes:
    """The first :data:`ERROR_BODY_LIMIT` decoded bytes of an error answer, as far as readable."""
    parts: list[bytes] = []
    size = 0
    try:
        for piece in body_pieces(response):
            parts.append(piece)
            size += len(piece)
            if size >= ERROR_BODY_LIMIT:
                break
    except (requests.RequestException, urllib3.exceptions.HTTPError, Undecodable):
        pass  # what arrived is the message; the status says the rest
    return b"".join(parts)[:ERROR_BODY_LIMIT]


def _read1(raw: urllib3.HTTPResponse) -> Iterator[bytes]:
    # read() waits for a full buffer; read1() returns whatever has arrived.
    while True:
        data = raw.read1(PIECE, decode_content=False)
        if not data:
            return
        yield data


def _inflated(pieces: Iterator[bytes], inflater: _Inflater) -> Iterator[bytes]:
    for data in pieces:
        yield from inflater.feed(data)
    rest = inflater.flush()
    if rest:
        yield rest


class _Inflater:
    """Decodes gzip (several members too) or deflate (with zlib's header or raw), piece by piece."""

    def __init__(self, encoding: str) -> None:
        kind = encoding.strip().lower()
        if kind in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif kind == "deflate":
            self._wbits = zlib.MAX_WBITS
        else:
            raise Undecodable(
                f"the answer's Content-Encoding {encoding[:40]!r} is not gzip or deflate, the "
                f"only ones asked for"
            )
        self._kind = kind
        self._decoder = zlib.decompressobj(self._wbits)
        # Bytes after the end of the compressed data are ignored (as urllib3 and browsers do),
        # up to a point.
        self._ended = False
        self._trailing = 0
        # "deflate" comes with zlib's header or without it (raw); until the first output the
        # bytes are kept, to start over as raw deflate if the header is wrong.
        self._first: list[bytes] | None = [] if kind == "deflate" else None

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most :data:`PIECE` bytes."""
        if self._ended:
            self._swallow(data)
            return
        if self._first is not None:
            self._first.append(data)
        while data:
            try:
                out = self._decoder.decompress(data, PIECE)
            except zlib.error as error:
                if self._first is None or self._wbits < 0:
                    raise Undecodable(f"the {self._kind} body does not decode: {error}") from None
                self._wbits = -zlib.MAX_WBITS
                self._decoder = zlib.decompressobj(self._wbits)
                data, self._first = b"".join(self._first), None
                continue
            if self._first is not None and (out or sum(map(len, self._first)) > 2):
                self._first = None  # zlib's header was read: no starting over
            if out:
                yield out
            data = self._decoder.unconsumed_tail
            if not data and self._decoder.eof:
                data = self._decoder.unused_data
                if not (self._wbits > 16 and data[:2] == b"\x1f\x8b"):
                    self._ended = True
                    self._swallow(data)
                    return
                self._decoder = zlib.decompressobj(self._wbits)  # the next gzip member

    def _swallow(self, data: bytes) -> None:
        self._trailing += len(data)
        if self._trailing > PIECE:
            raise Undecodable(f"more than {PIECE:,} bytes follow the {self._kind} data")

    def flush(self) -> bytes:
        """What the decoder still holds at the end of the body."""
        try:
            return self._decoder.flush()
        except zlib.error as error:
            raise Undecodable(f"the {self._kind} body does not decode: {error}") from None
