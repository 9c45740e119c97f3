"""Integrated loudness (ITU-R BS.1770-4 / EBU R128) in LUFS, with ffmpeg's channel weights for 3+ channels.

Levels are in LUFS (loudness units re full scale); sample rates in Hz; audio is full scale = 1.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pyloudnorm

__all__ = ["integrated_loudness", "LAYOUT_NAMES", "LOUDNESS_FLOOR_LUFS"]

log = logging.getLogger(__name__)

LOUDNESS_FLOOR_LUFS = -70.0  # BS.1770 absolute gate; silent stems are reported at this level


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
        than 400 ms is zero-padded to one block.

    Notes
    -----
    Mono and stereo go straight through ``pyloudnorm.Meter.integrated_loudness``. For 3 or more
    channels the channel weights follow the default layout for the count (as ffmpeg assumes
    it: 2.1, quad, 5.0, 5.1, 6.1, 7.1; LFE weight 0, surround and back channels 1.41; every
    channel 1 beyond 8): pyloudnorm measures each channel's K-weighted 400 ms block powers and
    the weighted sum is gated per BS.1770-4 (absolute -70 LUFS, relative -10 LU).
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    block = int(math.ceil(0.4 * sample_rate))
    if x.shape[0] < block:
        x = np.concatenate([x, np.zeros((block - x.shape[0], x.shape[1]))])
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
