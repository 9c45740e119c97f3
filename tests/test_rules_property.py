"""Property tests of the rule engine (hypothesis, >= 1000 requests each).

Feasible rule sets are built from a hidden *witness* scene that satisfies them, so a
RuleConflictError there is an engine failure. Hostile proposals (NaN, out-of-range values,
extra and missing objects, garbage motion) are thrown at it. Every output must be
schema-valid, satisfy every hard rule (checked here independently where the rule is simple,
and by ``rules.check`` for the geometric ones) and be a fixed point of the engine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gravity.errors import RuleConflictError
from gravity.motion import angle_between, positions_at, keyframes_array, path_speed_deg_s
from gravity.plan.planner import plan
from gravity.request import Request
from gravity.rules import REGIONS, check, enforce
from gravity.schema import check_scene
from gravity.vocab import FLAT_FORMATS, LOW_CLASSES, STEM_CLASSES, TARGET_FORMATS

SETTINGS = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# 200 examples (the same ones every run) in the default tiers, 1000 under ``slow`` (30 s each)
EXAMPLES = [pytest.param(200, id="200"), pytest.param(1000, id="1000", marks=pytest.mark.slow)]


def _in_boxes(az: float, el: float, boxes: Any) -> bool:
    for a0, a1, e0, e1 in boxes:
        span = a1 - a0 if a1 >= a0 else a1 - a0 + 360
        if ((az - a0) % 360 <= span or span >= 360) and e0 <= el <= e1:
            return True
    return False


@st.composite
def witness_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request whose rules a hidden grouped witness scene satisfies."""
    fmt = draw(st.sampled_from(TARGET_FORMATS))
    flat = fmt in FLAT_FORMATS
    n = draw(st.integers(1, 8))
    stems = []
    for i in range(n):
        s: dict[str, Any] = {"id": f"s{i}", "class": draw(st.sampled_from(STEM_CLASSES))}
        if draw(st.booleans()):
            b = [draw(st.floats(0.01, 1.0)) for _ in range(3)]
            s["band_energy"] = {k: round(v / sum(b), 3) for k, v in zip(("low", "mid", "high"), b, strict=True)}
        if draw(st.booleans()):
            s["leadness"] = draw(st.floats(0, 1))
        stems.append(s)
    budget = draw(st.integers(1, n + 2))
    group_of = [draw(st.integers(0, min(budget, n) - 1)) for _ in range(n)]
    mono = draw(st.booleans())

    def band(s: dict[str, Any]) -> np.ndarray:
        from gravity.vocab import CLASS_DEFAULTS

        be = s.get("band_energy")
        v = np.array([be["low"], be["mid"], be["high"]]) if be else np.array(CLASS_DEFAULTS[s["class"]].band)
        return v / v.sum()

    def is_low(s: dict[str, Any]) -> bool:
        return s["class"] in LOW_CLASSES or band(s)[0] >= 0.6

    groups = sorted(set(group_of))
    pos: dict[int, tuple[float, float, float]] = {}
    for g in groups:
        members = [stems[i] for i in range(n) if group_of[i] == g]
        if mono and any(is_low(s) for s in members):
            pos[g] = (0.0, 0.0, 2.0)
        else:
            el = draw(st.integers(-40, 0 if flat else 80))
            pos[g] = (float(draw(st.integers(-179, 180))), float(el), round(draw(st.floats(0.5, 20)), 2))
    width = {g: (0.0 if pos[g][:2] == (0.0, 0.0) and mono else round(draw(st.floats(0, 1)), 2)) for g in groups}

    rules: list[dict[str, Any]] = []
    if mono:
        rules.append({"type": "mono_low_end", "hz_below": draw(st.integers(60, 200))})
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(
            st.sampled_from(["anchor", "width", "zone", "motion", "max_elevation", "avoid_masking", "max_objects"])
        )
        i = draw(st.integers(0, n - 1))
        by_class = draw(st.booleans())
        sel = {"track_class": stems[i]["class"]} if by_class else {"track_id": stems[i]["id"]}
        hit = [group_of[k] for k in range(n) if (stems[k]["class"] == stems[i]["class"] if by_class else k == i)]
        if kind == "anchor":
            if by_class and len(set(hit)) > 1:
                continue
            az, el, d = pos[group_of[i]]
            r = {"type": "anchor", **sel, "az_deg": az}
            if draw(st.booleans()):
                r["el_deg"] = el
            if draw(st.booleans()):
                r["dist_m"] = d
            if draw(st.booleans()):
                r["tolerance_deg"] = draw(st.integers(0, 20))
            rules.append(r)
        elif kind == "width":
            w = [width[g] for g in hit]
            rules.append(
                {
                    "type": "width",
                    **sel,
                    "min": round(min(w) * draw(st.floats(0, 1)), 2),
                    "max": round(max(w) + (1 - max(w)) * draw(st.floats(0, 1)), 2),
                }
            )
        elif kind == "zone":
            if draw(st.booleans()):
                region = draw(st.sampled_from(sorted(REGIONS)))
                boxes, spec = REGIONS[region], {"region": region}
            else:
                a0, a1 = draw(st.integers(-180, 180)), draw(st.integers(-180, 180))
                e0 = draw(st.integers(-90, 90))
                e1 = draw(st.integers(e0, 90))
                boxes, spec = ((a0, a1, e0, e1),), {"az_min": a0, "az_max": a1, "el_min": e0, "el_max": e1}
            inside = [_in_boxes(pos[g][0], pos[g][1], boxes) for g in hit]
            # keep a margin from the box edges so the witness is strictly inside / outside
            near = any(
                _in_boxes(pos[g][0] + da, pos[g][1] + de, boxes) != inside[k]
                for k, g in enumerate(hit)
                for da, de in ((1, 0), (-1, 0), (0, 1), (0, -1))
            )
            if near or (any(inside) and not all(inside)):
                continue
            rules.append({"type": "zone", **sel, "mode": "inside" if inside[0] else "outside", **spec})
        elif kind == "motion":
            r = {"type": "motion", **sel, "allow": draw(st.booleans())}
            if draw(st.booleans()):
                r["max_deg_per_s"] = draw(st.integers(1, 720))
            rules.append(r)
        elif kind == "max_elevation":
            rules.append(
                {
                    "type": "max_elevation",
                    "max_deg": min(90.0, max(pos[g][1] for g in groups) + draw(st.integers(0, 30))),
                }
            )
        elif kind == "max_objects":
            rules.append({"type": "max_objects", "max": draw(st.integers(len(groups), len(groups) + 3))})
        elif kind == "avoid_masking":
            r: dict[str, Any] = {"type": "avoid_masking"}
            scope = list(range(n))
            if draw(st.booleans()):
                cls = sorted({stems[k]["class"] for k in draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3))})
                r["classes"] = cls
                scope = [k for k in range(n) if stems[k]["class"] in cls]
            sband = {k: int(np.argmax(band(stems[k]))) for k in scope}
            pairs = [
                (x, y)
                for x in scope
                for y in scope
                if x < y
                and sband[x] == sband[y]
                and ("classes" in r or not (mono and is_low(stems[x]) and is_low(stems[y])))
            ]
            if any(group_of[x] == group_of[y] for x, y in pairs):
                continue  # same-band stems sharing a witness object: keep the witness simple
            seps = [
                angle_between(pos[group_of[x]][0], pos[group_of[x]][1], pos[group_of[y]][0], pos[group_of[y]][1])
                for x, y in pairs
            ]
            if seps and min(seps) < 2:
                continue
            r["min_sep_deg"] = round(min([120.0, *seps]) * draw(st.floats(0.05, 0.9)), 1)
            rules.append(r)
    return {
        "target_format": fmt,
        "max_objects": budget,
        "style": draw(st.sampled_from(["pop", "club", "ambient", "jazz"])),
        "section": draw(st.sampled_from(["intro", "verse", "chorus", "drop", "build"])),
        "global": {
            "bpm": draw(st.integers(60, 180)),
            "energy": draw(st.floats(0, 1)),
            "section_bars": draw(st.sampled_from([1, 4, 8, 16])),
        },
        "stems": stems,
        "rules": rules,
    }


