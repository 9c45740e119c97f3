"""Stem analysis: audio files in, request descriptors out.

:func:`analyze_stems` reads each stem, measures it and returns an :class:`AnalysisResult`: a
request document (valid against ``request.schema.json``) plus a :class:`StemReport` per file.

Descriptors (one mono analysis signal per stem: the channel mean, DC removed, at 48 kHz)
--------------------------------------------------------------------------------------------
``lufs``
    Integrated loudness, ITU-R BS.1770-4 / EBU R128, by ``pyloudnorm`` on the file's own
    channels at its own sample rate (so it matches ``ffmpeg -af ebur128``). Files with 3 or more
    channels are weighted for the default layout of their channel count, as ffmpeg does
    (see :func:`integrated_loudness`). A stem with no 400 ms block above
    the -70 LUFS absolute gate is *silent* and reported as -70.0 LUFS (what ffmpeg prints).
    A stem shorter than one 400 ms block is measured on that block, zero-padded.
``band_energy``
    Fractions of the signal energy in ``low`` (< 250 Hz), ``mid`` (250 Hz - 4 kHz) and
    ``high`` (>= 4 kHz), from the sum over time of Hann-windowed power spectra (2048-sample
    frames, hop 512). They sum to 1 (to float precision; rounded to 4 decimals).
``transient``
    0 = sustained, 1 = percussive, from the energy ``e[n]`` and level ``L[n]`` (dB) of 10 ms
    blocks; it combines a crest measure and an onset measure:

    * crest: ``r[n] = e[n] / mean(e[n-15 .. n+15])`` is how far a block stands out of the
      310 ms around it; ``C = sum(e r) / sum(e)`` is its energy-weighted mean (1 for a steady
      sound, about 31 / k for a burst k blocks long once every 310 ms) and
      ``crest = clip(10 log10(C) / 6 dB, 0, 1)``;
    * onsets: of all level rises into sounding blocks (within 40 dB of the stem's loud level),
      ``steep`` is the fraction (in dB) made of jumps of 6 dB or more per 10 ms that land
      within 6 dB of the peak of the next 50 ms, i.e. attacks shorter than about 10 ms;
    * ``transient = crest + (1 - crest) * 0.6 * steep``.

    A steady tone or noise scores 0, a slow pad about 0.05, a plucked bass about 0.45, a
    click track 1.
``leadness``
    How much the stem carries the song, 0..1:
    ``0.45 prior + 0.30 loud + 0.25 mid``, times ``(0.6 + 0.4 coverage)``, where ``prior`` is the
    class's default leadness (:data:`gravity.vocab.CLASS_DEFAULTS`) blended towards ``other``'s
    by the class confidence, ``loud = 0.5 rank + 0.5 clip(1 + (lufs - loudest) / 20 LU, 0, 1)``
    with ``rank`` = 1 for the loudest stem and 0 for the quietest, ``mid`` = ``band_energy.mid``
    and ``coverage`` the fraction of the song in which the stem sounds. Silent stems get 0.
``class``
    From the file name when one of its words names a class (:func:`class_from_name`: kick, kik,
    bd, snare, hh, hihat, bass, 808, vox, bv, pad, keys, gtr, arp, fx, riser, amb, atmos ...;
    confidence 0.95, less for vague or conflicting names); otherwise from the features by a
    nearest-prototype classifier (:func:`classify_features`); ``other`` when nothing fits.

Tempo comes from the caller (``bpm=``) or :func:`gravity.analysis.tempo.estimate_tempo` on the stems'
onset envelopes. ``global.section_bars`` is the longest stem's length in bars (4/4) and
``global.energy`` maps the loudness of all stems summed from -30 LUFS (0) to -10 LUFS (1).

Bad files
---------
A folder of stems is analysed file by file. A file that cannot be used (missing, empty, not
audio, no frames, shorter than 10 ms, every sample NaN/Inf, sample rate below 8 kHz) is
*skipped*: its :class:`StemReport` has ``ok=False`` and an ``error`` naming the file and the
problem, and the request is built from the other stems. Only when no stem is usable does
:func:`analyze_stems` raise :class:`AnalysisError` (a ``ValueError``) listing every file's problem.
Usable stems with problems (silent, clipped, DC offset, very short, more than 2 channels,
resampled, partly NaN, extension not matching the content) carry ``warnings``. Files are read
by their content, never by their extension: a WAV named ``x.mp3`` is read as WAV (with a warning).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
import warnings
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import pyloudnorm
import soundfile as sf
from scipy import signal

from gravity.errors import GravityError
from gravity.schema import check_request
from gravity.analysis.tempo import HOP, N_FFT, TempoEstimate, band_powers, estimate_tempo, onset_envelope
from gravity.vocab import CLASS_DEFAULTS, SECTIONS, STEM_CLASSES, STYLES, TARGET_FORMATS, family_of

__all__ = [
    "AnalysisError",
    "StemFeatures",
    "StemReport",
    "AnalysisResult",
    "analyze_stems",
    "find_stems",
    "read_audio",
    "integrated_loudness",
    "compute_features",
    "class_from_name",
    "classify_features",
    "sanitize_id",
    "LAYOUT_NAMES",
    "ANALYSIS_RATE",
    "BAND_EDGES_HZ",
    "AUDIO_EXTENSIONS",
    "FEATURE_CLASSES",
]

log = logging.getLogger(__name__)

ANALYSIS_RATE = 48000  # Hz: every stem is resampled to this for the features
BAND_EDGES_HZ = (250.0, 4000.0)  # Hz: low < 250 <= mid < 4000 <= high
LOUDNESS_FLOOR_LUFS = -70.0  # BS.1770 absolute gate; silent stems are reported at this level
MIN_DURATION_S = 0.01  # shorter files are skipped
SHORT_DURATION_S = 0.4  # shorter files get a warning (less than one BS.1770 block)
MIN_SAMPLE_RATE = 8000  # Hz
CLIP_LEVEL = 0.999  # |x| at or above this, held for 3+ equal samples, counts as clipped
DC_LIMIT = 0.005  # |mean| above this (-46 dBFS) is reported as DC offset
MAX_STEMS = 256  # the schema's limit
LOW_TEMPO_CONFIDENCE = 0.2  # below this the tempo estimate gets a warning
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".bwf", ".rf64", ".w64", ".flac", ".aif", ".aiff", ".aifc", ".caf",
    ".ogg", ".oga", ".opus", ".mp3", ".au", ".snd",
})
# soundfile's format name -> extensions that name it (for the "extension lies" warning).
_EXTENSIONS_OF_FORMAT = {
    "WAV": {".wav", ".wave", ".bwf"}, "WAVEX": {".wav", ".wave", ".bwf"}, "RF64": {".rf64", ".wav"},
    "W64": {".w64", ".wav"}, "FLAC": {".flac"}, "AIFF": {".aif", ".aiff", ".aifc"},
    "CAF": {".caf"}, "OGG": {".ogg", ".oga", ".opus"}, "MP3": {".mp3"}, "AU": {".au", ".snd"},
}

ClassSource = Literal["name", "features", "fallback"]


class AnalysisError(GravityError, ValueError):
    """A stem (or every stem) could not be analysed; the message names the file(s) and why."""


# ============================================================ reading


def find_stems(folder: str | Path) -> list[Path]:
    """Audio files directly inside ``folder`` (not recursive), sorted by name.

    Parameters
    ----------
    folder : path
        A folder of stems.

    Returns
    -------
    list of Path
        Files whose extension is in :data:`AUDIO_EXTENSIONS`; hidden files are left out.
    """
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in AUDIO_EXTENSIONS)


def _looks_like_text(path: Path) -> bool:
    try:
        head = path.open("rb").read(512)
    except OSError:
        return False
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_audio(path: str | Path) -> tuple[np.ndarray, int, list[str]]:
    """Read an audio file by its content (libsndfile), whatever its extension.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    audio : np.ndarray [shape=(frames, channels), float64]
        Samples, full scale = 1; NaN/Inf samples replaced by 0.
    sample_rate : int
        Hz.
    warnings : list of str
        Problems that did not stop the read (extension not matching the content, NaN samples).

    Raises
    ------
    AnalysisError
        The file is missing, unreadable, empty, not audio, has no frames or only NaN/Inf.
    """
    p = Path(path)
    if not p.exists():
        raise AnalysisError(f"{p}: no such file")
    if p.is_dir():
        raise AnalysisError(f"{p}: is a folder, not an audio file")
    try:
        size = p.stat().st_size
        with p.open("rb"):
            pass
    except OSError as exc:
        raise AnalysisError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    if size == 0:
        raise AnalysisError(f"{p}: empty file (0 bytes)")
    try:
        with sf.SoundFile(str(p)) as f:
            fmt, subtype, sr, channels = f.format, f.subtype, int(f.samplerate), int(f.channels)
            audio = f.read(dtype="float64", always_2d=True)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        what = "a text file" if _looks_like_text(p) else "not an audio file libsndfile can read"
        detail = (str(exc).rsplit(": ", 1)[-1] if ": " in str(exc) else str(exc)).strip().rstrip(".")
        raise AnalysisError(f"{p}: {what} ({detail or type(exc).__name__}); "
                            "expected WAV, FLAC, AIFF, OGG or MP3") from None
    except MemoryError:
        raise AnalysisError(f"{p}: too large to load into memory") from None
    notes: list[str] = []
    ext = p.suffix.lower()
    if ext and ext not in _EXTENSIONS_OF_FORMAT.get(fmt, {ext}):
        notes.append(f"content is {fmt} but the name ends in {p.suffix}; read as {fmt} by content")
    if audio.shape[0] == 0:
        raise AnalysisError(f"{p}: contains no audio frames ({fmt} {subtype} header only)")
    if sr <= 0:
        raise AnalysisError(f"{p}: invalid sample rate {sr} Hz")
    bad = ~np.isfinite(audio)
    if bad.any():
        nbad = int(bad.sum())
        if nbad == audio.size:
            raise AnalysisError(f"{p}: every sample is NaN or infinite (a broken {subtype} file)")
        audio = np.where(bad, 0.0, audio)
        notes.append(f"{nbad} NaN/Inf samples ({100.0 * nbad / audio.size:.2g} %) were treated as 0")
    log.debug("read %s: %s %s, %d Hz, %d ch, %d frames", p, fmt, subtype, sr, channels, audio.shape[0])
    return audio, sr, notes


# ============================================================ loudness


def _gate(z: np.ndarray) -> float:
    """BS.1770-4 gating of summed weighted block powers ``z`` -> LUFS (-inf when all gated)."""
    with np.errstate(divide="ignore"):
        lj = -0.691 + 10.0 * np.log10(z)
    above = lj >= LOUDNESS_FLOOR_LUFS
    if not above.any():
        return -math.inf
    rel = -0.691 + 10.0 * math.log10(float(np.mean(z[above]))) - 10.0
    keep = above & (lj > rel)
    return -0.691 + 10.0 * math.log10(float(np.mean(z[keep]))) if keep.any() else -math.inf


# BS.1770 channel weights for 3+ channel files, by channel count, for the default layouts
# ffmpeg assumes (2.1, quad, 5.0, 5.1, 6.1, 7.1): LFE 0, surround/back 1.41, others 1.
_LAYOUT_WEIGHTS: dict[int, tuple[float, ...]] = {
    3: (1.0, 1.0, 0.0),                                  # FL FR LFE
    4: (1.0, 1.0, 1.41, 1.41),                           # FL FR BL BR
    5: (1.0, 1.0, 1.0, 1.41, 1.41),                      # FL FR FC BL BR
    6: (1.0, 1.0, 1.0, 0.0, 1.41, 1.41),                 # FL FR FC LFE BL BR
    7: (1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.41),           # FL FR FC LFE BC SL SR
    8: (1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.41, 1.41),     # FL FR FC LFE BL BR SL SR
}
LAYOUT_NAMES: dict[int, str] = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1",
                                7: "6.1", 8: "7.1"}


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4, EBU R128) in LUFS.

    Parameters
    ----------
    audio : np.ndarray [shape=(frames,) or (frames, channels)]
        Samples, full scale = 1, finite.
    sample_rate : int
        Hz (the K-weighting filters are designed for it).

    Returns
    -------
    float
        LUFS; ``-inf`` when no 400 ms block passes the -70 LUFS absolute gate. Audio shorter
        than 400 ms is zero-padded to one block.

    Notes
    -----
    Mono and stereo go straight through ``pyloudnorm.Meter.integrated_loudness``. For 3 or more
    channels the channel weights follow the default layout for the count (as ffmpeg assumes
    it: 2.1, quad, 5.0, 5.1, 6.1, 7.1; LFE weight 0, surround and back channels 1.41; every
    channel 1 beyond 8): pyloudnorm measures each channel's K-weighted 400 ms block powers and
    the weighted sum is gated per BS.1770-4 (absolute -70 LUFS, relative -10 LU).
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    block = int(math.ceil(0.4 * sample_rate))
    if x.shape[0] < block:
        x = np.concatenate([x, np.zeros((block - x.shape[0], x.shape[1]))])
    meter = pyloudnorm.Meter(sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if x.shape[1] <= 2:
            return float(meter.integrated_loudness(x if x.shape[1] > 1 else x[:, 0]))
        weights = _LAYOUT_WEIGHTS.get(x.shape[1], (1.0,) * x.shape[1])
        z: np.ndarray | None = None
        for ch, w in enumerate(weights):
            if w == 0.0:
                continue
            meter.integrated_loudness(x[:, ch])
            blocks = getattr(meter, "blockwise_loudness", None)  # pyloudnorm >= 0.2
            if blocks is None:
                log.warning("this pyloudnorm has no per-block loudness; measuring the first "
                            "%d of %d channels with its own weights", min(5, x.shape[1]), x.shape[1])
                return float(meter.integrated_loudness(x[:, :5]))
            zc = w * 10.0 ** ((np.asarray(blocks, dtype=float) + 0.691) / 10.0)
            z = zc if z is None else z + zc
    return _gate(np.asarray(z))


# ============================================================ features


@dataclass(frozen=True)
class StemFeatures:
    """What the analysis measured on a stem's mono 48 kHz signal.

    Attributes
    ----------
    duration_s : float
        Length in seconds.
    band : tuple of float
        (low, mid, high) energy fractions, edges :data:`BAND_EDGES_HZ`; sum 1.
    centroid_hz : float
        Spectral centroid of the long-term spectrum in Hz.
    transient : float
        0..1, see the module docstring.
    harmonicity : float
        0..1: energy-weighted mean, over every 4th STFT frame, of the highest normalised
        autocorrelation at a lag of 1-20 ms (a 50-1000 Hz period), corrected for the window
        (Boersma 1993): about 1 for a periodic tone, near 0 for noise.
    coverage : float
        0..1: fraction of 10 ms blocks within 40 dB of the stem's loud level (its 99th
        percentile block) and above -80 dBFS.
    rise : float
        0..1: how much the stem sweeps up: the mean of the correlations with time of the level
        (dB) and of the spectral centroid (octaves) over its active blocks, clipped at 0.
    """

    duration_s: float
    band: tuple[float, float, float]
    centroid_hz: float
    transient: float
    harmonicity: float
    coverage: float
    rise: float

    def vector(self) -> np.ndarray:
        """Feature vector for :func:`classify_features`: low, mid, high, transient, harmonicity,
        log-centroid (0 = 50 Hz, 1 = 10 kHz), coverage, rise."""
        cn = (math.log(max(self.centroid_hz, 50.0)) - math.log(50.0)) / (math.log(10000.0) - math.log(50.0))
        return np.array([*self.band, self.transient, self.harmonicity, min(cn, 1.2), self.coverage, self.rise])


_WINDOW = np.hanning(N_FFT + 2)[1:-1]  # symmetric Hann without its zero end points
_NFFT_PAD = 2 * N_FFT  # zero-padded FFT: linear (not circular) autocorrelation per frame
_WIN_AC = np.fft.irfft(np.abs(np.fft.rfft(_WINDOW, _NFFT_PAD)) ** 2, _NFFT_PAD)[:N_FFT]
_WIN_AC = _WIN_AC / _WIN_AC[0]
_HARM_STRIDE = 4  # harmonicity is measured on every 4th STFT frame


def _frames(x: np.ndarray, chunk: int = 512) -> Iterable[np.ndarray]:
    """Hann-windowed frames of N_FFT samples every HOP samples (centred), in chunks."""
    xp = np.concatenate([np.zeros(N_FFT // 2), x, np.zeros(N_FFT // 2)])
    n_frames = 1 + max(0, (len(xp) - N_FFT) // HOP)
    view = np.lib.stride_tricks.sliding_window_view(xp, N_FFT)[::HOP][:n_frames]
    for i in range(0, n_frames, chunk):
        yield view[i:i + chunk] * _WINDOW


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def compute_features(x: np.ndarray, sample_rate: int = ANALYSIS_RATE) -> tuple[StemFeatures, np.ndarray]:
    """Measure one mono signal.

    Parameters
    ----------
    x : np.ndarray [shape=(samples,)]
        Mono signal, full scale = 1, DC removed, at ``sample_rate``.
    sample_rate : int
        Hz (:func:`analyze_stems` always passes :data:`ANALYSIS_RATE`; the classifier's
        prototypes assume it).

    Returns
    -------
    features : StemFeatures
    onset_env : np.ndarray [shape=(frames,)]
        Onset envelope at ``sample_rate / HOP`` frames per second (for the tempo).
    """
    x = np.asarray(x, dtype=np.float64)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    band_of = np.searchsorted(np.array(BAND_EDGES_HZ), freqs, side="right")  # 0 low, 1 mid, 2 high
    band_masks = np.stack([band_of == b for b in range(3)], axis=1).astype(float)
    log_f = np.log2(np.maximum(freqs, 1.0))
    spec_sum = np.zeros(len(freqs))
    lag_lo, lag_hi = max(1, int(0.001 * sample_rate)), min(int(0.020 * sample_rate), N_FFT - 1)  # 1-20 ms
    onset_bands, frame_e, frame_cent, harm_e, harm = [], [], [], [], []
    for fr in _frames(x):
        spec = np.fft.rfft(fr, N_FFT)
        p = spec.real ** 2 + spec.imag ** 2
        spec_sum += p.sum(axis=0)
        onset_bands.append(band_powers(p, sample_rate))
        e = p.sum(axis=1)
        frame_e.append(e)
        with np.errstate(invalid="ignore", divide="ignore"):
            frame_cent.append(np.where(e > 0, (p @ log_f) / e, 0.0))
            # Harmonicity on every 4th frame (it is a long-term average): zero-padded FFT so the
            # autocorrelation is linear, not circular.
            sub = np.fft.rfft(fr[::_HARM_STRIDE], _NFFT_PAD)
            ps = sub.real ** 2 + sub.imag ** 2
            ac = np.fft.irfft(ps, _NFFT_PAD)[:, :lag_hi + 1]
            norm = ac[:, lag_lo:lag_hi + 1] / ac[:, :1] / _WIN_AC[lag_lo:lag_hi + 1]
        harm.append(np.clip(np.nan_to_num(norm.max(axis=1)), 0.0, 1.0))
        harm_e.append(e[::_HARM_STRIDE])
    e = np.concatenate(frame_e)
    onset = onset_envelope(np.concatenate(onset_bands), sample_rate)
    total = float(spec_sum.sum())
    band = tuple(float(v) for v in (spec_sum @ band_masks) / total) if total > 0 else (0.0, 0.0, 0.0)
    centroid = float(spec_sum @ freqs / total) if total > 0 else 0.0
    he = np.concatenate(harm_e)
    harmonicity = float(np.sum(np.concatenate(harm) * he) / he.sum()) if he.sum() > 0 else 0.0

    # 10 ms energy blocks: transient, coverage, rise.
    blk = int(0.01 * sample_rate)
    nb = max(1, len(x) // blk)
    xb = np.zeros(nb * blk)
    xb[: min(len(x), nb * blk)] = x[: nb * blk]
    eb = np.mean(xb.reshape(nb, blk) ** 2, axis=1)
    c = np.concatenate(([0.0], np.cumsum(eb)))
    i = np.arange(nb)
    lo, hi = np.clip(i - 15, 0, nb), np.clip(i + 16, 0, nb)
    local = (c[hi] - c[lo]) / (hi - lo)
    level = 10.0 * np.log10(eb + 1e-20)  # dB re full scale, floored at -200 dB
    loud = float(np.percentile(level, 99))
    active = (level > loud - 40.0) & (level > -80.0)
    if eb.sum() > 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(local > 0, eb / local, 0.0)
        crest = float(np.sum(eb * r) / eb.sum())
        crest_part = float(np.clip(10.0 * math.log10(max(crest, 1e-12)) / 6.0, 0.0, 1.0))
        floored = np.maximum(level, loud - 60.0)
        rises = np.where(active[1:], np.maximum(np.diff(floored), 0.0), 0.0)
        # The peak of the next 50 ms (this block and 4 more) after each rise.
        ahead = np.lib.stride_tricks.sliding_window_view(
            np.concatenate([floored, np.full(4, -np.inf)]), 5).max(axis=1)[1:]
        steep = (rises >= 6.0) & (floored[1:] >= ahead - 6.0)
        steep_part = float(rises[steep].sum() / rises.sum()) if rises.sum() > 0 else 0.0
        transient = float(np.clip(crest_part + (1.0 - crest_part) * 0.6 * steep_part, 0.0, 1.0))
        log.debug("transient: crest %.2f, steep %.2f", crest_part, steep_part)
    else:
        transient = crest_part = steep_part = 0.0
    coverage = float(active.mean()) if eb.any() else 0.0
    t = (np.arange(nb) + 0.5) * blk / sample_rate
    level_rise = _corr(t[active], level[active])
    cent = np.concatenate(frame_cent)
    f_act = (e > 0) & (e > 1e-4 * e.max())  # frames within 40 dB of the loudest
    cent_rise = _corr(np.arange(len(cent))[f_act], cent[f_act])
    rise = float(np.clip(0.5 * (level_rise + cent_rise), 0.0, 1.0))
    feats = StemFeatures(
        duration_s=len(x) / sample_rate, band=band,  # type: ignore[arg-type]
        centroid_hz=centroid, transient=transient, harmonicity=harmonicity,
        coverage=coverage, rise=rise,
    )
    return feats, onset


# ============================================================ classes from names


def _tokens(name: str) -> list[str]:
    """``"01_LeadVox-dbl"`` -> ``["01", "lead", "vox", "dbl"]``."""
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", s)
    s = re.sub(r"([A-Za-z])(\d)", r"\1 \2", s)
    s = re.sub(r"(\d)([A-Za-z])", r"\1 \2", s)
    return [t for t in re.split(r"[^a-z0-9]+", s.lower()) if t]


# Word groups. A name hits a group when one of its words (tokens) is in it; words of 3+ letters
# also hit inside longer words ("kickdrum", "hihats") when no whole word matched.
_WORDS: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "kick": "kick kicks kik kck bd kickdrum bassdrum",
    "snare": "snare snares snr sn sd",
    "clap": "clap claps clp handclap handclaps",
    "hat": "hat hats hh hihat hihats hihat hathi",
    "hi": "hi",
    "cymbal": "cymbal cymbals cym crash ride splash china",
    "tom": "tom toms floortom racktom",
    "perc": ("perc percs percussion shaker shakers shk tamb tambourine conga congas bongo bongos "
             "cowbell rim rimshot clave claves triangle cabasa guiro woodblock"),
    "drums": "drums drum drumloop loop loops breakbeat breakbeats beat beats kit drumkit",
    "overhead": "oh ohs overhead overheads",
    "room": "room rooms roommic",
    "bass": "bass bs bassline basses",
    "sub": "sub subs subbass 808 808s",
    "vox": ("vox vocal vocals voc vocs vx voice voices singer sing lv leadvox leadvocal ldvox ldv "
            "vocalist topline"),
    "backing": ("bv bvs bgv bgvs backing backings bvox bgvox harmony harmonies harm double doubles "
                "dbl adlib adlibs"),
    "choir": "choir choirs chorale",
    "spoken": ("spoken speech dialog dialogue dx narration narrator voiceover vo podcast talk host "
               "interview"),
    "lead": "lead ld",
    "solo": "solo",
    "pad": "pad pads",
    "keys": "keys key kb keyboard keyboards rhodes wurli wurlitzer epiano ep clav clavinet",
    "piano": "piano pianos pno pf grand upright",
    "organ": "organ organs org hammond b3",
    "guitar": "gtr gtrs guitar guitars gt egtr elecgtr",
    "acoustic": "acoustic acou ac agtr acgtr",
    "strings": ("strings string str strs violin violins viola violas cello cellos vln vla vc vlc "
                "orchestra orch"),
    "brass": "brass horn horns trumpet trumpets tpt trombone trombones tbn tuba flugelhorn",
    "woodwind": ("woodwind woodwinds winds flute flutes fl clarinet clarinets cl oboe bassoon sax "
                 "saxophone saxes piccolo"),
    "synth": "synth synths syn saw supersaw stab stabs",
    "arp": "arp arps arpeggio arpeggiator seq sequence sequencer",
    "pluck": "pluck plucks plk",
    "bell": ("bell bells glock glockenspiel celesta celeste chime chimes mallet mallets marimba "
             "vibes vibraphone xylophone musicbox"),
    "fxword": "fx sfx effect effects impact impacts downlifter whoosh swoosh transition chop chops vocoder",
    "riser": "riser risers rise uplifter sweep sweeps upsweep buildup swell",
    "ambience": "amb ambience ambiance ambient ambi roomtone environment",
    "atmos": "atmos atmo atmosphere atmospheres texture textures drone drones soundscape",
    "foley": "foley",
    "noise": "noise noises hiss vinyl crackle static",
}.items()}

# (groups that must all be hit, class, confidence), first match wins.
_NAME_RULES: tuple[tuple[tuple[str, ...], str, float], ...] = (
    (("vox", "fxword"), "vocal_fx", 0.95),
    (("backing",), "backing_vocal", 0.95),
    (("choir",), "choir", 0.95),
    (("spoken",), "spoken", 0.9),
    (("kick",), "kick", 0.95),
    (("bass", "drums"), "kick", 0.8),
    (("snare",), "snare", 0.95),
    (("clap",), "clap", 0.95),
    (("hat",), "hihat", 0.95),
    (("cymbal",), "cymbal", 0.95),
    (("tom",), "tom", 0.95),
    (("perc",), "percussion", 0.95),
    (("overhead",), "overheads", 0.9),
    (("room",), "room_mic", 0.8),
    (("lead", "guitar"), "lead_guitar", 0.95),
    (("solo", "guitar"), "lead_guitar", 0.9),
    (("acoustic", "guitar"), "acoustic_guitar", 0.95),
    (("guitar",), "guitar", 0.95),
    (("lead", "synth"), "synth_lead", 0.95),
    (("bass", "synth"), "bass_synth", 0.95),
    (("sub",), "sub", 0.9),
    (("bass",), "bass", 0.95),
    (("vox",), "lead_vocal", 0.95),
    (("pad",), "pad", 0.95),
    (("piano",), "piano", 0.95),
    (("keys",), "keys", 0.9),
    (("organ",), "organ", 0.95),
    (("strings",), "strings", 0.95),
    (("brass",), "brass", 0.95),
    (("woodwind",), "woodwind", 0.95),
    (("arp",), "arp", 0.95),
    (("pluck",), "pluck", 0.95),
    (("bell",), "bell", 0.95),
    (("synth",), "synth", 0.9),
    (("riser",), "riser", 0.95),
    (("fxword",), "fx", 0.9),
    (("ambience",), "ambience", 0.9),
    (("atmos",), "atmosphere", 0.9),
    (("foley",), "foley", 0.95),
    (("noise",), "noise", 0.85),
    (("drums",), "drum_loop", 0.8),
    (("acoustic",), "acoustic_guitar", 0.7),
    (("lead",), "lead_vocal", 0.6),
    (("solo",), "lead_guitar", 0.5),
)


def _groups_hit(tokens: Sequence[str]) -> set[str]:
    hit = {g for g, words in _WORDS.items() for t in tokens if t in words}
    if "hi" in hit and "hat" not in hit:  # "hi hat"
        hit.discard("hi")
        if any(t in ("hat", "hats") for t in tokens):
            hit.add("hat")
    hit.discard("hi")
    if hit:
        return hit
    # No whole word: look for keywords (3+ letters) inside words, longest first, so that
    # "bassoon" is woodwind and not bass.
    joined = "".join(tokens)
    spans: list[tuple[int, int, str]] = []
    for g, words in _WORDS.items():
        for w in words:
            if len(w) >= 3 and not w.isdigit() or w == "808":
                for m in re.finditer(re.escape(w), joined):
                    spans.append((m.start(), m.end(), g))
    spans.sort(key=lambda s: (-(s[1] - s[0]), s[0]))
    taken: list[tuple[int, int]] = []
    for a, b, g in spans:
        if all(b <= ta or a >= tb for ta, tb in taken):
            taken.append((a, b))
            hit.add(g)
    hit.discard("hi")
    return hit


def class_from_name(name: str) -> tuple[str, float] | None:
    """The stem class a file name names, with a confidence, or ``None``.

    Parameters
    ----------
    name : str
        File name or stem (``"02 Kick In.wav"``, ``"LeadVox_dbl"``, ``"808"``).

    Returns
    -------
    (str, float) or None
        Class (one of :data:`gravity.vocab.STEM_CLASSES`) and confidence 0..1: 0.95 for a clear
        word, less for vague ones (``lead`` alone -> lead_vocal 0.6) and, times 0.8 each, when
        the name also names another class (``kick_snare``) or the word was only found inside a
        longer one (``leadsynth``).
    """
    stem = Path(name).stem if Path(name).suffix.lower() in AUDIO_EXTENSIONS else name
    tokens = _tokens(stem)
    exact = bool({g for g, words in _WORDS.items() for t in tokens if t in words} - {"hi"})
    hit = _groups_hit(tokens)
    if not hit:
        return None
    matched = [(cls, conf, need) for need, cls, conf in _NAME_RULES if all(g in hit for g in need)]
    if not matched:
        return None
    cls, conf, need = matched[0]
    # Another class whose words are not part of the winner's ("kick_snare") makes it vaguer.
    if any(c != cls and not set(n) <= set(need) for c, _, n in matched[1:]):
        conf *= 0.8
    if not exact:
        conf *= 0.8
    return cls, round(conf, 3)


# ============================================================ classes from features

# Prototype feature vectors (see StemFeatures.vector): low, mid, high, transient, harmonicity,
# log-centroid, coverage, rise. Set by hand from typical material (and checked on the example
# song); the classifier needs no training data.
_PROTOTYPES: dict[str, tuple[float, ...]] = {
    "kick":       (0.85, 0.12, 0.03, 0.85, 0.80, 0.10, 0.70, 0.0),
    "snare":      (0.15, 0.45, 0.40, 0.90, 0.25, 0.70, 0.40, 0.0),
    "hihat":      (0.00, 0.05, 0.95, 0.90, 0.10, 0.95, 0.85, 0.0),
    "percussion": (0.03, 0.40, 0.57, 0.80, 0.20, 0.75, 0.60, 0.0),
    "bass":       (0.80, 0.19, 0.01, 0.40, 0.90, 0.20, 0.95, 0.0),
    "sub":        (0.97, 0.03, 0.00, 0.15, 0.95, 0.05, 0.90, 0.0),
    "pad":        (0.10, 0.80, 0.10, 0.03, 0.70, 0.45, 1.00, 0.0),
    "lead_vocal": (0.03, 0.90, 0.07, 0.35, 0.90, 0.50, 0.75, 0.0),
    "arp":        (0.02, 0.80, 0.18, 0.70, 0.80, 0.60, 0.80, 0.0),
    "riser":      (0.05, 0.45, 0.50, 0.05, 0.10, 0.70, 0.30, 0.8),
    "atmosphere": (0.15, 0.50, 0.35, 0.05, 0.20, 0.60, 1.00, 0.0),
}
FEATURE_CLASSES: tuple[str, ...] = tuple(_PROTOTYPES)
# Per-feature scale: a difference of one scale unit costs 1 in the squared distance.
_SCALES = np.array([0.2, 0.2, 0.2, 0.2, 0.25, 0.15, 0.35, 0.3])
_OTHER_DISTANCE = 12.0  # squared distance beyond which nothing fits: "other"


def classify_features(features: StemFeatures) -> tuple[str, float, dict[str, float]]:
    """Class of a stem from its features alone (nearest prototype).

    Parameters
    ----------
    features : StemFeatures

    Returns
    -------
    cls : str
        One of :data:`FEATURE_CLASSES`, or ``"other"`` when even the nearest prototype is far.
    confidence : float
        0..1: the softmax weight ``exp(-d2 / 2)`` of the winner among all prototypes, times
        ``min(1, duration / 2 s)`` (short stems say little).
    scores : dict of str to float
        Softmax weight of every prototype class.
    """
    v = features.vector()
    d2 = {c: float(np.sum(((v - np.array(p)) / _SCALES) ** 2)) for c, p in _PROTOTYPES.items()}
    m = min(d2.values())
    w = {c: math.exp(-(d - m) / 2.0) for c, d in d2.items()}
    tot = sum(w.values())
    scores = {c: x / tot for c, x in w.items()}
    best = min(d2, key=d2.__getitem__)
    conf = scores[best] * min(1.0, features.duration_s / 2.0)
    if m > _OTHER_DISTANCE:
        return "other", round(min(conf, 0.3), 3), scores
    return best, round(conf, 3), scores


# ============================================================ reports


@dataclass
class StemReport:
    """Everything the analysis found out about one input file.

    Attributes
    ----------
    path : str
        The file as given.
    ok : bool
        False when the file was skipped; ``error`` then says why.
    error : str
        One line naming the file and the problem ("" when ok).
    id : str
        Stem id in the request ("" when skipped).
    warnings : list of str
        Problems that did not stop the analysis (silent, clipped, DC offset ...).
    sample_rate, channels, frames : int
        As read (Hz, count, samples per channel).
    duration_s : float
        Seconds.
    stem_class : str
        Class put in the request.
    class_confidence : float
        0..1.
    class_source : {"name", "features", "fallback"}
        Where the class came from.
    feature_class : str
        What the features alone say (also when the name decided).
    feature_confidence : float
        0..1, confidence of ``feature_class``.
    lufs : float
        Integrated loudness in LUFS (-70 when silent).
    peak_dbfs : float
        Sample peak in dBFS (-inf when silent).
    transient, leadness : float
        0..1.
    band_energy : dict of str to float
        ``low``/``mid``/``high`` fractions summing to 1.
    features : StemFeatures or None
    """

    path: str
    ok: bool = True
    error: str = ""
    id: str = ""
    warnings: list[str] = field(default_factory=list)
    sample_rate: int = 0
    channels: int = 0
    frames: int = 0
    duration_s: float = 0.0
    stem_class: str = "other"
    class_confidence: float = 0.0
    class_source: ClassSource = "fallback"
    feature_class: str = "other"
    feature_confidence: float = 0.0
    lufs: float = LOUDNESS_FLOOR_LUFS
    peak_dbfs: float = -math.inf
    transient: float = 0.0
    leadness: float = 0.0
    band_energy: dict[str, float] = field(default_factory=dict)
    features: StemFeatures | None = None
    silent: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (non-finite numbers become ``None``)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d

    def format(self) -> str:
        """One human-readable line (``path: error`` for skipped files)."""
        if not self.ok:
            return f"SKIPPED {self.error}"
        be = self.band_energy
        line = (f"{self.path} -> {self.id}: {self.stem_class} ({self.class_source} "
                f"{self.class_confidence:.2f}), {self.lufs:.1f} LUFS, transient {self.transient:.2f}, "
                f"bands {be.get('low', 0):.2f}/{be.get('mid', 0):.2f}/{be.get('high', 0):.2f}, "
                f"leadness {self.leadness:.2f}")
        return line + "".join(f"\n    warning: {w}" for w in self.warnings)


@dataclass(frozen=True)
class AnalysisResult:
    """The outcome of :func:`analyze_stems`.

    Attributes
    ----------
    request : dict
        Request document; validates with :func:`gravity.schema.check_request`.
    stems : tuple of StemReport
        One per input file, in input order (folders expanded), skipped ones included.
    tempo : TempoEstimate
        The tempo used (``source`` user / estimated / default) and its confidence.
    warnings : tuple of str
        Problems of the whole run (unmatched hints, renamed duplicate ids ...).
    mix_lufs : float
        Integrated loudness of all usable stems summed, LUFS.
    """

    request: dict[str, Any]
    stems: tuple[StemReport, ...]
    tempo: TempoEstimate
    warnings: tuple[str, ...] = ()
    mix_lufs: float = LOUDNESS_FLOOR_LUFS

    @property
    def analysed(self) -> tuple[StemReport, ...]:
        """Reports of the stems in the request."""
        return tuple(s for s in self.stems if s.ok)

    @property
    def skipped(self) -> tuple[StemReport, ...]:
        """Reports of the files left out (``error`` says why)."""
        return tuple(s for s in self.stems if not s.ok)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report: request, tempo, per-stem reports and warnings."""
        return {
            "request": self.request,
            "tempo": {"bpm": self.tempo.bpm, "confidence": self.tempo.confidence,
                      "source": self.tempo.source,
                      "candidates": [list(c) for c in self.tempo.candidates]},
            "mix_lufs": self.mix_lufs if math.isfinite(self.mix_lufs) else None,
            "stems": [s.to_dict() for s in self.stems],
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """Human-readable lines: tempo, one line per stem, skipped files and warnings."""
        t = self.tempo
        lines = [f"tempo {t.bpm:g} bpm ({t.source}, confidence {t.confidence:.2f}); "
                 f"{len(self.analysed)} stem(s) analysed, {len(self.skipped)} skipped"]
        lines += [s.format() for s in self.stems]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ============================================================ ids


def sanitize_id(name: str) -> str:
    """A stem id matching ``^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$`` made from a file stem.

    Accents are dropped (``Vöx`` -> ``Vox``), runs of other characters become ``_``, leading
    and trailing ``_ . -`` are stripped, the result is cut to 64 characters; ``stem`` when
    nothing is left.
    """
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^A-Za-z0-9_.\-]+", "_", s).strip("_.-")[:64]
    return s or "stem"


