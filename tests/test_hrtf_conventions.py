"""SOFA files from every real database: each claimed convention, float32 rounding, resource bounds.

Every file is built here (sofar, or netCDF4 where sofar cannot write the layout) from the
shipped MIT KEMAR set and loaded through ``hrtf.load_sofa``; the loaded HRIRs must equal
KEMAR's for the same directions. ITD sign: a source at +90 deg azimuth (LEFT) reaches the
left ear first.
"""

from __future__ import annotations

import logging
import tracemalloc
import warnings
from pathlib import Path
from typing import Any, Callable

import netCDF4
import numpy as np
import pytest
import sofar

import hrtf
from hrtf import HRIRSet, HRTFError, PreprocessParams, build_model, load_sofa, measured_filters
from hrtf import preprocess
from hrtf.sofa import (
    ACCEPTED_CONVENTIONS,
    MAX_DELAY_S,
    MAX_DIRECTIONS,
    MAX_SAMPLE_RATE_HZ,
    MAX_TAPS,
    MAX_VALUES,
    MIN_SAMPLE_RATE_HZ,
    MIN_TAPS,
)
from helpers import lf_itd_s

# Directions taken from KEMAR: front, left, right, back, up, the lowest ring, two obliques.
DIRECTIONS = [(0.0, 0.0), (90.0, 0.0), (-90.0, 0.0), (180.0, 0.0), (0.0, 90.0), (0.0, -40.0), (42.0, 30.0)]
FS = 44100.0  # KEMAR's rate, Hz
EARS = np.array([[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]])  # receiver 0 = left ear (+y)


@pytest.fixture(scope="module")
def kemar() -> HRIRSet:
    return load_sofa(hrtf.default_sofa_path())


@pytest.fixture(scope="module")
def rows(kemar: HRIRSet) -> np.ndarray:
    idx = np.array([kemar.find(az, el) for az, el in DIRECTIONS])
    np.testing.assert_array_equal(kemar.az_deg[idx], [d[0] for d in DIRECTIONS])  # all measured exactly
    np.testing.assert_array_equal(kemar.el_deg[idx], [d[1] for d in DIRECTIONS])
    return idx


def _sph(kemar: HRIRSet, rows: np.ndarray) -> np.ndarray:
    """(k, 3) spherical positions (deg, deg, m) of the chosen KEMAR rows."""
    return np.stack([kemar.az_deg[rows], kemar.el_deg[rows], kemar.dist_m[rows]], axis=-1)


def _cart(kemar: HRIRSet, rows: np.ndarray) -> np.ndarray:
    return hrtf.sph_to_cart(kemar.az_deg[rows], kemar.el_deg[rows]) * kemar.dist_m[rows, None]


def _write(path: Path, sofa: Any) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sofar warns about deprecated conventions and custom fields
        sofar.write_sofa(str(path), sofa)
    return path


def _rewrite(src: Path, dst: Path, replace: dict[str, tuple[tuple[str, ...], np.ndarray]], **attrs: str) -> Path:
    """Copy a netCDF file, replacing variables (new dimensions + data) and global attributes.

    For layouts sofar cannot write: the deprecated GeneralFIRE, an emitter per measurement.
    """
    with netCDF4.Dataset(src) as a, netCDF4.Dataset(dst, "w", format="NETCDF4") as b:
        b.setncatts({k: a.getncattr(k) for k in a.ncattrs()} | attrs)
        for name, dim in a.dimensions.items():
            b.createDimension(name, len(dim))
        for name, var in a.variables.items():
            dims, data = replace.get(name, (var.dimensions, var[:]))
            out = b.createVariable(name, var.datatype, dims)
            out.setncatts({k: var.getncattr(k) for k in var.ncattrs()})
            out[:] = data
    return dst


