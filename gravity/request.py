"""The request: what a scene must answer (typed view of ``request.schema.json``).

Optional descriptors are filled from the stem class (:data:`gravity.vocab.CLASS_DEFAULTS`) so
every consumer sees the same defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from gravity.errors import ValidationError
from gravity.motion import section_seconds
from gravity.schema import check_request
from gravity.vocab import BANDS, CLASS_DEFAULTS, FLAT_FORMATS, LEAD_CLASSES, LEAD_INSTRUMENTS

__all__ = ["Stem", "Request"]


@dataclass(frozen=True)
class Stem:
    """One stem's descriptors.

    Attributes
    ----------
    id, cls : str
        Identifier and class (see :data:`gravity.vocab.STEM_CLASSES`).
    lufs : float
        Integrated loudness in LUFS.
    transient : float
        Transient strength 0..1.
    band : tuple of float
        (low, mid, high) energy fractions, normalised to sum 1.
    leadness : float
        0..1, how much the stem carries the song.
    hint : str
        Plain-language placement hint ("" when none).
    """

    id: str
    cls: str
    lufs: float
    transient: float
    band: tuple[float, float, float]
    leadness: float
    hint: str = ""

    @property
    def dominant_band(self) -> str:
        """``"low"``, ``"mid"`` or ``"high"``: the band holding most energy."""
        return BANDS[max(range(3), key=lambda i: self.band[i])]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Stem":
        """A stem from its (validated) request entry; missing descriptors take the class defaults, bands sum to 1."""
        dflt = CLASS_DEFAULTS[d["class"]]
        be = d.get("band_energy")
        raw = (float(be["low"]), float(be["mid"]), float(be["high"])) if be else dflt.band
        total = sum(raw)
        band = (raw[0] / total, raw[1] / total, raw[2] / total) if total > 0 else dflt.band
        return cls(
            id=d["id"],
            cls=d["class"],
            lufs=float(d.get("lufs", dflt.lufs)),
            transient=float(d.get("transient", dflt.transient)),
            band=band,
            leadness=float(d.get("leadness", dflt.leadness)),
            hint=d.get("hint", ""),
        )


@dataclass(frozen=True)
class Request:
    """A validated request. ``raw`` keeps the original document (for prompts and hashing)."""

    target_format: str
    max_objects: int
    style: str
    section: str
    bpm: float
    energy: float
    time_signature: str
    section_bars: int
    stems: tuple[Stem, ...]
    rules: tuple[Mapping[str, Any], ...]
    prompt: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> "Request":
        """Validate and wrap a request document; raises :class:`ValidationError`.

        Bounds are checked before anything else (:func:`gravity.schema.check_request`): at most
        256 stems and 256 rules, ids of at most 64 characters, hints of at most 500, a prompt of
        at most 2000, nesting at most 32 deep, integers within int64; each issue names the field
        and the limit.
        """
        issues = check_request(d)
        if issues:
            raise ValidationError(issues, source)
        g = d.get("global", {})
        return cls(
            target_format=d["target_format"],
            max_objects=int(d["max_objects"]),
            style=d.get("style", "pop"),
            section=d.get("section", "verse"),
            bpm=float(g.get("bpm", 120.0)),
            energy=float(g.get("energy", 0.5)),
            time_signature=g.get("time_signature", "4/4"),
            section_bars=int(g.get("section_bars", 8)),
            stems=tuple(Stem.from_dict(s) for s in d["stems"]),
            rules=tuple(d.get("rules", [])),
            prompt=d.get("prompt", ""),
            raw=d,
        )

    @property
    def budget(self) -> int:
        """Effective object budget: ``max_objects`` and every ``max_objects`` rule."""
        caps = [r["max"] for r in self.rules if r["type"] == "max_objects"]
        return min([self.max_objects, *caps])

    @property
    def lead_ids(self) -> frozenset[str]:
        """The stems that carry the song, anchored front-centre: every voice (lead_vocal, spoken);
        without a voice, the most lead-like instrument stem (a :data:`~gravity.vocab.LEAD_INSTRUMENTS`
        class with leadness >= 0.6; the first of equals), if any.
        """
        voices = frozenset(s.id for s in self.stems if s.cls in LEAD_CLASSES)
        if voices:
            return voices
        solo = [s for s in self.stems if s.cls in LEAD_INSTRUMENTS and s.leadness >= 0.6]
        return frozenset({max(solo, key=lambda s: s.leadness).id}) if solo else frozenset()

    @property
    def has_height(self) -> bool:
        """False for layouts without height channels (stereo, 5.1, 7.1)."""
        return self.target_format not in FLAT_FORMATS

    @property
    def section_s(self) -> float:
        """Section length in seconds (motion t = 1)."""
        return section_seconds(self.bpm, self.time_signature, self.section_bars)

    def stem(self, stem_id: str) -> Stem:
        """The stem with id ``stem_id`` (``StopIteration`` if there is none)."""
        return next(s for s in self.stems if s.id == stem_id)

    def timing(self) -> dict[str, Any]:
        """The scene's ``timing`` block."""
        return {
            "bpm": self.bpm,
            "time_signature": self.time_signature,
            "section_bars": self.section_bars,
            "section": self.section,
        }
