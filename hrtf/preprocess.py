"""One-off preprocessing of an HRIR set into a dense :class:`HRTFModel`.

Pipeline (see README for the reasoning):

0. a set denser than the dense grid is decimated to about one measured
   direction per grid point (a 41,527-direction file would otherwise take
   minutes and gigabytes for nothing the grid can show);
1. resample to the render rate;
2. per direction and ear: minimum-phase filter (homomorphic, truncated to
   ``filter_ms`` with a short fade) and a separate fractional delay;
3. if the measurements do not reach a pole, add a virtual pole direction
   derived from the nearest ring (KEMAR stops at -40 deg elevation);
4. barycentric interpolation over the spherical Delaunay triangulation onto
   a dense ring grid, filters and delays interpolated separately.

Steps 1-2 run over blocks of directions, so the memory they take is bounded
by ``CHUNK_BYTES`` whatever the number of directions; the results do not
depend on the block size.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
from numpy.typing import NDArray

from .dsp import excess_phase_delay, fade_out, minimum_phase_spectrum, next_pow2, onset_samples
from .errors import HRTFError
from .geometry import RingGrid, SphericalTriangulation, sph_to_cart
from .model import HRTFModel
from .params import PreprocessParams
from .resample import rational_factors, resample
from .sofa import HRIRSet

__all__ = ["build_model", "measured_filters", "ear_delays", "CHUNK_BYTES", "DECIMATE_ABOVE"]

log = logging.getLogger(__name__)

#: Working memory for the per-direction DSP (resampling, spectra, upsampled
#: onsets), in bytes: directions are processed in blocks of this size.
CHUNK_BYTES = 64 * 2**20
#: Largest interaural time difference searched for, in seconds (human and
#: dummy heads: <= ~0.85 ms), so a side lobe of the low-passed
#: cross-correlation is never taken for its peak.
MAX_ITD_S = 1.25e-3
#: A set with more directions than this many times the dense grid's points is
#: decimated to the measured direction nearest each grid point (2 deg grid:
#: 10,318 points, so sets up to 20,636 directions are used in full).
DECIMATE_ABOVE = 2.0


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
    delays = _checked_delays(
        excess_phase_delay(spectrum, min_spectrum, sample_rate, params.delay_band_hz), onset, sample_rate, params
    )
    if params.delay_method == "lf_itd":
        n_fft = 2 * (spectrum.shape[-1] - 1)
        filt = np.fft.irfft(min_spectrum, n_fft, axis=-1)[..., : params.n_taps(sample_rate)]
        filt = fade_out(filt, _n_fade(params, filt.shape[-1]))
        spread = _itd_spread(spectrum, np.fft.rfft(filt, n_fft, axis=-1), sample_rate, params)
        delays = _split_itd(delays, spread)
    return delays


def _lf_xcorr_peak(cross: NDArray[np.complex128], n_fft: int, max_lag: float) -> NDArray[np.float64]:
    """Lag in samples (fractional) of the peak of a low-passed cross-correlation.

    ``cross`` (..., F) is a cross spectrum low-passed far below the sample
    rate (1.5 kHz at 48 kHz: the peak spans ~30 samples), so a parabola
    through the largest sample within +-``max_lag`` and its neighbours places
    the peak within ~0.01 sample (measured against a 1/64-sample evaluation
    of the band-limited sum on CIPIC, LISTEN, ARI and KEMAR: < 0.3 us).
    """
    r = np.fft.irfft(cross, n_fft, axis=-1)
    lags = np.fft.fftfreq(n_fft, 1.0 / n_fft)  # 0, 1, ..., -1
    i = np.argmax(np.where(np.abs(lags) <= max_lag, r, -np.inf), axis=-1)[..., None]
    y0, y1, y2 = (np.take_along_axis(r, (i + d) % n_fft, axis=-1)[..., 0] for d in (-1, 0, 1))
    curve = y0 - 2.0 * y1 + y2
    vertex = np.where(curve < 0.0, 0.5 * (y0 - y2) / np.where(curve < 0.0, curve, -1.0), 0.0)
    return lags[i[..., 0]] + vertex


def _itd_spread(
    spectrum: NDArray[np.complex128], filter_spectrum: NDArray[np.complex128], rate: float, params: PreprocessParams
) -> NDArray[np.float64]:
    """Right-minus-left delay (samples) that gives the filters the measured low-frequency ITD.

    Delaying one ear shifts the interaural cross-correlation by exactly that
    delay, so the spread is the measured responses' low-frequency ITD minus
    that of the (delay-free) minimum-phase filters. Shapes (M, 2, F) -> (M,).
    """
    n_fft = 2 * (spectrum.shape[-1] - 1)
    f = np.fft.rfftfreq(n_fft, 1.0 / rate)
    taper = np.where(f < params.itd_lowpass_hz, np.cos(0.5 * np.pi * f / params.itd_lowpass_hz) ** 2, 0.0)
    max_lag = MAX_ITD_S * rate
    measured = _lf_xcorr_peak(spectrum[:, 1] * np.conj(spectrum[:, 0]) * taper, n_fft, max_lag)
    filters = _lf_xcorr_peak(filter_spectrum[:, 1] * np.conj(filter_spectrum[:, 0]) * taper, n_fft, max_lag)
    return measured - filters


def _split_itd(delays: NDArray[np.float64], spread: NDArray[np.float64]) -> NDArray[np.float64]:
    """Both ears' delays moved about their mean so that right minus left is ``spread``."""
    mid = delays.mean(axis=1)
    return np.stack([mid - 0.5 * spread, mid + 0.5 * spread], axis=1)


