"""Compiled inner loops of the renderer (numba, GIL released).

A moving voice needs a new filter spectrum per output channel at every hop boundary::

    phi[c, b] = (sum_k wgt[c, k] * grid[idx[k], c, b]) * exp(-2 pi i b delay[c] / N) * air[b]

(bilinear HRTF lookup or pan gains, fractional delay as a phase ramp, air absorption), and
every hop multiplies two of them (the filters at its start and end, cross-faded by the
engine) with the voice's frame spectrum into two accumulators. In numpy that is ~25 passes
over complex arrays; fused here it is one read of the four grid rows and of the frame per
voice and hop, which is what makes 16+ moving sources cheap. The kernels release the GIL, so
:func:`renderer.parallel.for_ranges` runs hop ranges on several cores.

Every value depends only on its own hop's inputs and voices are summed in a fixed order, so
results do not depend on how hops are split into calls or threads (bit-identical).
:func:`lagrange_read` is the per-sample loop of time-varying (Doppler) delays.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = [
    "FilterParams", "FilterTables", "filters", "moving_mac", "static_mac", "lagrange_read",
]  # fmt: skip


class FilterParams(NamedTuple):
    """What the kernels need to build filter spectra, for a batch of voices / boundaries.

    Leading shape S is (R,) for R voices or (V, J) for V voices at J hop boundaries.

    Attributes
    ----------
    idx : ndarray of int32, shape S + (K,)
        Rows of the format's grid (4 bilinear corners for binaural, 1 for panned formats).
    wgt : ndarray of float32, shape S + (C, K)
        Weight of each corner per output channel (interpolation weight x gains).
    delay : ndarray of float64, shape S + (C,)
        Delay per output channel in samples (look-ahead + interaural + extra), applied as
        an exact phase ramp.
    air : ndarray of int32, shape S
        Row of the air-absorption table (row 0 is flat).
    """

    idx: NDArray[np.int32]
    wgt: NDArray[np.float32]
    delay: NDArray[np.float64]
    air: NDArray[np.int32]

    def at(self, sl: object) -> "FilterParams":
        """Index the leading axes of every field alike (e.g. ``p.at(mask)``, ``p.at((v, j))``)."""
        return FilterParams(self.idx[sl], self.wgt[sl], self.delay[sl], self.air[sl])


class FilterTables(NamedTuple):
    """An output format's tables: what :class:`FilterParams` index into.

    Attributes
    ----------
    grid : ndarray of complex64, shape (K, C, B)
        Spectra per grid point and channel (HRTF grid; a single row of ones for pan formats).
    air_table : ndarray of complex64, shape (A, B)
        Air-absorption responses (:class:`renderer.formats.AirTable`).
    p, q : int
        Factors of the bin count ``B = p * q`` (phase ramps as outer products).
    n_fft : int
        FFT length N.
    """

    grid: NDArray[np.complex64]
    air_table: NDArray[np.complex64]
    p: int
    q: int
    n_fft: int

    def filters(self, params: FilterParams) -> NDArray[np.complex64]:
        """Filter spectra (R, C, B) for params of leading shape (R,)."""
        return filters(self.grid, params.idx, params.wgt, params.delay, params.air,
                       self.air_table, self.p, self.q, self.n_fft)  # fmt: skip


@njit(nogil=True, cache=True)
def _filter(out, grid, idx, wgt, delay, air_row, p, q, n_fft, ramp, inner, outer):  # type: ignore[no-untyped-def]
    """Write one voice's filter spectra (C, B) into ``out`` (see the module docstring)."""
    n_ch, n_bins = out.shape
    n_k = idx.shape[0]
    for c in range(n_ch):
        # Phase ramp z^b with b = i * q + j as outer[i] * inner[j]: 2 sqrt(B) complex128
        # products per channel instead of B exponentials; error ~1e-15 before the cast.
        arg = -2.0 * math.pi * delay[c] / n_fft
        z = complex(math.cos(arg), math.sin(arg))
        zk = 1.0 + 0.0j
        for j in range(q):
            inner[j] = zk
            zk *= z
        zi = 1.0 + 0.0j
        for i in range(p):
            outer[i] = zi
            zi *= zk
        for i in range(p):
            for j in range(q):
                ramp[i * q + j] = np.complex64(outer[i] * inner[j])
        o = out[c]
        # Separate simple loops over bins (they vectorise); corners unrolled for bilinear.
        if n_k == 4:
            g0, g1, g2, g3 = grid[idx[0], c], grid[idx[1], c], grid[idx[2], c], grid[idx[3], c]
            w0, w1, w2, w3 = wgt[c, 0], wgt[c, 1], wgt[c, 2], wgt[c, 3]
            for b in range(n_bins):
                o[b] = (w0 * g0[b] + w1 * g1[b] + w2 * g2[b] + w3 * g3[b]) * ramp[b] * air_row[b]
        else:
            for b in range(n_bins):
                o[b] = wgt[c, 0] * grid[idx[0], c, b]
            for k in range(1, n_k):
                gk, wk = grid[idx[k], c], wgt[c, k]
                for b in range(n_bins):
                    o[b] += wk * gk[b]
            for b in range(n_bins):
                o[b] = o[b] * ramp[b] * air_row[b]
    return out