def _assert_matches_kemar(loaded: HRIRSet, kemar: HRIRSet, rows: np.ndarray, atol_deg: float = 0.0) -> None:
    """Same HRIRs, directions, rate; and the ITD sign: +90 deg (left) reaches the left ear first."""
    assert loaded.ir.shape == (len(rows), 2, kemar.n_taps)
    np.testing.assert_array_equal(loaded.ir, kemar.ir[rows])
    np.testing.assert_allclose(loaded.az_deg, kemar.az_deg[rows], atol=atol_deg)
    np.testing.assert_allclose(loaded.el_deg, kemar.el_deg[rows], atol=atol_deg)
    np.testing.assert_allclose(loaded.dist_m, kemar.dist_m[rows], rtol=1e-12)
    assert loaded.sample_rate == FS
    left = loaded.find(90.0, 0.0)
    assert loaded.az_deg[left] == pytest.approx(90.0)
    assert lf_itd_s(loaded.ir[left], FS) > 0.5e-3  # KEMAR: ~0.7 ms, left ear first
    assert lf_itd_s(loaded.ir[loaded.find(-90.0, 0.0)], FS) < -0.5e-3


# ------------------------------------------------------------------ conventions


def test_accepted_conventions_are_exactly_the_tested_ones() -> None:
    assert set(ACCEPTED_CONVENTIONS) == {
        "SimpleFreeFieldHRIR",
        "GeneralFIR",
        "FreeFieldHRIR",
        "GeneralFIR-E",
        "GeneralFIRE",
    }


