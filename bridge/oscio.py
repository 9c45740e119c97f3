r"""OSC 1.0 codec and UDP sockets: pure encode/decode functions plus two small socket helpers.

The codec is our own (not python-osc's builder) for two reasons: the frame thread encodes
thousands of messages a second, so addresses and type tags are pre-encoded once
(:class:`MessageTemplate`) and only the numbers are packed per frame; and the listener must
reject hostile input with a precise :class:`~bridge.errors.OscParseError` instead of dropping
it silently. Decoding flattens bundles (bounded depth and message count) and never trusts a
length field.

Wire format reminders (OSC 1.0): big-endian; strings are UTF-8, NUL-terminated and padded to a
multiple of 4 bytes; a bundle is ``#bundle\0`` + 64-bit NTP timetag + (int32 size, element)*.
"""

from __future__ import annotations

import errno
import math
import socket
import struct
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .errors import OscBuildError, OscParseError, PortInUseError

__all__ = [
    "IMMEDIATELY",
    "MAX_DATAGRAM",
    "OscMessage",
    "MessageTemplate",
    "osc_string",
    "encode_message",
    "encode_bundle",
    "pack_datagrams",
    "decode_packet",
    "ntp_from_unix",
    "unix_from_ntp",
    "parse_hostport",
    "bind_udp",
    "UdpOut",
]

IMMEDIATELY = 1
"""The OSC timetag meaning "apply now" (NTP seconds 0, fraction 1)."""

MAX_DATAGRAM = 65507
"""Largest UDP payload over IPv4, in bytes."""

_BUNDLE_TAG = b"#bundle\x00"
_NTP_UNIX_OFFSET_S = 2208988800  # seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch)

_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_NUMERIC_FMT = {"i": "i", "f": "f", "d": "d", "h": "q"}
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True, slots=True)
class OscMessage:
    """One decoded OSC message.

    Attributes
    ----------
    address : str
        Address pattern, starts with ``/``.
    types : str
        Type tags without the leading comma (``"fff"``).
    args : tuple
        Python values: int (``i h c r``), float (``f d``), str (``s S``), bytes (``b``),
        bool (``T F``), None (``N I``), int timetag (``t``), tuple of 4 ints (``m``).
    """

    address: str
    types: str
    args: tuple[Any, ...]


# ---------------------------------------------------------------------------------------- encode
def osc_string(text: str) -> bytes:
    """Encode ``text`` as an OSC string: UTF-8, NUL-terminated, padded to a multiple of 4 bytes."""
    raw = text.encode("utf-8")
    if b"\x00" in raw:
        raise OscBuildError(f"OSC strings cannot contain NUL characters: {text!r}")
    return raw + b"\x00" * (4 - len(raw) % 4)


def _infer_tag(value: Any) -> str:
    if value is True:
        return "T"
    if value is False:
        return "F"
    if value is None:
        return "N"
    if isinstance(value, int):
        return "i" if _INT32_MIN <= value <= _INT32_MAX else "h"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    if isinstance(value, (bytes, bytearray)):
        return "b"
    raise OscBuildError(f"cannot encode argument {value!r} of type {type(value).__name__}")


