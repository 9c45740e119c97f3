"""Deterministic synthetic training data: requests, phrase grammar, teacher targets, manifest.

Every example is drawn from its own generator ``np.random.default_rng([seed, split_code, i])``,
so example ``i`` of a split is the same whatever the split size (prefixes are stable) and a
re-run with the same :class:`DataConfig` writes byte-identical files (the manifest's hashes
prove it; a matching manifest makes a re-run a no-op).

A request gets plausible stems (class mix by style), descriptors jittered around the class
defaults, rules (anchors, mono low end, budgets, widths, masking, elevation caps) checked for
feasibility, and plain-language text: stem ``hint`` strings and sometimes a scene ``prompt``.
The text comes from a phrase grammar that *renders a structured label* (azimuth degrees,
+ = left; elevation degrees; distance metres; a named motion pattern): labels are never parsed
back from the text. The value conventions are those of :mod:`gravity.plan.hint` (its value
table), so the phrase parser is a fair baseline.

Generalisation is measured, not memorisation: the grammar has two disjoint pools of
*vocabulary* (synonyms of every direction, height, distance and motion) and of *templates*
(sentence frames and word orders). ``train`` draws from the ``train`` pool only; ``val`` and
``test`` draw from the ``heldout`` pool only.

Scene language: a request may also get clauses the phrase grammar does not label -- groups
("spread the drums all around me", "the guitars on each side"), negation ("nothing behind me",
"the pad not too wide") and scene words ("huge and enveloping", "intimate and dry") -- from the
same two pools; a clause is kept only when :mod:`gravity.plan.prompt` reads something from it for
this request's stems (rejection sampling from the same generator, so rows stay pure functions).

Targets: the teacher is the deterministic planner reading the request's text as the runtime
does (its reading is what the hint pins write into the model's grammar, so every target is an
answer the pinned grammar allows); each labelled field the parser leaves open is then written
from the true label, then :func:`gravity.rules.enforce`; the scene is written with
:func:`gravity.llm.format.encode_scene` and the prompt with :func:`gravity.llm.format.model_input`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from gravity.motion import Motion, scene_keyframes, wrap_az
from gravity.plan import conventions as C
from gravity.plan.planner import plan
from gravity.llm.format import FORMAT_VERSION, model_input, encode_scene
from gravity.errors import RuleConflictError
from gravity.settings import build as build_settings
from gravity.request import Request
from gravity.rules import check_feasible, enforce
from gravity.vocab import SECTIONS, STYLES

__all__ = [
    "DataConfig",
    "Label",
    "Example",
    "SPLITS",
    "POOLS",
    "make_example",
    "generate",
    "load_rows",
    "teacher_scene",
    "label_scene",
    "file_sha256",
    "render_hint",
    "DATA_VERSION",
]

log = logging.getLogger(__name__)

# gravity-data-3: the issue-16 planner as teacher (templates, sections, ensembles, capped motion)
# and the parser's one conventions table for the labels. gravity-data-4: the teacher reads the
# text as the runtime's hint pins do (labels only fill what the parser leaves open), scene
# language (groups, negation, scene words) in prompts, up to 10 stems by default.
# gravity-data-5: same requests; the teacher keeps what the text placed when the budget groups
# stems, a vertical or depth move passes the asked height or distance, a move that crosses a
# neighbour is turned rather than frozen (71 -> ~20 of 300 train rows missed a hint).
# gravity-data-6: about three times the training phrasings (directions, heights, distances,
# motions, frames), each read right or not at all by the phrase parser; held-out pools unchanged.
# gravity-data-7: where the parser's reading is not exact (words left unread), the label is the
# target for every field it gives (the runtime no longer pins such a reading).
# gravity-data-8: a lead's object keeps the lead's width when the budget groups a stem with it
# gravity-data-9: compositional scene language (training/compose.py: several stems in one
# clause, splits, mirrors, flanks, exceptions, strong negation, body words, shared motion) with
# per-stem labels, in a p_compose share of rows (p_compose 0: gravity-data-8's rows)
DATA_VERSION = "gravity-data-9"
SPLITS: dict[str, tuple[int, str]] = {"train": (0, "train"), "val": (1, "heldout"), "test": (2, "heldout")}
POOLS = ("train", "heldout")


@dataclass(frozen=True)
class DataConfig:
    """What to generate. Unknown keys are rejected by :meth:`from_dict`.

    seed : master seed; n_train, n_val, n_test : examples per split; min_stems, max_stems :
    stems per request; p_hint : probability that a stem (not anchored) gets a hint; p_prompt :
    probability that a request gets a scene prompt; p_scene : probability that a request gets
    scene language (a group, a negation or scene words); p_short_budget : probability that the
    object budget is below the stem count (forces grouping); p_compose : probability that a
    request gets a compositional clause with per-stem labels (:mod:`training.compose`), drawn
    after everything else (0 reproduces gravity-data-8's rows).
    """

    seed: int = 1234
    n_train: int = 4000
    n_val: int = 100
    n_test: int = 200
    min_stems: int = 2
    max_stems: int = 10
    p_hint: float = 0.35
    p_prompt: float = 0.25
    p_scene: float = 0.35
    p_short_budget: float = 0.15
    p_compose: float = 0.3

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DataConfig":
        """Build from a mapping; unknown keys and wrongly typed values raise
        :class:`gravity.settings.SettingsError` (a ``ValueError``) naming the key.
        """
        return build_settings(cls, d)


@dataclass(frozen=True)
class Label:
    """The structured truth behind one phrase (None = the text says nothing about it).

    az_deg : degrees, + = left, (-180, 180]; el_deg : degrees, + = up; dist_m : metres;
    motion : named pattern (parameters in degrees / metres / bars).
    """

    az_deg: float | None = None
    el_deg: float | None = None
    dist_m: float | None = None
    motion: Motion | None = None

    def to_json(self) -> dict[str, Any]:
        """The label as JSON (the motion as ``{pattern, params}``)."""
        return {
            "az_deg": self.az_deg,
            "el_deg": self.el_deg,
            "dist_m": self.dist_m,
            "motion": None
            if self.motion is None
            else {"pattern": self.motion.pattern, "params": dict(self.motion.params)},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Label":
        """The inverse of :meth:`to_json`."""
        m = d.get("motion")
        return cls(
            d.get("az_deg"), d.get("el_deg"), d.get("dist_m"), None if m is None else Motion(m["pattern"], m["params"])
        )


@dataclass
class Example:
    """One row: the request document, the prompt and completion texts, and the labels."""

    request: dict[str, Any]
    prompt: str
    completion: str
    labels: dict[str, Label] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    def to_row(self, split: str, index: int) -> dict[str, Any]:
        """One JSONL row, id ``<split>-<index:06d>``."""
        return {
            "id": f"{split}-{index:06d}",
            "prompt": self.prompt,
            "completion": self.completion,
            "request": self.request,
            "labels": {k: v.to_json() for k, v in self.labels.items()},
            "texts": self.texts,
        }


# ----------------------------------------------------------------------------- vocabulary
# (value, train synonyms, held-out synonyms). "{s}" = side word (left/right); the right-hand
# value is the mirror (-az). Values are gravity.plan.conventions' (the phrase parser's table).
_SIDED: list[tuple[float, tuple[str, ...], tuple[str, ...]]] = [
    (
        C.AZ_HARD,
        ("{s}", "to the {s}", "on the {s}", "hard {s}", "panned hard {s}", "hard to the {s}", "extreme {s}")
        + ("out on the {s}", "at the {s} edge"),
        ("fully {s}", "far {s}", "over on the {s} side", "all the way {s}"),
    ),
    (C.AZ_WIDE, ("wide {s}", "wide to the {s}", "wide on the {s}"), ("mostly {s}", "mostly on the {s}")),
    (
        C.AZ_HALF,
        ("front {s}", "half {s}", "in front to the {s}", "front-{s}", "forward {s}", "ahead to the {s}"),
        ("{s}ish", "somewhat {s}", "partly {s}"),
    ),
    (C.AZ_OFF_CENTRE, ("{s} of centre", "{s} of center"), ("centre {s}", "{s} of the centre")),
    (
        C.AZ_SLIGHT,
        ("slightly {s}", "a bit {s}", "a little to the {s}", "just {s} of me", "slightly to the {s}", "barely {s}"),
        ("a touch {s}", "just a tad {s}", "nudged {s}"),
    ),
    (C.AZ_SURROUND, ("{s} surround", "in the {s} surround"), ("surround {s}",)),
    (
        C.AZ_BACK_HALF,
        ("back {s}", "rear {s}", "behind to the {s}", "rear {s} corner", "back {s} corner"),
        ("behind on the {s}", "back and to the {s}"),
    ),
]
_UNSIDED: list[tuple[float, tuple[str, ...], tuple[str, ...]]] = [
    (
        C.AZ_FRONT,
        ("in front", "front and centre", "dead centre", "in the centre", "straight ahead", "front", "centre", "center")
        + ("dead ahead",),
        ("right in front of me", "in the middle", "ahead of the listener"),
    ),
    (
        C.AZ_BACK,
        ("behind", "at the back", "behind me", "back", "from behind", "at my back"),
        ("directly behind the listener", "in the rear", "behind the head"),
    ),
]
_ELEV: list[tuple[float, tuple[str, ...], tuple[str, ...]]] = [
    (C.EL_OVERHEAD, ("overhead", "above my head", "over me"), ("on the ceiling", "up in the sky")),
    (C.EL_VERY_HIGH, ("very high", "high up", "up high", "really high", "way up", "very high up"), ("way above",)),
    (C.EL_ABOVE, ("above", "raised", "above me"), ("elevated", "up")),
    (
        C.EL_SLIGHT_UP,
        ("slightly above", "slightly raised", "a little above", "a bit raised", "slightly up"),
        ("a bit higher",),
    ),
    (
        C.EL_EAR,
        ("at ear level", "at head height", "level with my ears", "at ear height"),
        ("on the horizon", "at eye level"),
    ),
    (C.EL_BELOW, ("below", "low", "beneath", "lower down", "below me"), ("down low", "under")),
    (C.EL_FLOOR, ("on the floor", "on the floor below", "down on the floor"), ("on the ground", "at my feet")),
]
_DIST: list[tuple[float, tuple[str, ...], tuple[str, ...]]] = [
    (
        C.DIST_VERY_CLOSE,
        ("very close", "whispering in my ear", "right at my ear", "extremely close", "touching distance"),
        ("in my ear",),
    ),
    (C.DIST_CLOSE, ("close", "intimate", "up front and close", "close to me", "up close"), ("near", "in your face")),
    (C.DIST_MID, ("mid distance", "medium distance", "a few metres away", "middle distance"), ("not too far",)),
    (C.DIST_FAR, ("far away", "in the distance", "far off", "a long way away"), ("distant", "in the background")),
    (C.DIST_VERY_FAR, ("very far", "extremely far", "very far away", "really far away"), ("miles away",)),
]
# numeric forms: (train, held-out) format strings
_AZ_NUM = (("{n} degrees {s}", "{n} degrees to the {s}"), ("{n}° {s}", "{n} deg to the {s}"))
_CLOCK = (("at {h} o'clock", "{h} o'clock"), ("at {h} oclock", "around {h} o'clock"))
_EL_NUM = (("{n} degrees up", "elevated {n} degrees"), ("{n}° up", "raised {n} degrees"))
_DIST_NUM = (("{n} metres away", "{n} m away"), ("at {n} meters", "{n} metres from me"))
_PERIOD = (("every {n} bars", "once every {n} bars"), ("each {n} bars", "every {n} measures"))
_CW = (("clockwise",), ("clockwise",))
_CCW = (("counterclockwise", "anticlockwise"), ("counter-clockwise", "anti-clockwise"))
_MOTION_T: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # "{dir}" orbit direction, "{per}" period, "{a}" / "{b}" azimuth endpoints
    "orbit": (
        (
            "orbiting {dir} {per}",
            "circling around me {dir} {per}",
            "orbits {dir} {per}",
            "whirling around me {dir} {per}",
        )
        + (
            "revolving around me {dir} {per}",
            "travelling in a circle around me {dir} {per}",
            "encircling me {dir} {per}",
        )
        + (
            "rotating around the listener {dir} {per}",
            "spins around me {dir} {per}",
            "makes circles around me {dir} {per}",
        )
        + ("looping around the room {dir} {per}", "doing laps around me {dir} {per}"),
        ("spinning round the listener {dir} {per}", "going round in circles {dir} {per}"),
    ),
    "pan": (
        ("panning from {a} to {b}", "pans from {a} to {b}", "gliding from {a} to {b}", "drifts from {a} to {b}")
        + ("travels from {a} to {b}", "slides from {a} across to {b}", "shifting from {a} to {b}"),
        ("sweeping from {a} over to {b}", "moving from {a} to {b}"),
    ),
    "ping_pong": (
        (
            "bouncing between {a} and {b} {per}",
            "ping-pong between {a} and {b} {per}",
            "swinging between {a} and {b} {per}",
        )
        + ("bouncing back and forth between {a} and {b} {per}", "flipping between {a} and {b} {per}")
        + ("jumping between {a} and {b} {per}", "see-sawing between {a} and {b} {per}"),
        ("ping-ponging from {a} to {b} and back {per}", "alternating between {a} and {b} {per}"),
    ),
    "rise": (
        (
            "rising up",
            "rises slowly",
            "ascending",
            "going up",
            "soaring upwards",
            "floating up",
            "moving upward",
            "rising",
        ),
        ("lifting upwards", "climbing up"),
    ),
    "fall": (
        ("falling down", "descending", "coming down", "falling", "moving downward", "descends slowly", "lowering"),
        ("sinking down", "dropping down"),
    ),
    "approach": (
        ("coming closer", "approaching", "moving closer", "closing in", "drawing nearer", "coming nearer")
        + ("creeping closer",),
        ("moving towards me", "getting closer"),
    ),
    "recede": (
        ("moving away", "receding", "going away", "moving off into the distance", "backing away", "pulling away")
        + ("retreating", "going further away"),
        ("drifting away", "fading off into the distance"),
    ),
    "fly_over": (
        ("flying over my head", "flies overhead", "flying overhead", "sweeping over my head", "going over my head"),
        ("passing over the top of my head",),
    ),
    "static": (
        ("static", "not moving", "not moving at all", "motionless", "no movement", "still", "holding still")
        + ("staying put",),
        ("stationary", "fixed in place"),
    ),
}
# Hint templates: {0}, {1}, {2} are the components in random order.
_HINT_T: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    1: (
        (
            "{0}",
            "put it {0}",
            "place it {0}",
            "{0} please",
            "have it {0}",
            "keep it {0}",
            "set this {0}",
            "let it sit {0}",
        ),
        ("I'd like this {0}", "could you set it {0}?", "maybe {0}"),
    ),
    2: (
        ("{0}, {1}", "{0} and {1}", "put it {0}, {1}", "{0}, {1} please", "keep it {0}, {1}", "{0} - {1}"),
        ("I want it {0} and {1}", "{0}; {1}", "have it sit {0}, also {1}"),
    ),
    3: (
        ("{0}, {1}, {2}", "{0}, {1} and {2}", "place it {0}, {1}, {2}", "{0}; {1}; {2}", "set it {0}, {1} and {2}"),
        ("{0} and {1}, {2}", "I'd like it {0}, {1}; {2}"),
    ),
}
_BARE_T: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    1: (("{0}",), ("{0}",)),
    2: (("{0}, {1}", "{0} and {1}"), ("{0} and {1}", "{0}, {1}")),
    3: (("{0}, {1}, {2}", "{0}, {1} and {2}"), ("{0}, {1} and {2}", "{0} and {1}, {2}")),
}
_PROMPT_CLAUSE = (
    ("{m} {h}", "put the {m} {h}", "{m}: {h}", "place the {m} {h}", "the {m} goes {h}", "{m} - {h}"),
    ("I want the {m} {h}", "the {m} should be {h}"),
)
_PROMPT_JOIN = (("; ", ". "), (", and ", " and also "))

# Scene language (gravity-data-4): clauses the labels do not cover, read by the phrase parser.
# "{g}" a group noun, "{r}" a region / spread phrase, "{m}" a stem mention, "{a}" / "{b}" scene words.
_GROUP_NOUNS = (
    "the drums",
    "the guitars",
    "the backing vocals",
    "the synths",
    "the keys",
    "the vocals",
    "the percussion",
    "the band",
    "the rest",
)
_GROUP_REGION = (
    ("all around me", "on each side", "behind me", "in front", "left and right", "wide", "tight"),
    ("around the listener", "on both sides", "at the back", "ahead of me", "to the left and right", "spread wide"),
)
_GROUP_T = (("{g} {r}", "spread {g} {r}", "put {g} {r}"), ("I want {g} {r}", "{g} should be {r}", "have {g} {r}"))
_NEG_ALL = (
    ("nothing behind me", "no height", "nothing overhead"),
    ("don't put anything behind me", "nothing above me", "keep everything out of the back"),
)
_NEG_STEM = (
    ("keep the {m} out of the back", "the {m} never above me", "the {m} not too wide", "the {m} not behind me"),
    ("don't put the {m} behind me", "the {m} shouldn't be wide", "no {m} overhead", "the {m} not up high"),
)
_MOOD_WORDS = (
    ("huge", "wide", "intimate", "dry", "lush", "distant", "still", "drifting", "enveloping", "tight", "big", "wet"),
    ("massive", "spacious", "cavernous", "in your face", "floating", "bone dry", "immersive", "expansive", "narrow"),
)
_MOOD_T = (("make it {a}", "{a} and {b}", "the mix should feel {a}"), ("I want a {a} mix", "keep it {a} and {b}"))

# Request vocabulary (plausible stem sets per style family).
_CORE = ["lead_vocal", "kick", "snare", "bass", "hihat"]
_EXTRA = [
    "backing_vocal",
    "choir",
    "vocal_fx",
    "clap",
    "cymbal",
    "tom",
    "percussion",
    "overheads",
    "sub",
    "bass_synth",
    "pad",
    "keys",
    "piano",
    "organ",
    "guitar",
    "acoustic_guitar",
    "strings",
    "brass",
    "woodwind",
    "synth",
    "synth_lead",
    "lead_guitar",
    "arp",
    "pluck",
    "bell",
    "fx",
    "riser",
    "ambience",
    "atmosphere",
    "foley",
]
_ID_OF = {
    "lead_vocal": "vox",
    "backing_vocal": "bv",
    "kick": "kick",
    "snare": "snare",
    "bass": "bass",
    "hihat": "hh",
    "sub": "sub",
    "acoustic_guitar": "ac_gtr",
    "lead_guitar": "lead_gtr",
    "guitar": "gtr",
    "synth_lead": "lead",
    "percussion": "perc",
    "overheads": "oh",
    "bass_synth": "bass_syn",
    "atmosphere": "atmos",
}
_NAME_OF = {
    "lead_vocal": ("lead vocal", "vocal"),
    "backing_vocal": ("backing vocals", "backing vocal"),
    "hihat": ("hi-hat", "hats"),
    "acoustic_guitar": ("acoustic guitar",),
    "lead_guitar": ("lead guitar",),
    "synth_lead": ("synth lead",),
    "bass_synth": ("bass synth",),
    "vocal_fx": ("vocal fx",),
}
_FORMATS = (
    "iamf",
    "binaural",
    "7.1.4",
    "5.1.4",
    "atmos",
    "9.1.6",
    "stereo",
    "5.1",
    "7.1.2",
    "hoa",
    "foa",
    "5.1.2",
    "7.1",
)
_FORMAT_P = np.array([6, 5, 4, 3, 3, 1, 2, 1.5, 1, 1, 1, 1, 1], dtype=float)
_STYLES = tuple(s for s in STYLES if s != "podcast")  # the music styles: the vocabulary's, less spoken word
_SECTIONS = tuple(s for s in SECTIONS if s != "full")  # song sections: the vocabulary's, less a whole song


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def _pool(pair: tuple[Any, Any], pool: str) -> Any:
    return pair[0] if pool == "train" else pair[1]


# ----------------------------------------------------------------------------- phrases
def _direction(rng: np.random.Generator, pool: str) -> tuple[str, float]:
    """A horizontal direction phrase and its azimuth in degrees (+ = left)."""
    r = rng.random()
    if r < 0.55:
        value, tr, ho = _pick(rng, _SIDED)
        side = _pick(rng, ("left", "right"))
        text = _pick(rng, _pool((tr, ho), pool)).format(s=side)
        return text, value if side == "left" else -value
    if r < 0.7:
        value, tr, ho = _pick(rng, _UNSIDED)
        return _pick(rng, _pool((tr, ho), pool)), value
    if r < 0.85:
        n = int(rng.integers(1, 35)) * 5
        side = _pick(rng, ("left", "right"))
        return _pick(rng, _pool(_AZ_NUM, pool)).format(n=n, s=side), float(n if side == "left" else -n)
    h = int(rng.integers(1, 13))
    return _pick(rng, _pool(_CLOCK, pool)).format(h=h), float(wrap_az(-30.0 * h))


def _endpoint(rng: np.random.Generator, pool: str) -> tuple[str, float]:
    """A pan endpoint: a simple side word, so 'from X to Y' stays unambiguous."""
    options = (
        [
            ("the left", 90.0),
            ("the right", -90.0),
            ("left", 90.0),
            ("right", -90.0),
            ("the front", 0.0),
            ("the back", 180.0),
            ("front left", 45.0),
            ("front right", -45.0),
        ]
        if pool == "train"
        else [
            ("hard left", 90.0),
            ("hard right", -90.0),
            ("the centre", 0.0),
            ("the rear", 180.0),
            ("back left", 135.0),
            ("back right", -135.0),
        ]
    )
    return _pick(rng, options)


def _elevation(rng: np.random.Generator, pool: str) -> tuple[str, float]:
    if rng.random() < 0.75:
        value, tr, ho = _pick(rng, _ELEV)
        return _pick(rng, _pool((tr, ho), pool)), value
    n = int(rng.integers(1, 13)) * 5
    return _pick(rng, _pool(_EL_NUM, pool)).format(n=n), float(n)


def _distance(rng: np.random.Generator, pool: str) -> tuple[str, float]:
    if rng.random() < 0.75:
        value, tr, ho = _pick(rng, _DIST)
        return _pick(rng, _pool((tr, ho), pool)), value
    n = int(_pick(rng, (1, 2, 3, 4, 5, 6, 8, 10, 12)))
    return _pick(rng, _pool(_DIST_NUM, pool)).format(n=n), float(n)


def _motion(rng: np.random.Generator, pool: str) -> tuple[str, Motion]:
    name = _pick(
        rng, ("orbit", "orbit", "pan", "ping_pong", "rise", "fall", "approach", "recede", "fly_over", "static")
    )
    tmpl = _pick(rng, _pool(_MOTION_T[name], pool))
    n = int(_pick(rng, (1, 2, 4, 8)))
    per = _pick(rng, _pool(_PERIOD, pool)).format(n=n)
    if name == "orbit":
        ccw = bool(rng.random() < 0.5)
        word = _pick(rng, _pool(_CCW if ccw else _CW, pool))
        return tmpl.format(dir=word, per=per), Motion(
            "orbit", {"direction": "ccw" if ccw else "cw", "period_bars": float(n)}
        )
    if name in ("pan", "ping_pong"):
        (ta, a), (tb, b) = _endpoint(rng, pool), _endpoint(rng, pool)
        while b == a:
            tb, b = _endpoint(rng, pool)
        params: dict[str, Any] = {"from_az": a, "to_az": b}
        if name == "ping_pong":
            params["period_bars"] = float(n)
        return tmpl.format(a=ta, b=tb, per=per), Motion(name, params)
    return tmpl, Motion(name)


def render_hint(rng: np.random.Generator, pool: str, *, bare: bool = False) -> tuple[str, Label]:
    """A random hint phrase from one vocabulary/template pool and the label it expresses.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the only one).
    pool : {"train", "heldout"}
        Which half of the vocabulary and templates to draw from.
    bare : bool
        Components joined without a sentence frame (for clauses inside a scene prompt).

    Returns
    -------
    text : str
        The hint.
    label : Label
        Azimuth / elevation in degrees, distance in metres and motion the text expresses.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    want = {"dir": 0.85, "el": 0.3, "dist": 0.3, "motion": 0.3}
    kinds = [k for k in ("motion", "dir", "el", "dist") if rng.random() < want[k]] or ["dir"]
    kinds = kinds[:3]
    parts: list[str] = []
    az = el = dist = None
    motion = None
    if "motion" in kinds:
        text, motion = _motion(rng, pool)
        parts.append(text)
        if motion.pattern in ("pan", "ping_pong", "fly_over"):
            kinds = [k for k in kinds if k != "dir"]  # the pattern's endpoints give the azimuth
            az = float(motion.params.get("from_az", 0.0))  # the static coordinate is the start
    for k in kinds:
        if k == "dir":
            text, az = _direction(rng, pool)
        elif k == "el":
            text, el = _elevation(rng, pool)
        elif k == "dist":
            text, dist = _distance(rng, pool)
        else:
            continue
        parts.append(text)
    order = rng.permutation(len(parts))
    frame = _pick(rng, _pool(_BARE_T[len(parts)] if bare else _HINT_T[len(parts)], pool))
    return frame.format(*(parts[i] for i in order)), Label(az, el, dist, motion)


