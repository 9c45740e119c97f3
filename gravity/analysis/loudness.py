"""Integrated loudness (ITU-R BS.1770-4 / EBU R128) in LUFS, with ffmpeg's channel weights for 3+ channels.

Levels are in LUFS (loudness units re full scale); sample rates in Hz; audio is full scale = 1.

Short one-shots
---------------
BS.1770 integrates 400 ms gating blocks: a file shorter than one block has no integrated
loudness. ``ffmpeg -af ebur128`` then prints -70 LUFS (its floor) whatever the level, and
zero-padding the file to one block (what this module did before) reads a 50 ms hit 9 dB low
(10 log10(400 / 50)). Neither describes the sound, so a short file is measured and labelled
differently (:func:`measure_loudness`): its level is the K-weighted mean square over the file's
own length, on the same scale (a 997 Hz sine at full scale reads -3.01 whatever its length),
with the same channel weights and the -70 LUFS absolute gate, and the result says it is this
fallback (``gated=False``), not BS.1770 integrated loudness.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pyloudnorm

__all__ = ["integrated_loudness", "measure_loudness", "Loudness", "LAYOUT_NAMES", "LOUDNESS_FLOOR_LUFS", "BLOCK_S"]

log = logging.getLogger(__name__)

LOUDNESS_FLOOR_LUFS = -70.0  # BS.1770 absolute gate; silent stems are reported at this level
BLOCK_S = 0.4  # seconds: BS.1770's gating block, the shortest audio with an integrated loudness


@dataclass(frozen=True)
class Loudness:
    """A loudness measurement and how it was made.

    Attributes
    ----------
    lufs : float
        LUFS: BS.1770-4 integrated loudness when ``gated``; for audio shorter than one
        :data:`BLOCK_S` block, the K-weighted mean-square level over its whole length (same
        weights, same -0.691 dB offset). ``-inf`` when nothing passes the -70 LUFS gate.
    gated : bool
        True for BS.1770 integrated loudness, False for the short-file fallback.
    duration_s : float
        Length of the measured audio in seconds.
    """

    lufs: float
    gated: bool
    duration_s: float

    @property
    def note(self) -> str:
        """Empty for BS.1770 loudness; else one line saying what the value is instead."""
        if self.gated:
            return ""
        return (
            f"too short for BS.1770 ({1e3 * self.duration_s:.0f} ms < {1e3 * BLOCK_S:.0f} ms): "
            "loudness is the K-weighted RMS level over the whole file, not integrated loudness"
        )


def _gate(z: np.ndarray) -> float:
    """BS.1770-4 gating of summed weighted block powers ``z`` -> LUFS (-inf when all gated)."""
    with np.errstate(divide="ignore"):
        lj = -0.691 + 10.0 * np.log10(z)
    above = lj >= LOUDNESS_FLOOR_LUFS
    if not above.any():
        return -math.inf
    rel = -0.691 + 10.0 * math.log10(float(np.mean(z[above]))) - 10.0
    keep = above & (lj > rel)
    return -0.691 + 10.0 * math.log10(float(np.mean(z[keep]))) if keep.any() else -math.inf


# BS.1770 channel weights for 3+ channel files, by channel count, for the default layouts
# ffmpeg assumes (2.1, quad, 5.0, 5.1, 6.1, 7.1): LFE 0, surround/back 1.41, others 1.
_LAYOUT_WEIGHTS: dict[int, tuple[float, ...]] = {
    3: (1.0, 1.0, 0.0),  # FL FR LFE
    4: (1.0, 1.0, 1.41, 1.41),  # FL FR BL BR
    5: (1.0, 1.0, 1.0, 1.41, 1.41),  # FL FR FC BL BR
    6: (1.0, 1.0, 1.0, 0.0, 1.41, 1.41),  # FL FR FC LFE BL BR
    7: (1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.41),  # FL FR FC LFE BC SL SR
    8: (1.0, 1.0, 1.0, 0.0, 1.41, 1.41, 1.41, 1.41),  # FL FR FC LFE BL BR SL SR
}
LAYOUT_NAMES: dict[int, str] = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def measure_loudness(audio: np.ndarray, sample_rate: int) -> Loudness:
    """Integrated loudness (BS.1770-4), or the labelled short-file fallback (see the module notes).

    Parameters
    ----------
    audio : np.ndarray [shape=(frames,) or (frames, channels)]
        Samples, full scale = 1, finite.
    sample_rate : int
        Hz.

    Returns
    -------
    Loudness
        ``gated`` True and :func:`integrated_loudness`'s value for audio of at least one 400 ms
        block; else ``gated`` False and the K-weighted RMS level over the whole length.
    """
    x = np.asarray(audio, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    duration = x.shape[0] / sample_rate
    if x.shape[0] >= BLOCK_S * sample_rate:
        return Loudness(_integrated(x, sample_rate), True, duration)
    if x.shape[0] == 0:
        return Loudness(-math.inf, False, 0.0)
    meter = pyloudnorm.Meter(sample_rate)
    weights = (1.0,) * x.shape[1] if x.shape[1] <= 2 else _LAYOUT_WEIGHTS.get(x.shape[1], (1.0,) * x.shape[1])
    z = 0.0
    for ch, w in enumerate(weights):
        if w == 0.0:
            continue
        y = x[:, ch]
        for stage in meter._filters.values():  # pyloudnorm's own K-weighting, as in its meter
            y = stage.apply_filter(y)
        z += w * float(np.mean(np.square(y)))
    lufs = -0.691 + 10.0 * math.log10(z) if z > 0.0 else -math.inf
    return Loudness(lufs if lufs >= LOUDNESS_FLOOR_LUFS else -math.inf, False, duration)


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4, EBU R128) in LUFS.

    Parameters
    ----------
    audio : np.ndarray [shape=(frames,) or (frames, channels)]
        Samples, full scale = 1, finite.
    sample_rate : int
        Hz (the K-weighting filters are designed for it).

    Returns
    -------
    float
        LUFS; ``-inf`` when no 400 ms block passes the -70 LUFS absolute gate. Audio shorter
        than 400 ms has no integrated loudness: its value is :func:`measure_loudness`'s
        K-weighted RMS fallback (never a zero-padded block); use that function to know which.

    Notes
    -----
    Mono and stereo go straight through ``pyloudnorm.Meter.integrated_loudness``. For 3 or more
    channels the channel weights follow the default layout for the count (as ffmpeg assumes
    it: 2.1, quad, 5.0, 5.1, 6.1, 7.1; LFE weight 0, surround and back channels 1.41; every
    channel 1 beyond 8): pyloudnorm measures each channel's K-weighted 400 ms block powers and
    the weighted sum is gated per BS.1770-4 (absolute -70 LUFS, relative -10 LU).
    """
    return measure_loudness(audio, sample_rate).lufs


def _integrated(x: np.ndarray, sample_rate: int) -> float:
    """BS.1770-4 integrated loudness of ``x`` (frames, channels), at least one block long."""
    meter = pyloudnorm.Meter(sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if x.shape[1] <= 2:
            return float(meter.integrated_loudness(x if x.shape[1] > 1 else x[:, 0]))
        weights = _LAYOUT_WEIGHTS.get(x.shape[1], (1.0,) * x.shape[1])
        z: np.ndarray | None = None
        for ch, w in enumerate(weights):
            if w == 0.0:
                continue
            meter.integrated_loudness(x[:, ch])
            blocks = getattr(meter, "blockwise_loudness", None)  # pyloudnorm >= 0.2
            if blocks is None:
                log.warning(
                    "this pyloudnorm has no per-block loudness; measuring the first "
                    "%d of %d channels with its own weights",
                    min(5, x.shape[1]),
                    x.shape[1],
                )
                return float(meter.integrated_loudness(x[:, :5]))
            zc = w * 10.0 ** ((np.asarray(blocks, dtype=float) + 0.691) / 10.0)
            z = zc if z is None else z + zc
    return _gate(np.asarray(z))
