"""Tests for text that understands groups, negation and scene-wide words (issue 16, part 3):
gravity.plan.hint (avoid, max_width, the side of an unsigned angle, the value table),
gravity.plan.prompt (instrument words, stem-id words, ensembles, scene-wide exclusions) and
gravity.plan.scene_words.
"""

from __future__ import annotations

import re

import pytest

import gravity.plan.hint as hint_module
from gravity.plan import Placement, SceneWords, parse_hint, parse_prompt, parse_scene_words
from gravity.plan import conventions as C
from gravity.plan.prompt import scene_clauses

POP = [
    ("vox", "lead_vocal"),
    ("bgv_hi", "backing_vocal"),
    ("bgv_lo", "backing_vocal"),
    ("kick", "kick"),
    ("snare", "snare"),
    ("oh", "overheads"),
    ("room_mics", "room_mic"),
    ("bass", "bass"),
    ("gtr_l", "guitar"),
    ("gtr_r", "guitar"),
    ("pad", "pad"),
    ("whoosh_01", "fx"),
    ("riser", "riser"),
]
ORCH = [
    ("vln1", "strings"),
    ("vln2", "strings"),
    ("vla", "strings"),
    ("vc", "strings"),
    ("cb", "strings"),
    ("hn", "brass"),
    ("tpt", "brass"),
    ("fl", "woodwind"),
    ("choir", "choir"),
    ("taiko_l", "percussion"),
    ("taiko_r", "percussion"),
    ("timp", "percussion"),
    ("celesta", "bell"),
    ("vox", "lead_vocal"),
]


def ids(out: dict[str, Placement]) -> set[str]:
    return set(out)


# --- negation and exclusion ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "avoid"),
    [
        ("nothing behind me", ("rear",)),
        ("not behind", ("rear",)),
        ("keep it out of the rear", ("rear",)),
        ("nothing above", ("above",)),
        ("no height", ("above",)),
        ("keep the pads out of the height", ("above",)),
        ("not on the left", ("left",)),
        ("don't put anything on the left", ("left",)),
        ("keep it off the floor", ("below",)),
        ("nothing in front of me", ("front",)),
        ("nothing on the sides", ("sides",)),
        ("not behind me and nothing above", ("rear", "above")),
    ],
)
def test_negated_region_is_avoided_and_never_placed(text: str, avoid: tuple[str, ...]) -> None:
    p = parse_hint(text)
    assert p.avoid == avoid
    assert p.az_deg is None and p.el_deg is None  # the negated words place nothing


def test_negated_direction_then_a_direction() -> None:
    p = parse_hint("not on the left, on the right")
    assert (p.az_deg, p.avoid) == (-90.0, ("left",))
    p = parse_hint("nothing behind me, slightly above")
    assert (p.az_deg, p.el_deg, p.avoid) == (None, 20.0, ("rear",))


def test_not_too_far_left_is_still_a_slight_side_not_a_negation() -> None:
    assert parse_hint("not too far left") == Placement(az_deg=20.0, matched=("not too far left",))
    assert parse_hint("not hard right").az_deg == -20.0


@pytest.mark.parametrize(
    ("text", "cap"),
    [
        ("not too wide", 0.5),
        ("not very wide", 0.5),
        ("not huge", 0.5),
        ("not wide", 0.35),
        ("keep it narrow-ish", 0.35),
        ("fairly narrow", 0.35),
    ],
)
def test_width_caps(text: str, cap: float) -> None:
    p = parse_hint(text)
    assert p.max_width == cap and p.width is None  # a cap, not a set point
    assert not p.is_empty()


def test_not_too_narrow_is_still_a_medium_width() -> None:
    assert parse_hint("not too narrow").width == 0.5 and parse_hint("not too narrow").max_width is None