def _checked_delays(
    delay: NDArray[np.float64], onset: NDArray[np.float64], sample_rate: float, params: PreprocessParams
) -> NDArray[np.float64]:
    """Excess-phase delays with failed fits replaced by onset + the median offset."""
    # The two estimates differ by a near-constant offset (speaker/pinna
    # phase); a large deviation from it means the phase fit failed (e.g. a
    # spectral zero in the band), so fall back to onset + offset there.
    # A silent response (or one with no energy in the fit band) has no
    # excess-phase fit at all (NaN): it takes the onset too.
    offset = np.nanmedian(delay - onset) if np.any(np.isfinite(delay)) else 0.0
    bad = ~(np.abs(delay - onset - offset) <= params.outlier_ms * 1e-3 * sample_rate)
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


def _subset(hrirs: HRIRSet, rows: NDArray[np.intp] | slice) -> HRIRSet:
    return dataclasses.replace(
        hrirs,
        ir=hrirs.ir[rows],
        az_deg=hrirs.az_deg[rows],
        el_deg=hrirs.el_deg[rows],
        dist_m=hrirs.dist_m[rows],
        delay_samples=hrirs.delay_samples[rows],
    )


def _decimate(hrirs: HRIRSet, grid: RingGrid) -> HRIRSet:
    """Keep only the measured directions nearest to some grid point, if the set is much denser than the grid."""
    if hrirs.n_directions <= DECIMATE_ABOVE * grid.size:
        return hrirs
    from scipy.spatial import cKDTree  # here: scipy.spatial is slow to import and rarely needed

    _, nearest = cKDTree(sph_to_cart(hrirs.az_deg, hrirs.el_deg)).query(sph_to_cart(grid.az_deg, grid.el_deg))
    keep = np.unique(nearest)
    log.info(
        "%s: %d directions, more than %g x the %d grid points; using the %d nearest to grid points",
        hrirs.source,
        hrirs.n_directions,
        DECIMATE_ABOVE,
        grid.size,
        keep.size,
    )
    return _subset(hrirs, keep)