# ----------------------------------------------------------------------------- requests
def _stem_classes(rng: np.random.Generator, n: int) -> list[str]:
    core = [c for c in _CORE if rng.random() < 0.7]
    extra = [str(c) for c in rng.permutation(_EXTRA)]
    out = core[:n] + extra[: max(0, n - len(core[:n]))]
    if len(out) < n:
        out += ["guitar"] * (n - len(out))
    if rng.random() < 0.2 and n >= 3:  # a doubled class (two guitars, two backing vocals)
        out[-1] = _pick(rng, ("guitar", "backing_vocal", "synth", "percussion"))
        out[-2] = out[-1]
    out = list(rng.permutation(out)) if rng.random() < 0.3 else out
    return [str(c) for c in out]


def _descriptors(rng: np.random.Generator, cls: str) -> dict[str, Any]:
    from gravity.vocab import CLASS_DEFAULTS

    d = CLASS_DEFAULTS[cls]
    band = np.clip(np.array(d.band) + rng.normal(0, 0.05, 3), 0.0, None)
    band = band / band.sum()
    return {
        "lufs": round(float(np.clip(d.lufs + rng.normal(0, 3), -60, 0)), 1),
        "transient": round(float(np.clip(d.transient + rng.normal(0, 0.08), 0, 1)), 2),
        "band_energy": {
            "low": round(float(band[0]), 2),
            "mid": round(float(band[1]), 2),
            "high": round(float(band[2]), 2),
        },
        "leadness": round(float(np.clip(d.leadness + rng.normal(0, 0.08), 0, 1)), 2),
    }