def test_scene_wide_exclusions_cover_every_stem() -> None:
    out = parse_prompt("nothing behind me", POP)
    assert ids(out) == {s for s, _ in POP}
    assert all(p.avoid == ("rear",) and p.az_deg is None for p in out.values())
    out = parse_prompt("Don't put anything on the left.", POP)
    assert all(p.avoid == ("left",) and p.az_deg is None for p in out.values()) and len(out) == len(POP)
    out = parse_prompt("Vocals front and centre, nothing behind me", POP)
    assert out["vox"].az_deg == 0.0 and out["vox"].avoid == ("rear",)
    assert out["pad"].avoid == ("rear",) and out["pad"].az_deg is None


def test_exclusion_of_one_stem_leaves_the_others() -> None:
    out = parse_prompt("keep the pads out of the height, the guitars wide", POP)
    assert out["pad"].avoid == ("above",) and out["pad"].el_deg is None
    assert out["gtr_l"].avoid == () and out["gtr_l"].width == 0.8
    assert "vox" not in out


def test_a_sentence_of_its_own_is_scene_wide_or_about_the_last_subject() -> None:
    out = parse_prompt("The pads wide. No height.", POP)  # a negation opens it: every stem
    assert len(out) == len(POP) and all(p.avoid == ("above",) for p in out.values())
    assert out["pad"].width == 0.8
    out = parse_prompt("The pads wide. Keep them out of the height.", POP)  # a pronoun: the pads
    assert set(out) == {"pad"} and out["pad"].avoid == ("above",)
    out = parse_prompt("The pads wide. Huge and enveloping.", POP)  # scene words: no stem
    assert set(out) == {"pad"} and out["pad"].width == 0.8


@pytest.mark.parametrize("text", ["no motion", "No motion.", "nothing moves", "keep everything still"])
def test_static_everywhere(text: str) -> None:
    out = parse_prompt(text, POP)
    assert len(out) == len(POP)
    assert all(p.motion is not None and p.motion.pattern == "static" for p in out.values())


def test_nothing_else_moves_spares_the_named_movers() -> None:
    out = parse_prompt("the whooshes fly over my head, nothing else moves", POP)
    assert out["whoosh_01"].motion.pattern == "fly_over"
    assert out["riser"].motion.pattern == "static" and out["vox"].motion.pattern == "static"


def test_a_stems_own_position_beats_a_scene_wide_exclusion() -> None:
    out = parse_prompt("nothing behind me; backing vocals behind me", POP)
    assert out["bgv_hi"].az_deg == 180.0 and out["bgv_hi"].avoid == ()
    assert out["gtr_l"].avoid == ("rear",)


def test_merged_settles_position_against_exclusion_for_the_later_text() -> None:
    behind = parse_hint("behind me")
    later_not = behind.merged(parse_hint("not behind"))
    assert later_not.az_deg is None and later_not.avoid == ("rear",)
    later_behind = parse_hint("not behind").merged(behind)
    assert later_behind.az_deg == 180.0 and later_behind.avoid == ()
    # an exclusion on another axis keeps the position
    both = behind.merged(parse_hint("no height"))
    assert both.az_deg == 180.0 and both.avoid == ("above",)
    # the later of a width and a cap wins
    assert parse_hint("very wide").merged(parse_hint("not too wide")).width == 0.5
    capped = parse_hint("not too wide").merged(parse_hint("very wide"))
    assert (capped.width, capped.max_width) == (1.0, None)


# --- the side of an unsigned angle ----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "az", "el"),
    [
        ("right side, 100 degrees, just behind the ear", -100.0, None),
        ("left side, 120 degrees", 120.0, None),
        ("100 degrees on the right", -100.0, None),
        ("right, 30 degrees up", -90.0, 30.0),
        ("on the right at 45", -45.0, None),
        ("150 degrees, behind me on the right", -150.0, None),
        ("120 degrees", 120.0, None),  # no side named: the house convention, + = left
        ("at 2 o'clock, on the right", -60.0, None),  # a clock position has its own side
        ("-30 degrees, on the left", -30.0, None),  # a signed angle keeps its sign
    ],
)
def test_unsigned_angle_takes_the_named_side(text: str, az: float, el: float | None) -> None:
    p = parse_hint(text)
    assert p.az_deg == az and p.el_deg == el


