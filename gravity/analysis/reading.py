"""Stem files in, samples out: the one place that opens a stem, for analysis and renderer alike.

Policy (one rule, used by ``gravity analyze`` and by the renderer's :func:`renderer.offline.load_stems`)
--------------------------------------------------------------------------------------------------------
* **Regular files only.** A folder, a named pipe (FIFO), a socket or a device is rejected before
  anything opens it (opening a FIFO would block).
* **Bounds before allocating.** The file size (at most :data:`MAX_FILE_BYTES`), then the header's
  sample rate (:data:`MIN_SAMPLE_RATE` .. :data:`MAX_SAMPLE_RATE` Hz), channel count (at most
  :data:`MAX_CHANNELS`) and frames x channels (at most :data:`MAX_SAMPLES`) are checked before the
  samples are read.
* **At least :data:`MIN_STEM_S` (10 ms) of audio.** A header-only file, a 1-sample file or
  anything shorter than 10 ms is an error naming the file, never a silent render. 10 ms is the
  analysis' shortest block (its transient measure works on 10 ms blocks) and far below any real
  one-shot: a closed hi-hat or a rim click lasts 30-100 ms, so a 50 ms one-shot is a stem.
* **Truncated files are read with a note.** A file that ends before the length its header states
  (a copy or an export cut short: libsndfile reads what is there) is read as far as it goes, with
  a note saying how many frames are missing (:func:`truncation_note`).
* **Format by content.** libsndfile sniffs the content; the extension never decides (a WAV named
  ``x.mp3`` is read as WAV, with a note). Text or other non-audio content is rejected.
* **Non-finite samples are rejected**, with the file named: any NaN or infinity (and any sample
  beyond the float32 range, +-3.4e38, which the renderer's float32 path would turn into
  infinity) means a broken file. Nothing is silently replaced.
* **More than 2 channels are accepted and downmixed to mono by the channel mean**
  (:func:`downmix`): the renderer renders every stem as a mono object (the scene gives it its
  width), and analysis describes the same mean. Stereo goes through the same rule,
  ``(L + R) / 2``.

Two ways in, one policy: :func:`read_audio` reads a whole file (float64); :func:`open_stem` opens it
for block reads (:class:`StemStream`, mono float32, memory of one block), checked the same way up to
the samples, then block by block; a block that fails hands the file to :func:`read_audio`, so the
error line is the same whichever way the file was read.

Errors are :class:`StemFileError` (a :class:`gravity.errors.GravityError` and ``ValueError``),
one line naming the file and the problem. This module imports only numpy, soundfile,
``gravity.errors`` and :mod:`gravity.analysis.pcm24` (24-bit PCM WAV decoded by numpy, the
same floats as libsndfile's), so the renderer can use it without loading the analysis.
"""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path
from typing import NoReturn

import numpy as np
import soundfile as sf

from gravity.errors import GravityError

from .pcm24 import Pcm24Reader, open_pcm24

__all__ = [
    "AnalysisError",
    "StemFileError",
    "AUDIO_EXTENSIONS",
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
    "MAX_CHANNELS",
    "MAX_FILE_BYTES",
    "MAX_SAMPLES",
    "find_stems",
    "check_stem_path",
    "read_audio",
    "open_stem",
    "StemStream",
    "STREAMED_FORMATS",
    "downmix",
    "MIN_STEM_S",
    "RENDER_SOFTWARE",
    "gravity_output",
    "truncation_note",
]

log = logging.getLogger(__name__)

MIN_SAMPLE_RATE = 8000  # Hz: below this a stem has no usable spectrum (and resampling explodes)
MAX_SAMPLE_RATE = 768_000  # Hz: the highest rate in use (DXD x 2); beyond it the header is broken
MAX_CHANNELS = 64  # 7th-order Ambisonics; more is a broken header, not a stem
MAX_FILE_BYTES = 4 << 30  # bytes on disk; 4 GiB of 8-bit PCM already exceeds MAX_SAMPLES
MAX_SAMPLES = 1 << 29  # frames x channels: 4 GiB as 64-bit floats (about 23 min of 48 kHz 7.1)
MIN_STEM_S = 0.010  # seconds: the shortest stem (see the policy above)
#: The ``software`` string ``gravity render`` writes into its output files (then its version):
#: how a folder listing knows a previous mix from a stem.
RENDER_SOFTWARE = "gravity-render"
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # the renderer works in float32
AUDIO_EXTENSIONS = frozenset(
    {
        ".wav",
        ".wave",
        ".bwf",
        ".rf64",
        ".w64",
        ".flac",
        ".aif",
        ".aiff",
        ".aifc",
        ".caf",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".au",
        ".snd",
    }
)
# soundfile's format name -> extensions that name it (for the "extension lies" note).
_EXTENSIONS_OF_FORMAT = {
    "WAV": {".wav", ".wave", ".bwf"},
    "WAVEX": {".wav", ".wave", ".bwf"},
    "RF64": {".rf64", ".wav"},
    "W64": {".w64", ".wav"},
    "FLAC": {".flac"},
    "AIFF": {".aif", ".aiff", ".aifc"},
    "CAF": {".caf"},
    "OGG": {".ogg", ".oga", ".opus"},
    "MP3": {".mp3"},
    "AU": {".au", ".snd"},
}
_KIND = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class AnalysisError(GravityError, ValueError):
    """A stem (or every stem) could not be analysed; the message names the file(s) and why."""


