"""``gravity eval``: how well a model proposes scenes, before and after the rule engine.

For every held-out row (requests whose hints use phrase templates and vocabulary never seen
in training) the model's raw output is decoded with :func:`gravity.llm.format.decode` and scored:

* **raw** (before :func:`gravity.rules.enforce`): parse rate (the text decodes), schema-valid
  rate (:func:`gravity.schema.check_scene` on the decoded proposal), object-budget pass rate,
  anchor pass rate (over rows with anchor rules: every anchored stem within its tolerance,
  +0.5 deg / 0.05 m for integer rounding);
* **after** the engine (fallback to the planner when the text is unusable, as
  :func:`gravity.pipeline.make_scene` does): the same four rates, which must be 100 %;
* agreement with the teacher (the row's completion): mean angular error in degrees between
  unit vectors of each stem's start position, mean |ln(dist / dist_teacher)|;
* on labelled stems (the structured truth behind each held-out phrase) whose hint the hard
  rules let stand: hint-direction error in degrees (great circle when the label has azimuth
  and elevation, else the one axis it has) and motion-pattern accuracy. A hint stands when
  the labels' scene (:func:`training.data.label_scene`: the labels written over the text-blind
  planner, then the rule engine) starts within 1 deg of it (and keeps its motion pattern);
  where a rule overrides it (``mono_low_end`` centring a bass, a short budget folding the stem
  into another object) the model is trained to obey the rule, so the label is not its target.
  The error over every labelled stem is reported too (``hint_angle_all_deg``), and on the
  standing stems the phrase parser + planner miss by more than 10 deg (phrases the parser
  cannot assign): the proposer's error ``parser_miss_angle_deg`` next to the parser's own
  ``parser_miss_parser_deg`` on the same stems;
* tokens out per scene, latency p50 / p90 in seconds;
* the critic's card (:func:`gravity.critic.critique`) of each final scene (after the engine),
  averaged per proposer: ``critic`` holds the mean of every numeric card field and sub-score.

``planner`` rows score the deterministic planner with the phrase parser
(:mod:`gravity.plan.hint`) on the same rows: the baseline a model must beat on hints.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from gravity.critic import critique
from gravity.motion import angle_between, keyframes_array, wrap_az
from gravity.llm.format import parse_answer
from gravity.motion import detect_motion
from gravity.request import Request
from gravity.rules import enforce
from gravity.schema import check_scene
from training.data import Label, label_scene, teacher_scene

if TYPE_CHECKING:
    from gravity.llm.config import LLMConfig

__all__ = [
    "EvalConfig", "evaluate", "final_scene", "load_llm", "named_proposer", "proposer", "score_rows", "markdown",
    "PLANNER",
]  # fmt: skip

log = logging.getLogger(__name__)

PLANNER = "planner"  # model_path value that scores the deterministic planner + phrase parser
_EPS_DEG, _EPS_M = 0.5, 0.05
_STANDS_DEG = 1.0  # the labels' scene within this of the label: the rules let the hint stand
_PARSER_MISS_DEG = 10.0  # the parser + planner further than this from a standing label: a miss


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate.

    model_path : GGUF (None = the runtime's default resolution; ``"planner"`` = the planner
    baseline); lora_path : GGUF LoRA; data : JSONL rows; limit : rows (0 = all); n_threads :
    llama.cpp threads; use_grammar : GBNF-bounded sampling (as the runtime does); temperature :
    0 = greedy (deterministic; the default for evaluation); label : name in the report; quant :
    weight layout (``LLMConfig.quant``: ``auto`` evaluates what the runtime runs); pin_hints :
    the phrase parser's readings pinned in the grammar, as the runtime does (off: the model's
    own reading of every hint).
    """

    model_path: str | None = None
    lora_path: str | None = None
    data: str = "runs/data/test.jsonl"
    limit: int = 100
    n_threads: int | None = None
    use_grammar: bool = True
    temperature: float = 0.0
    label: str | None = None
    quant: str = "auto"
    pin_hints: bool = True