@njit(nogil=True, cache=True)
def filters(grid, idx, wgt, delay, air, air_table, p, q, n_fft):  # type: ignore[no-untyped-def]
    """Filter spectra (R, C, B) complex64 of R voices (FilterParams fields with S = (R,))."""
    n_r = idx.shape[0]
    n_ch, n_bins = grid.shape[1], grid.shape[2]
    out = np.empty((n_r, n_ch, n_bins), np.complex64)
    ramp = np.empty(n_bins, np.complex64)
    inner = np.empty(q, np.complex128)
    outer = np.empty(p, np.complex128)
    for r in range(n_r):
        _filter(out[r], grid, idx[r], wgt[r], delay[r], air_table[air[r]], p, q, n_fft,
                ramp, inner, outer)  # fmt: skip
    return out


@njit(nogil=True, cache=True)
def moving_mac(x, grid, idx, wgt, delay, air, air_table, prev, p, q, n_fft, j0, acc_o, acc_n, last):  # type: ignore[no-untyped-def]
    """Accumulate moving voices into the old/new-filter sums of hops j0 .. j0 + Jr - 1.

    Parameters
    ----------
    x : complex64 (V, Jr, B)
        Frame spectra of the range's hops.
    grid, air_table : the format's tables; idx, wgt, delay, air: FilterParams (V, J, ...)
        of the filters at the *end* of every hop of the call (boundaries 1..J).
    prev : complex64 (V, C, B)
        Filters at the call's first boundary (used when j0 == 0).
    acc_o, acc_n : complex64 (Jr, C, B)
        Sums with the hop's start / end filters (accumulated in place, voices in order).
    last : complex64 (V, C, B)
        Receives the filters at the range's end boundary.
    """
    n_v, n_j, n_bins = x.shape
    n_ch = grid.shape[1]
    cur = np.empty((n_ch, n_bins), np.complex64)
    nxt = np.empty((n_ch, n_bins), np.complex64)
    ramp = np.empty(n_bins, np.complex64)
    inner = np.empty(q, np.complex128)
    outer = np.empty(p, np.complex128)
    for v in range(n_v):
        if j0 == 0:
            cur[:, :] = prev[v]
        else:  # the end filter of hop j0 - 1, recomputed exactly as that hop's range did
            _filter(cur, grid, idx[v, j0 - 1], wgt[v, j0 - 1], delay[v, j0 - 1],
                    air_table[air[v, j0 - 1]], p, q, n_fft, ramp, inner, outer)
        for jj in range(n_j):
            j = j0 + jj
            _filter(nxt, grid, idx[v, j], wgt[v, j], delay[v, j], air_table[air[v, j]],
                    p, q, n_fft, ramp, inner, outer)
            xs = x[v, jj]
            for c in range(n_ch):
                an, ao, fn, fo = acc_n[jj, c], acc_o[jj, c], nxt[c], cur[c]
                for b in range(n_bins):
                    an[b] += fn[b] * xs[b]
                    ao[b] += fo[b] * xs[b]
            cur, nxt = nxt, cur
        last[v, :, :] = cur


@njit(nogil=True, cache=True)
def static_mac(x, phi, acc):  # type: ignore[no-untyped-def]
    """``acc[j] += sum_v phi[v] * x[v, j]`` (voices in order): x (V, Jr, B), phi (V, C, B)."""
    n_v, n_j, n_bins = x.shape
    n_ch = phi.shape[1]
    for v in range(n_v):
        for jj in range(n_j):
            xs = x[v, jj]
            for c in range(n_ch):
                a, f = acc[jj, c], phi[v, c]
                for b in range(n_bins):
                    a[b] += f[b] * xs[b]


@njit(nogil=True, cache=True)
def lagrange_read(buf, rows, start, tau, hop, out):  # type: ignore[no-untyped-def]
    """Time-varying fractional-delay reads (cubic Lagrange, Farrow form) into ``out``.

    Parameters
    ----------
    buf : float32 (n_inputs, width)
        Linear history buffer; the block read starts at column ``start``.
    rows : int (V,)
        Input row of each voice.
    tau : float64 (V, J + 1)
        Delays in samples at the hop boundaries (first = the block's start), >= 2.
    hop : int
        Samples per hop; the delay is linear in between (Doppler without steps).
    out : float32 (V, J * hop)
        Output samples.
    """
    n_v = out.shape[0]
    n_j = tau.shape[1] - 1
    half, sixth = np.float32(0.5), np.float32(1.0 / 6.0)
    ramp = np.empty(hop, np.float32)  # position in the hop, 0 .. (hop - 1) / hop
    for h in range(hop):
        ramp[h] = np.float32(h) / np.float32(hop)
    for v in range(n_v):
        src = buf[rows[v]]
        for j in range(n_j):
            # Integer part of the hop's start delay plus a float32 remainder: each sample
            # depends only on the boundary delays and its position in the hop.
            base = math.floor(tau[v, j])
            r0 = np.float32(tau[v, j] - base)
            slope = np.float32(tau[v, j + 1] - tau[v, j])
            k0 = start + j * hop - int(base)
            o = out[v, j * hop : (j + 1) * hop]
            for h in range(hop):
                t_loc = r0 + slope * ramp[h]
                ti = np.float32(math.ceil(t_loc))
                f = ti - t_loc
                i = k0 + h - int(ti)  # read position k - t = i + f
                xm1, x0, x1, x2 = src[i - 1], src[i], src[i + 1], src[i + 2]
                c2 = half * (xm1 + x1) - x0
                c3 = sixth * (x2 - xm1) + half * (x0 - x1)
                c1 = x1 - x0 - c2 - c3
                o[h] = x0 + f * (c1 + f * (c2 + f * c3))
