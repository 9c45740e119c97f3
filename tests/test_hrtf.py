"""Tests for the hrtf package, on the embedded MIT KEMAR set and small SOFA files.

Measured behaviour (ITD, ILD, spectra, energies), not just "it ran".
ITDs are "right-ear arrival minus left-ear arrival": positive = left leads.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import sofar

import hrtf
from hrtf import (
    HRIRSet,
    HRTFError,
    PreprocessParams,
    build_model,
    fractional_delay,
    load_model,
    load_sofa,
    measured_filters,
    minimum_phase,
    onset_samples,
    resample,
)
from hrtf.cache import cache_file, cache_key
from hrtf.geometry import RingGrid, SphericalTriangulation, sph_to_cart, wrap_azimuth
from hrtf.resample import rational_factors
from helpers import lf_itd_s

RATE = 48000
KEMAR = hrtf.default_sofa_path()


# ----------------------------------------------------------------- helpers


def onset_itd_s(ir: np.ndarray, fs: float) -> np.ndarray:
    """ITD in seconds (left leads > 0) from -20 dB threshold onsets."""
    on = onset_samples(ir)
    return (on[..., 1] - on[..., 0]) / fs


def energy_db(x: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.sum(np.asarray(x, dtype=np.float64) ** 2, axis=-1))


THIRD_OCTAVES = 1000.0 * 2.0 ** (np.arange(-7, 13) / 3.0)  # 198 Hz .. 16 kHz centres


def band_db(x: np.ndarray, fs: float, n_fft: int = 4096) -> np.ndarray:
    """Third-octave band levels (dB) from 200 Hz to 16 kHz."""
    p = np.abs(np.fft.rfft(x, n_fft, axis=-1)) ** 2
    f = np.fft.rfftfreq(n_fft, 1.0 / fs)
    bands = [p[..., (f >= c * 2 ** (-1 / 6)) & (f < c * 2 ** (1 / 6))].mean(axis=-1) for c in THIRD_OCTAVES]
    return 10.0 * np.log10(np.stack(bands, axis=-1))


def write_sofa(path: Path, convention: str = "SimpleFreeFieldHRIR", **fields) -> Path:
    """Small SOFA file: 4 directions, 2 ears, 32 taps unless overridden."""
    sofa = sofar.Sofa(convention)
    ir = np.zeros((4, 2, 32))
    ir[:, :, 4] = 1.0
    sofa.Data_IR = ir
    sofa.Data_SamplingRate = 48000.0
    sofa.SourcePosition = np.array([[0.0, 0.0, 1.0], [90.0, 0.0, 1.0], [180.0, 0.0, 1.0], [270.0, 0.0, 1.0]])
    for name, value in fields.items():
        setattr(sofa, name, value)
    sofar.write_sofa(str(path), sofa)
    return path


def synthetic_ring(path: Path, fs: float = 48000.0) -> tuple[Path, float]:
    """Horizontal-plane-only set with known ITD: right ear lags by A sin(az)."""
    az = np.arange(0.0, 360.0, 15.0)
    itd_max = 0.00065  # s
    base = minimum_phase(np.hanning(9) * np.cos(np.arange(9)), 64)  # short smooth min-phase kernel
    delays = 20.0 + np.stack([-0.5, 0.5], axis=-1) * (itd_max * fs * np.sin(np.deg2rad(az)))[:, None]
    gains = 10 ** (np.stack([3.0, -3.0], axis=-1) * np.sin(np.deg2rad(az))[:, None] / 20)
    ir = fractional_delay(base, delays, 128) * gains[..., None]
    sofa = sofar.Sofa("SimpleFreeFieldHRIR")
    sofa.Data_IR = ir
    sofa.Data_SamplingRate = fs
    sofa.SourcePosition = np.stack([az, np.zeros_like(az), np.ones_like(az)], axis=-1)
    sofar.write_sofa(str(path), sofa)
    return path, itd_max


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def kemar() -> HRIRSet:
    return load_sofa(KEMAR)


@pytest.fixture(scope="module")
def kemar48(kemar: HRIRSet) -> HRIRSet:
    return resample(kemar, RATE)


@pytest.fixture(scope="module")
def model(kemar: HRIRSet) -> hrtf.HRTFModel:
    t0 = time.perf_counter()
    m = build_model(kemar, RATE)
    # Preprocessing must stay cheap (budget: a few seconds on a busy 2-core box).
    assert time.perf_counter() - t0 < 10.0
    return m


@pytest.fixture(scope="module")
def measured(kemar: HRIRSet) -> tuple[np.ndarray, np.ndarray]:
    return measured_filters(kemar, RATE)


# ------------------------------------------------------------------ loading


def test_kemar_loads(kemar: HRIRSet) -> None:
    assert kemar.ir.shape == (710, 2, 512)
    assert kemar.ir.dtype == np.float32
    assert kemar.sample_rate == 44100.0
    assert kemar.n_directions == 710 and kemar.n_taps == 512
    assert np.all(kemar.az_deg > -180.0) and np.all(kemar.az_deg <= 180.0)
    assert kemar.el_deg.min() == -40.0 and kemar.el_deg.max() == 90.0
    np.testing.assert_allclose(kemar.dist_m, 1.4)
    assert np.all(kemar.delay_samples == 0.0)
    assert Path(kemar.source) == KEMAR
    with pytest.raises(ValueError, match="read-only"):
        kemar.ir[0, 0, 0] = 1.0  # read-only


def test_embedded_file_and_readme_ship_with_package() -> None:
    assert KEMAR.name == "MIT_KEMAR_normal_pinna.sofa" and KEMAR.parent == Path(hrtf.__file__).parent
    readme = (KEMAR.parent / "README.md").read_text()
    assert "Gardner" in readme and "Martin" in readme and "1994" in readme


def test_azimuth_convention() -> None:
    wrapped = wrap_azimuth([270.0, -180.0, 180.0, 360.0, -90.0, 540.0])
    np.testing.assert_array_equal(wrapped, [-90, 180, 180, 0, -90, 180])
    # +90 is left = +y.
    np.testing.assert_allclose(sph_to_cart(90.0, 0.0), [0.0, 1.0, 0.0], atol=1e-15)


@pytest.mark.parametrize("az", [90.0, -90.0])
def test_lateral_source_reaches_near_ear_first_and_louder(kemar: HRIRSet, az: float) -> None:
    i = kemar.find(az, 0.0)
    assert kemar.az_deg[i] == az  # SOFA's 270 deg was normalised to -90
    itd = onset_itd_s(kemar.ir[i], kemar.sample_rate)
    ild = energy_db(kemar.ir[i, 0]) - energy_db(kemar.ir[i, 1])  # left minus right
    sign = np.sign(az)  # +90 = left: left leads and is louder
    assert 0.6e-3 <= sign * itd <= 0.7e-3, itd
    assert sign * ild >= 6.0, ild
    # Mirror image of the opposite side.
    j = kemar.find(-az, 0.0)
    assert onset_itd_s(kemar.ir[j], kemar.sample_rate) == pytest.approx(-itd, abs=2e-6)


def test_frontal_source_has_no_itd_or_ild(kemar: HRIRSet) -> None:
    i = kemar.find(0.0, 0.0)
    assert abs(onset_itd_s(kemar.ir[i], kemar.sample_rate)) < 10e-6
    assert abs(lf_itd_s(kemar.ir[i], kemar.sample_rate)) < 10e-6
    assert abs(energy_db(kemar.ir[i, 0]) - energy_db(kemar.ir[i, 1])) < 1.0


def test_non_sofa_suffix_and_cartesian_positions(tmp_path: Path) -> None:
    pos = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 1.0]])
    path = write_sofa(
        tmp_path / "cart.sofa", SourcePosition=pos, SourcePosition_Type="cartesian", SourcePosition_Units="metre"
    )
    renamed = path.rename(tmp_path / "cart.SOFA")  # sofar itself only opens "*.sofa"
    s = load_sofa(renamed)
    np.testing.assert_allclose(s.az_deg, [0.0, 90.0, 180.0, -90.0], atol=1e-12)
    np.testing.assert_allclose(s.el_deg, [0.0, 0.0, 0.0, 45.0], atol=1e-12)
    np.testing.assert_allclose(s.dist_m, [1.0, 2.0, 1.0, np.sqrt(2.0)])
    assert s.source == str(renamed)


def test_general_fir_convention_accepted(tmp_path: Path) -> None:
    sofa = sofar.Sofa("GeneralFIR")
    sofa.Data_IR = np.ones((3, 2, 16))
    sofa.Data_SamplingRate = 44100.0
    sofa.Data_Delay = np.zeros((1, 2))
    sofa.SourcePosition = np.array([[0.0, 0.0, 1.0], [30.0, 10.0, 1.0], [-30.0, 0.0, 1.0]])
    sofa.ReceiverPosition = np.array([[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]])
    sofar.write_sofa(str(tmp_path / "gfir.sofa"), sofa)
    s = load_sofa(tmp_path / "gfir.sofa")
    assert s.ir.shape == (3, 2, 16) and s.sample_rate == 44100.0


def test_data_delay_is_honoured(tmp_path: Path) -> None:
    s = load_sofa(write_sofa(tmp_path / "delay.sofa", Data_Delay=np.array([[0.0, 5.0]])))
    np.testing.assert_array_equal(s.delay_samples, np.tile([0.0, 5.0], (4, 1)))
    _, d = measured_filters(s, RATE)  # file is at 48 kHz already
    np.testing.assert_allclose(d[:, 1] - d[:, 0], 5.0, atol=1e-6)
    np.testing.assert_allclose(resample(s, 96000).delay_samples[:, 1], 10.0)


def test_receivers_in_swapped_order_are_put_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ir = np.zeros((4, 2, 32))
    ir[:, 0, 4], ir[:, 1, 4] = 0.5, 1.0
    swapped = np.array([[0.0, -0.09, 0.0], [0.0, 0.09, 0.0]])[..., None]  # receiver 0 on the right (-y)
    s = load_sofa(write_sofa(tmp_path / "swap.sofa", Data_IR=ir, ReceiverPosition=swapped))
    assert s.ir[0, 0, 4] == 1.0 and s.ir[0, 1, 4] == 0.5
    assert "swapping ears" in caplog.text


# --------------------------------------------------------------- bad files


def _one_receiver(tmp: Path) -> Path:
    ir = np.zeros((4, 1, 32))
    ir[:, :, 3] = 1.0
    return write_sofa(tmp / "mono.sofa", Data_IR=ir, ReceiverPosition=np.zeros((1, 3, 1)), Data_Delay=np.zeros((1, 1)))


def _nan_ir(tmp: Path) -> Path:
    ir = np.zeros((4, 2, 32))
    ir[:, :, 3] = 1.0
    ir[2, 1, 7] = np.nan
    return write_sofa(tmp / "nan.sofa", Data_IR=ir)


def _wrong_convention(tmp: Path) -> Path:
    sofa = sofar.Sofa("SimpleFreeFieldHRTF")
    sofar.write_sofa(str(tmp / "tf.sofa"), sofa)
    return tmp / "tf.sofa"


def _text(tmp: Path) -> Path:
    (tmp / "notes.sofa").write_text("this is not a SOFA file\n")
    return tmp / "notes.sofa"


def _empty(tmp: Path) -> Path:
    (tmp / "empty.sofa").write_bytes(b"")
    return tmp / "empty.sofa"


def _zero_rate(tmp: Path) -> Path:
    return write_sofa(tmp / "rate0.sofa", Data_SamplingRate=0.0)


def _bad_units(tmp: Path) -> Path:
    # sofar refuses to write this, so edit the netCDF attribute afterwards.
    path = write_sofa(tmp / "units.sofa")
    with netCDF4.Dataset(path, "r+") as ds:
        ds["SourcePosition"].Units = "radian, radian, metre"
    return path


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (_text, "not a readable SOFA/netCDF file"),
        (_empty, "not a readable SOFA/netCDF file"),
        (_one_receiver, "Data.IR has 1 receiver, expected 2 (left, right)"),
        (_wrong_convention, "GLOBAL_SOFAConventions is 'SimpleFreeFieldHRTF'"),
        (_nan_ir, "Data.IR contains 1 NaN/inf"),
        (_zero_rate, "Data.SamplingRate"),
        (_bad_units, "SourcePosition_Units"),
    ],
)
def test_bad_files_raise_hrtf_error_naming_file_and_field(tmp_path: Path, make, field: str) -> None:
    path = make(tmp_path)
    with pytest.raises(HRTFError) as info:
        load_sofa(path)
    msg = str(info.value)
    assert msg.startswith(f"{path.name}: "), msg
    assert field in msg
    assert isinstance(info.value, ValueError)


def test_missing_file_raises_hrtf_error(tmp_path: Path) -> None:
    with pytest.raises(HRTFError, match="nothere.sofa: no such file"):
        load_sofa(tmp_path / "nothere.sofa")
    with pytest.raises(HRTFError, match="nothere.sofa"):
        load_model(tmp_path / "nothere.sofa", cache_dir=tmp_path)


# -------------------------------------------------------------- resampling


def test_rational_factors() -> None:
    assert rational_factors(44100, 48000) == (160, 147)
    assert rational_factors(48000, 44100) == (147, 160)
    assert rational_factors(48000, 96000) == (2, 1)
    with pytest.raises(ValueError, match="positive whole numbers"):
        rational_factors(44100.5, 48000)
    with pytest.raises(ValueError, match="too fine-grained"):
        rational_factors(44100, 48001)


def test_resample_to_48k_keeps_itd_and_magnitude(kemar: HRIRSet, kemar48: HRIRSet) -> None:
    assert kemar48.sample_rate == RATE
    assert kemar48.ir.shape == (710, 2, 558)  # ceil(512 * 160 / 147)
    itd44 = onset_itd_s(kemar.ir, kemar.sample_rate)
    itd48 = onset_itd_s(kemar48.ir, RATE)
    assert np.max(np.abs(itd48 - itd44)) < 20e-6
    # Same 10 Hz bin grid at both rates; compare where the response is within
    # 40 dB of its peak (deep notches are ill-conditioned in dB).
    h44 = np.abs(np.fft.rfft(kemar.ir, 4410, axis=-1))
    h48 = np.abs(np.fft.rfft(kemar48.ir, 4800, axis=-1))[..., : h44.shape[-1]]
    f = np.arange(h44.shape[-1]) * 10.0
    keep = (h44 > 0.01 * h44.max(axis=-1, keepdims=True)) & (f >= 20.0) & (f <= 20000.0)
    err = np.abs(20.0 * np.log10(h48 / np.where(keep, h44, 1.0)))[keep]
    assert np.percentile(err, 99) < 0.25
    assert np.median(err) < 0.02
    # Third-octave bands up to 16 kHz agree everywhere.
    assert np.max(np.abs(band_db(kemar48.ir, RATE) - band_db(kemar.ir, kemar.sample_rate))) < 0.5


# ----------------------------------------------- minimum phase and delays


def test_minimum_phase_keeps_magnitude_and_front_loads_energy(kemar48: HRIRSet) -> None:
    ir = kemar48.ir[::7].astype(np.float64)
    n_fft = 8192
    hmin = minimum_phase(ir, n_taps=n_fft, n_fft=n_fft)  # untruncated
    f = np.fft.rfftfreq(n_fft, 1.0 / RATE)
    band = (f >= 200.0) & (f <= 16000.0)
    err = 20 * np.log10(np.abs(np.fft.rfft(hmin, n_fft)) / np.abs(np.fft.rfft(ir, n_fft)))[..., band]
    assert np.max(np.abs(err)) < 0.01
    # Minimum phase = fastest energy build-up among equal-magnitude filters.
    n = ir.shape[-1]
    e_min = np.cumsum(hmin[..., :n] ** 2, axis=-1)
    e_orig = np.cumsum(ir**2, axis=-1)
    assert np.all(e_min >= e_orig - 1e-4 * e_orig[..., -1:])
    assert np.median(e_min[..., 47] / e_orig[..., -1]) > 0.95  # most energy in the first 1 ms
    # The model's 256-tap truncation keeps nearly all of it.
    assert np.median(e_min[..., 255] / e_orig[..., -1]) > 0.995


def test_reconstruction_matches_original(kemar48: HRIRSet, measured) -> None:
    filters, delays = measured
    assert filters.shape == (710, 2, 256) and delays.shape == (710, 2)
    assert delays.min() == 0.0
    recon = fractional_delay(filters, delays, 256 + int(np.ceil(delays.max())) + 1)
    orig = kemar48.ir.astype(np.float64)
    # Magnitude in third-octave bands, 200 Hz - 16 kHz.
    err = band_db(recon, RATE) - band_db(orig, RATE)
    rms = np.sqrt(np.mean(err**2, axis=-1))
    assert np.max(rms) < 1.0  # every direction and ear
    assert np.median(rms) < 0.3
    assert np.max(np.abs(err)) < 3.0  # worst single band (late reflection cut by the 5.3 ms filter)
    # Low-frequency ITD, measured independently of the delay estimator.
    itd_err = lf_itd_s(recon, RATE) - lf_itd_s(orig, RATE)
    assert np.max(np.abs(itd_err)) < 30e-6


def test_onset_delay_method_keeps_onset_itd(kemar: HRIRSet, kemar48: HRIRSet) -> None:
    filters, delays = measured_filters(kemar, RATE, PreprocessParams(delay_method="onset"))
    recon = fractional_delay(filters, delays, 256 + int(np.ceil(delays.max())) + 1)
    err = onset_itd_s(recon, RATE) - onset_itd_s(kemar48.ir, RATE)
    assert np.max(np.abs(err)) < 30e-6


def test_known_delays_are_recovered_on_a_horizontal_only_set(tmp_path: Path) -> None:
    path, itd_max = synthetic_ring(tmp_path / "ring.sofa")
    ring = load_sofa(path)
    _, delays = measured_filters(ring, RATE)
    truth = itd_max * np.sin(np.deg2rad(ring.az_deg))
    np.testing.assert_allclose((delays[:, 1] - delays[:, 0]) / RATE, truth, atol=1e-6)
    m = build_model(ring, RATE)
    az = np.arange(-180.0, 180.0, 7.5)
    _, d = m.lookup(az, 0.0)
    itd = (d[:, 1] - d[:, 0]) / RATE
    measured_az = np.mod(az, 30.0) == 0.0  # both measured and on the 2 deg grid
    np.testing.assert_allclose(itd[measured_az], itd_max * np.sin(np.deg2rad(az[measured_az])), atol=1e-6)
    # In between: linear interpolation of the neighbours' ITDs (chord of the sine).
    np.testing.assert_allclose(itd, itd_max * np.sin(np.deg2rad(az)), atol=0.01 * itd_max)
    # Only el=0 was measured: both poles were filled in; straight up/down is
    # symmetric (ITD 0) and as loud as the ring on average.
    f, d = m.lookup([0.0, 0.0], [90.0, -90.0])
    assert np.all(np.isfinite(f)) and np.allclose(d[:, 0], d[:, 1])
    ring_db = energy_db(m.lookup(az, 0.0)[0]).mean()
    assert np.all(np.abs(energy_db(f) - ring_db) < 3.0)


# ------------------------------------------------------------- the model


def test_model_shapes_and_types(model: hrtf.HRTFModel) -> None:
    assert model.sample_rate == RATE and model.n_taps == 256
    assert model.filters.dtype == np.float32 and model.delays.dtype == np.float64
    assert model.grid.size == model.filters.shape[0] > 10000  # 2 deg grid
    f, d = model.lookup(30.0, 10.0)
    assert f.shape == (2, 256) and f.dtype == np.float32 and d.shape == (2,)
    f, d = model.lookup(np.zeros((3, 4)), np.linspace(-90, 90, 4))
    assert f.shape == (3, 4, 2, 256) and d.shape == (3, 4, 2)
    f, d = model.lookup(np.arange(64.0), 0.0, interpolation="nearest")
    assert f.shape == (64, 2, 256) and d.shape == (64, 2)
    with pytest.raises(ValueError, match="interpolation must be"):
        model.lookup(0.0, 0.0, interpolation="cubic")
    assert np.all(np.isfinite(model.filters)) and np.all(model.delays >= 0)


def test_model_itd_ild_at_90(model: hrtf.HRTFModel) -> None:
    f, d = model.lookup([90.0, -90.0, 0.0], 0.0)
    itd = (d[:, 1] - d[:, 0]) / RATE
    ild = energy_db(f[:, 0]) - energy_db(f[:, 1])
    assert 0.6e-3 <= itd[0] <= 0.7e-3 and itd[1] == pytest.approx(-itd[0], abs=1e-9)
    assert ild[0] >= 6.0 and ild[1] == pytest.approx(-ild[0], abs=1e-4)
    assert abs(itd[2]) < 1e-9 and abs(ild[2]) < 1e-4


def test_model_returns_measured_data_at_measured_directions(kemar: HRIRSet, model, measured) -> None:
    filters, delays = measured
    # Grid points that coincide with measurements (el 0, every 10 deg): exact.
    on_grid = (kemar.el_deg == 0.0) & (np.mod(kemar.az_deg, 10.0) == 0.0)
    assert on_grid.sum() == 36
    for mode in ("bilinear", "nearest"):
        f, d = model.lookup(kemar.az_deg[on_grid], kemar.el_deg[on_grid], interpolation=mode)
        np.testing.assert_allclose(f, filters[on_grid], atol=1e-6)
        np.testing.assert_allclose(d, delays[on_grid], atol=1e-9)
    # All 710 measured directions: within a grid step of the data.
    f, d = model.lookup(kemar.az_deg, kemar.el_deg)
    assert np.max(np.abs(d - delays)) < 0.25  # samples (5 us)
    rms = np.sqrt(np.mean((band_db(f, RATE) - band_db(filters, RATE)) ** 2, axis=-1))
    assert np.median(rms) < 0.1 and np.max(rms) < 0.6


def test_interpolation_lies_between_neighbours(kemar: HRIRSet, model, measured) -> None:
    filters, delays = measured
    a, b = kemar.find(30.0, 0.0), kemar.find(35.0, 0.0)
    f, d = model.lookup(32.5, 0.0)
    for ear in (0, 1):
        lo, hi = sorted([delays[a, ear], delays[b, ear]])
        assert lo - 1e-9 <= d[ear] <= hi + 1e-9
        e = energy_db(f[ear])
        e_a, e_b = energy_db(filters[a, ear]), energy_db(filters[b, ear])
        assert min(e_a, e_b) - 0.5 <= e <= max(e_a, e_b) + 0.5
    itd = d[1] - d[0]
    assert min(delays[a, 1] - delays[a, 0], delays[b, 1] - delays[b, 0]) <= itd
    assert itd <= max(delays[a, 1] - delays[a, 0], delays[b, 1] - delays[b, 0])


def test_interpolation_is_continuous_and_mirror_symmetric(model: hrtf.HRTFModel) -> None:
    az = np.arange(-180.0, 180.25, 0.25)
    for el in (0.0, 5.0, 37.0, -52.0):
        f, d = model.lookup(az, el)
        assert np.max(np.abs(np.diff(d, axis=0))) < 0.25  # samples per 0.25 deg step
        assert np.max(np.abs(np.diff(f, axis=0))) < 0.1 * np.max(np.abs(f))
        # -180 and +180 are the same direction (seam).
        np.testing.assert_allclose(f[0], f[-1], atol=1e-6)
        # KEMAR data are left/right symmetric; interpolation must keep that.
        fm, dm = model.lookup(-az, el)
        np.testing.assert_allclose(fm[:, ::-1], f, atol=1e-5)
        np.testing.assert_allclose(dm[:, ::-1], d, atol=1e-9)


def test_below_measured_range_gets_sensible_filters(kemar: HRIRSet, model, measured) -> None:
    filters, _ = measured
    ring = kemar.el_deg == -40.0
    # The virtual pole carries the lowest ring's average power.
    pole_db = energy_db(model.lookup(0.0, -90.0)[0])
    ring_power_db = 10 * np.log10(np.mean(10 ** (energy_db(filters[ring]) / 10), axis=0))
    np.testing.assert_allclose(pole_db, ring_power_db, atol=0.1)
    az = np.arange(-180.0, 180.0, 15.0)
    ring_db = energy_db(model.lookup(az, -40.0)[0])  # (az, ear), lowest measured neighbours
    last_itd = None
    for el in (-45.0, -60.0, -75.0, -90.0):
        f, d = model.lookup(az, el)
        assert np.all(np.isfinite(f)) and np.all(np.isfinite(d))
        # Energy between the measured neighbour above and the pole below.
        e = energy_db(f)
        assert np.all(e >= np.minimum(ring_db, pole_db) - 0.5) and np.all(e <= np.maximum(ring_db, pole_db) + 0.5)
        itd = np.max(np.abs(d[:, 1] - d[:, 0]))
        if last_itd is not None:
            assert itd < last_itd  # lateral cues fade towards straight down
        last_itd = itd
    # Straight down is one direction whatever the azimuth, with no ITD/ILD.
    f, d = model.lookup(az, -90.0)
    np.testing.assert_allclose(f, f[:1].repeat(len(az), axis=0), atol=1e-7)
    assert np.allclose(d[:, 0], d[:, 1]) and np.allclose(f[:, 0], f[:, 1], atol=1e-7)


def test_full_hrir_applies_delays(model: hrtf.HRTFModel) -> None:
    h = model.full_hrir([90.0, -30.0], [0.0, 20.0])
    assert h.dtype == np.float32 and h.shape == (2, 2, 256 + int(np.ceil(model.max_delay)) + 1)
    f, d = model.lookup([90.0, -30.0], [0.0, 20.0])
    # h = f delayed by d: the cross-spectrum phase is a pure linear phase.
    n_fft = 1024
    k = np.arange(int(200 / RATE * n_fft) + 1, int(16000 / RATE * n_fft))  # 200 Hz - 16 kHz
    cross = np.fft.rfft(h, n_fft)[..., k] * np.conj(np.fft.rfft(f, n_fft)[..., k])
    delay = -np.unwrap(np.angle(cross), axis=-1) / (2 * np.pi * k / n_fft)
    # Energy-weighted: a causal fractional delay < 1 sample loses a little
    # pre-ringing, which only shows where there is hardly any energy.
    w = np.abs(cross)
    np.testing.assert_allclose(np.sum(w * delay, axis=-1) / np.sum(w, axis=-1), d, atol=0.01)
    np.testing.assert_allclose(energy_db(h), energy_db(f), atol=0.01)


def test_lookup_is_fast(model: hrtf.HRTFModel) -> None:
    rng = np.random.default_rng(0)
    az, el = rng.uniform(-180, 180, 64), rng.uniform(-90, 90, 64)
    model.lookup(az, el)
    t0 = time.perf_counter()
    for _ in range(50):
        model.lookup(az, el)
    per_call = (time.perf_counter() - t0) / 50
    assert per_call < 5e-3, per_call  # typically ~0.1 ms for 64 sources


def test_preprocessing_is_deterministic(kemar: HRIRSet, model: hrtf.HRTFModel) -> None:
    again = build_model(kemar, RATE)
    assert np.array_equal(again.filters, model.filters) and np.array_equal(again.delays, model.delays)


# ------------------------------------------------------------ geometry


def test_ring_grid_lookup() -> None:
    g = RingGrid(2.0)
    assert g.ring_count[0] == g.ring_count[-1] == 1 and g.ring_count[45] == 180
    idx = g.nearest(g.az_deg, g.el_deg)
    np.testing.assert_array_equal(idx, np.arange(g.size))
    i, w = g.bilinear(g.az_deg, g.el_deg)
    assert np.allclose(w.sum(axis=-1), 1.0) and np.all(w >= 0)
    np.testing.assert_array_equal(i[np.arange(g.size), np.argmax(w, axis=-1)], np.arange(g.size))
    with pytest.raises(ValueError, match="step_deg must divide 180"):
        RingGrid(7.0)


def test_triangulation_weights_reproduce_direction(kemar: HRIRSet) -> None:
    tri = SphericalTriangulation(np.append(kemar.az_deg, 0.0), np.append(kemar.el_deg, -90.0))
    rng = np.random.default_rng(1)
    az, el = rng.uniform(-180, 180, 500), np.rad2deg(np.arcsin(rng.uniform(-1, 1, 500)))
    w = tri.weights(az, el)
    assert np.allclose(w.sum(axis=1), 1.0) and w.min() >= 0
    # Weighted vertices point along the query (gnomonic barycentric coordinates).
    p = w @ tri.points
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    np.testing.assert_allclose(p, sph_to_cart(az, el), atol=1e-12)
    # At a vertex, weight 1 on that vertex.
    w = tri.weights(kemar.az_deg[:50], kemar.el_deg[:50])
    np.testing.assert_allclose(w.toarray()[np.arange(50), np.arange(50)], 1.0)


# ----------------------------------------------------------------- cache


def test_cache_hit_rebuild_and_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hrtf")
    cache = tmp_path / "cache"
    m1 = load_model(rate=RATE, cache_dir=cache)
    path = cache_file(cache, KEMAR, RATE, cache_key(KEMAR, RATE))
    assert path.is_file() and "cache miss" in caplog.text
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temp files left
    stamp = path.stat().st_mtime_ns

    caplog.clear()
    m2 = load_model(rate=RATE, cache_dir=cache)
    assert "cache hit" in caplog.text and "cache miss" not in caplog.text
    assert path.stat().st_mtime_ns == stamp  # not rewritten
    assert np.array_equal(m1.filters, m2.filters) and np.array_equal(m1.delays, m2.delays)
    # the diffuse-field power comes from the file, equal to computing it from the filters
    assert m2.diffuse_power is not None
    fresh = hrtf.HRTFModel(m1.filters, m1.delays, m1.sample_rate, m1.grid_step_deg)
    assert fresh.diffuse_power is None and np.array_equal(fresh.diffuse_field_power(), m2.diffuse_power)
    assert (m2.sample_rate, m2.grid_step_deg, m2.source, m2.params_json) == (
        m1.sample_rate,
        m1.grid_step_deg,
        m1.source,
        m1.params_json,
    )

    # Other rate or parameters -> other key and file.
    assert cache_key(KEMAR, 44100) != cache_key(KEMAR, RATE)
    assert cache_key(KEMAR, RATE, PreprocessParams(grid_step_deg=3.0)) != cache_key(KEMAR, RATE)
    caplog.clear()
    m44 = load_model(rate=44100, cache_dir=cache)
    assert "cache miss" in caplog.text and m44.sample_rate == 44100 and m44.n_taps == 240
    assert len(list(cache.glob("*.npz"))) == 2

    # Content, not name, is hashed: a renamed copy shares the key.
    copy = tmp_path / "copy.sofa"
    shutil.copyfile(KEMAR, copy)
    assert cache_key(copy, RATE) == cache_key(KEMAR, RATE)


@pytest.mark.parametrize("damage", [b"garbage", b""])
def test_corrupt_cache_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: bytes) -> None:
    caplog.set_level(logging.INFO, logger="hrtf")
    ring, _ = synthetic_ring(tmp_path / "ring.sofa")  # small set: fast to rebuild
    good = load_model(ring, rate=RATE, cache_dir=tmp_path)
    path = cache_file(tmp_path, ring, RATE, cache_key(ring, RATE))
    blob = path.read_bytes()
    path.write_bytes(damage or blob[: len(blob) // 2])  # garbage, or truncated
    caplog.clear()
    again = load_model(ring, rate=RATE, cache_dir=tmp_path)
    assert "unusable" in caplog.text and "cache miss" in caplog.text
    assert np.array_equal(again.filters, good.filters)
    assert path.read_bytes() == blob  # rewritten whole


def test_default_locations() -> None:
    assert hrtf.default_cache_dir() == Path.home() / ".cache" / "gravity" / "hrtf"
    assert hrtf.default_sofa_path().is_file()


def test_public_api_is_exported() -> None:
    for name in hrtf.__all__:
        assert hasattr(hrtf, name), name
    assert issubclass(HRTFError, ValueError)
