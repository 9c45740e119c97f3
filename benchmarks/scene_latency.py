"""Scene latency with the LLM runtime vs the deterministic planner (issue #5).

For requests of 4, 8 and 16 stems: p50 / p95 wall time per scene and tokens per scene with the
embedded model (or --model), against the planner in the same run; grammar overhead (same
prompts generated with and without the GBNF grammar, tokens/s compared); prompt-cache effect
(time to first token when the system prompt's KV cache is reused vs reset before each call).

Weight layouts (:mod:`gravity.llm.requant`): 8-stem p50 with the model file as it is (the embedded
model is Q4_1) vs re-quantized to Q8_0 and to IQ4_NL (the default for the embedded model).

Also: tokens/s with the lazy grammar check (default) vs filtering the whole vocabulary through
the grammar each step vs no grammar; the planner's scene as draft tokens vs none (sequential
evaluations per scene).

Run: ``python benchmarks/scene_latency.py [--model PATH.gguf] [--lora ADAPTER.gguf] [--runs 10]
[--threads N] [--quant auto|none|q8_0|iq4_nl...]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from dataclasses import replace

from gravity.pipeline import make_scene
from gravity.llm.format import model_input
from gravity.llm.grammar import grammar
from gravity.request import Request
from gravity.llm.runtime import LLMConfig, SceneLLM

CLASSES = [
    "lead_vocal",
    "kick",
    "bass",
    "pad",
    "hihat",
    "arp",
    "fx",
    "guitar",
    "percussion",
    "strings",
    "backing_vocal",
    "snare",
    "keys",
    "synth",
    "ambience",
    "brass",
]


def request(n: int, rng: random.Random) -> Request:
    stems = [
        {"id": f"{CLASSES[i % 16]}{i}", "class": CLASSES[i % 16], "leadness": round(rng.random(), 2)} for i in range(n)
    ]
    return Request.from_dict(
        {
            "target_format": "7.1.4",
            "max_objects": n,
            "style": rng.choice(["club", "pop", "ambient"]),
            "section": rng.choice(["verse", "chorus", "drop"]),
            "global": {"bpm": rng.randint(80, 160), "energy": 0.8},
            "stems": stems,
            "rules": [{"type": "mono_low_end", "hz_below": 120}],
        }
    )


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model")
    ap.add_argument("--lora")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--quant", default="auto")
    ap.add_argument(
        "--candidates", type=int, default=LLMConfig.candidates, help="--candidates N (default: %(default)s)"
    )
    args = ap.parse_args()
    cfg = LLMConfig(
        model_path=args.model,
        lora_path=args.lora,
        n_threads=args.threads,
        seed=0,
        temperature=0.2,
        quant=args.quant,
        candidates=args.candidates,
    )
    llm = SceneLLM(cfg)
    print(f"model: {llm.info.path.name} ({llm.info.source}) run as {llm.model_file.name}, load {llm.load_s:.2f} s")
    load1, load5, _ = os.getloadavg()
    print(
        f"--candidates {args.candidates}; machine load {load1:.2f} (1 min) {load5:.2f} (5 min), {os.cpu_count()} cores"
    )
    print(
        f"{'stems':>5} {'llm p50 s':>10} {'llm p95 s':>10} {'tok out':>8} {'evals':>6} {'tok in':>7} {'ttft s':>7} "
        f"{'planner ms':>11} {'ratio':>7} {'model chosen':>12}"
    )
    rng = random.Random(0)
    for n in (4, 8, 16):
        reqs = [request(n, rng) for _ in range(args.runs)]
        make_scene(reqs[0], planner="llm", llm=llm)  # warm the system-prompt cache
        t_llm, tok_out, tok_in, ttft, evals, usable = [], [], [], [], [], 0
        for r in reqs:
            res = make_scene(r, planner="llm", llm=llm)
            t_llm.append(res.seconds)
            tok_out.append(res.meta.get("tokens_out", 0))
            tok_in.append(res.meta.get("tokens_in", 0))
            ttft.append(res.meta.get("ttft_s", 0))
            evals.append(res.meta.get("evals", 0))
            usable += res.planner == "llm"
        t_plan = []
        for r in reqs:
            t0 = time.perf_counter()
            make_scene(r, planner="planner")
            t_plan.append(time.perf_counter() - t0)
        print(
            f"{n:>5} {statistics.median(t_llm):>10.2f} {pct(t_llm, 0.95):>10.2f} {statistics.median(tok_out):>8.0f} "
            f"{statistics.median(evals):>6.0f} "
            f"{statistics.median(tok_in):>7.0f} {statistics.median(ttft):>7.2f} "
            f"{statistics.median(t_plan) * 1e3:>11.1f} "
            f"{statistics.median(t_llm) / statistics.median(t_plan):>6.0f}x {usable:>3}/{len(reqs)}"
        )

    reqs = [request(8, rng) for _ in range(max(3, args.runs // 2))]

    # weight layouts: the same requests through the file as it is and re-quantized copies
    for quant in ("none", "q8_0", "iq4_nl"):
        other = SceneLLM(replace(cfg, quant=quant))
        make_scene(reqs[0], planner="llm", llm=other)
        times = [make_scene(r, planner="llm", llm=other).seconds for r in reqs]
        print(f"8 stems as {other.model_file.name:>48}: p50 {statistics.median(times):.2f} s")
        del other

    # grammar: lazy check (ours) vs the whole vocabulary through the grammar each step vs none
    for label, use, lazy in (
        ("lazy grammar (default)", True, True),
        ("full grammar every step", True, False),
        ("no grammar", False, True),
    ):
        rates = []
        for r in reqs:
            _, st = llm.generate(model_input(r), grammar(r) if use else None, 16 + 40 * len(r.stems), lazy_grammar=lazy)
            rates.append(st["tokens_out"] / max(1e-6, st["total_s"] - st["ttft_s"]))
        print(f"8 stems {label:>24}: {statistics.median(rates):6.1f} tokens/s after the first token")

    # drafts: the planner's scene proposed as draft tokens vs plain decoding (same prompts); the
    # model's own answer as draft is the bound for a model that agrees with its teacher
    own = {id(r): llm.generate(model_input(r), grammar(r), 16 + 40 * len(r.stems))[0] for r in reqs}
    for label, kind in (("no draft", None), ("planner draft", "planner"), ("own answer as draft", "own")):
        times, evals, toks = [], [], []
        for r in reqs:
            draft = SceneLLM._draft(r) if kind == "planner" else own[id(r)] if kind == "own" else None
            _, st = llm.generate(model_input(r), grammar(r), 16 + 40 * len(r.stems), draft=draft)
            times.append(st["total_s"])
            evals.append(st["evals"])
            toks.append(st["tokens_out"])
        print(
            f"8 stems {label:>24}: p50 {statistics.median(times):.2f} s, {statistics.median(toks):.0f} tokens "
            f"in {statistics.median(evals):.0f} sequential evaluations"
        )

    # prompt cache: the system prompt's KV reused between calls vs rebuilt each call
    for label, reset in (("cache reused", False), ("cache reset", True)):
        firsts = []
        for r in reqs:
            if reset:
                llm.reset_cache()
            _, st = llm.generate(model_input(r), grammar(r), 8)
            firsts.append(st["ttft_s"])
        print(f"8 stems time to first token, {label:>12}: {statistics.median(firsts):.3f} s")


if __name__ == "__main__":
    main()