def _unique_id(base: str, used: set[str]) -> str:
    if base not in used:
        return base
    k = 2
    while True:
        suffix = f"_{k}"
        cand = base[: 64 - len(suffix)] + suffix
        if cand not in used:
            return cand
        k += 1


# ============================================================ one stem


def _resample(x: np.ndarray, sr: int) -> np.ndarray:
    """Mono ``x`` from ``sr`` Hz to :data:`ANALYSIS_RATE`."""
    ratio = Fraction(ANALYSIS_RATE, sr)
    if ratio.numerator <= 1000 and ratio.denominator <= 1000:
        return signal.resample_poly(x, ratio.numerator, ratio.denominator)
    n = max(1, int(round(len(x) * ANALYSIS_RATE / sr)))
    return signal.resample(x, n)


def _clipped_count(audio: np.ndarray) -> int:
    """Samples beyond full scale, or at >= CLIP_LEVEL in runs of 3+ equal values."""
    a = np.abs(audio)
    over = a > 1.0
    hot = a >= CLIP_LEVEL
    if audio.shape[0] >= 3:
        run = (hot[:-2] & hot[1:-1] & hot[2:]
               & (audio[1:-1] == audio[:-2]) & (audio[2:] == audio[1:-1]))
        flat = np.zeros_like(hot)
        flat[:-2] |= run
        flat[1:-1] |= run
        flat[2:] |= run
        over |= flat
    return int(over.sum())


