"""ADM BW64 export: stem files + scene -> one BW64 file a studio opens (Nuendo, Pro Tools, the EBU tools).

:func:`export_files` reads the stems exactly as :func:`renderer.offline.render_files` does (the
same matching of files to the scene's stems, the same reader, downmix to mono by the channel
mean, resampling, zero padding to the longest, the same one-line errors: a scene stem without
a file is an error, a file no object uses is a warning and is left out), and writes one file
track per member stem of each object, with the scene as ADM metadata (:mod:`renderer.adm`) in
the ``axml`` and ``chna`` chunks (:mod:`renderer.bw64`). Nothing is rendered: the gains,
positions and motion travel as metadata, and the tracks are the stems' samples (integer PCM,
so a stem above full scale is clipped, counted and said).

The output is written through a temp file beside it and renamed (:func:`gravity.atomic.atomic_path`),
or to ``write_to`` for a caller that renames several outputs together; it is checked before
any stem is read (a ``.wav`` name, its folder exists, it is none of the inputs). Memory is one
chunk of samples whatever the stems' length; a file over 4 GiB is written as BW64 with a
``ds64`` chunk.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from gravity.analysis.reading import RENDER_SOFTWARE
from gravity.atomic import atomic_path
from gravity.scene import Scene

from .adm import AdmExport, build_adm
from .bw64 import BITS, Bw64Writer
from .config import RenderConfig
from .errors import RenderError
from .offline import (
    CHUNK_SAMPLES,
    _load_scene,
    _ObjectSignals,
    _open_signals,
    _progress_bar,
    _read_or_raise,
    check_not_an_input,
    check_output,
)

__all__ = ["ExportReport", "export_files", "check_adm_output", "ADM_SUFFIXES"]

log = logging.getLogger(__name__)

#: Output names an export accepts: BW64 is a WAVE file.
ADM_SUFFIXES = (".wav", ".wave")


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote.

    Attributes
    ----------
    out : Path
        Written file.
    sample_rate, bits, n_samples : int
        Rate in Hz, bits per sample and samples per track.
    duration_s : float
        Length in seconds.
    tracks : tuple of (str, str)
        (object id, stem id) of each track, in file order.
    objects : tuple of str
        The audioObjects (scene object ids).
    blocks : int
        audioBlockFormats per track, summed over the tracks.
    bw64 : bool
        Written in the BW64 form (``ds64``: over 4 GiB).
    file_bytes : int
        Size of the file.
    peak_dbfs : float
        Highest sample of any track, in dB full scale (before PCM clipping).
    clipped_samples : int
        Samples beyond full scale, clipped by the PCM.
    stems : dict of str to str
        Scene stem id -> file used.
    unused_files : tuple of str
        Given stem files the scene does not use (not exported).
    elapsed_s : float
        Wall-clock time in seconds.
    """

    out: Path
    sample_rate: int
    bits: int
    n_samples: int
    duration_s: float
    tracks: tuple[tuple[str, str], ...]
    objects: tuple[str, ...]
    blocks: int
    bw64: bool
    file_bytes: int
    peak_dbfs: float
    clipped_samples: int
    stems: dict[str, str] = field(default_factory=dict)
    unused_files: tuple[str, ...] = ()
    elapsed_s: float = 0.0

    def summary(self) -> str:
        """One line for the CLI."""
        form = "BW64 with ds64" if self.bw64 else "BW64"
        return (
            f"wrote {self.out} (ADM {form}, {len(self.tracks)} tracks for {len(self.objects)} objects, "
            f"{self.duration_s:.1f} s, {self.sample_rate} Hz {self.bits}-bit, {self.blocks} block formats, "
            f"peak {self.peak_dbfs:.1f} dBFS)"
        )


def check_adm_output(out: Path) -> None:
    """Refuse an output an export cannot write, before any work (a ``.wav`` name, its folder exists).

    Raises
    ------
    RenderError
        Another extension, a missing folder, a folder or a non-regular file.
    """
    out = Path(out)
    if out.suffix.lower() not in ADM_SUFFIXES:
        raise RenderError(f"{out}: an ADM BW64 file is a WAVE file; name it .wav")
    check_output(out)