def encode_message(address: str, args: Sequence[Any] = (), types: str | None = None) -> bytes:
    """Encode one OSC message.

    Parameters
    ----------
    address : str
        Must start with ``/``.
    args : sequence
        One value per type tag (ignored for ``T F N I``); see :class:`OscMessage`.
    types : str, optional
        Type tags without the comma (``"fff"``); inferred from the values when omitted
        (int -> ``i``, float -> ``f`` (32-bit), str -> ``s``, bool -> ``T``/``F``, None -> ``N``).

    Returns
    -------
    bytes
        The datagram payload.
    """
    if not address.startswith("/"):
        raise OscBuildError(f"OSC address must start with '/': {address!r}")
    tags = types if types is not None else "".join(_infer_tag(a) for a in args)
    if len(tags) != len(args):
        raise OscBuildError(
            f"type tags {tags!r} do not match {len(args)} argument(s) for {address} "
            f"(give one value per tag; it is ignored for T F N I)"
        )
    out = [osc_string(address), osc_string("," + tags)]
    for tag, value in zip(tags, args, strict=True):
        if tag in "TFNI":
            continue
        try:
            if tag == "i":
                out.append(_I32.pack(int(value)))
            elif tag == "f":
                out.append(_F32.pack(float(value)))
            elif tag == "d":
                out.append(_F64.pack(float(value)))
            elif tag == "h":
                out.append(_I64.pack(int(value)))
            elif tag == "t":
                out.append(_U64.pack(int(value)))
            elif tag in "sS":
                out.append(osc_string(str(value)))
            elif tag == "b":
                blob = bytes(value)
                out.append(_I32.pack(len(blob)) + blob + b"\x00" * (-len(blob) % 4))
            else:
                raise OscBuildError(f"unsupported type tag {tag!r} for {address}")
        except (struct.error, OverflowError, TypeError, ValueError) as exc:
            raise OscBuildError(f"cannot encode {value!r} as {tag!r} for {address}: {exc}") from None
    return b"".join(out)


class MessageTemplate:
    """A pre-encoded address and type tags for numeric messages sent every frame.

    Parameters
    ----------
    address : str
        OSC address (``/adm/obj/3/aed``).
    types : str
        Numeric type tags only: ``i`` (int32), ``f`` (float32), ``d`` (float64), ``h`` (int64).

    Examples
    --------
    >>> MessageTemplate("/adm/obj/1/aed", "fff").pack(30.0, 0.0, 0.5) == encode_message(
    ...     "/adm/obj/1/aed", [30.0, 0.0, 0.5])
    True
    """

    __slots__ = ("address", "types", "_head", "_struct")

    def __init__(self, address: str, types: str) -> None:
        if not types or any(t not in _NUMERIC_FMT for t in types):
            raise OscBuildError(f"MessageTemplate takes numeric type tags (i f d h), got {types!r}")
        self.address = address
        self.types = types
        if not address.startswith("/"):
            raise OscBuildError(f"OSC address must start with '/': {address!r}")
        self._head = osc_string(address) + osc_string("," + types)
        self._struct = struct.Struct(">" + "".join(_NUMERIC_FMT[t] for t in types))

    def pack(self, *values: float) -> bytes:
        """The encoded message for these values (ints for ``i``/``h``, floats for ``f``/``d``)."""
        return self._head + self._struct.pack(*values)


def encode_bundle(elements: Iterable[bytes], timetag: int = IMMEDIATELY) -> bytes:
    """Wrap encoded messages (or bundles) in one bundle with a 64-bit NTP ``timetag``."""
    parts = [_BUNDLE_TAG, _U64.pack(timetag)]
    for e in elements:
        parts.append(_I32.pack(len(e)))
        parts.append(e)
    return b"".join(parts)


def pack_datagrams(
    messages: Sequence[bytes], *, bundle: bool, max_bytes: int = 1400, timetag: int = IMMEDIATELY
) -> list[bytes]:
    """Group encoded messages into datagrams.

    Parameters
    ----------
    messages : sequence of bytes
        Encoded messages in send order.
    bundle : bool
        False: one datagram per message. True: as few bundles as fit ``max_bytes`` each
        (a message larger than that still travels, alone in its bundle).
    max_bytes : int
        Datagram budget in bytes; 1400 stays under a 1500-byte Ethernet MTU.
    """
    if not bundle:
        return list(messages)
    out: list[bytes] = []
    batch: list[bytes] = []
    size = 16  # "#bundle\0" + timetag
    for m in messages:
        if batch and size + 4 + len(m) > max_bytes:
            out.append(encode_bundle(batch, timetag))
            batch, size = [], 16
        batch.append(m)
        size += 4 + len(m)
    if batch:
        out.append(encode_bundle(batch, timetag))
    return out


def ntp_from_unix(unix_s: float) -> int:
    """64-bit NTP timetag for a Unix time in seconds."""
    sec = math.floor(unix_s)
    return ((sec + _NTP_UNIX_OFFSET_S) << 32) | int((unix_s - sec) * 2**32)


