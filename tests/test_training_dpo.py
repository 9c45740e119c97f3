"""DPO (issue 17): the loss by hand, the two-adapter policy/reference model, a short run on a tiny
model (margins up, reference untouched, one adapter saved, resume exact) and the critic's pairs.

The tiny base is a 2-layer random llama written from a config with a byte-level tokenizer
built here (no downloads, no GGUF parse): a DPO step on it takes milliseconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gravity.llm.format import encode_scene, parse_answer
from gravity.plan.planner import plan
from gravity.request import Request
from gravity.rules import enforce
from training.pairs import MARGIN, beats, choose_pair, make_pairs, score_text, write_pairs
from training.train import (  # standard library only at import; torch loads inside
    REF,
    TrainConfig,
    add_lora,
    attach_reference,
    collate_pairs,
    dpo_batch_loss,
    dpo_loss,
    load_base,
    load_tokenizer,
    reference_logps,
    sequence_logps,
    tokenize_pairs,
    train,
)

# ----------------------------------------------------------------------------- pairs (no torch)
# a verse with a lead vocal, a bass and three same-band mids: the teacher spreads the mids, the
# "collapsed" answer stacks everything at 0 deg (the model's failure the issue measured)
DOC = {
    "target_format": "7.1.4",
    "max_objects": 6,
    "section": "verse",
    "stems": [
        {"id": "vox", "class": "lead_vocal"},
        {"id": "bass", "class": "bass"},
        {"id": "gtr", "class": "guitar"},
        {"id": "keys", "class": "keys"},
        {"id": "pad", "class": "pad"},
    ],
}
COLLAPSED = "room studio_large\n" + "0 0 20 111 0 s\n" * 5


def teacher_text(req: Request) -> str:
    return encode_scene(enforce(req, plan(req)).scene, req)


def test_collapsed_scene_is_rejected_for_the_teacher() -> None:
    req = Request.from_dict(DOC)
    teacher = teacher_text(req)
    t, c = score_text(req, "teacher", teacher), score_text(req, "sample", COLLAPSED)
    assert t is not None and c is not None
    assert t.text == teacher  # the teacher's target is a fixed point: enforce + encode change nothing
    assert t.key[0] == c.key[0] == 1.0  # nothing asked: both adhere fully
    assert t.key[1] - c.key[1] > 0.2  # stacking costs the critic's separation and spread
    pair = choose_pair(req, [("teacher", teacher), ("sample", COLLAPSED), ("sample", "not a scene")])
    assert pair is not None
    chosen, rejected = pair
    assert (chosen.source, rejected.source) == ("teacher", "sample")
    assert chosen.text == teacher and rejected.text == c.text
    # a sample better than the teacher is chosen over it; the teacher, worst, is rejected
    swapped = choose_pair(req, [("teacher", COLLAPSED), ("sample", teacher)])
    assert swapped is not None and (swapped[0].source, swapped[1].source) == ("sample", "teacher")


def test_pairs_need_a_clear_winner() -> None:
    req = Request.from_dict(DOC)
    teacher = teacher_text(req)
    assert choose_pair(req, [("teacher", teacher), ("sample", teacher)]) is None  # equal keys
    assert choose_pair(req, [("teacher", teacher), ("sample", "garbage")]) is None  # one usable candidate
    assert beats((1.0, 0.80), (0.5, 0.95))  # adherence first
    assert beats((0.5, 0.82), (0.5, 0.80)) and not beats((0.5, 0.81), (0.5, 0.80))  # margin 0.02
    assert not beats((0.5, 0.95), (1.0, 0.10))
    assert MARGIN == 0.02


def test_adherence_beats_score() -> None:
    """A hinted stem placed where the hint says wins over a better-spread scene that ignores it."""
    doc = {**DOC, "stems": [*DOC["stems"][:4], {"id": "pad", "class": "pad", "hint": "hard right"}]}
    req = Request.from_dict(doc)
    teacher = teacher_text(req)
    ignores = teacher.splitlines()
    ignores[5] = "90 " + " ".join(ignores[5].split()[1:])  # the pad hard LEFT (+ = left)
    wrong = "\n".join(ignores) + "\n"
    t, w = score_text(req, "teacher", teacher), score_text(req, "sample", wrong)
    assert t is not None and w is not None and t.key[0] > w.key[0]
    pair = choose_pair(req, [("sample", wrong), ("teacher", teacher)])
    assert pair is not None and pair[0].source == "teacher" and pair[1].text == w.text


class FakeLLM:
    """propose_many returns fixed texts: the collapsed scene, then the teacher's."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def propose_many(self, request: Request, n: int) -> list[Any]:
        self.calls.append(n)
        texts = [COLLAPSED, teacher_text(request), ""][:n]
        return [SimpleNamespace(text=t, scene=parse_answer(t, request) if t else None) for t in texts]