def _host_kf(scene: Mapping[str, Any], stem_id: str) -> np.ndarray | None:
    """Keyframes (K, 4: t, az, el, dist) of the object that holds ``stem_id``."""
    for o in scene.get("objects", []):
        if stem_id in o.get("stems", [o.get("id")]):
            return keyframes_array(
                o.get("motion") or [{"t": 0, "az_deg": o["az_deg"], "el_deg": o["el_deg"], "dist_m": o["dist_m"]}]
            )
    return None


def final_scene(request: Request, scene: Mapping[str, Any] | None) -> dict[str, Any]:
    """The scene a user gets from a model's answer: the answer, or the planner's scene where it
    has none (as :func:`gravity.pipeline.make_scene` falls back), through the rule engine with the
    stems the text placed kept (:func:`gravity.plan.planner.text_placed`).
    """
    from gravity.plan.planner import plan, text_placed

    return enforce(request, scene if scene is not None else plan(request), text_placed(request)).scene


def _anchor_ok(request: Request, scene: Mapping[str, Any]) -> bool:
    for r in request.rules:
        if r["type"] != "anchor":
            continue
        tol = float(r.get("tolerance_deg", 0.0)) + _EPS_DEG
        for s in request.stems:
            if r.get("track_id", None) not in (None, s.id) or r.get("track_class", s.cls) != s.cls:
                continue
            kf = _host_kf(scene, s.id)
            if kf is None:
                return False
            el = float(r.get("el_deg", kf[0, 2])) if request.has_height else 0.0
            if np.any(angle_between(kf[:, 1], kf[:, 2], float(r["az_deg"]), el) > tol):
                return False
            if "dist_m" in r and np.any(
                np.abs(kf[:, 3] - float(r["dist_m"])) > float(r.get("tolerance_m", 0.0)) + _EPS_M
            ):
                return False
    return True


def _rates(request: Request, scene: Mapping[str, Any] | None) -> dict[str, bool]:
    if scene is None:
        return {"parse": False, "schema": False, "budget": False, "anchor": False}
    return {
        "parse": True,
        "schema": not check_scene(scene),
        "budget": len(scene.get("objects", [])) <= request.budget,
        "anchor": _anchor_ok(request, scene),
    }


def _hint_error(label: Mapping[str, Any], kf: np.ndarray, has_height: bool) -> float | None:
    """Degrees between the label's direction and the start position (None: no direction)."""
    az, el = label.get("az_deg"), label.get("el_deg")
    if not has_height:
        el = None  # flat layouts: elevation is forced to 0, only azimuth can be followed
    if az is not None and el is not None:
        return float(angle_between(kf[0, 1], kf[0, 2], az, el))
    if az is not None:
        return float(abs(wrap_az(kf[0, 1] - az)))
    if el is not None:
        return float(abs(kf[0, 2] - el))
    return None


