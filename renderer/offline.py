"""Offline rendering: stem files + scene -> one audio file, through the streaming path.

:func:`render_files` reads and checks every stem, matches stems to scene objects, resamples
and mixes them into one mono signal per object, runs :class:`renderer.render.Renderer` block
by block (exactly what a realtime preview does, so the samples are the same), measures peak
and loudness, optionally normalises to the scene's loudness target and limits, and writes the
file atomically (temp file + ``os.replace``). Every failure raises :class:`RenderError`
naming the file, and leaves no output behind.

Stem handling (documented choices):

* An object's id names its stem; a grouped object (``stems: [...]``) mixes its member stems
  (plain sum). Stems match by file stem (``vox.wav`` -> ``vox``) or through ``stem_map``.
* Stems are read by :mod:`gravity.analysis.reading`, the one stem reader that ``gravity
  analyze`` uses too, so both accept and reject the same files with the same message (see its
  module docstring for the policy; its errors are re-raised as :class:`RenderError`). Every
  file is opened and its header checked before rendering starts; then stems are decoded a
  chunk at a time (:func:`gravity.analysis.reading.open_stem`, float32, the next chunk on a
  worker thread while the engine renders this one), and resampled a chunk at a time when their
  rate is not the render rate, so memory for the input stays O(chunk) whatever the stems'
  length. A sample that breaks the policy (NaN) met mid-render stops it with the whole-file
  reader's line, nothing written. Only formats whose header length is not exact (MP3, Ogg) are
  read whole (4 bytes a sample at the render rate). A file that ends before the frames its
  header promises is rendered with silence for the rest, with a warning.
* Stems are downmixed to mono by the channel mean (:func:`gravity.analysis.reading.downmix`):
  stereo ``(L + R) / 2``, and 3 or more channels alike. The scene decides an object's width, and
  a stereo stem rendered as one point would otherwise keep its own, conflicting stereo image.
* Stems at another sample rate are resampled to the render rate: ``resample_poly``'s samples to
  the bit, computed block by block (:class:`_Resampled`); shorter stems are zero-padded to the
  longest.
* Non-finite samples (NaN/inf) in a stem are an error (they mean a broken file), never
  silently zeroed; so are folders, FIFOs, empty and non-audio files and sample rates below 8 kHz.
* The output is as long as the longest stem plus the reverb tail (RT60 when any object sends
  to the reverb) plus the reflections' and filters' decay; time 0 is aligned with the stems
  (the renderer's latency is removed).

Outputs (documented choices):

* The output is checked before anything is read (:func:`check_output`): its folder exists, it
  is not a folder, its format can be written. An output that is the same file as an input
  (a stem, the scene, the SOFA file: same device and inode, so hard and symbolic links count) is
  refused unless ``overwrite_inputs`` (``gravity render --force``).
* The samples are held in memory as float32 (channels x samples, for the loudness measurement
  and the limiter, which need the whole): at most :data:`MAX_OUTPUT_BYTES`, checked before
  the buffer is allocated. Stems are streamed (resampled too), the limiter works a chunk at a
  time: ``gravity render`` of 16 stems x 10 min peaks at 0.79 GB RSS at 48 kHz, 0.77 GB from
  44.1 kHz stems (``benchmarks/memory_bounds.py``; 3.07 GB before, the limiter's arrays).
* The file carries ``software = "gravity-render <version>"`` (WAV, RF64, AIFF, FLAC, CAF; W64
  holds no strings), so a later listing of the folder knows it for Gravity's own output, not a stem
  (:func:`gravity.analysis.reading.gravity_output`).
* A render shorter than one 400 ms BS.1770 block has no integrated loudness: the report says
  so, and ``normalize`` leaves it as it is (with a warning).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from gravity.analysis.reading import (
    RENDER_SOFTWARE,
    STREAMED_FORMATS,
    StemFileError,
    StemStream,
    check_stem_path,
    downmix,
    open_stem,
    read_audio,
)
from gravity.atomic import atomic_path, clobbered
from gravity.errors import ValidationError, quote
from gravity.scene import Scene

from .config import SPEAKER_CHANNELS, RenderConfig
from .errors import RenderError
from .loudness import BLOCK_S, gated_loudness, limit, loudness, measure, normalisation_gain_db
from . import kernels
from .parallel import submit
from .render import Renderer

__all__ = ["RenderReport", "render_files", "load_stems", "write_audio_atomic", "check_output", "check_not_an_input"]

log = logging.getLogger(__name__)

#: Bytes of the float32 output buffer a render may hold (channels x samples x 4): 4 GiB is
#: 186 min of binaural or 35 min of 3rd-order Ambisonics (16 channels) at 48 kHz.
MAX_OUTPUT_BYTES = 4 << 30
#: Output formats libsndfile writes, by extension (".aif" is AIFF's other name).
_WRITE_FORMATS = {".wav": "WAV", ".wave": "WAV", ".flac": "FLAC", ".aif": "AIFF", ".aiff": "AIFF",
                  ".caf": "CAF", ".w64": "W64", ".rf64": "RF64", "": "WAV"}  # fmt: skip


@dataclass(frozen=True)
class RenderReport:
    """What a render produced and measured.

    Attributes
    ----------
    out : Path
        Written file.
    fmt : str
        Output format.
    channels, sample_rate, n_samples : int
        Channel count, rate in Hz and length in samples of the file.
    duration_s : float
        Length in seconds.
    peak_dbfs, true_peak_dbtp, loudness_lufs : float
        Levels of the written signal (see :mod:`renderer.loudness`).
    loudness_before_lufs : float
        Integrated loudness before normalisation / limiting.
    gain_db : float
        Normalisation gain applied (0 without normalisation).
    limiter_reduction_db : float
        Largest gain reduction of the safety limiter (0 = untouched).
    clipped_samples : int
        Samples beyond full scale in the written file (only possible with ``limit=False``
        and a PCM subtype; then also logged as a warning).
    objects : tuple of str
        Rendered object ids.
    stems : dict of str to str
        Scene stem id -> file used.
    unused_files : tuple of str
        Given stem files the scene does not use.
    elapsed_s : float
        Wall-clock render time in seconds.
    realtime_factor : float
        Output duration / elapsed time.
    config : dict
        The resolved :class:`RenderConfig`.
    """

    out: Path
    fmt: str
    channels: int
    sample_rate: int
    n_samples: int
    duration_s: float
    peak_dbfs: float
    true_peak_dbtp: float
    loudness_lufs: float
    loudness_before_lufs: float
    gain_db: float
    limiter_reduction_db: float
    clipped_samples: int
    objects: tuple[str, ...]
    stems: dict[str, str] = field(default_factory=dict)
    unused_files: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    realtime_factor: float = 0.0
    config: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the CLI."""
        if math.isfinite(self.loudness_lufs):
            level = f"{self.loudness_lufs:.1f} LUFS"
        elif self.duration_s < BLOCK_S:
            level = f"too short for BS.1770 loudness ({1e3 * self.duration_s:.0f} ms < {1e3 * BLOCK_S:.0f} ms)"
        else:
            level = "silent (below the -70 LUFS gate)"
        return (
            f"wrote {self.out} ({self.fmt}, {self.channels} ch, {self.duration_s:.1f} s, "
            f"{level}, peak {self.true_peak_dbtp:.1f} dBTP, {self.realtime_factor:.0f}x realtime)"
        )


