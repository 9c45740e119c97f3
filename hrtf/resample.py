"""Sample-rate conversion of HRIR sets."""

from __future__ import annotations

import dataclasses
from math import gcd

import numpy as np
from numpy.typing import NDArray

from .sofa import HRIRSet

__all__ = ["resample", "rational_factors", "antialias_filter"]

_MAX_FACTOR = 2000


def rational_factors(rate_in: float, rate_out: float) -> tuple[int, int]:
    """Up/down factors for a rational sample-rate change.

    Parameters
    ----------
    rate_in, rate_out : float
        Sample rates in Hz; must be whole numbers.

    Returns
    -------
    (up, down) : tuple of int
        Coprime factors with ``rate_out / rate_in == up / down``
        (44100 -> 48000 gives (160, 147)).

    Raises
    ------
    ValueError
        If a rate is not a positive whole number of Hz, or the reduced
        factors exceed 2000 (e.g. 44100 -> 48001 Hz).
    """
    ints = []
    for r in (rate_in, rate_out):
        if not (r > 0 and float(r).is_integer()):
            raise ValueError(f"sample rates must be positive whole numbers of Hz, got {r}")
        ints.append(int(r))
    g = gcd(*ints)
    up, down = ints[1] // g, ints[0] // g
    if max(up, down) > _MAX_FACTOR:
        # The polyphase filter grows with the factor (millions of taps).
        raise ValueError(f"rate ratio {rate_out}/{rate_in} = {up}/{down} is too fine-grained to resample")
    return up, down


def antialias_filter(
    rate_in: float, rate_out: float, pass_fraction: float = 0.9, atten_db: float = 80.0
) -> NDArray[np.float64]:
    """Low-pass FIR for :func:`scipy.signal.resample_poly`.

    scipy's default (Kaiser, beta 5, short) droops ~0.5 dB by 20 kHz when
    converting 44.1 <-> 48 kHz; this one is flat to ``pass_fraction`` of
    the lower Nyquist frequency (19.8 kHz for 44.1 kHz) and reaches
    ``atten_db`` at that Nyquist frequency.

    Parameters
    ----------
    rate_in, rate_out : float
        Sample rates in Hz (whole numbers).
    pass_fraction : float
        Passband edge as a fraction of ``min(rate_in, rate_out) / 2``.
    atten_db : float
        Stopband attenuation in dB.

    Returns
    -------
    ndarray
        Odd-length linear-phase FIR at the intermediate rate ``up * rate_in``.
    """
    from scipy.signal import firwin, kaiserord  # here: scipy.signal takes ~0.5 s to import

    up, _ = rational_factors(rate_in, rate_out)
    nyq = min(rate_in, rate_out) / 2.0
    fs_hi = up * float(rate_in)
    n, beta = kaiserord(atten_db, (1.0 - pass_fraction) * nyq / (fs_hi / 2.0))
    return firwin(n | 1, (1.0 + pass_fraction) / 2.0 * nyq, window=("kaiser", beta), fs=fs_hi)


def resample(hrirs: HRIRSet, rate: float) -> HRIRSet:
    """Resample an HRIR set to another sample rate.

    Uses polyphase filtering (:func:`scipy.signal.resample_poly` with
    :func:`antialias_filter`) with the rational factor reduced by the gcd of
    the rates, and
    scales by ``rate_in / rate_out`` so the *filter* gain (magnitude
    response) is unchanged: an impulse response sampled more densely has
    proportionally more samples per unit of energy.

    Parameters
    ----------
    hrirs : HRIRSet
        Input set.
    rate : float
        Target sample rate in Hz (whole number).

    Returns
    -------
    HRIRSet
        Same directions; ``ir`` has ``ceil(N * up / down)`` taps, delays in
        ``delay_samples`` are rescaled to the new rate. Returned unchanged if
        the rate already matches.
    """
    up, down = rational_factors(hrirs.sample_rate, rate)
    if up == down:
        return hrirs
    from scipy.signal import resample_poly  # here: scipy.signal takes ~0.5 s to import

    window = antialias_filter(hrirs.sample_rate, rate)
    ir = resample_poly(hrirs.ir.astype(np.float64), up, down, axis=-1, window=window) * (down / up)
    return dataclasses.replace(
        hrirs,
        ir=ir.astype(np.float32),
        sample_rate=float(rate),
        delay_samples=hrirs.delay_samples * (up / down),
    )