@dataclass
class _Measured:
    report: StemReport
    mono: np.ndarray
    onset: np.ndarray


def _analyse_file(path: Path) -> _Measured:
    audio, sr, notes = read_audio(path)
    rep = StemReport(path=str(path))
    rep.warnings.extend(notes)
    frames, channels = audio.shape
    rep.sample_rate, rep.channels, rep.frames = sr, channels, frames
    rep.duration_s = frames / sr
    if sr < MIN_SAMPLE_RATE:
        raise AnalysisError(f"{path}: sample rate {sr} Hz is too low (need at least {MIN_SAMPLE_RATE} Hz)")
    if rep.duration_s < MIN_DURATION_S:
        raise AnalysisError(f"{path}: too short to analyse ({frames} sample{'s' if frames != 1 else ''}"
                            f" = {1e3 * rep.duration_s:.2g} ms; need at least {1e3 * MIN_DURATION_S:g} ms)")
    if rep.duration_s < SHORT_DURATION_S:
        rep.warnings.append(f"very short ({1e3 * rep.duration_s:.0f} ms, less than one 400 ms BS.1770 "
                            "block): loudness is that of the zero-padded block; descriptors are rough")
    if channels > 2:
        layout = LAYOUT_NAMES.get(channels)
        rep.warnings.append(f"{channels} channels: descriptors from the mono downmix (channel mean); "
                            + (f"loudness assumes the {layout} layout" if layout else
                               "loudness weights every channel 1 (layout unknown)"))
    peak = float(np.max(np.abs(audio)))
    rep.peak_dbfs = 20.0 * math.log10(peak) if peak > 0 else -math.inf
    nclip = _clipped_count(audio)
    if nclip:
        rep.warnings.append(f"clipped: {nclip} sample(s) at or beyond full scale "
                            f"({100.0 * nclip / audio.size:.2g} %), peak {rep.peak_dbfs:+.2f} dBFS")
    dc = audio.mean(axis=0)
    worst = int(np.argmax(np.abs(dc)))
    if abs(dc[worst]) > DC_LIMIT:
        where = f" on channel {worst + 1}" if channels > 1 else ""
        rep.warnings.append(f"DC offset {dc[worst]:+.4f} ({20 * math.log10(abs(dc[worst])):.0f} dBFS)"
                            f"{where}; removed before analysis")
    lufs = integrated_loudness(audio, sr)
    centred = audio - dc
    mono = centred.mean(axis=1)
    if channels > 1:
        # Uncorrelated channels lose 10 log10(channels) dB in the mean; anti-phase ones far more.
        e_ch = float(np.mean(centred ** 2)) / channels
        e_mono = float(np.mean(mono ** 2))
        if e_ch > 0 and e_mono < 0.25 * e_ch:
            loss = 10 * math.log10(max(e_mono, 1e-30) / e_ch)
            msg = (f"channels cancel in the mono downmix ({loss:.0f} dB below uncorrelated "
                   "channels): check their polarity")
            if e_mono < 0.01 * e_ch:
                k = int(np.argmax(np.mean(centred ** 2, axis=0)))
                mono = centred[:, k].copy()
                msg += f"; descriptors from channel {k + 1}"
            rep.warnings.append(msg)
    if sr != ANALYSIS_RATE:
        mono = _resample(mono, sr)
        rep.warnings.append(f"resampled {sr} Hz -> {ANALYSIS_RATE} Hz for analysis (loudness measured at {sr} Hz)"
                            + (f"; nothing above {sr / 2000:g} kHz, so band_energy.high is understated"
                               if sr < 32000 else ""))
    if peak == 0.0 or not math.isfinite(lufs):
        rep.silent = True
        rep.warnings.append("silent: every sample is zero" if peak == 0.0 else
                            f"silent: nothing above the -70 LUFS gate (peak {rep.peak_dbfs:.0f} dBFS)")
        rep.lufs = LOUDNESS_FLOOR_LUFS
    else:
        rep.lufs = max(lufs, LOUDNESS_FLOOR_LUFS)
    feats, onset = compute_features(mono, ANALYSIS_RATE)
    rep.features = feats
    if not rep.silent:
        rep.transient = round(feats.transient, 4)
    return _Measured(rep, mono, onset)


