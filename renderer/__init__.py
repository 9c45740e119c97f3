"""Binaural / stereo / AmbiX rendering of a scene from stems (issue #3).

One engine serves the offline render and the streaming preview:

>>> from renderer import Renderer, RenderConfig, render_files
>>> report = render_files([Path("v1.wav")], Path("scene.json"), Path("out.wav"))  # doctest: +SKIP
>>> r = Renderer(scene, 48000, RenderConfig(fmt="binaural"))                     # doctest: +SKIP
>>> out = r.process(block)          # (n_objects, n) float32 -> (2, n) float32    # doctest: +SKIP

Conventions: azimuth degrees, +90 = left; elevation degrees, +90 = up; distance metres;
audio float32 of shape (channels, samples); output channels: binaural/stereo (left, right),
AmbiX ACN order (W, Y, Z, X, ...) with SN3D normalisation, loudspeaker layouts (5.1 ... 9.1.6)
in the ITU-R BS.2051 order with the LFE silent (``speakers``: layouts and the EBU ADM Renderer's
point-source panner). Modules: ``engine`` (partitioned
FFT convolution), ``formats`` (HRTF / pan / spherical harmonics, diffuse-field EQ),
``sources`` (distance, air, width, delays), ``room`` (image sources, FDN reverb),
``render`` (the streaming renderer), ``offline`` (files in, file out), ``loudness``.

Names are imported lazily, so ``import renderer.config`` (the settings, which the CLI reads to
build ``gravity render``'s flags) does not load scipy or numba.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from .config import FORMATS, RenderConfig
    from .engine import ConvolutionEngine, FIRBank
    from .errors import RenderError
    from .formats import diffuse_field_eq, sn3d_gains, stereo_gains
    from .loudness import LoudnessReport, limit, measure
    from .offline import RenderReport, load_stems, render_files
    from .render import Renderer
    from .room import FDNReverb, Shoebox

_WHERE = {
    "FORMATS": "config",
    "RenderConfig": "config",
    "ConvolutionEngine": "engine",
    "FIRBank": "engine",
    "RenderError": "errors",
    "diffuse_field_eq": "formats",
    "sn3d_gains": "formats",
    "stereo_gains": "formats",
    "LoudnessReport": "loudness",
    "limit": "loudness",
    "measure": "loudness",
    "RenderReport": "offline",
    "load_stems": "offline",
    "render_files": "offline",
    "Renderer": "render",
    "FDNReverb": "room",
    "Shoebox": "room",
}

__all__ = [
    "FORMATS",
    "RenderConfig",
    "RenderError",
    "Renderer",
    "RenderReport",
    "render_files",
    "load_stems",
    "ConvolutionEngine",
    "FIRBank",
    "FDNReverb",
    "Shoebox",
    "LoudnessReport",
    "measure",
    "limit",
    "sn3d_gains",
    "stereo_gains",
    "diffuse_field_eq",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'renderer' has no attribute {name!r}")
