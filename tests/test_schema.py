"""Schemas: the seed examples validate unchanged; bad documents name the JSON path."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from gravity import vocab
from gravity.schema import check_document, check_request, check_scene, schema

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_IN = json.loads((ROOT / "examples/sample_input.json").read_text())
SAMPLE_OUT = json.loads((ROOT / "examples/sample_output.json").read_text())


def paths(issues):
    return {i.path for i in issues}


def test_seed_examples_validate_unchanged():
    assert check_request(SAMPLE_IN) == []
    assert check_scene(SAMPLE_OUT) == []
    assert check_document(SAMPLE_IN)[0] == "request" and check_document(SAMPLE_OUT)[0] == "scene"


def test_schema_enums_match_vocab():
    req, scn = schema("request"), schema("scene")
    assert req["$defs"]["stem"]["properties"]["class"]["enum"] == list(vocab.STEM_CLASSES)
    assert req["properties"]["target_format"]["enum"] == list(vocab.TARGET_FORMATS)
    assert req["properties"]["section"]["enum"] == list(vocab.SECTIONS)
    assert req["properties"]["style"]["enum"] == list(vocab.STYLES)
    assert scn["properties"]["bed"]["properties"]["room_preset"]["enum"] == list(vocab.ROOM_PRESETS)
    assert scn["$defs"]["object"]["properties"]["class"]["enum"] == list(vocab.STEM_CLASSES)


def test_every_number_has_range_and_unit():
    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "number" and where.split("/")[-1] not in ("low", "mid", "high"):
                assert ("minimum" in node or "exclusiveMinimum" in node) and "maximum" in node, where
            for k, v in node.items():
                walk(v, f"{where}/{k}")

    walk(schema("request"), "request")
    walk(schema("scene"), "scene")
    obj = schema("scene")["$defs"]["object"]["properties"]
    for key, unit in (("az_deg", "degrees"), ("el_deg", "degrees"), ("dist_m", "metres"), ("gain_db", "dB")):
        assert unit in obj[key]["description"], key


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["stems"][0].update(colour="red"), "stems[0].colour"),
        (lambda d: d["stems"][1].update({"class": "kik"}), "stems[1].class"),
        (lambda d: d["stems"][0]["band_energy"].update(low="lots"), "stems[0].band_energy.low"),
        (lambda d: d.update(max_objects=0), "max_objects"),
        (lambda d: d["global"].update(bpm=math.nan), "global.bpm"),
        (lambda d: d["rules"][0].update(az_deg=270), "rules[0].az_deg"),
        (lambda d: d["rules"][0].pop("track_class"), "rules[0]"),
        (lambda d: d["rules"].append({"type": "teleport"}), "rules[2].type"),
        (lambda d: d["rules"].append({"type": "width", "track_class": "pad", "min": 0.8, "max": 0.2}), "rules[2]"),
        (lambda d: d["rules"].append({"type": "anchor", "track_id": "nobody", "az_deg": 0}), "rules[2].track_id"),
        (lambda d: d["stems"].append(dict(d["stems"][0])), "stems[2].id"),
        (lambda d: d["rules"].append({"type": "zone", "track_class": "pad", "mode": "inside"}), "rules[2]"),
    ],
)
def test_bad_requests_name_the_path(mutate, path):
    doc = copy.deepcopy(SAMPLE_IN)
    mutate(doc)
    issues = check_request(doc)
    assert path in paths(issues), [i.format() for i in issues]


def test_unknown_class_suggests_the_fix():
    doc = copy.deepcopy(SAMPLE_IN)
    doc["stems"][1]["class"] = "kik"
    (issue,) = check_request(doc)
    assert "did you mean 'kick'" in issue.message


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["objects"][0].update(az_deg=-180), "objects[0].az_deg"),
        (lambda d: d["objects"][0].update(el_deg=91), "objects[0].el_deg"),
        (lambda d: d["objects"][0].update(dist_m=math.inf), "objects[0].dist_m"),
        (lambda d: d["objects"][0]["motion"][1].update(t=1.5), "objects[0].motion[1].t"),
        (lambda d: d["objects"].append(dict(d["objects"][0])), "objects[1].id"),
        (lambda d: d["objects"][0]["motion"].reverse(), "objects[0].motion"),
        (lambda d: d["bed"].update(room_preset="bathroom"), "bed.room_preset"),
    ],
)
def test_bad_scenes_name_the_path(mutate, path):
    doc = copy.deepcopy(SAMPLE_OUT)
    mutate(doc)
    assert path in paths(check_scene(doc))


def test_not_a_document():
    kind, issues = check_document([1, 2])
    assert kind is None and issues[0].path == "$"
