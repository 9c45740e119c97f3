"""Preprocessing parameters (part of the cache key)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

__all__ = ["PreprocessParams", "PREPROCESS_VERSION"]

#: Bump when the preprocessing algorithm changes so stale caches are not used.
PREPROCESS_VERSION = 2  # 2: the cache file carries the diffuse-field power


@dataclass(frozen=True)
class PreprocessParams:
    """How an HRIR set is turned into an :class:`~hrtf.model.HRTFModel`.

    Attributes
    ----------
    filter_ms : float
        Minimum-phase filter length in milliseconds (default 16/3 ms, i.e.
        256 taps at 48 kHz). A minimum-phase HRIR holds the head and pinna
        response in its first few ms; for MIT KEMAR the first 5.3 ms carry a
        median 99.7 % of the energy, and what is cut is mostly a late
        measurement reflection (~8 ms after the direct sound).
    fade_fraction : float
        Fraction of the filter faded out with a half-Hann window at its end.
    n_fft : int
        Minimum FFT length for the cepstrum (raised to >= 2x the resampled
        response length).
    floor_db : float
        Magnitude floor (dB below each response's peak) before taking logs.
    grid_step_deg : float
        Dense grid spacing in degrees (must divide 180).
    delay_method : {"lf_itd", "excess_phase", "onset"}
        How the per-ear delay is found. ``"excess_phase"``: the low-frequency
        group delay of the excess-phase part of each ear. ``"lf_itd"``
        (default): the mean of those two delays, split between the ears so
        that filters + delays have the measured low-frequency interaural time
        difference (peak of the cross-correlation below ``itd_lowpass_hz``,
        the dominant localisation cue) exactly; on real sets the excess-phase
        fit alone misses it by a median 35-250 us (CIPIC, ARI), 2.6 us on
        KEMAR. ``"onset"``: a threshold onset on the upsampled response.
    delay_band_hz : (float, float)
        Fit band in Hz for the excess-phase delays.
    itd_lowpass_hz : float
        ``"lf_itd"``: the cross-correlation is taken below this frequency
        (cos^2 taper from 0 Hz), in Hz.
    onset_threshold_db : float
        Onset threshold in dB below the peak (``"onset"`` method and the
        outlier fallback of ``"excess_phase"``).
    onset_upsample : int
        Upsampling factor for onset detection.
    outlier_ms : float
        An excess-phase delay differing from the onset-based estimate (after
        removing their median offset) by more than this is deemed a failed
        fit and replaced by the onset estimate.
    cap_ring_deg : float
        Measured directions within this many degrees of the lowest (highest)
        elevation form the ring that a virtual pole is derived from when the
        data do not reach that pole.
    """

    filter_ms: float = 16.0 / 3.0
    fade_fraction: float = 0.125
    n_fft: int = 4096
    floor_db: float = -80.0
    grid_step_deg: float = 2.0
    delay_method: Literal["lf_itd", "excess_phase", "onset"] = "lf_itd"
    delay_band_hz: tuple[float, float] = (500.0, 1500.0)
    itd_lowpass_hz: float = 1500.0
    onset_threshold_db: float = -20.0
    onset_upsample: int = 8
    outlier_ms: float = 0.25
    cap_ring_deg: float = 5.0

    def __post_init__(self) -> None:
        """Check the settings (``ValueError``) and store the delay band as floats."""
        if self.delay_method not in ("lf_itd", "excess_phase", "onset"):
            raise ValueError(f"delay_method must be 'lf_itd', 'excess_phase' or 'onset', got {self.delay_method!r}")
        if not self.itd_lowpass_hz > 0:
            raise ValueError(f"itd_lowpass_hz must be > 0, got {self.itd_lowpass_hz!r}")
        if not (self.filter_ms > 0 and 0 <= self.fade_fraction < 1 and self.n_fft > 0):
            raise ValueError("filter_ms must be > 0, fade_fraction in [0, 1), n_fft > 0")
        object.__setattr__(self, "delay_band_hz", tuple(float(f) for f in self.delay_band_hz))

    def n_taps(self, rate: float) -> int:
        """Filter length in samples at ``rate`` Hz (rounded up to a multiple of 8)."""
        return int(-(-round(self.filter_ms * 1e-3 * rate) // 8) * 8)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), used in the cache key."""
        return json.dumps(asdict(self), sort_keys=True)
