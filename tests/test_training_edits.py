"""The producer's edits as training data (issue 20): ``gravity data OUT --from-edits DIR`` turns the
live UI's edit log into SFT rows (edited scene as target) and DPO pairs (edited = chosen,
proposed = rejected), one per edited section, skipping what is not a valid row.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bridge.ui.record import edit_row
from gravity.llm.format import encode_scene, model_input
from gravity.plan.planner import plan
from gravity.request import Request
from gravity.rules import enforce
from helpers import LIVE_REQUEST
from training.data import load_rows
from training.edits import write_edit_data

ROOT = Path(__file__).resolve().parent.parent


def _proposed(doc: dict[str, Any]) -> dict[str, Any]:
    req = Request.from_dict(doc)
    return dict(enforce(req, plan(req)).scene)


def _moved(scene: dict[str, Any], oid: str, az: float) -> dict[str, Any]:
    out = copy.deepcopy(scene)
    o = next(o for o in out["objects"] if o["id"] == oid)
    o["az_deg"] = az
    o.pop("motion", None)  # dragged: static where it was put
    return out


def _log(folder: Path) -> dict[str, Any]:
    """Two sections of one song: the verse edited twice (two rows, the second carrying both
    edits), the chorus once; then rows that must be skipped.
    """
    verse = dict(LIVE_REQUEST, section="verse")
    chorus = dict(LIVE_REQUEST, section="chorus", prompt="wide and open")
    pv, pc = _proposed(verse), _proposed(chorus)
    first = _moved(pv, "k1", 20.0)
    both = copy.deepcopy(first)
    next(o for o in both["objects"] if o["id"] == "v1")["gain_db"] = 3.0
    chorus_edit = _moved(pc, "v1", 15.0)
    rows = [
        edit_row(request=verse, proposed=pv, edited=first, proposer="planner", section="verse", edit={"id": "k1"}),
        edit_row(request=verse, proposed=pv, edited=both, proposer="planner", section="verse", edit={"id": "v1"}),
        edit_row(request=chorus, proposed=pc, edited=chorus_edit, proposer="llm", section="chorus", edit={"id": "v1"}),
    ]
    lines = [json.dumps(r) for r in rows]
    bad_scene = copy.deepcopy(rows[0])
    bad_scene["edited"]["objects"][0]["az_deg"] = 999
    lines += ["{not json", json.dumps({"request": {"stems": "x"}, "proposed": {}, "edited": {}}), json.dumps(bad_scene),
              "[" * 100_000, json.dumps([1, 2])]  # fmt: skip
    folder.mkdir()
    (folder / "edits-000001.jsonl").write_text("\n".join(lines) + "\n")
    os.mkfifo(folder / "edits-000002.jsonl")  # a FIFO would block a reader that opened it
    (folder / "notes.txt").write_text("not a log")
    return {"verse": (verse, pv, both), "chorus": (chorus, pc, chorus_edit)}


def test_edits_become_sft_rows_and_pairs_one_per_edited_section(tmp_path):
    made = _log(tmp_path / "edits")
    man = write_edit_data(tmp_path / "edits", tmp_path / "data")
    assert man["read"]["rows"] == 8 and man["read"]["groups"] == 2 and sum(man["read"]["skipped"].values()) == 5
    assert man["read"]["files"] == ["edits-000001.jsonl"]  # the FIFO and the other file were not read
    sft = load_rows(tmp_path / "data" / "train.jsonl") + load_rows(tmp_path / "data" / "val.jsonl")
    pairs = load_rows(tmp_path / "data" / "pairs_train.jsonl") + load_rows(tmp_path / "data" / "pairs_val.jsonl")
    assert len(sft) == 2 and len(pairs) == 2
    assert man["counts"]["pairs_val"] >= 1  # a DPO run evaluates on validation pairs
    for name in ("verse", "chorus"):
        doc, proposed, edited = made[name]
        req = Request.from_dict(doc)
        row = next(r for r in sft if r["prompt"] == model_input(req))
        assert row["completion"] == encode_scene(edited, req)  # the last row of the section: every edit
        pair = next(p for p in pairs if p["prompt"] == model_input(req))
        assert (pair["chosen"], pair["rejected"]) == (encode_scene(edited, req), encode_scene(proposed, req))
    # deterministic: the same logs give the same bytes
    again = write_edit_data(tmp_path / "edits", tmp_path / "again")
    assert again["sha256"] == man["sha256"]


def test_gravity_data_from_edits_cli(tmp_path):
    _log(tmp_path / "edits")
    run = [sys.executable, "-m", "gravity", "data", str(tmp_path / "out"), "--from-edits", str(tmp_path / "edits")]
    r = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert counts["train"] + counts["val"] == 2 and counts["pairs_train"] + counts["pairs_val"] == 2
    # nothing usable: one line naming the folder, exit 1, nothing written
    (tmp_path / "empty").mkdir()
    r = subprocess.run(run[:4] + [str(tmp_path / "none"), "--from-edits", str(tmp_path / "empty")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)  # fmt: skip
    assert r.returncode == 1 and "no usable edits" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())
    r = subprocess.run(run + ["--set", "n_train=5"], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert r.returncode == 2 and "--from-edits" in r.stderr


@pytest.mark.parametrize("what", ["missing", "file"])
def test_from_edits_needs_a_folder(tmp_path, what):
    src = tmp_path / "edits"
    if what == "file":
        src.write_text("x")
    from gravity.errors import GravityError

    with pytest.raises(GravityError, match="not a folder of edit logs"):
        write_edit_data(src, tmp_path / "out")
