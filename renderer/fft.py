"""Real FFTs for the renderer: scipy's pocketfft, without importing ``scipy.fft``.

``import scipy.fft`` takes ~0.14 s (its array-API layer pulls in ``scipy.special`` and
``array_api_compat``): a tenth of a one-minute ``gravity render`` process. The transforms
themselves are scipy's compiled pocketfft module (``scipy/fft/_pocketfft/pypocketfft``), which
needs none of that, so it is loaded straight from scipy's folder (~1 ms) and registered under
its own name: a later ``import scipy.fft`` uses the same module.

:func:`rfft`, :func:`irfft` and :func:`next_fast_len` make the calls ``scipy.fft.rfft``,
``scipy.fft.irfft`` and ``scipy.fft.next_fast_len(n, real=True)`` make (default norm, one
worker), so every result is bit-identical to scipy's (tested). Where the module cannot be
loaded that way (another scipy layout), ``scipy.fft`` itself is used, as it is with the
environment variable ``GRAVITY_FFT=scipy`` (the tests' reference).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import os
import sys
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["rfft", "irfft", "next_fast_len", "DIRECT"]

log = logging.getLogger(__name__)

_NAME = "scipy.fft._pocketfft.pypocketfft"


def _load_direct() -> ModuleType | None:
    """The pocketfft extension module of scipy, loaded without its parent packages, or None."""
    if os.environ.get("GRAVITY_FFT") == "scipy":  # scipy.fft's own functions (a reference, for tests)
        return None
    if _NAME in sys.modules:  # scipy.fft already imported (or this ran before)
        return sys.modules[_NAME]
    try:
        spec = importlib.util.find_spec("scipy")  # locates the package without running it
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = os.path.join(spec.submodule_search_locations[0], "fft", "_pocketfft")
        path = next(
            os.path.join(folder, "pypocketfft" + s)
            for s in importlib.machinery.EXTENSION_SUFFIXES
            if os.path.isfile(os.path.join(folder, "pypocketfft" + s))
        )
        loader = importlib.machinery.ExtensionFileLoader(_NAME, path)
        mod_spec = importlib.util.spec_from_file_location(_NAME, path, loader=loader)
        assert mod_spec is not None
        mod = importlib.util.module_from_spec(mod_spec)
        loader.exec_module(mod)
        # the call signatures used below, checked once (a scipy that changed them: use scipy.fft)
        x = mod.r2c(np.ones(4, np.float32), (0,), True, 0, None, 1)
        if not np.array_equal(mod.c2r(x, (0,), 4, False, 2, None, 1), np.ones(4, np.float32)):
            return None
        if mod.good_size(1001, True) < 1001:
            return None
    except Exception as exc:  # noqa: BLE001  # any layout or API change: fall back to scipy.fft
        log.debug("scipy's pocketfft not loaded directly (%s); using scipy.fft", exc)
        return None
    sys.modules[_NAME] = mod  # scipy.fft's own `from . import pypocketfft` finds it here
    return mod


_pfft = _load_direct()
#: True where the transforms run without ``scipy.fft`` imported.
DIRECT = _pfft is not None


def _asfloat(x: Any) -> NDArray[Any]:
    """``x`` as an aligned, native-order float or complex array (scipy.fft's ``_asfarray``)."""
    a = np.asarray(x)
    if a.dtype == np.float16:
        return np.asarray(a, np.float32)
    if a.dtype.kind not in "fc":
        return np.asarray(a, np.float64)
    return np.array(a, dtype=a.dtype.newbyteorder("="), copy=None if a.flags.aligned else True)


def _fit(a: NDArray[Any], n: int, axis: int) -> NDArray[Any]:
    """``a`` cut or zero-padded to ``n`` samples along ``axis`` (scipy.fft's ``_fix_shape_1d``)."""
    if n < 1:
        raise ValueError(f"invalid number of data points ({n}) specified")
    if a.shape[axis] >= n:
        index = [slice(None)] * a.ndim
        index[axis] = slice(0, n)
        return a[tuple(index)]
    shape = list(a.shape)
    shape[axis] = n
    z = np.zeros(shape, a.dtype)
    index = [slice(None)] * a.ndim
    index[axis] = slice(0, a.shape[axis])
    z[tuple(index)] = a
    return z


def rfft(
    x: Any, n: int | None = None, axis: int = -1, workers: int = 1, out: NDArray[Any] | None = None
) -> NDArray[Any]:
    """``scipy.fft.rfft(x, n, axis, workers=workers)``: the one-sided spectrum (float32 in,
    complex64 out). Several ``workers`` share a batch of transforms (the same values); ``out``
    (of the result's shape and dtype) receives it without a temporary.
    """
    if _pfft is None:
        import scipy.fft

        y = scipy.fft.rfft(x, n, axis=axis, workers=workers)
        if out is None:
            return y
        out[...] = y
        return out
    a = _asfloat(x)
    if a.dtype.kind != "f":
        raise TypeError("x must be a real sequence")
    if n is not None:
        a = _fit(a, n, axis)
    elif a.shape[axis] < 1:
        raise ValueError(f"invalid number of data points ({a.shape[axis]}) specified")
    return _pfft.r2c(a, (axis,), True, 0, out, max(1, workers))


def irfft(x: Any, n: int | None = None, axis: int = -1) -> NDArray[Any]:
    """``scipy.fft.irfft(x, n, axis)``: ``n`` real samples from a one-sided spectrum (scaled 1 / n)."""
    if _pfft is None:
        import scipy.fft

        return scipy.fft.irfft(x, n, axis=axis)
    a = _asfloat(x)
    if a.dtype.kind == "f":
        a = a + 0j
    if n is None:
        n = (a.shape[axis] - 1) * 2
        if n < 1:
            raise ValueError(f"Invalid number of data points ({n}) specified")
    else:
        a = _fit(a, n // 2 + 1, axis)
    return _pfft.c2r(a, (axis,), n, False, 2, None, 1)


def next_fast_len(n: int) -> int:
    """``scipy.fft.next_fast_len(n, real=True)``: the smallest fast real-FFT length >= ``n``."""
    if _pfft is None:
        import scipy.fft

        return int(scipy.fft.next_fast_len(n, real=True))
    if n < 1:
        raise ValueError(f"target must be a positive integer, got {n}")
    return int(_pfft.good_size(n, True))
