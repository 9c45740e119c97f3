"""One-off preprocessing of an HRIR set into a dense :class:`HRTFModel`.

Pipeline (see README for the reasoning):

1. resample to the render rate;
2. per direction and ear: minimum-phase filter (homomorphic, truncated to
   ``filter_ms`` with a short fade) and a separate fractional delay;
3. if the measurements do not reach a pole, add a virtual pole direction
   derived from the nearest ring (KEMAR stops at -40 deg elevation);
4. barycentric interpolation over the spherical Delaunay triangulation onto
   a dense ring grid, filters and delays interpolated separately.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from numpy.typing import NDArray

from .dsp import excess_phase_delay, fade_out, minimum_phase_spectrum, next_pow2, onset_samples
from .errors import HRTFError
from .geometry import RingGrid, SphericalTriangulation
from .model import HRTFModel
from .params import PreprocessParams
from .resample import resample
from .sofa import HRIRSet

__all__ = ["build_model", "measured_filters", "ear_delays"]

log = logging.getLogger(__name__)


def ear_delays(
    ir: NDArray[np.float64],
    spectrum: NDArray[np.complex128],
    min_spectrum: NDArray[np.complex128],
    sample_rate: float,
    params: PreprocessParams,
) -> NDArray[np.float64]:
    """Per-ear delays that go with the minimum-phase filters.

    Parameters
    ----------
    ir : ndarray, shape (M, 2, N)
        Impulse responses at ``sample_rate``.
    spectrum, min_spectrum : ndarray of complex, shape (M, 2, F)
        ``rfft`` of ``ir`` and the minimum-phase spectra (same FFT length).
    sample_rate : float
        Sample rate in Hz.
    params : PreprocessParams
        Selects the method (``delay_method``) and its settings.

    Returns
    -------
    ndarray, shape (M, 2)
        Delays in samples (not yet offset to start at 0).
    """
    onset = onset_samples(ir, params.onset_threshold_db, params.onset_upsample)
    if params.delay_method == "onset":
        return onset
    delay = excess_phase_delay(spectrum, min_spectrum, sample_rate, params.delay_band_hz)
    # The two estimates differ by a near-constant offset (speaker/pinna
    # phase); a large deviation from it means the phase fit failed (e.g. a
    # spectral zero in the band), so fall back to onset + offset there.
    offset = np.median(delay - onset)
    bad = np.abs(delay - onset - offset) > params.outlier_ms * 1e-3 * sample_rate
    if np.any(bad):
        log.warning("excess-phase delay fit failed for %d of %d responses; using onsets", bad.sum(), bad.size)
        delay = np.where(bad, onset + offset, delay)
    return delay


def _cap_points(el: NDArray[np.float64], params: PreprocessParams) -> list[tuple[float, NDArray[np.bool_]]]:
    """Virtual poles to add: (pole elevation, mask of the ring it is made from)."""
    caps = []
    for pole, extreme in ((-90.0, el.min()), (90.0, el.max())):
        if np.min(np.abs(el - pole)) > 0.5:
            caps.append((pole, np.abs(el - extreme) <= params.cap_ring_deg))
    return caps


def _split(res: HRIRSet, params: PreprocessParams) -> tuple[NDArray[np.float64], ...]:
    """Minimum-phase filters, delays (>= 0) and magnitudes of a resampled set."""
    rate = res.sample_rate
    ir = res.ir.astype(np.float64)
    n_taps = params.n_taps(rate)
    n_fft = max(params.n_fft, next_pow2(2 * ir.shape[-1]))
    spec = np.fft.rfft(ir, n_fft, axis=-1)
    mag = np.abs(spec)
    min_spec = minimum_phase_spectrum(mag, n_fft, params.floor_db)
    filters = fade_out(np.fft.irfft(min_spec, n_fft, axis=-1)[..., :n_taps], _n_fade(params, n_taps))
    delays = ear_delays(ir, spec, min_spec, rate, params) + res.delay_samples
    return filters, delays - delays.min(), mag


def _n_fade(params: PreprocessParams, n_taps: int) -> int:
    return int(round(params.fade_fraction * n_taps))


def measured_filters(
    hrirs: HRIRSet, rate: int = 48000, params: PreprocessParams | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Minimum-phase filters and delays at the measured directions.

    The building block of :func:`build_model`, before any interpolation;
    ``fractional_delay(filters, delays, n)`` reconstructs the HRIRs.

    Parameters
    ----------
    hrirs : HRIRSet
        Measured set (any sample rate).
    rate : int
        Render sample rate in Hz.
    params : PreprocessParams, optional
        Preprocessing settings.

    Returns
    -------
    filters : ndarray, shape (M, 2, L)
        Minimum-phase filters, ``L = params.n_taps(rate)``.
    delays : ndarray, shape (M, 2)
        Per-ear delays in samples at ``rate``; the smallest is 0.
    """
    params = params or PreprocessParams()
    filters, delays, _ = _split(resample(hrirs, rate), params)
    return filters, delays