def test_the_side_sign_holds_in_prompts() -> None:
    out = parse_prompt("the pad: right side, 100 degrees, just behind the ear", POP)
    assert out["pad"].az_deg == -100.0


# --- group nouns, instrument words, stem-id words ---------------------------------------------
@pytest.mark.parametrize(
    ("text", "stems", "want"),
    [
        ("the strings on the left", ORCH, {"vln1", "vln2", "vla", "vc", "cb"}),
        ("the violins on the left", ORCH, {"vln1", "vln2"}),
        ("the celli in front", ORCH, {"vc"}),
        ("the double basses in front", ORCH, {"cb"}),
        ("the horns behind", ORCH, {"hn"}),
        ("the trumpets behind", ORCH, {"tpt"}),
        ("the flutes above", ORCH, {"fl"}),
        ("taikos behind me", ORCH, {"taiko_l", "taiko_r"}),
        ("timpani far behind", ORCH, {"timp"}),
        ("the marimba on the right", ORCH, {"celesta"}),  # a mallet instrument: the bell class
        ("the orchestra in front", ORCH, {s for s, _ in ORCH} - {"vox", "celesta"}),
        ("the room mics above me", POP, {"room_mics"}),
        ("whooshes flying over my head", POP, {"whoosh_01"}),
        ("drums behind me", POP, {"kick", "snare", "oh", "room_mics"}),
        ("backing vocals behind me", POP, {"bgv_hi", "bgv_lo"}),
        ("the band behind me", POP, {s for s, c in POP if c not in ("lead_vocal", "backing_vocal")}),
        ("the 808 low", [("808", "sub"), ("k", "kick")], {"808"}),
        ("the pads wide", [("pad_x", "other"), ("k", "kick")], {"pad_x"}),  # an id word, a generic class
        ("congas on the left", [("perc1", "percussion"), ("k", "kick")], {"perc1"}),  # no id: its class
        ("the sweeps rise", POP, {"riser"}),
    ],
)
def test_group_nouns_select_the_right_stems(text: str, stems: list[tuple[str, str]], want: set[str]) -> None:
    assert ids(parse_prompt(text, stems)) == want


def test_room_mics_above_me_does_not_lift_the_guitars() -> None:
    for text in (
        "the guitars on the sides and the room mics above me",
        "guitars doubled, room mics above me",
        "guitars L/R, room mics above me",
        "the guitars wide and the room mics above me",
    ):
        out = parse_prompt(text, POP)
        assert out["room_mics"].el_deg == 40.0, text
        assert all(out.get(g, Placement()).el_deg is None for g in ("gtr_l", "gtr_r")), text
    # a bare list of subjects still shares the clause that follows
    out = parse_prompt("the kick, the snare and the bass: centre", POP)
    assert {out[s].az_deg for s in ("kick", "snare", "bass")} == {0.0}


def test_whooshes_attach_to_the_whoosh_stem() -> None:
    out = parse_prompt("the pads wide, whooshes flying over my head", POP)
    assert out["whoosh_01"].motion.pattern == "fly_over" and out["pad"].motion is None
    out = parse_prompt("the riser whooshes over my head", POP)  # a verb after a subject
    assert set(out) == {"riser"} and out["riser"].motion.pattern == "fly_over"