def _rules(rng: np.random.Generator, stems: list[dict[str, Any]], n_objects: int) -> list[dict[str, Any]]:
    classes = [s["class"] for s in stems]
    rules: list[dict[str, Any]] = []
    if "lead_vocal" in classes and rng.random() < 0.6:
        r: dict[str, Any] = {
            "type": "anchor",
            "track_class": "lead_vocal",
            "az_deg": 0,
            "el_deg": int(_pick(rng, (0, 0, 5, 10))),
            "dist_m": float(_pick(rng, (1.0, 1.2, 1.5, 1.6, 2.0))),
        }
        if rng.random() < 0.3:
            r["tolerance_deg"] = float(_pick(rng, (5, 10)))
        rules.append(r)
    if any(c in ("kick", "bass", "sub", "bass_synth") for c in classes) and rng.random() < 0.5:
        rules.append({"type": "mono_low_end", "hz_below": int(_pick(rng, (80, 100, 120, 150)))})
    if rng.random() < 0.15:
        rules.append({"type": "max_objects", "max": max(1, n_objects)})
    if rng.random() < 0.15:
        c = _pick(rng, classes)
        rules.append({"type": "width", "track_class": c, "max": float(_pick(rng, (0.2, 0.3, 0.5)))})
    if rng.random() < 0.1:
        rules.append({"type": "avoid_masking", "min_sep_deg": float(_pick(rng, (20, 25, 30)))})
    if rng.random() < 0.1:
        rules.append(
            {"type": "max_elevation", "track_class": _pick(rng, classes), "max_deg": float(_pick(rng, (0, 20, 30)))}
        )
    return rules


