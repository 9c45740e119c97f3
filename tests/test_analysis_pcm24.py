"""24-bit PCM WAV decoded by numpy (gravity.analysis.pcm24): libsndfile's floats, bit for bit.

Every case compares the stream's blocks with libsndfile's own float32 read of the same file,
and says whether the numpy path or libsndfile decoded it (a file the chunk walker does not
recognise must fall back, never misread).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gravity.analysis import reading
from gravity.analysis.pcm24 import MAX_CHUNKS, open_pcm24
from gravity.analysis.reading import downmix

SR = 48000
GUID_PCM = bytes.fromhex("0100000000001000800000aa00389b71")


def _chunk(cid: bytes, body: bytes, size: int | None = None) -> bytes:
    return cid + struct.pack("<I", len(body) if size is None else size) + body + b"\0" * (len(body) & 1)


def _fmt(ch: int, *, tag: int = 1, bits: int = 24, align: int | None = None, valid: int = 24) -> bytes:
    align = 3 * ch if align is None else align
    body = struct.pack("<HHIIHH", tag, ch, SR, SR * align, align, bits)
    if tag == 0xFFFE:
        body += struct.pack("<HHI", 22, valid, 0) + GUID_PCM
    return _chunk(b"fmt ", body)


def _samples(frames: int, ch: int, seed: int = 0) -> np.ndarray:
    """Random int24 samples, full scale at both ends included."""
    s = np.random.default_rng(seed).integers(-(2**23), 2**23, size=(frames, ch), dtype=np.int32)
    s[0], s[1] = -(2**23), 2**23 - 1
    return s


def _data(s: np.ndarray) -> bytes:
    return s.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def _wav(path: Path, s: np.ndarray, *, before: bytes = b"", between: bytes = b"", after: bytes = b"",
         fmt: bytes | None = None, data_size: int | None = None, magic: bytes = b"RIFF") -> Path:  # fmt: skip
    body = b"WAVE" + before + (fmt or _fmt(s.shape[1])) + between + _chunk(b"data", _data(s), data_size) + after
    path.write_bytes(magic + struct.pack("<I", len(body)) + body)
    return path


def _stream_all(path: Path, size: int = 1000) -> tuple[np.ndarray, bool]:
    """Every block of open_stem (odd block sizes), and whether the numpy path read them."""
    with reading.open_stem(path) as stream:
        direct = stream._pcm24 is not None
        out, k = np.empty(stream.frames + 777, np.float32), 0
        while True:
            n = stream.read(out[k : k + size])
            if n == 0:
                break
            k += n
            size = 1 + (size * 7) % 4099  # block edges everywhere
        assert stream.frames_read == k
    return out[:k], direct


def _libsndfile(path: Path) -> np.ndarray:
    x, _ = sf.read(path, dtype="float32", always_2d=True)
    with np.errstate(invalid="ignore"):  # a file libsndfile decodes as NaNs (align-32) still compares
        return downmix(x)


@pytest.mark.parametrize("ch", [1, 2, 6])
@pytest.mark.parametrize("layout", ["plain", "extensible", "chunks", "odd-pad", "by-soundfile"])
def test_numpy_decode_is_libsndfiles_bit_for_bit(tmp_path: Path, ch: int, layout: str) -> None:
    s = _samples(20011, ch, seed=ch)
    p = tmp_path / "s.wav"
    if layout == "plain":
        _wav(p, s)
    elif layout == "extensible":
        _wav(p, s, fmt=_fmt(ch, tag=0xFFFE))
    elif layout == "chunks":  # metadata before, between and after, as DAWs write them
        _wav(p, s, before=_chunk(b"JUNK", b"\0" * 28), between=_chunk(b"LIST", b"INFOISFT" + b"x" * 20),
             after=_chunk(b"id3 ", b"y" * 50))  # fmt: skip
    elif layout == "odd-pad":  # an odd-sized chunk is padded to an even size
        _wav(p, s, before=_chunk(b"bext", b"z" * 11))
    else:
        sf.write(p, s.astype(np.float64) / 2**23, SR, subtype="PCM_24")
    want = _libsndfile(p)
    got, direct = _stream_all(p)
    assert len(got) == len(want) == 20011
    assert np.array_equal(got.view(np.int32), want.view(np.int32))
    assert direct
    assert float(np.max(np.abs(got))) == 1.0  # -2^23: full scale exactly


def test_soundfiles_wavex_is_read_by_numpy(tmp_path: Path) -> None:
    p = tmp_path / "x.wav"
    sf.write(p, _samples(5000, 4).astype(np.float64) / 2**23, SR, subtype="PCM_24", format="WAVEX")
    got, direct = _stream_all(p)
    assert direct and np.array_equal(got, _libsndfile(p))


@pytest.mark.parametrize(
    "case", ["zero-size", "rifx", "valid-20-bits", "align-32", "float-tag", "too-many-chunks", "huge-chunk"]
)
def test_files_the_walker_does_not_recognise_stay_with_libsndfile(tmp_path: Path, case: str) -> None:
    """Anything unusual falls back (open_pcm24 says None for the shape the data holds) and, where
    libsndfile reads the file, the stream reads it as libsndfile does.
    """
    s = _samples(3001, 2, seed=3)
    p = tmp_path / "s.wav"
    if case == "zero-size":  # a writer that never came back to fill in the data size
        _wav(p, s, data_size=0)
    elif case == "rifx":
        sf.write(p, s.astype(np.float64) / 2**23, SR, subtype="PCM_24", endian="BIG")
    elif case == "valid-20-bits":
        _wav(p, s, fmt=_fmt(2, tag=0xFFFE, valid=20))
    elif case == "align-32":  # a field that disagrees with 24-bit packing
        _wav(p, s, fmt=_fmt(2, align=8))
    elif case == "float-tag":
        _wav(p, s, fmt=_fmt(2, tag=3))
    elif case == "too-many-chunks":
        _wav(p, s, before=b"".join(_chunk(b"JUNK", b"\0\0") for _ in range(MAX_CHUNKS)))
    else:  # a chunk size past the end of the file: no data chunk is found
        _wav(p, s, before=_chunk(b"JUNK", b"\0" * 4, size=0xFFFFFFF0))
    assert open_pcm24(p, 2, SR, 3001) is None
    try:
        want = _libsndfile(p)
    except sf.LibsndfileError:
        return  # libsndfile refuses it too: open_stem's error, tested in test_analysis_bounds
    if len(want) and np.isfinite(want).all():
        got, direct = _stream_all(p)
        assert not direct and np.array_equal(got.view(np.int32), want.view(np.int32))


def test_a_streaming_writers_placeholder_size_reads_the_file(tmp_path: Path) -> None:
    """A data size of 0xFFFFFFFF (written before the length was known): libsndfile counts the
    frames from the file's size, and the numpy path reads exactly those.
    """
    s = _samples(4001, 2, seed=4)
    p = _wav(tmp_path / "live.wav", s, data_size=0xFFFFFFFF)
    got, direct = _stream_all(p)
    assert direct and len(got) == 4001 and np.array_equal(got, _libsndfile(p))


def test_a_truncated_file_reads_what_libsndfile_reads(tmp_path: Path) -> None:
    """A data chunk that promises more than the file holds: the frames that are there, no more."""
    s = _samples(10000, 2, seed=5)
    p = _wav(tmp_path / "cut.wav", s)
    p.write_bytes(p.read_bytes()[:-3001])  # cut mid-frame
    want = _libsndfile(p)
    got, direct = _stream_all(p)
    assert direct and len(got) == len(want) < 10000
    assert np.array_equal(got, want)


def test_a_file_that_shrinks_while_read_ends_early(tmp_path: Path) -> None:
    """Cut after opening: the frames still there, then 0 (the renderer pads with silence)."""
    s = _samples(20000, 1, seed=7)
    p = _wav(tmp_path / "shrink.wav", s)
    want = _libsndfile(p)
    with reading.open_stem(p) as stream:
        assert stream._pcm24 is not None
        buf = np.empty(4000, np.float32)
        assert stream.read(buf) == 4000 and np.array_equal(buf, want[:4000])
        os.truncate(p, 44 + 3 * 6000 + 2)  # 6000 whole frames (and 2 bytes) are left
        assert stream.read(buf) == 2000 and np.array_equal(buf[:2000], want[4000:6000])
        assert stream.read(buf) == 0
        assert stream.frames_read == 6000


def test_no_byte_past_the_frames_is_read(tmp_path: Path) -> None:
    """Bytes after the data chunk (another chunk) never reach the samples, whatever the block size."""
    s = _samples(1000, 1, seed=9)
    p = _wav(tmp_path / "t.wav", s, after=_chunk(b"LIST", b"\x7f" * 300))
    got, direct = _stream_all(p, size=999)
    assert direct and len(got) == 1000 and np.array_equal(got, _libsndfile(p))


def test_a_read_error_is_the_readers_one_line(tmp_path: Path) -> None:
    """An OS error mid-stream (here: EISDIR, the descriptor swapped for a folder's) is a
    StemFileError naming the file, as a libsndfile block failure is, never an OSError.
    """
    p = _wav(tmp_path / "e.wav", _samples(5000, 1, seed=8))
    with reading.open_stem(p) as stream:
        assert stream._pcm24 is not None
        buf = np.empty(1000, np.float32)
        assert stream.read(buf) == 1000
        os.close(stream._pcm24._fd)
        stream._pcm24._fd = os.open(tmp_path, os.O_RDONLY)  # the reader closes it
        with pytest.raises(reading.StemFileError, match=r"e\.wav: cannot read it"):
            stream.read(buf)
