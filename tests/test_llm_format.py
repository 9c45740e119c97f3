"""Prompt/output format: grammar bounds every number, encode/decode round-trips, patterns expand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gravity.motion import Motion, expand, keyframes_array
from gravity.pipeline import make_scene
from gravity.llm.format import RANGES, SYSTEM, AnswerError, compact_request, encode_scene, model_input, parse_answer
from gravity.llm.grammar import grammar, int_range
from gravity.motion import detect_motion
from gravity.request import Request
from gravity.rules import enforce

ROOT = Path(__file__).resolve().parent.parent


def gbnf_to_regex(expr: str) -> str:
    """Our int_range output uses only literals, [a-b] classes, grouping and '|'."""
    out = re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), expr)
    return out.replace(" ", "")


@pytest.mark.parametrize(("lo", "hi"), [*RANGES.values(), (0, 0), (-5, -1), (7, 7), (95, 1234), (-1000, 999)])
def test_int_range_matches_exactly_the_range(lo, hi):
    rx = re.compile(gbnf_to_regex(int_range(lo, hi)))
    for v in range(lo - 300, hi + 300):
        assert bool(rx.fullmatch(str(v))) == (lo <= v <= hi), v
    for bad in ("-0", "007", "+1", "1.5", ""):
        assert not rx.fullmatch(bad)


def band_request(n: int = 6, budget: int = 10, **kw) -> Request:
    classes = ["lead_vocal", "kick", "bass", "pad", "hihat", "arp", "fx", "guitar", "percussion", "strings"]
    stems = [{"id": f"{c}_{i}", "class": c} for i, c in enumerate(classes[:n])]
    return Request.from_dict(
        {
            "target_format": "7.1.4",
            "max_objects": budget,
            "style": "club",
            "section": "drop",
            "global": {"bpm": 124, "energy": 0.9, "section_bars": 8},
            "stems": stems,
            **kw,
        }
    )


def test_grammar_has_one_line_per_stem_and_caps_objects():
    req = band_request(5, budget=2)
    g = grammar(req)
    assert 'l0x0 ::= pos "\\n" l1x1' in g
    assert "l4x2 ::= " in g and not re.search(r"^l\d+x3 ", g, re.M)  # never a third object
    line = next(ln for ln in g.splitlines() if ln.startswith("l4x2 ::="))
    assert "pos" not in line and '">" ("1" | "2" | "3" | "4")' in line  # budget spent: only joins remain


def test_prompt_is_compact_and_stable():
    req = Request.from_dict(json.loads((ROOT / "examples/sample_input.json").read_text()))
    p = model_input(req)
    assert p.startswith("<|im_start|>system\n" + SYSTEM) and p.endswith("<|im_start|>assistant\n")
    text = compact_request(req)
    lines = text.splitlines()
    assert lines[0].startswith(f"fmt {req.target_format} max {req.budget} ") and lines[1].startswith("rules [")
    stem_lines = [ln for ln in lines[2:] if not ln.startswith("prompt: ")]
    assert [ln.split()[0] for ln in stem_lines] == [s.id for s in req.stems]  # one line per stem, in order
    assert all(re.fullmatch(r"\S+ \S+ -?\d+ \d{5}( \| .+)?", ln) for ln in stem_lines)
    assert "  " not in text and ": " not in text.replace("prompt: ", "")
    assert model_input(req) == p


@pytest.mark.parametrize(
    "motion",
    [
        Motion("static"),
        Motion("pan", {"from_az": 90, "to_az": -90}),
        Motion("orbit", {"direction": "cw", "period_bars": 4}),
        Motion("orbit", {"direction": "ccw", "period_bars": 2}),
        Motion("ping_pong", {"from_az": 60, "to_az": -60, "period_bars": 2}),
        Motion("rise", {"from_el": 0, "to_el": 60}),
        Motion("fall", {"from_el": 45, "to_el": 0}),
        Motion("approach", {"from_dist": 8, "to_dist": 1.5}),
        Motion("recede", {"from_dist": 2, "to_dist": 9}),
        Motion("fly_over", {"from_az": 0, "to_az": 180}),
    ],
)
def test_detect_motion_inverts_expand(motion):
    keys = expand(motion, (30.0, 10.0, 2.5), 8)
    found = detect_motion(keyframes_array(keys), 8)
    assert found.pattern == motion.pattern
    assert expand(found, (30.0, 10.0, 2.5), 8) == keys


def test_encode_decode_round_trip_through_the_rule_engine():
    req = band_request(10, budget=7, rules=[{"type": "mono_low_end", "hz_below": 120}])
    teacher = make_scene(req).scene
    text = encode_scene(teacher, req)
    assert text.count("\n") == 11 and "\n>" in text  # room + 10 stems, some grouped
    again = enforce(req, parse_answer(text, req)).scene
    assert [o.get("stems") for o in again["objects"]] == [o.get("stems") for o in teacher["objects"]]
    for a, b in zip(again["objects"], teacher["objects"], strict=True):
        ka, kb = keyframes_array(a["motion"]), keyframes_array(b["motion"])
        assert (
            len(ka) == len(kb)
            and np.allclose(ka[:, 1:3], kb[:, 1:3], atol=1.0)
            and np.allclose(ka[:, 3], kb[:, 3], atol=0.06)
        )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("", "empty"),
        ("room bathroom\n", "line 1"),
        ("room dry\n0 0 ten 000 0 s\n", "stem line 1"),
        ("room dry\n0 0 10 00 0 s\n", "stem line 1"),
        ("room dry\n0 0 10 000 0 spin\n", "line 1"),
        ("room dry\n>1\n", "stem line 1"),
        ("room dry\n0 0 10 000 0 s\n>2\n", "stem line 2"),
        ("room dry\n0 0 10 000 0 s\n0 0 10 000 0 s\n0 0 10 000 0 s\n", "3 stem lines for 2 stems"),
    ],
)
def test_decode_errors_say_where(text, where):
    with pytest.raises(AnswerError, match=where):
        parse_answer(text, band_request(2))


# ----------------------------------------------------------------------------- grammar holds the hard rules
def _alternatives(body: str) -> list[str]:
    """Top-level '|' alternatives of a GBNF rule body."""
    out, depth, start, quoted = [], 0, 0, False
    for i, c in enumerate(body):
        if c == '"' and (i == 0 or body[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and c in "()":
            depth += 1 if c == "(" else -1
        elif not quoted and c == "|" and depth == 0:
            out.append(body[start:i].strip())
            start = i + 1
    return out + [body[start:].strip()]


def accepts(gbnf: str, text: str) -> bool:
    """Whether the (non-recursive, line-per-state) grammar can produce exactly ``text``."""
    rules = dict(ln.split(" ::= ", 1) for ln in gbnf.strip().splitlines())

    def rx(expr: str) -> str:
        out = []
        for tok in re.findall(r'"(?:\\.|[^"\\])*"|\[[^\]]*\]|[A-Za-z_][A-Za-z0-9_]*|[()|]', expr):
            if tok[0] == '"':
                out.append(re.escape(json.loads(tok)))
            elif tok[0] == "[" or tok == "|":
                out.append(tok)
            elif tok in "()":
                out.append("(?:" if tok == "(" else ")")
            else:
                out.append(f"(?:{rx(rules[tok])})")
        return "".join(out)

    def walk(state: str, lines: list[str]) -> bool:
        for alt in _alternatives(rules[state]):
            m = re.fullmatch(r'(.*) "\\n"(?: (l\d+x\d+))?', alt)
            assert m, alt
            if lines and re.fullmatch(rx(m[1]), lines[0]) and (walk(m[2], lines[1:]) if m[2] else len(lines) == 1):
                return True
        return False

    head, *lines = text.rstrip("\n").split("\n")
    return bool(re.fullmatch(rx('"room " room'), head)) and walk("l0x0", lines)


def test_grammar_holds_anchors_centre_and_static_on_a_stems_own_line():
    req = band_request(
        4,
        budget=3,
        rules=[
            {"type": "mono_low_end", "hz_below": 120},
            {
                "type": "anchor",
                "track_class": "lead_vocal",
                "az_deg": 0,
                "el_deg": 0,
                "dist_m": 1.6,
                "tolerance_deg": 10,
            },
            {"type": "anchor", "track_class": "pad", "az_deg": 175, "tolerance_deg": 10},
        ],
    )
    g = grammar(req)  # stems: lead_vocal_0, kick_1, bass_2, pad_3; three objects
    ok = "room dry\n{v}\n0 0 20 011 0 s\n>2\n{p}\n"
    assert accepts(g, ok.format(v="-10 0 16 122 0 s", p="-176 12 40 555 -2 s"))
    assert accepts(g, ok.format(v="-8 6 16 122 0 s", p="166 -5 40 555 -2 s"))  # 10.0 deg off: inside the disc
    for v in ("11 0 16 122 0 s", "0 11 16 122 0 s", "-9 6 16 122 0 s", "0 0 17 122 0 s", "0 0 16 122 0 pan 0 10"):
        assert not accepts(g, ok.format(v=v, p="175 0 40 555 0 s")), v  # outside the anchor or moving
    for p in ("164 0 40 555 0 s", "-174 0 40 555 0 s", "175 0 40 555 0 orb cw 4"):
        assert not accepts(g, ok.format(v="0 0 16 122 0 s", p=p)), p
    # mono_low_end: the kick sits in the centre, static, width 0
    assert not accepts(g, "room dry\n0 0 16 122 0 s\n5 0 20 011 0 s\n>2\n175 0 40 555 0 s\n")
    assert not accepts(g, "room dry\n0 0 16 122 0 s\n0 0 20 111 0 s\n>2\n175 0 40 555 0 s\n")
    # the anchored pad must open its own object: the bass has to fold in to leave room for it
    assert not accepts(g, "room dry\n0 0 16 122 0 s\n0 0 20 011 0 s\n0 0 20 011 0 s\n>1\n")


def test_grammar_falls_back_when_anchors_outnumber_objects():
    req = band_request(
        3,
        budget=2,
        rules=[
            {"type": "anchor", "track_class": "kick", "az_deg": 0, "tolerance_deg": 5},
            {"type": "anchor", "track_class": "bass", "az_deg": 0, "tolerance_deg": 5},
        ],
    )
    # three stems, two objects, two anchored stems after the first: one of them has to fold in
    assert accepts(grammar(req), "room dry\n30 0 16 122 0 s\n0 0 16 122 0 s\n>1\n")  # the rule engine decides


def test_one_object_carries_the_limits_of_every_stem():
    req = band_request(
        3, budget=1, rules=[{"type": "anchor", "track_class": "kick", "az_deg": 0, "el_deg": 0, "dist_m": 1.0}]
    )
    g = grammar(req)  # lead_vocal_0 opens the only object; the anchored kick folds into it
    assert accepts(g, "room dry\n0 0 10 122 0 s\n>1\n>1\n")
    assert not accepts(g, "room dry\n180 0 10 122 0 s\n>1\n>1\n")


def test_grammar_pins_what_a_hint_states_where_the_rules_allow():
    from gravity.plan.planner import read_hints

    stems = [
        {"id": "vox", "class": "lead_vocal", "leadness": 1.0, "hint": "at 10 o'clock, 3 metres away"},
        {"id": "arp", "class": "arp", "leadness": 0.6, "hint": "bouncing between left and right every 2 bars"},
        {"id": "pad", "class": "pad", "leadness": 0.7, "hint": "behind me and very high"},
        {"id": "gtr", "class": "guitar", "leadness": 0.3, "hint": "moving away"},
        {"id": "kick", "class": "kick", "leadness": 0.2, "hint": "hard left"},
    ]
    doc = {
        "target_format": "7.1.4",
        "max_objects": 8,
        "stems": stems,
        "rules": [{"type": "mono_low_end", "hz_below": 120}],
    }
    req = Request.from_dict(doc)
    g = grammar(req, read_hints(req))
    ok = "room dry\n{v}\n{a}\n{p}\n{g}\n0 0 20 011 0 s\n"
    lines = {
        "v": "60 0 30 122 0 s",
        "a": "90 20 25 333 0 pp 90 -90 2",
        "p": "180 60 40 555 -2 s",
        "g": "-40 5 30 444 0 rec 30 80",
    }
    assert accepts(g, ok.format(**lines))
    # what the text leaves out takes the motion's defaults (a recede ends at 8 m), except where
    # it hangs on a position the text did not give (where the recede starts): the model's choice
    assert accepts(g, ok.format(**{**lines, "g": "-70 10 50 444 -1 rec 50 80"}))
    for k, bad in (
        ("v", "45 0 30 122 0 s"),
        ("v", "60 0 31 122 0 s"),
        ("v", "60 0 30 122 0 rec 30 80"),
        ("a", "90 20 25 333 0 pp 90 -90 4"),
        ("a", "90 20 25 333 0 pan 90 -90"),
        ("p", "180 40 40 555 -2 s"),
        ("g", "-40 5 30 444 0 s"),
        ("g", "-40 5 30 444 0 rec 30 90"),
    ):
        assert not accepts(g, ok.format(**{**lines, k: bad})), bad
    # mono_low_end holds the kick at the centre: its hint cannot move it (rules beat hints)
    assert not accepts(g, ok.format(**lines).replace("0 0 20 011 0 s", "90 0 20 011 0 s"))
    assert not accepts(g, ok.format(**{**lines, "p": ">2"}))  # a hinted stem keeps its own object...
    short = Request.from_dict({**doc, "max_objects": 3})
    gs = grammar(short, read_hints(short))  # ...as far as the budget allows: the most important first
    assert accepts(gs, "room dry\n{v}\n{a}\n{p}\n>3\n>1\n".format(**lines))
    assert not accepts(gs, "room dry\n{v}\n{a}\n>2\n{g}\n>1\n".format(**lines))
    assert grammar(req, {}) == grammar(req)


def test_teacher_targets_stay_inside_the_grammar():
    """Training targets (planner + labels + rule engine) are texts the grammar allows, so the
    model is not taught answers the runtime cannot sample. The one known exception: the engine
    may fold an anchored stem into an earlier object that it moves onto the anchor, where the
    grammar has the anchored stem open its own object (1 row in 1,500 measured).
    """
    from training.data import DataConfig, make_example

    rng = np.random.default_rng(7)
    cfg = DataConfig()
    outside = []
    for _ in range(300):
        ex = make_example(rng, "train", cfg)
        req = Request.from_dict(ex.request)
        if not accepts(grammar(req), ex.completion):
            outside.append((compact_request(req), ex.completion))
    assert len(outside) <= 3, outside


def test_a_reading_that_left_words_unread_is_not_pinned():
    """The parser reads "hard left" for both guitars of "split hard left and hard right" and
    leaves "right" unread: a guess, so the grammar leaves both guitars to the model; a clean
    reading of the same request ("the keys hard left") is still pinned.
    """
    from gravity.llm.runtime import exact_pins
    from gravity.plan.planner import read_hints

    stems = [{"id": i, "class": c} for i, c in (("gtr1", "guitar"), ("gtr2", "guitar"), ("keys", "keys"))]
    req = Request.from_dict(
        {
            "target_format": "7.1.4",
            "max_objects": 8,
            "stems": stems,
            "prompt": "guitars split hard left and hard right. the keys hard left",
        }
    )
    read = read_hints(req)
    assert read["gtr1"].az_deg == 90.0 and read["gtr1"].unread == ("right",) and not read["gtr1"].exact
    assert read["keys"].exact and set(exact_pins(req)) == {"keys"}
    g = grammar(req, exact_pins(req))
    assert accepts(g, "room dry\n90 0 30 333 0 s\n-90 0 30 333 0 s\n90 0 30 333 0 s\n")
    assert not accepts(g, "room dry\n90 0 30 333 0 s\n-90 0 30 333 0 s\n-90 0 30 333 0 s\n")  # keys pinned


def test_grammar_pins_the_ends_the_planner_writes_and_a_depth_move_moves():
    """The pin for "up high, rising up" is the planner's rise from 15 to 60 deg (the asked
    height is an end), not the default 0 -> 45; "fading off into the distance" gives no
    distance: the recede ends at 8 m and must start nearer (the model wrote "rec 80 80").
    """
    stems = [
        {"id": "hh", "class": "hihat", "hint": "ahead of the listener, fading off into the distance"},
        {"id": "pad", "class": "pad", "hint": "up high, rising up"},
    ]
    req = Request.from_dict({"target_format": "7.1.4", "max_objects": 4, "stems": stems})
    from gravity.plan.planner import read_hints

    g = grammar(req, read_hints(req))
    ok = "room dry\n0 0 {d} 333 0 rec {d} 80\n30 15 30 333 0 rise 15 60\n"
    assert accepts(g, ok.format(d=27))
    assert not accepts(g, ok.format(d=80))  # a still "recede"
    assert not accepts(g, "room dry\n0 0 27 333 0 rec 27 80\n30 0 30 333 0 rise 0 45\n")
    pad = next(o for o in make_scene(req, planner="planner").scene["objects"] if o["id"] == "pad")
    assert [k["el_deg"] for k in pad["motion"]] == [15.0, 60.0]
