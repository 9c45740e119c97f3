"""Preference pairs for DPO (``gravity pairs``): the scene critic ranks the teacher against the model.

For each data row (a request and the teacher's completion) the candidates are the teacher's
target and ``k`` model samples (:meth:`gravity.llm.runtime.SceneLLM.propose_many`: the model's
answer, then seeds ``seed + 1``...). Each becomes the scene the runtime would ship from that text
(the text's limits, then the rule engine, as :func:`gravity.pipeline.make_scene` treats a model
candidate) and is scored by :func:`gravity.critic.critique` (``rank_key`` = adherence to the
text, then the card's score; higher is better). The best is *chosen*, the worst *rejected*; the
pair is kept only when the chosen one is clearly better: higher adherence, or the same adherence
and a score at least ``margin`` higher. Both texts are the shipped scenes in the output format
(:func:`gravity.llm.format.encode_scene`), so DPO moves the model toward scenes that survive the
rules as they are.

Ties: the earliest candidate wins *chosen* (the teacher before the samples) and the latest loses
*rejected*, so the pairs are a pure function of the rows and the model's seeds.

Files (``out_dir``): ``pairs_train.jsonl`` / ``pairs_val.jsonl``, one row per pair ``{"id",
"prompt", "chosen", "rejected", "chosen_key": [adherence, score], "rejected_key", "chosen_from",
"rejected_from"}`` (completions without ``<|im_end|>``, as in SFT rows), and
``pairs_manifest.json`` (settings, counts, SHA-256, how often the teacher and the samples were
chosen and rejected); written only after every split is sampled (a run stopped midway leaves no
files), each to a temporary file renamed over the target.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

from gravity.atomic import atomic_path
from gravity.errors import RuleConflictError
from gravity.llm.format import AnswerError, encode_scene, parse_answer
from gravity.request import Request

__all__ = ["Candidate", "score_text", "choose_pair", "make_pairs", "write_pairs", "PAIRS_VERSION", "MARGIN"]

log = logging.getLogger(__name__)

PAIRS_VERSION = 1
MARGIN = 0.02  # critic score a chosen scene must gain at equal adherence (card scores span ~0.6..0.95)
_EPS = 1e-9  # adherence is a share of asks met: equal shares are equal up to rounding


class _Proposer(Protocol):
    """What :func:`make_pairs` needs of a model (a :class:`~gravity.llm.runtime.SceneLLM`)."""

    def propose_many(self, request: Request, n: int) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Candidate:
    """One candidate as the runtime would ship it.

    source : ``teacher`` or ``sample``; text : the rule-checked scene in the output format;
    key : the critic's ``(adherence, score)``, each 0..1.
    """

    source: str
    text: str
    key: tuple[float, float]


def score_text(request: Request, source: str, text: str) -> Candidate | None:
    """The candidate a model text makes: parsed, the text's limits applied, the rules enforced,
    encoded again and scored by the critic. None when the text cannot be read or the rules
    cannot all hold.
    """
    from gravity.critic import critique
    from gravity.plan.limits import limit_to_text
    from gravity.plan.planner import text_placed
    from gravity.rules import enforce

    try:
        proposal = parse_answer(text, request)
    except AnswerError as exc:
        log.debug("%s candidate unreadable: %s", source, exc)
        return None
    try:  # as make_scene treats a model candidate: the text's limits, then the rules
        scene = enforce(request, limit_to_text(request, proposal), text_placed(request)).scene
    except RuleConflictError:
        return None
    return Candidate(source, encode_scene(scene, request), critique(request, scene).rank_key)


def beats(chosen: tuple[float, float], rejected: tuple[float, float], margin: float = MARGIN) -> bool:
    """Whether ``chosen`` is clearly better: higher adherence, or equal adherence and a critic
    score at least ``margin`` higher.
    """
    if chosen[0] > rejected[0] + _EPS:
        return True
    return abs(chosen[0] - rejected[0]) <= _EPS and chosen[1] - rejected[1] >= margin - _EPS


def choose_pair(
    request: Request, texts: Sequence[tuple[str, str]], margin: float = MARGIN
) -> tuple[Candidate, Candidate] | None:
    """(chosen, rejected) among ``texts`` (``(source, text)`` pairs, teacher first), or None
    when fewer than two are usable or the best does not beat the worst (:func:`beats`).
    """
    cands = [c for c in (score_text(request, src, t) for src, t in texts) if c is not None]
    if len(cands) < 2:
        return None
    order = range(len(cands))
    best = max(order, key=lambda i: (cands[i].key, -i))  # ties: the earliest
    worst = min(order, key=lambda i: (cands[i].key, -i))  # ties: the latest
    if not beats(cands[best].key, cands[worst].key, margin):
        return None
    return cands[best], cands[worst]


def _row(row: dict[str, Any], pair: tuple[Candidate, Candidate]) -> dict[str, Any]:
    chosen, rejected = pair
    return {
        "id": row["id"],
        "prompt": row["prompt"],
        "chosen": chosen.text,
        "rejected": rejected.text,
        "chosen_key": [round(v, 4) for v in chosen.key],
        "rejected_key": [round(v, 4) for v in rejected.key],
        "chosen_from": chosen.source,
        "rejected_from": rejected.source,
    }


def make_pairs(
    rows: Iterable[dict[str, Any]],
    llm: _Proposer,
    k: int,
    margin: float = MARGIN,
    *,
    progress: bool = True,
    desc: str = "pairs",
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Preference pairs for data rows (``training.data`` rows: ``id``, ``prompt``,
    ``completion``, ``request``), and counts.

    Parameters
    ----------
    rows : iterable of dict
        Rows with the teacher's completion.
    llm : SceneLLM
        Anything with ``propose_many(request, n)`` returning proposals with ``text`` and
        ``scene`` (None when unusable).
    k : int
        Model samples per row (>= 1).
    margin : float
        Critic score the chosen candidate must gain at equal adherence (0..1).
    progress : bool
        Show a progress bar (about 1-2 s per sample on 2 cores).

    Returns
    -------
    pairs : list of dict
        One row per kept pair, in the rows' order (see the module docstring).
    counts : dict
        ``rows``, ``pairs``, ``no_margin`` (rows whose best did not beat their worst),
        ``unusable_samples``, ``chosen_from`` / ``rejected_from`` (teacher / sample counts).
    """
    from tqdm import tqdm

    rows = list(rows)
    pairs: list[dict[str, Any]] = []
    chosen_from: Counter[str] = Counter()
    rejected_from: Counter[str] = Counter()
    unusable = 0
    bar = tqdm(rows, desc=desc, unit="row", disable=not progress)
    for row in bar:
        request = Request.from_dict(row["request"])
        props = llm.propose_many(request, k)
        unusable += sum(p.scene is None for p in props)
        texts = [("teacher", row["completion"])] + [("sample", p.text) for p in props if p.scene is not None]
        pair = choose_pair(request, texts, margin)
        if pair is not None:
            pairs.append(_row(row, pair))
            chosen_from[pair[0].source] += 1
            rejected_from[pair[1].source] += 1
        bar.set_postfix(pairs=len(pairs))
    counts = {
        "rows": len(rows),
        "pairs": len(pairs),
        "no_margin": len(rows) - len(pairs),
        "unusable_samples": unusable,
        "chosen_from": {s: chosen_from[s] for s in ("teacher", "sample")},
        "rejected_from": {s: rejected_from[s] for s in ("teacher", "sample")},
    }
    return pairs, counts


