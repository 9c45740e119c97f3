"""``gravity render``'s outputs: all together or none, never over an input, never a stem later (issue 18).

Every case runs the command line as a user would (a subprocess, real files in a temp folder) and
checks what the folder holds afterwards: a failure leaves exactly what was there before (files
byte-identical, no new file, no hidden temp file), prints one ``gravity: error:`` line naming the
file, and no traceback.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import soundfile as sf

from gravity.analysis.reading import RENDER_SOFTWARE, find_stems, gravity_output
from gravity.atomic import atomic_paths
from renderer import RenderError, render_files
from renderer.offline import check_not_an_input, check_output

ROOT = Path(__file__).resolve().parent.parent
FS = 48000


def gravity(*args: Any, preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m gravity`` with ``args`` (paths as str) from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "gravity", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        preexec_fn=preexec_fn,
    )


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` (hidden ones too): file -> its bytes, anything else -> None."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(folder.rglob("*"))
        if not p.is_fifo()
    }


def one_error_line(r: subprocess.CompletedProcess, *needles: str) -> str:
    """The run failed with exit 1 or 2, one ``gravity: error:`` line (the last) holding every needle."""
    assert r.returncode in (1, 2), (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("gravity: error:")]
    assert len(errors) == 1 and r.stderr.rstrip().endswith(errors[0]), r.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def tone(seconds: float, freq: float, amp: float = 0.3, rate: int = FS) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_stems(folder: Path, seconds: float = 1.0) -> Path:
    """kick.wav (60 Hz thumps) and lead_vocal.wav (440 Hz): names the analysis classifies."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * FS)) / FS
    sf.write(folder / "kick.wav", (0.8 * np.sin(2 * np.pi * 60 * t) * np.exp(-(t % 0.5) * 20)).astype("f4"), FS)
    sf.write(folder / "lead_vocal.wav", tone(seconds, 440.0), FS)
    return folder


def write_scene(path: Path, *ids: str) -> Path:
    objs = [
        {"id": i, "class": "other", "az_deg": 30.0 * k, "el_deg": 0.0, "dist_m": 1.5, "width": 0.0,
         "gain_db": -6.0, "reverb_send": 0.0, "early_reflections": 0.0}
        for k, i in enumerate(ids)
    ]  # fmt: skip
    doc = {"version": "1.0", "bed": {"layout": "binaural", "room_preset": "studio_small"},
           "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": 1}, "objects": objs}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


PLAN = ("--planner", "planner", "--quiet")  # the deterministic planner: no model to load


