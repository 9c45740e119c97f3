"""Decoding on real llama.cpp (the embedded SmolLM2 base, no adapter): lazy grammar, prompt
cache and drafts change how much work a scene costs, never what the model writes.
"""

from __future__ import annotations

import random

import pytest

from gravity.llm.decoding import LineDraft
from gravity.llm.format import model_input, parse_answer
from gravity.llm.grammar import grammar
from gravity.request import Request
from gravity.llm.runtime import LLMConfig, SceneLLM
from helpers import llm_view


def band(n: int, seed: int, rules: bool = True) -> Request:
    rng = random.Random(seed)
    classes = ["lead_vocal", "kick", "bass", "pad", "hihat", "guitar"]
    stems = [{"id": f"s{i}", "class": classes[i % 6], "leadness": round(rng.random(), 2)} for i in range(n)]
    if seed % 2:
        stems[-1]["hint"] = "slowly circling overhead"
    return Request.from_dict(
        {
            "target_format": "7.1.4",
            "max_objects": n,
            "style": "pop",
            "section": "chorus",
            "global": {"bpm": 120, "energy": 0.7},
            "stems": stems,
            "rules": [{"type": "mono_low_end", "hz_below": 120}] if rules else [],
        }
    )


@pytest.fixture(scope="module")
def greedy(embedded_base) -> SceneLLM:
    # The file as shipped (Q4_1): the draft test's request was chosen for having no near-tied
    # digits under these weights (each re-quantized layout has its own ties).
    return SceneLLM(LLMConfig(temperature=0.0, timeout_s=60, draft=False, quant="none"), embedded_base)


def test_line_draft_aligns_by_line_and_field():
    d = LineDraft("room studio_small\n0 10 16 122 1 s\n30 0 20 333 -2 pan 30 -30\n")
    assert d("") == "room studio_small\n0 10 16 122 1 s\n30 0 20 333 -2 pan 30 -30\n"
    assert d("room studio_small\n0 1") == "0 16 122 1 s\n30 0 20 333 -2 pan 30 -30\n"
    # Departed in the first field of line 2: no proposal mid-number, the rest from the next field.
    assert d("room studio_small\n5") == ""
    assert d("room studio_small\n5 ") == "10 16 122 1 s\n30 0 20 333 -2 pan 30 -30\n"
    assert d("room club_medium\n") == "0 10 16 122 1 s\n30 0 20 333 -2 pan 30 -30\n"  # next line realigns
    assert d("room studio_small\n0 10 16 122 1 s\n30 0 20 333 -2 pan 30 -30\n") == ""


def test_line_draft_echoes_the_answers_own_lines_after_departing():
    d = LineDraft("room dry\n0 10 16 122 1 s\n30 0 20 333 -2 pan 30 -30\n60 0 20 333 0 s\n")
    text = "room dry\n120 12 12 120 12 s\n"
    assert d(text + "1") == "20 12 12 120 12 s\n"  # departed from the planner; repeats its own line
    assert d(text + "120 12 12 120 12 s\n12") == "0 12 12 120 12 s\n"  # the latest matching line
    assert d(text + "7") == ""  # no line goes on like this one, mid-number: nothing
    assert d(text + "30 0 ") == "20 333 -2 pan 30 -30\n60 0 20 333 0 s\n"  # back on the planner's line
    assert d("room dry\n0 0 18 001 0 s\n-90 0 ") == "20 333 -2 pan 30 -30\n60 0 20 333 0 s\n"  # next field


@pytest.mark.llm
def test_draft_changes_the_work_not_the_output(greedy):
    """Greedy text is the same with and without a draft equal to the answer, which is taken in
    batches (far fewer sequential evaluations than tokens).
    """
    # The untrained base model is near-tied at many digits, and batched logits differ from
    # one-token logits in the last bits, so exact equality holds only on requests without such
    # ties: this one (no rules, so no line the grammar pins away from the model's own choice).
    # Each call starts from the same fully evaluated prompt.
    for seed in (2,):
        req = band(4, seed, rules=False)
        prompt, g = model_input(req), grammar(req)
        greedy.reset_cache()  # every call starts from the same (fully evaluated) prompt
        plain, st0 = greedy.generate(prompt, g, 200)
        assert st0["evals"] == st0["tokens_out"] and st0["drafted"] == 0
        parse_answer(plain, req)  # a usable scene
        greedy.reset_cache()
        same, st1 = greedy.generate(prompt, g, 200, draft=plain)
        assert same == plain
        assert st1["evals"] <= st1["tokens_out"] / 3, st1
        # A wrong draft (another scene) costs batches; it does not steer the text: its room is
        # not taken. (Past the first line near-ties may flip, as above.)
        greedy.reset_cache()
        other, _ = greedy.generate(prompt, g, 200, draft="room outdoor\n-90 0 50 000 0 s\n" * 2)
        parse_answer(other, req)
        assert other.splitlines()[0] == plain.splitlines()[0] != "room outdoor"


@pytest.mark.llm
def test_prompt_cache_reuses_the_system_text(greedy):
    req = band(3, 4)
    greedy.generate(model_input(req), grammar(req), 120)
    _, st = greedy.generate(model_input(band(3, 6)), grammar(band(3, 6)), 120)
    n_system = greedy.count_tokens(model_input(req).split("<|im_start|>user")[0])
    assert st["tokens_cached"] >= n_system
    greedy.reset_cache()  # the context forgets; the shared head comes back from the disk cache
    _, st2 = greedy.generate(model_input(req), grammar(req), 120)
    assert st2["head"] == "file" and n_system <= st2["tokens_cached"] <= st["tokens_cached"]


@pytest.mark.llm
def test_the_prompt_head_cached_on_disk_gives_the_same_answer(embedded_base, tmp_path, monkeypatch):
    """A new process reads the shared head's keys and values from the cache instead of
    evaluating them: the same answer as the process that evaluated and wrote them; a damaged
    or foreign file is evaluated again (and the answer is still the same).
    """
    monkeypatch.setenv("GRAVITY_CACHE", str(tmp_path))
    req = band(3, 4)

    def fresh() -> tuple[str, dict]:  # a new model object: an empty context, as a new process has
        llm = SceneLLM(LLMConfig(temperature=0.0, timeout_s=60, quant="none"), embedded_base)
        return llm.generate(model_input(req), grammar(req), 120)

    text, st = fresh()
    (kv,) = (tmp_path / "models" / "prompts").iterdir()
    assert st["head"] == "evaluated" and kv.stat().st_size > 1e6  # ~23 kB of keys/values per token
    text2, st2 = fresh()
    assert st2["head"] == "file" and text2 == text and st2["tokens_cached"] == st["tokens_cached"] > 100
    kv.write_bytes(kv.read_bytes()[:4096])  # truncated: llama.cpp refuses it
    text3, st3 = fresh()
    assert st3["head"] == "evaluated" and text3 == text
    assert fresh()[1]["head"] == "file"  # written again


@pytest.mark.llm
def test_lazy_grammar_output_is_always_in_the_grammar(base_model):
    """High temperature makes the untrained model propose many tokens the grammar rejects (the
    adapter is too sure of its format to): every one is re-sampled through the grammar, and
    each answer still parses.
    """
    llm = llm_view(base_model, temperature=1.5, top_p=1.0, seed=7, timeout_s=60)
    resampled = 0
    for seed in range(3):
        req = band(3, seed)
        text, st = llm.generate(model_input(req), grammar(req), 150)
        resampled += st["grammar_resamples"]
        assert st["finish"] == "stop", (text, st)
        parse_answer(text, req)
    assert resampled > 0
