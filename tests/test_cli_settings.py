"""Settings declared once (issue 15): flags and ``--set`` built from the config dataclasses, one
error tree. In-process parsers for the flag tables; the command line as a user runs it
(subprocess, real WAV and SOFA files) for exit codes and messages.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gravity.cli import build_parser
from gravity.errors import GravityError
from gravity.llm.config import LLMConfig
from gravity.settings import (
    SettingsError,
    add_arguments,
    from_args,
    load,
    parse_overrides,
    settings,
)
from renderer.config import RenderConfig
from training.data import DataConfig
from training.train import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples/sample_input.json"
LLM_COMMANDS = ("scene", "render", "eval", "live")
# the flags the README and older scripts use: they must keep working
COMPAT = (
    "--model",
    "--lora",
    "--n-gpu-layers",
    "--threads",
    "--ctx",
    "--llm-seed",
    "--temperature",
    "--top-p",
    "--timeout",
    "--draft",
    "--quant",
    "--no-pin-hints",
    "--no-grammar",
)


def gravity(*args: str, module: str = "gravity") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def one_error_line(r: subprocess.CompletedProcess) -> str:
    """The single error line of a failed command (and no traceback)."""
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, r.stderr
    return errors[0]


def parser_for(command: str) -> argparse.ArgumentParser:
    """The subparser of one ``gravity`` command, built as the CLI builds it."""
    p = build_parser([command])
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def group_flags(p: argparse.ArgumentParser, title: str) -> set[str]:
    group = next(g for g in p._action_groups if g.title == title)
    return {s for a in group._group_actions for s in a.option_strings}


# ----------------------------------------------------------------------------- flags from fields
@pytest.mark.parametrize(("cls", "title"), [(LLMConfig, "LLM runtime"), (RenderConfig, "renderer")])
def test_every_field_gets_a_flag_and_defaults_round_trip(cls, title) -> None:
    p = argparse.ArgumentParser()
    add_arguments(p, cls, title=title)
    flags = group_flags(p, title)
    for s in settings(cls).values():
        assert s.flags[0] in flags, s.name
        assert s.help, f"{cls.__name__}.{s.name} has no help"
    assert from_args(cls, p.parse_args([])) == cls()


def test_llm_flags_parse_into_llm_config() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p, LLMConfig)
    args = p.parse_args(
        [
            "--model",
            "m.gguf",
            "--threads",
            "3",
            "--ctx",
            "2048",
            "--llm-seed",
            "7",
            "--timeout",
            "5",
            "--quant",
            "q8_0",
            "--no-pin-hints",
            "--draft",
            "--no-grammar",
            "--top-p",
            "0.5",
            "--n-gpu-layers",
            "-1",
            "--max-draft",
            "8",
            "--lora",
            "none",
        ]
    )
    assert from_args(LLMConfig, args) == LLMConfig(
        model_path="m.gguf",
        n_threads=3,
        n_ctx=2048,
        seed=7,
        timeout_s=5.0,
        quant="q8_0",
        pin_hints=False,
        draft=True,
        use_grammar=False,
        top_p=0.5,
        n_gpu_layers=-1,
        max_draft=8,
        lora_path=None,
    )


def test_scene_render_eval_live_take_the_same_llm_flags() -> None:
    tables = {c: group_flags(parser_for(c), "LLM runtime") for c in LLM_COMMANDS}
    want = {s for st in settings(LLMConfig).values() for s in st.flags} | {
        "--no-pin-hints",
        "--no-grammar",
        "--no-draft",
    }
    for command, flags in tables.items():
        assert flags == want, command
        assert set(COMPAT) <= flags, command


def test_help_lists_the_llm_flags() -> None:
    """What a user sees: ``--help`` of each model-loading command shows every LLM flag."""
    for command in ("scene", "eval"):
        r = gravity(command, "--help")
        assert r.returncode == 0, r.stderr
        assert "LLM runtime:" in r.stdout and all(f in r.stdout for f in COMPAT), command


def test_eval_samples_greedily_with_a_longer_limit() -> None:
    p = parser_for("eval")
    cfg = from_args(LLMConfig, p.parse_args([]))
    assert (cfg.temperature, cfg.timeout_s) == (0.0, 60.0)
    assert dataclasses.replace(cfg, temperature=0.2, timeout_s=20.0) == LLMConfig()


def test_render_knobs_come_from_render_config() -> None:
    p = parser_for("render")
    args = p.parse_args(
        [
            "s.wav",
            "-o",
            "o.wav",
            "--format",
            "foa",
            "--hop",
            "128",
            "--no-reverb",
            "--render-seed",
            "3",
            "--render-threads",
            "1",
            "--seed",
            "9",
            "--threads",
            "2",
        ]
    )
    from gravity.cli.settings import llm_config, render_config

    assert render_config(args) == RenderConfig(fmt="foa", hop=128, reverb=False, seed=3, threads=1)
    assert args.seed == 9 and llm_config(args).n_threads == 2  # the proposer's seed and llama.cpp's threads


def test_set_round_trips_every_field() -> None:
    for cls in (TrainConfig, DataConfig):
        items = [f"{s.name}={'none' if s.default is None else s.default}" for s in settings(cls).values()]
        assert load(cls, None, items) == cls()


def test_set_converts_types_and_names_the_problem() -> None:
    assert parse_overrides(DataConfig, ["n_train=24000", "p_hint=0.6"]) == {"n_train": 24000, "p_hint": 0.6}
    assert parse_overrides(TrainConfig, ["qlora=true", "lr=2e-4"]) == {"qlora": True, "lr": 2e-4}
    cases = {
        "n_train=abc": "--set n_train=abc: expected an integer",
        "p_hint=x": "--set p_hint=x: expected a number",
        "p_hint=nan": "--set p_hint=nan: expected a number",
        "n_train": "--set n_train: expected KEY=VALUE",
    }
    for item, message in cases.items():
        with pytest.raises(SettingsError, match="^" + message):
            parse_overrides(DataConfig, [item])
    with pytest.raises(SettingsError, match="^--set dtype=float16: expected one of float32, bfloat16$"):
        parse_overrides(TrainConfig, ["dtype=float16"])
    with pytest.raises(SettingsError, match=r"^--set qlora=maybe: expected true or false$"):
        parse_overrides(TrainConfig, ["qlora=maybe"])


def test_preset_errors_name_the_file(tmp_path: Path) -> None:
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"_comment": "ignored", "max_steps": 1.5}))
    with pytest.raises(SettingsError, match=f"^{preset}: max_steps=1.5: expected an integer$"):
        load(TrainConfig, preset)
    preset.write_text(json.dumps({"max_steps": 7.0, "qlora": False}))
    assert load(TrainConfig, preset, ["lr=1e-3"]) == TrainConfig(max_steps=7, lr=1e-3)


def test_config_modules_import_without_heavy_libraries() -> None:
    """The CLI builds its flags from these classes: they must not pull numpy, scipy, numba or llama.cpp."""
    code = (
        "import sys; import gravity.cli.settings, gravity.llm.config, renderer.config, training.train; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'scipy', 'numba', 'llama_cpp', 'torch'}))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


# ----------------------------------------------------------------------------- the command line
def test_train_unknown_setting_one_line_exit_2() -> None:
    r = gravity("train", "--set", "bogus=1")
    assert r.returncode == 2
    line = one_error_line(r)
    assert line.startswith("gravity: error: --set bogus: unknown setting; allowed: base, lora_r, ")
    assert all(f in line for f in ("max_steps", "dtype", "threads"))


def test_data_bad_value_one_line_exit_2_no_output(tmp_path: Path) -> None:
    r = gravity("data", str(tmp_path / "d"), "--set", "n_train=abc")
    assert r.returncode == 2 and one_error_line(r) == "gravity: error: --set n_train=abc: expected an integer"
    assert not (tmp_path / "d").exists()


def test_training_cli_standalone_says_the_same() -> None:
    r = gravity("train", "--set", "max_stps=3", module="training.cli")
    assert r.returncode == 2
    assert "--set max_stps: unknown setting (did you mean max_steps?); allowed:" in one_error_line(r)


@pytest.mark.parametrize(("flag", "value"), [("--quant", "q9"), ("--ctx", "abc"), ("--temperature", "warm")])
def test_bad_llm_flag_is_a_usage_error(flag: str, value: str) -> None:
    r = gravity("scene", str(SAMPLE), flag, value)
    assert r.returncode == 2 and flag in one_error_line(r) and r.stdout == ""


@pytest.mark.parametrize("value", ["0", "17", "99999999"])
def test_candidates_are_bounded(value: str) -> None:
    # each model candidate is a whole generation: a huge N is refused, not run
    r = gravity("scene", str(SAMPLE), "--candidates", value)
    assert r.returncode == 2 and one_error_line(r) == f"gravity: error: --candidates {value}: expected 1..16"
    assert r.stdout == ""


@pytest.fixture(scope="module")
def stems(tmp_path_factory) -> Path:
    """Two short real WAV stems (vocal-like 220 Hz with vibrato, a 55 Hz bass)."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("stems")
    t = np.arange(2 * 48000) / 48000
    sf.write(folder / "vox.wav", 0.3 * np.sin(2 * np.pi * 220 * t + 3 * np.sin(2 * np.pi * 5 * t)), 48000)
    sf.write(folder / "bass.wav", 0.3 * np.sin(2 * np.pi * 55 * t), 48000)
    return folder


