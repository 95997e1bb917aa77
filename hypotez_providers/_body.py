"""Reading an answer's body with bounded memory, content decoding included (internal).

The body is read as it arrives, in blocks of up to :data:`PIECE` bytes, with socket reads the
deadline watch can interrupt: a chunked body's framing is taken off here, a block at a time (a
streamed answer sends each event as its own small chunk, and urllib3's ``read_chunked`` costs
a call per chunk), and any other body is read with ``read1``. gzip and deflate are decoded here,
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
#: Bytes: the longest chunk-size line accepted (a hexadecimal size and its extensions).
_MAX_SIZE_LINE = 4096
#: Bytes of an error answer's body kept for its message.
ERROR_BODY_LIMIT = 64 * 1024
#: The codings this module decodes, as the Accept-Encoding request header.
ACCEPT_ENCODING = "gzip, deflate"


class Undecodable(ValueError):
    """The body's Content-Encoding is not gzip or deflate, or its bytes do not decode."""


def body_pieces(response: requests.Response) -> Iterator[bytes]:
    """The body, decoded, as it arrives; no piece is longer than :data:`PIECE` bytes."""
    raw = response.raw
    chunked = raw.chunked and raw.supports_chunked_reads()
    pieces = _dechunked(raw) if chunked else _read1(raw)
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


def _dechunked(raw: urllib3.HTTPResponse) -> Iterator[bytes]:
    # urllib3 2.x's own error mapping and connection release, as read_chunked uses them: a
    # socket error becomes a ProtocolError or ReadTimeoutError, and a body read to its end
    # gives the connection back to the pool.
    response = raw._original_response
    fp = getattr(raw._fp, "fp", None)
    if fp is None or response is None:
        return
    framing = ChunkedFraming()
    with raw._error_catcher():
        while not framing.done:
            data = fp.read1(PIECE)
            if not data:
                if framing.ended:
                    break  # some servers stop after the last chunk without its blank line
                raise urllib3.exceptions.ProtocolError("Response ended prematurely")
            payload = framing.feed(data)
            if payload:
                yield payload
        response.close()


def _inflated(pieces: Iterator[bytes], inflater: _Inflater) -> Iterator[bytes]:
    for data in pieces:
        yield from inflater.feed(data)
    rest = inflater.flush()
    if rest:
        yield rest


class ChunkedFraming:
    """Takes HTTP/1.1 chunked framing off a body given in blocks of any size (pure logic).

    As lenient as urllib3: chunk extensions and trailers are ignored, the line end after a
    chunk's data is not checked. A size line that is not hexadecimal, or longer than
    :data:`_MAX_SIZE_LINE` bytes, raises urllib3's ``ProtocolError``.
    """

    __slots__ = ("_left", "_line", "done", "ended")

    def __init__(self) -> None:
        # Bytes of the current chunk still to come, its closing CRLF included.
        self._left = 0
        # The unfinished size or trailer line at the end of the last block.
        self._line = b""
        #: The last (zero-size) chunk has come.
        self.ended = False
        #: The blank line after the trailers has come: the body is over.
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """The payload bytes in ``data``, the next block of the body."""
        if self._line:
            data = self._line + data
            self._line = b""
        out: list[bytes] = []
        append = out.append
        find = data.find
        at, size, left = 0, len(data), self._left
        while at < size:
            if left:
                take = min(left, size - at)
                if left > 2:
                    end = at + min(take, left - 2)
                    if end > at:
                        append(data[at:end])
                left -= take
                at += take
                continue
            if self.ended:
                self._trailers(data[at:])
                break
            newline = find(b"\n", at)
            if newline < 0:
                self._line = data[at:]
                if len(self._line) > _MAX_SIZE_LINE:
                    raise self._invalid(self._line)
                break
            line = data[at:newline]
            try:
                length = int(line, 16)  # int() takes the CR off; an extension is a ValueError
            except ValueError:
                length = self._size(line)
            if length < 0 or newline - at > _MAX_SIZE_LINE:
                raise self._invalid(line)
            at = newline + 1
            if not length:
                self.ended = True
                continue
            end = at + length
            if end + 2 <= size:
                # The common case: the whole chunk, and its CRLF, in this block.
                append(data[at:end])
                at = end + 2
            else:
                left = length + 2
        self._left = left
        return out[0] if len(out) == 1 else b"".join(out)

    def _trailers(self, data: bytes) -> None:
        """After the last chunk: trailer lines, then a blank line ending the body."""
        for line in data.split(b"\n")[:-1]:
            if not line.strip():
                self.done = True
                return
        self._line = data[data.rfind(b"\n") + 1 :]
        if len(self._line) > _MAX_SIZE_LINE:
            raise self._invalid(self._line)

    def _size(self, line: bytes) -> int:
        """The size on a chunk's first line that has extensions (or is not a size at all)."""
        try:
            return int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise self._invalid(line) from None

    @staticmethod
    def _invalid(line: bytes) -> urllib3.exceptions.ProtocolError:
        return urllib3.exceptions.ProtocolError(
            f"Connection broken: invalid chunk length {line[:40]!r}"
        )


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