class _Whole:
    """A stem held whole in memory (a format whose header length is not exact: MP3, Ogg)."""

    def __init__(self, mono: NDArray[np.float32]) -> None:
        self.frames, self._x, self._pos = len(mono), mono, 0

    def read(self, out: NDArray[np.float32]) -> None:
        """The next len(out) samples, zeros past the end."""
        a = self._x[self._pos : self._pos + len(out)]
        out[: len(a)] = a
        out[len(a) :] = 0.0
        self._pos += len(out)

    def close(self) -> None:
        self._x = self._x[:0]


class _Streamed:
    """A stem decoded block by block from its file (memory: one block)."""

    def __init__(self, stream: StemStream) -> None:
        self.frames, self._s, self._warned = stream.frames, stream, False

    def read(self, out: NDArray[np.float32]) -> None:
        """The next len(out) samples, zeros past the end."""
        got = self._s.read(out)
        while 0 < got < len(out):  # a decoder may return less than asked before the end
            more = self._s.read(out[got:])
            if not more:
                break
            got += more
        out[got:] = 0.0
        if got < len(out) and not self._warned and self._s.frames_read < self.frames:
            self._warned = True
            log.warning("%s: ends after %d of the %d frames its header promises; the rest is "
                        "rendered as silence", self._s.path, self._s.frames_read, self.frames)  # fmt: skip

    def close(self) -> None:
        self._s.close()