def _split(
    hrirs: HRIRSet, rate: int, params: PreprocessParams, rings: list[NDArray[np.bool_]] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[NDArray[np.float64]]]:
    """Resample, then minimum-phase filters and delays (>= 0), a block of directions at a time.

    Parameters
    ----------
    hrirs : HRIRSet
        Measured set (any rate).
    rate : int
        Render rate in Hz.
    params : PreprocessParams
        Settings.
    rings : list of bool masks over the directions, optional
        For each, the power-averaged magnitude spectrum of its directions is
        returned (virtual poles are made from it).

    Returns
    -------
    filters : ndarray, shape (M, 2, L)
    delays : ndarray, shape (M, 2)
        Samples at ``rate``; the smallest is 0.
    ring_mags : list of ndarray, shape (2, n_fft // 2 + 1)
    """
    rings = rings or []
    up, down = rational_factors(hrirs.sample_rate, rate)
    n_res = -(-hrirs.n_taps * up // down)  # resample_poly's output length
    n_taps = params.n_taps(rate)
    n_fft = max(params.n_fft, next_pow2(2 * n_res))
    n_fade = _n_fade(params, n_taps)
    m = hrirs.n_directions
    # Largest temporaries per direction: the 8x-upsampled onset search and a
    # handful of n_fft-long spectra, for 2 ears, 8 bytes a value.
    block = max(1, CHUNK_BYTES // (2 * 8 * 8 * max(n_fft, params.onset_upsample * n_res)))
    filters = np.empty((m, 2, n_taps))
    onset = np.empty((m, 2))
    excess = np.empty((m, 2))
    spread = np.zeros(m)
    power = [np.zeros((2, n_fft // 2 + 1)) for _ in rings]
    for start in range(0, m, block):
        rows = slice(start, min(start + block, m))
        ir = resample(_subset(hrirs, rows), rate).ir.astype(np.float64)
        spec = np.fft.rfft(ir, n_fft, axis=-1)
        mag = np.abs(spec)
        min_spec = minimum_phase_spectrum(mag, n_fft, params.floor_db)
        filters[rows] = fade_out(np.fft.irfft(min_spec, n_fft, axis=-1)[..., :n_taps], n_fade)
        onset[rows] = onset_samples(ir, params.onset_threshold_db, params.onset_upsample)
        if params.delay_method != "onset":
            with np.errstate(invalid="ignore", divide="ignore"):  # silent responses: NaN, handled below
                excess[rows] = excess_phase_delay(spec, min_spec, rate, params.delay_band_hz)
        if params.delay_method == "lf_itd":
            spread[rows] = _itd_spread(spec, np.fft.rfft(filters[rows], n_fft, axis=-1), rate, params)
        for total, ring in zip(power, rings, strict=True):
            total += np.sum(mag[ring[rows]] ** 2, axis=0)
    delays = onset if params.delay_method == "onset" else _checked_delays(excess, onset, rate, params)
    if params.delay_method == "lf_itd":
        delays = _split_itd(delays, spread)
    delays = delays + hrirs.delay_samples * (up / down)
    ring_mags = [np.sqrt(total / max(1, int(ring.sum()))) for total, ring in zip(power, rings, strict=True)]
    return filters, delays - delays.min(), ring_mags


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
    filters, delays, _ = _split(hrirs, rate, params)
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
    grid = RingGrid(params.grid_step_deg)
    used = _decimate(hrirs, grid)
    caps = _cap_points(used.el_deg, params)
    filters, delays, ring_mags = _split(used, rate, params, [ring for _, ring in caps])
    n_taps = filters.shape[-1]
    n_fft = 2 * (ring_mags[0].shape[-1] - 1) if ring_mags else 0

    # Virtual poles: power-average the ring's magnitude (keeps its energy;
    # averaging the filters themselves would cancel high frequencies), make
    # it minimum phase, and average the ring's delays (-> ITD ~ 0 at the
    # pole, as for any source on the median axis).
    az, el = used.az_deg, used.el_deg
    for (pole, ring), pole_mag in zip(caps, ring_mags, strict=True):
        rows = np.nonzero(ring)[0]  # measured rows; virtual ones are appended after them
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
            used.el_deg[rows].mean(),
        )

    try:
        tri = SphericalTriangulation(az, el)
    except ValueError as exc:
        raise HRTFError(f"{hrirs.source}: SourcePosition: {exc}") from None
    # Query block size bounds the (queries x facets) temporary to CHUNK_BYTES.
    weights = tri.weights(grid.az_deg, grid.el_deg, chunk=max(16, CHUNK_BYTES // (8 * len(tri.simplices))))
    dense_filters = (weights @ filters.reshape(len(az), -1)).reshape(grid.size, 2, n_taps)
    dense_delays = weights @ delays

    log.info(
        "%s: preprocessed %d directions (of %d) -> %d grid points, %d taps at %d Hz in %.2f s",
        hrirs.source,
        used.n_directions,
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