def _mention(rng: np.random.Generator, stem: dict[str, Any], stems: list[dict[str, Any]]) -> str:
    same = sum(1 for s in stems if s["class"] == stem["class"])
    if same > 1 or rng.random() < 0.3:
        return stem["id"]
    return _pick(rng, _NAME_OF.get(stem["class"], (stem["class"].replace("_", " "),)))


def _hinted_ok(stem: dict[str, Any], rules: list[dict[str, Any]]) -> bool:
    """Stems pinned or bounded by a rule get no hint (the rule would override the label)."""
    for r in rules:
        if r.get("track_class") == stem["class"] or r.get("track_id") == stem["id"]:
            if r["type"] in ("anchor", "max_elevation", "zone", "motion"):
                return False
    return True


def _scene_clause(rng: np.random.Generator, pool: str, stems: list[dict[str, Any]], section: str) -> str | None:
    """One clause of scene language the parser reads for these stems (None: none found in 8 draws).

    Kinds: a group spread or placed by region, a negation for every stem or one, scene words.
    """
    from gravity.plan.prompt import parse_prompt
    from gravity.plan.scene_words import parse_scene_words

    pairs = [(s["id"], s["class"]) for s in stems]
    for _ in range(8):
        kind = int(rng.integers(4))
        if kind == 0:
            g = _pick(rng, _GROUP_NOUNS)
            text = _pick(rng, _pool(_GROUP_T, pool)).format(g=g, r=_pick(rng, _pool(_GROUP_REGION, pool)))
            read = parse_prompt(text, pairs)
            if len(read) >= 2 and any(not p.is_empty() for p in read.values()):
                return str(text)
        elif kind == 1:
            text = _pick(rng, _pool(_NEG_ALL, pool))
            if any(p.avoid for p in parse_prompt(text, pairs).values()):
                return str(text)
        elif kind == 2:
            text = _pick(rng, _pool(_NEG_STEM, pool)).format(m=_mention(rng, _pick(rng, stems), stems))
            if any(p.avoid or p.max_width is not None for p in parse_prompt(text, pairs).values()):
                return str(text)
        else:
            words = _pool(_MOOD_WORDS, pool)
            a, b = (words[int(i)] for i in rng.choice(len(words), 2, replace=False))
            text = _pick(rng, _pool(_MOOD_T, pool)).format(a=a, b=b)
            if parse_scene_words(text, section=section).matched:
                return str(text)
    return None