# --- ensembles: group and arc -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "az", "el", "arc"),
    [
        ("taikos behind me", 180.0, None, C.ARC_REAR),
        ("the orchestra in front", 0.0, None, C.ARC_FRONT),
        ("the strings all around me", None, None, C.ARC_AROUND),
        ("the strings surround me", None, None, C.ARC_AROUND),
        ("the strings around the listener", None, None, C.ARC_AROUND),
        ("the strings on each side", 90.0, None, C.ARC_SIDES),
        ("the strings left and right", 90.0, None, C.ARC_SIDES),
        ("the strings either side", 90.0, None, C.ARC_SIDES),
        ("the strings above me", None, 40.0, C.ARC_AROUND),
        ("the strings hard left", 90.0, None, None),  # a point: kept, the planner fans them out
        ("the strings directly behind me", 180.0, None, None),
        ("the strings front and centre", 0.0, None, None),
    ],
)
def test_ensemble_region_gives_an_arc(text: str, az: float | None, el: float | None, arc: float | None) -> None:
    out = parse_prompt(text, ORCH)
    assert len(out) >= 2
    for p in out.values():
        assert (p.az_deg, p.el_deg, p.arc_deg) == (az, el, arc), (text, p)
        assert p.group == tuple(sorted(out))


def test_one_stem_gets_a_point_and_no_group() -> None:
    out = parse_prompt("the horns behind me", ORCH)
    assert out["hn"].az_deg == 180.0 and out["hn"].arc_deg is None and out["hn"].group == ()
    assert parse_hint("behind me").arc_deg is None and parse_hint("left and right").width == 1.0


def test_a_pair_on_each_side_drops_the_one_stem_width() -> None:
    out = parse_prompt("backing vocals wide left and right", POP)
    assert out["bgv_hi"].width is None and out["bgv_hi"].arc_deg == 180.0 and out["bgv_hi"].az_deg == 90.0
    out = parse_prompt("backing vocals left and right, very wide", POP)  # a width of their own stays
    assert out["bgv_hi"].width == 1.0


def test_a_stem_placed_on_its_own_leaves_the_ensemble() -> None:
    out = parse_prompt("everything behind me, the vocals in front", POP)
    assert out["vox"].az_deg == 0.0 and out["vox"].arc_deg is None and out["vox"].group == ()
    assert out["pad"].arc_deg == C.ARC_REAR and "vox" not in out["pad"].group
    assert out["pad"].group == tuple(sorted(s for s, _ in POP if s != "vox"))


def test_exclusion_only_clauses_form_no_group() -> None:
    assert all(p.group == () for p in parse_prompt("nothing behind me", POP).values())


# --- scene-wide words -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "section", "want"),
    [
        ("make the chorus huge and enveloping", "chorus", (0.8, 0.0, 0.0, 0.0)),
        ("make the chorus huge and enveloping", "verse", (0.0, 0.0, 0.0, 0.0)),
        ("make the chorus huge and enveloping", None, (0.0, 0.0, 0.0, 0.0)),
        ("slowly drifting, vast space", None, (0.5, 0.7, 0.6, -0.5)),
        ("intimate and dry", None, (-0.6, -0.6, -0.8, 0.0)),
        ("tight and focused", "verse", (-0.7, 0.0, 0.0, 0.0)),
        ("in your face", None, (-0.3, -0.8, 0.0, 0.0)),
        ("cinematic", None, (0.5, 0.5, 0.5, 0.0)),
        ("make the verse intimate and the chorus huge", "verse", (-0.6, -0.6, 0.0, 0.0)),
        ("make the verse intimate and the chorus huge", "chorus", (0.8, 0.0, 0.0, 0.0)),
        ("everything wide in the drop", "drop", (0.6, 0.0, 0.0, 0.0)),
        ("everything wide in the drop", "build", (0.0, 0.0, 0.0, 0.0)),
        ("the pre-chorus should open up", "pre_chorus", (0.5, 0.0, 0.0, 0.0)),
        ("very huge and a bit wet", None, (1.0, 0.0, 0.35, 0.0)),
        ("not huge", None, (-0.2, 0.0, 0.0, 0.0)),
        ("not too wide", None, (0.0, 0.0, 0.0, 0.0)),
        ("huge but intimate", None, (0.1, -0.6, 0.0, 0.0)),
        ("keep everything still", None, (0.0, 0.0, 0.0, -1.0)),
        ("the whole mix cinematic and wet", None, (0.5, 0.5, 0.6, 0.0)),
    ],
)
def test_scene_words(text: str, section: str | None, want: tuple[float, ...]) -> None:
    w = parse_scene_words(text, section)
    assert (w.envelop, w.distance, w.wet, w.motion) == pytest.approx(want)