# ------------------------------------------------------------------ all outputs or none


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One successful planned render into an empty folder: what it leaves and prints."""
    d = tmp_path_factory.mktemp("planned")
    stems = write_stems(d / "stems")
    out = d / "out" / "mix.wav"
    out.parent.mkdir()
    r = gravity("render", stems, "-o", out, *PLAN)
    return {"dir": d, "stems": stems, "out": out, "run": r}


def test_a_planned_render_writes_its_three_outputs_and_no_temp_file(planned):
    r, out = planned["run"], planned["out"]
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out.parent)) == ["mix.png", "mix.scene.json", "mix.wav"]
    assert f"wrote {out}, {out.with_suffix('.scene.json')}, {out.with_suffix('.png')}" in r.stderr
    assert [o["id"] for o in json.loads(out.with_suffix(".scene.json").read_text())["objects"]] == [
        "kick",
        "lead_vocal",
    ]
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the file says who wrote it, so a later listing of its folder does not take it for a stem
    assert sf.SoundFile(out).software.startswith(f"{RENDER_SOFTWARE} ")


def _existing_outputs(folder: Path) -> None:
    """A previous mix.wav / mix.scene.json / mix.png the failed render must leave as they are."""
    (folder / "mix.wav").write_bytes(b"old mix")
    (folder / "mix.scene.json").write_text('{"old": true}')
    (folder / "mix.png").write_bytes(b"old plot")


def _sofa(d: Path) -> list[Any]:
    (d / "bad.sofa").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    return ["--hrtf", d / "bad.sofa"]


def _twin(d: Path) -> list[Any]:
    # kick.wav and kick.flac: the analysis names them kick and kick_2, the renderer cannot tell
    # which file is "kick": it fails after the scene and plot are planned and written.
    sf.write(d / "stems" / "kick.flac", tone(1.0, 50.0), FS)
    return []


@pytest.mark.parametrize(
    ("case", "extra", "needle"),
    [
        ("broken SOFA after planning", _sofa, "bad.sofa: bad SOFA file"),
        ("render rate below 8 kHz", lambda _: ["--rate", "4000"], "rate=4000"),
        ("two files named kick", _twin, "file stem 'kick'"),
    ],
)
def test_a_render_failing_after_planning_leaves_no_output_and_keeps_the_old_ones(tmp_path, case, extra, needle):
    write_stems(tmp_path / "stems")
    args = extra(tmp_path)
    _existing_outputs(tmp_path)
    before = snapshot(tmp_path)
    r = gravity("render", tmp_path / "stems", "-o", tmp_path / "mix.wav", *PLAN, *args)
    one_error_line(r, needle)
    assert "scene by planner" in r.stderr, case  # it did fail after planning
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "limit", [pytest.param(3000, marks=pytest.mark.slow), 30_000, pytest.param(150_000, marks=pytest.mark.slow)]
)
def test_a_full_disk_leaves_no_output(tmp_path, limit):
    """A write fails with EFBIG (RLIMIT_FSIZE): at the scene JSON, the plot or the audio."""
    write_stems(tmp_path / "stems")
    _existing_outputs(tmp_path)
    before = snapshot(tmp_path)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = gravity("render", tmp_path / "stems", "-o", tmp_path / "mix.wav", *PLAN, preexec_fn=small_files)
    line = one_error_line(r, "cannot write")
    assert any(f"{tmp_path / name}:" in line for name in ("mix.scene.json", "mix.png", "mix.wav")), line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "make", "needle"),
    [
        ("out.mp3", None, "cannot write .mp3 files"),
        ("out.json", None, "cannot write .json files"),
        ("out.wav", "folder", "is a folder"),
        ("nodir/out.wav", None, "does not exist"),
    ],
)
def test_an_impossible_output_fails_before_any_analysis(tmp_path, name, make, needle):
    write_stems(tmp_path / "stems")
    if make == "folder":
        (tmp_path / name).mkdir()
    before = snapshot(tmp_path)
    r = gravity("render", tmp_path / "stems", "-o", tmp_path / name, *PLAN)
    one_error_line(r, str(tmp_path / name), needle)
    assert "analysed" not in r.stderr  # refused first: no analysis, no planning
    assert snapshot(tmp_path) == before


def test_a_successful_planned_render_replaces_the_old_outputs(tmp_path):
    write_stems(tmp_path / "stems")
    _existing_outputs(tmp_path)
    os.chmod(tmp_path / "mix.wav", 0o640)
    r = gravity("render", tmp_path / "stems", "-o", tmp_path / "mix.wav", *PLAN)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["mix.png", "mix.scene.json", "mix.wav", "stems"]
    assert sf.info(str(tmp_path / "mix.wav")).channels == 2
    assert "objects" in json.loads((tmp_path / "mix.scene.json").read_text())
    assert (tmp_path / "mix.wav").stat().st_mode & 0o777 == 0o640  # the old file's permissions


def _write_both(paths: list[Path], then: Callable[[], None] = lambda: None) -> None:
    """Write "new a" / "new b" through :func:`atomic_paths`, then run ``then`` inside the block."""
    with atomic_paths(paths) as temps:
        for tmp, text in zip(temps, ("new a", "new b"), strict=True):
            tmp.write_text(text)
        then()


def test_atomic_paths_all_or_none(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")

    def fail() -> None:
        raise RuntimeError("the render failed")

    with pytest.raises(RuntimeError, match="the render failed"):
        _write_both([a, b], fail)
    assert sorted(os.listdir(tmp_path)) == ["a.txt"] and a.read_text() == "old a"

    def b_becomes_a_folder() -> None:  # the rename of b fails after a was replaced
        b.mkdir()
        (b / "x").write_text("keeps b non-empty")

    with pytest.raises(IsADirectoryError):
        _write_both([a, b], b_becomes_a_folder)
    assert a.read_text() == "old a" and sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]  # a as it was
    b.joinpath("x").unlink()
    b.rmdir()
    _write_both([a, b])
    assert (a.read_text(), b.read_text()) == ("new a", "new b") and sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]
    with pytest.raises(IsADirectoryError, match="is a folder"):
        _write_both([a, tmp_path])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _write_both([a, tmp_path / "nodir" / "c.txt"])
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"] and a.read_text() == "new a"


# ------------------------------------------------------------------ never over an input


@pytest.mark.parametrize("how", ["same name", "hard link", "symbolic link", "relative path"])
def test_an_output_that_is_an_input_stem_is_refused(tmp_path, how):
    stems = write_stems(tmp_path / "stems")
    scene = write_scene(tmp_path / "scene.json", "kick", "lead_vocal")
    out = {"same name": stems / "kick.wav", "relative path": stems / ".." / "stems" / "kick.wav"}.get(how)
    if how == "hard link":
        out = tmp_path / "out.wav"
        os.link(stems / "kick.wav", out)
    elif how == "symbolic link":
        out = tmp_path / "out.wav"
        out.symlink_to(stems / "kick.wav")
    assert out is not None
    before = snapshot(tmp_path)
    r = gravity("render", stems, "--scene", scene, "-o", out, "--quiet")
    one_error_line(r, f"{out}: is the input", "kick.wav", "--force")
    assert snapshot(tmp_path) == before


def test_an_output_that_is_the_scene_file_is_refused(tmp_path):
    stems = write_stems(tmp_path / "stems")
    scene = write_scene(tmp_path / "scene.wav", "kick", "lead_vocal")  # a scene JSON named .wav
    before = snapshot(tmp_path)
    r = gravity("render", stems, "--scene", scene, "-o", scene, "--quiet")
    one_error_line(r, f"{scene}: is the input {scene}")
    assert snapshot(tmp_path) == before


def test_a_planned_render_over_a_named_stem_is_refused_before_the_analysis(tmp_path):
    stems = write_stems(tmp_path / "stems")
    before = snapshot(tmp_path)
    r = gravity("render", stems / "kick.wav", stems / "lead_vocal.wav", "-o", stems / "lead_vocal.wav", *PLAN)
    one_error_line(r, "lead_vocal.wav: is the input")
    assert "analysed" not in r.stderr
    assert snapshot(tmp_path) == before


def test_force_overwrites_the_input_with_the_render(tmp_path):
    stems = write_stems(tmp_path / "stems")
    scene = write_scene(tmp_path / "scene.json", "kick", "lead_vocal")
    vocal = (stems / "lead_vocal.wav").read_bytes()
    r = gravity("render", stems, "--scene", scene, "-o", stems / "kick.wav", "--quiet", "--force")
    assert r.returncode == 0, r.stderr
    info = sf.SoundFile(stems / "kick.wav")
    assert info.channels == 2 and info.software.startswith(RENDER_SOFTWARE)  # now the render
    assert (stems / "lead_vocal.wav").read_bytes() == vocal
    assert sorted(os.listdir(stems)) == ["kick.wav", "lead_vocal.wav"]


def test_render_files_refuses_an_input_as_output(tmp_path):
    stems = write_stems(tmp_path / "stems")
    scene = write_scene(tmp_path / "scene.json", "kick", "lead_vocal")
    kick = (stems / "kick.wav").read_bytes()
    with pytest.raises(RenderError, match="kick.wav: is the input .*overwrite_inputs=True"):
        render_files([stems / "kick.wav", stems / "lead_vocal.wav"], scene, stems / "kick.wav", progress=False)
    assert (stems / "kick.wav").read_bytes() == kick
    # a new name is never an input; a missing input is left for the reader to name
    check_not_an_input([tmp_path / "new.wav"], [stems / "kick.wav", tmp_path / "missing.wav"])
    with pytest.raises(RenderError, match="is a folder"):
        check_output(stems)
    with pytest.raises(RenderError, match="'FLOAT' is not valid for a .flac file"):
        check_output(tmp_path / "x.flac", "FLOAT")
    with pytest.raises(RenderError, match="cannot write .ogg files; use .wav, .flac or .aiff"):
        check_output(tmp_path / "x.ogg")
    check_output(tmp_path / "x.aif")  # AIFF's other extension is writable


# ------------------------------------------------------------------ Gravity's outputs are not stems


def test_rendering_into_the_stems_folder_twice_does_not_take_the_mix_for_a_stem(tmp_path):
    stems = write_stems(tmp_path / "stems")
    first = gravity("render", stems, "-o", stems / "mix.wav", *PLAN)
    assert first.returncode == 0, first.stderr
    second = gravity("render", stems, "-o", stems / "mix.wav", *PLAN)
    assert second.returncode == 0, second.stderr
    assert f"{stems / 'mix.wav'}: skipped, a render" in second.stderr
    assert "2 stem(s) analysed" in second.stderr
    objs = json.loads((stems / "mix.scene.json").read_text())["objects"]
    assert sorted(o["id"] for o in objs) == ["kick", "lead_vocal"]
    assert sorted(os.listdir(stems)) == ["kick.wav", "lead_vocal.wav", "mix.png", "mix.scene.json", "mix.wav"]


def test_own_outputs_are_recognised_by_metadata_or_by_their_scene(tmp_path):
    stems = write_stems(tmp_path / "stems")
    scene = write_scene(tmp_path / "scene.json", "kick", "lead_vocal")
    # rendered with --scene: no scene JSON beside it, only the metadata says whose it is
    for name in ("render.wav", "render.flac", "render.aiff"):
        r = gravity("render", stems, "--scene", scene, "-o", stems / name, "--quiet")
        assert r.returncode == 0, r.stderr
        assert gravity_output(stems / name) == "written by gravity-render " + __import__("gravity").__version__
    # an old render without metadata, known by the scene beside it
    sf.write(stems / "old.wav", tone(1.0, 220.0), FS)
    (stems / "old.scene.json").write_text("{}")
    assert gravity_output(stems / "old.wav") == "a render (its scene old.scene.json lies beside it)"
    assert gravity_output(stems / "kick.wav") is None
    notes: list[str] = []
    assert [p.name for p in find_stems(stems, notes)] == ["kick.wav", "lead_vocal.wav"]
    assert [n.split(": skipped")[0] for n in notes] == [
        str(stems / n) for n in ("old.wav", "render.aiff", "render.flac", "render.wav")
    ]
    # --scene: the skipped files are said; named explicitly, a render is used as a stem
    r = gravity("render", stems, "--scene", scene, "-o", tmp_path / "again.wav", "--quiet")
    assert r.returncode == 0 and r.stderr.count(": skipped, ") == 4, r.stderr
    r = gravity("analyze", stems / "render.wav", "--bpm", "120")
    assert r.returncode == 0 and "1 stem(s) analysed" in r.stderr, r.stderr


def test_a_folder_holding_only_renders_is_an_error_saying_so(tmp_path):
    stems = write_stems(tmp_path / "stems")
    scene = write_scene(tmp_path / "scene.json", "kick", "lead_vocal")
    (tmp_path / "only").mkdir()
    assert gravity("render", stems, "--scene", scene, "-o", tmp_path / "only" / "mix.wav", "--quiet").returncode == 0
    r = gravity("analyze", tmp_path / "only")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.rstrip().endswith(
        f"{tmp_path / 'only'}: folder contains no stems, only 1 file(s) gravity render wrote"
    )
    assert sorted(os.listdir(tmp_path / "only")) == ["mix.wav"]


def test_a_fifo_named_like_a_render_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "x.wav")
    assert gravity_output(tmp_path / "x.wav") is None  # would block forever if it were opened