def build_model(hrirs: HRIRSet, rate: int = 48000, params: PreprocessParams | None = None) -> HRTFModel:
    """Preprocess an HRIR set into a dense minimum-phase + delay model.

    Parameters
    ----------
    hrirs : HRIRSet
        Measured set (any sample rate).
    rate : int
        Render sample rate in Hz.
    params : PreprocessParams, optional
        Preprocessing settings (defaults: 256 taps at 48 kHz, 2 deg grid,
        excess-phase delays).

    Returns
    -------
    HRTFModel
        Model on a :class:`~hrtf.geometry.RingGrid`; its delays equal
        :func:`measured_filters`' at grid points that coincide with
        measurements.

    Raises
    ------
    HRTFError
        If the directions cannot be triangulated into a full sphere.
    """
    params = params or PreprocessParams()
    t0 = time.perf_counter()
    res = resample(hrirs, rate)
    filters, delays, mag = _split(res, params)
    n_taps = filters.shape[-1]
    n_fft = 2 * (mag.shape[-1] - 1)

    # Virtual poles: power-average the ring's magnitude (keeps its energy;
    # averaging the filters themselves would cancel high frequencies), make
    # it minimum phase, and average the ring's delays (-> ITD ~ 0 at the
    # pole, as for any source on the median axis).
    az, el = res.az_deg, res.el_deg
    for pole, ring in _cap_points(el, params):
        rows = np.nonzero(ring)[0]  # measured rows; virtual ones are appended after them
        pole_mag = np.sqrt(np.mean(mag[rows] ** 2, axis=0))
        pole_spec = minimum_phase_spectrum(pole_mag, n_fft, params.floor_db)
        pole_filter = fade_out(np.fft.irfft(pole_spec, n_fft)[..., :n_taps], _n_fade(params, n_taps))
        az, el = np.append(az, 0.0), np.append(el, pole)
        filters = np.concatenate([filters, pole_filter[None]])
        delays = np.concatenate([delays, delays[rows].mean(axis=0)[None]])
        log.info(
            "%s: no data at el=%+.0f deg; added a virtual pole from %d directions at el~%+.0f deg",
            hrirs.source,
            pole,
            rows.size,
            res.el_deg[rows].mean(),
        )

    try:
        tri = SphericalTriangulation(az, el)
    except ValueError as exc:
        raise HRTFError(f"{hrirs.source}: SourcePosition: {exc}") from None
    grid = RingGrid(params.grid_step_deg)
    weights = tri.weights(grid.az_deg, grid.el_deg)
    dense_filters = (weights @ filters.reshape(len(az), -1)).reshape(grid.size, 2, n_taps)
    dense_delays = weights @ delays

    log.info(
        "%s: preprocessed %d directions -> %d grid points, %d taps at %d Hz in %.2f s",
        hrirs.source,
        hrirs.n_directions,
        grid.size,
        n_taps,
        rate,
        time.perf_counter() - t0,
    )
    return HRTFModel(
        filters=dense_filters.astype(np.float32),
        delays=dense_delays,
        sample_rate=int(rate),
        grid_step_deg=params.grid_step_deg,
        source=hrirs.source,
        params_json=params.to_json(),
    )