def test_make_pairs_counts_and_writes_atomically(tmp_path: Path) -> None:
    req = Request.from_dict(DOC)
    rows = [
        {"id": f"train-{i:06d}", "prompt": f"P{i}", "completion": teacher_text(req), "request": DOC} for i in range(3)
    ]
    pairs, counts = make_pairs(rows, FakeLLM(), 3, progress=False)
    assert counts == {
        "rows": 3,
        "pairs": 3,
        "no_margin": 0,
        "unusable_samples": 3,  # the empty third sample of each row
        "chosen_from": {"teacher": 3, "sample": 0},  # the teacher ties the second sample and comes first
        "rejected_from": {"teacher": 0, "sample": 3},
    }
    p = pairs[0]
    assert set(p) == {
        "id",
        "prompt",
        "chosen",
        "rejected",
        "chosen_key",
        "rejected_key",
        "chosen_from",
        "rejected_from",
    }
    assert p["id"] == "train-000000" and p["prompt"] == "P0" and p["chosen"] == teacher_text(req)
    assert p["chosen_key"][1] > p["rejected_key"][1] + MARGIN
    src = tmp_path / "data"
    src.mkdir()
    for split in ("train", "val"):
        (src / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    llm = FakeLLM()
    m = write_pairs(src, tmp_path / "out", llm, 2, limit=2, n_val=1, settings={"model": "fake"}, progress=False)
    assert llm.calls == [2, 2, 2]
    assert m["counts"]["train"]["pairs"] == 2 and m["counts"]["val"]["pairs"] == 1
    assert m["settings"] == {"model": "fake"} and m["k"] == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "pairs_manifest.json",
        "pairs_train.jsonl",
        "pairs_val.jsonl",
    ]  # no temporary files left
    again = write_pairs(
        src, tmp_path / "again", FakeLLM(), 2, limit=2, n_val=1, settings={"model": "fake"}, progress=False
    )
    assert again["sha256"] == m["sha256"]  # deterministic
    assert json.loads((tmp_path / "out" / "pairs_manifest.json").read_text())["sha256"] == m["sha256"]


