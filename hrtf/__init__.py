"""HRTF data for Gravity's binaural renderer.

Load SOFA HRIR sets, resample them and preprocess them once into a dense
grid of minimum-phase filters plus per-ear delays that a renderer can query
per block. Knows nothing about scenes. See ``hrtf/README.md``.

Directions: azimuth in degrees, 0 = front, +90 = LEFT (SOFA convention,
counter-clockwise seen from above), normalised to (-180, 180]; elevation in
degrees, +90 = up. Ear axis: 0 = left, 1 = right.

Examples
--------
>>> from hrtf import load_model
>>> model = load_model(rate=48000)                 # embedded MIT KEMAR, cached
>>> filters, delays = model.lookup([90.0, -30.0], [0.0, 10.0])
>>> filters.shape, delays.shape                    # (2 sources, 2 ears, taps)
((2, 2, 256), (2, 2))
"""

from .cache import cache_key, default_cache_dir, default_sofa_path, load_model
from .dsp import excess_phase_delay, fractional_delay, minimum_phase, onset_samples
from .errors import HRTFError
from .geometry import RingGrid, SphericalTriangulation, cart_to_sph, sph_to_cart, wrap_azimuth
from .model import HRTFModel
from .params import PREPROCESS_VERSION, PreprocessParams
from .preprocess import build_model, measured_filters
from .resample import resample
from .sofa import HRIRSet, load_sofa

__all__ = [
    "HRTFError",
    "HRIRSet",
    "load_sofa",
    "resample",
    "PreprocessParams",
    "PREPROCESS_VERSION",
    "build_model",
    "measured_filters",
    "HRTFModel",
    "load_model",
    "cache_key",
    "default_cache_dir",
    "default_sofa_path",
    "minimum_phase",
    "onset_samples",
    "excess_phase_delay",
    "fractional_delay",
    "RingGrid",
    "SphericalTriangulation",
    "wrap_azimuth",
    "sph_to_cart",
    "cart_to_sph",
]
