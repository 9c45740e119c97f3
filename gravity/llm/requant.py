"""A GGUF model re-quantized to a weight layout llama.cpp runs faster on CPU, made once and cached.

The embedded SmolLM2-135M ships as Q4_1, for which llama.cpp has no repacked CPU kernels. On
the 2-core AVX-512 development machine the same weights run (prompt / decode tokens per second,
measured with llama-cpp-python 0.3.36): Q4_1 335 / 124, Q8_0 535 / 129, IQ4_NL 572 / 165,
Q4_0 580 / 167. Q8_0 keeps the Q4_1 weights: teacher completions score through it as through
Q4_1 within what Q4_1's own kernels differ from its exact (f16) weights (0.072 vs 0.055
nats/token on the base model, 0.019 vs 0.014 with a trained LoRA). IQ4_NL is another 4-bit
layout and changes the weights by a 4-bit step (0.42 nats/token on the untrained base model,
0.12 with the LoRA; ``gravity convert`` accepts 0.3 for its Q4 types), yet the adapter's eval
on 60 held-out rows did not move (teacher angle 41.2 vs 41.7 deg, hint 49.3 vs 49.3 deg) while
its p50 fell from 1.27 to 0.76 s: IQ4_NL is the default for the embedded model, Q8_0 the
choice when exact weights matter.

Files go to ``$GRAVITY_CACHE`` (else ``$XDG_CACHE_HOME/gravity``, else ``~/.cache/gravity``)
under ``models/``, named after the source file, the type and a key of the source's size, mtime
and the llama.cpp version, written to a temporary file and renamed (never a partial file).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from gravity.errors import GravityError

__all__ = ["QUANTS", "cache_dir", "requantized"]

log = logging.getLogger(__name__)

QUANTS = ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "iq4_nl", "q4_0")


def cache_dir() -> Path:
    """Where derived model files live (created on first use)."""
    root = os.environ.get("GRAVITY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gravity"
    )
    return Path(root) / "models"


def _ftype(quant: str) -> int:
    import llama_cpp

    if quant not in QUANTS:
        raise GravityError(f"quant={quant!r}: expected one of {', '.join(QUANTS)}")
    return int(getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}"))


def requantized(src: Path, quant: str, cache: Path | None = None, threads: int = 0) -> Path:
    """``src`` re-quantized to ``quant`` (one of :data:`QUANTS`), reused from the cache when made.

    Raises :class:`GravityError` when the type is unknown or the file cannot be written.
    """
    import llama_cpp

    ftype = _ftype(quant)
    src = Path(src)
    st = src.stat()
    key = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{llama_cpp.__version__}".encode()).hexdigest()[
        :12
    ]
    cache = cache or cache_dir()
    dst = cache / f"{src.stem}.{quant}.{key}.gguf"
    if dst.is_file():
        return dst
    t0 = time.perf_counter()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{dst.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise GravityError(f"{cache}: cannot write the re-quantized model ({exc})") from None
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True  # the source is already quantized; we only change the layout
    params.nthread = threads
    llama_log = logging.getLogger("llama-cpp-python")  # llama-cpp-python's log callback obeys it
    level = llama_log.level
    llama_log.setLevel(logging.ERROR)  # llama.cpp lists every tensor at INFO
    try:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), tmp.encode(), ctypes.byref(params))
        if rc != 0:
            raise GravityError(f"{src}: re-quantizing to {quant} failed (llama.cpp returned {rc})")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        os.replace(tmp, dst)
    finally:
        llama_log.setLevel(level)
        if os.path.exists(tmp):
            os.unlink(tmp)
    for old in cache.glob(f"{src.stem}.{quant}.*.gguf"):  # versions for an older source or llama.cpp
        if old != dst:
            old.unlink(missing_ok=True)
    log.info("re-quantized %s to %s in %.1f s: %s", src.name, quant, time.perf_counter() - t0, dst)
    return dst