def score_rows(rows: Iterable[Mapping[str, Any]], propose: Any, label: str) -> dict[str, Any]:
    """Score ``propose(request) -> (text | None, scene | None, stats)`` on rows; returns the report."""
    from tqdm import tqdm

    raw: dict[str, list[bool]] = {k: [] for k in ("parse", "schema", "budget", "anchor")}
    after: dict[str, list[bool]] = {k: [] for k in raw}
    ang, dist_err, hint_err, hint_all, motion_ok = [], [], [], [], []
    miss: list[float] = []  # hint error on stems whose phrase the parser misreads (> 10 deg)
    miss_parser: list[float] = []  # the parser's own error on those stems
    tokens, latency, failures = [], [], []
    cards: list[dict[str, float]] = []
    rows = list(rows)
    for row in tqdm(rows, desc=f"eval {label}", unit="req", disable=None):
        request = Request.from_dict(row["request"])
        labels = row.get("labels", {})
        if "completion" in row:
            teacher = parse_answer(row["completion"], request)
        else:  # a hand-written set (training/eval_sets): the teacher's scene from its labels
            teacher = teacher_scene(request, {k: Label.from_json(v) for k, v in labels.items()})
        text, scene, stats = propose(request)
        if stats.get("tokens_out") is not None:
            tokens.append(stats["tokens_out"])
        if stats.get("total_s") is not None:
            latency.append(stats["total_s"])
        r = _rates(request, scene)
        has_anchor = any(x["type"] == "anchor" for x in request.rules)
        for k in raw:
            if k != "anchor" or has_anchor:
                raw[k].append(r[k])
        if scene is None:
            failures.append({"id": row.get("id"), "text": (text or "")[:300]})
        final = final_scene(request, scene)
        fr = _rates(request, final)
        cards.append(critique(request, final).numbers())
        for k in after:
            if k != "anchor" or has_anchor:
                after[k].append(fr[k])
        if scene is None:
            continue
        for s in request.stems:
            a, b = _host_kf(scene, s.id), _host_kf(teacher, s.id)
            if a is None or b is None:
                continue
            ang.append(float(angle_between(a[0, 1], a[0, 2], b[0, 1], b[0, 2])))
            dist_err.append(abs(float(np.log(max(a[0, 3], 0.05) / max(b[0, 3], 0.05)))))
        if not labels:
            continue
        # where each label stands after the rules (text-blind planner + labels + engine), and
        # what the phrase parser + planner make of the same text
        ruled = label_scene(request, {k: Label.from_json(v) for k, v in labels.items()})
        parsed = final_scene(request, None)
        for sid, lab in labels.items():
            kf, tkf, pkf = _host_kf(scene, sid), _host_kf(ruled, sid), _host_kf(parsed, sid)
            if kf is None or tkf is None:
                continue
            e, te = _hint_error(lab, kf, request.has_height), _hint_error(lab, tkf, request.has_height)
            if e is not None:
                hint_all.append(e)
                if te is not None and te <= _STANDS_DEG:
                    hint_err.append(e)
                    pe = None if pkf is None else _hint_error(lab, pkf, request.has_height)
                    if pe is not None and pe > _PARSER_MISS_DEG:  # a phrase the parser cannot assign
                        miss.append(e)
                        miss_parser.append(pe)
            pattern = (lab.get("motion") or {}).get("pattern")
            if pattern is not None and detect_motion(tkf, request.section_bars).pattern == pattern:
                motion_ok.append(detect_motion(kf, request.section_bars).pattern == pattern)

    def pct(v: list[bool]) -> float | None:
        return round(100.0 * float(np.mean(v)), 1) if v else None

    def mean(v: list[float], nd: int = 2) -> float | None:
        return round(float(np.mean(v)), nd) if v else None

    return {
        "label": label,
        "rows": len(rows),
        "raw": {k: pct(v) for k, v in raw.items()},
        "after_rules": {k: pct(v) for k, v in after.items()},
        "anchor_rows": len(raw["anchor"]),
        "teacher_angle_deg": mean(ang),
        "teacher_dist_log_err": mean(dist_err, 3),
        "hint_angle_deg": mean(hint_err),
        "hint_angle_median_deg": round(float(np.median(hint_err)), 2) if hint_err else None,
        "hint_stems": len(hint_err),
        "hint_angle_all_deg": mean(hint_all),
        "hint_stems_all": len(hint_all),
        "parser_miss_stems": len(miss),
        "parser_miss_angle_deg": mean(miss),
        "parser_miss_parser_deg": mean(miss_parser),
        "motion_acc": pct(motion_ok),
        "motion_stems": len(motion_ok),
        "tokens_per_scene": mean([float(t) for t in tokens], 1),
        "latency_p50_s": round(float(np.percentile(latency, 50)), 3) if latency else None,
        "latency_p90_s": round(float(np.percentile(latency, 90)), 3) if latency else None,
        "critic": {k: round(float(np.mean([c[k] for c in cards])), 3) for k in cards[0]} if cards else None,
        "failures": failures[:5],
    }


def proposer(llm: Any = None) -> Any:
    """``propose(request) -> (text | None, scene | None, stats)`` for :func:`score_rows`: a loaded
    :class:`gravity.llm.runtime.SceneLLM`'s raw proposals, or the planner + phrase parser (None).
    """
    if llm is None:
        from gravity.plan.planner import plan

        def planned(request: Request) -> tuple[str | None, dict[str, Any] | None, dict[str, Any]]:
            t = time.perf_counter()
            scene = plan(request)
            return None, scene, {"total_s": time.perf_counter() - t}

        return planned

    def generated(request: Request) -> tuple[str | None, dict[str, Any] | None, dict[str, Any]]:
        p = llm.propose(request)
        if p.scene is None and p.error and "unparsable" not in p.error:
            log.warning("%s", p.error)
        return p.text, p.scene, p.stats

    return generated


