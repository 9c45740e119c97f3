"""renderer.fft: scipy's pocketfft without importing scipy.fft -- scipy.fft's values, bit for bit."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import scipy.fft
import soundfile as sf

from helpers import FS, run_py, two_voice_scene_doc
from renderer import fft

RNG = np.random.default_rng(11)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal dtype, shape and bits."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_the_module_is_loaded_directly_and_shared_with_scipy() -> None:
    """This process imported scipy.fft too (above): it uses the very module renderer.fft loaded."""
    import scipy.fft._pocketfft.basic as basic

    assert fft.DIRECT
    assert basic.pfft is sys.modules["scipy.fft._pocketfft.pypocketfft"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [None, 1024, 1500, 700, 1023])
def test_rfft_and_irfft_are_scipys(dtype: type, n: int | None) -> None:
    x = RNG.standard_normal((3, 5, 1024)).astype(dtype)
    assert same(fft.rfft(x, n), scipy.fft.rfft(x, n))
    assert same(fft.rfft(x, n, axis=1), scipy.fft.rfft(x, n, axis=1))
    spec = scipy.fft.rfft(x, n)
    for m in (None, n, 998, 1201):
        assert same(fft.irfft(spec, m), scipy.fft.irfft(spec, m))
    assert same(fft.irfft(x, n), scipy.fft.irfft(x, n))  # a real input is taken as a spectrum


def test_the_engines_strided_frames_workers_and_out() -> None:
    """Frames cut from a history buffer (a strided view), the tables built on two workers into a
    preallocated array: the same values as scipy's one-worker calls.
    """
    buf = RNG.standard_normal((4, 16 * 512 + 1024)).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(buf, 1536, axis=1)[:, ::512]
    assert same(fft.rfft(frames, axis=-1), scipy.fft.rfft(frames, axis=-1))
    filt = RNG.standard_normal((300, 2, 256)).astype(np.float32)
    pad = np.zeros((300, 2, 1536), np.float32)
    pad[..., :256] = filt
    out = np.empty((300, 2, 769), np.complex64)
    assert fft.rfft(pad, axis=-1, workers=2, out=out) is out
    assert same(out, scipy.fft.rfft(filt, 1536, axis=-1))
    for n in (1, 7, 1000, 1537, 4097, 12345):
        assert fft.next_fast_len(n) == scipy.fft.next_fast_len(n, real=True)


def test_bad_arguments_fail_as_scipys_do() -> None:
    with pytest.raises(TypeError, match="real"):
        fft.rfft(np.ones(8, np.complex64))
    with pytest.raises(ValueError, match="data points"):
        fft.rfft(np.ones(8), 0)
    with pytest.raises(ValueError, match="positive"):
        fft.next_fast_len(0)


def test_a_render_process_imports_no_scipy_fft_and_matches_scipys_render(tmp_path) -> None:
    """A binaural render of 24-bit stems (no reverb) loads neither scipy.fft, scipy.special,
    scipy.sparse nor scipy.signal (~0.14 s of imports), and writes the same file as a render
    that uses scipy.fft itself (GRAVITY_FFT=scipy).
    """
    rng = np.random.default_rng(3)
    for name in ("vox", "gtr"):
        sf.write(tmp_path / f"{name}.wav", np.clip(0.2 * rng.standard_normal(int(1.5 * FS)), -1, 1), FS,
                 subtype="PCM_24")  # fmt: skip
    (tmp_path / "s.json").write_text(json.dumps(two_voice_scene_doc(reverb=False)))
    code = (
        "import sys; from pathlib import Path; from renderer import fft\n"
        "from renderer.offline import render_files\n"
        "t = Path(sys.argv[1]); out = t / (sys.argv[2] + '.wav')\n"
        "render_files([t / 'vox.wav', t / 'gtr.wav'], t / 's.json', out, subtype='FLOAT', progress=False)\n"
        "print(fft.DIRECT, *sorted(m for m in ('scipy.fft', 'scipy.special', 'scipy.sparse', 'scipy.signal') "
        "if m in sys.modules))"
    )
    direct = run_py(code, {"GRAVITY_FFT": ""}, str(tmp_path), "direct")
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.split() == ["True"]
    via_scipy = run_py(code, {"GRAVITY_FFT": "scipy"}, str(tmp_path), "scipy")
    assert via_scipy.returncode == 0, via_scipy.stderr
    assert via_scipy.stdout.split()[:2] == ["False", "scipy.fft"]
    a = sf.read(tmp_path / "direct.wav", dtype="float32")[0]
    b = sf.read(tmp_path / "scipy.wav", dtype="float32")[0]
    assert a.shape == b.shape and np.abs(a).max() > 0.01 and same(a, b)