def _overlay(o: dict[str, Any], request: Request, fields: Mapping[str, float], motion: Motion | None) -> None:
    """Write ``fields`` (az_deg / el_deg / dist_m: degrees, metres) over object ``o``'s start and
    its keyframes from ``motion`` there (None: static); flat layouts keep elevation 0.
    """
    k0 = o["motion"][0] if o.get("motion") else o
    base = [float(fields.get(f, k0[f])) for f in ("az_deg", "el_deg", "dist_m")]
    base[0] = float(wrap_az(base[0]))
    if not request.has_height:
        base[1] = 0.0
    o["motion"] = scene_keyframes(
        motion, (base[0], base[1], base[2]), request.section_bars, has_height=request.has_height
    )
    o["az_deg"], o["el_deg"], o["dist_m"] = (o["motion"][0][f] for f in ("az_deg", "el_deg", "dist_m"))


def _label_fields(lab: Label) -> dict[str, float]:
    """The positional fields a label sets."""
    return {f: v for f in ("az_deg", "el_deg", "dist_m") if (v := getattr(lab, f)) is not None}


def label_scene(request: Request, labels: Mapping[str, Label], seed: int = 0) -> dict[str, Any]:
    """The labels written over the planner run without the text, then the rule engine: where
    each label stands once the hard rules have had their say (the evaluation's reference for
    "the rules let this hint stand", independent of what the phrase parser reads).
    """
    bare = dataclasses.replace(request, prompt="", stems=tuple(dataclasses.replace(s, hint="") for s in request.stems))
    proposal = plan(bare, seed=seed)
    for o in proposal["objects"]:
        lab = labels.get(o["id"])
        if lab is not None:
            _overlay(o, request, _label_fields(lab), lab.motion)
    return enforce(request, proposal, set(labels)).scene


