"""BW64 files (ITU-R BS.2088): PCM tracks with the ``chna`` and ``axml`` chunks of an ADM export.

:class:`Bw64Writer` streams integer PCM into a file whose size is known before the first sample
(the export knows the track count and the length), so every chunk header is written once, in
order, with no seeking back:

``RIFF|BW64 <size> WAVE``, ``JUNK`` (28 bytes, or ``ds64``), ``fmt``, ``LIST/INFO`` (``ISFT``,
the software string, so Gravity knows its own output in a folder of stems), ``chna``, ``axml``,
``data``.

Sizes (documented choices):

* A file whose RIFF size fits 32 bits is a plain ``RIFF`` WAVE with a 28-byte ``JUNK`` chunk
  where the ``ds64`` chunk would go (EBU Tech 3306's advice: a tool may turn it into BW64 in
  place), so every WAV reader opens it.
* A larger file (more than 4 GiB: 16 tracks x 24 bit x 48 kHz is 3.1 h) is BW64: ``BW64``
  instead of ``RIFF``, the 32-bit RIFF and ``data`` sizes set to 0xFFFFFFFF and the real ones in
  the ``ds64`` chunk (BS.2088 section 4.1; its ``dummy`` field 0, its table empty).
* Chunks of odd length get a pad byte, counted in the RIFF size but not in the chunk's own.
* Samples are integer PCM (16, 24 or 32 bit): what BS.2088 readers (the EBU ADM Renderer
  among them) accept. Floats are scaled by 2^(bits-1), rounded to the nearest integer and
  clipped to the format's range; the writer counts the clipped samples.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["ChnaEntry", "Bw64Writer", "chunk", "MAX_RIFF_BYTES", "BITS"]

#: Largest RIFF size a plain WAVE header holds (bytes after the first 8 of the file).
MAX_RIFF_BYTES = 0xFFFFFFFF
#: Sample sizes the writer produces, in bits.
BITS = (16, 24, 32)
_FLAG_64 = 0xFFFFFFFF  # a 32-bit size field whose value is in the ds64 chunk
_DS64_BYTES = 28  # riffSize, dataSize, dummy (3 x uint64) + tableLength (uint32)


@dataclass(frozen=True)
class ChnaEntry:
    """One row of the ``chna`` chunk: which ADM track a file track carries.

    Attributes
    ----------
    track_index : int
        1-based track (channel) of the file.
    track_uid : str
        ``ATU_xxxxxxxx`` (12 characters).
    track_format : str
        ``AT_xxxxxxxx_xx`` (14 characters).
    pack_format : str
        ``AP_xxxxxxxx`` (11 characters).
    """

    track_index: int
    track_uid: str
    track_format: str
    pack_format: str

    def pack(self) -> bytes:
        """The entry's 40 bytes (uint16, 12 + 14 + 11 ASCII characters, one pad byte)."""
        if (len(self.track_uid), len(self.track_format), len(self.pack_format)) != (12, 14, 11):
            raise ValueError(f"chna entry {self} has IDs of the wrong length")
        return struct.pack(
            "<H12s14s11sx", self.track_index, self.track_uid.encode(), self.track_format.encode(),
            self.pack_format.encode(),
        )  # fmt: skip


def chunk(ckid: bytes, data: bytes) -> bytes:
    """A RIFF chunk: 4-byte id, uint32 length, the data, a pad byte when the length is odd."""
    return ckid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)


def _chna(entries: Sequence[ChnaEntry]) -> bytes:
    tracks = len({e.track_index for e in entries})
    return chunk(b"chna", struct.pack("<HH", tracks, len(entries)) + b"".join(e.pack() for e in entries))


def _info(software: str) -> bytes:
    """A ``LIST`` chunk of type ``INFO`` holding ``ISFT`` (software), NUL-terminated."""
    return chunk(b"LIST", b"INFO" + chunk(b"ISFT", software.encode("utf-8", "replace") + b"\0"))