def test_stem_clauses_are_not_scene_words() -> None:
    assert parse_scene_words("the pads wide, vocals close and dry").is_neutral()
    assert parse_scene_words("vocals dead centre, guitars far left") == SceneWords()
    w = parse_scene_words("Vocals front and close. Make it huge and enveloping.")
    assert w.envelop == pytest.approx(0.8) and w.distance == 0.0 and w.matched == ("huge", "enveloping")


def test_scene_clauses_and_prompts_agree_on_scope() -> None:
    text = "Make the chorus huge. The pads far behind. Slowly drifting, vast space."
    assert [(set(s), " ".join(t.replace(",", " ").split())) for s, t in scene_clauses(text)] == [
        ({"chorus"}, "make huge"),
        (set(), "slowly drifting vast space"),
    ]
    out = parse_prompt(text, POP)  # scene words place no stem; the pads keep their clause
    assert set(out) == {"pad"} and (out["pad"].az_deg, out["pad"].dist_m, out["pad"].width) == (180.0, 8.0, None)


# --- the one table of conventions -------------------------------------------------------------------
def _doc_rows() -> list[tuple[str, str, str, str]]:
    """(phrases, field, constant, value) of every table in gravity.plan.hint's docstring."""
    doc = hint_module.__doc__ or ""
    rows = []
    for table in re.findall(r"(=+ +=+ +=+ +=+\n.*?\n=+ +=+ +=+ +=+\n)(.*?)\n=+ ", doc, re.S):
        cols = [m.start() for m in re.finditer(r"=+", table[0].splitlines()[0])]
        for line in table[1].splitlines():
            cells = [line[a:b].strip() for a, b in zip(cols, [*cols[1:], None], strict=True)]
            rows.append((cells[0], cells[1], cells[2], cells[3]))
    return rows


def _constant(expr: str) -> float:
    """A constant name or ``NAME - NAME`` of gravity.plan.conventions."""
    a, *b = [getattr(C, n.strip()) for n in expr.split(" - ")]
    return a - sum(b)


def test_value_table_matches_conventions_and_parses() -> None:
    rows = _doc_rows()
    assert len(rows) >= 40
    checked = 0
    for phrases, field, const, value in rows:
        for phrase in phrases.split("; "):
            p = parse_hint(phrase)
            if field == "avoid":
                assert value in p.avoid and p.az_deg is None and p.el_deg is None, phrase
                continue
            assert _constant(const) == float(value), (const, value)
            assert getattr(p, field) == pytest.approx(float(value)), (phrase, p)
            if field == "az_deg" and "left" in phrase:  # the mirror
                assert parse_hint(phrase.replace("left", "right")).az_deg == pytest.approx(-float(value)), phrase
            checked += 1
    assert checked >= 100


# Training phrases whose label disagrees with the parser: none (one table for both).
KNOWN_LABEL_DRIFT: set[tuple[str, float, float]] = set()


def test_conventions_are_the_numbers_the_training_grammar_uses() -> None:
    data = pytest.importorskip("training.data")
    sided = {v for v, _, _ in data._SIDED}
    assert sided == {C.AZ_HARD, C.AZ_WIDE, C.AZ_HALF, C.AZ_OFF_CENTRE, C.AZ_SLIGHT, C.AZ_SURROUND, C.AZ_BACK_HALF}
    tables = ((data._SIDED, "az_deg"), (data._UNSIDED, "az_deg"), (data._ELEV, "el_deg"), (data._DIST, "dist_m"))
    drift = set()
    for table, field in tables:
        for value, train, held in table:
            for phrase in (*train, *held):
                text = phrase.format(s="left")
                if (got := getattr(parse_hint(text), field)) != pytest.approx(value):
                    drift.add((text, value, got))
    assert drift == KNOWN_LABEL_DRIFT
