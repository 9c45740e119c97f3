"""Loading and validating HRIR sets from SOFA (AES69) files.

A file is checked in two steps. Its netCDF header (convention, data type,
dimensions and the size of every variable) is read first and checked against
the resource limits below, so that a small hostile file cannot make the
loader allocate gigabytes; only then is it read with sofar and its values
checked. Range checks tolerate float32 rounding: many databases store
positions as float32, so a limit such as -90 deg elevation arrives as
-90.0000076.

Directions are returned in the listener's head frame: a constant
``ListenerView`` / ``ListenerUp`` other than the default (1, 0, 0) / (0, 0, 1)
is honoured by rotating the source directions; a head orientation that varies
per measurement is refused. Which receiver is the left ear is decided by the
responses themselves (the ear nearer a lateral source is louder), because the
ARI SOFA API up to 1.1.0 wrote mirrored ``ReceiverPosition`` values into
most converted databases (CIPIC, LISTEN, FHK, MIT KEMAR).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import HRTFError
from .geometry import cart_to_sph, sph_to_cart, wrap_azimuth

__all__ = [
    "HRIRSet",
    "load_sofa",
    "ACCEPTED_CONVENTIONS",
    "MAX_TAPS",
    "MIN_TAPS",
    "MAX_DIRECTIONS",
    "MAX_VALUES",
    "MAX_DELAY_S",
    "MIN_SAMPLE_RATE_HZ",
    "MAX_SAMPLE_RATE_HZ",
]

log = logging.getLogger(__name__)

# Resource limits, checked before any data is read.
#: Longest HRIR, in taps (samples). Real HRIR sets hold 128-2048 taps; this
#: is 0.34 s at 48 kHz, room for short BRIR-like sets.
MAX_TAPS = 16_384
#: Shortest HRIR, in taps: 8 taps are 0.17 ms at 48 kHz, too short for any
#: head or pinna filtering (a shorter Data.IR is a truncated or wrong file).
MIN_TAPS = 8
#: Most directions (measurements x emitters). The densest real sets hold
#: ~16,000 (2 deg full sphere); preprocessing decimates dense sets further.
MAX_DIRECTIONS = 100_000
#: Most values stored in the file, all variables together (Data.IR
#: dominates): 2**25 values = 256 MiB as float64, which sofar reads eagerly.
MAX_VALUES = 2**25
#: Largest |Data.Delay|, in seconds (converted to samples at the file's rate).
MAX_DELAY_S = 1.0
#: Accepted Data.SamplingRate range in Hz: below it an HRIR holds no pinna
#: cues, and resampling from far outside it multiplies the data size.
MIN_SAMPLE_RATE_HZ = 8_000.0
MAX_SAMPLE_RATE_HZ = 384_000.0

#: A value at most this many float32 ULPs beyond a range limit is float32
#: rounding of the limit itself (FHK's -90.0000076 deg is 1 ULP) and is
#: clamped to the limit instead of refused.
F32_ULPS = 4
#: Longest offending text quoted in an error message, in characters.
MAX_QUOTE = 200
#: The responses decide which receiver is the left ear when, over directions at
#: least 30 deg off the median plane, the ear on the source's side is louder by
#: at least this median level difference in dB (measured on the real CIPIC,
#: LISTEN, ARI, FHK and MIT KEMAR files: 11-17 dB).
EAR_ILD_MIN_DB = 1.0
#: Largest difference between the unit vectors of two ListenerView (or
#: ListenerUp) rows still read as one head orientation (~0.0006 deg; float32
#: storage of one vector differs by < 1e-7).
VIEW_TOLERANCE = 1e-5

#: SOFA conventions whose Data.IR is a free-field FIR per (direction, ear),
#: with the data types each may declare. GeneralFIRE (SOFA 1.0, deprecated)
#: stores Data.IR as (M, R, E, N); FIR-E (AES69-2020 and later) as (M, R, N, E).
_DATA_TYPES = {
    "SimpleFreeFieldHRIR": ("FIR",),
    "GeneralFIR": ("FIR",),
    "FreeFieldHRIR": ("FIR-E",),
    "GeneralFIR-E": ("FIR-E",),
    "GeneralFIRE": ("FIRE",),
}
ACCEPTED_CONVENTIONS = tuple(_DATA_TYPES)
_IR_LAYOUTS = {"FIR": ("M", "R", "N"), "FIR-E": ("M", "R", "N", "E"), "FIRE": ("M", "R", "E", "N")}


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


@dataclass(frozen=True)
class _Header:
    """What the netCDF header says, read before any data."""

    dtype: str  # GLOBAL:DataType
    sizes: dict[str, int]  # Data.IR's dimension letter -> size (M, R, N, E)
    shapes: dict[str, tuple[tuple[str, ...], tuple[int, ...]]]  # variable -> (dimension names, shape)


def _short(text: str) -> str:
    """Text cut to MAX_QUOTE characters: a hostile file may hold megabytes of it."""
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 3] + "..."


def _quote(value: object) -> str:
    """repr() of a value, cut to MAX_QUOTE characters."""
    return _short(repr(value))


def _read_header(path: Path, where: str) -> _Header:
    """Check convention, data type, dimensions and sizes from the netCDF header only."""
    import netCDF4

    try:
        ds = netCDF4.Dataset(str(path), "r")
    except Exception as exc:  # netCDF4 raises OSError, FileNotFoundError, ...
        raise HRTFError(
            f"{where}: not a readable SOFA/netCDF file ({type(exc).__name__}: {_short(str(exc))})"
        ) from None
    with ds:
        attrs = set(ds.ncattrs())
        if "SOFAConventions" not in attrs:
            raise HRTFError(f"{where}: GLOBAL_SOFAConventions is missing (not a SOFA file)")
        conv = str(ds.getncattr("SOFAConventions"))
        if conv not in _DATA_TYPES:
            raise HRTFError(
                f"{where}: GLOBAL_SOFAConventions is {_quote(conv)}, expected SimpleFreeFieldHRIR "
                f"(or a compatible FIR convention: {', '.join(ACCEPTED_CONVENTIONS[1:])})"
            )
        dtype = str(ds.getncattr("DataType")) if "DataType" in attrs else _DATA_TYPES[conv][0]
        if dtype not in _DATA_TYPES[conv]:
            expected = " or ".join(repr(t) for t in _DATA_TYPES[conv])
            raise HRTFError(f"{where}: GLOBAL_DataType is {_quote(dtype)}, expected {expected} for {conv}")
        shapes = {name: (tuple(var.dimensions), tuple(int(n) for n in var.shape)) for name, var in ds.variables.items()}
    if "Data.IR" not in shapes:
        raise HRTFError(f"{where}: missing field Data.IR")
    dims, shape = shapes["Data.IR"]
    layout = _IR_LAYOUTS[dtype]
    if dims != layout:
        raise HRTFError(
            f"{where}: Data.IR has dimensions ({', '.join(dims)}), expected ({', '.join(layout)}) for {dtype}"
        )
    sizes = dict(zip(dims, shape, strict=True))
    _check_sizes(sizes, shapes, where)
    return _Header(dtype=dtype, sizes=sizes, shapes=shapes)


def _check_sizes(sizes: dict[str, int], shapes: dict[str, tuple[tuple[str, ...], tuple[int, ...]]], where: str) -> None:
    """Refuse a file whose dimensions exceed a resource limit (each error states the limit)."""
    m, r, n, e = sizes["M"], sizes["R"], sizes["N"], sizes.get("E", 1)
    if r != 2:
        noun = "receiver" if r == 1 else "receivers"
        raise HRTFError(f"{where}: Data.IR has {r} {noun}, expected 2 (left, right)")
    if m < 1 or e < 1 or n < 1:
        raise HRTFError(f"{where}: Data.IR is empty (shape {tuple(sizes.values())})")
    if n > MAX_TAPS:
        raise HRTFError(f"{where}: Data.IR: HRIR length {n} taps exceeds the limit of {MAX_TAPS} taps")
    if n < MIN_TAPS:
        raise HRTFError(f"{where}: Data.IR: HRIR length {n} taps is below the minimum of {MIN_TAPS} taps")
    if m * e > MAX_DIRECTIONS:
        what = f"{m} measurements" if e == 1 else f"{m} measurements x {e} emitters"
        raise HRTFError(f"{where}: Data.IR: {what} exceed the limit of {MAX_DIRECTIONS} directions")
    total = sum(int(np.prod(shape, dtype=np.int64)) for _, shape in shapes.values())
    if total > MAX_VALUES:
        name, (_, shape) = max(shapes.items(), key=lambda kv: int(np.prod(kv[1][1], dtype=np.int64)))
        raise HRTFError(
            f"{where}: the file holds {total} values (largest: {_quote(name)} of shape {shape}), "
            f"exceeding the limit of {MAX_VALUES} values ({MAX_VALUES * 8 // 2**20} MiB as float64)"
        )


def _read(path: Path) -> Any:
    import sofar

    # read_sofa_as_netcdf: no check against sofar's list of convention
    # versions (real databases carry versions it does not know, e.g.
    # SimpleFreeFieldHRIR 0.6); load_sofa checks what it uses itself. sofar
    # warns (to stderr) about missing data; the checks below turn what
    # matters into errors, the rest is debug talk.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # sofar silently swaps any suffix for ".sofa"; read other names via a link.
        if path.suffix == ".sofa":
            sofa = sofar.read_sofa_as_netcdf(str(path))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                alias = Path(tmp) / "alias.sofa"
                try:
                    os.symlink(path.resolve(), alias)
                except OSError:  # e.g. no symlink privilege on Windows
                    shutil.copyfile(path, alias)
                sofa = sofar.read_sofa_as_netcdf(str(alias))
    for w in caught:
        log.debug("%s: sofar: %s", path.name, _short(str(w.message)))
    return sofa


def _variable(sofa: Any, header: _Header, name: str, where: str, default: Any = None) -> NDArray[np.float64]:
    """A variable as float64 in the shape its header declares (sofar drops trailing singleton axes)."""
    attr = name.replace(".", "_")
    if name not in header.shapes or not hasattr(sofa, attr):
        if default is None:
            raise HRTFError(f"{where}: missing field {name}")
        return np.asarray(default, dtype=np.float64)
    value = getattr(sofa, attr)
    if np.ma.is_masked(value):  # netCDF fill values: never written, not data
        raise HRTFError(f"{where}: {name} has {int(np.ma.count_masked(value))} missing (unwritten) values")
    try:
        return np.asarray(value, dtype=np.float64).reshape(header.shapes[name][1])
    except (TypeError, ValueError):
        raise HRTFError(f"{where}: {name} is not numeric") from None


def _in_range(x: ArrayLike, lo: float, hi: float, what: str, unit: str, where: str) -> NDArray[np.float64]:
    """Values checked against [lo, hi]; float32 rounding of a limit is clamped to it.

    Raises
    ------
    HRTFError
        If a value lies more than ``F32_ULPS`` float32 ULPs outside the range
        (or is NaN); the message names the file, the variable and the range.
    """
    v = np.asarray(x, dtype=np.float64)
    slack_lo, slack_hi = (F32_ULPS * float(np.spacing(np.float32(abs(b)))) if np.isfinite(b) else 0.0 for b in (lo, hi))
    bad = ~((v >= lo - slack_lo) & (v <= hi + slack_hi))  # also catches NaN
    if np.any(bad):
        first = v[bad].flat[0]
        raise HRTFError(f"{where}: {what} {first:g} {unit} is outside [{lo:g}, {hi:g}] {unit}")
    return np.clip(v, lo, hi)


def load_sofa(path: str | os.PathLike[str]) -> HRIRSet:
    """Load and validate an HRIR set from a SOFA file.

    Parameters
    ----------
    path : str or PathLike
        SOFA file with two receivers (0 = left ear, 1 = right ear) and one
        of the conventions in ``ACCEPTED_CONVENTIONS``: SimpleFreeFieldHRIR,
        GeneralFIR (data type FIR), FreeFieldHRIR, GeneralFIR-E (FIR-E) or
        the deprecated GeneralFIRE (FIRE). With emitters, each (measurement,
        emitter) pair is one direction: SourcePosition + EmitterPosition
        (FreeFieldHRIR puts the source at the listener and one emitter per
        direction); either the measurements or the emitters may vary, not
        both.

    Returns
    -------
    HRIRSet
        Impulse responses as float32 (M, 2, N); azimuth normalised to
        (-180, 180] degrees with +90 = left; cartesian positions are
        converted to spherical degrees / metres.

    Raises
    ------
    HRTFError
        If the file is missing, not SOFA/netCDF, exceeds a resource limit
        (``MAX_TAPS``, ``MAX_DIRECTIONS``, ``MAX_VALUES``, ``MAX_DELAY_S``,
        the sample-rate range; checked before the data are read), or any
        field is invalid; the one-line message names the file and the field.
    """
    p = Path(path)
    where = p.name
    if not p.is_file():
        raise HRTFError(f"{where}: no such file ({p})")
    header = _read_header(p, where)
    try:
        sofa = _read(p)
    except Exception as exc:  # sofar/netCDF4 raise OSError, ValueError, AttributeError...
        raise HRTFError(
            f"{where}: not a readable SOFA/netCDF file ({type(exc).__name__}: {_short(str(exc))})"
        ) from None

    ir = _variable(sofa, header, "Data.IR", where)
    if header.dtype == "FIR":
        ir = ir[..., None]
    elif header.dtype == "FIRE":
        ir = ir.transpose(0, 1, 3, 2)
    m, _, n, e = ir.shape  # (M, R, N, E)
    if m > 1 and e > 1:
        raise HRTFError(
            f"{where}: Data.IR has {m} measurements x {e} emitters; expected one of them to be 1 "
            "(directions per measurement or per emitter)"
        )
    ir = ir.transpose(0, 3, 1, 2).reshape(m * e, 2, n)  # one row per direction
    if not np.all(np.isfinite(ir)):
        bad = int(np.count_nonzero(~np.isfinite(ir)))
        raise HRTFError(f"{where}: Data.IR contains {bad} NaN/inf values")
    if not np.any(ir):
        raise HRTFError(f"{where}: Data.IR is all zeros")
    silent = ~np.any(ir, axis=-1)
    if np.any(silent):  # a dead measurement: rendered silent there, but no reason to refuse the set
        row, ear = np.argwhere(silent)[0]
        log.warning(
            "%s: %d of %d responses in Data.IR are silent (all zeros), the first at direction %d, %s ear",
            where,
            int(silent.sum()),
            silent.size,
            row,
            "left" if ear == 0 else "right",
        )

    fs = _sample_rate(sofa, header, where)
    az, el, dist = _directions(sofa, header, where)
    delay = _delays(sofa, header, fs, where)

    if _receiver0_is_right(ir, az, el, sofa, where):
        ir, delay = ir[:, ::-1, :], delay[:, ::-1]

    log.debug("%s: %d directions, %d taps, %g Hz", where, m * e, n, fs)
    return HRIRSet(
        ir=ir.astype(np.float32),
        az_deg=az,
        el_deg=el,
        dist_m=dist,
        sample_rate=fs,
        source=str(p),
        delay_samples=delay,
    )


def _sample_rate(sofa: Any, header: _Header, where: str) -> float:
    fs = _variable(sofa, header, "Data.SamplingRate", where).ravel()
    if fs.size == 0:
        raise HRTFError(f"{where}: Data.SamplingRate is empty")
    fs = _in_range(fs, MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ, "Data.SamplingRate", "Hz", where)
    if np.ptp(fs) > 0:
        raise HRTFError(f"{where}: Data.SamplingRate varies across measurements ({np.unique(fs)[:8].tolist()})")
    units = str(getattr(sofa, "Data_SamplingRate_Units", "hertz")).lower()
    if units not in ("hertz", "hz"):
        raise HRTFError(f"{where}: Data.SamplingRate_Units is {_quote(units)}, expected 'hertz'")
    return float(fs[0])


def _delays(sofa: Any, header: _Header, fs: float, where: str) -> NDArray[np.float64]:
    """Data.Delay as (directions, 2) samples, in the row order of the flattened Data.IR."""
    m, e = header.sizes["M"], header.sizes.get("E", 1)
    delay = _variable(sofa, header, "Data.Delay", where, default=np.zeros((1, 2)))
    if delay.ndim == 2:  # (I|M, R): the same for every emitter
        delay = delay[..., None]
    try:
        delay = np.broadcast_to(delay, (m, 2, e)).transpose(0, 2, 1).reshape(m * e, 2).copy()
    except ValueError:
        expected = f"(1, 2) or ({m}, 2)" if header.dtype == "FIR" else f"(1 or {m}, 2, 1 or {e})"
        raise HRTFError(f"{where}: Data.Delay has shape {delay.shape}, expected {expected}") from None
    if not np.all(np.isfinite(delay)):
        raise HRTFError(f"{where}: Data.Delay contains NaN/inf values")
    limit = MAX_DELAY_S * fs
    worst = float(np.max(np.abs(delay)))
    if worst > limit + F32_ULPS * float(np.spacing(np.float32(limit))):
        raise HRTFError(
            f"{where}: Data.Delay of {worst:g} samples exceeds the limit of {limit:g} samples "
            f"({MAX_DELAY_S:g} s at {fs:g} Hz)"
        )
    return np.clip(delay, -limit, limit)


class _Pos(NamedTuple):
    """Spherical positions, arrays of shape (M or 1, E or 1)."""

    az: NDArray[np.float64]  # degrees, (-180, 180]
    el: NDArray[np.float64]  # degrees, [-90, 90]
    r: NDArray[np.float64]  # metres
    cartesian: bool  # stored as cartesian (a point at the origin has no direction)
    zero: bool  # every stored coordinate is 0 (e.g. an emitter at its source)


def _positions(sofa: Any, header: _Header, name: str, where: str) -> _Pos:
    """A position variable (SourcePosition or EmitterPosition) in spherical coordinates."""
    pos = _variable(sofa, header, name, where)
    dims = header.shapes[name][0]
    if "C" not in dims or pos.shape[dims.index("C")] != 3:
        raise HRTFError(f"{where}: {name} has shape {pos.shape}, expected 3 coordinates per position")
    pos = _to_me3(pos, dims, header, name, where)
    if not np.all(np.isfinite(pos)):
        raise HRTFError(f"{where}: {name} contains NaN/inf values")
    default = "spherical" if name == "SourcePosition" else "cartesian"
    kind = str(getattr(sofa, f"{name}_Type", default)).lower()
    units = str(getattr(sofa, f"{name}_Units", "")).lower().replace(" ", "")
    if kind == "spherical":
        # "degree, degree, metre"; databases also write "degrees" or "meter".
        if units and not all(u.startswith("deg") for u in (units.split(",") + ["", ""])[:2]):
            raise HRTFError(f"{where}: {name}_Units is {_quote(units)}, expected 'degree, degree, metre'")
        el = _in_range(pos[..., 1], -90.0, 90.0, f"{name} elevation", "degrees", where)
        r = _in_range(pos[..., 2], 0.0, np.inf, f"{name} radius", "metres", where)
        az = wrap_azimuth(pos[..., 0])
    elif kind == "cartesian":
        az, el, r = cart_to_sph(pos)
    elif kind == "spherical harmonics":
        raise HRTFError(
            f"{where}: {name}_Type is 'spherical harmonics' (a spatially continuous set), "
            "expected 'spherical' or 'cartesian' (one direction per emitter)"
        )
    else:
        raise HRTFError(f"{where}: {name}_Type is {_quote(kind)}, expected 'spherical' or 'cartesian'")
    return _Pos(az, el, r, kind == "cartesian", not np.any(pos))


def _to_me3(
    pos: NDArray[np.float64], dims: tuple[str, ...], header: _Header, name: str, where: str
) -> NDArray[np.float64]:
    """Reorder a position array to (M or 1, E or 1, 3) using its dimension names."""
    allowed = {"M": header.sizes["M"], "E": header.sizes.get("E", 1), "C": 3, "I": 1}
    if any(d not in allowed or size not in (1, allowed[d]) for d, size in zip(dims, pos.shape, strict=True)):
        raise HRTFError(
            f"{where}: {name} has dimensions ({', '.join(dims)}) of shape {pos.shape}, expected (M|I, C) or (E, C, M|I)"
        )
    order = [dims.index(d) for d in ("M", "E", "C") if d in dims]
    rest = [i for i in range(pos.ndim) if i not in order]
    out = pos.transpose(order + rest).reshape([pos.shape[i] for i in order])
    if "M" not in dims:
        out = out[None]
    if "E" not in dims:
        out = out[:, None]
    return out


def _directions(sofa: Any, header: _Header, where: str) -> tuple[NDArray[np.float64], ...]:
    """Azimuth, elevation (degrees) and distance (metres) per direction, shape (M x E,).

    FIR: SourcePosition. FIR-E/FIRE: the emitter's position relative to the
    listener, SourcePosition + EmitterPosition (AES69 gives emitter positions
    relative to their source); FreeFieldHRIR puts the source at the listener
    (SourcePosition 0), so its emitters carry the directions, while an
    HRIR set stored the SimpleFreeFieldHRIR way keeps its emitter at 0.
    """
    m, e = header.sizes["M"], header.sizes.get("E", 1)
    src = _positions(sofa, header, "SourcePosition", where)
    emitter = None
    if header.dtype != "FIR" and "EmitterPosition" in header.shapes:
        emitter = _positions(sofa, header, "EmitterPosition", where)
    if emitter is None or emitter.zero:
        pos = src
    elif not np.any(src.r):
        pos = emitter
    else:
        xyz = (
            sph_to_cart(src.az, src.el) * src.r[..., None] + sph_to_cart(emitter.az, emitter.el) * emitter.r[..., None]
        )
        pos = _Pos(*cart_to_sph(xyz), cartesian=True, zero=False)
    name = (
        "SourcePosition" if pos is src else "EmitterPosition" if pos is emitter else "SourcePosition + EmitterPosition"
    )
    if m * e > 1 and pos.az.size == 1:
        raise HRTFError(f"{where}: {name} has one position for {m * e} directions")
    if pos.cartesian and np.any(pos.r <= 0):
        raise HRTFError(f"{where}: {name} has a cartesian position at the origin")
    az, el, dist = (np.broadcast_to(a, (m, e)).reshape(-1).astype(np.float64) for a in (pos.az, pos.el, pos.r))
    rotation = _head_rotation(sofa, header, where)
    if rotation is not None:  # file frame -> head frame (front, left, up)
        az, el, _ = cart_to_sph(sph_to_cart(az, el) @ rotation.T)
    return az, el, dist


def _listener_axis(sofa: Any, header: _Header, name: str, where: str) -> NDArray[np.float64] | None:
    """ListenerView or ListenerUp as one unit vector (file frame); None if absent or all zero.

    Raises
    ------
    HRTFError
        If the vector varies across measurements (a head orientation per
        measurement, e.g. head-above-torso sets stored in one file), or is
        malformed; the message names the field.
    """
    if name not in header.shapes:
        return None
    value = _variable(sofa, header, name, where)
    dims = header.shapes[name][0]
    if "C" not in dims or value.shape[dims.index("C")] != 3 or value.size == 0:
        raise HRTFError(f"{where}: {name} has shape {value.shape}, expected (I, C) or (M, C) with C = 3")
    rows = np.moveaxis(value, dims.index("C"), -1).reshape(-1, 3)
    if not np.all(np.isfinite(rows)):
        raise HRTFError(f"{where}: {name} contains NaN/inf values")
    kind = str(getattr(sofa, f"{name}_Type", "cartesian")).lower()
    if kind == "spherical":  # (azimuth deg, elevation deg, radius): only the direction matters
        rows = sph_to_cart(rows[:, 0], rows[:, 1]) * np.where(rows[:, 2:] == 0.0, 0.0, 1.0)
    elif kind != "cartesian":
        raise HRTFError(f"{where}: {name}_Type is {_quote(kind)}, expected 'cartesian' or 'spherical'")
    norm = np.linalg.norm(rows, axis=1)
    if not np.any(norm):  # never set (some writers store zeros): the convention's default applies
        return None
    if not np.all(norm):
        raise HRTFError(f"{where}: {name} is the zero vector for some measurements, not a direction")
    units = rows / norm[:, None]
    if not np.allclose(units, units[0], rtol=0.0, atol=VIEW_TOLERANCE):
        other = units[np.argmax(np.max(np.abs(units - units[0]), axis=1))]
        raise HRTFError(
            f"{where}: {name} varies across measurements ({_quote(np.round(units[0], 4).tolist())} ... "
            f"{_quote(np.round(other, 4).tolist())}); a head orientation per measurement is not supported, "
            "expected one orientation for the whole set"
        )
    return units[0]


def _head_rotation(sofa: Any, header: _Header, where: str) -> NDArray[np.float64] | None:
    """Rows: the listener's front, left and up axes in the file's frame; None for the default.

    SOFA gives SourcePosition in the file's frame and the head orientation as
    ListenerView (where the nose points, default (1, 0, 0)) and ListenerUp
    (default (0, 0, 1)); a direction d in the head frame is then
    (d . view, d . left, d . up) with left = up x view. An up vector not
    perpendicular to the view is made so (the view is kept).
    """
    view = _listener_axis(sofa, header, "ListenerView", where)
    up = _listener_axis(sofa, header, "ListenerUp", where)
    if view is None and up is None:
        return None
    front = np.array([1.0, 0.0, 0.0]) if view is None else view
    given_up = np.array([0.0, 0.0, 1.0]) if up is None else up
    top = given_up - (given_up @ front) * front
    if np.linalg.norm(top) < 1e-3:  # within ~0.06 deg of the view: no up direction left
        raise HRTFError(
            f"{where}: ListenerUp {_quote(np.round(given_up, 4).tolist())} is parallel to "
            f"ListenerView {_quote(np.round(front, 4).tolist())}; expected an up direction across the view"
        )
    top /= np.linalg.norm(top)
    rotation = np.stack([front, np.cross(top, front), top])
    if np.allclose(rotation, np.eye(3), rtol=0.0, atol=VIEW_TOLERANCE):
        return None  # the convention's orientation: positions stay exactly as stored
    log.info(
        "%s: ListenerView %s, ListenerUp %s: source directions rotated into the head frame",
        where,
        np.round(front, 4).tolist(),
        np.round(top, 4).tolist(),
    )
    return rotation


def _receiver_position_right_first(sofa: Any) -> bool:
    """True if ReceiverPosition clearly puts receiver 0 at -y (the right ear)."""
    if str(getattr(sofa, "ReceiverPosition_Type", "")).lower() != "cartesian":
        return False
    rp = np.asarray(getattr(sofa, "ReceiverPosition", np.zeros((1, 3))), dtype=np.float64)
    if rp.ndim < 2 or rp.shape[0] != 2 or rp.shape[1] != 3:
        return False
    y = rp[:, 1].reshape(2, -1)[:, 0]
    return bool(y[0] < 0.0 < y[1])


def _receiver0_is_right(
    ir: NDArray[np.float64], az: NDArray[np.float64], el: NDArray[np.float64], sofa: Any, where: str
) -> bool:
    """True if receiver 0 is the right ear (the caller then swaps the ears).

    The responses decide where they can: over directions at least 30 deg off
    the median plane, the ear on the source's side is louder (head shadow).
    ReceiverPosition alone is not trusted: the ARI SOFA API up to 1.1.0 wrote
    [0 -0.09 0; 0 0.09 0] (receiver 0 on the right) into CIPIC, LISTEN, FHK and
    MIT KEMAR conversions whose receiver 0 is the left ear (libmysofa reads
    them left-first too). It decides only where the responses cannot (no
    lateral directions, or less than ``EAR_ILD_MIN_DB`` between the sides).

    Parameters
    ----------
    ir : ndarray, shape (M, 2, N)
        Responses, one row per direction.
    az, el : ndarray, shape (M,)
        Directions in the head frame, degrees (+azimuth = left).
    sofa : sofar.Sofa
        The file (for ReceiverPosition).
    where : str
        File name for log messages.
    """
    by_position = _receiver_position_right_first(sofa)
    side = np.sin(np.deg2rad(az)) * np.cos(np.deg2rad(el))  # y of the unit direction: > 0 left
    energy = np.einsum("mrn,mrn->mr", ir, ir)  # no (M, 2, N) temporary
    lateral = (np.abs(side) >= 0.5) & np.all(energy > 0.0, axis=1)
    if np.any(lateral):
        ild_db = 10.0 * np.log10(energy[lateral, 0] / energy[lateral, 1])  # receiver 0 minus receiver 1
        score = float(np.median(np.sign(side[lateral]) * ild_db))  # > 0: receiver 0 louder on the left
        if abs(score) >= EAR_ILD_MIN_DB:
            right = score < 0.0
            if right:
                log.warning(
                    "%s: receiver 0 is the right ear (louder for sources on the right, median %.1f dB); swapping ears",
                    where,
                    -score,
                )
            elif by_position:
                log.info(
                    "%s: ReceiverPosition puts receiver 0 on the right, but it is louder for sources on the left "
                    "(median %.1f dB): reading it as the left ear (mirrored positions of the ARI SOFA API <= 1.1.0)",
                    where,
                    score,
                )
            return right
    if by_position:
        log.warning("%s: ReceiverPosition puts receiver 0 on the right; swapping ears", where)
    return by_position
