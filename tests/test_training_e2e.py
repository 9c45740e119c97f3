"""End to end on a tiny random llama: data -> train -> merge -> GGUF -> quantize -> llama.cpp -> scene.

The base is a 2-layer random llama GGUF with SmolLM2's tokenizer (``tests/tiny_gguf.py``),
read by transformers like the real SmolLM2 base. Parity checks (llama.cpp vs transformers
log-likelihood) run on the f16 file, the Q8_0 file and the GGUF LoRA.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gravity.llm.runtime import LLMConfig, SceneLLM
from gravity.pipeline import make_scene
from gravity.request import Request
from gravity.rules import check
from training.convert import ConvertConfig, convert
from training.data import DataConfig, generate, load_rows
from training.train import TrainConfig, train

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("train_extra", "gguf_parsed_once")]  # (run needs it too)


@pytest.fixture(scope="module")
def train_extra() -> None:
    """Skip without the train extra; checked when a test runs, not when the file is collected
    (torch, peft and transformers take ~5 s to import: every ``make test-fast`` worker paid it).
    """
    for name in ("torch", "peft", "transformers", "llama_cpp"):
        pytest.importorskip(name)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, train_extra: None, gguf_parsed_once: None) -> dict:  # noqa: ARG001
    root = tmp_path_factory.mktemp("e2e")
    base = tiny_gguf  # the session's: 64 wide, 2 layers, 4 heads (2 for keys and values), 128 in the FFN
    manifest = generate(root / "data", DataConfig(n_train=12, n_val=2, n_test=3, max_stems=3))
    cfg = TrainConfig(
        base=f"gguf:{base}",
        data_dir=str(root / "data"),
        out_dir=str(root / "run"),
        max_steps=4,
        warmup_steps=1,
        lr=5e-3,
        batch_size=2,
        eval_every=2,
        save_every=2,
        eval_rows=2,
        log_every=1,
        lora_r=4,
        lora_alpha=8,
        max_seq_len=2048,
        threads=2,
    )
    summary = train(cfg, progress=False)
    return {"root": root, "base": base, "manifest": manifest, "cfg": cfg, "summary": summary}


def test_train_writes_adapter_config_and_log(run: dict) -> None:
    out = Path(run["cfg"].out_dir)
    assert run["summary"]["steps"] == 4
    for d in ("best", "last"):
        assert (out / d / "adapter_model.safetensors").is_file()
        saved = json.loads((out / d / "train_config.json").read_text())
        assert TrainConfig.from_dict(saved) == run["cfg"]
    events = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert any("val_loss" in e for e in events) and any("loss" in e for e in events)


def test_budget_fixes_max_steps_at_the_end_of_warmup(run: dict) -> None:
    cfg = TrainConfig.from_dict(
        {
            **json.loads(run["cfg"].to_json()),
            "out_dir": str(run["root"] / "budget"),
            "max_steps": 1000,
            "warmup_steps": 2,
            "budget_minutes": 0.05,
        }
    )
    summary = train(cfg, progress=False)
    saved = json.loads((Path(cfg.out_dir) / "last" / "train_config.json").read_text())
    assert saved["budget_minutes"] == 0.05 and saved["max_steps"] != 1000
    assert summary["steps"] == saved["max_steps"] > cfg.warmup_steps and not summary["stopped_early"]
    # resuming keeps the schedule fixed at warm-up, whatever max_steps the caller passes
    again = train(cfg, progress=False)
    assert again["steps"] == saved["max_steps"]


def test_resume_continues_from_last(run: dict) -> None:
    cfg = TrainConfig.from_dict({**json.loads(run["cfg"].to_json()), "max_steps": 5})
    summary = train(cfg, progress=False)
    assert summary["steps"] == 5
    assert json.loads((Path(cfg.out_dir) / "log.jsonl").read_text().splitlines()[-1])["step"] == 5


def test_init_adapter_starts_a_new_run_from_saved_weights(run: dict) -> None:
    best = Path(run["cfg"].out_dir) / "best"
    cfg = TrainConfig.from_dict(
        {
            **json.loads(run["cfg"].to_json()),
            "out_dir": str(run["root"] / "stage2"),
            "init_adapter": str(best),
            "max_steps": 1,
        }
    )
    train(cfg, progress=False)
    first = json.loads((Path(cfg.out_dir) / "log.jsonl").read_text().splitlines()[0])
    # step 0 evaluates the saved weights on the same rows: the best run's validation loss
    assert (
        first["step"] == 0 and abs(first["val_loss"] - json.loads((best / "best.json").read_text())["val_loss"]) < 1e-4
    )
    with pytest.raises(ValueError, match="lora_r"):
        train(
            TrainConfig.from_dict({**json.loads(cfg.to_json()), "out_dir": str(run["root"] / "stage2b"), "lora_r": 8}),
            progress=False,
        )


def test_merged_q8_0_passes_parity_and_makes_a_valid_scene(run: dict) -> None:
    out = run["root"] / "gravity-tiny.Q8_0.gguf"
    res = convert(
        ConvertConfig(
            adapter_dir=str(Path(run["cfg"].out_dir) / "best"),
            out=str(out),
            quant="Q8_0",
            parity_data=str(run["root"] / "data" / "test.jsonl"),
            parity_rows=2,
        )
    )
    assert [p["label"] for p in res["parity"]] == ["f16", "Q8_0"]
    assert all(p["max_abs_delta"] <= p["tolerance"] for p in res["parity"])
    llm = SceneLLM(LLMConfig(model_path=str(out), n_threads=2, timeout_s=60, candidates=1))
    row = load_rows(run["root"] / "data" / "test.jsonl", 1)[0]
    request = Request.from_dict(row["request"])
    prop = llm.propose(request)
    assert prop.scene is not None, prop.error  # the grammar makes any model's output decodable
    result = make_scene(request, planner="llm", llm=llm)
    assert result.planner == "llm"
    assert check(request, result.scene) == []


def test_lora_gguf_passes_parity(run: dict) -> None:
    out = run["root"] / "gravity-tiny.lora.gguf"
    res = convert(
        ConvertConfig(
            adapter_dir=str(Path(run["cfg"].out_dir) / "best"),
            out=str(out),
            lora_only=True,
            parity_data=str(run["root"] / "data" / "test.jsonl"),
            parity_rows=2,
        )
    )
    assert res["kind"] == "lora" and res["parity"][0]["max_abs_delta"] <= res["parity"][0]["tolerance"]
    llm = SceneLLM(LLMConfig(model_path=str(run["base"]), lora_path=str(out), n_threads=2, timeout_s=60))
    request = Request.from_dict(load_rows(run["root"] / "data" / "test.jsonl", 1)[0]["request"])
    assert llm.propose(request).scene is not None


def test_lora_permutation_with_large_random_adapter(run: dict, tmp_path: Path) -> None:
    """A few training steps leave B small; a large random B makes a q/k permutation bug show."""
    import shutil

    import numpy as np
    from safetensors.numpy import load_file, save_file

    src = Path(run["cfg"].out_dir) / "best"
    dst = tmp_path / "adapter"
    shutil.copytree(src, dst)
    t = load_file(str(dst / "adapter_model.safetensors"))
    rng = np.random.default_rng(0)
    t = {k: (rng.standard_normal(v.shape) * 0.3).astype(v.dtype) if "lora_B" in k else v for k, v in t.items()}
    save_file(t, str(dst / "adapter_model.safetensors"))
    rows = str(run["root"] / "data" / "test.jsonl")
    lora = convert(
        ConvertConfig(
            adapter_dir=str(dst), out=str(tmp_path / "r.lora.gguf"), lora_only=True, parity_data=rows, parity_rows=1
        )
    )
    merged = convert(
        ConvertConfig(
            adapter_dir=str(dst), out=str(tmp_path / "r.f16.gguf"), quant="F16", parity_data=rows, parity_rows=1
        )
    )
    assert lora["parity"][0]["max_abs_delta"] <= lora["parity"][0]["tolerance"]
    assert merged["parity"][0]["max_abs_delta"] <= merged["parity"][0]["tolerance"]
    # both outputs describe the same merged weights (same transformers reference)
    assert abs(lora["parity"][0]["hf"][0] - merged["parity"][0]["hf"][0]) < 1e-3
