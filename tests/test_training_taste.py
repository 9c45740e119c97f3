"""A producer's taste (issue 20): the simulated producer of ``benchmarks/taste.py`` and
``gravity eval --edits DIR``, the angle from a proposer's scenes to the producer's edited ones.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bridge.ui.record import EditLog, edit_row
from gravity.errors import GravityError
from gravity.motion import wrap_az
from gravity.plan.planner import plan
from gravity.request import Request
from gravity.rules import check, enforce
from training.cli import main as training_main
from training.taste import ABOVE_EL_DEG, held_out_edits, moved_stems, producer, taste_targets


def _stem(sid: str, cls: str, low: float = 0.2, high: float = 0.3, lead: float = 0.2) -> dict[str, Any]:
    band = {"low": low, "mid": round(1.0 - low - high, 2), "high": high}
    return {"id": sid, "class": cls, "lufs": -18.0, "transient": 0.5, "band_energy": band, "leadness": lead}


def _request(**extra: Any) -> dict[str, Any]:
    stems = [
        _stem("vox", "lead_vocal", 0.1, 0.3, 0.95),
        _stem("kick", "kick", 0.7, 0.1),
        _stem("snare", "snare"),
        _stem("hh", "hihat", 0.05, 0.8),
        _stem("tom1", "tom", 0.4, 0.2),
        _stem("tom2", "tom", 0.4, 0.2),
        _stem("bv", "backing_vocal", 0.1, 0.3, 0.3),
        _stem("keys", "keys"),
    ]
    doc = {"target_format": "7.1.4", "max_objects": 8, "style": "pop", "section": "chorus", "stems": stems, "rules": []}
    doc.update(extra)
    return doc


def _obj(sid: str, cls: str, az: float, el: float, stems: list[str] | None = None) -> dict[str, Any]:
    o = {"id": sid, "class": cls, "az_deg": az, "el_deg": el, "dist_m": 2.0, "width": 0.2, "gain_db": 0.0,
         "reverb_send": 0.2, "early_reflections": 0.2}  # fmt: skip
    if stems:
        o["stems"] = stems
    return o


def _proposal(request: Request) -> dict[str, Any]:
    """A front-heavy, planner-like scene (drums and backing vocal in front), rules enforced."""
    objs = [
        _obj("vox", "lead_vocal", 0, 5),
        _obj("kick", "kick", 0, 0),
        _obj("snare", "snare", 3, -10),
        _obj("hh", "hihat", -30, 15),
        _obj("tom1", "tom", 25, 0),
        _obj("tom2", "tom", -50, 0),
        _obj("bv", "backing_vocal", 40, 10),
        _obj("keys", "keys", -70, 15),
    ]
    doc = {"version": "1.0", "bed": {"layout": "7.1.4", "loudness_target_lufs": -14.0, "room_preset": "studio_small"},
           "objects": objs}  # fmt: skip
    return dict(enforce(request, doc).scene)


def _by_stem(scene: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m: o for o in scene["objects"] for m in o.get("stems") or [o["id"]]}


def test_producer_moves_drums_around_and_backing_vocals_up() -> None:
    request = Request.from_dict(_request())
    proposed = _proposal(request)
    edited = producer(request, proposed)
    after, before = _by_stem(edited), _by_stem(proposed)
    # drums but the kick to the stated places (azimuth + = left, elevation), two toms on both sides
    for sid, (az, el) in {"snare": (90, 0), "hh": (-90, 10), "tom1": (100, 0), "tom2": (-100, 0)}.items():
        assert (after[sid]["az_deg"], after[sid]["el_deg"]) == (az, el), sid
    # the backing vocal goes up, its azimuth kept
    assert (after["bv"]["az_deg"], after["bv"]["el_deg"]) == (before["bv"]["az_deg"], ABOVE_EL_DEG)
    # everything else byte-identical, distances and mix fields of moved objects too
    for sid in ("vox", "kick", "keys"):
        assert json.dumps(after[sid], sort_keys=True) == json.dumps(before[sid], sort_keys=True)
    for sid in ("snare", "bv"):
        for k in ("dist_m", "width", "gain_db", "reverb_send", "early_reflections"):
            assert after[sid][k] == before[sid][k]
    assert check(request, edited) == []
    assert set(moved_stems(proposed, edited)) == {"snare", "hh", "tom1", "tom2", "bv"}
    assert moved_stems(proposed, edited)["bv"] == pytest.approx(40.0 - before["bv"]["el_deg"], abs=0.01)
    # a scene already to the producer's taste is not edited again
    assert producer(request, edited) == edited


def test_producer_obeys_the_rules_and_moves_objects_not_stems() -> None:
    # a height cap on backing vocals: the rule engine lowers the edit to the cap
    request = Request.from_dict(
        _request(rules=[{"type": "max_elevation", "track_class": "backing_vocal", "max_deg": 20}])
    )
    edited = producer(request, _proposal(request))
    assert _by_stem(edited)["bv"]["el_deg"] == 20.0
    assert check(request, edited) == []
    # an object holding a drum and the keys stays; one holding snare and hats goes to the snare's place
    req = Request.from_dict(_request(max_objects=6))
    objs = _proposal(Request.from_dict(_request()))["objects"]
    keep = {o["id"]: o for o in objs}
    grouped = copy.deepcopy(_proposal(Request.from_dict(_request())))
    grouped["objects"] = [keep["vox"], keep["kick"], dict(keep["snare"], stems=["snare", "hh"]),
                          dict(keep["tom1"], stems=["tom1", "keys"]), keep["tom2"], keep["bv"]]  # fmt: skip
    grouped = dict(enforce(req, grouped).scene)
    after = _by_stem(producer(req, grouped))
    assert (after["hh"]["az_deg"], after["hh"]["el_deg"]) == (90, 0)
    assert after["keys"] == _by_stem(grouped)["keys"]
    # in a flat layout the backing vocal cannot go up: the edit moves only the drums
    flat = Request.from_dict(_request(target_format="5.1"))
    assert "bv" not in moved_stems(_proposal(flat), producer(flat, _proposal(flat)))


def test_taste_targets_cycle_per_class() -> None:
    doc = _request()
    doc["stems"] += [_stem(f"p{i}", "percussion") for i in range(4)]
    t = taste_targets(Request.from_dict(doc))
    assert [t[f"p{i}"] for i in range(4)] == [(150, 0), (-150, 0), (180, 0), (150, 0)]
    assert "kick" not in t and "vox" not in t and t["bv"] == (None, ABOVE_EL_DEG)


def _write_log(folder: Path, moved_by: float = 90.0) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One edited section: the planner's scene, its snare dragged ``moved_by`` degrees in azimuth."""
    doc = _request()
    request = Request.from_dict(doc)
    proposed = dict(enforce(request, plan(request)).scene)
    edited = copy.deepcopy(proposed)
    snare = _by_stem(edited)["snare"]
    snare["az_deg"] = float(wrap_az(snare["az_deg"] + moved_by))
    snare.pop("motion", None)
    assert check(request, edited) == []
    row = edit_row(request=doc, proposed=proposed, edited=edited, proposer="planner", section="chorus",
                   edit={"id": "snare"}, when=0)  # fmt: skip
    EditLog(folder).append(row)
    return doc, proposed, edited


