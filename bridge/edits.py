"""Hand edits to the live scene: what a producer drags, widens, turns down or locks, kept per
section on top of whatever the planner proposes.

An :class:`Edit` changes one scene object: a static position (azimuth deg +left, elevation deg,
distance m; a dragged object stops moving), its width (0..1), its gain (dB), its lock, or resets
it. :class:`SceneEdits` keeps, per section, one :class:`Override` per edited object and lays the
overrides over each scene book the planning thread publishes, so an edit survives re-plans
(markers, tempo) for the rest of the song section. Every edit is checked by the rule engine
(:func:`gravity.rules.check`) against the section's request before it is published; a refused
edit names the rule (``rules[1].mono_low_end``) and changes nothing.

Re-directions: an unlocked override is dropped when the direction it was made under changes (a
new scene prompt, or a new hint for one of its stems): the producer asked for a new proposal. A
locked object keeps its whole object (motion included) through every re-plan, as long as the new
plan still has an object of that id with the same member stems.

Threads: :meth:`SceneEdits.published` runs in the planning thread, :meth:`SceneEdits.apply` in
the thread that received the edit (the browser UI's); both hold one lock briefly and hand the
resulting book to ``publish`` under it, so the last book handed over always carries every
accepted edit. The frame thread only ever reads the published book.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from gravity.errors import GravityError
from gravity.motion import wrap_az
from gravity.request import Request
from gravity.rules import check
from gravity.scene import Scene

from .scenes import PreparedScene, SceneBook, section_key

__all__ = ["Edit", "EditOutcome", "Override", "SceneEdits", "Directions", "overlay", "LIMITS"]

log = logging.getLogger(__name__)

LIMITS: Mapping[str, tuple[float, float]] = {
    "el_deg": (-90.0, 90.0),
    "dist_m": (0.25, 50.0),
    "width": (0.0, 1.0),
    "gain_db": (-60.0, 12.0),
}
"""Accepted ranges of edited values (the scene schema's); azimuth is wrapped to (-180, 180]."""

Directions = tuple[str | None, Mapping[str, str]]
"""What planning is asked now: (scene prompt or None, stem id -> live hint)."""

_RULE_INDEX = re.compile(r"rules\[(\d+)\]")


def _finite(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number")
    lo_hi = LIMITS.get(name)
    if lo_hi is not None and not lo_hi[0] <= v <= lo_hi[1]:
        raise ValueError(f"{name} {v:g} outside {lo_hi[0]:g}..{lo_hi[1]:g}")
    return v


@dataclass(frozen=True)
class Edit:
    """One change to one scene object (fields left None are not changed).

    Attributes
    ----------
    object_id : str
        The scene object's id.
    position : (float, float, float) or None
        New static position: azimuth deg (+left, wrapped to (-180, 180]), elevation deg
        (-90..90), distance m (0.25..50). The object's motion is removed.
    width : float or None
        0..1.
    gain_db : float or None
        -60..12 dB.
    locked : bool or None
        Lock (keep through re-plans and prompts) or unlock.
    reset : bool
        Drop every edit of this object in this section: the plan's object comes back.

    Raises
    ------
    ValueError
        A non-finite or out-of-range value (nothing reaches the scene unchecked).
    """

    object_id: str
    position: tuple[float, float, float] | None = None
    width: float | None = None
    gain_db: float | None = None
    locked: bool | None = None
    reset: bool = False

    def __post_init__(self) -> None:
        """Check every value; round as the rule engine quantises (0.1 deg, 1 cm, 0.01, 0.1 dB)."""
        if self.position is not None:
            az, el, d = (float(x) for x in self.position)
            if not math.isfinite(az):
                raise ValueError("az_deg must be a finite number")
            pos = (round(float(wrap_az(az)), 1), round(_finite("el_deg", el), 1), round(_finite("dist_m", d), 2))
            object.__setattr__(self, "position", (180.0 if pos[0] <= -180.0 else pos[0], pos[1], pos[2]))
        if self.width is not None:
            object.__setattr__(self, "width", round(_finite("width", self.width), 2))
        if self.gain_db is not None:
            object.__setattr__(self, "gain_db", round(_finite("gain_db", self.gain_db), 1))

    @property
    def fields(self) -> frozenset[str]:
        """The object fields this edit sets (``position``, ``width``, ``gain_db``)."""
        return frozenset(
            k
            for k, v in (("position", self.position), ("width", self.width), ("gain_db", self.gain_db))
            if v is not None
        )

    def applied_to(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the object document ``obj`` with this edit's fields set."""
        out = dict(obj)
        if self.position is not None:
            out["az_deg"], out["el_deg"], out["dist_m"] = self.position
            out.pop("motion", None)  # a dragged object stays where it was put
        if self.width is not None:
            out["width"] = self.width
        if self.gain_db is not None:
            out["gain_db"] = self.gain_db
        return out


def _stems(obj: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(obj.get("stems") or (obj["id"],))


def _asked(obj: Mapping[str, Any], directions: Directions) -> tuple[Any, ...]:
    """The direction an object is planned under: the prompt and its member stems' live hints."""
    prompt, hints = directions
    return (prompt, tuple(hints.get(s, "") for s in _stems(obj)))


@dataclass(frozen=True)
class Override:
    """The producer's version of one object in one section.

    Attributes
    ----------
    obj : mapping
        The whole object document as edited (what a locked object keeps).
    fields : frozenset of str
        What the producer set (``position``, ``width``, ``gain_db``): laid over a new plan's object
        when unlocked.
    locked : bool
        Keep ``obj`` as it is through re-plans and new directions.
    asked : tuple
        The direction it was made under (see :func:`overlay`).
    """

    obj: Mapping[str, Any]
    fields: frozenset[str]
    locked: bool
    asked: tuple[Any, ...]


def overlay(
    doc: Mapping[str, Any], overrides: Mapping[str, Override], directions: Directions
) -> tuple[dict[str, Any], dict[str, Override]]:
    """A scene document with ``overrides`` laid over its objects, and the overrides that held.

    A locked override replaces its object whole when the plan has an object of that id with the
    same member stems; an unlocked one sets its ``fields`` on the plan's object while the object is
    planned under the same direction as when it was made (same prompt, same hints of its stems).
    Others are dropped (left out of the returned overrides).
    """
    kept: dict[str, Override] = {}
    objs = []
    for o in doc.get("objects", []):
        ov = overrides.get(o["id"])
        if ov is not None and ov.locked and _stems(ov.obj) == _stems(o):
            objs.append(dict(ov.obj))
            kept[o["id"]] = ov
        elif ov is not None and not ov.locked and ov.asked == _asked(o, directions):
            new = dict(o)
            if "position" in ov.fields:
                new["az_deg"], new["el_deg"], new["dist_m"] = ov.obj["az_deg"], ov.obj["el_deg"], ov.obj["dist_m"]
                new.pop("motion", None)
            for f in ("width", "gain_db"):
                if f in ov.fields:
                    new[f] = ov.obj[f]
            objs.append(new)
            kept[o["id"]] = ov
        else:
            objs.append(o)
    return {**doc, "objects": objs}, kept


@dataclass(frozen=True)
class EditOutcome:
    """What became of an edit.

    Attributes
    ----------
    accepted : bool
        The edit is in the published scene.
    object_id : str
    section : str or None
        The section (marker name) it applies to; None = the default scene.
    rule : str
        When refused: the rule label(s), e.g. ``rules[1].mono_low_end``, or ``unknown object``.
    message : str
        When refused: what broke, e.g. ``position (0.0, 40.0) breaks a positional rule``.
    rules : tuple of mapping
        The request's rules the refusal names (their JSON).
    request : Request or None
        The section's request the edit was checked against.
    proposed, edited : mapping or None
        The planned scene document and the scene with every edit of the section (accepted only).
    source : str
        Who proposed the planned scene (``planner``, the model's name, ``file:x.json``).
    book : SceneBook or None
        The book published with the edit (accepted only).
    """

    accepted: bool
    object_id: str
    section: str | None
    rule: str = ""
    message: str = ""
    rules: tuple[Mapping[str, Any], ...] = ()
    request: Request | None = None
    proposed: Mapping[str, Any] | None = None
    edited: Mapping[str, Any] | None = None
    source: str = ""
    book: SceneBook | None = field(default=None, repr=False)


class SceneEdits:
    """Per-section overrides laid over every published scene book (thread-safe).

    Parameters
    ----------
    publish : callable
        ``publish(book)``: hands a book to the frame thread (swap a reference, wake it). Called
        under this object's lock, so books are handed over in the order they were made.
    request_for : callable
        ``request_for(section name or None)`` -> the section's validated :class:`Request`.
    directions : callable
        Returns the :data:`Directions` planning is under now.
    """

    def __init__(
        self,
        publish: Callable[[SceneBook], None],
        request_for: Callable[[str | None], Request],
        directions: Callable[[], Directions] = lambda: (None, {}),
    ) -> None:
        self._publish = publish
        self._request_for = request_for
        self._directions = directions
        self._lock = threading.Lock()
        self._raw: SceneBook | None = None
        self._book: SceneBook | None = None
        self._overrides: dict[str | None, dict[str, Override]] = {}
        self._made: dict[str | None, tuple[PreparedScene, PreparedScene]] = {}  # key -> (plan, plan + edits)
        self.version = 0
        """Bumped on every change of the edits (accepted, dropped): the UI re-reads the scene."""
        self.accepted = 0
        self.refused = 0

    # ------------------------------------------------------------------ reads
    @property
    def book(self) -> SceneBook | None:
        """The last book handed to ``publish`` (plans + edits)."""
        return self._book

    def state(self, section: str | None) -> dict[str, tuple[frozenset[str], bool]]:
        """Object id -> (fields edited, locked) in ``section`` (a copy)."""
        ovs = self._overrides.get(section_key(section), {})
        return {k: (v.fields, v.locked) for k, v in ovs.items()}

    def planned(self, section: str | None) -> PreparedScene | None:
        """The planner's scene for ``section`` (without edits); None before the first book."""
        raw = self._raw
        return None if raw is None else raw.resolve(section)

    # ------------------------------------------------------------------ writes
    def published(self, raw: SceneBook) -> SceneBook:
        """A new planned book (planning thread): lay the overrides over it and publish the result."""
        with self._lock:
            self._raw = raw
            try:
                book = self._compose(raw, {})
            except Exception:  # an edits bug must never stop a new plan from playing
                log.exception("hand edits could not be laid over a new plan; dropped")
                self._overrides.clear()
                self._made.clear()
                self.version += 1
                book = raw
            self._book = book
            self._publish(book)
            return book

    def apply(self, edit: Edit, section: str | None) -> EditOutcome:
        """Check ``edit`` of ``section``'s scene with the rule engine and publish it, or refuse it.

        Never raises for a bad edit: an unknown object or a broken rule is a refused outcome.
        """
        with self._lock:
            raw = self._raw
            if raw is None:
                return EditOutcome(False, edit.object_id, section, "not started", "no scene yet")
            key = section_key(section)
            plan = raw.resolve(section)
            made = self._made.get(key)
            now = made[1] if made is not None and made[0] is plan else plan
            obj = next((o for o in now.scene.raw.get("objects", []) if o.get("id") == edit.object_id), None)
            if obj is None:
                self.refused += 1
                return EditOutcome(
                    False, edit.object_id, section, "unknown object", f"no object {edit.object_id!r} here"
                )
            overrides = dict(self._overrides.get(key, {}))
            old = overrides.get(edit.object_id)
            directions = self._directions()
            if edit.reset:
                overrides.pop(edit.object_id, None)
            else:
                overrides[edit.object_id] = Override(
                    obj=edit.applied_to(obj),
                    fields=(old.fields if old else frozenset()) | edit.fields,
                    locked=old.locked if edit.locked is None and old else bool(edit.locked),
                    asked=_asked(obj, directions),
                )
            doc, kept = overlay(plan.scene.raw, overrides, directions)
            try:
                request = self._request_for(section)
            except (GravityError, ValueError) as exc:  # (the request validated at start: not expected)
                return EditOutcome(False, edit.object_id, section, "request", str(exc)[:200])
            broken = check(request, doc, schema=False)
            if broken:
                self.refused += 1
                v = broken[0]
                named = tuple(request.rules[int(i)] for i in _RULE_INDEX.findall(v.rule) if int(i) < len(request.rules))
                return EditOutcome(False, edit.object_id, section, v.rule, v.message, named, request)
            edited = (
                PreparedScene(
                    Scene.from_dict(doc, source="edited scene"),
                    raw.map,
                    source=f"{plan.source}+edits",
                    section=plan.section,
                    fallback_section_s=plan.section_s,
                    crossfade_in=False,  # the producer's hand: on the wire in the next frame
                )
                if kept
                else plan
            )
            self._set(key, plan, edited, kept)
            book = self._compose(raw, {key: edited})
            self._book = book
            self._publish(book)
            self.accepted += 1
            return EditOutcome(
                True,
                edit.object_id,
                section,
                request=request,
                proposed=plan.scene.raw,
                edited=doc,
                source=plan.source,
                book=book,
            )

    # ------------------------------------------------------------------ (holding the lock)
    def _set(self, key: str | None, plan: PreparedScene, edited: PreparedScene, kept: dict[str, Override]) -> None:
        self.version += 1
        if kept:
            self._overrides[key] = kept
            self._made[key] = (plan, edited)
        else:
            self._overrides.pop(key, None)
            self._made.pop(key, None)

    def _compose(self, raw: SceneBook, fresh: Mapping[str | None, PreparedScene]) -> SceneBook:
        """``raw`` with every section's overrides laid over it (``fresh``: scenes just made)."""
        if not self._overrides:
            return raw
        default, sections = raw.default, dict(raw.sections)
        for key in list(self._overrides):
            plan = raw.default if key is None else raw.sections.get(key, raw.default)
            scene = fresh.get(key)
            if scene is None:
                made = self._made.get(key)
                scene = made[1] if made is not None and made[0] is plan else self._reapply(key, plan)
            if key is None:
                default = scene
            else:
                sections[key] = scene
        return SceneBook(raw.map, default, sections, raw.version)

    def _reapply(self, key: str | None, plan: PreparedScene) -> PreparedScene:
        """A new plan for an edited section: lay the overrides over it; those the rules refuse now
        (the plan moved a neighbour into a masking zone, say) are dropped, unlocked ones first.
        """
        overrides = self._overrides.get(key, {})
        directions = self._directions()
        request = self._request_for(key)
        for attempt in (overrides, {k: v for k, v in overrides.items() if v.locked}, {}):
            doc, kept = overlay(plan.scene.raw, attempt, directions)
            if kept and check(request, doc, schema=False):
                continue
            if len(kept) < len(overrides):
                log.info("section %s: %d hand edit(s) dropped by a re-plan", key, len(overrides) - len(kept))
            if not kept:
                self._set(key, plan, plan, {})
                return plan
            edited = PreparedScene(
                Scene.from_dict(doc, source="edited scene"),
                plan.map,
                source=f"{plan.source}+edits",
                section=plan.section,
                fallback_section_s=plan.section_s,
            )
            self._set(key, plan, edited, kept)
            return edited
        return plan  # (unreachable: the last attempt keeps nothing)
