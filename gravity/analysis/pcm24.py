"""24-bit PCM WAV samples decoded by numpy: ~2 ns a sample instead of libsndfile's ~5.

24-bit PCM is how stems leave a DAW, and libsndfile converts it to float one sample at a time:
for 16 one-minute stems that is ~0.25 s of a render's CPU, the largest share after the
convolution. A plain RIFF/WAVE file keeps the samples as one run of little-endian 3-byte
integers in its ``data`` chunk, so a block converts in two vectorised passes: each sample's
three bytes are read as the top three bytes of an (unaligned, 3-byte strided) int32 whose low
byte, the previous sample's last, is masked off; times 2^-31 that is ``s24 / 2^23``, the very
float libsndfile returns (exact in float32: 24 significant bits), bit for bit (tested).

:func:`open_pcm24` walks the file's chunks itself and is used only where its reading agrees with
libsndfile's (channels, rate, 24-bit integer PCM, a ``data`` chunk holding every frame
libsndfile counts); anything else (RIFX, RF64, W64, AIFF, float, 20-of-24 valid bits, odd
layouts) stays with libsndfile. It reads the frames libsndfile counts and no byte beyond them.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["Pcm24Reader", "open_pcm24"]

#: Chunks looked at before ``fmt `` and ``data`` are both found (a WAV has a handful).
MAX_CHUNKS = 64
_PCM = 1
_EXTENSIBLE = 0xFFFE
#: KSDATAFORMAT_SUBTYPE_PCM, as stored in a WAVE_FORMAT_EXTENSIBLE header.
_PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")
_SCALE = np.float32(2.0**-31)
_LOW_BYTE_OFF = np.int32(-256)


def _data_offset(fd: int, size: int, channels: int, rate: int, frames: int) -> int | None:
    """Byte offset of the samples when the file is the plain 24-bit PCM WAV described, else None."""
    head = os.pread(fd, 12, 0)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, fmt_ok, data = 12, False, None
    for _ in range(MAX_CHUNKS):
        hdr = os.pread(fd, 8, pos)
        if len(hdr) < 8:
            break
        cid, n = hdr[:4], struct.unpack("<I", hdr[4:])[0]
        if cid == b"fmt " and not fmt_ok:
            body = os.pread(fd, min(n, 40), pos + 8)
            if len(body) < 16:
                return None
            tag, ch, sr, _, align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _EXTENSIBLE:
                if len(body) < 40 or struct.unpack("<H", body[18:20])[0] != 24 or body[24:40] != _PCM_GUID:
                    return None
            elif tag != _PCM:
                return None
            if (ch, sr, bits, align) != (channels, rate, 24, 3 * channels):
                return None
            fmt_ok = True
        elif cid == b"data" and data is None:
            if n < frames * 3 * channels:  # 0 or a streaming writer's placeholder: libsndfile's own reckoning
                return None
            data = pos + 8
        if fmt_ok and data is not None:
            return data if data + frames * 3 * channels <= size else None
        pos += 8 + n + (n & 1)  # chunks are padded to even sizes
    return None


class Pcm24Reader:
    """Sequential block reads of a 24-bit PCM WAV's samples as float32 (see the module notes).

    Parameters
    ----------
    path : Path
        The file (already opened and checked by libsndfile).
    fd : int
        An open descriptor of it (the reader owns it and closes it).
    offset : int
        Byte offset of the first sample.
    channels, frames : int
        As libsndfile counts them; no byte past ``frames`` is read.
    """

    def __init__(self, path: Path, fd: int, offset: int, channels: int, frames: int) -> None:
        self.path, self._fd, self._pos = path, fd, offset
        self.channels, self._left = channels, frames
        self._buf = bytearray(1)
        self._int = np.empty(0, np.int32)

    def read(self, out: NDArray[np.float32]) -> int:
        """Fill ``out`` (float32, shape (k * channels,), C-contiguous: frames interleaved) with the
        next k frames; returns the frames written (fewer at the end, the rest untouched).
        """
        k = min(len(out) // self.channels, self._left)
        want = 3 * self.channels * k
        if len(self._buf) < want + 1:
            self._buf = bytearray(want + 1)  # one byte before the first sample: its int32 starts there
            self._int = np.empty(want // 3, np.int32)
        view = memoryview(self._buf)[1 : want + 1]
        got = 0
        while got < want:
            n = os.preadv(self._fd, [view[got:]], self._pos + got)
            if n <= 0:  # the file shrank since it was opened: what is there
                break
            got += n
        k = got // (3 * self.channels)
        n_smp = k * self.channels
        if n_smp:
            ints = np.ndarray((n_smp,), "<i4", self._buf, 0, (3,))  # byte 3i .. 3i + 3: sample i on top
            np.bitwise_and(ints, _LOW_BYTE_OFF, out=self._int[:n_smp])
            np.multiply(self._int[:n_smp], _SCALE, out=out[:n_smp], dtype=np.float32, casting="unsafe")
        self._pos += 3 * n_smp
        self._left -= k
        return k

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def open_pcm24(path: Path, channels: int, rate: int, frames: int) -> Pcm24Reader | None:
    """A :class:`Pcm24Reader` when ``path`` is a plain 24-bit PCM WAV of that shape, else None.

    ``channels``, ``rate`` and ``frames`` are libsndfile's reading of the header; the file's own
    chunks must say the same, or libsndfile keeps the decoding.
    """
    try:  # non-blocking: a file swapped for a FIFO since libsndfile opened it cannot hang the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        offset = _data_offset(fd, st.st_size, channels, rate, frames) if stat.S_ISREG(st.st_mode) else None
    except (OSError, struct.error):
        offset = None
    if offset is None:
        os.close(fd)
        return None
    return Pcm24Reader(path, fd, offset, channels, frames)