def load_llm(cfg: EvalConfig, runtime: LLMConfig | None = None) -> Any:
    """The :class:`gravity.llm.runtime.SceneLLM` that ``cfg`` names (``runtime`` carries the rest
    of the runtime's settings, default ``LLMConfig`` with a 60 s limit; ``cfg``'s fields win).
    """
    from gravity.llm.runtime import LLMConfig, SceneLLM

    return SceneLLM(
        replace(
            runtime or LLMConfig(timeout_s=60.0),
            model_path=cfg.model_path,
            lora_path=cfg.lora_path,
            n_threads=cfg.n_threads,
            temperature=cfg.temperature,
            use_grammar=cfg.use_grammar,
            quant=cfg.quant,
            pin_hints=cfg.pin_hints,
        )
    )


def named_proposer(cfg: EvalConfig, runtime: LLMConfig | None = None) -> tuple[Any, str, dict[str, Any]]:
    """The proposer ``cfg`` names (:func:`proposer`: the planner or :func:`load_llm`'s model), its
    label in a report and the report's fields naming the model (path, adapter, weights, pinning).
    """
    if cfg.model_path == PLANNER:
        return proposer(None), cfg.label or "planner + phrase parser", {"model": PLANNER}
    llm = load_llm(cfg, runtime)
    label = cfg.label or (Path(cfg.lora_path).name if cfg.lora_path else llm.name)
    return (
        proposer(llm),
        label,
        {
            "model": str(llm.info.path),
            "lora": cfg.lora_path or (str(llm.info.lora) if llm.info.lora else None),
            "weights": llm.model_file.name,
            "pin_hints": cfg.pin_hints and cfg.use_grammar,
        },
    )


def evaluate(cfg: EvalConfig, runtime: LLMConfig | None = None) -> dict[str, Any]:
    """Evaluate one model (or the planner) on ``cfg.data``; returns the JSON report.

    ``runtime`` carries the rest of the runtime's settings (context, seed, top-p, GPU layers,
    drafts, time limit; default: ``LLMConfig`` with a 60 s limit); ``cfg``'s fields win over it.
    """
    from training.data import load_rows

    rows = load_rows(cfg.data, cfg.limit or None)
    t0 = time.perf_counter()
    generate, label, fields = named_proposer(cfg, runtime)
    report = score_rows(rows, generate, label)
    report.update(fields)
    report["data"] = cfg.data
    report["grammar"] = cfg.use_grammar
    report["temperature"] = cfg.temperature
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    log.info("%s: %s", report["label"], {k: report[k] for k in ("raw", "hint_angle_deg", "motion_acc")})
    return report


def markdown(reports: Iterable[Mapping[str, Any]]) -> str:
    """A short Markdown table of one or more reports (rates in %, angles in degrees)."""
    head = (
        "| model | parse raw | schema raw | budget raw | anchor raw | after rules (4 rates) | angle vs teacher ° "
        "| dist log err | hint angle ° (held-out hints the rules let stand) | hint angle ° (all labelled) | motion acc "
        "| tokens/scene | p50 s | critic |"
    )
    lines = [head, "|" + "---|" * 14]
    for r in reports:
        a = r["after_rules"]
        after = "/".join("-" if a[k] is None else f"{a[k]:g}" for k in ("parse", "schema", "budget", "anchor"))
        raw = r["raw"]

        def f(x: Any) -> str:
            return "-" if x is None else f"{x:g}"

        lines.append(
            f"| {r['label']} | {f(raw['parse'])} | {f(raw['schema'])} | {f(raw['budget'])} | {f(raw['anchor'])} "
            f"| {after} | {f(r['teacher_angle_deg'])} | {f(r['teacher_dist_log_err'])} "
            f"| {f(r['hint_angle_deg'])} (n={r['hint_stems']}) "
            f"| {f(r.get('hint_angle_all_deg'))} (n={r.get('hint_stems_all', '-')}) "
            f"| {f(r['motion_acc'])} (n={r['motion_stems']}) | {f(r['tokens_per_scene'])} | {f(r['latency_p50_s'])} "
            f"| {f((r.get('critic') or {}).get('score'))} |"
        )
    return "\n".join(lines) + "\n"
