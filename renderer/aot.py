"""Compile the renderer's kernels ahead of time: ``python -m renderer.aot`` (``make install``).

numba's JIT compiles (or loads from its cache) :mod:`renderer.kernels` in every process, which
costs its import and first kernel load, ~0.3-0.7 s of every ``gravity render`` on 2 cores. This
compiles the same Python kernels once with ``numba.pycc`` into a plain extension module in
:func:`renderer.kernels.aot_dir` (for this CPU, GIL released like the JIT kernels), with the
argument types the JIT kernels get from :func:`renderer.kernels.warm` (the types a render
passes, tested) written beside it for the run-time checks. Later processes load it instead of
numba; see :mod:`renderer.kernels`.

Needs a C compiler and Python's headers (setuptools links the module); without them the build
fails with one line and the renderer keeps using numba's JIT: slower to start, never broken.
The module appears whole or not at all (built in a temporary folder, then renamed).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = ["build"]


def _kinds(signature: Any) -> list[Any]:
    """The run-time check of each argument: ``"int"`` or ``[dtype, ndim]``."""
    from numba.core import types

    kinds: list[Any] = []
    for t in signature.args:
        if isinstance(t, types.Array) and t.layout == "C":
            kinds.append([str(t.dtype), t.ndim])
        elif isinstance(t, types.Integer):
            kinds.append("int")
        else:  # a new argument type must get its check first
            raise TypeError(f"no run-time check for argument type {t}")
    return kinds


def build(force: bool = False) -> Path:
    """Compile the kernels into :func:`renderer.kernels.aot_dir`; return that folder.

    Runs in a process whose kernels are numba's (``GRAVITY_KERNELS=jit`` before
    :mod:`renderer.kernels` is imported: ``python -m renderer.aot`` sets it). A folder that
    exists already is kept unless ``force``.
    """
    from renderer import kernels

    if kernels.AHEAD_OF_TIME:
        raise RuntimeError("renderer.kernels was loaded ahead of time here: build in a fresh process "
                           "(python -m renderer.aot)")  # fmt: skip
    final = kernels.aot_dir()
    if final.is_dir() and not force:
        return final
    kernels.warm()  # JIT-compiles (or loads) each kernel once, with the types a render passes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc is pending deprecation: we fall back to the JIT
        import numba.pycc.compiler as pycc_compiler
        from numba.core.compiler import Flags
        from numba.pycc import CC

    class _NoGil(Flags):  # pycc's wrappers keep the GIL; the engine runs kernels on two threads
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True  # type: ignore[assignment]  # numba's Option descriptor

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; it becomes the cache folder
    saved = pycc_compiler.Flags
    try:
        cc = CC(kernels.AOT_MODULE)
        cc.output_dir = str(tmp)
        cc.target_cpu = "host"  # as the JIT compiles; aot_dir's key holds the CPU
        cc.verbose = False
        kinds: dict[str, list[list[Any]]] = {}
        for name in kernels.EXPORTED:
            dispatcher = getattr(kernels, name)
            kinds[name] = []
            for v, sig in enumerate(dispatcher.signatures):  # what warm() loaded: what a render calls
                signature = dispatcher.overloads[sig].signature
                kinds[name].append(_kinds(signature))
                cc.export(f"{name}__{v}", signature)(dispatcher.py_func)
        pycc_compiler.Flags = _NoGil  # type: ignore[misc]  # pycc builds its Flags() here
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cc.compile()
        (tmp / "signatures.json").write_text(json.dumps(kinds, indent=1), encoding="utf-8")
        if force and final.is_dir():
            shutil.rmtree(final)
        try:
            os.replace(tmp, final)  # whole, or not at all
        except OSError:
            if not final.is_dir():  # else another process built it first: theirs is the same
                raise
    finally:
        pycc_compiler.Flags = saved  # type: ignore[misc]
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def main(argv: list[str] | None = None) -> int:
    """``python -m renderer.aot [--force]``: build, print one line; exit 1 when it cannot."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--force"]):
        print("usage: python -m renderer.aot [--force]", file=sys.stderr)
        return 2
    os.environ["GRAVITY_KERNELS"] = "jit"  # this process compiles; only later ones load the result
    t = time.perf_counter()
    try:
        path = build(force=bool(args))
    except Exception as exc:  # noqa: BLE001  # any failure: one line, the JIT path stays
        print(f"renderer kernels not compiled ahead of time ({type(exc).__name__}: {exc}); "
              "numba compiles them in each process instead", file=sys.stderr)  # fmt: skip
        return 1
    print(f"renderer kernels compiled ahead of time: {path} ({time.perf_counter() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
