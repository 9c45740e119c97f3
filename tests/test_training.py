"""Unit tests for the training room: data determinism and hold-out, config, masking, schedule, convert pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gravity.motion import angle_between
from gravity.llm.format import FORMAT_VERSION, model_input, parse_answer, encode_scene
from gravity.request import Request
from gravity.rules import check
from training import data as D
from training.data import DataConfig, Label, generate, load_rows, make_example, render_hint, teacher_scene
from training.evaluate import PLANNER, EvalConfig, evaluate, markdown, score_rows
from training.train import TrainConfig, lr_at


# ----------------------------------------------------------------------------- data
def test_same_seed_same_bytes_and_manifest_is_idempotent(tmp_path: Path) -> None:
    cfg = DataConfig(n_train=6, n_val=2, n_test=2)
    m1 = generate(tmp_path / "a", cfg)
    m2 = generate(tmp_path / "b", cfg)
    assert m1["sha256"] == m2["sha256"]
    assert m1["counts"]["train"] == 6 and m1["seed"] == cfg.seed and m1["prompt_version"] == FORMAT_VERSION
    before = (tmp_path / "a" / "train.jsonl").stat().st_mtime_ns
    assert generate(tmp_path / "a", cfg) == m1  # matching manifest: nothing rewritten
    assert (tmp_path / "a" / "train.jsonl").stat().st_mtime_ns == before
    assert generate(tmp_path / "c", DataConfig(n_train=6, n_val=2, n_test=2, seed=7))["sha256"] != m1["sha256"]


def test_parallel_workers_write_the_same_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D, "POOL_MIN_ROWS", 8)  # 40 rows in two chunks (32 + 8): both workers draw
    cfg = DataConfig(n_train=40, n_val=1, n_test=1, max_stems=3)
    assert generate(tmp_path / "one", cfg)["sha256"] == generate(tmp_path / "two", cfg, workers=2)["sha256"]


def test_prefix_stable_rows(tmp_path: Path) -> None:
    """Row i does not depend on the split size."""
    generate(tmp_path / "s", DataConfig(n_train=3, n_val=1, n_test=1))
    generate(tmp_path / "l", DataConfig(n_train=5, n_val=1, n_test=1))
    assert load_rows(tmp_path / "s" / "train.jsonl") == load_rows(tmp_path / "l" / "train.jsonl", 3)


def test_unknown_config_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="DataConfig: n_trian: unknown setting"):
        DataConfig.from_dict({"n_trian": 5})
    with pytest.raises(ValueError, match="TrainConfig: learning_rate: unknown setting"):
        TrainConfig.from_dict({"learning_rate": 1e-4})
    with pytest.raises(ValueError, match="expected an int"):
        TrainConfig.from_dict({"max_steps": 1.5})
    assert TrainConfig.load(None, ["lr=1e-3", "qlora=false", "max_steps=7"]) == TrainConfig(lr=1e-3, max_steps=7)


def test_heldout_vocabulary_and_templates_are_disjoint() -> None:
    for table in (D._SIDED, D._UNSIDED, D._ELEV, D._DIST):
        for _, tr, ho in table:
            assert not set(tr) & set(ho)
    all_train = {p for t in (D._SIDED, D._UNSIDED, D._ELEV, D._DIST) for _, tr, _ in t for p in tr}
    all_held = {p for t in (D._SIDED, D._UNSIDED, D._ELEV, D._DIST) for _, _, ho in t for p in ho}
    assert not all_train & all_held
    for tr, ho in [*D._MOTION_T.values(), *D._HINT_T.values(), D._PROMPT_CLAUSE]:
        assert not set(tr) & set(ho)
    for tr, ho in (D._AZ_NUM, D._CLOCK, D._EL_NUM, D._DIST_NUM, D._PERIOD):
        assert not set(tr) & set(ho)


def test_training_phrases_the_parser_reads_it_reads_right() -> None:
    """The teacher pins what the phrase parser reads: a training phrase it misreads would teach
    the model the misreading. Each phrase is read as its label says, or not at all.
    """
    from gravity.plan.hint import parse_hint

    for table, field in ((D._SIDED, "az_deg"), (D._UNSIDED, "az_deg"), (D._ELEV, "el_deg"), (D._DIST, "dist_m")):
        for value, train, _ in table:
            for phrase in train:
                for side, v in (("left", value), ("right", -value)) if table is D._SIDED else (("", value),):
                    got = getattr(parse_hint(phrase.format(s=side)), field)
                    assert got in (None, v), (phrase, side, got, v)
    for pattern, (train, _) in D._MOTION_T.items():
        for phrase in train:
            m = parse_hint(phrase.format(dir="clockwise", per="every 2 bars", a="the left", b="the right")).motion
            assert m is None or m.pattern == pattern, (phrase, m)


def test_the_scene_language_set_is_what_the_parser_cannot_assign() -> None:
    """training/eval_sets/scene_language.jsonl: hand-written held-out prompts (several stems in
    one sentence, references to another stem, negation and exceptions, idioms, motion words for
    two stems), scored like generated rows without a teacher completion. The parser + planner
    miss most of its labelled stems by > 10 deg (when it reads them all, the set needs new items).
    """
    path = Path(__file__).resolve().parent.parent / "training" / "eval_sets" / "scene_language.jsonl"
    rows = load_rows(path)
    assert len(rows) >= 15 and all("completion" not in r for r in rows)
    for r in rows:
        Request.from_dict(r["request"])  # a valid request
        assert set(r["labels"]) <= {s["id"] for s in r["request"]["stems"]} and r["request"]["prompt"]
    rep = evaluate(EvalConfig(model_path=PLANNER, data=str(path), limit=0))
    assert rep["rows"] == len(rows) and rep["hint_stems"] >= 20
    assert rep["parser_miss_stems"] >= rep["hint_stems"] // 2 and rep["parser_miss_parser_deg"] > 45.0
    assert rep["motion_acc"] is not None and rep["motion_acc"] < 50.0


def test_labels_come_from_structure_and_match_the_conventions() -> None:
    """Rendered labels agree with the value table: + = left, clock 3 = -90, etc."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        text, lab = render_hint(rng, "train")
        assert text
        if lab.az_deg is not None:
            assert -180 < lab.az_deg <= 180
            if text.endswith(" left") and "degrees" in text and "to the" not in text:
                assert lab.az_deg > 0
    for h, az in ((3, -90.0), (9, 90.0), (12, 0.0), (6, 180.0)):
        assert float(D.wrap_az(-30.0 * h)) == az


