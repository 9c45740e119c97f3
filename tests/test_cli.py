"""The gravity command line, run as a user would (subprocess, real files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gravity.request import Request
from gravity.rules import check
from gravity.schema import check_scene

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples/sample_input.json"
BIN = Path(sys.executable).parent


def gravity(*args: str, exe: str | None = None) -> subprocess.CompletedProcess:
    cmd = [str(BIN / exe)] if exe else [sys.executable, "-m", "gravity"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.llm  # the default planner (auto) runs Gravity's model
def test_scene_on_the_seed_example():
    r = gravity("scene", str(SAMPLE))
    assert r.returncode == 0, r.stderr
    scene = json.loads(r.stdout)
    req = Request.from_dict(json.loads(SAMPLE.read_text()))
    assert check_scene(scene) == [] and check(req, scene) == []
    v1 = next(o for o in scene["objects"] if o["id"] == "v1")
    assert (v1["az_deg"], v1["el_deg"], v1["dist_m"]) == (0, 10, 1.6)
    assert scene["constraints_applied"][1:] == ["anchor:lead_vocal@0/10/1.6", "mono_low_end<120Hz"]


@pytest.mark.llm  # the default planner (auto) runs Gravity's model
def test_scene_writes_file_and_alias_works(tmp_path):
    out = tmp_path / "scene.json"
    r = gravity(str(SAMPLE), "-o", str(out), "--seed", "2", exe="gravity-scene")
    assert r.returncode == 0, r.stderr
    assert check_scene(json.loads(out.read_text())) == []
    assert [p.name for p in tmp_path.iterdir()] == ["scene.json"]  # no temp files left


@pytest.mark.llm  # the default planner (auto) runs Gravity's model
def test_prompt_option_steers(tmp_path):
    r = gravity("scene", str(SAMPLE), "--prompt", "put the kick way behind me")  # the kick stays centred: hard rule
    scene = json.loads(r.stdout)
    k1 = next(o for o in scene["objects"] if o["id"] == "k1")
    assert (k1["az_deg"], k1["el_deg"]) == (0, 0)
    doc = json.loads(SAMPLE.read_text())
    doc["rules"] = []
    p = tmp_path / "free.json"
    p.write_text(json.dumps(doc))
    k1 = next(
        o
        for o in json.loads(gravity("scene", str(p), "--prompt", "put the kick way behind me").stdout)["objects"]
        if o["id"] == "k1"
    )
    assert abs(k1["az_deg"]) >= 170


BAD = {
    "broken.json": ('{"target_format": "iamf", ', "invalid JSON"),
    "unknown_key.json": (json.dumps({**json.loads(SAMPLE.read_text()), "tempo": 120}), "tempo: unknown key"),
    "wrong_type.json": (
        json.dumps({**json.loads(SAMPLE.read_text()), "max_objects": "ten"}),
        "max_objects: 'ten' is not of type 'integer'",
    ),
    "unknown_class.json": (
        SAMPLE.read_text().replace('"kick"', '"kik"'),
        "stems[1].class: 'kik' is not allowed; did you mean 'kick'?",
    ),
    "conflict.json": (
        json.dumps(
            {
                "target_format": "iamf",
                "max_objects": 4,
                "stems": [{"id": "a", "class": "pad"}, {"id": "b", "class": "pad"}],
                "rules": [
                    {"type": "anchor", "track_id": "a", "az_deg": 30, "el_deg": 0},
                    {"type": "anchor", "track_id": "b", "az_deg": 30, "el_deg": 0},
                    {"type": "avoid_masking", "min_sep_deg": 20},
                ],
            }
        ),
        "rules[2].avoid_masking",
    ),
}


# (the rule conflict shows once the default planner, auto, has loaded Gravity's model)
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.llm) if n == "conflict.json" else n for n in sorted(BAD)]
)
def test_bad_input_clear_message_exit_1_no_output(tmp_path, name):
    text, expected = BAD[name]
    src = tmp_path / name
    src.write_text(text)
    out = tmp_path / "out.json"
    r = gravity("scene", str(src), "-o", str(out))
    assert r.returncode == 1
    assert expected in r.stderr and str(src) in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == "" and not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [name]
    v = gravity("validate", str(src))
    assert v.returncode == 1 and expected in v.stderr


def test_validate_good_files_and_mixed():
    ok = gravity("validate", str(SAMPLE), str(ROOT / "examples/sample_output.json"))
    assert ok.returncode == 0 and "valid request" in ok.stdout and "valid scene" in ok.stdout
    assert gravity("validate", str(SAMPLE), "/nonexistent.json").returncode == 1


def test_plot_writes_png(tmp_path):
    png = tmp_path / "scene.png"
    r = gravity("plot", str(ROOT / "examples/sample_output.json"), "-o", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_convert_alias_reports_a_missing_adapter(tmp_path):
    r = gravity(str(tmp_path / "nope"), str(tmp_path / "out.gguf"), exe="gravity-convert")
    assert r.returncode != 0 and "nope" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.gguf").exists()


@pytest.fixture(scope="module")
def song(example_song) -> Path:
    return example_song  # the session's (tests/conftest.py), made by examples/make_stems.py


def test_analyze_writes_a_valid_request(song, tmp_path):
    req = tmp_path / "request.json"
    r = gravity("analyze", str(song), "-o", str(req), "--hint", "vox=slightly above, front")
    assert r.returncode == 0, r.stderr
    doc = json.loads(req.read_text())
    assert Request.from_dict(doc).bpm == pytest.approx(120, abs=1)
    classes = {s["id"]: s["class"] for s in doc["stems"]}
    assert classes["kick"] == "kick" and classes["vox"] == "lead_vocal" and classes["hats"] == "hihat"
    assert next(s for s in doc["stems"] if s["id"] == "vox")["hint"] == "slightly above, front"


def test_analyze_hostile_files_one_message_each_no_traceback(song, tmp_path):
    import numpy as np
    import soundfile as sf

    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio")
    sf.write(tmp_path / "one.wav", np.zeros(1), 48000)
    sf.write(tmp_path / "nan.wav", np.full(4800, np.nan, dtype=np.float32), 48000, subtype="FLOAT")
    sf.write(tmp_path / "eight.wav", np.random.default_rng(0).standard_normal((48000, 8)) * 0.1, 48000)
    sf.write(tmp_path / "low_rate.wav", np.sin(np.arange(8000) * 0.1) * 0.5, 8000)
    (tmp_path / "kick.mp3").write_bytes((song / "kick.wav").read_bytes())  # WAV content, wrong extension
    r = gravity("analyze", str(tmp_path))
    assert r.returncode == 0 and "Traceback" not in r.stderr
    for name in ("empty.wav", "text.wav", "one.wav", "nan.wav"):
        assert name in r.stderr, name
    ids = {s["id"] for s in json.loads(r.stdout)["stems"]}
    assert {"eight", "low_rate", "kick"} <= ids
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "empty.wav").write_bytes(b"")
    r = gravity("analyze", str(only_bad))
    assert r.returncode == 1 and "empty.wav" in r.stderr and "Traceback" not in r.stderr


def test_render_bare_stems_plans_and_renders(song, tmp_path):
    """No scene: analyse, plan (hats steered hard left), render; the hats' band leans left."""
    import numpy as np
    import soundfile as sf
    from scipy.signal import butter, sosfilt

    out = tmp_path / "mix.wav"
    r = gravity("render", str(song), "-o", str(out), "--hint", "hats=hard left", "--planner", "planner", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "scene by planner: critic " in r.stderr and "stacked 0" in r.stderr  # the planned scene's card
    scene = json.loads(out.with_suffix(".scene.json").read_text())
    assert check_scene(scene) == [] and out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    hats = next(o for o in scene["objects"] if o["id"] == "hats")
    assert hats["az_deg"] == pytest.approx(90, abs=10)
    y, rate = sf.read(out)
    assert rate == 48000 and y.shape[1] == 2 and abs(len(y) / rate - 16.0) < 2.0 and np.isfinite(y).all()
    high = sosfilt(butter(4, 8000, "highpass", fs=rate, output="sos"), y, axis=0)  # the hats own this band
    left, right = (10 * np.log10(np.mean(high[:, c] ** 2)) for c in (0, 1))
    assert left - right > 3.0, (left, right)
