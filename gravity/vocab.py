"""The studio vocabulary: stem classes, target formats, sections, styles and room presets.

Every enum the schemas list is defined here once; ``schemas/*.json`` are checked
against these tuples by the test-suite so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "STEM_CLASSES",
    "FAMILIES",
    "LOW_CLASSES",
    "LEAD_CLASSES",
    "LEAD_INSTRUMENTS",
    "TARGET_FORMATS",
    "FLAT_FORMATS",
    "SECTIONS",
    "STYLES",
    "ROOM_PRESETS",
    "RoomPreset",
    "StemDefaults",
    "CLASS_DEFAULTS",
    "BANDS",
    "family_of",
]

# Stem classes a studio uses, grouped by family (used for grouping under an object budget).
FAMILIES: dict[str, tuple[str, ...]] = {
    "vocal": ("lead_vocal", "backing_vocal", "choir", "vocal_fx", "spoken"),
    "drums": ("kick", "snare", "clap", "hihat", "cymbal", "tom", "percussion", "drum_loop", "overheads", "room_mic"),
    "bass": ("bass", "sub", "bass_synth"),
    "harmony": ("pad", "keys", "piano", "organ", "guitar", "acoustic_guitar", "strings", "brass", "woodwind", "synth"),
    "melody": ("synth_lead", "lead_guitar", "arp", "pluck", "bell"),
    "texture": ("fx", "riser", "ambience", "atmosphere", "foley", "noise"),
    "other": ("other",),
}
STEM_CLASSES: tuple[str, ...] = tuple(c for fam in FAMILIES.values() for c in fam)
_FAMILY_OF = {c: fam for fam, classes in FAMILIES.items() for c in classes}

# Classes that carry the low end: mono_low_end centres these whatever their band energy says.
LOW_CLASSES: frozenset[str] = frozenset({"kick", "bass", "sub", "bass_synth"})

# The lead: a voice when there is one; else the most lead-like stem (leadness >= 0.8) of these
# instrument classes carries the song and is anchored front-centre like a voice.
LEAD_CLASSES: tuple[str, ...] = ("lead_vocal", "spoken")
LEAD_INSTRUMENTS: tuple[str, ...] = (
    "synth_lead",
    "lead_guitar",
    "piano",
    "woodwind",
    "brass",
    "guitar",
    "acoustic_guitar",
    "keys",
)

# Output layouts. FLAT_FORMATS have no height channels: elevation is clamped to 0 there.
TARGET_FORMATS: tuple[str, ...] = (
    "iamf",
    "binaural",
    "stereo",
    "5.1",
    "7.1",
    "5.1.2",
    "5.1.4",
    "7.1.2",
    "7.1.4",
    "9.1.6",
    "atmos",
    "foa",
    "hoa",
)
FLAT_FORMATS: frozenset[str] = frozenset({"stereo", "5.1", "7.1"})

SECTIONS: tuple[str, ...] = (
    "intro",
    "verse",
    "pre_chorus",
    "chorus",
    "post_chorus",
    "hook",
    "bridge",
    "breakdown",
    "build",
    "drop",
    "solo",
    "interlude",
    "outro",
    "full",
)

STYLES: tuple[str, ...] = (
    "pop",
    "rock",
    "club",
    "edm",
    "techno",
    "house",
    "hiphop",
    "rnb",
    "jazz",
    "classical",
    "orchestral",
    "cinematic",
    "ambient",
    "folk",
    "acoustic",
    "metal",
    "lofi",
    "experimental",
    "live",
    "podcast",
)


@dataclass(frozen=True)
class RoomPreset:
    """A room the renderer can build: reverberation time and size.

    Attributes
    ----------
    rt60_s : float
        Broadband reverberation time in seconds.
    size_m : tuple of float
        Length, width, height of the shoebox in metres (for first-order image sources).
    """

    rt60_s: float
    size_m: tuple[float, float, float]


ROOM_PRESETS: dict[str, RoomPreset] = {
    "dry": RoomPreset(0.15, (4.0, 3.5, 2.6)),
    "studio_small": RoomPreset(0.3, (5.0, 4.0, 2.8)),
    "studio_large": RoomPreset(0.5, (9.0, 7.0, 3.5)),
    "club_small": RoomPreset(0.6, (12.0, 9.0, 4.0)),
    "club_medium": RoomPreset(0.9, (18.0, 14.0, 6.0)),
    "club_large": RoomPreset(1.3, (30.0, 24.0, 9.0)),
    "hall_medium": RoomPreset(1.6, (28.0, 20.0, 12.0)),
    "hall_large": RoomPreset(2.2, (40.0, 28.0, 16.0)),
    "church": RoomPreset(3.5, (45.0, 20.0, 20.0)),
    "outdoor": RoomPreset(0.1, (60.0, 60.0, 30.0)),
}


def family_of(stem_class: str) -> str:
    """Return the family name of a stem class (``"other"`` when unknown)."""
    return _FAMILY_OF.get(stem_class, "other")


@dataclass(frozen=True)
class StemDefaults:
    """Descriptors assumed for a stem of a class when the request leaves them out.

    band : (low, mid, high) energy fractions; leadness 0..1; transient 0..1; lufs in LUFS.
    """

    band: tuple[float, float, float]
    leadness: float
    transient: float
    lufs: float = -20.0


_D = StemDefaults
CLASS_DEFAULTS: dict[str, StemDefaults] = {
    "lead_vocal": _D((0.1, 0.65, 0.25), 0.95, 0.3, -16.0),
    "backing_vocal": _D((0.1, 0.65, 0.25), 0.45, 0.25),
    "choir": _D((0.15, 0.65, 0.2), 0.4, 0.15),
    "vocal_fx": _D((0.05, 0.55, 0.4), 0.3, 0.3),
    "spoken": _D((0.1, 0.7, 0.2), 0.8, 0.35),
    "kick": _D((0.8, 0.15, 0.05), 0.5, 0.95, -12.0),
    "snare": _D((0.2, 0.55, 0.25), 0.45, 0.9, -16.0),
    "clap": _D((0.1, 0.55, 0.35), 0.3, 0.9),
    "hihat": _D((0.0, 0.15, 0.85), 0.2, 0.85, -24.0),
    "cymbal": _D((0.0, 0.2, 0.8), 0.15, 0.7, -26.0),
    "tom": _D((0.45, 0.45, 0.1), 0.2, 0.85),
    "percussion": _D((0.1, 0.45, 0.45), 0.2, 0.8, -24.0),
    "drum_loop": _D((0.4, 0.35, 0.25), 0.35, 0.85),
    "overheads": _D((0.1, 0.35, 0.55), 0.2, 0.7),
    "room_mic": _D((0.3, 0.5, 0.2), 0.1, 0.6),
    "bass": _D((0.75, 0.22, 0.03), 0.55, 0.45, -14.0),
    "sub": _D((0.95, 0.05, 0.0), 0.35, 0.3, -16.0),
    "bass_synth": _D((0.7, 0.25, 0.05), 0.5, 0.45),
    "pad": _D((0.2, 0.6, 0.2), 0.25, 0.05, -22.0),
    "keys": _D((0.2, 0.65, 0.15), 0.4, 0.4),
    "piano": _D((0.25, 0.6, 0.15), 0.5, 0.5),
    "organ": _D((0.3, 0.6, 0.1), 0.35, 0.2),
    "guitar": _D((0.15, 0.7, 0.15), 0.45, 0.5),
    "acoustic_guitar": _D((0.15, 0.6, 0.25), 0.45, 0.55),
    "strings": _D((0.2, 0.6, 0.2), 0.35, 0.1),
    "brass": _D((0.15, 0.7, 0.15), 0.45, 0.4),
    "woodwind": _D((0.05, 0.75, 0.2), 0.4, 0.3),
    "synth": _D((0.2, 0.6, 0.2), 0.4, 0.4),
    "synth_lead": _D((0.1, 0.6, 0.3), 0.7, 0.4),
    "lead_guitar": _D((0.1, 0.7, 0.2), 0.7, 0.5),
    "arp": _D((0.1, 0.55, 0.35), 0.3, 0.7),
    "pluck": _D((0.1, 0.55, 0.35), 0.3, 0.75),
    "bell": _D((0.0, 0.45, 0.55), 0.25, 0.7),
    "fx": _D((0.1, 0.4, 0.5), 0.15, 0.5, -26.0),
    "riser": _D((0.1, 0.4, 0.5), 0.2, 0.2),
    "ambience": _D((0.15, 0.45, 0.4), 0.05, 0.1, -30.0),
    "atmosphere": _D((0.2, 0.45, 0.35), 0.05, 0.1, -30.0),
    "foley": _D((0.1, 0.5, 0.4), 0.1, 0.6),
    "noise": _D((0.05, 0.35, 0.6), 0.05, 0.3),
    "other": _D((0.2, 0.55, 0.25), 0.3, 0.4),
}
BANDS: tuple[str, ...] = ("low", "mid", "high")