def _band_dict(band: Sequence[float]) -> dict[str, float]:
    b = np.clip(np.asarray(band, dtype=float), 0.0, None)
    b = b / b.sum() if b.sum() > 0 else np.array([0.2, 0.55, 0.25])
    r = np.round(b, 4)
    r[int(np.argmax(r))] += round(1.0 - float(r.sum()), 4)  # make the rounded values sum to 1
    return {"low": float(r[0]), "mid": float(r[1]), "high": float(r[2])}


def _classify(rep: StemReport, name: str) -> None:
    feats = rep.features
    if feats is not None and not rep.silent:
        fcls, fconf, _ = classify_features(feats)
        rep.feature_class, rep.feature_confidence = fcls, fconf
    named = class_from_name(name)
    if named is not None:
        rep.stem_class, rep.class_confidence = named
        rep.class_source = "name"
        if (rep.feature_confidence >= 0.8
                and family_of(rep.feature_class) not in (family_of(rep.stem_class), "other")):
            rep.warnings.append(f"the name says {rep.stem_class} but it sounds like "
                                f"{rep.feature_class} ({rep.feature_confidence:.2f}); kept the name's class")
    elif rep.feature_class != "other" and rep.feature_confidence > 0.0:
        rep.stem_class, rep.class_confidence = rep.feature_class, rep.feature_confidence
        rep.class_source = "features"
    else:
        rep.stem_class, rep.class_confidence, rep.class_source = "other", 0.0, "fallback"
    if rep.silent or feats is None:
        rep.band_energy = _band_dict(CLASS_DEFAULTS[rep.stem_class].band)
    else:
        rep.band_energy = _band_dict(feats.band)