HOSTILE_VALUES = [math.nan, math.inf, -math.inf, 1e9, -1e9, 999, -999, "left", None, True, [], {}]


@st.composite
def hostile_proposals(draw: st.DrawFn, request: Request) -> Any:
    """Start from the planner's proposal and break it."""
    if draw(st.integers(0, 20)) == 0:
        return draw(st.sampled_from([None, [], "scene", {"objects": "x"}, {}]))
    prop = plan(request, seed=draw(st.integers(0, 3)))
    objs = prop["objects"]
    for o in list(objs):
        roll = draw(st.integers(0, 9))
        if roll == 0:
            objs.remove(o)  # missing stem
        elif roll == 1:
            o[
                draw(
                    st.sampled_from(
                        ["az_deg", "el_deg", "dist_m", "width", "gain_db", "reverb_send", "early_reflections"]
                    )
                )
            ] = draw(st.sampled_from(HOSTILE_VALUES))
        elif roll == 2:
            o["motion"] = draw(
                st.sampled_from(
                    [
                        None,
                        "orbit",
                        [],
                        [{"t": math.nan}],
                        [{"t": t / 300, "az_deg": t * 37.0, "el_deg": 95.0, "dist_m": 0.1} for t in range(300)],
                        [
                            {"t": 1, "az_deg": 90, "el_deg": 0, "dist_m": 2},
                            {"t": 0.5, "az_deg": -90, "el_deg": 45, "dist_m": 3},
                        ],
                    ]
                )
            )
        elif roll == 3:
            objs.append(dict(o))  # duplicate object
        elif roll == 4:
            o["class"] = "kazoo"
    if draw(st.booleans()):
        objs.append(
            {
                "id": "ghost",
                "class": "pad",
                "az_deg": 999,
                "el_deg": 0,
                "dist_m": 1,
                "width": 0,
                "gain_db": 0,
                "reverb_send": 0,
                "early_reflections": 0,
            }
        )
    if draw(st.booleans()):
        objs.extend({"id": f"extra{k}", "stems": ["nope"], "az_deg": 0} for k in range(draw(st.integers(1, 60))))
    if draw(st.integers(0, 3)) == 0 and len(objs) > 1:
        objs[0]["stems"] = [s.id for s in request.stems]  # one object claims every stem
    return prop