def _upfirdn_len(len_h: int, n_in: int, up: int, down: int) -> int:
    """Output length of ``scipy.signal.upfirdn`` (its private ``_output_len``, restated)."""
    n = (n_in + (len_h + (-len_h % up)) // up - 1) * up
    return n // down + bool(n % down)


class _Resampled:
    """A stem at another rate, decoded and resampled a chunk at a time (memory: one chunk).

    The samples are ``scipy.signal.resample_poly(x, up, down)``'s (same filter, same ``upfirdn``
    arithmetic, to the bit: tested), computed for a block of outputs from the input samples that
    block needs: ``upfirdn`` run on an input segment that starts at a multiple of ``down``
    lands on the same output grid as on the whole signal, so only the filter's span (about
    20 input samples) is read twice.
    """

    def __init__(self, stream: StemStream, up: int, down: int) -> None:
        from scipy.signal import firwin, upfirdn  # only here: scipy.signal takes ~0.5 s to import

        self._s, self._up, self._down, self._upfirdn = stream, up, down, upfirdn
        self._n_in = stream.frames
        self.frames = -(-self._n_in * up // down)  # resample_poly's output length
        # resample_poly's filter, in the signal's dtype (float32), padded as it pads it
        half = 10 * max(up, down)
        h = firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0)).astype(np.float32)
        h *= up
        pre, post = down - half % down, 0
        self._skip = (half + pre) // down  # outputs upfirdn gives before resample_poly's first
        while _upfirdn_len(len(h) + pre + post, self._n_in, up, down) < self.frames + self._skip:
            post += 1
        self._h = np.concatenate([np.zeros(pre, np.float32), h, np.zeros(post, np.float32)])
        self._buf, self._buf0 = np.zeros(0, np.float32), 0  # input samples buf0 .. buf0 + len(buf)
        self._pos, self._warned = 0, False  # next output sample

    def _input(self, i0: int, i1: int) -> NDArray[np.float32]:
        """Input samples i0 .. i1 (i0 never goes back), read from the file as far as needed."""
        have = self._buf0 + len(self._buf)
        if i1 > have:
            fresh = np.zeros(i1 - have, np.float32)  # zeros where the file ends early
            got = 0
            while got < len(fresh) and (n := self._s.read(fresh[got:])):
                got += n
            if got < len(fresh) and not self._warned:
                self._warned = True
                log.warning("%s: ends after %d of the %d frames its header promises; the rest is "
                            "rendered as silence", self._s.path, self._s.frames_read, self._n_in)  # fmt: skip
            self._buf = np.concatenate([self._buf, fresh])
        self._buf, self._buf0 = self._buf[i0 - self._buf0 :], i0  # what the next block may reuse
        return self._buf[: i1 - i0]

    def read(self, out: NDArray[np.float32]) -> None:
        """The next len(out) samples at the render rate, zeros past the end."""
        m0 = self._pos
        self._pos += len(out)
        m1 = min(self._pos, self.frames)
        if m1 <= m0:
            out[:] = 0.0
            return
        up, down = self._up, self._down
        first = (m0 + self._skip) * down - (len(self._h) - 1)  # lowest upsampled position used
        i0 = max(0, -(-first // up)) // down * down  # a multiple of down: the same output grid
        i1 = min(self._n_in, (m1 - 1 + self._skip) * down // up + 1)
        z = self._upfirdn(self._h, self._input(i0, i1), up, down)
        j0 = m0 + self._skip - i0 * up // down
        got = z[j0 : j0 + m1 - m0]
        out[: len(got)] = got
        out[len(got) :] = 0.0

    def close(self) -> None:
        self._s.close()


def _open_stem(path: Path, rate: int) -> _Whole | _Streamed | _Resampled:
    """One stem file -> a mono float32 source at ``rate``; RenderError naming the file otherwise."""
    try:
        stream = open_stem(path)
    except StemFileError as exc:  # the same message gravity analyze gives, as a RenderError
        raise RenderError(str(exc)) from None
    for note in stream.notes:
        log.warning("%s: %s", path, note)
    if stream.channels > 2:
        log.warning("%s: %d channels, downmixed to mono (channel mean)", path, stream.channels)
    sr = stream.sample_rate
    if stream.format in STREAMED_FORMATS:
        if sr == rate:
            return _Streamed(stream)
        frac = Fraction(rate, sr).limit_denominator(10000)
        log.info("%s: resampled %d -> %d Hz", path, sr, rate)
        return _Resampled(stream, frac.numerator, frac.denominator)
    stream.close()
    try:
        audio = read_audio(path)[0]
    except StemFileError as exc:
        raise RenderError(str(exc)) from None
    # float32 first, then the mean: PCM and float32 stems convert exactly, so the samples are
    # those of a float32 read (and of a block read: a file's float32 read is its float64 read
    # rounded to float32, tested).
    mono = downmix(audio.astype(np.float32))
    del audio
    if sr != rate:
        from scipy.signal import resample_poly  # only here: scipy.signal takes ~0.5 s to import

        frac = Fraction(rate, sr).limit_denominator(10000)
        mono = resample_poly(mono, frac.numerator, frac.denominator).astype(np.float32)
        log.info("%s: resampled %d -> %d Hz", path, sr, rate)
    return _Whole(np.ascontiguousarray(mono, np.float32))


class _ObjectSignals:
    """The scene objects' mono signals, produced a chunk at a time from the open stems.

    An object's signal is ``0 + stem_1 + stem_2 ...`` in float32 (its stems in scene order,
    each zero-padded to :attr:`n`), exactly as summing whole stems into a zeroed matrix. Stems
    at the render rate are decoded straight into the object's row when they are its only use
    and first stem; others go through a per-file scratch buffer.
    """

    def __init__(self, sources: dict[Path, _Whole | _Streamed | _Resampled], plan: list[list[Path]]) -> None:
        self._src, self._plan = sources, plan
        self.n = max((s.frames for s in sources.values()), default=0)
        uses: dict[Path, int] = {}
        for paths in plan:
            for p in paths:
                uses[p] = uses.get(p, 0) + 1
        self._direct = {p for paths in plan for p in paths[:1] if uses[p] == 1}
        self._scratch: dict[Path, NDArray[np.float32]] = {}

    def read(self, out: NDArray[np.float32]) -> None:
        """Fill ``out`` (n_objects, k) with the next k samples of every object (zeros past n)."""
        k = out.shape[1]
        fresh: dict[Path, NDArray[np.float32]] = {}
        for row, paths in zip(out, self._plan, strict=True):
            if not paths:
                row[:] = 0.0
            for j, p in enumerate(paths):
                if p in self._direct:
                    self._src[p].read(row)
                    row += np.float32(0.0)  # 0 + stem, as a zeroed sum has it (-0.0 -> +0.0)
                    continue
                if p not in fresh:
                    buf = self._scratch.get(p)
                    if buf is None or len(buf) < k:
                        buf = self._scratch[p] = np.empty(k, np.float32)
                    self._src[p].read(buf[:k])
                    fresh[p] = buf[:k]
                if j == 0:
                    np.add(fresh[p], np.float32(0.0), out=row)
                else:
                    row += fresh[p]

    def close(self) -> None:
        for s in self._src.values():
            s.close()


def _open_signals(
    stems: Sequence[Path | str], scene: Scene, rate: int, stem_map: Mapping[str, str] | None
) -> tuple[_ObjectSignals, dict[str, str], tuple[str, ...]]:
    """Match stems to the scene's objects and open them (see :func:`load_stems`)."""
    paths = [Path(p) for p in stems]
    for p in paths:
        try:
            check_stem_path(p)  # missing, a folder, a FIFO: before anything is read
        except StemFileError as exc:
            raise RenderError(str(exc)) from None
    by_key: dict[str, Path] = {}
    for p in paths:
        for key in {str(p), p.name, p.stem}:
            if key in by_key and by_key[key] != p and key == p.stem:
                raise RenderError(
                    f"{p}: file stem {quote(p.stem)} is also the stem of {by_key[key]}; rename one or use stem_map"
                )
            by_key.setdefault(key, p)
    resolve: dict[str, Path] = {}
    for sid, target in (stem_map or {}).items():
        if target not in by_key:
            raise RenderError(
                f"stem_map maps {quote(sid)} to {quote(target)}, which is not among the stem files "
                f"{quote([str(p) for p in paths])}"
            )
        resolve[sid] = by_key[target]
    mapped_files = set(resolve.values())
    for p in paths:
        if p not in mapped_files:
            resolve.setdefault(p.stem, p)
    missing = [(o.id, sid) for o in scene.objects for sid in o.stems if sid not in resolve]
    if missing:
        names = ", ".join(f"object {quote(oid)} needs stem {quote(sid)}" for oid, sid in missing[:8])
        raise RenderError(
            f"no stem file for: {names} (files: {[p.name for p in paths]}); pass the file or map it with stem_map"
        )
    sources: dict[Path, _Whole | _Streamed | _Resampled] = {}
    used: dict[str, str] = {}
    try:
        for o in scene.objects:
            for sid in o.stems:
                p = resolve[sid]
                if p not in sources:
                    sources[p] = _open_stem(p, rate)
                used[sid] = str(p)
    except BaseException:
        for s in sources.values():
            s.close()
        raise
    plan = [[resolve[sid] for sid in o.stems] for o in scene.objects]
    unused = tuple(str(p) for p in paths if p not in sources)
    return _ObjectSignals(sources, plan), used, unused


def _read_or_raise(signals: _ObjectSignals, out: NDArray[np.float32]) -> None:
    """:meth:`_ObjectSignals.read`, a stem's StemFileError re-raised as a RenderError."""
    try:
        signals.read(out)
    except StemFileError as exc:
        raise RenderError(str(exc)) from None


def load_stems(
    stems: Sequence[Path | str], scene: Scene, rate: int, stem_map: Mapping[str, str] | None = None
) -> tuple[NDArray[np.float32], dict[str, str], tuple[str, ...]]:
    """Read stem files and mix them into one mono signal per scene object.

    :func:`render_files` reads the same signals a chunk at a time instead (memory of one chunk,
    whatever the stems' length); the samples are the same.

    Parameters
    ----------
    stems : sequence of path
        Stem files.
    scene : Scene
        The scene whose objects (and their member stems) need signals.
    rate : int
        Render sample rate in Hz.
    stem_map : mapping of str to str, optional
        Scene stem id -> stem file (its full path, file name or file stem, among ``stems``).
        Files not named in the map match the stem id equal to their file stem.

    Returns
    -------
    signals : ndarray of float32, shape (n_objects, n)
        Object signals, zero-padded to the longest stem.
    used : dict of str to str
        Stem id -> file.
    unused : tuple of str
        Files no object uses.

    Raises
    ------
    RenderError
        A stem file the reader rejects (:func:`gravity.analysis.reading.read_audio`: missing,
        not a regular file, not audio, out of bounds, non-finite samples), ambiguous file
        stems, or a stem the scene names that no file provides.
    """
    signals, used, unused = _open_signals(stems, scene, rate, stem_map)
    try:
        out = np.empty((len(scene.objects), signals.n), np.float32)
        _read_or_raise(signals, out)
    finally:
        signals.close()
    return out, used, unused


#: Frames written per call: the interleaved copy libsndfile needs is made a piece at a time.
WRITE_FRAMES = 1 << 16


def write_audio_atomic(path: Path, y: NDArray[np.float32], rate: int, subtype: str, render_fmt: str = "") -> None:
    """Write ``y`` (channels, n) to ``path`` via a temp file in the same folder + os.replace."""
    path = Path(path)
    with atomic_path(path, suffix=path.suffix or ".wav") as tmp:
        _write_audio(tmp, _WRITE_FORMATS.get(path.suffix.lower(), "WAV"), y, rate, subtype, render_fmt)


def _write_audio(path: Path, fmt: str, y: NDArray[np.float32], rate: int, subtype: str, render_fmt: str = "") -> None:
    """Write ``y`` (channels, n) to ``path`` as it is, marked as Gravity's render.

    A WAV of a loudspeaker layout whose BS.2051 order a WAVE_FORMAT_EXTENSIBLE channel mask can
    state (5.1, 5.1.2, 5.1.4: :attr:`renderer.speakers.Layout.wav_channel_map`) carries that
    mask; every other WAV is a plain one, without a mask.
    """
    # The package is loaded (gravity.scene is); naming it in an import would tie the renderer
    # to all of gravity/__init__'s names in the import contract, for one string.
    version = getattr(sys.modules.get("gravity"), "__version__", "")
    lay = None
    if fmt == "WAV" and render_fmt in SPEAKER_CHANNELS:
        from .speakers import layout

        lay = layout(render_fmt) if layout(render_fmt).wav_channel_map else None
    with sf.SoundFile(path, "w", rate, y.shape[0], subtype, format="WAVEX" if lay else fmt) as f:
        if lay is not None:
            from .speakers import set_wav_channel_map

            set_wav_channel_map(f, lay)
        try:  # before the samples: FLAC and Ogg take strings only then
            f.software = f"{RENDER_SOFTWARE} {version}".strip()
        except (RuntimeError, sf.LibsndfileError):  # W64 holds no strings: unmarked
            log.debug("%s: %s files hold no software string", path, fmt)
        for s in range(0, y.shape[1], WRITE_FRAMES):
            f.write(np.ascontiguousarray(y[:, s : s + WRITE_FRAMES].T))


def check_output(out: Path, subtype: str = "PCM_24") -> None:
    """Refuse an output that cannot be written, before any work: run first, fail fast.

    Raises
    ------
    RenderError
        The output's folder does not exist, the output is a folder, its extension names no
        format libsndfile writes, or ``subtype`` is not valid for it.
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise RenderError(f"{out}: output folder {out.parent} does not exist")
    if out.is_dir():
        raise RenderError(f"{out}: is a folder; name the output file (e.g. {out / 'mix.wav'})")
    if out.exists() and not out.is_file():
        raise RenderError(f"{out}: exists and is not a regular file; name another output")
    fmt = _WRITE_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise RenderError(f"{out}: cannot write {out.suffix} files; use .wav, .flac or .aiff")
    if not sf.check_format(fmt, subtype):
        raise RenderError(f"{out}: subtype {subtype!r} is not valid for a {out.suffix or '.wav'} file")


def check_not_an_input(
    outputs: Sequence[Path], inputs: Sequence[Path], hint: str = "pass overwrite_inputs=True to allow it"
) -> None:
    """Refuse to write over an input: an output that is the same file as one of ``inputs``.

    "Same file" as :func:`gravity.atomic.clobbered` decides it (device and inode, links followed).

    Raises
    ------
    RenderError
        One line naming the output, the input and ``hint``.
    """
    pair = clobbered(outputs, inputs)
    if pair is not None:
        raise RenderError(f"{pair[0]}: is the input {pair[1]}; refusing to overwrite an input ({hint})")


def _count_over(y: NDArray[np.float32], level: float) -> int:
    """Samples with ``|y| > level``, counted a chunk at a time (no signal-long temporary)."""
    return sum(
        int(np.count_nonzero(np.abs(y[:, s : s + CHUNK_SAMPLES]) > level)) for s in range(0, y.shape[1], CHUNK_SAMPLES)
    )


def _write_failure(exc: BaseException, out: Path, y: NDArray[np.float32], subtype: str) -> str:
    """Why a write failed, in words: libsndfile says only "System error." for a full disk."""
    import shutil

    text = getattr(exc, "strerror", None) or str(exc).strip().rstrip(".")
    try:
        free = shutil.disk_usage(out.parent).free
    except OSError:
        return text
    need = y.size * {"PCM_16": 2, "PCM_24": 3, "DOUBLE": 8}.get(subtype, 4)  # bytes of samples
    return (
        f"{text}: the disk is full or a file size limit was reached? "
        f"{need / 2**20:.1f} MiB to write, {free / 2**20:.0f} MiB free there"
    )


class _NoBar:
    """What a render without a progress bar updates (and tqdm, ~25 ms to import, is not loaded)."""

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, n: int) -> None:
        pass


def _progress_bar(total: int, name: str, show: bool) -> Any:
    """A tqdm bar over ``total`` samples on stderr, or a silent stand-in."""
    if not show:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="smp", unit_scale=True, desc=name, leave=False)


#: Samples per object decoded at a time (a multiple of the block): 1 Mi floats in all, 4 MiB.
CHUNK_SAMPLES = 1 << 20


def _render(
    signals: _ObjectSignals,
    scene: Scene,
    name: str,
    cfg: RenderConfig,
    hrtf_path: Path | None,
    rate: int,
    block: int,
    progress: bool,
) -> tuple[Renderer, NDArray[np.float32]]:
    """Feed the object signals to a Renderer block by block; (renderer, output, latency removed)."""
    model = None
    if cfg.fmt != "binaural" and hrtf_path is not None:
        log.info("%s: not used, the %s format needs no HRTF", hrtf_path, cfg.fmt)
    if cfg.fmt == "binaural":
        from hrtf import HRTFError, load_model

        try:
            model = load_model(hrtf_path, rate=rate)
        except (HRTFError, OSError, ValueError) as exc:
            raise RenderError(f"{hrtf_path or 'embedded HRTF'}: bad SOFA file: {exc}") from exc
    n = signals.n
    renderer = Renderer(scene, rate, cfg, model=model, duration_s=n / rate if n else None)
    lat = renderer.latency_samples
    feed = n + renderer.tail_samples + lat
    need = renderer.n_channels * (feed - lat) * 4
    if need > MAX_OUTPUT_BYTES:
        raise RenderError(
            f"{name}: {(feed - lat) / rate / 60:.1f} min of {renderer.n_channels}-channel output needs "
            f"{need / 2**30:.2f} GiB in memory (at most {MAX_OUTPUT_BYTES / 2**30:g} GiB): render shorter sections"
        )
    y = np.empty((renderer.n_channels, feed - lat), np.float32)  # time 0 = the stems' start
    # Stems are decoded a chunk (several blocks) at a time into two reused buffers, the next
    # chunk on the shared pool while the engine renders this one (libsndfile releases the GIL):
    # memory stays O(chunk), and past the stems' end a chunk is zeros, as the renderer needs.
    n_obj = len(scene.objects)
    chunk = block * max(1, CHUNK_SAMPLES // max(1, n_obj) // block)
    bufs = [np.empty((n_obj, min(chunk, feed)), np.float32) for _ in range(1 + (feed > chunk))]

    def fill(i: int) -> NDArray[np.float32]:
        c0 = i * chunk
        x = bufs[i % len(bufs)][:, : min(chunk, feed - c0)]
        if c0 < n:
            _read_or_raise(signals, x)
        else:
            x[:] = 0.0
        return x

    pending: Future | None = submit(fill, 0)
    try:
        with _progress_bar(feed, name, progress) as bar:
            for i, c0 in enumerate(range(0, feed, chunk)):
                assert pending is not None
                x, pending = pending.result(), None  # re-raises the reader's RenderError
                if c0 + chunk < feed:
                    pending = submit(fill, i + 1)
                for s in range(c0, c0 + x.shape[1], block):  # a chunk is whole blocks
                    e = min(c0 + x.shape[1], s + block)
                    out = renderer.process(x[:, s - c0 : e - c0])
                    if e > lat:  # the first lat output samples are the renderer's latency
                        y[:, max(s, lat) - lat : e - lat] = out[:, max(0, lat - s) :]
                    bar.update(e - s)
    finally:
        if pending is not None:  # never close the files under a read in flight
            wait([pending])
    return renderer, y


def _load_scene(scene: Scene | Path | str) -> Scene:
    """The scene, or its JSON file read and validated (render and export read it alike)."""
    if isinstance(scene, Scene):
        return scene
    path = Path(scene)
    if not path.is_file():
        raise RenderError(f"{path}: scene file not found")
    try:
        return Scene.load(path)
    except ValidationError:
        raise
    except (OSError, ValueError) as exc:
        raise RenderError(f"{path}: unreadable scene ({exc})") from exc


def _warm_kernels() -> None:
    """:func:`renderer.kernels.warm`, never raising (a real call raises whatever it must)."""
    try:
        kernels.warm()
    except Exception as exc:  # noqa: BLE001  # a warm-up must not fail a render
        log.debug("kernel warm-up failed: %s", exc)


def render_files(
    stems: list[Path],
    scene: Scene | Path,
    out: Path,
    *,
    fmt: str = "binaural",
    hrtf_path: Path | None = None,
    rate: int = 48000,
    block: int = 512,
    stem_map: dict[str, str] | None = None,
    progress: bool = True,
    subtype: str = "PCM_24",
    config: RenderConfig | None = None,
    normalize: bool = False,
    limit_peaks: bool = True,
    overwrite_inputs: bool = False,
    write_to: Path | None = None,
) -> RenderReport:
    """Render stems placed by a scene to an audio file.

    Parameters
    ----------
    stems : list of Path
        Stem files (WAV/FLAC/AIFF, mono or stereo, any rate).
    scene : Scene or Path
        The scene, or its JSON file.
    out : Path
        Output file (``.wav`` recommended); written atomically, never partially.
    fmt : str
        Output format, one of :data:`renderer.config.FORMATS` (overrides ``config.fmt``).
    hrtf_path : Path, optional
        SOFA file for binaural (default: the embedded MIT KEMAR).
    rate : int
        Render / output sample rate in Hz.
    block : int
        Block size in samples fed to the streaming renderer. The output is identical for any
        block size (tested); larger blocks run faster (fewer Python calls): 512 mimics a
        realtime callback, 8192 or more is best offline.
    stem_map : dict of str to str, optional
        Scene stem id -> stem file (path, name or file stem); see :func:`load_stems`.
    progress : bool
        Show a tqdm progress bar on stderr.
    subtype : str
        soundfile subtype: ``"PCM_24"`` (default), ``"PCM_16"``, ``"FLOAT"``...
    config : RenderConfig, optional
        Renderer settings (hop, EQ, room...); ``fmt`` above wins.
    normalize : bool
        Scale to the scene's ``bed.loudness_target_lufs`` (integrated, BS.1770).
    limit_peaks : bool
        Apply the safety limiter (ceiling -1 dBFS) when peaks exceed it. Without it, samples
        beyond full scale are counted, logged and clipped by the PCM writer (never silently).
    overwrite_inputs : bool
        Allow ``out`` to be one of the stems, the scene file or the SOFA file (same file); by
        default that is a RenderError before anything is read.
    write_to : Path, optional
        Write the samples here instead, as they are (no rename): a temp file that the caller
        renames over ``out`` together with other outputs (``gravity render`` writes its audio,
        scene and plot all or none, :func:`gravity.atomic.atomic_paths`). Messages name ``out``.

    Returns
    -------
    RenderReport

    Raises
    ------
    RenderError
        A missing / unreadable / non-finite / too short stem, a stem the scene names without a
        file, a bad SOFA file, bad options, an output that is an input, an output longer than
        :data:`MAX_OUTPUT_BYTES` allows, or an unwritable output. No output file is left behind.
    gravity.errors.ValidationError
        The scene file is not a valid scene.
    """
    t0 = time.perf_counter()
    out = Path(out)
    check_output(out, subtype)
    # numba's first kernel call in a process costs ~0.3 s (its type registries); a pool thread
    # pays it while this one reads the scene, opens the stems and builds the HRTF tables (FFTs,
    # file reads: they release the GIL).
    submit(_warm_kernels)
    inputs = [Path(p) for p in stems] + [Path(p) for p in (scene, hrtf_path) if isinstance(p, (str, Path))]
    if not overwrite_inputs:
        check_not_an_input([out], inputs)
    if block < 1 or rate < 8000:
        raise RenderError(f"block={block} must be >= 1 sample and rate={rate} >= 8000 Hz")
    try:
        cfg = (config or RenderConfig()).replace(fmt=fmt)
    except ValueError as exc:
        raise RenderError(str(exc)) from exc
    if cfg.fmt == "adm":
        raise RenderError(f"{out}: fmt='adm' is an export, not a render: renderer.export.export_files writes it")
    scene = _load_scene(scene)
    signals, used, unused = _open_signals(stems, scene, rate, stem_map)
    try:
        for f in unused:
            log.warning("%s: no scene object uses this stem", f)
        renderer, y = _render(signals, scene, out.name, cfg, hrtf_path, rate, block, progress)
    finally:
        signals.close()
    # max(-min, max) needs no temporary; a NaN or an infinity anywhere makes it non-finite.
    if y.size and not math.isfinite(max(-float(y.min()), float(y.max()))):
        raise RenderError(f"{out}: internal error, the render produced non-finite samples; nothing written")
    # Loudness is measured once: a normalising gain shifts every 400 ms gating block alike,
    # so the written file's loudness follows from the same blocks; only a limiter that acted
    # changes the signal's shape (then it is measured again). Peaks: once, on the final mix.
    before_lufs, blocks = loudness(y, rate, fmt=cfg.fmt)
    gain_db = applied_db = 0.0
    if normalize and not math.isfinite(before_lufs):
        why = "too short for BS.1770" if y.shape[1] < BLOCK_S * rate else "silent"
        log.warning("%s: not normalised: %s, its loudness cannot be measured", out, why)
    elif normalize:
        gain_db = normalisation_gain_db(before_lufs, scene.loudness_target_lufs)
        g = np.float32(10.0 ** (gain_db / 20.0))
        y *= g
        applied_db = 20.0 * math.log10(float(g))  # the gain in float32, as applied
    reduction = 0.0
    if limit_peaks:
        y, reduction = limit(y, rate, inplace=True)  # no second copy of a long mix
        if reduction > 0:
            log.warning("%s: safety limiter reduced peaks by up to %.1f dB", out, reduction)
    if reduction > 0:
        after_lufs = loudness(y, rate, fmt=cfg.fmt)[0]
    elif applied_db != 0.0:
        after_lufs = gated_loudness(blocks, applied_db)
    else:
        after_lufs = before_lufs
    # The true peak (a 4x-oversampling pass) on the pool while this thread writes the file: both
    # release the GIL, and neither changes y.
    measured = submit(lambda: measure(y, rate, fmt=cfg.fmt, loudness_lufs=after_lufs))
    try:
        over = _count_over(y, 1.0) if y.size and max(-float(y.min()), float(y.max())) > 1.0 else 0
        clipped = over if subtype.startswith("PCM") else 0
        if clipped:
            log.warning("%s: %d samples exceed full scale and will clip in %s", out, clipped, subtype)
        elif over:
            log.warning("%s: %d samples exceed full scale (kept: %s file)", out, over, subtype)
        try:
            if write_to is None:
                write_audio_atomic(out, y, rate, subtype, cfg.fmt)
            else:
                _write_audio(Path(write_to), _WRITE_FORMATS.get(out.suffix.lower(), "WAV"), y, rate, subtype, cfg.fmt)
        except (OSError, RuntimeError, sf.LibsndfileError) as exc:
            raise RenderError(f"{out}: cannot write output ({_write_failure(exc, out, y, subtype)})") from exc
    except BaseException:
        wait([measured])  # the pool reads y: let it finish before the error unwinds
        raise
    after = measured.result()
    elapsed = time.perf_counter() - t0
    report = RenderReport(
        out=out,
        fmt=cfg.fmt,
        channels=renderer.n_channels,
        sample_rate=rate,
        n_samples=y.shape[1],
        duration_s=y.shape[1] / rate,
        peak_dbfs=after.peak_dbfs,
        true_peak_dbtp=after.true_peak_dbtp,
        loudness_lufs=after.loudness_lufs,
        loudness_before_lufs=before_lufs,
        gain_db=gain_db,
        limiter_reduction_db=reduction,
        clipped_samples=clipped,
        objects=tuple(o.id for o in scene.objects),
        stems=used,
        unused_files=unused,
        elapsed_s=elapsed,
        realtime_factor=(y.shape[1] / rate) / max(elapsed, 1e-9),
        config=cfg.to_dict(),
    )
    log.info("%s", report.summary())
    return report