def test_eval_edits_planner_measures_the_known_angle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, proposed, _ = _write_log(tmp_path / "edits")
    el = np.radians(_by_stem(proposed)["snare"]["el_deg"])
    want = float(np.degrees(np.arccos(np.sin(el) ** 2)))  # 90 deg of azimuth at elevation el
    out = tmp_path / "r.json"
    args = ["eval", "--model", "planner", "--edits", str(tmp_path / "edits"), "--edits-split", "all", "--out", str(out)]
    assert training_main(args) == 0
    r = json.loads(out.read_text())
    n = len(_request()["stems"])
    # the planner proposes what was logged: now = before, the moved snare at the known angle
    for key in ("to_edit", "before"):
        assert r[key]["moved"] == {"mean": pytest.approx(want, abs=0.01), "median": pytest.approx(want, abs=0.01),
                                   "n": 1}  # fmt: skip
        assert r[key]["all"]["mean"] == pytest.approx(want / n, abs=0.01) and r[key]["all"]["median"] == 0.0
    assert r["rules_pass"] == 100.0 and r["edits"] == 1 and r["model"] == "planner"
    assert [s["stem"] for s in r["stems"] if s["moved"]] == ["snare"]
    assert 0.0 < r["critic"]["model"] <= 1.0 and r["critic"]["model"] == r["critic"]["proposed"]
    assert "angle to the producer" in capsys.readouterr().out
    assert out.with_suffix(".md").read_text().count("\n") == 3


def test_eval_edits_errors_and_skipped_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # no such folder: one line, non-zero
    assert training_main(["eval", "--model", "planner", "--edits", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a folder of edit logs" in err
    # --edits-split alone is a usage error (exit 2)
    assert training_main(["eval", "--model", "planner", "--edits-split", "all"]) == 2
    assert "--edits-split needs --edits" in capsys.readouterr().err
    # bad rows are skipped with their reason; the good one is scored
    folder = tmp_path / "edits"
    _write_log(folder)
    with (folder / "edits-000001.jsonl").open("a") as fh:
        fh.write('{"request": {"stems": "x"}, "proposed": {}, "edited": {}}\n{not json\n')
    with caplog.at_level(logging.WARNING):
        rows, stats = held_out_edits(folder, "all")
    assert len(rows) == 1 and stats["rows"] == 3 and sum(stats["skipped"].values()) == 2
    assert sum("skipped" in m for m in caplog.messages) == 2
    # the one edited section hashes to train (as gravity data --from-edits splits it): the default
    # val split has none and says how to score it anyway
    assert len(held_out_edits(folder, "train")[0]) == 1
    with pytest.raises(GravityError, match="no val edits.*--edits-split all"):
        held_out_edits(folder, "val")
    assert training_main(["eval", "--model", "planner", "--edits", str(folder)]) == 1
    assert "no val edits" in capsys.readouterr().err


@pytest.mark.llm
def test_eval_edits_with_the_shipped_model(tmp_path: Path, default_model: Any) -> None:
    from helpers import llm_view
    from training.evaluate import proposer
    from training.taste import score_edits

    _write_log(tmp_path / "edits")
    rows, _ = held_out_edits(tmp_path / "edits", "all")
    r = score_edits(rows, proposer(llm_view(default_model, temperature=0.0, pin_hints=False)), "shipped")
    # the model's own scene, rules enforced: every stem compared, the hard rules hold
    assert r["rules_pass"] == 100.0 and r["to_edit"]["all"]["n"] == len(_request()["stems"])
    assert r["before"]["moved"]["n"] == 1 and r["critic"]["model"] > 0.5