class StemFileError(AnalysisError):
    """A stem file cannot be used (missing, not a regular file, not audio, out of bounds,
    non-finite samples); the message is one line naming the file and the problem.
    """


def find_stems(folder: str | Path, notes: list[str] | None = None) -> list[Path]:
    """Entries directly inside ``folder`` (not recursive) named like audio, sorted by name.

    Gravity's own outputs are not stems: a file :func:`gravity_output` recognises (a previous
    ``gravity render`` into the same folder) is left out and named in ``notes``. Naming such a
    file explicitly (not through its folder) still uses it.

    Parameters
    ----------
    folder : path
        A folder of stems.
    notes : list of str, optional
        Gets one line per file left out as Gravity's own output; without it they are logged
        as warnings.

    Returns
    -------
    list of Path
        Entries whose extension is in :data:`AUDIO_EXTENSIONS`; hidden ones are left out. Entries
        that are not regular files (a folder or a FIFO named ``x.wav``) are listed too, so that
        :func:`read_audio` rejects them by name instead of their vanishing without a word.
    """
    found = []
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith(".") or p.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        why = gravity_output(p)
        if why is None:
            found.append(p)
            continue
        line = f"{p}: skipped, {why}; not a stem (name the file to use it anyway)"
        if notes is None:
            log.warning("%s", line)
        else:
            notes.append(line)
    return found


def gravity_output(path: str | Path) -> str | None:
    """Why ``path`` looks like a file ``gravity render`` wrote, or None when it looks like a stem.

    Two signs, either enough: the file's ``software`` metadata starts with
    :data:`RENDER_SOFTWARE` (every render writes it, in the formats that hold strings: WAV,
    RF64, AIFF, FLAC, CAF), or a ``<name>.scene.json`` lies beside it (a planned render writes
    its scene there; this also catches renders from versions that wrote no metadata). Only
    regular files are opened (a FIFO would block); a file libsndfile cannot open is not ours.

    Parameters
    ----------
    path : path
        An audio file.

    Returns
    -------
    str or None
        A short reason ("written by gravity-render 0.1.0", "a render (its scene mix.scene.json
        lies beside it)"), or None.
    """
    p = Path(path)
    scene = p.with_suffix(".scene.json")
    if scene.is_file():
        return f"a render (its scene {scene.name} lies beside it)"
    try:
        if not stat.S_ISREG(p.stat().st_mode):
            return None
        with sf.SoundFile(str(p)) as f:
            software = str(f.software or "")
    except (OSError, sf.SoundFileError, RuntimeError, ValueError, TypeError):
        return None
    if software.startswith(RENDER_SOFTWARE):
        return f"written by {software.split(' (')[0]}"
    return None


