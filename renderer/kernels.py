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
:func:`lagrange_read` is the per-sample loop of time-varying (Doppler) delays;
:func:`peak_4x` the true-peak meter's oversampling loop; :func:`k_weighted_sums` the loudness
meter's K-weighting filter and gating-block energies.

Compiled once: every kernel is cached (``cache=True``) in a user cache directory,
``$GRAVITY_CACHE/numba`` (else ``$XDG_CACHE_HOME/gravity/numba``, else
``~/.cache/gravity/numba``), set through ``NUMBA_CACHE_DIR`` before numba is imported unless
the user has set that variable. Only the first render after an install (or after this file
changes) compiles, ~6 s; later processes load the machine code (numba's own set-up, ~0.4 s
once per process, then milliseconds per kernel). A cache
directory that cannot be written falls back to numba's own locations (beside this file, then
its user-wide cache), and with none at all the kernels compile in every process -- slower to
start, never broken.

Ahead of time: ``python -m renderer.aot`` (run by ``make install``) compiles the same kernels
into a plain extension module in ``<numba cache>/aot/<key>/`` (numba.pycc, for this CPU), keyed
by this file's bytes, the Python ABI, numpy's version and the CPU. A process that finds it
imports neither numba nor llvmlite (~0.3-0.7 s of every render: numba's import and its first
kernel load) and calls the same machine code; results are bit-identical (tested). Its kernels
hold no numba dispatcher, so each call checks its arguments against the compiled types
(dtype, dimensions, C order, writeable): a mismatch is a TypeError, never a wrong read.
``GRAVITY_KERNELS=jit`` ignores it; a missing or unloadable module falls back to the above.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FilterParams", "FilterTables", "filters", "moving_mac", "static_mac", "lagrange_read",
    "peak_4x", "k_weighted_sums", "numba_cache_dir", "aot_dir", "AHEAD_OF_TIME", "warm",
]  # fmt: skip

#: The kernels a render calls (the ahead-of-time module exports these, every version that
#: :func:`warm` loads), each with the arguments it writes into (checked to be writeable).
EXPORTED: dict[str, tuple[int, ...]] = {
    "filters": (), "moving_mac": (12, 13, 14), "static_mac": (2,), "lagrange_read": (5,), "peak_4x": (),
    "k_weighted_sums": (),
}  # fmt: skip
#: Name of the ahead-of-time extension module (its ``PyInit_`` symbol).
AOT_MODULE = "_gravity_kernels"

log = logging.getLogger(__name__)


def numba_cache_dir() -> Path:
    """Where Gravity caches its compiled kernels unless ``NUMBA_CACHE_DIR`` says otherwise."""
    root = os.environ.get("GRAVITY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gravity"
    )
    return Path(root) / "numba"


def _use_cache_dir() -> None:
    """Point numba's cache at :func:`numba_cache_dir` when the user has not chosen one."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    path = numba_cache_dir()
    try:  # numba skips an unwritable cache dir; checking here keeps its fallbacks in play
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        log.info("%s: not writable (%s); numba uses its own cache locations", path, exc)
        return
    os.environ["NUMBA_CACHE_DIR"] = str(path)
    if "numba" in sys.modules:  # imported before us: make its config read the variable now
        from numba.core import config

        config.reload_config()


def _cpu_id() -> str:
    """What the machine code was compiled for: the first CPU's model and feature flags."""
    try:  # Linux: stop at the first processor's block (a big machine lists hundreds)
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = []
            for line in f:
                if not line.strip():
                    break
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    lines.append(line.strip())
            return "\n".join(lines)
    except OSError:
        return platform.processor()


