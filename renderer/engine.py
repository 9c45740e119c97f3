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
from numpy.typing import NDArray

from . import fft as sfft  # scipy's pocketfft, without scipy.fft's import
from .kernels import FilterParams, FilterTables, moving_mac, static_mac
from .parallel import for_ranges

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
    tables : renderer.kernels.FilterTables, optional
        The output format's grid and air table, from which the kernels build the moving
        voices' filters per hop (required when there are moving voices).

    Notes
    -----
    Filter spectra have shape ``(C, N // 2 + 1)`` complex64 per voice and boundary, i.e.
    ``rfft`` of the impulse response zero-padded to N. Taps beyond ``N - H`` wrap (time
    aliasing), so filters must fit.
    """

    #: Voices whose frames are transformed in one batched FFT (bounds scratch memory).
    GROUP = 16

    def __init__(
        self,
        n_voices: int,
        n_channels: int,
        hop: int,
        n_fft: int,
        moving: NDArray[np.bool_] | None = None,
        tables: FilterTables | None = None,
    ) -> None:
        if n_fft <= hop:
            raise ValueError(f"n_fft={n_fft} must exceed hop={hop} samples")
        self.n_voices, self.n_channels, self.hop, self.n_fft = n_voices, n_channels, hop, n_fft
        self.n_bins = n_fft // 2 + 1
        if tables is not None and tables.grid.shape[1:] != (n_channels, self.n_bins):
            raise ValueError(f"filter tables {tables.grid.shape} do not fit {n_channels} x {self.n_bins}")
        self.tables = tables
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
        params: FilterParams | None = None,
        active: NDArray[np.bool_] | None = None,
        threads: int = 1,
    ) -> NDArray[np.float32]:
        """Convolve J whole hops.

        Parameters
        ----------
        x : ndarray of float32, shape (V, J * H)
            Input samples of every voice for the next J hops.
        params : FilterParams, leading shape (Vm, J), optional
            Filters at the *end* of each hop (boundaries 1..J) of the active moving voices,
            in :attr:`moving_voices` order, built by the kernels from :attr:`tables`. Silent
            moving voices get theirs through :meth:`set_filters` instead.
        active : ndarray of bool, shape (V,), optional
            :meth:`active_voices` if already computed; inactive voices are skipped.
        threads : int
            Threads sharing the hops (the output is bit-identical for any count).

        Returns
        -------
        ndarray of float32, shape (C, J * H)
            Output samples. Within a hop the filter is interpolated linearly from the
            previous boundary's to the next one's.
        """
        H, N, C = self.hop, self.n_fft, self.n_channels
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
        members_m, members_s = mv[active[mv]], sv[active[sv]]
        n_m = 0 if params is None else params.idx.shape[0]
        if n_m != len(members_m) or (n_m and params is not None and params.idx.shape[1] != J):
            raise ValueError(
                f"params cover {n_m} voices x {J if params is None else params.idx.shape[1]} "
                f"hops; expected {len(members_m)} active moving voices x {J} hops"
            )
        if n_m and self.tables is None:
            raise ValueError("moving voices need the engine's filter tables")
        y = np.empty((J, C, H), np.float32)
        last = np.empty((n_m, C, self.n_bins), np.complex64)

        def run(j0: int, j1: int) -> None:
            out = last if j1 == J else np.empty_like(last)
            y[j0:j1] = self._hops(buf, j0, j1, members_s, members_m, params, out)

        for_ranges(run, J, threads, self.MIN_HOPS_PER_THREAD)
        if n_m:
            self._phi[members_m] = last
        # (J, C, H) -> (C, J * H)
        return np.ascontiguousarray(y.transpose(1, 0, 2)).reshape(C, J * H)

    #: Fewest hops a thread takes (fewer: the thread hand-off costs more than it saves).
    MIN_HOPS_PER_THREAD = 4

    def _hops(
        self,
        buf: NDArray[np.float32],
        j0: int,
        j1: int,
        members_s: NDArray[np.intp],
        members_m: NDArray[np.intp],
        params: FilterParams | None,
        last: NDArray[np.complex64],
    ) -> NDArray[np.float32]:
        """Output (j1 - j0, C, H) of hops j0..j1-1: a pure function of its inputs and _phi."""
        H, N, C, B = self.hop, self.n_fft, self.n_channels, self.n_bins
        Jr = j1 - j0
        acc_s = np.zeros((Jr, C, B), np.complex64)
        G = self.GROUP
        for g in range(0, len(members_s), G):
            grp = members_s[g : g + G]
            static_mac(self._spectra(buf, grp, j0, j1), self._phi[grp], acc_s)
        if not len(members_m):
            return sfft.irfft(acc_s, N, axis=-1)[..., N - H :]
        assert params is not None and self.tables is not None
        t = self.tables
        acc_o, acc_n = acc_s.copy(), acc_s
        for g in range(0, len(members_m), G):
            grp = members_m[g : g + G]
            pg = params.at(slice(g, g + G))
            moving_mac(
                self._spectra(buf, grp, j0, j1), t.grid, pg.idx, pg.wgt, pg.delay, pg.air,
                t.air_table, self._phi[grp], t.p, t.q, N, j0, acc_o, acc_n, last[g : g + G],
            )  # fmt: skip
        y_o = sfft.irfft(acc_o, N, axis=-1)[..., N - H :]
        y_n = sfft.irfft(acc_n, N, axis=-1)[..., N - H :]
        return y_o + self._fade * (y_n - y_o)

    def _spectra(self, buf: NDArray[np.float32], voices: NDArray[np.intp], j0: int, j1: int) -> NDArray[np.complex64]:
        """Frame spectra (k, j1 - j0, B) of some voices: frame j = the N samples ending with hop j."""
        H, N = self.hop, self.n_fft
        frames = np.lib.stride_tricks.sliding_window_view(buf[voices], N, axis=1)[:, ::H][:, j0:j1]
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

    def __init__(self, filters: NDArray[np.floating], hop: int, *, shared_input: bool = False) -> None:
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