def export_files(
    stems: Sequence[Path | str],
    scene: Scene | Path | str,
    out: Path | str,
    *,
    rate: int = 48000,
    bits: int = 24,
    stem_map: Mapping[str, str] | None = None,
    config: RenderConfig | None = None,
    overwrite_inputs: bool = False,
    write_to: Path | None = None,
    progress: bool = False,
    force_bw64: bool = False,
) -> ExportReport:
    """Write stems and the scene that places them as one ADM BW64 file.

    Parameters
    ----------
    stems : sequence of path
        Stem files (any format and rate the stem reader takes).
    scene : Scene or path
        The scene, or its JSON file.
    out : path
        Output ``.wav`` file; written atomically, never partially.
    rate : int
        Sample rate of the file in Hz (stems at other rates are resampled).
    bits : {16, 24, 32}
        Bits per PCM sample.
    stem_map : mapping of str to str, optional
        Scene stem id -> stem file (path, name or file stem), as for ``render_files``.
    config : RenderConfig, optional
        ``reference_distance_m``, ``near_clamp_m``, ``max_spread_deg``: how distance and width
        become ADM values (:mod:`renderer.adm`).
    overwrite_inputs : bool
        Allow ``out`` to be one of the stems or the scene file.
    write_to : Path, optional
        Write here instead, no rename (the caller renames it over ``out``); messages name ``out``.
    progress : bool
        Show a progress bar on stderr.
    force_bw64 : bool
        Write the BW64 / ``ds64`` form even under 4 GiB.

    Returns
    -------
    ExportReport

    Raises
    ------
    RenderError
        A bad output name or folder, an output that is an input, a stem the reader rejects, a
        scene stem without a file, a scene without objects, bad options, or a failed write. No
        output file is left behind.
    gravity.errors.ValidationError
        The scene file is not a valid scene.
    """
    t0 = time.perf_counter()
    out = Path(out)
    check_adm_output(out)
    if not overwrite_inputs:
        check_not_an_input([out], [Path(p) for p in stems] + ([Path(scene)] if not isinstance(scene, Scene) else []))
    if rate < 8000 or bits not in BITS:
        raise RenderError(f"rate={rate} must be >= 8000 Hz and bits={bits} one of {BITS}")
    cfg = config or RenderConfig()
    scene = _load_scene(scene)
    if not scene.objects:
        raise RenderError(f"{out}: the scene has no objects; nothing to export")
    # one signal per (object, member stem): the scene with each object split into its stems
    per_stem = dataclasses.replace(
        scene, objects=tuple(dataclasses.replace(o, stems=(s,)) for o in scene.objects for s in o.stems)
    )
    signals, used, unused = _open_signals(stems, per_stem, rate, stem_map)
    try:
        for f in unused:
            log.warning("%s: no scene object uses this stem; not exported", f)
        n = signals.n
        adm = build_adm(scene, n, rate, bits=bits, name=scene.section or out.stem, config=cfg)
        try:
            if write_to is None:
                with atomic_path(out, suffix=out.suffix) as tmp:
                    writer = _write(tmp, signals, adm, rate, bits, out.name, progress, force_bw64)
            else:
                writer = _write(Path(write_to), signals, adm, rate, bits, out.name, progress, force_bw64)
        except OSError as exc:
            raise RenderError(f"{out}: cannot write output ({_why(exc, out)})") from exc
    finally:
        signals.close()
    peak, clipped = writer.peak, writer.clipped
    if clipped:
        log.warning("%s: %d samples exceed full scale and were clipped in %d-bit PCM", out, clipped, bits)
    report = ExportReport(
        out=out,
        sample_rate=rate,
        bits=bits,
        n_samples=n,
        duration_s=n / rate,
        tracks=adm.tracks,
        objects=tuple(o.id for o in scene.objects),
        blocks=sum(len(b) * len(o.stems) for b, o in zip(adm.blocks, scene.objects, strict=True)),
        bw64=writer.bw64,
        file_bytes=writer.file_bytes,
        peak_dbfs=20.0 * np.log10(peak) if peak > 0 else float("-inf"),
        clipped_samples=clipped,
        stems=used,
        unused_files=unused,
        elapsed_s=time.perf_counter() - t0,
    )
    log.info("%s", report.summary())
    return report


class _Written(Bw64Writer):
    """The writer, plus the highest absolute sample seen."""

    peak = 0.0


def _write(
    path: Path,
    signals: _ObjectSignals,
    adm: AdmExport,
    rate: int,
    bits: int,
    name: str,
    progress: bool,
    force_bw64: bool,
) -> _Written:
    """Stream the tracks into ``path`` a chunk at a time (memory: one chunk of every track)."""
    version = getattr(sys.modules.get("gravity"), "__version__", "")
    n, tracks = signals.n, len(adm.tracks)
    chunk = max(1, CHUNK_SAMPLES // tracks)
    buf = np.empty((tracks, min(chunk, max(n, 1))), np.float32)
    with open(path, "wb") as f, _progress_bar(n, name, progress) as bar:
        w = _Written(f, channels=tracks, rate=rate, bits=bits, n_frames=n, chna=adm.chna, axml=adm.axml,
                     software=f"{RENDER_SOFTWARE} {version}".strip(), force_bw64=force_bw64)  # fmt: skip
        for s in range(0, n, chunk):
            x = buf[:, : min(chunk, n - s)]
            _read_or_raise(signals, x)
            if x.size:
                w.peak = max(w.peak, float(np.max(np.abs(x))))
            w.write(x)
            bar.update(x.shape[1])
        w.close()
    return w


def _why(exc: OSError, out: Path) -> str:
    """A failed write in words, with the free space where it matters (a full disk)."""
    import shutil

    text = exc.strerror or str(exc)
    try:
        free = shutil.disk_usage(out.parent).free
    except OSError:
        return text
    return f"{text}; {free / 2**20:.0f} MiB free there"
