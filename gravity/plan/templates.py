"""Genre templates and section shapes: the planner's placement practice, written down as data.

Angles in degrees (azimuth positive = left), distances as factors of the class's home
distance, width 0..1. The planner reads these tables; it has no placement numbers of its own.

Practice followed (the yardstick of the scene critic, :mod:`gravity.critic`):

- Lead and low end anchored front-centre; kick, bass and sub narrow and at ear level
  (Dolby, *Music mixing in Dolby Atmos: perception notes*; Apple Music spatial-audio style guide:
  keep LFE-range material out of the height and surround layers).
- Height for high and ambient material, not for low-frequency material: vertical localisation
  needs high-frequency spectral cues and the low band does not localise up high (H. Lee,
  "Perceptual band allocation (PBA) for the rendering of vertical image spread", AES 9325).
- Ensembles spread as a stage: pairs left/right, orchestras in seating order (American
  seating: violins left, celli and basses right, winds behind, brass and percussion at the back,
  choir above and behind).
- Sections contrast: verses focused on the front stage, choruses and drops open to the sides,
  rear and height; breakdowns and outros far and wet (Bob Clearmountain on Atmos mixing: "the
  chorus should get bigger"; Dolby's notes on building immersion across a song).
- Motion sparing and musical: few movers, at musical speeds (< 60 deg/s), key elements still.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Stage", "SectionShape", "GenreTemplate", "CLASS_STAGE", "SECTION_SHAPE", "TEMPLATES", "template_for"]


@dataclass(frozen=True)
class Stage:
    """Where a class sits in a focused section (verse) and in a fully open one (drop).

    The planner interpolates between the two by the section's openness 0..1. ``az`` is the
    magnitude for classes placed as left/right pairs (a lone stem takes one side).

    az_focus, el_focus, width_focus : degrees, degrees, 0..1 in a focused section
    az_open, el_open, width_open : the same in a fully open section
    rear_pair : in open sections a third and fourth stem of the class form a rear pair
    """

    az_focus: float
    el_focus: float
    width_focus: float
    az_open: float
    el_open: float
    width_open: float
    rear_pair: bool = False


_S = Stage
# Anchored classes (lead, kick, bass, sub, snare) are not here: they never leave the centre.
CLASS_STAGE: dict[str, Stage] = {
    "backing_vocal": _S(30, 8, 0.25, 65, 15, 0.4, rear_pair=True),
    "double": _S(22, 4, 0.2, 40, 6, 0.3),  # the lead's doubles ("vox_dbl_l"): close to the lead
    "choir": _S(40, 20, 0.6, 80, 30, 0.9, rear_pair=True),
    "vocal_fx": _S(60, 20, 0.3, 100, 28, 0.4),
    "clap": _S(14, 6, 0.2, 40, 12, 0.3),
    "hihat": _S(22, 10, 0.1, 40, 18, 0.15),
    "cymbal": _S(38, 30, 0.35, 60, 40, 0.5),
    "tom": _S(28, 5, 0.2, 40, 8, 0.25),
    "percussion": _S(60, 8, 0.2, 115, 15, 0.3, rear_pair=True),
    "drum_loop": _S(6, 0, 0.35, 8, 5, 0.5),
    "overheads": _S(30, 40, 0.6, 40, 50, 0.8),
    "room_mic": _S(50, 30, 0.8, 130, 40, 1.0),
    "pad": _S(45, 20, 0.6, 110, 35, 1.0, rear_pair=True),
    "keys": _S(30, 10, 0.3, 55, 15, 0.5),
    "piano": _S(22, 6, 0.45, 40, 10, 0.6),
    "organ": _S(45, 12, 0.5, 80, 22, 0.7),
    "guitar": _S(40, 5, 0.25, 75, 12, 0.35, rear_pair=True),
    "acoustic_guitar": _S(30, 5, 0.3, 60, 10, 0.4),
    "strings": _S(50, 18, 0.7, 100, 30, 1.0, rear_pair=True),
    "brass": _S(35, 12, 0.45, 70, 18, 0.6),
    "woodwind": _S(25, 12, 0.3, 50, 18, 0.4),
    "synth": _S(55, 15, 0.45, 95, 22, 0.8, rear_pair=True),
    "synth_lead": _S(15, 8, 0.2, 18, 10, 0.2),
    "lead_guitar": _S(18, 5, 0.2, 20, 8, 0.2),
    "arp": _S(70, 25, 0.3, 100, 30, 0.4),
    "pluck": _S(60, 15, 0.25, 100, 30, 0.35),
    "bell": _S(65, 40, 0.2, 100, 48, 0.3),
    "fx": _S(110, 30, 0.35, 140, 45, 0.5),
    "riser": _S(30, 20, 0.5, 60, 30, 0.7),
    "ambience": _S(140, 40, 1.0, 140, 55, 1.0, rear_pair=True),
    "atmosphere": _S(130, 45, 1.0, 135, 55, 1.0, rear_pair=True),
    "foley": _S(90, 0, 0.2, 120, 10, 0.3),
    "noise": _S(135, 30, 0.9, 145, 45, 1.0),
    "other": _S(40, 10, 0.3, 70, 20, 0.5),
}


@dataclass(frozen=True)
class SectionShape:
    """How a section shapes the scene.

    openness : 0 focused front stage .. 1 the whole sphere (interpolates :class:`Stage`)
    far, wet : distance and reverb-send factors
    motion : how much moves, 0 (nothing) .. 1 (the template's movers)
    """

    openness: float
    far: float = 1.0
    wet: float = 1.0
    motion: float = 0.5


SECTION_SHAPE: dict[str, SectionShape] = {
    "intro": SectionShape(0.3, 1.15, 1.15, 0.0),
    "verse": SectionShape(0.15, 1.0, 1.0, 0.0),
    "pre_chorus": SectionShape(0.45, 1.0, 1.05, 0.5),
    "chorus": SectionShape(0.85, 1.0, 1.05, 0.5),
    "post_chorus": SectionShape(0.8, 1.0, 1.05, 0.5),
    "hook": SectionShape(0.85, 1.0, 1.0, 0.5),
    "bridge": SectionShape(0.5, 1.1, 1.1, 0.3),
    "breakdown": SectionShape(0.4, 1.35, 1.35, 0.3),
    "build": SectionShape(0.25, 1.0, 1.0, 1.0),
    "drop": SectionShape(1.0, 0.95, 0.95, 1.0),
    "solo": SectionShape(0.55, 1.0, 1.0, 0.3),
    "interlude": SectionShape(0.4, 1.2, 1.2, 0.3),
    "outro": SectionShape(0.35, 1.35, 1.35, 0.0),
    "full": SectionShape(0.55, 1.0, 1.0, 0.3),
}


@dataclass(frozen=True)
class GenreTemplate:
    """A genre's way of placing a song.

    openness : added to the section's openness (-1..1)
    height : factor on elevations of non-anchored classes
    wet : factor on reverb sends
    movers : most objects that move on their own (text and rules aside)
    speed_cap : degrees per second a planned move may reach
    stage : True for music heard from the audience (jazz, orchestra): the ensemble stays on a
        front stage even when open; only room, ambience and choir go around and up
    classes : per-class :class:`Stage` overrides
    practice : what the template follows, for the docs and the critic's card
    """

    openness: float = 0.0
    height: float = 1.0
    wet: float = 1.0
    movers: int = 1
    speed_cap: float = 45.0
    stage: bool = False
    classes: dict[str, Stage] = field(default_factory=dict)
    practice: str = ""


_STAGE_AROUND = frozenset({"room_mic", "ambience", "atmosphere", "choir", "noise"})
TEMPLATES: dict[str, GenreTemplate] = {
    "pop": GenreTemplate(
        movers=1,
        practice="vocal-centred: lead dry and close, doubles and bgvs as pairs that open in the chorus",
    ),
    "rock": GenreTemplate(
        openness=-0.05,
        height=0.8,
        movers=1,
        speed_cap=40.0,
        classes={"guitar": _S(60, 5, 0.25, 85, 10, 0.35, rear_pair=True)},
        practice="band on a wide front stage: double-tracked guitars hard left/right, kit with overheads up",
    ),
    "edm": GenreTemplate(
        openness=0.1,
        height=1.1,
        wet=0.85,
        movers=2,
        speed_cap=60.0,
        classes={"synth": _S(50, 12, 0.5, 100, 16, 1.0, rear_pair=True)},
        practice="kick/sub mono and dry, builds tighten and drops fill the sphere; a few moving fx and arps",
    ),
    "hiphop": GenreTemplate(
        openness=-0.05,
        wet=0.8,
        movers=1,
        speed_cap=45.0,
        practice="808 and kick centred and dry, vocal up front; ad-libs and chops around the listener",
    ),
    "jazz": GenreTemplate(
        openness=-0.2,
        height=0.75,
        movers=0,
        speed_cap=0.0,
        stage=True,
        practice="an acoustic group on a stage seen from the audience; the room gives the envelopment",
    ),
    "orchestral": GenreTemplate(
        openness=-0.1,
        height=0.8,
        wet=1.3,
        movers=0,
        speed_cap=30.0,
        stage=True,
        practice="American seating on a front stage, hall reverb; choir above and behind",
    ),
    "cinematic": GenreTemplate(
        openness=0.05,
        height=1.1,
        wet=1.2,
        movers=1,
        speed_cap=45.0,
        practice="trailer and film score: drums and brass in front, strings and choir wrap around and above, "
        "hits and whooshes move",
    ),
    "ambient": GenreTemplate(
        openness=0.25,
        height=1.3,
        wet=1.5,
        movers=2,
        speed_cap=20.0,
        practice="textures all around and above, far and wet; slow drifting motion",
    ),
    "podcast": GenreTemplate(
        openness=-0.5,
        height=0.3,
        wet=0.5,
        movers=0,
        speed_cap=0.0,
        practice="voices front and close and dry; nothing moves",
    ),
}
# request style -> template
_STYLE_TEMPLATE: dict[str, str] = {
    "pop": "pop",
    "rnb": "hiphop",
    "hiphop": "hiphop",
    "lofi": "hiphop",
    "rock": "rock",
    "metal": "rock",
    "live": "rock",
    "club": "edm",
    "edm": "edm",
    "techno": "edm",
    "house": "edm",
    "jazz": "jazz",
    "folk": "jazz",
    "acoustic": "jazz",
    "classical": "orchestral",
    "orchestral": "orchestral",
    "cinematic": "cinematic",
    "ambient": "ambient",
    "experimental": "ambient",
    "podcast": "podcast",
}


def template_for(style: str) -> tuple[str, GenreTemplate]:
    """The template name and template for a request style (pop for anything unknown)."""
    name = _STYLE_TEMPLATE.get(style, "pop")
    return name, TEMPLATES[name]


def stage_of(cls: str, template: GenreTemplate) -> Stage:
    """The class's :class:`Stage` under a template (its override, else the common table)."""
    return template.classes.get(cls) or CLASS_STAGE.get(cls) or CLASS_STAGE["other"]


def goes_around(cls: str) -> bool:
    """Whether a class leaves the front stage in a stage template (room, ambience, choir)."""
    return cls in _STAGE_AROUND
