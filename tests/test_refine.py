"""gravity.refine: crowded same-band pairs released by the smallest turns the critic approves."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from gravity.critic import CROWDED_DEG, critique, crowded_pairs
from gravity.expectations import load_sessions
from gravity.llm.config import LLMConfig
from gravity.llm.format import encode_scene, parse_answer
from gravity.llm.runtime import Proposal
from gravity.motion import angle_between
from gravity.pipeline import make_scene
from gravity.plan.planner import text_placed
from gravity.refine import MAX_TRIALS, refine
from gravity.request import Request
from gravity.rules import check

SESSIONS = Path(__file__).resolve().parent.parent / "examples" / "sessions"


def _request(stems: list[dict[str, Any]], **extra: Any) -> Request:
    doc = {
        "target_format": "7.1.4",
        "max_objects": len(stems),
        "style": "hiphop",
        "section": "verse",
        "global": {"bpm": 90, "energy": 0.6, "section_bars": 8},
        "stems": stems,
        "rules": [],
        **extra,
    }
    return Request.from_dict(doc)


def _scene(req: Request, az: dict[str, float]) -> dict[str, Any]:
    """The planner's scene with the given objects put at ear level at fixed azimuths (static, degrees)."""
    scene = make_scene(req, planner="planner").scene
    for o in scene["objects"]:
        if o["id"] in az:
            o["az_deg"], o["el_deg"] = az[o["id"]], 0.0
            o["motion"] = [{**o["motion"][0], "t": t, "az_deg": az[o["id"]], "el_deg": 0.0} for t in (0.0, 1.0)]
    assert check(req, scene) == []
    return scene


def _az(scene: dict[str, Any], oid: str) -> float:
    return next(float(o["az_deg"]) for o in scene["objects"] if o["id"] == oid)


MID = {"low": 0.1, "mid": 0.8, "high": 0.1}  # band energies of a mid-band stem
BAND = {"transient": 0.8, "band_energy": MID}  # the lead vocal and the snare share the band


def test_the_snare_moves_off_the_lead_not_the_lead_off_the_snare() -> None:
    req = _request(
        [
            {"id": "vox", "class": "lead_vocal", "leadness": 1.0, "band_energy": MID},
            {"id": "snare", "class": "snare", **BAND},
            {"id": "kick", "class": "kick"},
        ]
    )
    scene = _scene(req, {"vox": 0.0, "snare": 9.0})
    assert [p[:2] for p in crowded_pairs(req, scene)] == [("vox", "snare")]
    before = copy.deepcopy(scene)
    ref = refine(req, scene)
    assert scene == before  # the input is not changed
    assert _az(ref.scene, "vox") == 0.0 and _az(ref.scene, "kick") == _az(scene, "kick")
    # small turns away from the lead, just past the 15 deg crowding angle
    assert _az(ref.scene, "snare") == 9.0 + 8.0 and set(ref.moves) == {"snare +4 deg"}
    assert crowded_pairs(req, ref.scene) == [] and ref.card.score > ref.before.score
    assert ref.card.crowded_pairs == 0 and check(req, ref.scene) == []
    assert refine(req, scene) == ref  # deterministic: a work bound, not a clock


def test_a_stem_the_text_placed_is_not_moved() -> None:
    stems = [
        {"id": "vox", "class": "lead_vocal", "leadness": 1.0, "band_energy": MID},
        {"id": "snare", "class": "snare", "hint": "9 degrees to the left", **BAND},
    ]
    req = _request(stems)
    scene = _scene(req, {"vox": 0.0, "snare": 9.0})
    assert crowded_pairs(req, scene)  # crowded, but both are pinned: the lead and the text's snare
    ref = refine(req, scene, text_placed(req))
    assert ref.scene == scene and ref.moves == () and ref.card == ref.before


def test_a_mirrored_pair_turns_together() -> None:
    req = _request(
        [
            {"id": "vox", "class": "lead_vocal", "leadness": 1.0},
            {"id": "gtr_l", "class": "guitar", "band_energy": MID},
            {"id": "gtr_r", "class": "guitar", "band_energy": MID},
            {"id": "keys", "class": "keys", "band_energy": MID},
        ]
    )
    scene = _scene(req, {"vox": 0.0, "gtr_l": 40.0, "gtr_r": -40.0, "keys": 48.0})
    ref = refine(req, scene)
    assert ref.moves and crowded_pairs(req, ref.scene) == []
    assert _az(ref.scene, "gtr_l") == -_az(ref.scene, "gtr_r")  # the pair stays mirrored
    objs = {o["id"]: o for o in ref.scene["objects"]}
    for a, b in (("gtr_l", "keys"), ("gtr_r", "keys"), ("gtr_l", "gtr_r")):
        pa, pb = objs[a], objs[b]
        assert angle_between(pa["az_deg"], pa["el_deg"], pb["az_deg"], pb["el_deg"]) >= CROWDED_DEG


def test_nothing_to_release_costs_one_card() -> None:
    req = _request([{"id": "vox", "class": "lead_vocal"}, {"id": "pad", "class": "pad"}])
    scene = make_scene(req, planner="planner").scene
    ref = refine(req, scene)
    assert ref.scene is scene and ref.moves == () and ref.card == critique(req, scene)
    assert MAX_TRIALS >= 20  # enough for a few pairs' turns


class _PlannerAsModel:
    """A model that writes the planner's scene with the snare turned next to the vocal."""

    def __init__(self, text: str) -> None:
        self.config = LLMConfig(candidates=2)
        self.text = text

    def propose(self, request: Request, seed: int | None = None) -> Proposal:  # noqa: ARG002 - the runtime's signature
        return Proposal(self.text, parse_answer(self.text, request), None, {"tokens_out": 1})

    def propose_many(self, request: Request, n: int) -> list[Proposal]:
        return [self.propose(request) for _ in range(n)]


def test_the_default_proposer_refines_the_chosen_scene_and_says_so() -> None:
    """examples/sessions/hiphop_verse: the planner leaves the snare 13.3 deg from the lead vocal;
    with candidates the chosen scene is released (here the model writes the planner's scene).
    """
    sessions, _ = load_sessions(SESSIONS)
    req = sessions["hiphop_verse"].request
    planned = make_scene(req, planner="planner").scene
    assert [p[:2] for p in crowded_pairs(req, planned)] == [("vox_lead", "snare")]
    llm = _PlannerAsModel(encode_scene(planned, req))
    res = make_scene(req, planner="llm", llm=llm)
    assert res.meta["refined"]["moves"] == ["snare +8 deg"] and crowded_pairs(req, res.scene) == []
    assert critique(req, res.scene).score > max(c["score"] for c in res.meta["candidates"])
    assert check(req, res.scene) == []
    llm.config = LLMConfig(candidates=1)  # 1 = the model's answer as it is: no search
    res1 = make_scene(req, planner="llm", llm=llm)
    assert "refined" not in res1.meta and crowded_pairs(req, res1.scene)
