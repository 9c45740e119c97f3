"""Stem analysis: audio files in, request descriptors out.

:func:`analyze_stems` reads each stem, measures it and returns an :class:`AnalysisResult`: a
request document (valid against ``request.schema.json``) plus a :class:`StemReport` per file.

Descriptors (one mono analysis signal per stem: the channel mean, DC removed, at 48 kHz)
--------------------------------------------------------------------------------------------
``lufs``
    Integrated loudness, ITU-R BS.1770-4 / EBU R128, by ``pyloudnorm`` on the file's own
    channels at its own sample rate (so it matches ``ffmpeg -af ebur128``). Files with 3 or more
    channels are weighted for the default layout of their channel count, as ffmpeg does
    (see :func:`~gravity.analysis.loudness.integrated_loudness`). A stem with no 400 ms block above
    the -70 LUFS absolute gate is *silent* and reported as -70.0 LUFS (what ffmpeg prints).
    A stem shorter than one 400 ms block has no integrated loudness (ffmpeg prints -70 for it):
    its ``lufs`` is the K-weighted RMS level over the whole file, on the same scale, and
    ``lufs_method`` says so (:func:`~gravity.analysis.loudness.measure_loudness`).
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
    From the file name when one of its words names a class
    (:func:`~gravity.analysis.classification.class_from_name`: kick, kik,
    bd, snare, hh, hihat, bass, 808, vox, bv, pad, keys, gtr, arp, fx, riser, amb, atmos ...;
    confidence 0.95, less for vague or conflicting names); otherwise from the features by a
    small logistic model fitted on real recordings
    (:func:`~gravity.analysis.classification.classify_features`; confidence at most 0.8);
    ``other`` when the features are unsure (confidence below 0.5) or nothing fits.

Tempo comes from the caller (``bpm=``) or :func:`gravity.analysis.tempo.estimate_tempo` on the stems'
onset envelopes. ``global.section_bars`` is the longest stem's length in bars (4/4) and
``global.energy`` maps the loudness of all stems summed from -30 LUFS (0) to -10 LUFS (1).

Bad files
---------
Files are opened by :func:`gravity.analysis.reading.read_audio`, the one stem reader, shared with
the renderer; its module docstring states the policy (regular files only, bounds before
allocating, format by content, non-finite samples rejected, more than 2 channels downmixed by the
channel mean). A folder of stems is analysed file by file; files ``gravity render`` wrote there (a
previous mix, :func:`~gravity.analysis.reading.gravity_output`) are not stems: they are left out
and named in ``warnings`` (name such a file explicitly to analyse it). A file that cannot be used (missing,
not a regular file, empty, not audio, no frames, any NaN/Inf sample, sample rate below 8 kHz,
out of bounds, shorter than 10 ms) is *skipped*: its :class:`StemReport` has ``ok=False`` and an
``error`` naming the file and the problem, and the request is built from the other stems. Only
when no stem is usable does :func:`analyze_stems` raise :class:`AnalysisError` (a ``ValueError``)
listing every file's problem. Usable stems with problems (silent, clipped, DC offset, very short,
more than 2 channels, resampled, extension not matching the content) carry ``warnings``. Files
are read by their content, never by their extension: a WAV named ``x.mp3`` is read as WAV (with a
warning).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
from scipy import signal

from gravity.analysis.classification import class_from_name, classify_features
from gravity.analysis.features import ANALYSIS_RATE, StemFeatures, compute_features
from gravity.analysis.loudness import LAYOUT_NAMES, LOUDNESS_FLOOR_LUFS, integrated_loudness, measure_loudness
from gravity.analysis.reading import (
    AUDIO_EXTENSIONS,
    AnalysisError,
    downmix,
    find_stems,
    read_audio,
)
from gravity.analysis.tempo import TempoEstimate, estimate_tempo
from gravity.errors import MAX_ISSUES_SHOWN, quote
from gravity.schema import check_request
from gravity.vocab import CLASS_DEFAULTS, SECTIONS, STEM_CLASSES, STYLES, TARGET_FORMATS, family_of

__all__ = ["AnalysisError", "StemReport", "AnalysisResult", "analyze_stems", "sanitize_id"]

log = logging.getLogger(__name__)

MIN_DURATION_S = 0.01  # shorter files are skipped
SHORT_DURATION_S = 0.4  # shorter files get a warning (less than one BS.1770 block)
CLIP_LEVEL = 0.999  # |x| at or above this, held for 3+ equal samples, counts as clipped
DC_LIMIT = 0.005  # |mean| above this (-46 dBFS) is reported as DC offset
MAX_STEMS = 256  # the schema's limit
LOW_TEMPO_CONFIDENCE = 0.2  # below this the tempo estimate gets a warning

ClassSource = Literal["name", "features", "fallback"]


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
        Integrated loudness in LUFS (-70 when silent); see ``lufs_method``.
    lufs_method : str
        ``"BS.1770"``, or for a file shorter than one 400 ms block ``"K-weighted RMS (too short
        for BS.1770: 120 ms < 400 ms)"``.
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
    lufs_method: str = "BS.1770"
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
        line = (
            f"{self.path} -> {self.id}: {self.stem_class} ({self.class_source} "
            f"{self.class_confidence:.2f}), {self.lufs:.1f} LUFS"
            + (f" [{self.lufs_method}]" if self.lufs_method != "BS.1770" else "")
            + f", transient {self.transient:.2f}, "
            f"bands {be.get('low', 0):.2f}/{be.get('mid', 0):.2f}/{be.get('high', 0):.2f}, "
            f"leadness {self.leadness:.2f}"
        )
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
            "tempo": {
                "bpm": self.tempo.bpm,
                "confidence": self.tempo.confidence,
                "source": self.tempo.source,
                "candidates": [list(c) for c in self.tempo.candidates],
            },
            "mix_lufs": self.mix_lufs if math.isfinite(self.mix_lufs) else None,
            "stems": [s.to_dict() for s in self.stems],
            "warnings": list(self.warnings),
        }

    def summary(self) -> str:
        """Human-readable lines: tempo, one line per stem, skipped files and warnings."""
        t = self.tempo
        lines = [
            f"tempo {t.bpm:g} bpm ({t.source}, confidence {t.confidence:.2f}); "
            f"{len(self.analysed)} stem(s) analysed, {len(self.skipped)} skipped"
        ]
        lines += [s.format() for s in self.stems]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ============================================================ ids


def sanitize_id(name: str) -> str:
    r"""A stem id matching ``^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$`` made from a file stem.

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
        run = hot[:-2] & hot[1:-1] & hot[2:] & (audio[1:-1] == audio[:-2]) & (audio[2:] == audio[1:-1])
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
    if rep.duration_s < MIN_DURATION_S:
        raise AnalysisError(
            f"{path}: too short to analyse ({frames} sample{'s' if frames != 1 else ''}"
            f" = {1e3 * rep.duration_s:.2g} ms; need at least {1e3 * MIN_DURATION_S:g} ms)"
        )
    if rep.duration_s < SHORT_DURATION_S:
        rep.warnings.append(
            f"very short ({1e3 * rep.duration_s:.0f} ms, less than one 400 ms BS.1770 "
            "block): loudness is the K-weighted RMS level over the whole file; descriptors are rough"
        )
    if channels > 2:
        layout = LAYOUT_NAMES.get(channels)
        rep.warnings.append(
            f"{channels} channels: descriptors from the mono downmix (channel mean); "
            + (
                f"loudness assumes the {layout} layout"
                if layout
                else "loudness weights every channel 1 (layout unknown)"
            )
        )
    peak = float(np.max(np.abs(audio)))
    rep.peak_dbfs = 20.0 * math.log10(peak) if peak > 0 else -math.inf
    nclip = _clipped_count(audio)
    if nclip:
        rep.warnings.append(
            f"clipped: {nclip} sample(s) at or beyond full scale "
            f"({100.0 * nclip / audio.size:.2g} %), peak {rep.peak_dbfs:+.2f} dBFS"
        )
    dc = audio.mean(axis=0)
    worst = int(np.argmax(np.abs(dc)))
    if abs(dc[worst]) > DC_LIMIT:
        where = f" on channel {worst + 1}" if channels > 1 else ""
        rep.warnings.append(
            f"DC offset {dc[worst]:+.4f} ({20 * math.log10(abs(dc[worst])):.0f} dBFS){where}; removed before analysis"
        )
    loudness = measure_loudness(audio, sr)
    lufs = loudness.lufs
    if not loudness.gated:
        rep.lufs_method = f"K-weighted RMS (too short for BS.1770: {1e3 * rep.duration_s:.0f} ms < 400 ms)"
    centred = audio - dc
    mono = downmix(centred)
    if channels > 1:
        # Uncorrelated channels lose 10 log10(channels) dB in the mean; anti-phase ones far more.
        e_ch = float(np.mean(centred**2)) / channels
        e_mono = float(np.mean(mono**2))
        if e_ch > 0 and e_mono < 0.25 * e_ch:
            loss = 10 * math.log10(max(e_mono, 1e-30) / e_ch)
            msg = (
                f"channels cancel in the mono downmix ({loss:.0f} dB below uncorrelated channels): check their polarity"
            )
            if e_mono < 0.01 * e_ch:
                k = int(np.argmax(np.mean(centred**2, axis=0)))
                mono = centred[:, k].copy()
                msg += f"; descriptors from channel {k + 1}"
            rep.warnings.append(msg)
    if sr != ANALYSIS_RATE:
        mono = _resample(mono, sr)
        rep.warnings.append(
            f"resampled {sr} Hz -> {ANALYSIS_RATE} Hz for analysis (loudness measured at {sr} Hz)"
            + (f"; nothing above {sr / 2000:g} kHz, so band_energy.high is understated" if sr < 32000 else "")
        )
    if peak == 0.0 or not math.isfinite(lufs):
        rep.silent = True
        rep.warnings.append(
            "silent: every sample is zero"
            if peak == 0.0
            else f"silent: nothing above the -70 LUFS gate (peak {rep.peak_dbfs:.0f} dBFS)"
        )
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
        if rep.feature_confidence >= 0.8 and family_of(rep.feature_class) not in (family_of(rep.stem_class), "other"):
            rep.warnings.append(
                f"the name says {rep.stem_class} but it sounds like "
                f"{rep.feature_class} ({rep.feature_confidence:.2f}); kept the name's class"
            )
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
    Other visible files in a folder are named in ``notes``.
    """
    out: list[tuple[Path, str]] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            own: list[str] = []  # Gravity's own renders in the folder: skipped, and said so
            found = find_stems(p, own)
            notes.extend(own)
            if not found:
                out.append(
                    (p, f"{p}: folder contains no stems, only {len(own)} file(s) gravity render wrote")
                    if own
                    else (p, f"{p}: folder contains no audio files (looked for {', '.join(sorted(AUDIO_EXTENSIONS))})")
                )
            others = sorted(
                q.name
                for q in p.iterdir()
                if q.is_file() and not q.name.startswith(".") and q.suffix.lower() not in AUDIO_EXTENSIONS
            )
            if others and found:
                shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
                notes.append(f"{p}: ignored {len(others)} file(s) without an audio extension: {shown}")
            out.extend((f, "") for f in found)
        else:
            out.append((p, ""))
    return out


def _check_options(target_format: str, max_objects: int | None, style: str, section: str, bpm: float | None) -> None:
    import difflib

    for value, allowed, what in (
        (target_format, TARGET_FORMATS, "target_format"),
        (style, STYLES, "style"),
        (section, SECTIONS, "section"),
    ):
        if value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=2)
            hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"expected one of {list(allowed)}"
            raise AnalysisError(f"{what}={quote(value)} is not allowed; {hint}")
    if max_objects is not None and (
        isinstance(max_objects, bool) or not isinstance(max_objects, int) or not 1 <= max_objects <= 128
    ):
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
            continue
        except Exception as exc:  # never a traceback for one bad file
            log.debug("analysis of %s failed", path, exc_info=True)
            reports.append(
                StemReport(
                    path=str(path), ok=False, error=f"{path}: could not be analysed ({type(exc).__name__}: {exc})"
                )
            )
            continue
        reports.append(m.report)
        measured.append(m)
        if len(m.mono) > len(mix):
            mix = np.concatenate([mix, np.zeros(len(m.mono) - len(mix))])
        mix[: len(m.mono)] += m.mono
        m.mono = np.zeros(0)  # the running mix holds what we need; free the memory
    if not measured:  # one line for one file; the list (at most 20) for several
        bad = [r.error for r in reports if r.error]
        if len(bad) == 1:
            raise AnalysisError(f"no usable stem: {bad[0]}")
        shown = "\n".join(f"  {e}" for e in bad[:MAX_ISSUES_SHOWN])
        more = f"\n  ... and {len(bad) - MAX_ISSUES_SHOWN} more" if len(bad) > MAX_ISSUES_SHOWN else ""
        raise AnalysisError(f"no usable stems ({len(bad)} files):\n{shown}{more}")
    for r in reports:  # skipped files are said once analysis goes on without them
        if not r.ok and r.error:
            log.warning("skipped %s", r.error)
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
            run_warnings.append(
                f"tempo {tempo.bpm:g} bpm is a weak estimate (confidence "
                f"{tempo.confidence:.2f}); give bpm= if you know it"
            )
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
        targets = [
            r for r in live if r.id.lower() == k or Path(r.path).stem.lower() == k or Path(r.path).name.lower() == k
        ]
        if not targets and k in STEM_CLASSES:
            targets = [r for r in live if r.stem_class == k]
        if not targets:
            run_warnings.append(
                f"hint {key!r} matches no stem id, file name or class; stem ids: {[r.id for r in live]}"
            )
        for r in targets:
            stem_hints[r.id] = text

    stems_doc = []
    for r in live:
        d: dict[str, Any] = {
            "id": r.id,
            "class": r.stem_class,
            "lufs": round(float(np.clip(r.lufs, -120.0, 6.0)), 2),
            "transient": r.transient,
            "band_energy": r.band_energy,
            "leadness": r.leadness,
        }
        if r.id in stem_hints:
            d["hint"] = stem_hints[r.id]
        stems_doc.append(d)
    request = {
        "target_format": target_format,
        "max_objects": max_objects if max_objects is not None else min(len(live), 128),
        "style": style,
        "section": section,
        "global": {
            "bpm": round(float(tempo.bpm), 2),
            "energy": round(energy, 3),
            "time_signature": "4/4",
            "section_bars": bars,
        },
        "stems": stems_doc,
    }
    issues = check_request(request)
    if issues:  # a bug of ours, not the user's: say so plainly
        raise AnalysisError(
            "analysis built an invalid request (please report this):\n" + "\n".join(i.format() for i in issues)
        )
    result = AnalysisResult(
        request=request, stems=tuple(reports), tempo=tempo, warnings=tuple(run_warnings), mix_lufs=mix_lufs
    )
    log.info(
        "analysed %d stem(s), skipped %d; tempo %.2f bpm (%s, %.2f)",
        len(live),
        len(reports) - len(live),
        tempo.bpm,
        tempo.source,
        tempo.confidence,
    )
    return result