def teacher_scene(request: Request, labels: dict[str, Label], seed: int = 0) -> dict[str, Any]:
    """The teacher's scene: the planner reading the text as the runtime's hint pins do, each
    labelled field the parser leaves open written from the label (every labelled field where the
    parser's reading is not exact: the runtime does not pin it), then the rule engine.

    Parameters
    ----------
    request : Request
        The request with its text.
    labels : dict
        Stem id -> :class:`Label` (degrees, metres, motion) the text expresses.
    seed : int
        Planner seed.

    Returns
    -------
    dict
        A rule-checked scene document.
    """
    from gravity.plan.planner import read_hints, text_placed

    proposal = plan(request, seed=seed)
    reading = read_hints(request)
    for o in proposal["objects"]:
        lab = labels.get(o["id"])
        if lab is None:
            continue
        r = reading.get(o["id"])
        fill = _label_fields(lab)
        if r is not None and r.exact:  # what the parser read exactly is pinned at run time: kept
            fill = {f: v for f, v in fill.items() if getattr(r, f) is None}
            motion_from_label = lab.motion is not None and r.motion is None
            if fill or motion_from_label:  # else the planner already wrote what the parser read
                _overlay(o, request, fill, lab.motion if motion_from_label else r.motion)
        else:  # nothing read, or a guess (words left unread): the label is the target
            _overlay(o, request, fill, lab.motion)
    return enforce(request, proposal, set(labels) | text_placed(request)).scene


