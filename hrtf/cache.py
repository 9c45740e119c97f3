"""On-disk cache of preprocessed models, and the default entry point."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from .model import HRTFModel
from .params import PREPROCESS_VERSION, PreprocessParams
from .preprocess import build_model
from .sofa import load_sofa

__all__ = ["load_model", "default_sofa_path", "default_cache_dir", "cache_key", "cache_file"]

log = logging.getLogger(__name__)

_DEFAULT_SOFA = "MIT_KEMAR_normal_pinna.sofa"


def default_sofa_path() -> Path:
    """Path of the embedded MIT KEMAR (normal pinna) SOFA file."""
    return Path(__file__).parent / _DEFAULT_SOFA


def default_cache_dir() -> Path:
    """Default cache directory, ``~/.cache/gravity/hrtf``."""
    return Path.home() / ".cache" / "gravity" / "hrtf"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(sofa_path: str | os.PathLike[str], rate: int, params: PreprocessParams | None = None) -> str:
    """Cache key of a model.

    Parameters
    ----------
    sofa_path : str or PathLike
        SOFA file; its content (sha256), not its name, enters the key.
    rate : int
        Render sample rate in Hz.
    params : PreprocessParams, optional
        Preprocessing settings (default settings if omitted).

    Returns
    -------
    str
        Hex sha256 over file hash, rate, algorithm version and parameters.
    """
    params = params or PreprocessParams()
    doc = {
        "sofa_sha256": _sha256(Path(sofa_path)),
        "rate": int(rate),
        "version": PREPROCESS_VERSION,
        "params": json.loads(params.to_json()),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cache_file(cache_dir: str | os.PathLike[str], sofa_path: str | os.PathLike[str], rate: int, key: str) -> Path:
    """Where the model for ``key`` is stored in ``cache_dir``."""
    return Path(cache_dir) / f"{Path(sofa_path).stem}_{int(rate)}Hz_{key[:16]}.npz"


def _read_cache(path: Path, key: str) -> HRTFModel:
    # Open the file ourselves: np.load leaks its handle when it rejects one.
    with open(path, "rb") as fh:
        z = np.load(fh, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with z:
            if str(z["key"]) != key:
                raise ValueError("key mismatch")
            return HRTFModel(
                filters=z["filters"],
                delays=z["delays"],
                sample_rate=int(z["sample_rate"]),
                grid_step_deg=float(z["grid_step_deg"]),
                source=str(z["source"]),
                params_json=str(z["params_json"]),
                diffuse_power=z["diffuse_power"],
            )


def _write_cache(path: Path, key: str, model: HRTFModel) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: readers never see a partial file,
    # and concurrent writers of the same key simply replace each other.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                key=np.array(key),
                filters=model.filters,
                delays=model.delays,
                sample_rate=np.array(model.sample_rate),
                grid_step_deg=np.array(model.grid_step_deg),
                source=np.array(model.source),
                params_json=np.array(model.params_json),
                diffuse_power=model.diffuse_field_power(),
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model(
    path: str | os.PathLike[str] | None = None,
    rate: int = 48000,
    cache_dir: str | os.PathLike[str] | None = None,
    params: PreprocessParams | None = None,
    use_cache: bool = True,
) -> HRTFModel:
    """Load a preprocessed HRTF model, building and caching it if needed.

    Parameters
    ----------
    path : str or PathLike, optional
        SOFA file; default the embedded MIT KEMAR set
        (:func:`default_sofa_path`).
    rate : int
        Render sample rate in Hz.
    cache_dir : str or PathLike, optional
        Cache directory; default ``~/.cache/gravity/hrtf``.
    params : PreprocessParams, optional
        Preprocessing settings.
    use_cache : bool
        False: always rebuild and do not touch the cache.

    Returns
    -------
    HRTFModel

    Raises
    ------
    HRTFError
        If the SOFA file is invalid. Cache problems (unreadable, corrupt or
        unwritable) never raise: the model is rebuilt and a warning logged.
    """
    sofa_path = Path(path) if path is not None else default_sofa_path()
    params = params or PreprocessParams()
    if not use_cache:
        return build_model(load_sofa(sofa_path), rate, params)

    try:  # a FIFO or device would block or never end the hash: only a regular file is read
        key = cache_key(sofa_path, rate, params) if stat.S_ISREG(os.stat(sofa_path).st_mode) else None
    except OSError:
        key = None  # missing/unreadable file: let load_sofa report it properly
    if key is not None:
        target = cache_file(cache_dir if cache_dir is not None else default_cache_dir(), sofa_path, rate, key)
        if target.exists():
            try:
                model = _read_cache(target, key)
                log.info("HRTF cache hit: %s", target)
                return model
            except Exception as exc:  # corrupt/truncated/foreign file: rebuild
                log.warning("HRTF cache file %s unusable (%s: %s); rebuilding", target, type(exc).__name__, exc)

    model = build_model(load_sofa(sofa_path), rate, params)
    if key is not None:
        try:
            _write_cache(target, key, model)
            log.info("HRTF cache miss: wrote %s", target)
        except OSError as exc:
            log.warning("could not write HRTF cache %s: %s", target, exc)
    return model