def test_rows_use_the_runtime_prompt_format_and_the_teacher_obeys_the_rules() -> None:
    cfg = DataConfig()
    for i in range(8):
        ex = make_example(np.random.default_rng([cfg.seed, 0, i]), "train", cfg)
        req = Request.from_dict(ex.request)
        assert ex.prompt == model_input(req)
        scene = parse_answer(ex.completion, req)
        assert check(req, scene) == []
        assert encode_scene(scene, req) == ex.completion  # the target is a fixed point of the format


def test_teacher_follows_the_label_not_the_text() -> None:
    doc = {
        "target_format": "7.1.4",
        "max_objects": 4,
        "stems": [{"id": "g", "class": "guitar", "hint": "nonsense words"}],
    }
    req = Request.from_dict(doc)
    scene = teacher_scene(req, {"g": Label(az_deg=-70.0, el_deg=20.0)})
    o = scene["objects"][0]
    assert angle_between(o["az_deg"], o["el_deg"], -70.0, 20.0) < 1.0


# ----------------------------------------------------------------------------- train pieces
def test_lr_schedule_warmup_then_cosine_to_floor() -> None:
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(60, cfg) == pytest.approx(0.55e-3)
    assert lr_at(110, cfg) == pytest.approx(1e-4)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 110))


@pytest.mark.parametrize(
    "preset", sorted((Path(__file__).parents[1] / "training" / "configs").glob("*.json")), ids=lambda p: p.name
)
def test_shipped_presets_load(preset: Path) -> None:
    cfg = TrainConfig.load(preset)
    assert cfg.lora_r > 0 and cfg.max_steps > cfg.warmup_steps


def test_steps_for_budget_pays_for_evals_and_saves() -> None:
    from training.train import steps_for_budget

    cfg = TrainConfig(budget_minutes=10, eval_every=50, save_every=25)
    # 600 s budget, 60 s gone at step 20, 1 s/step, eval 10 s (+0.2 s/step), save 2.5 s (+0.1 s/step)
    n = steps_for_budget(20, 60.0, 1.0, 10.0, 2.5, cfg)
    assert n == 20 + int((600 - 60 - 12.5) / 1.3)
    assert steps_for_budget(20, 900.0, 1.0, 10.0, 2.5, cfg) == 21  # over budget: one more step, never fewer