def unix_from_ntp(tag: int) -> float:
    """Unix time in seconds for a 64-bit NTP timetag."""
    return (tag >> 32) - _NTP_UNIX_OFFSET_S + (tag & 0xFFFFFFFF) / 2**32


# ---------------------------------------------------------------------------------------- decode
def _read_string(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\x00", pos)
    if end < 0:
        raise OscParseError(f"unterminated string at byte {pos}")
    nxt = pos + ((end - pos) // 4 + 1) * 4
    if nxt > len(data):
        raise OscParseError(f"string at byte {pos} is not padded to 4 bytes")
    try:
        return data[pos:end].decode("utf-8"), nxt
    except UnicodeDecodeError:
        raise OscParseError(f"string at byte {pos} is not UTF-8") from None


def _need(data: bytes, pos: int, n: int, tag: str) -> None:
    if pos + n > len(data):
        raise OscParseError(f"argument {tag!r} at byte {pos} needs {n} bytes, {len(data) - pos} left")


def _decode_message(data: bytes) -> OscMessage:
    address, pos = _read_string(data, 0)
    if not address.startswith("/"):
        raise OscParseError(f"address must start with '/': {address[:40]!r}")
    if pos >= len(data):
        return OscMessage(address, "", ())  # OSC 1.0 allows a message without type tags
    if data[pos : pos + 1] != b",":
        raise OscParseError(f"type tag string must start with ',' (byte {pos})")
    tags, pos = _read_string(data, pos)
    tags = tags[1:]
    args: list[Any] = []
    for tag in tags:
        if tag == "i":
            _need(data, pos, 4, tag)
            args.append(_I32.unpack_from(data, pos)[0])
            pos += 4
        elif tag == "f":
            _need(data, pos, 4, tag)
            args.append(_F32.unpack_from(data, pos)[0])
            pos += 4
        elif tag in "sS":
            s, pos = _read_string(data, pos)
            args.append(s)
        elif tag == "d":
            _need(data, pos, 8, tag)
            args.append(_F64.unpack_from(data, pos)[0])
            pos += 8
        elif tag == "h":
            _need(data, pos, 8, tag)
            args.append(_I64.unpack_from(data, pos)[0])
            pos += 8
        elif tag == "t":
            _need(data, pos, 8, tag)
            args.append(_U64.unpack_from(data, pos)[0])
            pos += 8
        elif tag == "b":
            _need(data, pos, 4, tag)
            n = _I32.unpack_from(data, pos)[0]
            if n < 0:
                raise OscParseError(f"negative blob size {n} at byte {pos}")
            pos += 4
            _need(data, pos, n, tag)
            args.append(bytes(data[pos : pos + n]))
            pos += n + (-n % 4)
        elif tag == "T":
            args.append(True)
        elif tag == "F":
            args.append(False)
        elif tag in "NI":
            args.append(None)
        elif tag in "cr":
            _need(data, pos, 4, tag)
            args.append(_U32.unpack_from(data, pos)[0])
            pos += 4
        elif tag == "m":
            _need(data, pos, 4, tag)
            args.append(tuple(data[pos : pos + 4]))
            pos += 4
        elif tag in "[]":
            raise OscParseError("OSC arrays ('[' ']') are not supported")
        else:
            raise OscParseError(f"unknown type tag {tag!r}")
    return OscMessage(address, tags, tuple(args))


def _decode_into(data: bytes, out: list[OscMessage], depth: int, max_depth: int, max_messages: int) -> None:
    if data[:8] == _BUNDLE_TAG:
        if depth >= max_depth:
            raise OscParseError(f"bundles nested deeper than {max_depth}")
        if len(data) < 16:
            raise OscParseError("bundle shorter than its 16-byte header")
        pos = 16
        while pos < len(data):
            _need(data, pos, 4, "bundle element size")
            n = _I32.unpack_from(data, pos)[0]
            pos += 4
            if n <= 0 or n % 4 or pos + n > len(data):
                raise OscParseError(f"bad bundle element size {n} at byte {pos - 4}")
            _decode_into(data[pos : pos + n], out, depth + 1, max_depth, max_messages)
            pos += n
        return
    if len(out) >= max_messages:
        raise OscParseError(f"more than {max_messages} messages in one packet")
    out.append(_decode_message(data))


def decode_packet(data: bytes, *, max_depth: int = 4, max_messages: int = 1024) -> list[OscMessage]:
    """Decode a datagram into its messages, flattening bundles (their timetags are ignored).

    Parameters
    ----------
    data : bytes
        The UDP payload.
    max_depth : int
        Deepest bundle nesting accepted.
    max_messages : int
        Most messages accepted from one datagram.

    Raises
    ------
    OscParseError
        Anything malformed: wrong padding, a length running past the end, unknown type tags,
        non-UTF-8 strings, too deep or too many.
    """
    if len(data) < 4 or len(data) % 4:
        raise OscParseError(f"packet size {len(data)} is not a positive multiple of 4")
    out: list[OscMessage] = []
    _decode_into(bytes(data), out, 0, max_depth, max_messages)
    return out


# --------------------------------------------------------------------------------------- sockets
def parse_hostport(text: str, *, default_host: str) -> tuple[str, int]:
    """``"9000"`` or ``"host:9000"`` -> (host, port); raises ValueError naming the text."""
    host, sep, port_s = str(text).rpartition(":")
    if not sep:
        host, port_s = default_host, str(text)
    try:
        port = int(port_s)
    except ValueError:
        raise ValueError(f"{text!r}: port must be a number, e.g. 9000 or 127.0.0.1:9000") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port must be 1..65535")
    return (host.strip("[]") or default_host), port


def bind_udp(host: str, port: int, *, rcvbuf_bytes: int = 1 << 20) -> socket.socket:
    """Bind a UDP socket for listening; a taken port raises :class:`PortInUseError` saying so.

    ``SO_REUSEADDR`` is deliberately not set: on Linux it lets two UDP sockets share a port,
    which would hide exactly the conflict this function must report.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortInUseError(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        except OSError:
            pass
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"UDP port {port} on {host} is already in use (another gravity-live, or the DAW's or "
                f"renderer's own OSC port?); pick a free one with --listen, e.g. --listen {port + 1}"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise PortInUseError(
                f"not allowed to listen on UDP port {port} (ports below 1024 need "
                f"privileges); pick one above 1024 with --listen"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise PortInUseError(
                f"cannot listen on {host}:{port}: {host} is not an address of this machine; use 127.0.0.1 or 0.0.0.0"
            ) from None
        raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class UdpOut:
    """A non-blocking UDP sender to one ``host:port`` that never raises once built.

    A target that is not listening, a full socket buffer or a network error is counted
    (``refused``, ``dropped``, ``errors``) and the datagram is dropped: the caller (the frame
    thread) must never stall on a peer.

    Parameters
    ----------
    host : str
        Name or address; resolved once here (start-up), never in the frame thread.
    port : int
        UDP port.
    sndbuf_bytes : int
        Socket send buffer size in bytes.
    """

    def __init__(self, host: str, port: int, *, sndbuf_bytes: int = 1 << 20) -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve target host {host!r}: {exc.strerror}") from None
        family, _, _, _, address = infos[0]
        self.address: tuple[Any, ...] = address
        self.host, self.port = host, port
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf_bytes)
        except OSError:
            pass
        self._sock.setblocking(False)
        self.sent = 0
        self.bytes = 0
        self.refused = 0
        self.dropped = 0
        self.errors = 0

    def send(self, datagram: bytes) -> bool:
        """Send one datagram; True when the kernel took it."""
        try:
            self._sock.sendto(datagram, self.address)
        except BlockingIOError:
            self.dropped += 1
            return False
        except ConnectionRefusedError:  # ICMP port unreachable from an earlier datagram
            self.refused += 1
            return False
        except OSError:
            self.errors += 1
            return False
        self.sent += 1
        self.bytes += len(datagram)
        return True

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self._sock.close()
