"""Output targets: ADM-OSC, IEM Plug-in Suite, SPAT Revolution and a generic template.

A target turns a :class:`~bridge.frame.Frame` (house convention: azimuth degrees positive =
left, elevation up, distance metres, gain dB) into the OSC messages one renderer understands,
converting at the edge, clamping to the receiver's documented ranges and never sending NaN.
It sends only what changed since the last frame (byte-exact comparison of the encoded
message), except for the objects the scheduler marks for a periodic refresh.

Flavours (``--target FLAVOUR:HOST:PORT[?key=value&...]``):

``adm`` -- ADM-OSC v1.0 (default port 4001). Object ``n`` (from 1):
    ``/adm/obj/n/aed fff`` azimuth deg (+left, -180..180), elevation deg (-90..90), distance
    normalised 0..1 (metres / ``dmax``); ``/adm/obj/n/gain f`` linear (0..3.98 = +12 dB);
    ``/adm/obj/n/w f`` width 0..1; ``/adm/obj/n/mute i``; ``/adm/obj/n/name s``;
    ``/adm/obj/n/dmax f`` metres. Options: ``dmax`` (metres for distance 1.0, default 10),
    ``env=1`` (send ``/adm/env/change s <section>`` on each section change).
``iem`` -- IEM MultiEncoder (one instance, up to 64 inputs). Object ``n`` is input ``n-1``:
    ``/MultiEncoder/azimuthK f`` (deg; IEM is +left like us: its spherical-to-Cartesian
    conversion is x = cos(el) cos(az), y = cos(el) sin(az) with y pointing left),
    ``/MultiEncoder/elevationK f``, ``/MultiEncoder/gainK f`` (dB, -60..10),
    ``/MultiEncoder/muteK i``. No distance or width parameter exists. Option ``prefix``.
``iem-stereo`` -- one IEM StereoEncoder instance following object ``obj`` (default 1):
    ``/StereoEncoder/azimuth f``, ``/StereoEncoder/elevation f``, ``/StereoEncoder/width f``
    (deg, width 0..1 -> 0..180). Options ``obj``, ``prefix``.
``spat`` -- SPAT Revolution: ``/source/n/aed fff`` with SPAT's azimuth sign (+right, so the
    sign is flipped here), elevation deg, distance metres; ``/source/n/gain f`` dB (-60..12).
``generic`` -- anything else, from templates: ``msg=ADDRESS:FIELD,FIELD`` (repeatable);
    the address may use ``{n}`` (object number), ``{i}`` (n - 1) and ``{id}``; fields are
    listed in :data:`GENERIC_FIELDS`.

Common options: ``bundle=1`` packs each frame into OSC bundles (timetag "immediately") of at
most ``mtu`` bytes (default 1400).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping
from urllib.parse import parse_qs

import numpy as np

from gravity.errors import quote

from .errors import TargetSpecError
from .frame import Frame
from .oscio import MessageTemplate, UdpOut, encode_message, pack_datagrams

__all__ = [
    "FLAVOURS",
    "GENERIC_FIELDS",
    "ADM_GAIN_MAX",
    "TargetSpec",
    "Target",
    "AdmTarget",
    "IemMultiTarget",
    "IemStereoTarget",
    "SpatTarget",
    "GenericTarget",
    "make_target",
]

FLAVOURS: tuple[str, ...] = ("adm", "iem", "iem-stereo", "spat", "generic")
DEFAULT_PORTS: Mapping[str, int] = {"adm": 4001}
ADM_GAIN_MAX = 10 ** (12 / 20)
"""Largest linear gain sent over ADM-OSC (+12 dB, the scene schema's maximum)."""
IEM_MAX_INPUTS = 64
MAX_HOST_CHARS = 253  # the longest DNS name (RFC 1035)

GENERIC_FIELDS: Mapping[str, str] = {
    "az": "f",  # azimuth deg, +left (house convention)
    "az_right": "f",  # azimuth deg, +right (SPAT / Text2Spatial convention)
    "el": "f",  # elevation deg, +up
    "dist": "f",  # distance m
    "dist_norm": "f",  # distance / dmax, 0..1
    "x": "f",  # metres forward
    "y": "f",  # metres to the left
    "z": "f",  # metres up
    "gain": "f",  # linear
    "gain_db": "f",  # dB
    "width": "f",  # 0..1
    "n": "i",  # object number (1-based)
    "id": "s",  # object name
}
"""Fields a ``generic`` template may send, with their OSC type tag."""

_COMMON_KEYS = ("bundle", "mtu")
_FLAVOUR_KEYS: Mapping[str, tuple[str, ...]] = {
    "adm": ("dmax", "env"),
    "iem": ("prefix",),
    "iem-stereo": ("prefix", "obj"),
    "spat": (),
    "generic": ("msg", "dmax"),
}
# Input namespaces a generic template must not use (they would be read back as DAW input).
_RESERVED_PREFIXES = ("/gravity/", "/live/")


def _flag(key: str, value: str, text: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise TargetSpecError(f"--target {quote(text)}: {key}={quote(value)} must be 0 or 1")


@dataclass(frozen=True)
class TargetSpec:
    """A parsed ``--target`` value.

    Attributes
    ----------
    flavour : str
        One of :data:`FLAVOURS`.
    host : str
        Receiver host name or address.
    port : int
        Receiver UDP port.
    bundle : bool
        Pack each frame into bundles.
    mtu : int
        Bundle size budget in bytes.
    dmax_m : float
        Metres that map to normalised distance 1.0 (adm, generic ``dist_norm``).
    env : bool
        adm: send ``/adm/env/change`` with the section name on section changes.
    prefix : str
        iem / iem-stereo: address prefix (default the plug-in name).
    obj : int
        iem-stereo: the object number this encoder instance follows.
    messages : tuple of (str, tuple of str)
        generic: (address template, field names) per message.
    """

    flavour: str
    host: str = "127.0.0.1"
    port: int = 4001
    bundle: bool = False
    mtu: int = 1400
    dmax_m: float = 10.0
    env: bool = False
    prefix: str = ""
    obj: int = 1
    messages: tuple[tuple[str, tuple[str, ...]], ...] = ()

    FORM: ClassVar[str] = "FLAVOUR:HOST:PORT[?key=value&...], e.g. adm:127.0.0.1:4001 or iem:127.0.0.1:9002"

    @classmethod
    def parse(cls, text: str) -> "TargetSpec":
        """Parse ``FLAVOUR[:HOST[:PORT]][?options]``; raises :class:`TargetSpecError` naming the problem."""
        head, _, query = str(text).partition("?")
        parts = head.split(":")
        flavour = parts[0].strip().lower()
        if flavour not in FLAVOURS:
            raise TargetSpecError(
                f"--target {quote(text)}: unknown flavour {quote(flavour)}; "
                f"expected one of {', '.join(FLAVOURS)} ({cls.FORM})"
            )
        if len(parts) > 3:
            raise TargetSpecError(f"--target {quote(text)}: too many ':' ({cls.FORM})")
        host = parts[1].strip() if len(parts) > 1 and parts[1].strip() else "127.0.0.1"
        if len(host) > MAX_HOST_CHARS or any(len(label) > 63 for label in host.split(".")):
            # DNS: a name of at most 253 characters, labels of at most 63 (RFC 1035); the resolver's
            # IDNA codec would fail with a UnicodeError deep in the socket call
            raise TargetSpecError(f"--target {quote(text)}: host {quote(host)} is not a host name or address")
        if len(parts) > 2:
            try:
                port = int(parts[2])
            except ValueError:
                raise TargetSpecError(f"--target {quote(text)}: port {quote(parts[2])} is not a number") from None
        elif flavour in DEFAULT_PORTS:
            port = DEFAULT_PORTS[flavour]
        else:
            raise TargetSpecError(f"--target {quote(text)}: {flavour} needs a port ({cls.FORM})")
        if not 1 <= port <= 65535:
            raise TargetSpecError(f"--target {quote(text)}: port must be 1..65535")
        allowed = _COMMON_KEYS + _FLAVOUR_KEYS[flavour]
        try:
            opts = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            raise TargetSpecError(f"--target {quote(text)}: options must look like ?key=value&key=value") from None
        kw: dict[str, object] = {}
        for key, values in opts.items():
            if key not in allowed:
                raise TargetSpecError(
                    f"--target {quote(text)}: unknown option {quote(key)} for {flavour}; allowed: {', '.join(allowed)}"
                )
            if key != "msg" and len(values) > 1:
                raise TargetSpecError(f"--target {quote(text)}: option {quote(key)} given twice")
            v = values[-1]
            if key == "bundle":
                kw["bundle"] = _flag(key, v, text)
            elif key == "env":
                kw["env"] = _flag(key, v, text)
            elif key == "mtu":
                kw["mtu"] = _int_in(key, v, 64, 65507, text)
            elif key == "obj":
                kw["obj"] = _int_in(key, v, 1, 1024, text)
            elif key == "dmax":
                try:
                    d = float(v)
                except ValueError:
                    d = float("nan")
                if not (math.isfinite(d) and d > 0):
                    raise TargetSpecError(
                        f"--target {quote(text)}: dmax={quote(v)} must be a positive number of metres"
                    )
                kw["dmax_m"] = d
            elif key == "prefix":
                if not re.fullmatch(r"(/[A-Za-z0-9_.\-]+)+", v):
                    raise TargetSpecError(f"--target {quote(text)}: prefix={quote(v)} must look like /MultiEncoder")
                kw["prefix"] = v
            elif key == "msg":
                kw["messages"] = tuple(_parse_generic_msg(m, text) for m in values)
        if flavour == "generic" and not kw.get("messages"):
            raise TargetSpecError(
                f"--target {quote(text)}: generic needs at least one msg=ADDRESS:FIELDS, "
                f"e.g. generic:127.0.0.1:9100?msg=/obj/{{n}}/aed:az,el,dist"
            )
        return cls(flavour=flavour, host=host, port=port, **kw)  # type: ignore[arg-type]

    def __str__(self) -> str:
        """``flavour:host:port``, the options left out (for log lines)."""
        return f"{self.flavour}:{self.host}:{self.port}"


def _int_in(key: str, value: str, lo: int, hi: int, text: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = lo - 1
    if not lo <= n <= hi:
        raise TargetSpecError(f"--target {quote(text)}: {key}={quote(value)} must be an integer {lo}..{hi}")
    return n


def _parse_generic_msg(spec: str, text: str) -> tuple[str, tuple[str, ...]]:
    address, sep, fields_s = spec.rpartition(":")
    if not sep or not address.startswith("/"):
        raise TargetSpecError(f"--target {quote(text)}: msg={quote(spec)} must look like /obj/{{n}}/aed:az,el,dist")
    if address.startswith(_RESERVED_PREFIXES):
        raise TargetSpecError(
            f"--target {quote(text)}: msg address {quote(address)} uses an input namespace "
            f"({', '.join(_RESERVED_PREFIXES)})"
        )
    try:
        address.format(n=1, i=0, id="x")
    except (KeyError, IndexError, ValueError):
        raise TargetSpecError(
            f"--target {quote(text)}: msg address {quote(address)} may only use {{n}}, {{i}}, {{id}}"
        ) from None
    fields = tuple(f.strip() for f in fields_s.split(",") if f.strip())
    bad = [f for f in fields if f not in GENERIC_FIELDS]
    if not fields or bad:
        raise TargetSpecError(
            f"--target {quote(text)}: msg={quote(spec)} has unknown field(s) {bad or fields_s!r}; "
            f"allowed: {', '.join(GENERIC_FIELDS)}"
        )
    return address, fields


# ------------------------------------------------------------------------------------ targets
class Target:
    """Base class: change detection, refresh, mute policy, packing and sending.

    Subclasses implement :meth:`_moving` (per-frame messages for one active object, each in a
    numbered slot) and may implement :meth:`_static` (names, ranges: sent on first appearance
    and on refresh) and :meth:`_mute`.

    Mute policy: Gravity only mutes objects the current scene does not contain, and only
    unmutes objects it muted itself, so a mute set by hand on the renderer is left alone.

    Parameters
    ----------
    spec : TargetSpec
        What and where.
    out : UdpOut, optional
        Sender; built from ``spec`` when omitted. Pass None-capable fakes in tests.
    """

    echo_prefixes: tuple[str, ...] = ()
    """Address prefixes this flavour sends; the listener drops them as echoes."""

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        self.spec = spec
        self.out = out if out is not None else UdpOut(spec.host, spec.port)
        self._last: dict[tuple[int, int], bytes] = {}
        self._static_sent: set[int] = set()
        self._muted: set[int] = set()
        self.messages_sent = 0
        self.frames_sent = 0

    # -- flavour hooks
    def _prepare(self, frame: Frame) -> object:
        """Vectorised per-frame conversion (clamping etc.); the result is passed to the hooks."""
        del frame  # the hooks' fixed signature; this default converts nothing
        return None

    def _moving(self, frame: Frame, k: int, prep: Any) -> list[tuple[int, bytes]]:
        raise NotImplementedError

    def _static(self, frame: Frame, k: int) -> list[bytes]:
        """Messages sent when object ``k`` first appears and on refresh (names, ranges); none by default."""
        del frame, k  # the hooks' fixed signature
        return []

    def _mute(self, k: int, muted: bool) -> bytes | None:
        """The message that mutes (``muted``) or unmutes object ``k``; None: the flavour cannot mute."""
        del k, muted  # the hooks' fixed signature
        return None

    def _preamble(self, frame: Frame) -> list[bytes]:
        """Messages sent before each frame's objects; none by default."""
        del frame  # the hooks' fixed signature
        return []

    def _objects(self, frame: Frame) -> range | tuple[int, ...]:
        """Object indices this target addresses."""
        return range(frame.size)

    # -- engine
    def reset(self) -> None:
        """Forget what was sent: the next frame sends every value again."""
        self._last.clear()
        self._static_sent.clear()

    def frame_messages(self, frame: Frame, refresh: np.ndarray) -> list[bytes]:
        """The encoded messages this frame needs.

        Parameters
        ----------
        frame : Frame
            The instant to send.
        refresh : np.ndarray [shape=(N,), dtype=bool]
            Objects to send in full even if unchanged (periodic refresh).
        """
        msgs = self._preamble(frame)
        prep = self._prepare(frame)
        last = self._last
        active = frame.active
        for k in self._objects(frame):
            full = bool(refresh[k]) if k < len(refresh) else False
            if not active[k]:
                if k not in self._muted or full:
                    m = self._mute(k, True)
                    if m is not None:
                        msgs.append(m)
                        self._muted.add(k)
                continue
            if k in self._muted:
                m = self._mute(k, False)
                if m is not None:
                    msgs.append(m)
                self._muted.discard(k)
            if full or k not in self._static_sent:
                msgs.extend(self._static(frame, k))
                self._static_sent.add(k)
            for slot, data in self._moving(frame, k, prep):
                key = (k, slot)
                if full or last.get(key) != data:
                    last[key] = data
                    msgs.append(data)
        return msgs

    def send_frame(self, frame: Frame, refresh: np.ndarray) -> int:
        """Encode and send one frame; returns the number of messages handed to the socket."""
        msgs = self.frame_messages(frame, refresh)
        if not msgs:
            return 0
        for datagram in pack_datagrams(msgs, bundle=self.spec.bundle, max_bytes=self.spec.mtu):
            self.out.send(datagram)
        self.messages_sent += len(msgs)
        self.frames_sent += 1
        return len(msgs)

    def close(self) -> None:
        """Close the socket."""
        self.out.close()


def _finite(a: np.ndarray, fill: float = 0.0) -> np.ndarray:
    return np.nan_to_num(np.asarray(a, dtype=float), nan=fill, posinf=fill, neginf=fill)


class AdmTarget(Target):
    """ADM-OSC v1.0 (see the module docstring for the messages and ranges)."""

    echo_prefixes = ("/adm/",)

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        super().__init__(spec, out)
        self._tpl: dict[int, tuple[MessageTemplate, MessageTemplate, MessageTemplate, MessageTemplate]] = {}

    def _templates(self, k: int) -> tuple[MessageTemplate, MessageTemplate, MessageTemplate, MessageTemplate]:
        t = self._tpl.get(k)
        if t is None:
            base = f"/adm/obj/{k + 1}"
            t = (
                MessageTemplate(base + "/aed", "fff"),
                MessageTemplate(base + "/gain", "f"),
                MessageTemplate(base + "/w", "f"),
                MessageTemplate(base + "/mute", "i"),
            )
            self._tpl[k] = t
        return t

    def _prepare(self, frame: Frame) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
        aed = frame.aed
        az = np.clip(_finite(aed[:, 0]), -180.0, 180.0)
        el = np.clip(_finite(aed[:, 1]), -90.0, 90.0)
        d = np.clip(_finite(aed[:, 2]) / self.spec.dmax_m, 0.0, 1.0)
        gain = np.clip(10.0 ** (_finite(frame.gain_db, -60.0) / 20.0), 0.0, ADM_GAIN_MAX)
        w = np.clip(_finite(frame.width), 0.0, 1.0)
        return az.tolist(), el.tolist(), d.tolist(), gain.tolist(), w.tolist()

    def _moving(self, frame: Frame, k: int, prep: Any) -> list[tuple[int, bytes]]:
        del frame  # prepared in _prepare
        az, el, d, gain, w = prep
        t = self._templates(k)
        return [(0, t[0].pack(az[k], el[k], d[k])), (1, t[1].pack(gain[k])), (2, t[2].pack(w[k]))]

    def _static(self, frame: Frame, k: int) -> list[bytes]:
        base = f"/adm/obj/{k + 1}"
        return [
            encode_message(base + "/name", [frame.names[k][:128]], "s"),
            encode_message(base + "/dmax", [self.spec.dmax_m], "f"),
        ]

    def _mute(self, k: int, muted: bool) -> bytes | None:
        return self._templates(k)[3].pack(1 if muted else 0)

    def _preamble(self, frame: Frame) -> list[bytes]:
        if self.spec.env and frame.new_section and frame.section:
            return [encode_message("/adm/env/change", [frame.section[:128]], "s")]
        return []


class IemMultiTarget(Target):
    """IEM MultiEncoder: object ``n`` drives input ``n - 1`` (inputs 0..63)."""

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        super().__init__(spec, out)
        self.prefix = spec.prefix or "/MultiEncoder"
        self.echo_prefixes = (self.prefix + "/",)
        self._tpl: dict[int, tuple[MessageTemplate, ...]] = {}

    def _objects(self, frame: Frame) -> range:
        return range(min(frame.size, IEM_MAX_INPUTS))

    def _templates(self, k: int) -> tuple[MessageTemplate, ...]:
        t = self._tpl.get(k)
        if t is None:
            p = self.prefix
            t = (
                MessageTemplate(f"{p}/azimuth{k}", "f"),
                MessageTemplate(f"{p}/elevation{k}", "f"),
                MessageTemplate(f"{p}/gain{k}", "f"),
                MessageTemplate(f"{p}/mute{k}", "i"),
            )
            self._tpl[k] = t
        return t

    def _prepare(self, frame: Frame) -> tuple[list[float], list[float], list[float]]:
        az = np.clip(_finite(frame.aed[:, 0]), -180.0, 180.0)
        el = np.clip(_finite(frame.aed[:, 1]), -90.0, 90.0)
        g = np.clip(_finite(frame.gain_db, -60.0), -60.0, 10.0)
        return az.tolist(), el.tolist(), g.tolist()

    def _moving(self, frame: Frame, k: int, prep: Any) -> list[tuple[int, bytes]]:
        del frame  # prepared in _prepare
        az, el, g = prep
        t = self._templates(k)
        return [(0, t[0].pack(az[k])), (1, t[1].pack(el[k])), (2, t[2].pack(g[k]))]

    def _mute(self, k: int, muted: bool) -> bytes | None:
        return self._templates(k)[3].pack(1 if muted else 0)


class IemStereoTarget(Target):
    """IEM StereoEncoder: one instance follows object ``spec.obj``; width 0..1 -> 0..180 deg."""

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        super().__init__(spec, out)
        p = spec.prefix or "/StereoEncoder"
        self.echo_prefixes = (p + "/",)
        self._tpl = (
            MessageTemplate(f"{p}/azimuth", "f"),
            MessageTemplate(f"{p}/elevation", "f"),
            MessageTemplate(f"{p}/width", "f"),
        )

    def _objects(self, frame: Frame) -> tuple[int, ...]:
        k = self.spec.obj - 1
        return (k,) if k < frame.size else ()

    def _moving(self, frame: Frame, k: int, prep: Any) -> list[tuple[int, bytes]]:
        del prep  # one object: nothing to vectorise, so there is no _prepare
        az = float(np.clip(_finite(frame.aed[k, 0]), -180.0, 180.0))
        el = float(np.clip(_finite(frame.aed[k, 1]), -90.0, 90.0))
        w = float(np.clip(_finite(frame.width[k]), 0.0, 1.0)) * 180.0
        t = self._tpl
        return [(0, t[0].pack(az)), (1, t[1].pack(el)), (2, t[2].pack(w))]


class SpatTarget(Target):
    """SPAT Revolution: ``/source/n/aed`` with azimuth +right (sign flipped here), metres."""

    echo_prefixes = ("/source/",)

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        super().__init__(spec, out)
        self._tpl: dict[int, tuple[MessageTemplate, MessageTemplate]] = {}

    def _prepare(self, frame: Frame) -> tuple[list[float], list[float], list[float], list[float]]:
        az_right = np.clip(-_finite(frame.aed[:, 0]), -180.0, 180.0)
        el = np.clip(_finite(frame.aed[:, 1]), -90.0, 90.0)
        d = np.clip(_finite(frame.aed[:, 2]), 0.0, 1000.0)
        g = np.clip(_finite(frame.gain_db, -60.0), -60.0, 12.0)
        return az_right.tolist(), el.tolist(), d.tolist(), g.tolist()

    def _moving(self, frame: Frame, k: int, prep: Any) -> list[tuple[int, bytes]]:
        del frame  # prepared in _prepare
        az, el, d, g = prep
        t = self._tpl.get(k)
        if t is None:
            t = self._tpl[k] = (
                MessageTemplate(f"/source/{k + 1}/aed", "fff"),
                MessageTemplate(f"/source/{k + 1}/gain", "f"),
            )
        return [(0, t[0].pack(az[k], el[k], d[k])), (1, t[1].pack(g[k]))]


class GenericTarget(Target):
    """Messages from ``msg=ADDRESS:FIELDS`` templates (see :data:`GENERIC_FIELDS`)."""

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        super().__init__(spec, out)
        self.echo_prefixes = tuple(
            sorted({"/" + a.split("/")[1].split("{")[0] + "/" for a, _ in spec.messages if a.count("/") >= 2})
        )
        self._types = tuple("".join(GENERIC_FIELDS[f] for f in fields) for _, fields in spec.messages)
        self._addr: dict[tuple[int, int], str] = {}

    def _prepare(self, frame: Frame) -> dict[str, list[float]]:
        az = np.clip(_finite(frame.aed[:, 0]), -180.0, 180.0)
        el = np.clip(_finite(frame.aed[:, 1]), -90.0, 90.0)
        d = np.clip(_finite(frame.aed[:, 2]), 0.0, 1000.0)
        a, e = np.radians(az), np.radians(el)
        g_db = np.clip(_finite(frame.gain_db, -60.0), -120.0, 24.0)
        return {
            "az": az.tolist(),
            "az_right": np.clip(-az, -180.0, 180.0).tolist(),
            "el": el.tolist(),
            "dist": d.tolist(),
            "dist_norm": np.clip(d / self.spec.dmax_m, 0.0, 1.0).tolist(),
            "x": (d * np.cos(e) * np.cos(a)).tolist(),
            "y": (d * np.cos(e) * np.sin(a)).tolist(),
            "z": (d * np.sin(e)).tolist(),
            "gain": (10.0 ** (g_db / 20.0)).tolist(),
            "gain_db": g_db.tolist(),
            "width": np.clip(_finite(frame.width), 0.0, 1.0).tolist(),
        }

    def _moving(self, frame: Frame, k: int, prep: Any) -> list[tuple[int, bytes]]:
        cols: dict[str, list[float]] = prep
        out = []
        for slot, ((tmpl, fields), types) in enumerate(zip(self.spec.messages, self._types, strict=True)):
            addr = self._addr.get((k, slot))
            if addr is None:
                addr = self._addr[(k, slot)] = tmpl.format(n=k + 1, i=k, id=frame.names[k])
            vals = [k + 1 if f == "n" else frame.names[k] if f == "id" else cols[f][k] for f in fields]
            out.append((slot, encode_message(addr, vals, types)))
        return out


_CLASSES: Mapping[str, Callable[[TargetSpec, UdpOut | None], Target]] = {
    "adm": AdmTarget,
    "iem": IemMultiTarget,
    "iem-stereo": IemStereoTarget,
    "spat": SpatTarget,
    "generic": GenericTarget,
}


def make_target(spec: TargetSpec | str, out: UdpOut | None = None) -> Target:
    """Build the target for a spec (or a ``--target`` string); ``out`` overrides the socket."""
    if isinstance(spec, str):
        spec = TargetSpec.parse(spec)
    return _CLASSES[spec.flavour](spec, out)