@pytest.mark.train
def test_collate_masks_prompt_and_padding() -> None:
    torch = pytest.importorskip("torch")
    from training.train import batches, collate

    b = collate([([5, 6, 7, 8], 2), ([9, 10, 11], 1)], pad_id=0)
    assert b["labels"].tolist() == [[-100, -100, 7, 8], [-100, 10, 11, -100]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert isinstance(b["input_ids"], torch.Tensor)
    data = list(range(10))
    it = batches(data, 3, seed=1, start=0)
    first = [next(it) for _ in range(5)]
    resumed = batches(data, 3, seed=1, start=6)
    assert [next(resumed) for _ in range(3)] == first[2:]
    ranks = [next(batches(data, 2, seed=1, start=0, rank=r, world=2)) for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == sorted(next(batches(data, 4, seed=1, start=0)))


@pytest.mark.train
def test_completion_loss_matches_full_loss() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from training.train import collate, completion_loss

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    model = transformers.LlamaForCausalLM(cfg).eval()
    b = collate([(list(range(1, 12)), 6), (list(range(3, 10)), 3)], pad_id=0)
    with torch.no_grad():
        full = model(**b).loss
        ours, n = completion_loss(model, b)
    assert n == 5 + 4
    assert float(ours) == pytest.approx(float(full), rel=1e-5)


# ----------------------------------------------------------------------------- convert pieces
def test_llama_permute_inverts_transformers_unpermute() -> None:
    from training.convert import llama_permute

    def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:  # transformers' GGUF loader (reverse_permute)
        dim = w.shape[0] // n_head // 2
        return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)

    rng = np.random.default_rng(0)
    q = rng.standard_normal((9 * 64, 576)).astype(np.float32)
    k = rng.standard_normal((3 * 64, 576)).astype(np.float32)
    assert np.array_equal(llama_permute(unpermute(q, 9), 9, 9), q)
    assert np.array_equal(llama_permute(unpermute(k, 3), 9, 3), k)
    assert not np.array_equal(llama_permute(k, 9, 3), k)


def test_gguf_names_cover_a_llama_layer() -> None:
    from training.convert import _gguf_name

    assert _gguf_name("model.layers.3.self_attn.k_proj.weight") == "blk.3.attn_k.weight"
    assert _gguf_name("model.layers.0.post_attention_layernorm.weight") == "blk.0.ffn_norm.weight"
    assert _gguf_name("model.embed_tokens.weight") == "token_embd.weight"
    assert _gguf_name("model.rotary_emb.inv_freq") is None


# ----------------------------------------------------------------------------- evaluate
def test_planner_eval_report_and_table(tmp_path: Path) -> None:
    generate(tmp_path, DataConfig(n_train=1, n_val=1, n_test=6))
    rep = evaluate(EvalConfig(model_path=PLANNER, data=str(tmp_path / "test.jsonl"), limit=0))
    assert rep["rows"] == 6 and rep["raw"]["parse"] == 100.0
    assert all(v in (None, 100.0) for v in rep["after_rules"].values())
    table = markdown([rep])
    assert table.count("\n") == 3 and "planner" in table
    json.dumps(rep)  # JSON-ready


def test_hint_error_counts_the_hints_the_rules_let_stand(tmp_path: Path) -> None:
    generate(tmp_path, DataConfig(n_train=1, n_val=1, n_test=40, p_hint=0.9))
    rows = load_rows(tmp_path / "test.jsonl")

    completions = iter([r["completion"] for r in rows])  # score_rows asks in row order

    def teacher(request: Request) -> tuple[None, dict, dict]:
        return None, parse_answer(next(completions), request), {}

    def centre(request: Request) -> tuple[None, dict, dict]:
        return None, parse_answer("room studio_large\n" + "0 0 20 111 0 s\n" * len(request.stems), request), {}

    t = score_rows(rows, teacher, "teacher")
    # the teacher obeys the rules: it misses only the hints a rule overrides, and those are left out
    assert t["hint_stems"] > 20 and t["hint_angle_deg"] <= 1.0
    assert t["hint_stems_all"] > t["hint_stems"] and t["hint_angle_all_deg"] > t["hint_angle_deg"]
    assert t["motion_acc"] == 100.0
    c = score_rows(rows, centre, "everything in front")
    assert c["hint_stems"] == t["hint_stems"] and c["hint_angle_deg"] > 30


def test_the_label_is_the_target_where_the_parser_only_guessed() -> None:
    """The parser reads "hard left" for both guitars of "split hard left and hard right" and
    leaves "right" unread; the runtime does not pin that guess, so the teacher writes the labels
    (+90 and -90), not the parser's 90 twice.
    """
    stems = [{"id": "gtr1", "class": "guitar"}, {"id": "gtr2", "class": "guitar"}, {"id": "vox", "class": "lead_vocal"}]
    req = Request.from_dict(
        {"target_format": "7.1.4", "max_objects": 8, "stems": stems, "prompt": "guitars split hard left and hard right"}
    )
    scene = teacher_scene(req, {"gtr1": Label(90.0, None, None, None), "gtr2": Label(-90.0, None, None, None)})
    az = {o["id"]: o["az_deg"] for o in scene["objects"]}
    assert (az["gtr1"], az["gtr2"]) == (90.0, -90.0)