def aot_dir() -> Path:
    """Where this source's ahead-of-time kernels live for this Python, numpy and CPU."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(f"{sys.implementation.cache_tag}|{platform.machine()}|{np.__version__}|{_cpu_id()}".encode())
    root = Path(os.environ.get("NUMBA_CACHE_DIR") or numba_cache_dir())
    return root / "aot" / h.hexdigest()[:20]


def _checked(fns: list[Callable], name: str, versions: list[list[Any]]) -> Callable:
    """The versions ``fns`` of one kernel (compiled ahead of time for ``versions``), behind a
    check of the arguments that picks the version, as numba's dispatcher does.

    ``versions``: per version, per argument ``"int"`` or ``[dtype, ndim]``. The compiled code
    reads an array as C-contiguous of its dtype without looking: any other array would be read
    wrongly (or crash), so a call that matches no version is a TypeError.
    """
    writes = EXPORTED[name]
    specs = [[None if k == "int" else (np.dtype(k[0]), int(k[1])) for k in kinds] for kinds in versions]

    def fits(args: tuple[Any, ...], spec: list[Any]) -> bool:
        for i, (a, k) in enumerate(zip(args, spec, strict=True)):
            if k is None:
                if not hasattr(a, "__index__"):  # an integer (a float would be truncated silently)
                    return False
            elif not (
                isinstance(a, np.ndarray) and a.dtype == k[0] and a.ndim == k[1] and a.flags.c_contiguous
                and a.flags.aligned and (i not in writes or a.flags.writeable)
            ):  # fmt: skip
                return False
        return True

    def call(*args: Any) -> Any:
        if len(args) == len(specs[0]):
            for fn, spec in zip(fns, specs, strict=True):
                if fits(args, spec):
                    return fn(*args)
        got = ", ".join(f"{a.dtype}[{a.ndim}d{'' if a.flags.c_contiguous else ' strided'}"
                        f"{'' if a.flags.writeable else ' read-only'}]" if isinstance(a, np.ndarray)
                        else type(a).__name__ for a in args)  # fmt: skip
        want = " or ".join("(" + ", ".join("int" if k == "int" else f"{k[0]}[{k[1]}d]" for k in kinds) + ")"
                           for kinds in versions)  # fmt: skip
        raise TypeError(f"renderer.kernels.{name}: ({got}) matches none of its compiled versions {want} "
                        f"(C-contiguous arrays; arguments {list(writes)} writeable)")  # fmt: skip

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"Ahead-of-time compiled :func:`{name}` (arguments checked)."
    return call


def _ahead_of_time() -> dict[str, Callable] | None:
    """The checked kernels of the ahead-of-time module, or None (then numba compiles / loads)."""
    if os.environ.get("GRAVITY_KERNELS", "").strip().lower() == "jit":
        return None
    folder = aot_dir()
    try:
        kinds = json.loads((folder / "signatures.json").read_text(encoding="utf-8"))
        so = folder / (AOT_MODULE + importlib.machinery.EXTENSION_SUFFIXES[0])
        spec = importlib.util.spec_from_file_location(AOT_MODULE, so)
        if spec is None or spec.loader is None or not so.is_file():
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return {n: _checked([getattr(module, f"{n}__{v}") for v in range(len(kinds[n]))], n, kinds[n])
                for n in EXPORTED}  # fmt: skip
    except FileNotFoundError:
        return None
    except (ImportError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.info("%s: ahead-of-time kernels not usable (%s); numba compiles them", folder, exc)
        return None


_AOT = _ahead_of_time()
#: True when the kernels below are the ahead-of-time module's (numba not imported).
AHEAD_OF_TIME = _AOT is not None

if not AHEAD_OF_TIME:
    _use_cache_dir()
    from numba import njit  # only after NUMBA_CACHE_DIR is set


def _kernel(fn: Callable) -> Callable:
    """``njit(nogil=True, cache=True)``, or uncached where no cache location is writable; the
    plain function where the ahead-of-time module replaces it (bound at the end of the module).
    """
    if AHEAD_OF_TIME:
        return fn
    try:
        return njit(nogil=True, cache=True)(fn)
    except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
        log.info("%s: compiled in every process (%s)", fn.__name__, exc)
        return njit(nogil=True)(fn)


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

    def at(self, sl: Any) -> "FilterParams":
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


@_kernel
def _filter(out, grid, idx, wgt, delay, air_row, p, q, n_fft, ramp, inner, outer):
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


@_kernel
def filters(grid, idx, wgt, delay, air, air_table, p, q, n_fft):
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


@_kernel
def moving_mac(x, grid, idx, wgt, delay, air, air_table, prev, p, q, n_fft, j0, acc_o, acc_n, last):
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
            _filter(
                cur,
                grid,
                idx[v, j0 - 1],
                wgt[v, j0 - 1],
                delay[v, j0 - 1],
                air_table[air[v, j0 - 1]],
                p,
                q,
                n_fft,
                ramp,
                inner,
                outer,
            )
        for jj in range(n_j):
            j = j0 + jj
            _filter(nxt, grid, idx[v, j], wgt[v, j], delay[v, j], air_table[air[v, j]], p, q, n_fft, ramp, inner, outer)
            xs = x[v, jj]
            for c in range(n_ch):
                an, ao, fn, fo = acc_n[jj, c], acc_o[jj, c], nxt[c], cur[c]
                for b in range(n_bins):
                    an[b] += fn[b] * xs[b]
                    ao[b] += fo[b] * xs[b]
            cur, nxt = nxt, cur
        last[v, :, :] = cur


@_kernel
def static_mac(x, phi, acc):
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


@_kernel
def lagrange_read(buf, rows, start, tau, hop, out):
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


@_kernel
def peak_4x(y, taps, lead):
    """Sample peak and 4x-oversampled peak of ``y``, without storing the oversampled signal.

    Parameters
    ----------
    y : float32 (C, n)
        Signal.
    taps : float32 (4, K)
        Polyphase interpolator: the value at time ``i + p / 4`` (in samples) is
        ``sum_k taps[p, k] * y[c, i + lead - k]`` (samples outside the signal are zero).
    lead : int
        Look-ahead of the interpolator in samples, ``0 <= lead < K``.

    Returns
    -------
    peak, true_peak : float
        Largest ``|y|`` and largest interpolated magnitude over all channels and phases.
    """
    n_c, n = y.shape
    n_p, n_k = taps.shape
    blk = 1024  # one phase of one block stays in L1; the tap loop below vectorises
    off = n_k - 1 - lead  # y[c, i] sits at xp[off + i]: zero history before, zeros after
    xp = np.zeros(n + n_k + blk, np.float32)
    acc = np.empty(blk, np.float32)
    peak = np.float32(0.0)
    top = np.float32(0.0)
    for c in range(n_c):
        for i in range(n):
            xp[off + i] = y[c, i]
            peak = max(peak, abs(y[c, i]))
        for i0 in range(0, n, blk):
            m = min(blk, n - i0)
            for p in range(n_p):
                for i in range(m):
                    acc[i] = 0.0
                for k in range(n_k):
                    t = taps[p, k]
                    src = xp[i0 + n_k - 1 - k : i0 + n_k - 1 - k + m]  # y[c, i0 + lead - k + i]
                    for i in range(m):
                        acc[i] += t * src[i]
                for i in range(m):
                    top = max(top, abs(acc[i]))
    return float(peak), float(top)


@_kernel
def _sum_squares(a, s, n):
    """``np.sum(np.square(a[s:s + n]))``, bit for bit: numpy's pairwise summation (blocks of 8
    partial sums up to 128 values, halves above), which keeps the loudness meter's sums those
    of pyloudnorm.
    """
    if n < 8:
        res = 0.0
        for i in range(s, s + n):
            res += a[i] * a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = a[s] * a[s], a[s + 1] * a[s + 1], a[s + 2] * a[s + 2], a[s + 3] * a[s + 3]
        r4, r5, r6, r7 = a[s + 4] * a[s + 4], a[s + 5] * a[s + 5], a[s + 6] * a[s + 6], a[s + 7] * a[s + 7]
        m = n - n % 8
        for i in range(s + 8, s + m, 8):
            r0 += a[i] * a[i]
            r1 += a[i + 1] * a[i + 1]
            r2 += a[i + 2] * a[i + 2]
            r3 += a[i + 3] * a[i + 3]
            r4 += a[i + 4] * a[i + 4]
            r5 += a[i + 5] * a[i + 5]
            r6 += a[i + 6] * a[i + 6]
            r7 += a[i + 7] * a[i + 7]
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for i in range(s + m, s + n):
            res += a[i] * a[i]
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _sum_squares(a, s, n2) + _sum_squares(a, s + n2, n - n2)


@_kernel
def k_weighted_sums(y, b, a, lo, hi):
    """Sums of squares of the K-weighted signal over gating blocks, per channel.

    Parameters
    ----------
    y : float32 (C, n)
        Signal.
    b, a : float64 (2, 3)
        Two biquad stages (normalised, ``a[:, 0] == 1``), applied in order, each as
        ``scipy.signal.lfilter`` runs it (transposed direct form II, float64, zero state).
    lo, hi : int64 (J,)
        Block bounds in samples, both non-decreasing (``hi`` is clipped to n here).

    Returns
    -------
    float64 (C, J)
        ``sum(filtered[c, lo[j]:hi[j]] ** 2)``, summed as numpy sums. Memory: two blocks per
        channel, never the filtered signal.
    """
    n_c, n = y.shape
    n_j = lo.shape[0]
    out = np.zeros((n_c, n_j))
    width = 1
    for j in range(n_j):
        width = max(width, min(hi[j], n) - lo[j])
    cap = 2 * width
    buf = np.empty(cap)
    b10, b11, b12, a11, a12 = b[0, 0], b[0, 1], b[0, 2], a[0, 1], a[0, 2]
    b20, b21, b22, a21, a22 = b[1, 0], b[1, 1], b[1, 2], a[1, 1], a[1, 2]
    for c in range(n_c):
        z10 = z11 = z20 = z21 = 0.0
        base = 0  # buf[k] holds filtered sample base + k, for k < filled
        filled = 0
        for j in range(n_j):
            first, end = lo[j], min(hi[j], n)
            while base + filled < end:
                if filled == cap:  # full: keep what this block needs (forward copy is safe)
                    start = min(first, base + filled)
                    keep = base + filled - start
                    for k in range(keep):
                        buf[k] = buf[start - base + k]
                    base, filled = start, keep
                # As far as the buffer has room: two biquads, lfilter's operations in its order.
                stop = min(end - base, cap)
                for k in range(filled, stop):
                    x = np.float64(y[c, base + k])
                    w = z10 + b10 * x
                    z10 = z11 + x * b11 - w * a11
                    z11 = x * b12 - w * a12
                    v = z20 + b20 * w
                    z20 = z21 + w * b21 - v * a21
                    z21 = w * b22 - v * a22
                    buf[k] = v
                filled = stop
            if end > first:
                out[c, j] = 0.0 + _sum_squares(buf, first - base, end - first)
    return out


def warm() -> None:
    """Load the machine code of the kernels a render calls (from numba's cache; compiled on a
    new install), with tiny arguments of exactly the types the renderer passes, so that a
    thread can do it while the main thread reads stems and builds filter tables.

    Other argument types would add a second compiled version (tested: a render after this adds
    none). These are also the types :mod:`renderer.aot` compiles ahead of time; with that
    module loaded this only runs each kernel once on tiny arrays (microseconds).
    """
    c64, f32, f64, i32 = np.complex64, np.float32, np.float64, np.int32
    grid, air_table = np.zeros((1, 2, 4), c64), np.zeros((1, 4), c64)  # B = 4 bins: p = q = 2, N = 6
    filters(grid, np.zeros((1, 1), i32), np.zeros((1, 2, 1), f32), np.zeros((1, 2), f64),
            np.zeros(1, i32), air_table, 2, 2, 6)  # fmt: skip
    acc = np.zeros((1, 2, 4), c64)
    moving_mac(np.zeros((1, 1, 4), c64), grid, np.zeros((1, 1, 1), i32), np.zeros((1, 1, 2, 1), f32),
               np.zeros((1, 1, 2), f64), np.zeros((1, 1), i32), air_table, acc.copy(), 2, 2, 6, 0,
               acc, acc.copy(), acc.copy())  # fmt: skip
    static_mac(np.zeros((1, 1, 4), c64), acc.copy(), acc)
    lagrange_read(np.zeros((1, 16), f32), np.zeros(1, np.intp), 8, np.full((1, 2), 2.0), 4, np.zeros((1, 4), f32))
    peak_4x(np.zeros((1, 8), f32), np.zeros((4, 2), f32), 0)
    for signal in (np.zeros((1, 8), f32), np.zeros((1, 8), f64)):  # a mix, or anything loudness() is given
        k_weighted_sums(signal, np.ones((2, 3)), np.ones((2, 3)), np.zeros(1, np.int64), np.full(1, 8, np.int64))


if _AOT is not None:  # the same names, bound to the ahead-of-time machine code
    filters, moving_mac, static_mac = _AOT["filters"], _AOT["moving_mac"], _AOT["static_mac"]
    lagrange_read, peak_4x, k_weighted_sums = _AOT["lagrange_read"], _AOT["peak_4x"], _AOT["k_weighted_sums"]