def make_example(rng: np.random.Generator, pool: str, cfg: DataConfig) -> Example:
    """One request + teacher target drawn from ``rng`` with phrases from ``pool``."""
    for _ in range(20):  # resample the rare infeasible rule set
        n = int(rng.integers(cfg.min_stems, cfg.max_stems + 1))
        classes = _stem_classes(rng, n)
        stems: list[dict[str, Any]] = []
        used: dict[str, int] = {}
        for c in classes:
            base = _ID_OF.get(c, c)
            used[base] = used.get(base, 0) + 1
            sid = base if used[base] == 1 else f"{base}{used[base]}"
            if used[base] == 2:  # number the first one too once a class repeats
                first = next(s for s in stems if s["id"] == base)
                first["id"] = f"{base}1"
            stems.append({"id": sid, "class": c, **_descriptors(rng, c)})
        budget = n if rng.random() >= cfg.p_short_budget else int(rng.integers(max(1, n - 3), n))
        fmt = str(rng.choice(_FORMATS, p=_FORMAT_P / _FORMAT_P.sum()))
        rules = _rules(rng, stems, budget if rng.random() < 0.5 else n)
        doc: dict[str, Any] = {
            "target_format": fmt,
            "max_objects": int(max(budget, 1) if not any(r["type"] == "max_objects" for r in rules) else n),
            "style": str(_pick(rng, _STYLES)),
            "section": str(_pick(rng, _SECTIONS)),
            "global": {
                "bpm": int(rng.integers(70, 175)),
                "energy": round(float(rng.uniform(0.1, 1.0)), 2),
                "section_bars": int(_pick(rng, (4, 8, 8, 16))),
            },
            "stems": stems,
            "rules": rules,
        }
        labels: dict[str, Label] = {}
        texts: dict[str, str] = {}
        candidates = [s for s in stems if _hinted_ok(s, rules)]
        use_prompt = bool(candidates) and rng.random() < cfg.p_prompt
        clauses: list[str] = []
        for s in candidates:
            if use_prompt and len(clauses) < 2 and (not clauses or rng.random() < 0.5):
                text, lab = render_hint(rng, pool, bare=True)
                clauses.append(_pick(rng, _pool(_PROMPT_CLAUSE, pool)).format(m=_mention(rng, s, stems), h=text))
            elif rng.random() < cfg.p_hint:
                text, lab = render_hint(rng, pool)
                s["hint"] = text
            else:
                continue
            labels[s["id"]] = lab
            texts[s["id"]] = text
        if cfg.p_scene > 0 and rng.random() < cfg.p_scene:  # drawn last: p_scene 0 keeps gravity-data-3's draws
            extra = _scene_clause(rng, pool, stems, doc["section"])
            if extra is not None:
                clauses.insert(int(rng.integers(len(clauses) + 1)), extra)
        join = _pick(rng, _pool(_PROMPT_JOIN, pool)) if clauses else ""
        if clauses:
            doc["prompt"] = join.join(clauses)
        if cfg.p_compose > 0 and rng.random() < cfg.p_compose:  # drawn last: p_compose 0 keeps gravity-data-8's rows
            from training.compose import add_to_request

            add_to_request(rng, pool, doc, clauses, join, labels, texts)
        request = Request.from_dict(doc)
        if check_feasible(request):
            continue
        try:
            scene = teacher_scene(request, labels)
        except RuleConflictError:  # e.g. a budget that forces incompatible stems together
            continue
        # stems in the prompt also appear in labels; the scene prompt text is in doc["prompt"]
        return Example(doc, model_input(request), encode_scene(scene, request), labels, texts)
    raise RuntimeError("could not draw a feasible request in 20 tries")  # pragma: no cover