def _assert_hard_rules(req: Request, scene: dict[str, Any]) -> None:
    """Independent checks of the simple rules (no engine code involved)."""
    assert check_scene(scene) == []
    members = [m for o in scene["objects"] for m in o.get("stems", [o["id"]])]
    assert sorted(members) == sorted(s.id for s in req.stems), "every stem in exactly one object"
    assert len(scene["objects"]) <= req.budget
    stems = {s.id: s for s in req.stems}
    for o in scene["objects"]:
        ms = [stems[m] for m in o.get("stems", [o["id"]])]
        kf = keyframes_array(o["motion"])
        pos = positions_at(kf, np.linspace(0, 1, 101))
        assert o["az_deg"] == o["motion"][0]["az_deg"] and o["el_deg"] == o["motion"][0]["el_deg"]
        if not req.has_height:
            assert kf[:, 2].max() <= 0.1
        for r in req.rules:
            hit = any(r.get("track_id", s.id) == s.id and r.get("track_class", s.cls) == s.cls for s in ms)
            if r["type"] == "anchor" and hit:
                err = (
                    angle_between(pos[:, 0], pos[:, 1], r["az_deg"], r["el_deg"])
                    if "el_deg" in r
                    else np.abs((pos[:, 0] - r["az_deg"] + 180) % 360 - 180)
                )
                assert np.max(err) <= r.get("tolerance_deg", 0) + 0.11, (o, r)
                if "dist_m" in r:
                    assert np.all(np.abs(kf[:, 3] - r["dist_m"]) <= r.get("tolerance_m", 0) + 0.006)
            elif r["type"] == "mono_low_end" and any(s.cls in LOW_CLASSES or s.band[0] >= 0.6 for s in ms):
                assert np.all(kf[:, 1:3] == 0) and o["width"] == 0, o
            elif r["type"] == "width" and hit:
                assert r.get("min", 0) - 1e-9 <= o["width"] <= r.get("max", 1) + 1e-9
            elif r["type"] == "max_elevation" and hit:
                assert kf[:, 2].max() <= r["max_deg"] + 0.1
            elif r["type"] == "motion" and hit:
                if not r.get("allow", True):
                    assert np.all(kf[:, 1:] == kf[0, 1:])
                if "max_deg_per_s" in r:
                    assert path_speed_deg_s(kf, req.section_s) <= r["max_deg_per_s"] * 1.01
    assert check(req, scene) == []


@pytest.mark.parametrize("examples", EXAMPLES)
def test_feasible_requests_with_hostile_proposals(examples: int) -> None:
    @settings(SETTINGS, max_examples=examples)
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        doc = data.draw(witness_requests())
        req = Request.from_dict(doc)
        proposal = data.draw(hostile_proposals(req))
        try:
            result = enforce(req, proposal)
        except RuleConflictError as exc:  # the witness proves these rules can hold
            raise AssertionError(f"engine gave up on a feasible request: {exc}\n{doc}") from None
        _assert_hard_rules(req, result.scene)
        again = enforce(req, result.scene)
        assert again.scene == result.scene, "not idempotent"
        assert again.compliant, again.violations

    prop()


@pytest.mark.parametrize("examples", EXAMPLES)
def test_random_rule_sets_never_crash(examples: int) -> None:
    """Arbitrary (possibly impossible) rule sets: a compliant scene or a RuleConflictError."""

    @settings(SETTINGS, max_examples=examples)
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        doc = data.draw(witness_requests())
        n = len(doc["stems"])
        for _ in range(data.draw(st.integers(1, 3))):  # add rules the witness never saw
            i = data.draw(st.integers(0, n - 1))
            doc["rules"].append(
                data.draw(
                    st.sampled_from(
                        [
                            {
                                "type": "anchor",
                                "track_id": f"s{i}",
                                "az_deg": data.draw(st.integers(-179, 180)),
                                "el_deg": data.draw(st.integers(-90, 90)),
                            },
                            {
                                "type": "zone",
                                "track_id": f"s{i}",
                                "mode": data.draw(st.sampled_from(["inside", "outside"])),
                                "region": data.draw(st.sampled_from(sorted(REGIONS))),
                            },
                            {"type": "avoid_masking", "min_sep_deg": data.draw(st.integers(1, 120))},
                            {"type": "max_elevation", "max_deg": data.draw(st.integers(-90, 90))},
                            {"type": "mono_low_end", "hz_below": 100},
                        ]
                    )
                )
            )
        req = Request.from_dict(doc)
        try:
            result = enforce(req, data.draw(hostile_proposals(req)))
        except RuleConflictError as exc:
            conflict = exc
        else:
            _assert_hard_rules(req, result.scene)
            assert enforce(req, result.scene).scene == result.scene
            return
        assert conflict.issues and all(i.path for i in conflict.issues)

    prop()