def _leadness(reps: Sequence[StemReport]) -> None:
    live = [r for r in reps if not r.silent]
    if not live:
        return
    loudest = max(r.lufs for r in live)
    order = sorted(live, key=lambda r: -r.lufs)
    n = len(live)
    other = CLASS_DEFAULTS["other"].leadness
    for rank, r in enumerate(order):
        rank_score = 1.0 if n == 1 else (n - 1 - rank) / (n - 1)
        loud = 0.5 * rank_score + 0.5 * float(np.clip(1.0 + (r.lufs - loudest) / 20.0, 0.0, 1.0))
        prior = r.class_confidence * CLASS_DEFAULTS[r.stem_class].leadness + (1 - r.class_confidence) * other
        coverage = r.features.coverage if r.features is not None else 1.0
        value = (0.45 * prior + 0.30 * loud + 0.25 * r.band_energy["mid"]) * (0.6 + 0.4 * coverage)
        r.leadness = round(float(np.clip(value, 0.0, 1.0)), 4)


def _expand(paths: Iterable[str | Path], notes: list[str]) -> list[tuple[Path, str]]:
    """Paths in order with folders expanded; a folder with no audio yields an error entry.
    Other visible files in a folder are named in ``notes``."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = find_stems(p)
            if not found:
                out.append((p, f"{p}: folder contains no audio files "
                               f"(looked for {', '.join(sorted(AUDIO_EXTENSIONS))})"))
            others = sorted(q.name for q in p.iterdir()
                            if q.is_file() and not q.name.startswith(".") and q not in found)
            if others and found:
                shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
                notes.append(f"{p}: ignored {len(others)} file(s) without an audio extension: {shown}")
            out.extend((f, "") for f in found)
        else:
            out.append((p, ""))
    return out


def _check_options(target_format: str, max_objects: int | None, style: str, section: str,
                   bpm: float | None) -> None:
    import difflib

    for value, allowed, what in ((target_format, TARGET_FORMATS, "target_format"),
                                 (style, STYLES, "style"), (section, SECTIONS, "section")):
        if value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=2)
            hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"expected one of {list(allowed)}"
            raise AnalysisError(f"{what}={value!r} is not allowed; {hint}")
    if max_objects is not None and (isinstance(max_objects, bool) or not isinstance(max_objects, int)
                                    or not 1 <= max_objects <= 128):
        raise AnalysisError(f"max_objects={max_objects!r} must be an integer within 1..128")
    if bpm is not None and (not isinstance(bpm, (int, float)) or not math.isfinite(bpm) or not 20 <= bpm <= 300):
        raise AnalysisError(f"bpm={bpm!r} must be a number within 20..300")


def analyze_stems(
    paths: Iterable[str | Path],
    *,
    bpm: float | None = None,
    target_format: str = "binaural",
    max_objects: int | None = None,
    style: str = "pop",
    section: str = "verse",
    hints: Mapping[str, str] | None = None,
) -> AnalysisResult:
    """Analyse stems and build a request for them.

    Parameters
    ----------
    paths : iterable of path
        Audio files and/or folders of them (see :func:`find_stems`), read by content.
    bpm : float, optional
        Tempo in beats per minute (20..300); estimated from the stems when ``None``.
    target_format : str
        Request ``target_format`` (see :data:`gravity.vocab.TARGET_FORMATS`).
    max_objects : int, optional
        Object budget 1..128; default: the number of stems (at most 128).
    style, section : str
        Request ``style`` and ``section``.
    hints : mapping of str to str, optional
        Placement hints. A key matches a stem id, a file name/stem (case-insensitive) or a
        class (then every stem of that class gets it); unmatched keys are reported in
        ``warnings``. Hints are cut to 500 characters.

    Returns
    -------
    AnalysisResult
        Request + per-file reports; unusable files are skipped and reported.

    Raises
    ------
    AnalysisError
        No usable stem (the message lists every file's problem), more than 256 stems, or an
        invalid option.
    """
    _check_options(target_format, max_objects, style, section, bpm)
    run_warnings: list[str] = []
    entries = _expand(paths, run_warnings)
    if not entries:
        raise AnalysisError("no stems given")
    reports: list[StemReport] = []
    measured: list[_Measured] = []
    mix = np.zeros(0)
    for path, pre_error in entries:
        if pre_error:
            reports.append(StemReport(path=str(path), ok=False, error=pre_error))
            continue
        try:
            m = _analyse_file(path)
        except AnalysisError as exc:
            reports.append(StemReport(path=str(path), ok=False, error=str(exc)))
            log.warning("skipped %s", exc)
            continue
        except Exception as exc:  # never a traceback for one bad file
            log.debug("analysis of %s failed", path, exc_info=True)
            reports.append(StemReport(path=str(path), ok=False,
                                      error=f"{path}: could not be analysed ({type(exc).__name__}: {exc})"))
            log.warning("skipped %s: %s", path, exc)
            continue
        reports.append(m.report)
        measured.append(m)
        if len(m.mono) > len(mix):
            mix = np.concatenate([mix, np.zeros(len(m.mono) - len(mix))])
        mix[: len(m.mono)] += m.mono
        m.mono = np.zeros(0)  # the running mix holds what we need; free the memory
    if not measured:
        raise AnalysisError("no usable stems:\n" + "\n".join(f"  {r.error}" for r in reports))
    if len(measured) > MAX_STEMS:
        raise AnalysisError(f"{len(measured)} stems; a request holds at most {MAX_STEMS}")

    used: set[str] = set()
    for m in measured:
        rep = m.report
        base = sanitize_id(Path(rep.path).stem)
        rep.id = _unique_id(base, used)
        used.add(rep.id)
        if rep.id != base:
            run_warnings.append(f"{rep.path}: id {base!r} already taken, using {rep.id!r}")
        _classify(rep, Path(rep.path).name)
    live = [m.report for m in measured]
    _leadness(live)

    if bpm is not None:
        tempo = TempoEstimate(float(bpm), 1.0, "user")
    else:
        tempo = estimate_tempo([m.onset for m in measured if not m.report.silent], ANALYSIS_RATE)
        if tempo.source == "default":
            run_warnings.append(f"tempo could not be estimated; using {tempo.bpm:g} bpm (give bpm= to set it)")
        elif tempo.confidence < LOW_TEMPO_CONFIDENCE:
            run_warnings.append(f"tempo {tempo.bpm:g} bpm is a weak estimate (confidence "
                                f"{tempo.confidence:.2f}); give bpm= if you know it")
    mix_lufs = integrated_loudness(mix, ANALYSIS_RATE) if mix.any() else -math.inf
    energy = float(np.clip((mix_lufs + 30.0) / 20.0, 0.0, 1.0)) if math.isfinite(mix_lufs) else 0.0
    duration = max(r.duration_s for r in live)
    bars = int(np.clip(round(duration * tempo.bpm / 60.0 / 4.0), 1, 512))

    stem_hints: dict[str, str] = {}
    for key, text in (hints or {}).items():
        text = str(text)
        if len(text) > 500:
            run_warnings.append(f"hint for {key!r} cut to 500 characters")
            text = text[:500]
        k = str(key).lower()
        targets = [r for r in live if r.id.lower() == k or Path(r.path).stem.lower() == k
                   or Path(r.path).name.lower() == k]
        if not targets and k in STEM_CLASSES:
            targets = [r for r in live if r.stem_class == k]
        if not targets:
            run_warnings.append(f"hint {key!r} matches no stem id, file name or class; "
                                f"stem ids: {[r.id for r in live]}")
        for r in targets:
            stem_hints[r.id] = text

    stems_doc = []
    for r in live:
        d: dict[str, Any] = {
            "id": r.id, "class": r.stem_class, "lufs": round(float(np.clip(r.lufs, -120.0, 6.0)), 2),
            "transient": r.transient, "band_energy": r.band_energy, "leadness": r.leadness,
        }
        if r.id in stem_hints:
            d["hint"] = stem_hints[r.id]
        stems_doc.append(d)
    request = {
        "target_format": target_format,
        "max_objects": max_objects if max_objects is not None else min(len(live), 128),
        "style": style,
        "section": section,
        "global": {"bpm": round(float(tempo.bpm), 2), "energy": round(energy, 3),
                   "time_signature": "4/4", "section_bars": bars},
        "stems": stems_doc,
    }
    issues = check_request(request)
    if issues:  # a bug of ours, not the user's: say so plainly
        raise AnalysisError("analysis built an invalid request (please report this):\n"
                            + "\n".join(i.format() for i in issues))
    result = AnalysisResult(request=request, stems=tuple(reports), tempo=tempo,
                            warnings=tuple(run_warnings), mix_lufs=mix_lufs)
    log.info("analysed %d stem(s), skipped %d; tempo %.2f bpm (%s, %.2f)", len(live),
             len(reports) - len(live), tempo.bpm, tempo.source, tempo.confidence)
    return result