def check_stem_path(path: str | Path) -> int:
    """Check that ``path`` names an existing regular file, without opening it.

    Cheap enough for every file given, used or not (the renderer checks them all up front);
    :func:`read_audio` starts with it.

    Parameters
    ----------
    path : path
        The stem file (symbolic links are followed).

    Returns
    -------
    int
        Its size in bytes.

    Raises
    ------
    StemFileError
        Missing, a folder, or a FIFO / socket / device.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise StemFileError(f"{p}: no such file") from None
    except OSError as exc:
        raise StemFileError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise StemFileError(f"{p}: is a folder, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KIND if test(st.st_mode)), "not a regular file")
        raise StemFileError(f"{p}: is {kind}, not an audio file")
    return int(st.st_size)


def _looks_like_text(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_header(p: Path, fmt: str, subtype: str, sr: int, channels: int, frames: int) -> None:
    """Bounds from the header, before any sample is allocated."""
    if frames == 0:
        raise StemFileError(f"{p}: contains no audio frames ({fmt} {subtype} header only)")
    if sr <= 0:
        raise StemFileError(f"{p}: invalid sample rate {sr} Hz")
    if sr < MIN_SAMPLE_RATE:
        raise StemFileError(f"{p}: sample rate {sr} Hz is too low (need at least {MIN_SAMPLE_RATE} Hz)")
    if sr > MAX_SAMPLE_RATE:
        raise StemFileError(f"{p}: sample rate {sr} Hz is too high (at most {MAX_SAMPLE_RATE} Hz)")
    if channels > MAX_CHANNELS:
        raise StemFileError(f"{p}: {channels} channels; a stem has at most {MAX_CHANNELS}")
    if frames * channels > MAX_SAMPLES:
        raise StemFileError(
            f"{p}: too large to load ({frames} frames x {channels} channels = "
            f"{frames * channels * 8 / 2**30:.1f} GiB as 64-bit samples; at most "
            f"{MAX_SAMPLES * 8 / 2**30:g} GiB): split or shorten it"
        )
    _check_length(p, frames, sr)


def _check_length(p: Path, frames: int, sr: int) -> None:
    """At least :data:`MIN_STEM_S` of audio (``frames`` > 0 already)."""
    if frames < MIN_STEM_S * sr:
        raise StemFileError(
            f"{p}: too short for a stem ({frames} sample{'s' * (frames != 1)} = {1e3 * frames / sr:.3g} ms "
            f"at {sr} Hz; at least {1e3 * MIN_STEM_S:g} ms)"
        )


_DATA_SIZE = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)
_HEADER_FRAMES = re.compile(r"^\s*Frames\s*:\s*(\d+)\s*$", re.M)
_UNSET_SIZES = {0xFFFFFFFF, 0x7FFFFFFF}  # "length unknown" markers of recorders that stream WAV


def truncation_note(info: str, frames: int, sr: int) -> str | None:
    """A note when a file's header states more audio than the file holds, else None.

    Parameters
    ----------
    info : str
        libsndfile's log of the header parse (``SoundFile.extra_info``): it reports a WAV
        ``data`` or AIFF ``SSND`` chunk larger than the file as ``data : 96000 (should be
        47978)``, and AIFF's stated frame count as ``Frames : 48000``.
    frames : int
        Frames libsndfile will read (it clips the count to the data present).
    sr : int
        Sample rate in Hz.

    Returns
    -------
    str or None
        "truncated: its header states N frames, the file holds M (K frames = T s missing); read
        what is there" or None.
    """
    stated = [int(n) for n in _HEADER_FRAMES.findall(info)]  # AIFF, FLAC: a frame count
    m = _DATA_SIZE.search(info)
    if not stated and m and frames and int(m.group(1)) not in _UNSET_SIZES and 0 < int(m.group(2)) < int(m.group(1)):
        # bytes present = frames x bytes per frame + a partial frame, so their quotient is the
        # frame size (a frame has fewer bytes than the file has frames)
        stated.append(int(m.group(1)) // (int(m.group(2)) // frames))
    promised = max(stated, default=0)
    if promised <= frames:
        return None
    missing = promised - frames
    return (
        f"truncated: its header states {promised} frames, the file holds {frames} "
        f"({missing} frames = {missing / sr:.3g} s missing); read what is there"
    )


def _check_finite(p: Path, audio: np.ndarray, subtype: str) -> None:
    """Reject NaN, infinity and samples beyond the float32 range, naming the file."""
    lo, hi = float(np.min(audio)), float(np.max(audio))  # NaN propagates: one pass each, no copy
    if -_FLOAT32_MAX <= lo and hi <= _FLOAT32_MAX:
        return
    finite = np.isfinite(audio)
    nbad = int(audio.size - np.count_nonzero(finite))
    nhuge = int(np.count_nonzero(finite & (np.abs(audio) > _FLOAT32_MAX)))
    if nbad == audio.size:
        raise StemFileError(f"{p}: every sample is NaN or infinite (a broken {subtype} file)")
    parts = []
    if nbad:
        parts.append(f"{nbad} non-finite (NaN/inf) sample{'s' * (nbad != 1)}")
    if nhuge:
        parts.append(f"{nhuge} sample{'s' * (nhuge != 1)} beyond the float32 range (+-3.4e38)")
    share = 100.0 * (nbad + nhuge) / audio.size
    raise StemFileError(
        f"{p}: contains {' and '.join(parts)} ({share:.2g} % of {audio.size}); "
        f"a broken {subtype} file: re-export the stem"
    )


def _open(p: Path) -> tuple[sf.SoundFile, list[str]]:
    """Open ``p`` under the module's policy: every check up to the samples (header bounds included).

    Returns the open file and the notes; raises :class:`StemFileError` like :func:`read_audio`.
    """
    size = check_stem_path(p)
    try:
        with p.open("rb"):  # a regular file, so opening cannot block
            pass
    except OSError as exc:
        raise StemFileError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    if size == 0:
        raise StemFileError(f"{p}: empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise StemFileError(
            f"{p}: {size / 2**30:.1f} GiB is too large for a stem (at most {MAX_FILE_BYTES / 2**30:g} GiB)"
        )
    f: sf.SoundFile | None = None
    try:
        f = sf.SoundFile(str(p))
        _check_header(p, f.format, f.subtype, int(f.samplerate), int(f.channels), int(f.frames))
    except StemFileError:
        if f is not None:
            f.close()
        raise
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        if f is not None:
            f.close()
        raise _unreadable(p, exc) from None
    notes: list[str] = []
    cut = truncation_note(str(f.extra_info), int(f.frames), int(f.samplerate))
    if cut:
        notes.append(cut)
    ext = p.suffix.lower()
    if ext and ext not in _EXTENSIONS_OF_FORMAT.get(f.format, {ext}):
        notes.append(f"content is {f.format} but the name ends in {p.suffix}; read as {f.format} by content")
    return f, notes


def _unreadable(p: Path, exc: Exception) -> StemFileError:
    what = "a text file" if _looks_like_text(p) else "not an audio file libsndfile can read"
    detail = (str(exc).rsplit(": ", 1)[-1] if ": " in str(exc) else str(exc)).strip().rstrip(".")
    return StemFileError(f"{p}: {what} ({detail or type(exc).__name__}); expected WAV, FLAC, AIFF, OGG or MP3")


def read_audio(path: str | Path) -> tuple[np.ndarray, int, list[str]]:
    """Read a stem by its content (libsndfile), whatever its extension, under the module's policy.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    audio : np.ndarray [shape=(frames, channels), float64]
        Samples, full scale = 1, all finite; every channel as stored (see :func:`downmix`).
    sample_rate : int
        Hz, within :data:`MIN_SAMPLE_RATE` .. :data:`MAX_SAMPLE_RATE`.
    notes : list of str
        Problems that did not stop the read (extension not matching the content, a truncated
        file read as far as it goes).

    Raises
    ------
    StemFileError
        Missing, not a regular file, unreadable, empty, not audio, no frames, shorter than
        :data:`MIN_STEM_S`, out of bounds (size, sample rate, channels, frames x channels) or
        any non-finite sample.
    """
    p = Path(path)
    f, notes = _open(p)
    with f:
        fmt, subtype, sr, channels = f.format, f.subtype, int(f.samplerate), int(f.channels)
        try:
            audio = f.read(dtype="float64", always_2d=True)
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
            # the header was fine: the samples are what fails (a FLAC cut short loses sync)
            detail = (str(exc).rsplit(": ", 1)[-1] if ": " in str(exc) else str(exc)).strip().rstrip(".")
            raise StemFileError(
                f"{p}: cannot decode its samples ({detail or type(exc).__name__}); "
                f"a damaged or truncated {fmt} file: re-export the stem"
            ) from None
        except MemoryError:
            raise StemFileError(f"{p}: too large to load into memory") from None
    if audio.shape[0] == 0:  # the header promised frames the file does not hold
        raise StemFileError(f"{p}: contains no audio frames ({fmt} {subtype} header only)")
    _check_length(p, audio.shape[0], sr)  # MP3 / Ogg: the header's count is an estimate
    _check_finite(p, audio, subtype)
    log.debug("read %s: %s %s, %d Hz, %d ch, %d frames", p, fmt, subtype, sr, channels, audio.shape[0])
    return audio, sr, notes


#: Containers whose header frame count is exact (libsndfile clips it to the data present), so a
#: stream of them is as long as a whole read. Others (MP3, Ogg) are read whole by the renderer.
STREAMED_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "CAF", "AU", "FLAC"})


class StemStream:
    """An open stem read block by block as mono float32, under the module's policy.

    Made by :func:`open_stem`, which has already checked everything :func:`read_audio` checks
    before the samples (path, size, content, header bounds). Each :meth:`read` checks its block:
    on a non-finite sample or a decoding error the whole file is handed to :func:`read_audio`,
    so the error is the very line :func:`read_audio` (and ``gravity analyze``) gives. Memory is
    one block, whatever the stem's length. A file's float32 samples are its float64 ones
    (:func:`read_audio`) rounded to float32, bit for bit, for every subtype libsndfile decodes
    (tested): PCM and float scale by powers of two, and lossy decoders work in float32.

    Attributes
    ----------
    path : Path
    sample_rate : int
        Hz.
    channels : int
        Channels stored (the blocks are their mean, :func:`downmix`).
    frames : int
        Frames the header promises (exact for :data:`STREAMED_FORMATS`).
    frames_read : int
        Frames read so far.
    format, subtype : str
        libsndfile's names.
    notes : list of str
        Problems that did not stop the read, as :func:`read_audio` returns them.
    """

    def __init__(self, path: Path, f: sf.SoundFile, notes: list[str]) -> None:
        self.path, self._f, self.notes = path, f, notes
        self.sample_rate, self.channels, self.frames = int(f.samplerate), int(f.channels), int(f.frames)
        self.format, self.subtype = str(f.format), str(f.subtype)
        self.frames_read = 0  # frames read so far
        self._scratch = np.zeros((0, self.channels), np.float32)
        # 24-bit PCM WAV, the usual stem, decoded by numpy (pcm24: the same floats, ~2.5x faster)
        self._pcm24: Pcm24Reader | None = None
        if self.format in ("WAV", "WAVEX") and self.subtype == "PCM_24" and self.frames:
            self._pcm24 = open_pcm24(path, self.channels, self.sample_rate, self.frames)

    def read(self, out: np.ndarray) -> int:
        """Fill ``out`` (float32, shape (k,), C-contiguous) with the next k frames' channel mean.

        Returns
        -------
        int
            Frames written, ``k`` unless the file ends first (the rest of ``out`` is untouched).

        Raises
        ------
        StemFileError
            :func:`read_audio`'s line for this file: a non-finite sample, a decoding error, or
            no frames at all where the header promised some.
        """
        k = len(out)
        try:
            if self.channels == 1:  # decoded straight into the caller's buffer
                got = self._decode(out)
                block = out[:got]
            else:
                if len(self._scratch) < k:
                    self._scratch = np.empty((k, self.channels), np.float32)
                got = self._decode(self._scratch[:k])
                block = downmix(self._scratch[:got], out=out[:got])
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError):
            self._fail()
        if got == 0 and self.frames_read == 0 and k:
            self._fail()  # the header promised frames the file does not hold
        # A float32 block: anything beyond the float32 range is already infinite, and NaN propagates.
        # 24-bit integers (the numpy path) are always finite.
        if got and self._pcm24 is None and not np.isfinite(float(np.min(block)) + float(np.max(block))):
            self._fail()
        self.frames_read += got
        return got

    def _decode(self, buf: np.ndarray) -> int:
        """Decode the next frames into ``buf`` (float32, (k,) or (k, channels), C-contiguous), by
        the numpy 24-bit path where it applies, else libsndfile; returns the frames decoded.
        """
        if self._pcm24 is not None:
            return self._pcm24.read(buf.reshape(-1))
        return len(self._f.read(len(buf), dtype="float32", out=buf))

    def _fail(self) -> NoReturn:
        """Raise read_audio's own error for this file (it reads it whole: an error path only)."""
        self.close()
        read_audio(self.path)
        raise StemFileError(f"{self.path}: cannot read it (a block failed that a whole read accepts)")

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._f.close()
        if self._pcm24 is not None:
            self._pcm24.close()

    def __enter__(self) -> "StemStream":
        """The stream itself (closed on exit)."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the file."""
        self.close()


def open_stem(path: str | Path) -> StemStream:
    """Open a stem for block reads (:class:`StemStream`) under the module's policy.

    Everything :func:`read_audio` checks before the samples is checked here, with the same
    one-line :class:`StemFileError`; the samples are checked block by block as they are read.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    StemStream
        Open; close it (or use it as a context manager).
    """
    p = Path(path)
    f, notes = _open(p)
    return StemStream(p, f, notes)


def downmix(audio: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The one downmix rule: the mean of the channels.

    Parameters
    ----------
    audio : np.ndarray [shape=(frames, channels)]
        Samples, full scale = 1, any channel count.
    out : np.ndarray [shape=(frames,)], optional
        Where to write the result (same dtype), as for ``np.mean``.

    Returns
    -------
    np.ndarray [shape=(frames,)], same dtype
        ``sum(channels) / channels``: mono unchanged, stereo ``(L + R) / 2``, and 3 or more channels
        alike, whatever their layout (an LFE or surround channel counts as much as the others). A
        source that is the same on every channel keeps its level; uncorrelated channels lose
        ``10 log10(channels)`` dB, anti-phase ones cancel.
    """
    return audio.mean(axis=1, out=out)
