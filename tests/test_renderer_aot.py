"""The renderer's kernels compiled ahead of time (renderer.aot): same output, no numba, checked calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import FS, ROOT, run_py, two_voice_scene_doc


@pytest.fixture(scope="module")
def aot_built() -> Path:
    """The ahead-of-time module in the cache the tests use (``make install`` builds it; built
    here when missing, e.g. after renderer/kernels.py changed).
    """
    r = subprocess.run([sys.executable, "-m", "renderer.aot"], capture_output=True, text=True, timeout=600,
                       cwd=ROOT, check=False)  # fmt: skip
    if r.returncode != 0:
        pytest.fail(f"python -m renderer.aot failed: {r.stderr.strip()}")
    path = Path(r.stdout.split(": ", 1)[1].rsplit(" (", 1)[0])
    assert (path / "signatures.json").is_file()
    return path


@pytest.mark.usefixtures("aot_built")
def test_ahead_of_time_render_is_bit_identical_and_loads_no_numba(tmp_path):
    """A render with the ahead-of-time module equals numba's JIT render sample for sample, in a
    process that imports neither numba nor llvmlite (their ~0.3-0.7 s is the point).
    """
    rng = np.random.default_rng(7)
    for name in ("vox", "gtr"):
        sf.write(tmp_path / f"{name}.wav", (0.2 * rng.standard_normal(int(2.5 * FS))).astype(np.float32), FS)
    (tmp_path / "s.json").write_text(json.dumps(two_voice_scene_doc()))
    code = (
        "import sys; from pathlib import Path; from renderer import kernels\n"
        "from renderer.offline import render_files\n"
        "t = Path(sys.argv[1]); out = t / (sys.argv[2] + '.wav')\n"
        "rep = render_files([t / 'vox.wav', t / 'gtr.wav'], t / 's.json', out, subtype='FLOAT', normalize=True, "
        "progress=False)\n"
        "print(kernels.AHEAD_OF_TIME, 'numba' in sys.modules, 'llvmlite' in sys.modules, rep.true_peak_dbtp, "
        "rep.loudness_lufs)"
    )
    outs = {}
    for mode, env in (("aot", {"GRAVITY_KERNELS": ""}), ("jit", {"GRAVITY_KERNELS": "jit"})):
        r = run_py(code, env, str(tmp_path), mode)
        assert r.returncode == 0, r.stderr
        outs[mode] = r.stdout.split()
    assert outs["aot"][:3] == ["True", "False", "False"]
    assert outs["jit"][:3] == ["False", "True", "True"]
    assert outs["aot"][3:] == outs["jit"][3:]  # the loudness and true-peak kernels agree exactly
    a, b = sf.read(tmp_path / "aot.wav", dtype="float32")[0], sf.read(tmp_path / "jit.wav", dtype="float32")[0]
    assert a.shape == b.shape and np.abs(a).max() > 0.01
    assert np.array_equal(a, b)


@pytest.mark.usefixtures("aot_built")
def test_ahead_of_time_kernels_refuse_arguments_they_would_misread():
    """A numba dispatcher would compile another version for another array; machine code compiled
    for C-ordered arrays of one dtype would read anything else wrongly (or crash): refused.
    """
    code = """
import numpy as np
from renderer import kernels as k
assert k.AHEAD_OF_TIME
y = np.zeros((2, 64), np.float32); taps = np.zeros((4, 3), np.float32)
acc = np.zeros((1, 2, 4), np.complex64); x = np.zeros((1, 1, 4), np.complex64)
ro = acc.copy(); ro.flags.writeable = False
cases = {
    "fortran": lambda: k.peak_4x(np.asfortranarray(y), taps, 0),
    "strided": lambda: k.peak_4x(y[:, ::2], taps, 0),
    "float64": lambda: k.peak_4x(y.astype(np.float64), taps, 0),
    "ndim": lambda: k.peak_4x(y[0], taps, 0),
    "float for int": lambda: k.peak_4x(y, taps, 0.5),
    "list": lambda: k.static_mac(x, acc, [0]),
    "read-only output": lambda: k.static_mac(x, acc, ro),
    "count": lambda: k.static_mac(x, acc),
}
for name, call in cases.items():
    try:
        call()
    except TypeError as exc:
        print(name, "|", exc)
    else:
        print(name, "| accepted")
y2 = y + 0.5; y2.flags.writeable = False
sums = [k.k_weighted_sums(y[:1].astype(t), np.ones((2, 3)), np.ones((2, 3)), np.zeros(1, np.int64), np.array([8]))
        for t in (np.float32, np.float64)]
print("ok", k.peak_4x(y + 0.5, taps, 0), k.peak_4x(y2, taps, 0), *sums)
"""
    r = run_py(code)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(" | ", 1) for line in r.stdout.strip().splitlines()[:-1])
    assert set(lines) == {"fortran", "strided", "float64", "ndim", "float for int", "list", "read-only output", "count"}
    assert not [n for n, msg in lines.items() if msg == "accepted"]
    assert lines["fortran"].startswith(
        "renderer.kernels.peak_4x: (float32[2d strided], float32[2d], int) "
        "matches none of its compiled versions (float32[2d], float32[2d], int)"
    )
    assert lines["float64"].startswith("renderer.kernels.peak_4x: (float64[2d], ")
    assert (
        "complex64[3d read-only])" in lines["read-only output"]
        and "arguments [2] writeable" in lines["read-only output"]
    )
    assert lines["count"].startswith("renderer.kernels.static_mac: (complex64[3d], complex64[3d]) matches none")
    # what it reads may be read-only; a second version (float64 signals for loudness) is picked by type
    assert r.stdout.strip().splitlines()[-1] == "ok (0.5, 0.0) (0.5, 0.0) [[0.]] [[0.]]"


def test_an_unusable_module_falls_back_to_numba(tmp_path):
    """A damaged module (or one for another CPU / numpy / source, which lands in another
    folder) is never loaded: numba compiles the kernels and the render goes on.
    """
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache"), "GRAVITY_KERNELS": ""}
    code = "import os; os.environ['GRAVITY_KERNELS'] = 'jit'; from renderer import kernels; print(kernels.aot_dir())"
    r = run_py(code, env)
    assert r.returncode == 0, r.stderr
    folder = Path(r.stdout.strip())
    assert folder.parent == tmp_path / "cache" / "aot"
    folder.mkdir(parents=True)
    import importlib.machinery

    (folder / ("_gravity_kernels" + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(b"\x7fELF broken")
    (folder / "signatures.json").write_text("{}")
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
        "import numpy as np; from renderer import kernels\n"
        "y, taps = np.full((1, 8), 0.25, np.float32), np.ones((4, 1), np.float32)\n"
        "print(kernels.AHEAD_OF_TIME, kernels.peak_4x(y, taps, 0))"
    )
    r = run_py(code, env)
    assert r.returncode == 0, r.stderr
    assert "ahead-of-time kernels not usable" in r.stdout and str(folder) in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "False (0.25, 0.25)"


def test_the_module_is_keyed_by_the_cpu(monkeypatch):
    """Machine code compiled for one CPU may not run on another (a shared home folder)."""
    from renderer import kernels

    here = kernels.aot_dir()
    monkeypatch.setattr(kernels, "_cpu_id", lambda: "another CPU")
    assert kernels.aot_dir() != here and kernels.aot_dir().parent == here.parent