class Bw64Writer:
    """Write a BW64 (or plain RIFF) file of ``n_frames`` x ``channels`` integer PCM samples.

    Parameters
    ----------
    f : binary file
        Open for writing, at position 0.
    channels : int
        Track count (1..65535).
    rate : int
        Sample rate in Hz.
    bits : {16, 24, 32}
        Bits per sample.
    n_frames : int
        Frames (samples per track) the file will hold; :meth:`close` checks them.
    chna : sequence of ChnaEntry
        The ``chna`` rows.
    axml : bytes
        The ADM XML document.
    software : str
        The ``ISFT`` string.
    force_bw64 : bool
        Write the BW64 / ``ds64`` form even when the file would fit a RIFF header (tests).
    """

    def __init__(
        self,
        f: BinaryIO,
        *,
        channels: int,
        rate: int,
        bits: int,
        n_frames: int,
        chna: Sequence[ChnaEntry],
        axml: bytes,
        software: str = "",
        force_bw64: bool = False,
    ) -> None:
        if bits not in BITS:
            raise ValueError(f"bits={bits} must be one of {BITS}")
        if not 1 <= channels <= 0xFFFF:
            raise ValueError(f"channels={channels} must be 1..65535")
        self._f, self.channels, self.bits, self.n_frames = f, channels, bits, n_frames
        self.frames_written = self.clipped = 0
        width = bits // 8
        self.data_bytes = n_frames * channels * width
        fmt = chunk(b"fmt ", struct.pack("<HHIIHH", 1, channels, rate, rate * channels * width, channels * width, bits))
        meta = fmt + (_info(software) if software else b"") + _chna(chna) + chunk(b"axml", axml)
        data_pad = self.data_bytes & 1
        riff_bytes = 4 + (8 + _DS64_BYTES) + len(meta) + 8 + self.data_bytes + data_pad
        #: Whether the file needs (or was asked for) the BW64 form with a ds64 chunk.
        self.bw64 = force_bw64 or riff_bytes > MAX_RIFF_BYTES or self.data_bytes > MAX_RIFF_BYTES
        if self.bw64:
            ds64 = chunk(b"ds64", struct.pack("<QQQI", riff_bytes, self.data_bytes, 0, 0))
            head = b"BW64" + struct.pack("<I", _FLAG_64) + b"WAVE" + ds64
            data_head = b"data" + struct.pack("<I", _FLAG_64)
        else:
            head = b"RIFF" + struct.pack("<I", riff_bytes) + b"WAVE" + chunk(b"JUNK", bytes(_DS64_BYTES))
            data_head = b"data" + struct.pack("<I", self.data_bytes)
        #: Bytes of the whole file once closed.
        self.file_bytes = 8 + riff_bytes
        self._pad = data_pad
        f.write(head + meta + data_head)

    def write(self, x: NDArray[np.float32]) -> None:
        """Append samples ``x`` (channels, k), floats with full scale 1.0."""
        if x.shape[0] != self.channels:
            raise ValueError(f"got {x.shape[0]} channels, the file has {self.channels}")
        if self.frames_written + x.shape[1] > self.n_frames:
            raise ValueError(f"more than the {self.n_frames} frames the header promises")
        full = float(1 << (self.bits - 1))
        # float64 for the scaling: 32-bit full scale (2^31 - 1) is not a float32 number
        q = np.rint(np.asarray(x, np.float64).T * full)
        over = (q > full - 1) | (q < -full)
        self.clipped += int(np.count_nonzero(over))
        np.clip(q, -full, full - 1, out=q)
        i = q.astype("<i4")  # interleaved: frame-major
        if self.bits == 16:
            raw = i.astype("<i2").tobytes()
        elif self.bits == 24:  # the low three bytes of each little-endian int32
            raw = i.reshape(-1).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        else:
            raw = i.tobytes()
        self._f.write(raw)
        self.frames_written += x.shape[1]

    def close(self) -> None:
        """Finish the data chunk (its pad byte); the frames written must be those promised."""
        if self.frames_written != self.n_frames:
            raise ValueError(f"wrote {self.frames_written} frames, the header promises {self.n_frames}")
        self._f.write(b"\0" * self._pad)
