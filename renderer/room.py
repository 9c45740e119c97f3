"""The room: first-order image sources of a shoebox, and a feedback-delay-network reverb.

* :class:`Shoebox`: the scene's ``bed.room_preset`` as a rectangular room (size and RT60 from
  :data:`gravity.vocab.ROOM_PRESETS`) with the listener near its centre. Each object gets one
  image source per surface (6; 1 -- the ground -- outdoors), each with its own direction,
  distance (hence delay and 1/r attenuation) and reflection coefficient (from Sabine's
  formula and the preset's RT60). The renderer plays them through the same HRTF engine as
  the direct sound.
* :class:`FDNReverb`: a 16-line feedback delay network (Jot): line lengths from the room's
  mean free path, per-line gains for the preset's RT60 and one-pole damping so highs die
  faster, a Hadamard feedback matrix, a velvet-noise diffuser in front, and mutually orthogonal
  output taps, so the output channels are decorrelated (binaural: additionally coherent
  below ~250 Hz like a real diffuse field at two ears). Output energy is normalised: an
  impulse into the reverb gives unit energy per output channel.

Coordinates: metres; x = front, y = left, z = up (SOFA / Gravity convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gravity.vocab import ROOM_PRESETS

from .config import SPEED_OF_SOUND_M_S

__all__ = ["Shoebox", "FDNReverb", "fdn_line_lengths"]


@dataclass(frozen=True)
class Shoebox:
    """A rectangular room and the listener in it.

    Attributes
    ----------
    size_m : (float, float, float)
        Length (x, front-back), width (y), height (z) in metres.
    listener_m : (float, float, float)
        Listener's ear position in room coordinates (metres).
    reflection : tuple of 6 float
        Pressure reflection coefficients of the surfaces x=0 (back), x=L (front), y=0
        (right), y=W (left), z=0 (floor), z=H (ceiling); 0 = no reflection.
    rt60_s : float
        Reverberation time in seconds.
    """

    size_m: tuple[float, float, float]
    listener_m: tuple[float, float, float]
    reflection: tuple[float, float, float, float, float, float]
    rt60_s: float

    @classmethod
    def from_preset(cls, name: str) -> "Shoebox":
        """Room of a ``bed.room_preset`` name.

        The listener sits at the centre of the floor plan with the ears at 1.2 m (or half the
        height if lower). Surfaces share one absorption coefficient from Sabine's formula
        ``alpha = 0.161 V / (S RT60)`` (clipped to [0.05, 0.95]); reflection coefficient
        ``sqrt(1 - alpha)``. ``outdoor`` has only the ground (coefficient 0.6).

        Parameters
        ----------
        name : str
            A key of :data:`gravity.vocab.ROOM_PRESETS`.

        Returns
        -------
        Shoebox
        """
        if name not in ROOM_PRESETS:
            raise ValueError(f"unknown room preset {name!r}; expected one of {sorted(ROOM_PRESETS)}")
        p = ROOM_PRESETS[name]
        L, W, H = p.size_m
        listener = (L / 2.0, W / 2.0, min(1.2, H / 2.0))
        if name == "outdoor":
            refl = (0.0, 0.0, 0.0, 0.0, 0.6, 0.0)
        else:
            volume, area = L * W * H, 2.0 * (L * W + L * H + W * H)
            alpha = float(np.clip(0.161 * volume / (area * p.rt60_s), 0.05, 0.95))
            refl = (float(np.sqrt(1.0 - alpha)),) * 6
        return cls(size_m=(L, W, H), listener_m=listener, reflection=refl, rt60_s=p.rt60_s)

    @property
    def surfaces(self) -> NDArray[np.intp]:
        """Indices of the reflecting surfaces (coefficient > 0)."""
        return np.flatnonzero(np.asarray(self.reflection) > 0.0)

    @property
    def mean_free_path_m(self) -> float:
        """Mean free path 4 V / S in metres."""
        L, W, H = self.size_m
        return 4.0 * L * W * H / (2.0 * (L * W + L * H + W * H))

    @property
    def max_extra_path_m(self) -> float:
        """Upper bound of (image path - direct path) in metres for sources inside the room."""
        return 2.0 * float(np.linalg.norm(self.size_m))

    def images(
        self, az_deg: ArrayLike, el_deg: ArrayLike, dist_m: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """First-order image sources of sources given relative to the listener.

        A source outside the room is first moved onto the wall (10 cm inside) along its
        direction, so its images stay plausible.

        Parameters
        ----------
        az_deg, el_deg, dist_m : array_like, shape S
            Source directions (degrees, +az = left) and distances (metres) from the listener.

        Returns
        -------
        az_deg, el_deg, dist_m : ndarray, shape S + (n_surfaces,)
            Image directions and distances from the listener, for :attr:`surfaces` in order.
        """
        az = np.radians(np.asarray(az_deg, float))
        el = np.radians(np.asarray(el_deg, float))
        d = np.asarray(dist_m, float)
        az, el, d = np.broadcast_arrays(az, el, d)
        u = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
        lis = np.asarray(self.listener_m)
        size = np.asarray(self.size_m)
        margin = 0.1
        # Largest distance along u that stays `margin` inside every wall.
        with np.errstate(divide="ignore", invalid="ignore"):
            lim = np.where(u > 0, (size - margin - lis) / u, np.where(u < 0, (margin - lis) / u, np.inf))
        d_in = np.minimum(d, lim.min(axis=-1))
        p = lis + d_in[..., None] * u  # room coordinates
        out = []
        for s in self.surfaces:
            axis, far = divmod(int(s), 2)
            q = p.copy()
            q[..., axis] = 2.0 * (size[axis] if far else 0.0) - p[..., axis]
            out.append(q - lis)
        v = np.stack(out, axis=-2)  # S + (n_surfaces, 3)
        r = np.linalg.norm(v, axis=-1)
        img_az = np.degrees(np.arctan2(v[..., 1], v[..., 0]))
        img_el = np.degrees(np.arcsin(np.clip(v[..., 2] / np.maximum(r, 1e-9), -1.0, 1.0)))
        return img_az, img_el, r


def _primes_near(targets: NDArray[np.float64]) -> NDArray[np.intp]:
    """Distinct primes, each the smallest unused prime >= its target (mutually prime lengths)."""
    out: list[int] = []
    for t in targets:
        n = max(3, int(np.ceil(t)))
        while True:
            if n not in out and n > 1 and all(n % k for k in range(2, int(n**0.5) + 1)):
                out.append(n)
                break
            n += 1
    return np.asarray(out, np.intp)


def fdn_line_lengths(room: Shoebox, sample_rate: float, n_lines: int = 16) -> NDArray[np.intp]:
    """Delay-line lengths of the FDN in samples.

    Geometrically spaced primes from the room's mean free time (clipped to 10..25 ms) to 2.7x
    that, so the modal density follows the room size and no two lines share a period.

    Parameters
    ----------
    room : Shoebox
        The room.
    sample_rate : float
        Sample rate in Hz.
    n_lines : int
        Number of lines.

    Returns
    -------
    ndarray of int, shape (n_lines,)
    """
    lo = float(np.clip(room.mean_free_path_m / SPEED_OF_SOUND_M_S, 0.010, 0.025)) * sample_rate
    return _primes_near(lo * 2.7 ** (np.arange(n_lines) / (n_lines - 1)))


def _wht(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Orthonormal fast Walsh-Hadamard transform along axis 0 (length a power of two).

    Butterflies only (adds and subtracts per element), so the result of each column does
    not depend on how many columns there are.
    """
    n = x.shape[0]
    rest = x.shape[1:]
    y = np.ascontiguousarray(x)
    out = np.empty_like(y)
    h = 1
    while h < n:
        a = y.reshape((n // (2 * h), 2, h) + rest)
        o = out.reshape(a.shape)
        np.add(a[:, 0], a[:, 1], out=o[:, 0])
        np.subtract(a[:, 0], a[:, 1], out=o[:, 1])
        y, out = out, y
        h *= 2
    return y * np.float32(1.0 / np.sqrt(n))


class _VelvetDiffuser:
    """Sparse FIR diffuser (velvet noise): one tap of random sign per ``grid_ms``, decaying.

    Turns each input event into a dense-sounding burst before the FDN, so the reverb's onset
    is smooth rather than a few discrete echoes. Unit energy; taps at random positions.
    """

    def __init__(self, sample_rate: int, seed: int, length_ms: float = 25.0, grid_ms: float = 1.0) -> None:
        rng = np.random.default_rng(seed)
        grid = max(1, int(round(grid_ms * 1e-3 * sample_rate)))
        n_taps = max(1, int(length_ms / grid_ms))
        self.delays = (np.arange(n_taps) * grid + rng.integers(0, grid, n_taps)).astype(np.intp)
        amp = rng.choice([-1.0, 1.0], n_taps) * 10.0 ** (-1.5 * np.arange(n_taps) / n_taps)  # -30 dB at the end
        self.gains = (amp / np.sqrt(np.sum(amp**2))).astype(np.float32)
        self._hist = np.zeros(int(self.delays.max()), np.float32)

    def reset(self) -> None:
        self._hist[:] = 0.0

    def process(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        n = len(x)
        buf = np.concatenate([self._hist, x])
        h = len(self._hist)
        y = np.zeros(n, np.float32)
        for d, g in zip(self.delays, self.gains, strict=True):
            y += g * buf[h - d : h - d + n]
        self._hist = buf[len(buf) - h :] if h else self._hist
        return y


class FDNReverb:
    """Late reverberation: a 16-line feedback delay network.

    Parameters
    ----------
    room : Shoebox
        Size (line lengths) and RT60.
    sample_rate : int
        Sample rate in Hz.
    n_out : int
        Output channels (mutually orthogonal taps; at most 16).
    out_gains : array_like, shape (n_out,), optional
        Gain per output channel (e.g. SN3D diffuse-field weights ``1 / sqrt(2l + 1)`` for
        Ambisonics). Default 1.
    binaural_coherence : bool
        For 2-channel outputs: make the channels coherent below ~250 Hz (a diffuse field at
        two ears 18 cm apart is), decorrelated above.
    hf_ratio : float
        RT60 at Nyquist relative to RT60 at DC.
    seed : int
        Seed of the injection / output sign patterns.

    Notes
    -----
    Processing runs in blocks no longer than the shortest line, so every sample read from a
    line was written in an earlier block; every operation is per-sample or elementwise, so
    the output does not depend on how the input is split.
    """

    N_LINES = 16

    def __init__(
        self,
        room: Shoebox,
        sample_rate: int,
        n_out: int = 2,
        out_gains: ArrayLike | None = None,
        *,
        binaural_coherence: bool = False,
        hf_ratio: float = 0.4,
        seed: int = 0,
    ) -> None:
        if not 1 <= n_out <= self.N_LINES:
            raise ValueError(f"n_out={n_out} must be in 1..{self.N_LINES}")
        self.sample_rate = sample_rate
        self.rt60_s = room.rt60_s
        self.n_out = n_out
        self.lengths = fdn_line_lengths(room, sample_rate, self.N_LINES)
        self.block = int(self.lengths.min())
        rng = np.random.default_rng(seed)
        # Per-line gain for the DC decay, exact per line: -60 dB after rt60_s whatever the length.
        self._g = (10.0 ** (-3.0 * self.lengths / (sample_rate * room.rt60_s))).astype(np.float32)
        # High-frequency damping: a unity-DC one-pole per group of 4 lines of similar length
        # (lines are sorted by length), its pole set from the group's mean length so that the
        # decay at Nyquist is rt60_s * hf_ratio (Jot & Chaigne 1991). Grouping keeps it to 4
        # filter calls per block; within a group the lengths differ by < 25 %.
        self._groups = [slice(i, i + 4) for i in range(0, self.N_LINES, 4)]
        self._damp = []
        for g in self._groups:
            m = float(self.lengths[g].mean())
            k = 10.0 ** (-3.0 * m / sample_rate * (1.0 / (room.rt60_s * hf_ratio) - 1.0 / room.rt60_s))
            pole = (1.0 - k) / (1.0 + k)
            self._damp.append((np.array([1.0 - pole]), np.array([1.0, -pole])))
        self._inject = (rng.choice([-1.0, 1.0], self.N_LINES) / np.sqrt(self.N_LINES)).astype(np.float32)
        # Output taps: the first n_out rows of an orthonormal Hadamard transform of the
        # sign-flipped line outputs -- mutually orthogonal, so the channels are decorrelated.
        self._flips = rng.choice([-1.0, 1.0], self.N_LINES).astype(np.float32)
        self._out_gains = np.ones(n_out) if out_gains is None else np.asarray(out_gains, float)
        self._diffuser = _VelvetDiffuser(sample_rate, seed + 1)
        self._coherence = binaural_coherence and n_out == 2
        from scipy import signal  # only with a reverb: scipy.signal takes ~0.5 s to import

        self._lfilter = signal.lfilter
        fc = 250.0
        self._lp_b, self._lp_a = signal.butter(1, fc, "low", fs=sample_rate)
        self._ring_len = int(self.lengths.max()) + self.block
        self.reset()
        self._scale = self._out_gains / np.sqrt(self._impulse_energy())
        self.reset()

    def reset(self) -> None:
        """Silence the network (all delay lines and filter states to zero)."""
        self._ring = np.zeros((self.N_LINES, self._ring_len), np.float32)
        self._w = 0
        self._zi = [np.zeros((4, 1)) for _ in self._groups]
        self._diffuser.reset()
        self._mid_zi = np.zeros(1)
        self._side_zi = np.zeros(1)
        self._scale = getattr(self, "_scale", np.ones(self.n_out))

    def _impulse_energy(self) -> NDArray[np.float64]:
        n = int(1.2 * self.rt60_s * self.sample_rate) + int(self.lengths.max()) * 2
        x = np.zeros(n, np.float32)
        x[0] = 1.0
        self._scale = np.ones(self.n_out)
        y = self._run(x)
        return np.maximum(np.sum(y.astype(np.float64) ** 2, axis=1), 1e-30)

    def _run(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        n = len(x)
        u = self._diffuser.process(x)
        out = np.empty((self.n_out, n), np.float32)
        R = self._ring_len
        s = 0
        while s < n:
            b = min(self.block, n - s)
            # Every line is at least `block` long: what is read here was written before.
            idx = (self._w + np.arange(b))[None, :] - self.lengths[:, None]
            y = np.take_along_axis(self._ring, idx % R, axis=1)  # (16, b) line outputs
            out[:, s : s + b] = _wht(y * self._flips[:, None])[: self.n_out]
            damped = y * self._g[:, None]
            for k, (g, (bb, aa)) in enumerate(zip(self._groups, self._damp, strict=True)):
                damped[g], self._zi[k] = self._lfilter(bb, aa, damped[g], axis=1, zi=self._zi[k])
            fb = _wht(damped) + self._inject[:, None] * u[s : s + b]
            self._ring[:, (self._w + np.arange(b)) % R] = fb
            self._w = (self._w + b) % R
            s += b
        return out

    def process(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Reverberate a mono send.

        Parameters
        ----------
        x : ndarray of float32, shape (n,)
            Send signal (sum of each object's signal x gain x reverb_send).

        Returns
        -------
        ndarray of float32, shape (n_out, n)
            Reverb outputs (impulse-response energy 1 x ``out_gains**2`` per channel).
        """
        y = self._run(np.asarray(x, np.float32)) * self._scale[:, None].astype(np.float32)
        if self._coherence:
            # Mid/side: side high-passed (coherent lows), mid's lows raised 3 dB so the low
            # end keeps the power the removed side carried.
            mid = 0.5 * (y[0] + y[1]).astype(np.float64)
            side = 0.5 * (y[0] - y[1]).astype(np.float64)
            low_side, self._side_zi = self._lfilter(self._lp_b, self._lp_a, side, zi=self._side_zi)
            low_mid, self._mid_zi = self._lfilter(self._lp_b, self._lp_a, mid, zi=self._mid_zi)
            side = side - low_side
            mid = mid + (np.sqrt(2.0) - 1.0) * low_mid
            y = np.stack([mid + side, mid - side]).astype(np.float32)
        return y