def test_simple_free_field_hrir(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    s = sofar.Sofa("SimpleFreeFieldHRIR")
    s.Data_IR = kemar.ir[rows].astype(np.float64)
    s.Data_SamplingRate = FS
    s.SourcePosition = _sph(kemar, rows)
    _assert_matches_kemar(load_sofa(_write(tmp_path / "sffhrir.sofa", s)), kemar, rows)


def test_general_fir(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    s = sofar.Sofa("GeneralFIR")
    s.Data_IR = kemar.ir[rows].astype(np.float64)
    s.Data_SamplingRate = FS
    s.Data_Delay = np.zeros((1, 2))
    s.ReceiverPosition = EARS
    s.SourcePosition = _sph(kemar, rows)
    _assert_matches_kemar(load_sofa(_write(tmp_path / "gfir.sofa", s)), kemar, rows)


def test_free_field_hrir_one_emitter_per_direction(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    # AES69-2022's layout: one measurement, the source at the listener, E emitters around it.
    s = sofar.Sofa("FreeFieldHRIR")
    s.Data_IR = kemar.ir[rows].astype(np.float64).transpose(1, 2, 0)[None]  # (M=1, R, N, E)
    s.Data_SamplingRate = FS
    s.Data_Delay = np.zeros((1, 2, 1))
    s.SourcePosition = np.zeros((1, 3))
    s.EmitterPosition_Type = "spherical"
    s.EmitterPosition = _sph(kemar, rows)[:, :, None]  # (E, C, I)
    path = _write(tmp_path / "ffhrir.sofa", s)
    with netCDF4.Dataset(path) as ds:  # what was written is the FIR-E layout
        assert ds.DataType == "FIR-E" and ds["Data.IR"].dimensions == ("M", "R", "N", "E")
    _assert_matches_kemar(load_sofa(path), kemar, rows)


def test_free_field_hrir_cartesian_emitters(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    s = sofar.Sofa("FreeFieldHRIR")
    s.Data_IR = kemar.ir[rows].astype(np.float64).transpose(1, 2, 0)[None]
    s.Data_SamplingRate = FS
    s.EmitterPosition_Type = "cartesian"
    s.EmitterPosition_Units = "metre"
    s.EmitterPosition = _cart(kemar, rows)[:, :, None]
    _assert_matches_kemar(load_sofa(_write(tmp_path / "ffcart.sofa", s)), kemar, rows, atol_deg=1e-9)


def test_free_field_hrir_emitter_position_per_measurement(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    # One emitter whose position changes per measurement: EmitterPosition (E=1, C, M).
    s = sofar.Sofa("FreeFieldHRIR")
    s.Data_IR = kemar.ir[rows].astype(np.float64)[..., None]  # (M, R, N, E=1)
    s.Data_SamplingRate = FS
    s.EmitterPosition_Type = "spherical"
    path = _write(tmp_path / "ff_ic.sofa", s)
    per_m = _rewrite(path, tmp_path / "ff_ecm.sofa", {"EmitterPosition": (("E", "C", "M"), _sph(kemar, rows).T[None])})
    _assert_matches_kemar(load_sofa(per_m), kemar, rows)


def test_free_field_hrir_stored_like_simple_free_field(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    # Directions in SourcePosition, the emitter at the source: read as SimpleFreeFieldHRIR.
    s = sofar.Sofa("FreeFieldHRIR")
    s.Data_IR = kemar.ir[rows].astype(np.float64)[..., None]
    s.Data_SamplingRate = FS
    s.SourcePosition = _sph(kemar, rows)
    s.EmitterPosition_Type = "cartesian"
    s.EmitterPosition_Units = "metre"
    s.EmitterPosition = np.zeros((1, 3))
    _assert_matches_kemar(load_sofa(_write(tmp_path / "ff_src.sofa", s)), kemar, rows)


def test_general_fir_e_one_emitter(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    s = sofar.Sofa("GeneralFIR-E")
    s.Data_IR = kemar.ir[rows].astype(np.float64)[..., None]  # (M, R, N, E=1)
    s.Data_SamplingRate = FS
    s.Data_Delay = np.zeros((1, 2, 1))
    s.ReceiverPosition = EARS
    s.SourcePosition = _sph(kemar, rows)
    _assert_matches_kemar(load_sofa(_write(tmp_path / "gfire1.sofa", s)), kemar, rows)


def test_general_fir_e_loudspeakers_around_the_listener(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    # One measurement, one emitter per loudspeaker; the source (the array) at the listener.
    k = len(rows)
    s = sofar.Sofa("GeneralFIR-E")
    s.Data_IR = kemar.ir[rows].astype(np.float64).transpose(1, 2, 0)[None]
    s.Data_SamplingRate = FS
    s.Data_Delay = np.zeros((1, 2, k))
    s.ReceiverPosition = EARS
    s.SourcePosition = np.zeros((1, 3))
    s.EmitterPosition = _cart(kemar, rows)  # (E, C), cartesian metres
    _assert_matches_kemar(load_sofa(_write(tmp_path / "gfire_spk.sofa", s)), kemar, rows, atol_deg=1e-9)


def test_general_fir_e_emitter_offset_from_its_source(tmp_path: Path) -> None:
    # First: source 1 m in front, emitter (-1, 1, 0) m from it: the sound comes from (0, 1, 0) = +90 deg.
    s = sofar.Sofa("GeneralFIR-E")
    ir = np.zeros((2, 2, 32, 1))
    ir[:, :, 4] = 1.0
    s.Data_IR = ir
    s.Data_SamplingRate = 48000.0
    s.Data_Delay = np.zeros((1, 2, 1))
    s.ReceiverPosition = EARS
    s.SourcePosition = np.array([[0.0, 0.0, 1.0], [90.0, 0.0, 2.0]])
    s.EmitterPosition = np.array([[-1.0, 1.0, 0.0]])
    loaded = load_sofa(_write(tmp_path / "offset.sofa", s))
    # Second: the source 2 m to the left, so the emitter sits at (-1, 3, 0) m.
    np.testing.assert_allclose(loaded.az_deg, [90.0, np.rad2deg(np.arctan2(3.0, -1.0))], atol=1e-12)
    np.testing.assert_allclose(loaded.el_deg, [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(loaded.dist_m, [1.0, np.sqrt(10.0)])


def test_general_fire_deprecated_layout(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    # SOFA 1.0's GeneralFIRE (data type FIRE) stores Data.IR as (M, R, E, N); sofar no longer writes it.
    s = sofar.Sofa("GeneralFIR-E")
    s.Data_IR = kemar.ir[rows].astype(np.float64)[..., None]
    s.Data_SamplingRate = FS
    s.Data_Delay = np.zeros((1, 2, 1))
    s.ReceiverPosition = EARS
    s.SourcePosition = _sph(kemar, rows)
    path = _write(tmp_path / "new.sofa", s)
    old = _rewrite(
        path,
        tmp_path / "fire.sofa",
        {"Data.IR": (("M", "R", "E", "N"), kemar.ir[rows].astype(np.float64)[:, :, None, :])},
        SOFAConventions="GeneralFIRE",
        SOFAConventionsVersion="1.0",
        DataType="FIRE",
    )
    _assert_matches_kemar(load_sofa(old), kemar, rows)


def test_per_emitter_delays_follow_their_emitters(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    k = len(rows)
    delay = np.stack([np.zeros(k), np.arange(k, dtype=float)])[None]  # (M=1, R, E): right ear late by e samples
    s = sofar.Sofa("FreeFieldHRIR")
    s.Data_IR = kemar.ir[rows].astype(np.float64).transpose(1, 2, 0)[None]
    s.Data_SamplingRate = FS
    s.EmitterPosition_Type = "spherical"
    s.EmitterPosition = _sph(kemar, rows)[:, :, None]
    path = _write(tmp_path / "ff.sofa", s)
    path = _rewrite(path, tmp_path / "ff_delay.sofa", {"Data.Delay": (("I", "R", "E"), delay)})
    np.testing.assert_array_equal(load_sofa(path).delay_samples, delay[0].T)


@pytest.mark.parametrize(
    ("convention", "version", "units"),
    [
        ("SimpleFreeFieldHRIR", "0.6", "degree, degree, metre"),  # versions sofar does not list
        ("SimpleFreeFieldHRIR", "0.4", "degrees, degrees, meters"),
        ("GeneralFIR", "0.9", "degree, degree, meter"),
    ],
)
def test_versions_and_unit_spellings_of_real_databases(
    tmp_path: Path, kemar: HRIRSet, rows: np.ndarray, convention: str, version: str, units: str
) -> None:
    s = sofar.Sofa(convention)
    s.Data_IR = kemar.ir[rows].astype(np.float64)
    s.Data_SamplingRate = FS
    s.Data_Delay = np.zeros((1, 2))
    s.ReceiverPosition = EARS[:, :, None] if convention == "SimpleFreeFieldHRIR" else EARS
    s.SourcePosition = _sph(kemar, rows)
    path = _write(tmp_path / "db.sofa", s)
    with netCDF4.Dataset(path, "r+") as ds:
        ds.SOFAConventionsVersion = version
        ds["SourcePosition"].Units = units
    _assert_matches_kemar(load_sofa(path), kemar, rows)


# ------------------------------------------------------------ refused layouts


def _free_field(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray, **fields: Any) -> Path:
    s = sofar.Sofa("FreeFieldHRIR")
    s.Data_IR = kemar.ir[rows].astype(np.float64).transpose(1, 2, 0)[None]
    s.Data_SamplingRate = FS
    s.EmitterPosition_Type = "spherical"
    s.EmitterPosition = _sph(kemar, rows)[:, :, None]
    for name, value in fields.items():
        setattr(s, name, value)
    return _write(tmp_path / "ff.sofa", s)


def test_one_position_for_many_directions_is_refused(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    # Seven emitters, all at their source: the file gives no directions.
    path = _free_field(tmp_path, kemar, rows, EmitterPosition=np.zeros((7, 3, 1)))
    with pytest.raises(HRTFError, match=r"^ff\.sofa: SourcePosition has one position for 7 directions$"):
        load_sofa(path)


def test_measurements_and_emitters_both_varying_is_refused(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    ir = np.stack([kemar.ir[rows], kemar.ir[rows]]).astype(np.float64).transpose(0, 2, 3, 1)  # (M=2, R, N, E=7)
    path = _free_field(tmp_path, kemar, rows, Data_IR=ir, Data_Delay=np.zeros((1, 2, 1)))
    with pytest.raises(HRTFError, match=r"^ff\.sofa: Data\.IR has 2 measurements x 7 emitters"):
        load_sofa(path)


def test_spherical_harmonics_emitters_are_refused(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    path = _free_field(tmp_path, kemar, rows)
    with netCDF4.Dataset(path, "r+") as ds:  # sofar refuses to write 7 SH emitters (not (order+1)**2)
        ds["EmitterPosition"].Type = "spherical harmonics"
    with pytest.raises(HRTFError, match="ff.sofa: EmitterPosition_Type is 'spherical harmonics'"):
        load_sofa(path)


def test_data_type_must_match_the_convention(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    path = _free_field(tmp_path, kemar, rows)
    with netCDF4.Dataset(path, "r+") as ds:
        ds.DataType = "FIR"
    with pytest.raises(HRTFError, match="ff.sofa: GLOBAL_DataType is 'FIR', expected 'FIR-E' for FreeFieldHRIR"):
        load_sofa(path)


# ------------------------------------------------------------ float32 rounding


def _sffhrir(path: Path, pos: np.ndarray, **fields: Any) -> Path:
    s = sofar.Sofa("SimpleFreeFieldHRIR")
    ir = np.zeros((len(pos), 2, 32))
    ir[:, :, 4] = 1.0
    s.Data_IR = ir
    s.Data_SamplingRate = 48000.0
    s.SourcePosition = pos
    for name, value in fields.items():
        setattr(s, name, value)
    return _write(path, s)


F32_BELOW_M90 = float(np.nextafter(np.float32(-90.0), np.float32(-100.0)))  # -90.0000076, FHK_HRIR_L2354's
F32_ABOVE_P90 = float(np.nextafter(np.float32(90.0), np.float32(100.0)))


def test_float32_rounded_pole_elevations_are_clamped(tmp_path: Path) -> None:
    assert F32_BELOW_M90 == pytest.approx(-90.0000076, abs=1e-7)
    pos = np.array([[0.0, F32_BELOW_M90, 1.2], [0.0, 0.0, 1.2], [90.0, F32_ABOVE_P90, 1.2], [270.0, -89.99999, 1.2]])
    s = load_sofa(_sffhrir(tmp_path / "fhk.sofa", pos))
    np.testing.assert_array_equal(s.el_deg, [-90.0, 0.0, 90.0, -89.99999])


def test_float32_variables_load(tmp_path: Path) -> None:
    # FHK-style: positions stored as netCDF float32 variables, the pole 1 ULP beyond -90.
    path = _sffhrir(tmp_path / "f64.sofa", np.array([[0.0, -90.0, 1.2], [90.0, 0.0, 1.2], [-90.0, 0.0, 1.2]]))
    pos32 = np.array([[0.0, F32_BELOW_M90, 1.2], [90.0, 0.0, 1.2], [-90.0, 0.0, 1.2]], dtype=np.float32)
    f32 = tmp_path / "f32.sofa"
    with netCDF4.Dataset(path) as a, netCDF4.Dataset(f32, "w") as b:
        b.setncatts({k: a.getncattr(k) for k in a.ncattrs()})
        for name, dim in a.dimensions.items():
            b.createDimension(name, len(dim))
        for name, var in a.variables.items():
            out = b.createVariable(name, "f4" if name == "SourcePosition" else var.datatype, var.dimensions)
            out.setncatts({k: var.getncattr(k) for k in var.ncattrs()})
            out[:] = pos32 if name == "SourcePosition" else var[:]
    s = load_sofa(f32)
    assert s.el_deg[0] == -90.0 and s.dist_m[0] == pytest.approx(1.2, rel=1e-7)


@pytest.mark.parametrize(
    ("el", "shown"),
    [(-120.0, "-120"), (-90.001, "-90.001"), (90.0005, "90.0005"), (95.0, "95"), (np.nan, "nan")],
)
def test_clearly_out_of_range_elevation_is_refused(tmp_path: Path, el: float, shown: str) -> None:
    path = _sffhrir(tmp_path / "el.sofa", np.array([[0.0, el, 1.2], [90.0, 0.0, 1.2]]))
    with pytest.raises(HRTFError) as info:
        load_sofa(path)
    msg = str(info.value)
    if np.isnan(el):
        assert msg == "el.sofa: SourcePosition contains NaN/inf values"
    else:
        assert msg == f"el.sofa: SourcePosition elevation {shown} degrees is outside [-90, 90] degrees"


def test_radius_rounding_and_negative_radius(tmp_path: Path) -> None:
    tiny = -float(np.spacing(np.float32(0.0)))  # -1.4e-45: float32 rounding of 0
    s = load_sofa(_sffhrir(tmp_path / "r0.sofa", np.array([[0.0, 0.0, tiny], [90.0, 0.0, 1.0]])))
    assert s.dist_m[0] == 0.0
    with pytest.raises(HRTFError, match=r"^r\.sofa: SourcePosition radius -0\.5 metres is outside \[0, inf\] metres$"):
        load_sofa(_sffhrir(tmp_path / "r.sofa", np.array([[0.0, 0.0, -0.5], [90.0, 0.0, 1.0]])))


def test_emitter_elevation_is_range_checked_too(tmp_path: Path, kemar: HRIRSet, rows: np.ndarray) -> None:
    pos = _sph(kemar, rows)
    pos[4, 1] = F32_ABOVE_P90  # KEMAR's zenith, rounded up in float32
    assert load_sofa(_free_field(tmp_path, kemar, rows, EmitterPosition=pos[:, :, None])).el_deg[4] == 90.0
    pos[4, 1] = 91.0
    with pytest.raises(HRTFError, match="ff.sofa: EmitterPosition elevation 91 degrees is outside"):
        load_sofa(_free_field(tmp_path, kemar, rows, EmitterPosition=pos[:, :, None]))


# ------------------------------------------------------------ resource bounds


def _hostile(
    path: Path,
    m: int = 4,
    n: int = 32,
    r: int = 2,
    rate: float = 48000.0,
    delay: float = 0.0,
    extra: tuple[str, int] | None = None,
) -> Path:
    """A SimpleFreeFieldHRIR file whose header declares (M, R, N) but stores almost nothing.

    Data.IR is never written (netCDF4 stores no chunk for it; reading returns fill values), so
    the file stays a few kB however large M x R x N is: only a loader that reads the data
    before checking the header allocates it. ``extra`` adds a large unwritten variable.
    """
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.setncatts(
            {
                "Conventions": "SOFA",
                "Version": "2.1",
                "SOFAConventions": "SimpleFreeFieldHRIR",
                "SOFAConventionsVersion": "1.0",
                "DataType": "FIR",
            }
        )
        for name, size in {"M": m, "R": r, "N": n, "C": 3, "I": 1, "E": 1}.items():
            ds.createDimension(name, size)
        ir = ds.createVariable("Data.IR", "f8", ("M", "R", "N"), zlib=True, chunksizes=(1, r, min(n, 4096)))
        if m * r * n <= 4096:
            ir[:] = 1.0
        ds.createVariable("Data.SamplingRate", "f8", ("I",))[:] = rate
        ds.createVariable("Data.Delay", "f8", ("I", "R"))[:] = np.full((1, r), delay)
        pos = ds.createVariable("SourcePosition", "f8", ("M", "C"))
        pos.Type, pos.Units = "spherical", "degree, degree, metre"
        pos[:] = np.stack([np.arange(m) * 360.0 / m, np.zeros(m), np.ones(m)], axis=-1)
        if extra is not None:
            ds.createDimension("X", extra[1])
            ds.createVariable(extra[0], "f8", ("X",), zlib=True, chunksizes=(4096,))
    return path


def _peak_alloc(fn: Callable[[], object]) -> int:
    """Peak bytes allocated through Python/numpy while fn runs (tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
    except HRTFError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    ("kwargs", "message", "would_read"),
    [
        ({"n": 65536}, f"Data.IR: HRIR length 65536 taps exceeds the limit of {MAX_TAPS} taps", 4 * 2 * 65536),
        ({"n": 1_000_000, "m": 2}, "HRIR length 1000000 taps exceeds the limit of 16384 taps", 2 * 2 * 1_000_000),
        (
            {"m": MAX_DIRECTIONS + 1, "n": 8},
            f"Data.IR: {MAX_DIRECTIONS + 1} measurements exceed the limit of {MAX_DIRECTIONS} directions",
            (MAX_DIRECTIONS + 1) * 2 * 8,
        ),
        (
            {"m": 20_000, "n": 1024},  # within both per-axis limits, too large together (IR + positions)
            f"the file holds 41020003 values (largest: 'Data.IR' of shape (20000, 2, 1024)), "
            f"exceeding the limit of {MAX_VALUES} values (256 MiB as float64)",
            20_000 * 2 * 1024,
        ),
        (
            {"extra": ("Junk", MAX_VALUES)},  # sofar reads every variable, custom ones too
            "values (largest: 'Junk' of shape (33554432,)), exceeding the limit of 33554432 values",
            MAX_VALUES,
        ),
        ({"r": 3}, "Data.IR has 3 receivers, expected 2 (left, right)", 0),
        ({"n": 1}, f"Data.IR: HRIR length 1 taps is below the minimum of {MIN_TAPS} taps", 0),
    ],
)
def test_size_limits_are_checked_before_reading(
    tmp_path: Path, kwargs: dict[str, Any], message: str, would_read: int
) -> None:
    path = _hostile(tmp_path / "big.sofa", **kwargs)
    assert path.stat().st_size < 3_000_000  # a small file (M x 3 positions at most)...
    with pytest.raises(HRTFError) as info:
        load_sofa(path)
    msg = str(info.value)
    assert msg.startswith("big.sofa: ") and message in msg and "\n" not in msg, msg
    # ...refused from its header: far less allocated than reading Data.IR would take.
    peak = _peak_alloc(lambda: load_sofa(path))
    assert peak < 2_000_000, peak
    assert would_read == 0 or peak < would_read * 8 / 10


@pytest.mark.parametrize(
    ("rate", "ok"),
    [(1.0, False), (7999.0, False), (MIN_SAMPLE_RATE_HZ, True), (MAX_SAMPLE_RATE_HZ, True), (1e6, False)],
)
def test_sample_rate_range(tmp_path: Path, rate: float, ok: bool) -> None:
    path = _hostile(tmp_path / "rate.sofa", rate=rate)
    if ok:
        assert load_sofa(path).sample_rate == rate
        return
    with pytest.raises(HRTFError) as info:
        load_sofa(path)
    assert str(info.value) == f"rate.sofa: Data.SamplingRate {rate:g} Hz is outside [8000, 384000] Hz"


@pytest.mark.parametrize(
    ("delay", "ok"), [(1e7, False), (-48001.0, False), (48000.0 * MAX_DELAY_S, True), (12.5, True)]
)
def test_delay_limit(tmp_path: Path, delay: float, ok: bool) -> None:
    path = _hostile(tmp_path / "delay.sofa", delay=delay)
    if ok:
        np.testing.assert_array_equal(load_sofa(path).delay_samples, np.full((4, 2), delay))
        return
    with pytest.raises(HRTFError) as info:
        load_sofa(path)
    assert str(info.value) == (
        f"delay.sofa: Data.Delay of {abs(delay):g} samples exceeds the limit of 48000 samples (1 s at 48000 Hz)"
    )


def test_error_quotes_at_most_200_characters(tmp_path: Path) -> None:
    path = _hostile(tmp_path / "conv.sofa")
    with netCDF4.Dataset(path, "r+") as ds:
        ds.SOFAConventions = "X" * 100_000
    with pytest.raises(HRTFError) as info:
        load_sofa(path)
    assert len(str(info.value)) < 400 and "XXX..." in str(info.value)


def test_missing_data_is_refused(tmp_path: Path) -> None:
    path = _hostile(tmp_path / "holes.sofa", n=2048)  # Data.IR declared, never written
    with pytest.raises(HRTFError, match=r"^holes\.sofa: Data\.IR has 16384 missing \(unwritten\) values$"):
        load_sofa(path)


# ------------------------------------------------- preprocessing stays bounded


def _random_set(m: int, n: int = 32, seed: int = 0) -> HRIRSet:
    """Random directions at 48 kHz with valid, slightly different responses (left ear louder)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(m, 3))
    az, el, _ = hrtf.cart_to_sph(v)
    ir = np.zeros((m, 2, n))
    ir[:, 0, 8] = 1.0
    ir[:, 1, 8] = 0.5
    ir[:, :, 9:12] = 0.1 * rng.normal(size=(m, 2, 3))
    return HRIRSet(
        ir=ir,
        az_deg=az,
        el_deg=el,
        dist_m=np.ones(m),
        sample_rate=48000.0,
        source="dense",
        delay_samples=np.zeros((m, 2)),
    )


def test_a_set_denser_than_the_grid_is_decimated(caplog: pytest.LogCaptureFixture) -> None:
    params = PreprocessParams(grid_step_deg=10.0)
    grid = hrtf.RingGrid(10.0)
    dense = _random_set(3000)
    assert dense.n_directions > preprocess.DECIMATE_ABOVE * grid.size  # 3000 > 2 x 412
    # Expected subset, found independently: the measured direction nearest each grid point.
    cos = hrtf.sph_to_cart(grid.az_deg, grid.el_deg) @ hrtf.sph_to_cart(dense.az_deg, dense.el_deg).T
    keep = np.unique(np.argmax(cos, axis=1))
    assert keep.size <= grid.size
    subset = preprocess._subset(dense, keep)
    with caplog.at_level(logging.INFO, logger="hrtf"):
        model = build_model(dense, 48000, params)
    assert f"dense: 3000 directions, more than 2 x the {grid.size} grid points; using the {keep.size}" in caplog.text
    expected = build_model(subset, 48000, params)
    np.testing.assert_array_equal(model.filters, expected.filters)
    np.testing.assert_allclose(model.delays, expected.delays, atol=1e-9)


def test_a_set_within_the_threshold_is_used_in_full(caplog: pytest.LogCaptureFixture) -> None:
    sparse = _random_set(800)  # < 2 x 412 points of a 10 deg grid
    with caplog.at_level(logging.INFO, logger="hrtf"):
        build_model(sparse, 48000, PreprocessParams(grid_step_deg=10.0))
    assert "preprocessed 800 directions (of 800)" in caplog.text


def test_block_size_bounds_memory_not_results(kemar: HRIRSet, monkeypatch: pytest.MonkeyPatch) -> None:
    part = preprocess._subset(kemar, slice(0, 700, 7))  # 100 directions, 44.1 kHz -> 48 kHz
    ref_filters, ref_delays = measured_filters(part, 48000)
    monkeypatch.setattr(preprocess, "CHUNK_BYTES", 2**20)  # blocks of 1 direction
    tracemalloc.start()
    try:
        filters, delays = measured_filters(part, 48000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(filters, ref_filters)
    np.testing.assert_allclose(delays, ref_delays, atol=1e-9)
    # One direction's temporaries (~0.6 MB) + the outputs (100 x 2 x 256 x 8 B = 0.4 MB) + the
    # copied input (measured: 1.5 MB); all 100 at once took 32 MB.
    assert peak < 4 * 2**20, peak


def test_a_silent_response_is_reported_and_preprocessed_without_nan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A dead measurement used to give NaN delays ("cannot convert float NaN to integer").
    dense = _random_set(300)
    ir = dense.ir.copy()
    ir[3] = 0.0
    s = sofar.Sofa("SimpleFreeFieldHRIR")
    s.Data_IR = ir.astype(np.float64)
    s.Data_SamplingRate = 48000.0
    s.SourcePosition = np.stack([dense.az_deg, dense.el_deg, dense.dist_m], axis=-1)
    with caplog.at_level(logging.WARNING, logger="hrtf"):
        loaded = load_sofa(_write(tmp_path / "dead.sofa", s))
        model = build_model(loaded, 48000, PreprocessParams(grid_step_deg=10.0))
    assert "dead.sofa: 2 of 600 responses in Data.IR are silent (all zeros), the first at direction 3" in caplog.text
    assert np.all(np.isfinite(model.delays)) and np.all(np.isfinite(model.filters))
    assert 0.0 <= model.max_delay < 32