def _write_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_pairs(
    data_dir: str | Path,
    out_dir: str | Path,
    llm: _Proposer,
    k: int,
    *,
    limit: int = 0,
    n_val: int = 20,
    margin: float = MARGIN,
    settings: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Make pairs for the first ``limit`` rows of ``data_dir/train.jsonl`` (0 = all) and the first
    ``n_val`` of ``val.jsonl``; write ``pairs_train.jsonl``, ``pairs_val.jsonl`` and
    ``pairs_manifest.json`` to ``out_dir``. ``settings`` (the model's name, sampling settings...)
    go into the manifest as they are. Returns the manifest.
    """
    from training.data import file_sha256, load_rows

    src, out = Path(data_dir), Path(out_dir)
    manifest: dict[str, Any] = {
        "pairs_version": PAIRS_VERSION,
        "k": k,
        "margin": margin,
        "settings": settings or {},
        "source": {"data_dir": str(src), "sha256": {}},
        "counts": {},
        "sha256": {},
    }
    texts: dict[str, str] = {}  # file name -> contents: written only once every split is done
    for split, n in (("train", limit or None), ("val", n_val)):
        if n == 0:
            rows: list[dict[str, Any]] = []
        else:
            rows = load_rows(src / f"{split}.jsonl", n)
            manifest["source"]["sha256"][f"{split}.jsonl"] = file_sha256(src / f"{split}.jsonl")
        pairs, counts = make_pairs(rows, llm, k, margin, progress=progress, desc=f"pairs {split}")
        texts[f"pairs_{split}.jsonl"] = "".join(json.dumps(p, ensure_ascii=False, sort_keys=True) + "\n" for p in pairs)
        manifest["counts"][split] = counts
        log.info("%s: %d pairs from %d rows (%s)", split, counts["pairs"], counts["rows"], counts["chosen_from"])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        _write_atomic(out / name, text)
        manifest["sha256"][name] = file_sha256(out / name)
    _write_atomic(out / "pairs_manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
