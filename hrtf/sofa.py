"""Loading and validating HRIR sets from SOFA (AES69) files."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import HRTFError
from .geometry import cart_to_sph, sph_to_cart, wrap_azimuth

__all__ = ["HRIRSet", "load_sofa", "ACCEPTED_CONVENTIONS"]

log = logging.getLogger(__name__)

#: SOFA conventions whose Data.IR is a free-field FIR per (direction, ear).
#: The ``-E`` variants are accepted when they hold a single emitter.
ACCEPTED_CONVENTIONS = ("SimpleFreeFieldHRIR", "GeneralFIR", "FreeFieldHRIR", "GeneralFIR-E", "GeneralFIRE")


@dataclass(frozen=True, eq=False)
class HRIRSet:
    """Head-related impulse responses measured at M directions.

    Arrays are read-only. Directions follow the package convention:
    azimuth (-180, 180] degrees with +90 = LEFT, elevation [-90, 90] degrees.

    Attributes
    ----------
    ir : ndarray, float32, shape (M, 2, N)
        Impulse responses; axis 1 is the ear, 0 = left, 1 = right; N taps.
    az_deg : ndarray, shape (M,)
        Source azimuth in degrees.
    el_deg : ndarray, shape (M,)
        Source elevation in degrees.
    dist_m : ndarray, shape (M,)
        Source distance in metres.
    sample_rate : float
        Sample rate in Hz.
    source : str
        Path or name the set was loaded from.
    delay_samples : ndarray, shape (M, 2)
        SOFA ``Data.Delay``: extra broadband delay per direction and ear, in
        samples at ``sample_rate``, to add to ``ir`` (usually all zero).
    """

    ir: NDArray[np.float32]
    az_deg: NDArray[np.float64]
    el_deg: NDArray[np.float64]
    dist_m: NDArray[np.float64]
    sample_rate: float
    source: str
    delay_samples: NDArray[np.float64]

    def __post_init__(self) -> None:
        """Store the arrays read-only (float32 ir, float64 the rest) and check their shapes."""
        for name in ("ir", "az_deg", "el_deg", "dist_m", "delay_samples"):
            arr = np.array(getattr(self, name), dtype=np.float32 if name == "ir" else np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        m = self.ir.shape[0]
        if self.ir.ndim != 3 or self.ir.shape[1] != 2:
            raise ValueError(f"ir must have shape (M, 2, N), got {self.ir.shape}")
        for name in ("az_deg", "el_deg", "dist_m"):
            if getattr(self, name).shape != (m,):
                raise ValueError(f"{name} must have shape ({m},)")
        if self.delay_samples.shape != (m, 2):
            raise ValueError(f"delay_samples must have shape ({m}, 2)")

    @property
    def n_directions(self) -> int:
        """Number of measured directions M."""
        return int(self.ir.shape[0])

    @property
    def n_taps(self) -> int:
        """Impulse-response length N in samples."""
        return int(self.ir.shape[2])

    def find(self, az_deg: float, el_deg: float) -> int:
        """Index of the measured direction closest to a direction.

        Parameters
        ----------
        az_deg, el_deg : float
            Direction in degrees.

        Returns
        -------
        int
            Index into the first axis of ``ir``.
        """
        return int(np.argmax(sph_to_cart(self.az_deg, self.el_deg) @ sph_to_cart(az_deg, el_deg)))


def _read(path: Path) -> Any:
    import sofar

    # sofar silently swaps any suffix for ".sofa"; read other names via a link.
    if path.suffix == ".sofa":
        return sofar.read_sofa(str(path), verify=False, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        alias = Path(tmp) / "alias.sofa"
        try:
            os.symlink(path.resolve(), alias)
        except OSError:  # e.g. no symlink privilege on Windows
            shutil.copyfile(path, alias)
        return sofar.read_sofa(str(alias), verify=False, verbose=False)


def _field(sofa: Any, attr: str, where: str) -> Any:
    if not hasattr(sofa, attr):
        raise HRTFError(f"{where}: missing field {attr.replace('Data_', 'Data.')}")
    return getattr(sofa, attr)


def load_sofa(path: str | os.PathLike[str]) -> HRIRSet:
    """Load and validate an HRIR set from a SOFA file.

    Parameters
    ----------
    path : str or PathLike
        SOFA file with convention SimpleFreeFieldHRIR (or a compatible FIR
        convention: GeneralFIR, or FreeFieldHRIR/GeneralFIR-E with one
        emitter) and two receivers (0 = left ear, 1 = right ear).

    Returns
    -------
    HRIRSet
        Impulse responses as float32 (M, 2, N); azimuth normalised to
        (-180, 180] degrees with +90 = left; cartesian source positions are
        converted to spherical degrees / metres.

    Raises
    ------
    HRTFError
        If the file is missing, not SOFA/netCDF, or any field is invalid; the
        message names the file and the field.
    """
    p = Path(path)
    where = p.name
    if not p.is_file():
        raise HRTFError(f"{where}: no such file ({p})")
    try:
        sofa = _read(p)
    except Exception as exc:  # sofar/netCDF4 raise OSError, ValueError, AttributeError...
        raise HRTFError(f"{where}: not a readable SOFA/netCDF file ({type(exc).__name__}: {exc})") from None

    conv = str(_field(sofa, "GLOBAL_SOFAConventions", where))
    if conv not in ACCEPTED_CONVENTIONS:
        raise HRTFError(
            f"{where}: GLOBAL_SOFAConventions is {conv!r}, expected SimpleFreeFieldHRIR "
            f"(or a compatible FIR convention: {', '.join(ACCEPTED_CONVENTIONS[1:])})"
        )
    dtype = str(getattr(sofa, "GLOBAL_DataType", "FIR"))
    if dtype != "FIR":
        raise HRTFError(f"{where}: GLOBAL_DataType is {dtype!r}, expected 'FIR'")

    ir = np.asarray(_field(sofa, "Data_IR", where), dtype=np.float64)
    if ir.ndim == 4:  # (M, R, E, N): only a single emitter is an HRIR set
        if ir.shape[2] != 1:
            raise HRTFError(f"{where}: Data.IR has {ir.shape[2]} emitters, expected 1")
        ir = ir[:, :, 0, :]
    if ir.ndim != 3:
        raise HRTFError(f"{where}: Data.IR has shape {ir.shape}, expected (M, R=2, N)")
    m, r, n = ir.shape
    if r != 2:
        noun = "receiver" if r == 1 else "receivers"
        raise HRTFError(f"{where}: Data.IR has {r} {noun}, expected 2 (left, right)")
    if m < 1 or n < 1:
        raise HRTFError(f"{where}: Data.IR is empty (shape {ir.shape})")
    if not np.all(np.isfinite(ir)):
        bad = int(np.count_nonzero(~np.isfinite(ir)))
        raise HRTFError(f"{where}: Data.IR contains {bad} NaN/inf values")
    if not np.any(ir):
        raise HRTFError(f"{where}: Data.IR is all zeros")

    fs = np.asarray(_field(sofa, "Data_SamplingRate", where), dtype=np.float64).ravel()
    if fs.size == 0 or not np.all(np.isfinite(fs)) or np.any(fs <= 0):
        raise HRTFError(f"{where}: Data.SamplingRate must be a positive number, got {fs.tolist()}")
    if np.ptp(fs) > 0:
        raise HRTFError(f"{where}: Data.SamplingRate varies across measurements ({np.unique(fs).tolist()})")
    units = str(getattr(sofa, "Data_SamplingRate_Units", "hertz")).lower()
    if units not in ("hertz", "hz"):
        raise HRTFError(f"{where}: Data.SamplingRate_Units is {units!r}, expected 'hertz'")

    az, el, dist = _source_positions(sofa, m, where)

    delay = np.asarray(getattr(sofa, "Data_Delay", 0.0), dtype=np.float64)
    try:
        delay = np.broadcast_to(delay, (m, 2)).copy()
    except ValueError:
        raise HRTFError(f"{where}: Data.Delay has shape {delay.shape}, expected (1, 2) or ({m}, 2)") from None
    if not np.all(np.isfinite(delay)):
        raise HRTFError(f"{where}: Data.Delay contains NaN/inf values")

    if _ears_swapped(sofa):
        log.warning("%s: ReceiverPosition puts receiver 0 on the right; swapping ears", where)
        ir, delay = ir[:, ::-1, :], delay[:, ::-1]

    log.debug("%s: %d directions, %d taps, %g Hz", where, m, n, fs[0])
    return HRIRSet(
        ir=ir.astype(np.float32),
        az_deg=az,
        el_deg=el,
        dist_m=dist,
        sample_rate=float(fs[0]),
        source=str(p),
        delay_samples=delay,
    )


def _source_positions(sofa: Any, m: int, where: str) -> tuple[NDArray[np.float64], ...]:
    pos = np.asarray(_field(sofa, "SourcePosition", where), dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] not in (1, m):
        raise HRTFError(f"{where}: SourcePosition has shape {pos.shape}, expected ({m}, 3)")
    if pos.shape[0] == 1 and m > 1:
        raise HRTFError(f"{where}: SourcePosition has one position for {m} measurements")
    if not np.all(np.isfinite(pos)):
        raise HRTFError(f"{where}: SourcePosition contains NaN/inf values")
    kind = str(getattr(sofa, "SourcePosition_Type", "spherical")).lower()
    units = str(getattr(sofa, "SourcePosition_Units", "")).lower().replace(" ", "")
    if kind == "spherical":
        if units and not units.startswith("degree,degree"):
            raise HRTFError(f"{where}: SourcePosition_Units is {units!r}, expected 'degree, degree, metre'")
        az, el, dist = wrap_azimuth(pos[:, 0]), pos[:, 1], pos[:, 2]
        if np.any(np.abs(el) > 90.0 + 1e-6):
            raise HRTFError(f"{where}: SourcePosition elevation outside [-90, 90] degrees")
        el = np.clip(el, -90.0, 90.0)
    elif kind == "cartesian":
        az, el, dist = cart_to_sph(pos)
        if np.any(dist <= 0):
            raise HRTFError(f"{where}: SourcePosition has a cartesian position at the origin")
    else:
        raise HRTFError(f"{where}: SourcePosition_Type is {kind!r}, expected 'spherical' or 'cartesian'")
    return az, el, dist


def _ears_swapped(sofa: Any) -> bool:
    """True if ReceiverPosition clearly puts receiver 0 at -y (right ear)."""
    if str(getattr(sofa, "ReceiverPosition_Type", "")).lower() != "cartesian":
        return False
    rp = np.asarray(getattr(sofa, "ReceiverPosition", np.zeros((1, 3))), dtype=np.float64)
    if rp.ndim < 2 or rp.shape[0] != 2 or rp.shape[1] != 3:
        return False
    y = rp[:, 1].reshape(2, -1)[:, 0]
    return bool(y[0] < 0.0 < y[1])
