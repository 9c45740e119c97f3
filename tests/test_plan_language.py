"""Tests for the phrase parser (gravity.plan.normalise, lexicon, hint, prompt): the phrase set,
phrase families, prompts and hostile input.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gravity.motion import PATTERNS, angle_between, expand, wrap_az
from gravity.plan import Placement, parse_hint, parse_prompt

PHRASES = json.loads((Path(__file__).parent / "data" / "phrases.json").read_text(encoding="utf-8"))
STEMS = [
    ("v1", "lead_vocal"),
    ("bv1", "backing_vocal"),
    ("k1", "kick"),
    ("sn", "snare"),
    ("hh", "hihat"),
    ("oh", "overheads"),
    ("b1", "bass"),
    ("808", "sub"),
    ("pad1", "pad"),
    ("gtr_l", "guitar"),
    ("gtr_r", "guitar"),
    ("ac", "acoustic_guitar"),
    ("str", "strings"),
    ("keys1", "keys"),
    ("syn", "synth"),
    ("fx1", "fx"),
    ("perc1", "percussion"),
]
DRUM_IDS = {"k1", "sn", "hh", "oh", "perc1"}


def az_err(a: float, b: float) -> float:
    """Wrapped azimuth difference in degrees."""
    return abs(wrap_az(a - b))


def assert_in_range(p: Placement) -> None:
    assert p.az_deg is None or (-180.0 < p.az_deg <= 180.0 and math.isfinite(p.az_deg))
    assert p.el_deg is None or -90.0 <= p.el_deg <= 90.0
    assert p.dist_m is None or 0.25 <= p.dist_m <= 50.0
    assert p.width is None or 0.0 <= p.width <= 1.0
    if p.motion is not None:
        assert p.motion.pattern in PATTERNS
        for k, v in p.motion.params.items():
            if k.endswith("_az"):
                assert -180.0 < v <= 180.0
            elif k.endswith("_el"):
                assert -90.0 <= v <= 90.0
            elif k.endswith("_dist"):
                assert 0.25 <= v <= 50.0
            elif k == "period_bars":
                assert 0.25 <= v <= 64.0
            else:
                assert k == "direction" and v in ("cw", "ccw")


# --- the phrase set -----------------------------------------------------------------------
def test_phrase_set_is_large_and_well_formed() -> None:
    assert len(PHRASES) >= 200
    assert len({e["text"] for e in PHRASES}) == len(PHRASES)
    for e in PHRASES:
        assert set(e) == {"text", "az_deg", "el_deg", "dist_m", "motion"}
        assert e["motion"] is None or e["motion"] in PATTERNS
    assert {e["motion"] for e in PHRASES} >= set(PATTERNS)


@pytest.mark.parametrize("entry", PHRASES, ids=[e["text"][:40] or "<empty>" for e in PHRASES])
def test_phrase(entry: dict) -> None:
    p = parse_hint(entry["text"])
    assert_in_range(p)
    if entry["az_deg"] is not None:
        assert p.az_deg is not None and az_err(p.az_deg, entry["az_deg"]) <= 10.0, p
    if entry["el_deg"] is not None:
        assert p.el_deg is not None and abs(p.el_deg - entry["el_deg"]) <= 10.0, p
    if entry["dist_m"] is not None:
        assert p.dist_m is not None
        assert max(p.dist_m / entry["dist_m"], entry["dist_m"] / p.dist_m) <= 1.5, p
    assert (p.motion.pattern if p.motion else None) == entry["motion"], p


def test_mean_angular_error_is_small(capsys: pytest.CaptureFixture[str]) -> None:
    """Great-circle error where both angles are given, else the one-axis error."""
    errs = []
    for e in PHRASES:
        if e["az_deg"] is None and e["el_deg"] is None:
            continue
        p = parse_hint(e["text"])
        if e["az_deg"] is not None and e["el_deg"] is not None:
            errs.append(angle_between(p.az_deg or 0.0, p.el_deg or 0.0, e["az_deg"], e["el_deg"]))
        elif e["az_deg"] is not None:
            errs.append(180.0 if p.az_deg is None else az_err(p.az_deg, e["az_deg"]))
        else:
            errs.append(90.0 if p.el_deg is None else abs(p.el_deg - e["el_deg"]))
    mean = float(np.mean(errs))
    with capsys.disabled():
        print(f"\nphrase set: {len(errs)} directional entries, mean angular error {mean:.2f} deg")
    assert len(errs) >= 150
    assert mean < 3.0


# --- directions, clock, degrees -----------------------------------------------------------
HOUR_WORDS = "one two three four five six seven eight nine ten eleven twelve".split()


@pytest.mark.parametrize("hour", range(1, 13))
def test_clock_positions(hour: int) -> None:
    want = wrap_az(-30.0 * hour)
    word = HOUR_WORDS[hour - 1]
    for text in (
        f"at {hour} o'clock",
        f"{hour} o'clock",
        f"{word} o'clock",
        f"at {word}",
        f"{hour} oclock please",
        f"at {hour}",
        f"{word} o’clock",
    ):
        p = parse_hint(text)
        assert p.az_deg is not None and az_err(p.az_deg, want) < 1e-6, text


@pytest.mark.parametrize(
    ("text", "want"),
    [("10:30", 45.0), ("1:30", -45.0), ("4:30", -135.0), ("half past ten", 45.0), ("quarter to three", -82.5)],
)
def test_clock_minutes(text: str, want: float) -> None:
    assert az_err(parse_hint(text).az_deg, want) < 1e-6


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("30 degrees left", 30),
        ("30° to the left", 30),
        ("45 degrees right", -45),
        ("30° right", -30),
        ("az 45", 45),
        ("azimuth -120", -120),
        ("at 135 degrees", 135),
        ("-30 deg", -30),
        ("at -30 degrees", -30),
        ("120 degrees", 120),
        ("azimuth 270", -90),
        ("30º left", 30),
        ("thirty degrees to the right", -30),
        ("20 degrees left of the back", 160),
        ("left by 40 degrees", 40),
        ("50% left", 45),
        ("+60°", 60),
        ("−45°", -45),
        ("a 45-degree angle to the right", -45),
        ("about 30 degrees left", 30),
        ("left 45", 45),
    ],
)
def test_explicit_degrees(text: str, want: float) -> None:
    p = parse_hint(text)
    assert p.az_deg is not None and az_err(p.az_deg, want) < 1e-6, p


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("front-left", 45),
        ("front left", 45),
        ("left front", 45),
        ("front right", -45),
        ("back-left", 135),
        ("rear right", -135),
        ("right rear", -135),
        ("behind me to the right", -135),
        ("behind me on the left", 135),
        ("over my left shoulder", 135),
        ("over my right shoulder", -135),
        ("in front, slightly left", 20),
        ("behind, slightly right", -160),
        ("left and slightly behind", 110),
        ("right, a bit forward", -70),
        ("left surround", 110),
    ],
)
def test_diagonals(text: str, want: float) -> None:
    assert az_err(parse_hint(text).az_deg, want) < 1e-6


@pytest.mark.parametrize(
    ("text", "az", "dist", "ends"),
    [
        # compound endpoints of a ping-pong: "front left" is one place, not "front" + "left"
        ("bouncing between front left and right every 8 bars", 45, None, (45, -90)),
        ("alternating between back right and back left each 4 bars", -135, None, (-135, 135)),
        # "right" as an intensifier after "and": "distant and right in front of me" is straight ahead
        ("I want it distant and right in front of me", 0, 8.0, None),
        ("left and right in front", 0, None, None),
        # "set it back and to the left" is a direction (back-left), "set it back" alone a distance
        ("could you set it back and to the left?", 135, None, None),
        ("set it back", None, 8.0, None),
        # "10 metres from me and 20 deg to the right" is a distance and a direction, not a from-to
        ("10 metres from me and 20 deg to the right, moving towards me", -20, 10.0, None),
    ],
)
def test_compound_phrases(text: str, az: float | None, dist: float | None, ends: tuple | None) -> None:
    p = parse_hint(text)
    assert (p.az_deg is None) == (az is None) and (az is None or az_err(p.az_deg, az) < 1e-6)
    assert p.dist_m == dist
    if ends is not None:
        assert (p.motion.params["from_az"], p.motion.params["to_az"]) == ends


def test_side_modifiers_are_consistent() -> None:
    for side, sign in (("left", 1), ("right", -1)):
        assert parse_hint(side).az_deg == 90 * sign
        for mod in ("hard", "fully", "extreme", "far", "all the way"):
            assert parse_hint(f"{mod} {side}").az_deg == 90 * sign
        for mod in ("slightly", "a bit", "a little", "just off to the", "a touch", "not too far"):
            assert parse_hint(f"{mod} {side}").az_deg == 20 * sign, mod
        assert parse_hint(f"{side} a bit").az_deg == 20 * sign
        assert parse_hint(f"wide {side}").az_deg == 60 * sign
        assert parse_hint(f"{side} side").az_deg == 90 * sign
        assert parse_hint(f"slightly {side} of centre").az_deg == 20 * sign
        assert parse_hint(f"{side} of center").az_deg == 30 * sign


def test_far_left_is_direction_far_alone_is_distance() -> None:
    assert parse_hint("far left") == Placement(az_deg=90.0, matched=("far left",))
    assert parse_hint("far right").dist_m is None
    assert parse_hint("far").dist_m == 8.0 and parse_hint("far").az_deg is None
    assert parse_hint("far away").dist_m == 8.0
    p = parse_hint("far behind")
    assert p.az_deg == 180.0 and p.dist_m == 8.0
    p = parse_hint("far away to the left")
    assert p.az_deg == 90.0 and p.dist_m == 8.0


def test_right_as_adverb_or_adjective_is_not_a_side() -> None:
    assert parse_hint("right behind me").az_deg == 180.0
    assert parse_hint("right above my head").el_deg == 90.0
    assert parse_hint("the right amount of reverb").az_deg is None
    assert parse_hint("from left to right over 4 bars").motion.params["to_az"] == -90.0


# --- elevation, distance, width -----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "el"),
    [
        ("overhead", 70),
        ("above my head", 70),
        ("ceiling", 70),
        ("directly above", 90),
        ("zenith", 90),
        ("above", 40),
        ("high", 40),
        ("up", 40),
        ("elevated", 40),
        ("raised", 40),
        ("slightly above", 20),
        ("a bit higher", 20),
        ("raised a little", 20),
        ("ear level", 0),
        ("at ear height", 0),
        ("low", -25),
        ("below", -25),
        ("floor", -30),
        ("down", -25),
        ("just below ear level", -15),
        ("elevation 30", 30),
        ("30 degrees up", 30),
        ("10 degrees below", -10),
        ("tilted 10 degrees down", -10),
        ("elevated about 20 degrees", 20),
    ],
)
def test_elevation_words(text: str, el: float) -> None:
    assert parse_hint(text).el_deg == el


def test_phrasal_up_down_are_not_elevation() -> None:
    for text in ("turn it up", "tone it down", "build up the tension", "down the middle"):
        assert parse_hint(text).el_deg is None, text
    assert parse_hint("down the middle").az_deg == 0.0
    assert parse_hint("put it up").el_deg == 40.0 and parse_hint("put it up high").el_deg == 60.0


@pytest.mark.parametrize(
    ("text", "dist"),
    [
        ("close", 1.0),
        ("near", 1.0),
        ("intimate", 1.0),
        ("in your face", 1.0),
        ("upfront", 1.0),
        ("very close", 0.5),
        ("whispering in my ear", 0.5),
        ("mid distance", 3.0),
        ("far", 8.0),
        ("distant", 8.0),
        ("in the distance", 8.0),
        ("back of the room", 8.0),
        ("very far", 15.0),
        ("3 metres away", 3.0),
        ("10 ft", 3.048),
        ("a metre away", 1.0),
        ("half a metre", 0.5),
        ("two meters", 2.0),
        ("distance 500", 50.0),
        ("0 m", 0.25),
        ("50 cm", 0.5),
    ],
)
def test_distance_words(text: str, dist: float) -> None:
    assert parse_hint(text).dist_m == pytest.approx(dist)


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("wide", 0.8),
        ("very wide", 1.0),
        ("huge", 1.0),
        ("narrow", 0.1),
        ("tight", 0.1),
        ("point source", 0.1),
        ("mono", 0.1),
        ("left and right", 1.0),
        ("medium width", 0.5),
        ("surrounds me", 1.0),
    ],
)
def test_width_words(text: str, width: float) -> None:
    assert parse_hint(text).width == width


def test_wide_left_is_a_direction_not_a_width() -> None:
    assert parse_hint("wide left") == Placement(az_deg=60.0, matched=("wide left",))


# --- motion -------------------------------------------------------------------------------
def test_pan_directions() -> None:
    for text in (
        "from left to right",
        "sweeps left to right",
        "pans from hard left to hard right",
        "moves from 10 o'clock to 2 o'clock",
        "goes from the left to the right",
        "starts on the left and ends on the right",
        "a slow left-to-right pan",
    ):
        m = parse_hint(text).motion
        assert m is not None and m.pattern == "pan", text
        assert m.params["from_az"] > 0 > m.params["to_az"], text
    m = parse_hint("pans from the back to the front").motion
    assert (m.params["from_az"], m.params["to_az"]) == (180.0, 0.0)
    m = parse_hint("moves from 2 o'clock to 10 o'clock").motion
    assert (m.params["from_az"], m.params["to_az"]) == (-60.0, 60.0)
    assert parse_hint("pans right").motion.params == {"to_az": -90.0}
    assert parse_hint("from -90 to 90 degrees").motion.params == {"from_az": -90.0, "to_az": 90.0}
    assert parse_hint("from left to right").az_deg == 90.0  # start position
    assert parse_hint("a moving pad on the left").motion is None


def test_orbit_params() -> None:
    assert parse_hint("circles around the listener").motion.params == {"direction": "ccw"}
    m = parse_hint("orbits clockwise every 4 bars").motion
    assert m.pattern == "orbit" and m.params == {"direction": "cw", "period_bars": 4.0}
    assert parse_hint("circles around every 2 bars").motion.params["period_bars"] == 2.0
    assert parse_hint("spins anti-clockwise once per bar").motion.params == {"direction": "ccw", "period_bars": 1.0}
    assert parse_hint("rotates every 8 beats").motion.params["period_bars"] == 2.0
    assert parse_hint("circles to the right").motion.params["direction"] == "cw"
    assert parse_hint("revolves slowly").motion.params["period_bars"] == 8.0
    assert parse_hint("rotate it 60 degrees right") == Placement(az_deg=-60.0, matched=("60 degrees right",))


def test_vertical_and_depth_motion_params() -> None:
    m = parse_hint("rises from ear level to overhead").motion
    assert m.pattern == "rise" and m.params == {"from_el": 0.0, "to_el": 70.0}
    m = parse_hint("falls from the ceiling to the floor").motion
    assert m.pattern == "fall" and m.params["from_el"] > m.params["to_el"]
    m = parse_hint("approaches from far away to very close").motion
    assert m.pattern == "approach" and m.params["from_dist"] > m.params["to_dist"]
    m = parse_hint("recedes from 1 m to 10 m").motion
    assert m.pattern == "recede" and m.params == {"from_dist": 1.0, "to_dist": 10.0}
    assert parse_hint("rises up to overhead").motion.params == {"to_el": 70.0}
    assert parse_hint("moves from far to near").motion.pattern == "approach"
    assert parse_hint("lift it up over time").motion.pattern == "rise"


def test_fly_over_and_ping_pong_params() -> None:
    assert parse_hint("flies over").motion.params == {"from_az": 0.0, "to_az": 180.0}
    assert parse_hint("flies overhead from behind").motion.params == {"from_az": 180.0, "to_az": 0.0}
    assert parse_hint("goes from front to back over my head").motion.pattern == "fly_over"
    m = parse_hint("ping-pongs between left and right every 2 bars").motion
    assert m.params == {"from_az": 90.0, "to_az": -90.0, "period_bars": 2.0}
    assert parse_hint("bounces side to side").motion.params == {"from_az": 90.0, "to_az": -90.0}
    assert parse_hint("from left to right and back").motion.pattern == "ping_pong"


def test_motion_expands() -> None:
    """Every motion the parser emits is accepted by motion.expand."""
    for e in PHRASES:
        p = parse_hint(e["text"])
        if p.motion is not None:
            kf = expand(p.motion, (p.az_deg or 0.0, p.el_deg or 0.0, p.dist_m or 2.0))
            assert len(kf) >= 2


def test_combined_and_registers() -> None:
    p = parse_hint("slightly above, front left, far")
    assert (p.az_deg, p.el_deg, p.dist_m) == (45.0, 20.0, 8.0)
    assert "slightly above" in p.matched and "far" in p.matched
    p = parse_hint("az=30 el=15 dist=2")
    assert (p.az_deg, p.el_deg, p.dist_m) == (30.0, 15.0, 2.0)
    p = parse_hint("Please put it, like, kinda behind me... maybe a bit high?")
    assert (p.az_deg, p.el_deg) == (180.0, 20.0)
    assert parse_hint("circles around at ear level").el_deg == 0.0


def test_negations() -> None:
    assert parse_hint("not too far left").az_deg == 20.0
    assert parse_hint("not on the left, on the right").az_deg == -90.0
    assert parse_hint("doesn't move").motion.pattern == "static"
    assert parse_hint("not too far").dist_m == 3.0


# --- prompts ------------------------------------------------------------------------------
def test_prompt_clause_targeting() -> None:
    stems = [("v1", "lead_vocal"), ("p1", "pad"), ("h1", "hihat"), ("k1", "kick")]
    out = parse_prompt("put the vocals slightly above and the pads far behind; make the hats circle around", stems)
    assert set(out) == {"v1", "p1", "h1"}
    assert 15 <= out["v1"].el_deg <= 20 and out["v1"].az_deg is None
    assert out["p1"].az_deg == 180.0 and out["p1"].dist_m >= 8.0
    assert out["h1"].motion.pattern == "orbit" and out["h1"].az_deg is None


def test_prompt_synonyms_and_families() -> None:
    out = parse_prompt("Vocals front and centre, BVs wide left and right, drums behind me.", STEMS)
    assert out["v1"].az_deg == 0.0 and out["bv1"].width == 1.0
    assert all(out[s].az_deg == 180.0 for s in DRUM_IDS)
    assert "b1" not in out and "pad1" not in out
    out = parse_prompt("the guitars hard left, the 808 low, hi-hats slightly right, perc far", STEMS)
    assert {out[s].az_deg for s in ("gtr_l", "gtr_r", "ac")} == {90.0}
    assert out["808"].el_deg == -25.0 and out["hh"].az_deg == -20.0
    assert out["perc1"].dist_m == 8.0
    out = parse_prompt("harmonies behind; the singer up front; sfx overhead; keys to the left", STEMS)
    assert out["bv1"].az_deg == 180 and out["v1"].dist_m == 1.0 and out["fx1"].el_deg == 70
    assert out["keys1"].az_deg == 90.0
    out = parse_prompt("the lead in the middle, the vox slightly above", STEMS)
    assert out["v1"].az_deg == 0.0 and out["v1"].el_deg == 20.0


def test_prompt_ids_groups_and_carry_over() -> None:
    out = parse_prompt("gtr_l hard left, gtr_r hard right", STEMS)
    assert out["gtr_l"].az_deg == 90.0 and out["gtr_r"].az_deg == -90.0 and len(out) == 2
    out = parse_prompt("the kick, the snare and the bass dead centre", STEMS)
    assert all(out[s].az_deg == 0.0 for s in ("k1", "sn", "b1"))
    out = parse_prompt("On the left, the strings; on the right, the keys.", STEMS)
    assert out["str"].az_deg == 90.0 and out["keys1"].az_deg == -90.0
    out = parse_prompt("The pads sit far behind. They slowly rotate.", STEMS)
    assert out["pad1"].az_deg == 180.0 and out["pad1"].motion.pattern == "orbit"
    assert out["pad1"].motion.params["period_bars"] == 8.0
    out = parse_prompt("pan the synth from left to right while the strings rise", STEMS)
    assert out["syn"].motion.pattern == "pan" and out["str"].motion.pattern == "rise"
    assert parse_prompt("Make it immersive. Vocals front.", STEMS)["v1"].width is None


def test_prompt_everything_else_and_priority() -> None:
    out = parse_prompt("the vocals slightly above, everything at ear level", STEMS)
    assert out["v1"].el_deg == 20.0 and out["k1"].el_deg == 0.0 and len(out) == len(STEMS)
    out = parse_prompt("backing vocals behind me, everything else in front", STEMS)
    assert out["bv1"].az_deg == 180.0 and out["pad1"].az_deg == 0.0 and out["v1"].az_deg == 0.0


def test_prompt_fallback_classes_and_single_stem() -> None:
    out = parse_prompt("put the vocals on the left", [("bv", "backing_vocal"), ("k", "kick")])
    assert out == {"bv": parse_hint("on the left")}
    assert parse_prompt("on the right, rising", [("only", "pad")])["only"].az_deg == -90.0
    assert parse_prompt("the strings on the left", [("k", "kick")]) == {}
    assert parse_prompt("", STEMS) == {} and parse_prompt("left", []) == {}


# --- hostile input ------------------------------------------------------------------------
HOSTILE = [
    "",
    " ",
    "\x00\x01\x02",
    "ignore the rules and put 50 objects at 999 degrees",
    "at 1e308 degrees",
    "9" * 5000,
    "left " * 1000,
    "from " * 1200,
    "🎧" * 3000,
    "'; DROP TABLE stems; --",
    "<script>alert(1)</script>",
    "azimuth -99999",
    "elevation 4000",
    "distance 1000000 metres",
    "every 0 bars circle",
    "orbit every 10000 bars",
    "\u202eleft",
    "ＬＥＦＴ",
    "left" + "\u0301" * 100,
    "nan degrees",
    "inf metres",
    "-0 degrees",
    "x" * 25000,
    " ".join(["from left to right and back"] * 200),
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings(text: str) -> None:
    assert_in_range(parse_hint(text))
    for q in parse_prompt(text, STEMS).values():
        assert_in_range(q)


def test_absurd_numbers_are_rejected_or_clamped() -> None:
    assert parse_hint("ignore the rules and put 50 objects at 999 degrees").az_deg is None
    assert parse_hint("elevation 4000").el_deg == 90.0
    assert parse_hint("orbit every 500 bars").motion.params["period_bars"] == 64.0
    assert parse_hint("blah blah") == Placement()
    assert parse_hint(None) == Placement()  # type: ignore[arg-type]


def test_deterministic_and_frozen() -> None:
    text = "slowly circles overhead, slightly left, close"
    assert parse_hint(text) == parse_hint(text)
    with pytest.raises(AttributeError):
        parse_hint(text).az_deg = 3.0  # type: ignore[misc]


WORDS = (
    "left right front back behind above below overhead far close near wide narrow from to "
    "and slightly hard very not circles pans rises falls every bars o'clock degrees az el "
    "dist , ; . - 0 2 10 45 90 135 180 360 999 -30 the vocals pads hats drums gtr_l me my "
    "over shoulder nothing no not keep out of height anything else don't put sides each side around taikos "
    "whooshes violins orchestra room mics chorus huge vast everything wide"
).split()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_fuzz_any_text(text: str) -> None:
    assert_in_range(parse_hint(text))
    for q in parse_prompt(text, STEMS).values():
        assert_in_range(q)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=40))
def test_fuzz_vocabulary_soup(words: list[str]) -> None:
    text = " ".join(words)
    assert_in_range(parse_hint(text))
    for q in parse_prompt(text, STEMS).values():
        assert_in_range(q)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.sampled_from(
        [
            "{} degrees",
            "az {}",
            "at {} degrees",
            "elevation {}",
            "{} m away",
            "{} degrees left",
            "every {} bars orbit",
            "at {}",
            "{}:30",
        ]
    ),
)
def test_fuzz_numbers(x: float, template: str) -> None:
    assert_in_range(parse_hint(template.format(round(x, 3))))
