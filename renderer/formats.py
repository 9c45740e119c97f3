"""Output formats: per-voice filter spectra for binaural, stereo, AmbiX (FOA / HOA) and loudspeakers.

Every format answers one question for the engine: given voices at directions (az, el) with
linear gains, air-absorption coefficients and extra delays, what is each voice's filter
spectrum into each output channel? Shape ``(R, C, B)`` complex64 on the engine's FFT grid.
The answer comes in two parts: :attr:`tables` (a grid of spectra and the air table, fixed)
and :meth:`params` (grid corners, weights, delays per voice), which the compiled kernels of
:mod:`renderer.kernels` turn into spectra inside the engine's hop loop.

* :class:`BinauralFormat`: the HRTF model's minimum-phase filters (bilinear on its 2-degree
  grid, interpolated in the frequency domain) times a per-ear phase ramp for the interaural
  delay plus the look-ahead: the fractional delay is exact (band-limited) because it is a
  phase ramp.
* :class:`StereoFormat`: equal-power pan from azimuth (``p = sin(az) cos(el)``, +az = left).
* :class:`AmbisonicFormat`: AmbiX (ACN channel order, SN3D normalisation, no Condon-Shortley
  phase), orders 1..3.
* :class:`LoudspeakerFormat`: an ITU-R BS.2051 (or Dolby 7.1.2 / 9.1.6) loudspeaker layout, gains
  from the EBU ADM Renderer's point-source panner (:mod:`renderer.speakers`), channels in the
  BS.2051 order, the LFE silent.

Conventions: azimuth degrees, +90 = left; elevation degrees, +90 = up.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hrtf import HRTFModel, minimum_phase

from . import fft as sfft  # scipy's pocketfft, without scipy.fft's import
from .kernels import FilterParams, FilterTables
from .parallel import default_threads
from .speakers import panner

__all__ = [
    "Spatialiser",
    "BinauralFormat",
    "StereoFormat",
    "AmbisonicFormat",
    "LoudspeakerFormat",
    "AirTable",
    "sn3d_gains",
    "stereo_gains",
    "diffuse_field_eq",
    "air_response",
    "delay_ramp",
]


class AirTable:
    """Frequency responses of the air-absorption one-pole on the engine grid.

    ``H(z) = (1 - a) / (1 - a z^-1)`` (unity at DC), tabulated for ``a`` in [0, 0.95] in 1024
    steps (a response change below 0.01 dB per step) and looked up by nearest ``a``.

    Parameters
    ----------
    n_fft : int
        FFT length N of the engine.
    """

    STEPS = 1024
    A_MAX = 0.95

    def __init__(self, n_fft: int) -> None:
        a = np.linspace(0.0, self.A_MAX, self.STEPS)
        z1 = np.exp(-2j * np.pi * np.arange(n_fft // 2 + 1) / n_fft)
        self.table = ((1.0 - a[:, None]) / (1.0 - a[:, None] * z1[None, :])).astype(np.complex64)

    def index(self, a: ArrayLike) -> NDArray[np.intp]:
        """Table rows for coefficients ``a`` (clipped to [0, 0.95])."""
        x = np.clip(np.asarray(a, np.float64), 0.0, self.A_MAX) * ((self.STEPS - 1) / self.A_MAX)
        return np.rint(x).astype(np.intp)


def air_response(a: ArrayLike, n_fft: int) -> NDArray[np.complex128]:
    """Frequency response of the air one-pole ``(1 - a) / (1 - a z^-1)`` on an rfft grid.

    Parameters
    ----------
    a : array_like, shape S
        Poles in [0, 1) (:func:`renderer.sources.air_coefficient`).
    n_fft : int
        FFT length.

    Returns
    -------
    ndarray of complex128, shape S + (n_fft // 2 + 1,)
    """
    aa = np.asarray(a, np.float64)[..., None]
    z1 = np.exp(-2j * np.pi * np.arange(n_fft // 2 + 1) / n_fft)
    return (1.0 - aa) / (1.0 - aa * z1)


def delay_ramp(tau: ArrayLike, n_fft: int) -> NDArray[np.complex128]:
    """``exp(-2 pi i k tau / N)`` on an rfft grid: a band-limited delay of ``tau`` samples.

    Parameters
    ----------
    tau : array_like, shape S
        Delays in samples.
    n_fft : int
        FFT length N.

    Returns
    -------
    ndarray of complex128, shape S + (N // 2 + 1,)
    """
    k = np.arange(n_fft // 2 + 1) / n_fft
    return np.exp(-2j * np.pi * np.mod(np.multiply.outer(np.asarray(tau, np.float64), k), 1.0))


class Spatialiser(Protocol):
    """What the engine asks of an output format."""

    n_channels: int

    @property
    def tables(self) -> FilterTables:
        """Spectra of every filter the kernels index (see :class:`FilterTables`)."""
        ...

    def params(
        self,
        az_deg: NDArray[np.float64],
        el_deg: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_index: NDArray[np.intp],
        delay: NDArray[np.float64],
    ) -> FilterParams:
        """Kernel parameters of R voices; see :meth:`BinauralFormat.params`."""
        ...

    def filters(
        self,
        az_deg: NDArray[np.float64],
        el_deg: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_index: NDArray[np.intp],
        delay: NDArray[np.float64],
    ) -> NDArray[np.complex64]:
        """Filter spectra (R, C, B) for R voices; see :meth:`BinauralFormat.filters`."""
        ...

    def static_filters(
        self,
        n_fft: int,
        az_deg: NDArray[np.float64],
        el_deg: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_a: NDArray[np.float64],
        delay: NDArray[np.float64],
    ) -> NDArray[np.complex64]:
        """Filter spectra on any FFT grid; see :meth:`BinauralFormat.static_filters`."""
        ...


class _TableFormat:
    """Formats whose filters the kernels build from :attr:`tables` and :meth:`params`."""

    tables: FilterTables

    def params(
        self,
        az_deg: NDArray[np.float64],
        el_deg: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_index: NDArray[np.intp],
        delay: NDArray[np.float64],
    ) -> FilterParams:
        raise NotImplementedError

    def filters(
        self,
        az_deg: NDArray[np.float64],
        el_deg: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_index: NDArray[np.intp],
        delay: NDArray[np.float64],
    ) -> NDArray[np.complex64]:
        """Filter spectra (R, C, B) of R voices, e.g. binaural
        ``gain * air * delay(d_ear + lookahead + delay) * hrtf_ear``; parameters as :meth:`params`.
        """
        return self.tables.filters(self.params(az_deg, el_deg, gain, air_index, delay))


class BinauralFormat(_TableFormat):
    """HRTF filters + interaural delays as spectra on the engine grid.

    Parameters
    ----------
    model : hrtf.HRTFModel
        Preprocessed HRTF set at the render rate (minimum-phase filters + per-ear delays).
    n_fft, p, q : int
        Engine FFT length and the factorisation of its bin count (see :func:`frame_size`).
    lookahead : int
        Samples added to every delay (keeps the fractional delays causal).
    air : AirTable
        Air-absorption responses on the same grid.
    threads : int
        Threads that transform the tables (0 = one per CPU core; ``RenderConfig.threads``).
    """

    n_channels = 2
    #: Grid filters transformed per call when the tables are built.
    TABLE_ROWS = 1024

    def __init__(
        self, model: HRTFModel, n_fft: int, p: int, q: int, lookahead: int, air: AirTable, threads: int = 0
    ) -> None:
        self.model = model
        self.n_fft, self.lookahead, self.air = n_fft, lookahead, air
        self._threads = threads or default_threads()
        self.n_bins = n_fft // 2 + 1
        self._p, self._q = p, q
        self._tables: FilterTables | None = None
        self._delays = np.asarray(model.delays, np.float64)

    @property
    def tables(self) -> FilterTables:  # type: ignore[override]  # read-only here: built lazily on first use
        """Spectra of every grid filter, (K, 2, B) complex64 (~40 MB; built on first use)."""
        if self._tables is None:
            filt = self.model.filters  # float32 (K, 2, L)
            spec = np.empty(filt.shape[:-1] + (self.n_bins,), np.complex64)
            # A thousand filters at a time, zero-padded in one reused buffer and transformed into
            # their rows of the table on the render's threads: the spectra of rfft(filt, n_fft), without the
            # whole set's padded copy as a temporary (~90 MB less at the peak), in a third the time.
            taps = min(filt.shape[-1], self.n_fft)
            pad = np.zeros((min(self.TABLE_ROWS, len(filt)), *filt.shape[1:-1], self.n_fft), np.float32)
            for s in range(0, len(filt), self.TABLE_ROWS):
                rows = filt[s : s + self.TABLE_ROWS]
                pad[: len(rows), ..., :taps] = rows[..., :taps]
                sfft.rfft(pad[: len(rows)], axis=-1, workers=self._threads, out=spec[s : s + len(rows)])
            self._tables = FilterTables(spec, self.air.table, self._p, self._q, self.n_fft)
        return self._tables

    def params(
        self,
        az_deg: NDArray[np.float64],
        el_deg: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_index: NDArray[np.intp],
        delay: NDArray[np.float64],
    ) -> FilterParams:
        """Kernel parameters of R voices (what :meth:`filters` evaluates).

        Parameters
        ----------
        az_deg, el_deg : ndarray, shape (R,)
            Directions in degrees (+az = left, +el = up).
        gain : ndarray, shape (R,)
            Linear gains (distance law, object gain, spread weights...).
        air_index : ndarray of int, shape (R,)
            Rows of :attr:`air` (from :meth:`AirTable.index`).
        delay : ndarray, shape (R,)
            Extra delay in samples added to both ears (may be fractional or negative as long
            as the total stays >= 0).

        Returns
        -------
        FilterParams
            4 bilinear grid corners with weights x gain (same for both ears) and per-ear
            delays ``d_ear + lookahead + delay`` (interpolated bilinearly too).
        """
        idx, w = self.model.grid.bilinear(az_deg, el_deg)  # (R, 4)
        d = np.einsum("rk,rke->re", w, self._delays[idx]) + (self.lookahead + delay)[:, None]
        wg = (w * gain[:, None]).astype(np.float32)
        return FilterParams(
            idx.astype(np.int32),
            np.ascontiguousarray(np.broadcast_to(wg[:, None, :], (len(wg), 2, 4))),
            d,
            np.asarray(air_index, np.int32),
        )

    def static_filters(
        self,
        n_fft: int,
        az_deg: NDArray[np.float64],
        el_deg: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_a: NDArray[np.float64],
        delay: NDArray[np.float64],
    ) -> NDArray[np.complex64]:
        """Filter spectra of R voices on an arbitrary FFT grid (for filters that never change).

        Computed directly (time-domain bilinear lookup, FFT, exact phase ramp and air
        response) instead of through the precomputed grid: meant for a handful of static
        voices at start-up, on the static engine's longer frames.

        Parameters
        ----------
        n_fft : int
            FFT length.
        az_deg, el_deg, gain, delay : ndarray, shape (R,)
            As :meth:`filters`.
        air_a : ndarray, shape (R,)
            Air-absorption poles (not table rows).

        Returns
        -------
        ndarray of complex64, shape (R, 2, n_fft // 2 + 1)
        """
        filt, d = self.model.lookup(az_deg, el_deg)  # (R, 2, L), (R, 2)
        spec = np.fft.rfft(filt.astype(np.float64), n_fft, axis=-1)
        spec *= delay_ramp(d + (self.lookahead + np.asarray(delay, np.float64))[:, None], n_fft)
        spec *= air_response(air_a, n_fft)[:, None, :] * np.asarray(gain, np.float64)[:, None, None]
        return spec.astype(np.complex64)


def stereo_gains(az_deg: ArrayLike, el_deg: ArrayLike) -> NDArray[np.float64]:
    """Equal-power stereo gains (left, right) from a direction.

    The pan position is ``p = sin(az) cos(el)`` (+1 = hard left at az = +90, 0 = centre for
    front, back and overhead), mapped to the angle ``theta = (1 - p) pi / 4`` and
    ``(cos theta, sin theta)``: the power sum is always 1.

    Parameters
    ----------
    az_deg, el_deg : array_like
        Directions in degrees, broadcast to shape S.

    Returns
    -------
    ndarray, shape S + (2,)
    """
    az, el = np.broadcast_arrays(np.radians(np.asarray(az_deg, float)), np.radians(np.asarray(el_deg, float)))
    theta = (1.0 - np.sin(az) * np.cos(el)) * (np.pi / 4.0)
    return np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def sn3d_gains(order: int, az_deg: ArrayLike, el_deg: ArrayLike) -> NDArray[np.float64]:
    """Real spherical harmonics, AmbiX convention (ACN order, SN3D, no Condon-Shortley phase).

    Channel ``acn = l (l + 1) + m``; ``Y_lm = N_lm P_l^|m|(sin el) * (cos(m az) if m >= 0 else
    sin(|m| az))`` with ``N_lm = sqrt((2 - delta_m0) (l - |m|)! / (l + |m|)!)``. First order:
    W = 1, Y = sin(az) cos(el), Z = sin(el), X = cos(az) cos(el); a source at +90 deg (left)
    has Y = +1.

    Parameters
    ----------
    order : int
        Ambisonic order (>= 0).
    az_deg, el_deg : array_like
        Directions in degrees (+az = left), broadcast to shape S.

    Returns
    -------
    ndarray, shape S + ((order + 1) ** 2,)
    """
    from scipy.special import lpmv  # only for ambisonics: scipy.special takes ~0.1 s to import

    az, el = np.broadcast_arrays(np.radians(np.asarray(az_deg, float)), np.radians(np.asarray(el_deg, float)))
    sin_el = np.sin(el)
    out = np.empty(az.shape + ((order + 1) ** 2,))
    for deg in range(order + 1):
        for m in range(-deg, deg + 1):
            am = abs(m)
            norm = math.sqrt((2 - (m == 0)) * math.factorial(deg - am) / math.factorial(deg + am))
            # scipy's lpmv includes the Condon-Shortley phase (-1)^m; AmbiX does not.
            leg = lpmv(am, deg, sin_el) * (-1.0) ** am
            trig = np.cos(am * az) if m >= 0 else np.sin(am * az)
            out[..., deg * (deg + 1) + m] = norm * leg * trig
    return out


class _PannedFormat(_TableFormat):
    """Shared code of the gain-panned formats: ``gain_c(dir) * gain * air * delay``."""

    n_channels: int

    def __init__(self, n_fft: int, p: int, q: int, lookahead: int, air: AirTable) -> None:
        self.n_fft, self.lookahead, self.air = n_fft, lookahead, air
        self.n_bins = n_fft // 2 + 1
        ones = np.ones((1, self.n_channels, self.n_bins), np.complex64)
        self.tables = FilterTables(ones, air.table, p, q, n_fft)

    def _gains(self, az_deg: NDArray[np.float64], el_deg: NDArray[np.float64]) -> NDArray[np.float64]:
        raise NotImplementedError

    def params(
        self,
        az_deg: NDArray[np.float64],
        el_deg: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_index: NDArray[np.intp],
        delay: NDArray[np.float64],
    ) -> FilterParams:
        """Kernel parameters: one flat grid row with the pan gain of each channel."""
        g = (self._gains(az_deg, el_deg) * gain[:, None]).astype(np.float32)  # (R, C)
        d = np.broadcast_to((self.lookahead + np.asarray(delay, np.float64))[:, None], g.shape)
        return FilterParams(
            np.zeros((len(g), 1), np.int32),
            np.ascontiguousarray(g[:, :, None]),
            np.ascontiguousarray(d),
            np.asarray(air_index, np.int32),
        )

    def static_filters(
        self,
        n_fft: int,
        az_deg: NDArray[np.float64],
        el_deg: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_a: NDArray[np.float64],
        delay: NDArray[np.float64],
    ) -> NDArray[np.complex64]:
        """Filter spectra (R, C, n_fft // 2 + 1) on any grid.

        See :meth:`BinauralFormat.static_filters`.
        """
        g = self._gains(az_deg, el_deg) * np.asarray(gain, np.float64)[:, None]  # (R, C)
        base = delay_ramp(self.lookahead + np.asarray(delay, np.float64), n_fft) * air_response(air_a, n_fft)
        return (g[:, :, None] * base[:, None, :]).astype(np.complex64)


class StereoFormat(_PannedFormat):
    """Two channels (left, right), equal-power pan from azimuth (:func:`stereo_gains`)."""

    n_channels = 2

    def _gains(self, az_deg: NDArray[np.float64], el_deg: NDArray[np.float64]) -> NDArray[np.float64]:
        return stereo_gains(az_deg, el_deg)


class AmbisonicFormat(_PannedFormat):
    """AmbiX of a given order: ``(order + 1)^2`` channels, ACN order, SN3D (:func:`sn3d_gains`).

    Parameters
    ----------
    order : int
        Ambisonic order, 1..3.
    n_fft, p, q, lookahead, air
        As :class:`BinauralFormat`.
    """

    def __init__(self, order: int, n_fft: int, p: int, q: int, lookahead: int, air: AirTable) -> None:
        self.order = order
        self.n_channels = (order + 1) ** 2
        super().__init__(n_fft, p, q, lookahead, air)

    def _gains(self, az_deg: NDArray[np.float64], el_deg: NDArray[np.float64]) -> NDArray[np.float64]:
        return sn3d_gains(self.order, az_deg, el_deg)


class LoudspeakerFormat(_PannedFormat):
    """A loudspeaker layout: one channel per loudspeaker, point-source panning (ITU-R BS.2127 6.1).

    Each voice (direct sound, spread source or image source) is panned as a point source by
    :class:`renderer.speakers.PointSourcePanner`: VBAP on the layout's triangles, the quad rule
    on four-loudspeaker faces, extra and virtual loudspeakers where a layer is missing, power
    sum 1 (the EBU ADM Renderer's gains). Distance law, gain, air absorption and delays are the
    same as the other formats'. Channels are in the BS.2051 order of
    :data:`renderer.speakers.LAYOUTS` (5.1: M+030 M-030 M+000 LFE1 M+110 M-110, i.e. L R C LFE
    Ls Rs); the LFE channel carries no object content (zero gain).

    Parameters
    ----------
    name : str
        Layout name (``5.1``, ``7.1.4``, ``9.1.6``, ``0+5+0``...; a key of ``LAYOUTS``).
    n_fft, p, q, lookahead, air
        As :class:`BinauralFormat`.
    """

    def __init__(self, name: str, n_fft: int, p: int, q: int, lookahead: int, air: AirTable) -> None:
        self.panner = panner(name)
        self.layout = self.panner.layout
        self.n_channels = self.layout.n_channels
        super().__init__(n_fft, p, q, lookahead, air)

    def _gains(self, az_deg: NDArray[np.float64], el_deg: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.panner.gains(az_deg, el_deg)


def _smooth_fractional_octave(
    freqs: NDArray[np.float64], power: NDArray[np.float64], fraction: float
) -> NDArray[np.float64]:
    """Average ``power`` over a 1/``fraction``-octave window around each frequency."""
    out = np.empty_like(power)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    half = 2.0 ** (0.5 / fraction)
    lo = np.searchsorted(freqs, freqs / half, side="left")
    hi = np.searchsorted(freqs, freqs * half, side="right")
    hi = np.maximum(hi, lo + 1)
    out[:] = (csum[hi] - csum[lo]) / (hi - lo)
    return out


def diffuse_field_eq(
    model: HRTFModel,
    *,
    n_taps: int = 1024,
    max_boost_db: float = 24.0,
    f_low_hz: float = 20.0,
    f_high_hz: float = 16000.0,
) -> NDArray[np.float64]:
    """Minimum-phase diffuse-field equaliser of an HRTF set.

    The diffuse-field power ``P(f)`` is the mean of ``|H(f)|^2`` over the model's grid (rings
    of near-uniform density, so the plain mean approximates the area-weighted one) and both
    ears, smoothed to 1/3 octave. The equaliser is ``1 / sqrt(P)``: after it, a diffuse field
    reaches each ear at 0 dB at every frequency and a single source keeps only its
    direction-dependent colour (what localisation needs). Boosts are capped at
    ``max_boost_db``; outside ``[f_low_hz, f_high_hz]`` the gain is held at the edge value and
    below ``f_low_hz`` it rolls off (second order) so no subsonic boost is made, and
    above ``f_high_hz`` it fades to 0 dB at 0.9 x Nyquist (no boost of the thin top octave).

    Parameters
    ----------
    model : hrtf.HRTFModel
        HRTF set.
    n_taps : int
        Length of the returned filter in samples (1024 = 21 ms at 48 kHz: the frontal response
        is restored to within 0.5 dB down to 50 Hz, -1.2 dB at 40 Hz; 2048 gains 1 dB at 30 Hz
        for twice the cost).
    max_boost_db : float
        Largest gain in dB.
    f_low_hz, f_high_hz : float
        Band in Hz where the equaliser follows the data.

    Returns
    -------
    ndarray, shape (n_taps,)
        Minimum-phase impulse response at ``model.sample_rate``.
    """
    fs = model.sample_rate
    power = model.diffuse_field_power()  # cached with the model
    f_an = np.fft.rfftfreq(model.DIFFUSE_N_FFT, 1.0 / fs)
    n_fft = 16 * n_taps
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    # Interpolate the (smooth) power onto the fine grid, then smooth to 1/3 octave.
    p_fine = np.interp(f, f_an, power)
    p_s = _smooth_fractional_octave(np.maximum(f, 1e-3), p_fine, 3.0)
    gain = 1.0 / np.sqrt(np.maximum(p_s, 1e-30))
    band = (f >= f_low_hz) & (f <= f_high_hz)
    gain = np.minimum(gain, 10.0 ** (max_boost_db / 20.0))
    g_db = 20.0 * np.log10(gain)
    lo_edge, hi_edge = g_db[band][0], g_db[band][-1]
    # Above f_high the data are thin (the measurement rolls off, the 44.1 kHz set ends at
    # 22 kHz): fade the correction to 0 dB at 0.9 x Nyquist instead of boosting hiss.
    f_top = 0.9 * fs / 2.0
    fade = np.clip((f - f_high_hz) / max(f_top - f_high_hz, 1.0), 0.0, 1.0)
    g_db = np.where(f < f_low_hz, lo_edge, np.where(f > f_high_hz, hi_edge * (1.0 - fade), g_db))
    gain = 10.0 ** (g_db / 20.0)
    # Second-order roll-off below f_low_hz: no subsonic boost, no DC gain.
    gain = gain * (f / f_low_hz) ** 2 / np.sqrt(1.0 + (f / f_low_hz) ** 4)
    gain = np.maximum(gain, 1e-6)
    ir = np.fft.irfft(gain, n_fft)
    # minimum_phase() takes an impulse response; a zero-phase one has the wanted magnitude.
    return minimum_phase(np.roll(ir, n_fft // 2), n_taps, n_fft=n_fft, n_fade=n_taps // 8)