def test_train_method_flag_and_dpo_settings() -> None:
    from training.cli import add_train_arguments

    import argparse

    p = argparse.ArgumentParser()
    add_train_arguments(p)
    assert p.parse_args(["--method", "dpo"]).method == "dpo"
    with pytest.raises(ValueError, match="init_adapter"):
        TrainConfig.load(None, ["method=dpo"])
    with pytest.raises(ValueError, match="dpo_beta"):
        TrainConfig.load(None, ["method=dpo", "init_adapter=x", "dpo_beta=0"])
    assert TrainConfig().method == "sft"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--candidates", "0"], "--candidates 0: expected 1..16"),
        (["--candidates", "100000"], "--candidates 100000: expected 1..16"),
        (["--limit", "-3"], "--limit -3: expected 0 or more rows"),
        (["--val", "-1"], "--val -1: expected 0 or more rows"),
        (["--margin", "nan"], "--margin nan: expected a critic score difference in 0..1"),
        (["--margin", "2"], "--margin 2.0: expected a critic score difference in 0..1"),
    ],
)
def test_gravity_pairs_refuses_bad_settings_in_one_line_before_loading_a_model(tmp_path, args, says) -> None:
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    for f in ("train.jsonl", "val.jsonl"):
        (data / f).write_text("")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "gravity", "pairs", str(data), str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and says in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_gravity_pairs_refuses_a_folder_without_data(tmp_path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "gravity", "pairs", "/dev/null", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "/dev/null: no train.jsonl" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- torch
@pytest.mark.train
def test_dpo_loss_by_hand() -> None:
    torch = pytest.importorskip("torch")
    t = torch.tensor
    loss, m = dpo_loss(t([-10.0, -7.0]), t([-12.0, -3.0]), t([-10.0, -7.0]), t([-12.0, -3.0]), beta=0.1)
    assert float(loss) == pytest.approx(math.log(2), abs=1e-7) and m.tolist() == [0.0, 0.0]
    # margin 0.1 * ((-3 + 5) - (-6 + 4)) = 0.4: loss log(1 + e^-0.4)
    loss, m = dpo_loss(t([-3.0]), t([-6.0]), t([-5.0]), t([-4.0]), beta=0.1)
    assert float(m[0]) == pytest.approx(0.4) and float(loss) == pytest.approx(math.log1p(math.exp(-0.4)))
    loss, m = dpo_loss(t([0.0]), t([-200.0]), t([-100.0]), t([-100.0]), beta=0.1)  # margin 20
    assert float(m[0]) == pytest.approx(20.0) and float(loss) < 3e-9
    loss, _ = dpo_loss(t([-200.0]), t([0.0]), t([-100.0]), t([-100.0]), beta=0.1)  # margin -20: loss ~ 20
    assert float(loss) == pytest.approx(20.0, rel=1e-6)


def tiny_base(d: Path) -> Path:
    """A 2-layer random llama with a 258-token byte-level tokenizer, saved as a HF directory."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tk = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tk.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>")
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    fast.save_pretrained(d)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
    )
    LlamaForCausalLM(cfg).save_pretrained(d)
    return d


# (prompt, chosen, rejected): the chosen answers spread the stems, the rejected stack them at 0
PAIRS = [
    (
        f"<|im_start|>user\nsong {i}: vocal, pad, keys<|im_end|>\n<|im_start|>assistant\n",
        f"room studio_large\n0 0 20 111 0 s\n{40 + 5 * i} 20 30 444 -2 s\n-{40 + 5 * i} 10 30 333 -1 s\n",
        "room studio_large\n0 0 20 111 0 s\n0 0 20 111 0 s\n0 0 20 111 0 s\n",
    )
    for i in range(6)
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny base, an 'SFT' adapter with random (non-zero) B, and the pairs files."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from safetensors.torch import load_file

    root = tmp_path_factory.mktemp("dpo")
    base = tiny_base(root / "base")
    sft = TrainConfig(base=str(base), lora_r=4, lora_alpha=8, lora_dropout=0.05, threads=1)
    model = add_lora(load_base(sft.base), sft)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:  # a fresh LoRA has B = 0: the reference would equal the base
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    init = root / "sft"
    model.save_pretrained(str(init))
    (init / "train_config.json").write_text(sft.to_json())
    data = root / "data"
    data.mkdir()
    rows = [{"id": f"p{i}", "prompt": p, "chosen": c, "rejected": r} for i, (p, c, r) in enumerate(PAIRS)]
    for f in ("pairs_train.jsonl", "pairs_val.jsonl"):  # validation = the training pairs: they must be learned
        (data / f).write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainConfig(
        base=str(base),
        method="dpo",
        init_adapter=str(init),
        data_dir=str(data),
        out_dir=str(root / "run"),
        lora_r=4,
        lora_alpha=8,
        max_steps=10,
        warmup_steps=1,
        lr=1e-2,
        batch_size=2,
        eval_every=5,
        save_every=5,
        eval_rows=6,
        log_every=1,
        max_seq_len=256,
        threads=1,
    )
    tensors = load_file(str(init / "adapter_model.safetensors"))
    return {"root": root, "cfg": cfg, "init": init, "rows": rows, "init_tensors": by_layer(tensors)}


def by_layer(tensors: dict[str, Any]) -> dict[str, Any]:
    """LoRA tensors keyed from the layer on (``0.self_attn.q_proj.lora_A.weight``), whatever wraps them."""
    return {n.split("layers.", 1)[1]: t for n, t in tensors.items()}


def lora_params(net: Any, adapter: str) -> dict[str, Any]:
    """``adapter``'s LoRA parameters of a model (PEFT-wrapped or the base it injected into), keyed
    like :func:`by_layer` keys the saved file.
    """
    named = {n.replace(f".{adapter}.", "."): p for n, p in net.named_parameters() if f".{adapter}." in n}
    return by_layer({n: p for n, p in named.items() if "lora_" in n})


@pytest.mark.train
def test_sequence_logps_sums_completion_token_logprobs(setup: dict[str, Any]) -> None:
    import torch

    tok = load_tokenizer(setup["cfg"].base)
    pairs = tokenize_pairs(tok, setup["rows"][:2], 256)
    b = collate_pairs(pairs, tok.pad_token_id)
    assert b["input_ids"].shape[0] == 4  # chosen 0, chosen 1, rejected 0, rejected 1
    assert b["input_ids"][2, : pairs[0][1][1]].tolist() == pairs[0][1][0][: pairs[0][1][1]]
    model = load_base(setup["cfg"].base).eval()
    with torch.no_grad():
        ours, count = sequence_logps(model, b)
        full = torch.log_softmax(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, -1)
    for i, (ids, plen) in enumerate([c for c, _ in pairs] + [r for _, r in pairs]):
        want = sum(float(full[i, t - 1, ids[t]]) for t in range(plen, len(ids)))
        assert float(ours[i]) == pytest.approx(want, rel=1e-5)
        assert int(count[i]) == len(ids) - plen
    assert tokenize_pairs(tok, setup["rows"][:2], 60) == []  # too long: dropped as a pair


@pytest.mark.train
def test_reference_is_frozen_and_steps_raise_the_margin(setup: dict[str, Any]) -> None:
    import torch
    from peft import PeftModel

    cfg, init = setup["cfg"], setup["init_tensors"]
    net = PeftModel.from_pretrained(load_base(cfg.base), str(setup["init"]), is_trainable=True)
    attach_reference(net, str(setup["init"]))
    default, ref = lora_params(net, "default"), lora_params(net, REF)
    assert set(default) == set(ref) == set(init) and len(init) == 2 * 7 * 2  # A and B, 7 linears, 2 layers
    assert all(p.requires_grad for p in default.values()) and not any(p.requires_grad for p in ref.values())
    seen: list[tuple[Any, bool]] = []  # (active adapter, any LoRA weight trainable) at each forward
    net.base_model.model.register_forward_pre_hook(
        lambda *_: seen.append((net.active_adapter, any(p.requires_grad for p in [*default.values(), *ref.values()])))
    )
    tok = load_tokenizer(cfg.base)
    b = collate_pairs(tokenize_pairs(tok, setup["rows"], 256), tok.pad_token_id)
    net.train()
    first = reference_logps(net, b)
    assert seen == [(REF, False)] and net.training and net.active_adapter == "default"
    assert all(p.requires_grad for p in default.values()) and not any(p.requires_grad for p in ref.values())
    net.eval()
    with torch.no_grad():
        assert torch.equal(sequence_logps(net, b)[0], first)  # at the start the policy is the reference
        _, m0 = dpo_batch_loss(net, net, b, beta=0.1)
    assert m0.abs().max() == 0.0
    net.train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == sum(p.numel() for p in default.values())
    for _ in range(8):
        loss, _ = dpo_batch_loss(net, net, b, beta=0.1)
        loss.backward()
        opt.step()
        opt.zero_grad()
    net.eval()
    with torch.no_grad():
        loss, m = dpo_batch_loss(net, net, b, beta=0.1)
    assert float((m > 0).float().mean()) == 1.0 and float(loss) < 0.5 * math.log(2)
    assert all(torch.equal(ref[k], init[k]) for k in init)  # the reference: bit-identical to the SFT adapter
    assert not all(torch.equal(default[k], init[k]) for k in init)


@pytest.mark.train
def test_dpo_run_learns_saves_one_adapter_and_resumes_exactly(
    setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    import training.train as T

    cfg, init = setup["cfg"], setup["init_tensors"]
    held: list[Any] = []  # the base module the run wraps: its LoRA layers hold both adapters after the run
    real = T.load_base
    monkeypatch.setattr(T, "load_base", lambda *a, **k: held.append(real(*a, **k)) or held[-1])
    summary = train(cfg, progress=False)
    assert summary["steps"] == 10
    out = Path(cfg.out_dir)
    events = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    v0, vend = events[0], [e for e in events if "val_loss" in e][-1]
    assert v0["step"] == 0 and v0["val_loss"] == pytest.approx(math.log(2), abs=1e-6) and v0["val_reward_acc"] == 0.0
    assert vend["step"] == 10 and vend["val_reward_acc"] == 1.0 and vend["val_margin"] > 0.5
    assert vend["val_loss"] < 0.5 * math.log(2)
    assert all({"loss", "reward_acc", "margin", "lr"} <= set(e) for e in events if "loss" in e)
    # the reference inside the trained model is bit-identical to the SFT adapter; the policy moved
    ref = lora_params(held[0], REF)
    assert set(ref) == set(init) and all(torch.equal(ref[k], init[k]) for k in init)
    for d in ("best", "last"):  # one ordinary LoRA: the policy only
        saved = by_layer(load_file(str(out / d / "adapter_model.safetensors")))
        assert set(saved) == set(init) and not any(torch.equal(saved[k], init[k]) for k in init if "lora_B" in k)
        assert not (out / d / REF).exists()
        assert json.loads((out / d / "train_config.json").read_text())["method"] == "dpo"
    # best/ is a step that beat the reference's log 2 on the validation pairs (step 0 is the baseline)
    best = json.loads((out / "best" / "best.json").read_text())
    assert best["step"] > 0 and best["val_loss"] == min(e["val_loss"] for e in events if "val_loss" in e)
    plain = PeftModel.from_pretrained(real(cfg.base), str(out / "last"))
    assert list(plain.peft_config) == ["default"]
    # stopped at step 5 and resumed: the same steps, the same weights, bit for bit
    cut = TrainConfig.from_dict({**json.loads(cfg.to_json()), "out_dir": str(setup["root"] / "cut"), "stop_step": 5})
    assert train(cut, progress=False)["steps"] == 5
    resumed = TrainConfig.from_dict({**json.loads(cut.to_json()), "stop_step": 0})
    assert train(resumed, progress=False)["steps"] == 10
    steps = [json.loads(x)["step"] for x in (Path(cut.out_dir) / "log.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 10]  # (loss, val) at 5 and 10, no second step 0
    a = load_file(str(out / "last" / "adapter_model.safetensors"))
    b = load_file(str(Path(cut.out_dir) / "last" / "adapter_model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- the real model
@pytest.mark.llm
def test_make_pairs_with_the_default_model_is_deterministic(default_model: Any) -> None:
    """One row, two samples from Gravity's model: the same pairs twice (seeds ``seed``, ``seed + 1``)."""
    from helpers import llm_view

    from gravity.llm.format import model_input

    doc = {**DOC, "stems": [*DOC["stems"][:4], {"id": "pad", "class": "pad", "hint": "hard right"}]}
    req = Request.from_dict(doc)
    rows = [{"id": "train-000000", "prompt": model_input(req), "completion": teacher_text(req), "request": doc}]
    runs = [make_pairs(rows, llm_view(default_model, temperature=0.7, seed=0), 2, progress=False) for _ in range(2)]
    assert runs[0] == runs[1]
    pairs, counts = runs[0]
    assert counts["rows"] == 1 and counts["unusable_samples"] == 0  # the grammar makes every answer readable
    assert counts["pairs"] + counts["no_margin"] == 1
    for p in pairs:
        assert beats(tuple(p["chosen_key"]), tuple(p["rejected_key"]))
        for side in ("chosen", "rejected"):
            c = score_text(req, p[f"{side}_from"], p[side])
            assert c is not None and c.text == p[side]  # a shipped scene: a fixed point of limits + rules
