"""Hop-framed FFT convolution: many voices, time-varying filters, sums in the frequency domain.

Two convolvers share one framing so that everything downstream is block-size independent:
the stream is cut into hops of ``H`` samples counted from the start of the render, and the
output of hop ``j`` depends only on the input up to the end of hop ``j``.

:class:`ConvolutionEngine` (moving sources)
    Overlap-save with an FFT of ``N >= H + M`` samples per hop, one frame FFT per voice per
    hop, shared by all output channels. Each voice has a filter *spectrum* per output channel
    at every hop boundary; within hop ``j`` the output is
    ``(1 - r) * (Phi_j * x) + r * (Phi_{j+1} * x)`` with ``r = n / H``. Cross-fading the
    outputs of the two filters with a linear ramp equals filtering with the per-sample
    linearly interpolated filter, so position changes are click- and zipper-free. All voices
    are summed per channel in the frequency domain (two accumulators: old and new filters),
    then one inverse FFT per channel and hop.

:class:`FIRBank` (static filters)
    Uniformly partitioned overlap-save (partition = hop, FFT = 2 hops) for fixed FIR filters
    such as the diffuse-field equaliser and the decorrelation filters; no extra latency.

Everything is float32 / complex64; the arithmetic of one hop never depends on how many hops a
call processes, so output is bit-identical for any block size (tested).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

__all__ = ["ConvolutionEngine", "FIRBank", "frame_size", "smooth_size"]


def smooth_size(n: int, primes: tuple[int, ...] = (2, 3, 5, 7)) -> bool:
    """Tell whether ``n`` has no prime factor outside ``primes`` (a fast FFT length)."""
    for p in primes:
        while n % p == 0 and n > 1:
            n //= p
    return n == 1


def frame_size(hop: int, filter_len: int) -> tuple[int, int, int]:
    """FFT length for the moving-source engine and a factorisation of its bin count.

    Parameters
    ----------
    hop : int
        Hop H in samples.
    filter_len : int
        Longest filter M in samples (look-ahead + largest delay + filter taps).

    Returns
    -------
    n_fft : int
        Smallest 7-smooth even length ``N >= hop + filter_len`` whose bin count
        ``B = N / 2 + 1`` factors as ``P * Q`` with ``Q <= P <= 2 Q`` (used to build per-bin
        phase ramps as an outer product of two short vectors).
    p, q : int
        The factors, ``p * q == N // 2 + 1``.
    """
    n = hop + filter_len
    n += n % 2
    while True:
        b = n // 2 + 1
        if smooth_size(n):
            q = math.isqrt(b)
            while q > 1 and (b % q or b // q > 2 * q):
                q -= 1
            if q > 1 and b % q == 0 and b // q <= 2 * q:
                return n, b // q, q
        n += 2


class ConvolutionEngine:
    """Time-varying overlap-save convolution of ``n_voices`` mono inputs to ``n_channels``.

    Parameters
    ----------
    n_voices : int
        Number of mono input voices V.
    n_channels : int
        Number of output channels C.
    hop : int
        Hop H in samples (the filter-update interval).
    n_fft : int
        Frame length N in samples; filters may be up to ``N - H`` samples long.
    moving : array_like of bool, shape (V,), optional
        Which voices get new filters at every hop (the others keep theirs until
        :meth:`set_filters`). Fixed for the engine's life, so the order in which voices are
        summed -- hence every output bit -- never depends on the block size.

    Notes
    -----
    The caller owns the filter spectra: shape ``(C, N // 2 + 1)`` complex64 per voice and
    boundary, i.e. ``rfft`` of the impulse response zero-padded to N. Taps beyond ``N - H``
    wrap (time aliasing), so filters must fit.
    """

    #: Voices multiplied and summed per vectorised step (fixed: part of the summation order).
    GROUP = 16

    def __init__(
        self,
        n_voices: int,
        n_channels: int,
        hop: int,
        n_fft: int,
        moving: NDArray[np.bool_] | None = None,
    ) -> None:
        if n_fft <= hop:
            raise ValueError(f"n_fft={n_fft} must exceed hop={hop} samples")
        self.n_voices, self.n_channels, self.hop, self.n_fft = n_voices, n_channels, hop, n_fft
        self.n_bins = n_fft // 2 + 1
        mask = np.zeros(n_voices, bool) if moving is None else np.asarray(moving, bool)
        if mask.shape != (n_voices,):
            raise ValueError(f"moving must have shape ({n_voices},), got {mask.shape}")
        self.moving_voices = np.flatnonzero(mask)
        self.static_voices = np.flatnonzero(~mask)
        self._fade = np.arange(hop, dtype=np.float32) / np.float32(hop)
        self._hist = np.zeros((n_voices, n_fft - hop), np.float32)
        # Filters at the current hop boundary, per voice: what the next hop fades from.
        self._phi = np.zeros((n_voices, n_channels, self.n_bins), np.complex64)

    def reset(self) -> None:
        """Clear the input history (filters are kept; set them again after a seek)."""
        self._hist[:] = 0.0

    @property
    def filters(self) -> NDArray[np.complex64]:
        """Current boundary filters, shape (V, C, B) complex64 (read-only view)."""
        v = self._phi.view()
        v.setflags(write=False)
        return v

    def set_filters(self, voices: NDArray[np.intp], phi: NDArray[np.complex64]) -> None:
        """Replace the boundary filters of some voices without a crossfade.

        Only inaudible when those voices are silent over the frame (or at start / after a
        seek); moving voices otherwise get their filters through :meth:`process`.

        Parameters
        ----------
        voices : ndarray of int, shape (n,)
            Voice indices.
        phi : ndarray of complex64, shape (n, C, B)
            Filter spectra.
        """
        self._phi[voices] = phi

    def active_voices(self, x: NDArray[np.float32]) -> NDArray[np.bool_]:
        """Voices whose frames over the coming hops are not all zero.

        A silent voice contributes exact zeros, so skipping it changes no output sample.

        Parameters
        ----------
        x : ndarray of float32, shape (V, J * H)
            The input the next :meth:`process` call will get.

        Returns
        -------
        ndarray of bool, shape (V,)
        """
        return np.logical_or(self._hist.any(axis=1), x.any(axis=1))

    def process(
        self,
        x: NDArray[np.float32],
        phi_next: NDArray[np.complex64] | None = None,
        active: NDArray[np.bool_] | None = None,
    ) -> NDArray[np.float32]:
        """Convolve J whole hops.

        Parameters
        ----------
        x : ndarray of float32, shape (V, J * H)
            Input samples of every voice for the next J hops.
        phi_next : ndarray of complex64, shape (Vm, J, C, B), optional
            Filters at the *end* of each hop (boundaries 1..J) of the active moving voices,
            in :attr:`moving_voices` order. Silent moving voices get theirs through
            :meth:`set_filters` instead.
        active : ndarray of bool, shape (V,), optional
            :meth:`active_voices` if already computed; inactive voices are skipped.

        Returns
        -------
        ndarray of float32, shape (C, J * H)
            Output samples. Within a hop the filter is interpolated linearly from the
            previous boundary's to the next one's.
        """
        H, N, C, B = self.hop, self.n_fft, self.n_channels, self.n_bins
        n = x.shape[1]
        if n % H:
            raise ValueError(f"process() needs whole hops: {n} samples is not a multiple of {H}")
        J = n // H
        if J == 0:
            return np.zeros((C, 0), np.float32)
        if active is None:
            active = self.active_voices(x)
        buf = np.concatenate([self._hist, x], axis=1)
        self._hist = np.ascontiguousarray(buf[:, -(N - H) :])
        mv, sv = self.moving_voices, self.static_voices
        act_m, act_s = active[mv], active[sv]
        n_m = int(act_m.sum())
        if phi_next is None:
            phi_next = np.zeros((0, J, C, B), np.complex64)
        if phi_next.shape[0] != n_m:
            raise ValueError(
                f"phi_next has {phi_next.shape[0]} rows for {n_m} active moving voices"
            )
        acc_s = np.zeros((J, C, B), np.complex64)
        acc_o = acc_n = None
        G = self.GROUP
        if act_s.any():
            for g in range(0, len(sv), G):
                members = sv[g : g + G][act_s[g : g + G]]
                if members.size:
                    xs = self._spectra(buf, members, J)[:, :, None, :]  # (k, J, 1, B)
                    acc_s += (self._phi[members][:, None] * xs).sum(axis=0)
        if n_m:
            acc_o = np.zeros((J, C, B), np.complex64)
            acc_n = np.zeros((J, C, B), np.complex64)
            rows = np.cumsum(act_m) - 1  # row of each moving voice in phi_next
            for g in range(0, len(mv), G):
                sel = act_m[g : g + G]
                members = mv[g : g + G][sel]
                if not members.size:
                    continue
                xs = self._spectra(buf, members, J)[:, :, None, :]
                pn = phi_next[rows[g : g + G][sel]]  # (k, J, C, B)
                acc_n += (pn * xs).sum(axis=0)
                acc_o[:1] += (self._phi[members][:, None] * xs[:, :1]).sum(axis=0)
                if J > 1:
                    acc_o[1:] += (pn[:, :-1] * xs[:, 1:]).sum(axis=0)
            self._phi[mv[act_m]] = phi_next[:, -1]
        if acc_o is None:
            y = sfft.irfft(acc_s, N, axis=-1)[..., N - H :]
        else:
            assert acc_n is not None
            acc_o += acc_s
            acc_n += acc_s
            y_o = sfft.irfft(acc_o, N, axis=-1)[..., N - H :]
            y_n = sfft.irfft(acc_n, N, axis=-1)[..., N - H :]
            y = y_o + self._fade * (y_n - y_o)
        # (J, C, H) -> (C, J * H)
        return np.ascontiguousarray(y.transpose(1, 0, 2)).reshape(C, J * H)

    def _spectra(
        self, buf: NDArray[np.float32], voices: NDArray[np.intp], J: int
    ) -> NDArray[np.complex64]:
        """Frame spectra (k, J, B) of some voices: frame j = the N samples ending with hop j."""
        H, N = self.hop, self.n_fft
        frames = np.lib.stride_tricks.sliding_window_view(buf[voices], N, axis=1)[:, ::H][:, :J]
        return sfft.rfft(frames, axis=-1)


class FIRBank:
    """Fixed FIR filters, uniformly partitioned (partition = hop), zero added latency.

    Parameters
    ----------
    filters : ndarray, shape (K, L)
        Impulse responses (any length; split into ceil(L / hop) partitions).
    hop : int
        Hop H in samples.
    shared_input : bool
        True: every filter reads the same mono input (``process`` takes shape (1, n)) -- e.g.
        the decorrelation filters of one object. False: filter k reads input k (shape (K, n))
        -- e.g. a per-channel equaliser.
    """

    def __init__(
        self, filters: NDArray[np.floating], hop: int, *, shared_input: bool = False
    ) -> None:
        h = np.atleast_2d(np.asarray(filters, dtype=np.float64))
        self.hop = hop
        self.n_filters = h.shape[0]
        self.shared_input = shared_input
        self.n_parts = max(1, -(-h.shape[1] // hop))
        pad = np.zeros((h.shape[0], self.n_parts * hop))
        pad[:, : h.shape[1]] = h
        parts = pad.reshape(h.shape[0], self.n_parts, hop)
        # (K, P, H + 1): spectrum of each partition zero-padded to 2H.
        self._spec = sfft.rfft(parts, 2 * hop, axis=-1).astype(np.complex64)
        n_in = 1 if shared_input else self.n_filters
        self._hist = np.zeros((n_in, hop), np.float32)
        self._fdl = np.zeros((n_in, self.n_parts - 1, hop + 1), np.complex64)

    def reset(self) -> None:
        """Clear the input history and the frequency-domain delay line."""
        self._hist[:] = 0.0
        self._fdl[:] = 0.0

    def process(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Filter whole hops.

        Parameters
        ----------
        x : ndarray of float32, shape (1 or K, J * H)
            Input samples.

        Returns
        -------
        ndarray of float32, shape (K, J * H)
        """
        H, P = self.hop, self.n_parts
        n = x.shape[1]
        if n % H:
            raise ValueError(f"process() needs whole hops: {n} samples is not a multiple of {H}")
        J = n // H
        buf = np.concatenate([self._hist, np.asarray(x, np.float32)], axis=1)
        self._hist = np.ascontiguousarray(buf[:, -H:])
        frames = np.lib.stride_tricks.sliding_window_view(buf, 2 * H, axis=1)[:, ::H][:, :J]
        spec = sfft.rfft(frames, axis=-1)  # (n_in, J, H + 1)
        fdl = np.concatenate([self._fdl, spec], axis=1)  # (n_in, P - 1 + J, H + 1)
        self._fdl = np.ascontiguousarray(fdl[:, fdl.shape[1] - (P - 1) :]) if P > 1 else self._fdl
        acc = np.zeros((self.n_filters, J, H + 1), np.complex64)
        for p in range(P):
            # Partition p meets the input spectrum p hops older.
            acc += self._spec[:, p, None, :] * fdl[:, P - 1 - p : P - 1 - p + J]
        y = sfft.irfft(acc, 2 * H, axis=-1)[..., H:]
        return np.ascontiguousarray(y).reshape(self.n_filters, J * H)
