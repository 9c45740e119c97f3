"""Measures and materials several test files share: binaural cues (ITD, ILD), sofalizer's
reference responses, stem folders,
the 16-object orbit scene of the realtime preview tests, the two-voice scene and the
subprocess runner (`run_py`) of the renderer's whole-process tests, the loaded-model views, and where the
EBU ADM Renderer's venv is.

Independent of the library's own estimators on purpose: these are the references the tests
measure the renderer against. Sockets and deadlines live in ``tests/waiting.py``; session
fixtures (the JACK server, loaded models, shared stems) in ``tests/conftest.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gravity.llm.runtime import SceneLLM

FS = 48000  # Hz, the rate of every stem these helpers write
ROOT = Path(__file__).resolve().parents[1]


def run_py(code: str, env: dict[str, str] | None = None, *args: str) -> subprocess.CompletedProcess:
    """``python -c code args...`` in the checkout, with ``env`` over this process's environment
    (a fresh process: what it imports, and a setting read at import, are its own).
    """
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, **(env or {})}, check=False)  # fmt: skip


# ------------------------------------------------------------------ the live bridge's request
LIVE_REQUEST: dict[str, Any] = {  # two stems, 4 bars of 4/4 at 120 bpm (8 s sections)
    "target_format": "binaural",
    "max_objects": 4,
    "style": "pop",
    "section": "verse",
    "global": {"bpm": 120, "energy": 0.6},
    "stems": [{"id": "v1", "class": "lead_vocal"}, {"id": "k1", "class": "kick"}],
}


# ------------------------------------------------------------------ the EBU ADM Renderer (reference)
#: The reference venv the Makefile makes (`make ear-venv`; `make test` depends on it).
EAR_VENV = Path(os.environ.get("GRAVITY_EAR_VENV") or Path(__file__).resolve().parents[1] / ".venv-ear")


def ear_tool(name: str = "ear-render") -> Path:
    """Path of a tool of the EBU ADM Renderer's venv (``ear-render``, ``python``...); skips the
    test, saying how to make it, where the venv is missing (``make test`` always makes it).
    """
    import pytest

    path = EAR_VENV / "bin" / name
    if not path.is_file():
        pytest.skip(f"{path} missing: run `make ear-venv` (the EBU ADM Renderer, its own venv)")
    return path


# ------------------------------------------------------------------ ffmpeg's sofalizer (the reference renderer)
def sofalizer_irs(
    sofa: Path | str, directions: list[tuple[float, float]], rate: int, seg: int, tmp: Path
) -> np.ndarray:
    """Impulse responses of ffmpeg's ``sofalizer`` for ``sofa`` at ``directions`` (az, el degrees,
    + = left), (len(directions), 2, seg) at ``rate`` Hz: channel k carries a Dirac (0.5) at
    k * seg + 64 samples, placed as virtual loudspeaker k. Run at the SOFA file's rate, so ffmpeg
    does not resample.
    """
    import shutil
    import subprocess

    import soundfile as sf

    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None, "ffmpeg not installed"
    x = np.zeros((seg * len(directions), len(directions)), np.float32)
    for k in range(len(directions)):
        x[k * seg + 64, k] = 0.5
    sf.write(tmp / "in.wav", x, rate, subtype="FLOAT")
    speakers = "|".join(f"{k} {az:.6f} {el:.6f}" for k, (az, el) in enumerate(directions))
    af = f"sofalizer=sofa={sofa}:type=freq:speakers={speakers}"
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(tmp / "in.wav"), "-af", af]
    subprocess.run([*cmd, "-c:a", "pcm_f32le", str(tmp / "out.wav")], check=True, timeout=60)
    y, fs = sf.read(str(tmp / "out.wav"), dtype="float64", always_2d=True)
    assert fs == rate
    return y.T.reshape(2, len(directions), seg).transpose(1, 0, 2)


# ------------------------------------------------------------------ binaural cues
def lf_itd_s(y: np.ndarray, fs: float = FS, f_max: float = 1500.0, up: int = 16) -> Any:
    """Interaural time difference, seconds (left leads > 0), from the peak of the low-passed
    interaural cross-correlation: the cue below ~1.5 kHz that dominates lateralisation.

    ``y`` has shape (..., 2, n) (left, right); the result is a float for one pair, else an
    array of shape ``y.shape[:-2]``. ``up`` is the interpolation factor of the correlation.
    """
    y = np.asarray(y)
    n = y.shape[-1]
    n_fft = 1 << (2 * n - 1).bit_length()
    spec = np.fft.rfft(y, n_fft, axis=-1)
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    taper = np.where(f < f_max, np.cos(0.5 * np.pi * f / f_max) ** 2, 0.0)
    # r(tau) = sum_t right(t + tau) left(t): peaks at t_right - t_left
    r = np.fft.irfft(spec[..., 1, :] * np.conj(spec[..., 0, :]) * taper, n_fft * up, axis=-1)
    lag = np.argmax(r, axis=-1)
    lag = np.where(lag > n_fft * up // 2, lag - n_fft * up, lag)
    itd = lag / (up * fs)
    return float(itd) if np.ndim(itd) == 0 else itd


def ild_db(y: np.ndarray, channel_axis: int = 0) -> float:
    """Broadband interaural level difference, dB (left minus right: > 0 is louder on the left).

    ``y`` holds two channels along ``channel_axis``: (2, n) by default, (n, 2) with -1.
    """
    e = np.sum(np.moveaxis(np.asarray(y, np.float64), channel_axis, 0).reshape(2, -1) ** 2, axis=1)
    return float(10.0 * np.log10(e[0] / e[1]))


# ------------------------------------------------------------------ stems
def load_make_stems() -> Any:
    """``examples/make_stems.py`` as a module (the example song's generator: ``make_stems``,
    ``render_stems``, ``STEM_FILES``), loaded once.
    """
    import importlib.util
    import sys

    if "make_stems" not in sys.modules:
        path = Path(__file__).resolve().parent.parent / "examples" / "make_stems.py"
        spec = importlib.util.spec_from_file_location("make_stems", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["make_stems"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["make_stems"]


def write_kick_and_vocal(folder: Path, seconds: float = 1.0, fs: int = FS) -> Path:
    """A two-stem folder the analysis classifies by name: ``kick.wav`` (60 Hz, decaying twice a
    second) and ``lead_vocal.wav`` (440 Hz), float32 mono, ``seconds`` long.
    """
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * fs)) / fs
    kick = 0.8 * np.sin(2 * np.pi * 60 * t) * np.exp(-(t % 0.5) * 20)
    sf.write(folder / "kick.wav", kick.astype("float32"), fs)
    sf.write(folder / "lead_vocal.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32"), fs)
    return folder


# ------------------------------------------------------------------ the realtime preview's scene
N_ORBITS = 16


def two_voice_scene_doc(reverb: bool = True) -> dict[str, Any]:
    """Every kernel a render calls: a voice turning and approaching (moving filters, Doppler
    delays), a static one, a room (early reflections; the FDN reverb unless ``reverb=False``),
    loudness and true peak of the mix. Stems ``vox`` and ``gtr``.
    """
    send = (0.2, 0.1) if reverb else (0.0, 0.0)
    mover = {"id": "vox", "class": "lead_vocal", "az_deg": 60.0, "el_deg": 0.0, "dist_m": 4.0, "width": 0.0,
             "gain_db": 0.0, "reverb_send": send[0], "early_reflections": 0.5,
             "motion": [{"t": 0.0, "az_deg": 60.0, "el_deg": 0.0, "dist_m": 4.0},
                        {"t": 1.0, "az_deg": -90.0, "el_deg": 30.0, "dist_m": 1.0}]}  # fmt: skip
    still = {"id": "gtr", "class": "guitar", "az_deg": -30.0, "el_deg": 10.0, "dist_m": 2.0, "width": 0.0,
             "gain_db": -3.0, "reverb_send": send[1], "early_reflections": 0.3}  # fmt: skip
    bed = {"layout": "binaural", "room_preset": "studio_small", "loudness_target_lufs": -16.0}
    timing = {"bpm": 120, "time_signature": "4/4", "section_bars": 1}
    return {"version": "1.0", "bed": bed, "timing": timing, "objects": [mover, still]}


def orbit_scene_doc(az_shift: float = 0.0) -> dict[str, Any]:
    """16 objects orbiting the head (gravity.motion orbits), a small room, 2 bars of 4/4 at
    80 bpm; ``az_shift`` (degrees, + = left) turns every object.
    """
    from gravity.motion import Motion, expand

    objs = []
    for i in range(N_ORBITS):
        az = -157.5 + 22.5 * i + az_shift
        az = (az + 180.0) % 360.0 - 180.0 if az <= -180.0 or az > 180.0 else az
        kf = expand(
            Motion("orbit", {"direction": "ccw" if i % 2 else "cw", "period_bars": 1 + i % 3}),
            (az, 0.0, 1.5),
            section_bars=2,
        )
        objs.append(
            {
                "id": f"s{i:02d}",
                "class": "other",
                "az_deg": az,
                "el_deg": 0.0,
                "dist_m": 1.5,
                "width": 0.0,
                "gain_db": -12.0,
                "reverb_send": 0.1,
                "early_reflections": 0.3,
                "motion": kf,
            }
        )
    return {
        "version": "1.0",
        "bed": {"layout": "binaural", "room_preset": "studio_small"},
        "timing": {"bpm": 80.0, "time_signature": "4/4", "section_bars": 2},
        "objects": objs,
    }


def write_scene_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write a scene JSON so that a watcher never sees half a file (write, then rename)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


# ------------------------------------------------------------------ loaded models
_LOAD_FIELDS = ("model_path", "lora_path", "n_gpu_layers", "n_threads", "n_ctx", "quant", "max_draft")


def llm_view(llm: "SceneLLM", **sampling: Any) -> "SceneLLM":
    """The same loaded model with other run-time settings (temperature, top_p, seed, timeout_s,
    pin_hints, use_grammar, draft), its prompt cache emptied: it then answers as a freshly
    loaded model with those settings would, without a second load (0.5-2 s and ~150 MB each).
    """
    import copy

    bad = sorted(set(sampling) & set(_LOAD_FIELDS))
    assert not bad, f"{bad} are fixed when the model loads: load another model for them"
    view = copy.copy(llm)
    view.config = dataclasses.replace(llm.config, **sampling)
    view.reset_cache()
    return view


# ------------------------------------------------------------------ OSC frames for target tests
def osc_frame(
    aed: Any,
    gain_db: Any = None,
    width: Any = None,
    active: Any = None,
    *,
    section: str = "Verse",
    new_section: bool = False,
    names: tuple[str, ...] | None = None,
    source: str = "planner",
) -> Any:
    """A :class:`bridge.frame.Frame` of n objects at ``aed`` (n, 3: azimuth, elevation, metres),
    playing, at time 0; gains 0 dB, widths 0 and all active unless given.
    """
    from bridge.frame import Frame

    aed = np.asarray(aed, dtype=float).reshape(-1, 3)
    n = len(aed)
    return Frame(
        seq=0,
        time_s=0.0,
        playhead_s=0.0,
        playing=True,
        section=section,
        section_t=0.0,
        scene_source=source,
        new_section=new_section,
        names=names or tuple(f"s{k}" for k in range(n)),
        aed=aed,
        gain_db=np.asarray(gain_db if gain_db is not None else [0.0] * n, dtype=float),
        width=np.asarray(width if width is not None else [0.0] * n, dtype=float),
        active=np.asarray(active if active is not None else [True] * n, dtype=bool),
    )
