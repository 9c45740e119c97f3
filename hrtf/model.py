"""The preprocessed HRTF model the renderer queries per block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .dsp import fractional_delay
from .geometry import RingGrid

__all__ = ["HRTFModel"]

Interpolation = Literal["bilinear", "nearest"]


@dataclass(frozen=True, eq=False)
class HRTFModel:
    """Minimum-phase HRTF filters plus per-ear delays on a dense direction grid.

    The binaural signal for a source in direction (az, el) is, per ear e,
    ``x`` delayed by ``delays[e]`` samples (fractional delay line) and then
    convolved with ``filters[e]``. Filters are minimum phase, so filters of
    neighbouring directions are time-aligned and can be cross-faded or
    interpolated without comb filtering; all timing lives in the delays.

    Build with :func:`hrtf.build_model` or (cached) :func:`hrtf.load_model`.

    Attributes
    ----------
    filters : ndarray, float32, shape (K, 2, L)
        Minimum-phase filters per grid point and ear (0 = left, 1 = right).
    delays : ndarray, float64, shape (K, 2)
        Per-ear delays in samples at ``sample_rate``, >= 0; the common
        propagation delay is removed (the smallest delay over the measured
        directions is 0).
    sample_rate : int
        Render sample rate in Hz.
    grid_step_deg : float
        Spacing of the :class:`~hrtf.geometry.RingGrid` in degrees.
    source : str
        SOFA file the model was built from.
    params_json : str
        Preprocessing parameters (:meth:`PreprocessParams.to_json`).
    """

    filters: NDArray[np.float32]
    delays: NDArray[np.float64]
    sample_rate: int
    grid_step_deg: float
    source: str = ""
    params_json: str = "{}"
    diffuse_power: NDArray[np.float64] | None = field(default=None, repr=False)
    grid: RingGrid = field(init=False, repr=False)

    #: FFT size of :meth:`diffuse_field_power`'s frequency grid (the filters are a few hundred
    #: taps: 1024 points resolve them fully).
    DIFFUSE_N_FFT = 1024

    def __post_init__(self) -> None:
        """Check the arrays against the grid and store them read-only (float32 filters, float64 delays)."""
        grid = RingGrid(self.grid_step_deg)
        f = np.ascontiguousarray(self.filters, dtype=np.float32)
        d = np.ascontiguousarray(self.delays, dtype=np.float64)
        if f.ndim != 3 or f.shape[:2] != (grid.size, 2) or d.shape != (grid.size, 2):
            raise ValueError(
                f"filters {f.shape} / delays {d.shape} do not match a {self.grid_step_deg} deg grid "
                f"of {grid.size} points"
            )
        for name, arr in (("filters", f), ("delays", d)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "grid", grid)
        if self.diffuse_power is not None:
            p = np.asarray(self.diffuse_power, np.float64)
            if p.shape != (self.DIFFUSE_N_FFT // 2 + 1,) or not np.isfinite(p).all() or (p < 0).any():
                raise ValueError(f"diffuse_power {p.shape}: expected {self.DIFFUSE_N_FFT // 2 + 1} finite values >= 0")
            p.setflags(write=False)
            object.__setattr__(self, "diffuse_power", p)

    def diffuse_field_power(self) -> NDArray[np.float64]:
        """Diffuse-field power spectrum: ``|H(f)|^2`` averaged over the grid and both ears.

        The grid's rings have near-uniform density, so the plain mean approximates the
        area-weighted one. Computed on first use and kept (the on-disk model cache stores it:
        ~50 ms of FFTs over every grid filter that a render would otherwise pay each process).

        Returns
        -------
        ndarray, float64, shape (DIFFUSE_N_FFT // 2 + 1,)
            Power (linear, relative to a unit impulse) at ``rfftfreq(DIFFUSE_N_FFT, 1 / sample_rate)``.
        """
        if self.diffuse_power is None:
            from scipy import fft as sfft  # here: only when the model is built (the cache stores the result)

            n = self.DIFFUSE_N_FFT
            acc = np.zeros(n // 2 + 1)
            for s in range(0, len(self.filters), 2048):  # bounded temporaries
                acc += (np.abs(sfft.rfft(self.filters[s : s + 2048], n, axis=-1)) ** 2).sum(axis=(0, 1))
            power = acc / (2 * len(self.filters))
            power.setflags(write=False)
            object.__setattr__(self, "diffuse_power", power)
        assert self.diffuse_power is not None
        return self.diffuse_power

    @property
    def n_taps(self) -> int:
        """Filter length L in samples."""
        return int(self.filters.shape[2])

    @property
    def max_delay(self) -> float:
        """Largest delay in samples (size a delay line to at least this)."""
        return float(self.delays.max())

    def lookup(
        self, az_deg: ArrayLike, el_deg: ArrayLike, interpolation: Interpolation = "bilinear"
    ) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
        """Filters and delays for directions (vectorised).

        Parameters
        ----------
        az_deg, el_deg : array_like
            Directions in degrees (azimuth any range, +90 = left; elevation
            clipped to [-90, 90]); broadcast together to shape S.
        interpolation : {"bilinear", "nearest"}
            ``"bilinear"`` blends the 4 surrounding grid points (continuous
            in direction: smooth for moving sources); ``"nearest"`` returns
            the closest grid point (at most ~1.4 deg away on a 2 deg grid).

        Returns
        -------
        filters : ndarray, float32, shape S + (2, L)
            Minimum-phase filters (ear 0 = left).
        delays : ndarray, float64, shape S + (2,)
            Per-ear delays in samples at ``sample_rate``.
        """
        if interpolation == "nearest":
            idx = self.grid.nearest(az_deg, el_deg)
            return self.filters[idx], self.delays[idx]
        if interpolation != "bilinear":
            raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
        idx, w = self.grid.bilinear(az_deg, el_deg)
        filt = np.einsum("...k,...kel->...el", w.astype(np.float32), self.filters[idx])
        delays = np.einsum("...k,...ke->...e", w, self.delays[idx])
        return filt, delays

    def full_hrir(
        self, az_deg: ArrayLike, el_deg: ArrayLike, interpolation: Interpolation = "bilinear"
    ) -> NDArray[np.float32]:
        """Head-related impulse responses with the delays applied (reference use).

        Parameters
        ----------
        az_deg, el_deg : array_like
            Directions in degrees, broadcast to shape S.
        interpolation : {"bilinear", "nearest"}
            As in :meth:`lookup`.

        Returns
        -------
        ndarray, float32, shape S + (2, L + ceil(max_delay) + 1)
            Minimum-phase filters shifted by their (fractional) delays.
        """
        filt, delays = self.lookup(az_deg, el_deg, interpolation)
        n_out = self.n_taps + int(np.ceil(self.max_delay)) + 1
        return fractional_delay(filt, delays, n_out).astype(np.float32)