def _row(cfg: DataConfig, split: str, i: int) -> dict[str, Any]:
    """Row ``i`` of ``split``: a pure function of (seed, split, i), so any worker can draw it."""
    code, pool = SPLITS[split]
    rng = np.random.default_rng([cfg.seed, code, i])
    return make_example(rng, pool, cfg).to_row(split, i)


#: Fewer rows than this are drawn in this process: starting worker processes costs more.
POOL_MIN_ROWS = 256


def _examples(cfg: DataConfig, split: str, workers: int = 1) -> Iterator[dict[str, Any]]:
    """The rows of ``split`` in order; ``workers`` > 1 draws them in parallel (same rows)."""
    n = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[split]
    if workers <= 1 or n < POOL_MIN_ROWS:
        for i in range(n):
            yield _row(cfg, split, i)
        return
    import functools
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(functools.partial(_row, cfg, split), range(n), chunksize=32)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def generate(
    out_dir: str | Path, cfg: DataConfig = DataConfig(), *, force: bool = False, workers: int = 1
) -> dict[str, Any]:
    """Write ``train.jsonl``, ``val.jsonl``, ``test.jsonl`` and ``manifest.json`` to ``out_dir``.

    ``workers`` processes draw rows in parallel; the files are byte-identical for any count.

    Idempotent: when a manifest with the same config exists and every file's SHA-256 matches,
    nothing is written. Returns the manifest (counts, seed, config, hashes, prompt version).
    """
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mpath = out / "manifest.json"
    want_cfg = dataclasses.asdict(cfg)
    if mpath.is_file() and not force:
        old = json.loads(mpath.read_text())
        same = (
            old.get("config") == want_cfg
            and old.get("prompt_version") == FORMAT_VERSION
            and old.get("data_version") == DATA_VERSION
        )
        if same and all((out / f).is_file() and file_sha256(out / f) == h for f, h in old["sha256"].items()):
            log.info("%s: up to date (manifest matches), nothing to do", out)
            return old
    manifest: dict[str, Any] = {
        "data_version": DATA_VERSION,
        "prompt_version": FORMAT_VERSION,
        "seed": cfg.seed,
        "config": want_cfg,
        "counts": {},
        "sha256": {},
        "pools": {k: v[1] for k, v in SPLITS.items()},
    }
    for split in SPLITS:
        path = out / f"{split}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        n = 0
        hinted = 0
        with tmp.open("w", encoding="utf-8") as f:
            total = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[split]
            for row in tqdm(
                _examples(cfg, split, workers), total=total, desc=f"data {split}", unit="ex", leave=False, disable=None
            ):
                f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                n += 1
                hinted += len(row["labels"])
        tmp.replace(path)
        manifest["counts"][split] = n
        manifest["counts"][f"{split}_labelled_stems"] = hinted
        manifest["sha256"][path.name] = file_sha256(path)
    mpath.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log.info("wrote %s: %s", out, manifest["counts"])
    return manifest


def load_rows(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a JSONL file written by :func:`generate` (first ``limit`` when given).

    A file that is not one (a folder, a FIFO, not UTF-8, a line that is not a JSON object with an
    ``id``) raises :class:`~gravity.errors.GravityError` naming the file and the line; a FIFO is
    refused before it is opened (opening one blocks until something writes to it).
    """
    from gravity.errors import GravityError, clip

    p = Path(path)
    if p.exists() and not p.is_file():
        raise GravityError(f"{p}: not a JSONL file (a folder, FIFO or device)")
    rows = []
    with p.open(encoding="utf-8") as f:
        n = 0
        try:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError) as exc:  # bad JSON, a 5000-digit integer, 100k-deep nesting
                    msg = "nested too deeply" if isinstance(exc, RecursionError) else clip(str(exc), 120)
                    raise GravityError(f"{p}: line {n}: not a JSON row ({msg})") from None
                if not isinstance(row, dict) or "id" not in row:  # every row Gravity writes has an id
                    raise GravityError(f"{p}: line {n}: not a row of gravity data or gravity pairs (no id)")
                rows.append(row)
                if limit is not None and len(rows) >= limit:
                    break
        except UnicodeDecodeError:
            raise GravityError(f"{p}: line {n + 1}: not UTF-8 text") from None
    return rows
