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
* Stereo stems are summed to mono, ``(L + R) / 2``: the scene decides an object's width, and
  a stereo stem rendered as one point would otherwise keep its own, conflicting stereo image.
  More than two channels is an error.
* Stems at another sample rate are resampled to the render rate (``resample_poly``); shorter
  stems are zero-padded to the longest.
* Non-finite samples (NaN/inf) in a stem are an error (they mean a broken file), never
  silently zeroed here.
* The output is as long as the longest stem plus the reverb tail (RT60 when any object sends
  to the reverb) plus the reflections' and filters' decay; time 0 is aligned with the stems
  (the renderer's latency is removed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import soundfile as sf
from numpy.typing import NDArray
from scipy.signal import resample_poly

from gravity.atomic import atomic_path
from gravity.errors import ValidationError
from gravity.scene import Scene

from .config import RenderConfig
from .errors import RenderError
from .loudness import limit, measure, normalisation_gain_db
from .render import Renderer

__all__ = ["RenderReport", "render_files", "load_stems", "write_audio_atomic"]

log = logging.getLogger(__name__)


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
        return (
            f"wrote {self.out} ({self.fmt}, {self.channels} ch, {self.duration_s:.1f} s, "
            f"{self.loudness_lufs:.1f} LUFS, peak {self.true_peak_dbtp:.1f} dBTP, "
            f"{self.realtime_factor:.0f}x realtime)"
        )


def _read_stem(path: Path, rate: int) -> NDArray[np.float32]:
    """One stem file -> mono float32 at ``rate``; RenderError naming the file otherwise."""
    if not path.is_file():
        raise RenderError(f"{path}: stem file not found")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise RenderError(
            f"{path}: unreadable audio file ({exc}); stems must be WAV/FLAC/AIFF"
        ) from exc
    if data.shape[1] > 2:
        raise RenderError(f"{path}: has {data.shape[1]} channels; stems must be mono or stereo")
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise RenderError(
            f"{path}: contains {bad} non-finite (NaN/inf) samples; re-export the stem"
        )
    mono = data.mean(axis=1) if data.shape[1] == 2 else data[:, 0]
    if sr != rate:
        frac = Fraction(rate, sr).limit_denominator(10000)
        mono = resample_poly(mono, frac.numerator, frac.denominator).astype(np.float32)
        log.info("%s: resampled %d -> %d Hz", path, sr, rate)
    return np.ascontiguousarray(mono, np.float32)


def load_stems(
    stems: Sequence[Path | str], scene: Scene, rate: int, stem_map: Mapping[str, str] | None = None
) -> tuple[NDArray[np.float32], dict[str, str], tuple[str, ...]]:
    """Read stem files and mix them into one mono signal per scene object.

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
        Missing / unreadable / non-finite stem, ambiguous file stems, or a stem the scene
        names that no file provides.
    """
    paths = [Path(p) for p in stems]
    for p in paths:
        if not p.is_file():
            raise RenderError(f"{p}: stem file not found")
    by_key: dict[str, Path] = {}
    for p in paths:
        for key in {str(p), p.name, p.stem}:
            if key in by_key and by_key[key] != p and key == p.stem:
                raise RenderError(
                    f"{p}: file stem {p.stem!r} is also the stem of {by_key[key]}; "
                    "rename one or use stem_map"
                )
            by_key.setdefault(key, p)
    resolve: dict[str, Path] = {}
    for sid, target in (stem_map or {}).items():
        if target not in by_key:
            raise RenderError(
                f"stem_map maps {sid!r} to {target!r}, which is not among the stem files "
                f"{[str(p) for p in paths]}"
            )
        resolve[sid] = by_key[target]
    mapped_files = set(resolve.values())
    for p in paths:
        if p not in mapped_files:
            resolve.setdefault(p.stem, p)
    missing = [(o.id, sid) for o in scene.objects for sid in o.stems if sid not in resolve]
    if missing:
        names = ", ".join(f"object {oid!r} needs stem {sid!r}" for oid, sid in missing)
        raise RenderError(
            f"no stem file for: {names} (files: {[p.name for p in paths]}); "
            "pass the file or map it with stem_map"
        )
    cache: dict[Path, NDArray[np.float32]] = {}
    used: dict[str, str] = {}
    for o in scene.objects:
        for sid in o.stems:
            p = resolve[sid]
            if p not in cache:
                cache[p] = _read_stem(p, rate)
            used[sid] = str(p)
    n = max((len(a) for a in cache.values()), default=0)
    signals = np.zeros((len(scene.objects), n), np.float32)
    for i, o in enumerate(scene.objects):
        for sid in o.stems:
            a = cache[resolve[sid]]
            signals[i, : len(a)] += a
    unused = tuple(str(p) for p in paths if p not in cache)
    return signals, used, unused


def write_audio_atomic(path: Path, y: NDArray[np.float32], rate: int, subtype: str) -> None:
    """Write ``y`` (channels, n) to ``path`` via a temp file in the same folder + os.replace."""
    path = Path(path)
    with atomic_path(path, suffix=path.suffix or ".wav") as tmp:
        sf.write(tmp, np.ascontiguousarray(y.T), rate, subtype=subtype)


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
    fmt : {"binaural", "stereo", "foa", "hoa"}
        Output format (overrides ``config.fmt``).
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

    Returns
    -------
    RenderReport

    Raises
    ------
    RenderError
        A missing / unreadable / non-finite stem, a stem the scene names without a file, a bad
        SOFA file, bad options or an unwritable output. No output file is left behind.
    gravity.errors.ValidationError
        The scene file is not a valid scene.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if not out.parent.is_dir():
        raise RenderError(f"{out}: output folder {out.parent} does not exist")
    if not sf.check_format(out.suffix.lstrip(".").upper() or "WAV", subtype):
        raise RenderError(
            f"{out}: subtype {subtype!r} is not valid for a {out.suffix or '.wav'} file"
        )
    if block < 1 or rate < 8000:
        raise RenderError(f"block={block} must be >= 1 sample and rate={rate} >= 8000 Hz")
    try:
        cfg = (config or RenderConfig()).replace(fmt=fmt)
    except ValueError as exc:
        raise RenderError(str(exc)) from exc
    if not isinstance(scene, Scene):
        scene_path = Path(scene)
        if not scene_path.is_file():
            raise RenderError(f"{scene_path}: scene file not found")
        try:
            scene = Scene.load(scene_path)
        except ValidationError:
            raise
        except (OSError, ValueError) as exc:
            raise RenderError(f"{scene_path}: unreadable scene ({exc})") from exc
    signals, used, unused = load_stems(stems, scene, rate, stem_map)
    for f in unused:
        log.warning("%s: no scene object uses this stem", f)
    model = None
    if cfg.fmt != "binaural" and hrtf_path is not None:
        log.info("%s: not used, the %s format needs no HRTF", hrtf_path, cfg.fmt)
    if cfg.fmt == "binaural":
        from hrtf import HRTFError, load_model

        try:
            model = load_model(hrtf_path, rate=rate)
        except (HRTFError, OSError, ValueError) as exc:
            raise RenderError(f"{hrtf_path or 'embedded HRTF'}: bad SOFA file: {exc}") from exc
    n = signals.shape[1]
    renderer = Renderer(scene, rate, cfg, model=model, duration_s=n / rate if n else None)
    lat = renderer.latency_samples
    total = n + renderer.tail_samples
    y = np.empty((renderer.n_channels, total + lat), np.float32)
    from tqdm import tqdm

    feed = total + lat
    with tqdm(
        total=feed, unit="smp", unit_scale=True, disable=not progress, desc=out.name, leave=False
    ) as bar:
        for s in range(0, feed, block):
            e = min(feed, s + block)
            x = (
                signals[:, s : min(e, n)]
                if s < n
                else np.zeros((len(scene.objects), 0), np.float32)
            )
            if x.shape[1] < e - s:
                x = np.concatenate(
                    [x, np.zeros((x.shape[0], e - s - x.shape[1]), np.float32)], axis=1
                )
            y[:, s:e] = renderer.process(x)
            bar.update(e - s)
    y = y[:, lat:]
    if not np.all(np.isfinite(y)):
        raise RenderError(
            f"{out}: internal error, the render produced non-finite samples; nothing written"
        )
    before = measure(y, rate, fmt=cfg.fmt)
    gain_db = 0.0
    if normalize:
        gain_db = normalisation_gain_db(before, scene.loudness_target_lufs)
        y *= np.float32(10.0 ** (gain_db / 20.0))
    reduction = 0.0
    if limit_peaks:
        y, reduction = limit(y, rate)
        if reduction > 0:
            log.warning("%s: safety limiter reduced peaks by up to %.1f dB", out, reduction)
    over = int(np.count_nonzero(np.abs(y) > 1.0))
    clipped = over if subtype.startswith("PCM") else 0
    if clipped:
        log.warning("%s: %d samples exceed full scale and will clip in %s", out, clipped, subtype)
    elif over:
        log.warning("%s: %d samples exceed full scale (kept: %s file)", out, over, subtype)
    after = measure(y, rate, fmt=cfg.fmt)
    try:
        write_audio_atomic(out, y, rate, subtype)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise RenderError(f"{out}: cannot write output ({exc})") from exc
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
        loudness_before_lufs=before.loudness_lufs,
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