def test_bad_render_knob_exit_2_before_anything_is_written(stems: Path, tmp_path: Path) -> None:
    r = gravity("render", str(stems), "-o", str(tmp_path / "mix.wav"), "--planner", "planner", "--quiet", "--hop", "5")
    assert r.returncode == 2 and "--hop 5 must be" in one_error_line(r)
    assert list(tmp_path.iterdir()) == []


def test_broken_sofa_is_one_render_error_line_and_no_output(stems: Path, tmp_path: Path) -> None:
    """HRTFError (hrtf imports nothing of ours) joins the tree at the renderer's edge: a
    RenderError carrying its message (file and SOFA field); the planned scene and plot written
    before the render are removed.
    """
    import sofar

    sofa = sofar.Sofa("SimpleFreeFieldHRIR")  # one receiver: a real SOFA file, unusable for binaural
    ir = np.zeros((4, 1, 32))
    ir[:, :, 3] = 1.0
    sofa.Data_IR = ir
    sofa.Data_SamplingRate = 48000.0
    sofa.SourcePosition = np.array([[0.0, 0.0, 1.0], [90.0, 0.0, 1.0], [180.0, 0.0, 1.0], [270.0, 0.0, 1.0]])
    sofa.ReceiverPosition = np.zeros((1, 3, 1))
    sofa.Data_Delay = np.zeros((1, 1))
    bad = tmp_path / "mono.sofa"
    sofar.write_sofa(str(bad), sofa)
    out = tmp_path / "out"
    out.mkdir()
    r = gravity("render", str(stems), "-o", str(out / "mix.wav"), "--planner", "planner", "--quiet", "--hrtf", str(bad))
    assert r.returncode == 1
    assert one_error_line(r) == (
        f"gravity: error: {bad}: bad SOFA file: mono.sofa: Data.IR has 1 receiver, expected 2 (left, right)"
    )
    assert list(out.iterdir()) == []


def test_one_error_tree() -> None:
    from bridge.daw import BadArgs
    from gravity.llm.format import AnswerError
    from hrtf import HRTFError
    from renderer.errors import RenderError
    from training.convert import ParityError

    for exc, other in (
        (ParityError, RuntimeError),
        (BadArgs, ValueError),
        (AnswerError, ValueError),
        (SettingsError, ValueError),
        (RenderError, ValueError),
    ):
        assert issubclass(exc, GravityError) and issubclass(exc, other), exc
    assert not issubclass(HRTFError, GravityError)  # hrtf imports nothing of ours; see the render test
