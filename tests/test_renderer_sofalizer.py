"""Static sources against ffmpeg's ``sofalizer`` with the same KEMAR file (issue #3).

sofalizer renders each channel of a multichannel file as a virtual loudspeaker at the angles
of its ``speakers`` option (``CH AZ EL|...``, degrees, azimuth counter-clockwise = +left like
SOFA), using the nearest measured HRIR (no interpolation) at the SOFA file's rate (44.1 kHz).
We render the same measured directions at 48 kHz and compare interaural level differences
(broadband energy ratio) and low-frequency interaural time differences (cross-correlation peak
below 1.5 kHz): within 1 dB and 50 us.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import hrtf
from gravity.scene import Scene
import helpers
from helpers import ild_db, lf_itd_s
from renderer import RenderConfig, Renderer

FS = 48000
FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (apt-get install ffmpeg)")

# 16 measured KEMAR directions (az, el): a 16-channel file gets ffmpeg's 16-channel layout.
DIRECTIONS = [
    (90, 0),
    (-90, 0),
    (30, 0),
    (-30, 0),
    (60, 0),
    (120, 0),
    (-150, 0),
    (0, 0),
    (45, 20),
    (-135, -20),
    (80, 40),
    (150, -40),
    (-10, 0),
    (100, 10),
    (-115, 30),
    (180, 0),
]


@pytest.fixture(scope="module")
def model() -> hrtf.HRTFModel:
    return hrtf.load_model(rate=FS)


@pytest.fixture(scope="module")
def sofalizer_irs(tmp_path_factory) -> tuple[np.ndarray, int]:
    """Impulse responses of sofalizer: channel k gets a Dirac at k * 4096 samples."""
    tmp: Path = tmp_path_factory.mktemp("sofalizer")
    return helpers.sofalizer_irs(hrtf.default_sofa_path(), DIRECTIONS, 44100, 4096, tmp), 44100


@pytest.mark.parametrize("k", range(len(DIRECTIONS)))
def test_static_source_agrees_with_sofalizer(sofalizer_irs, model, k):
    irs, fs_ff = sofalizer_irs
    az, el = DIRECTIONS[k]
    scene = Scene.from_dict(
        {
            "version": "1.0",
            "bed": {"layout": "binaural"},
            "objects": [
                {
                    "id": "s",
                    "class": "other",
                    "az_deg": az,
                    "el_deg": el,
                    "dist_m": 1.0,
                    "width": 0.0,
                    "gain_db": 0.0,
                    "reverb_send": 0.0,
                    "early_reflections": 0.0,
                }
            ],
        }
    )
    cfg = RenderConfig(hrtf_eq="none", air_absorption=False, reverb=False, early_reflections=False)
    r = Renderer(scene, FS, cfg, model=model)
    x = np.zeros((1, 4096), np.float32)
    x[0, 0] = 1.0
    ours = r.process(x).astype(np.float64)
    theirs = irs[k]
    assert abs(ild_db(ours) - ild_db(theirs)) < 1.0
    assert abs(lf_itd_s(ours, FS) - lf_itd_s(theirs, fs_ff)) < 50e-6
    # Same side, and a lateral source really is lateral in both.
    if abs(az) not in (0, 180):
        assert np.sign(ild_db(ours)) == np.sign(ild_db(theirs)) == np.sign(az)
