"""Output targets: ADM-OSC, IEM Plug-in Suite, SPAT Revolution and a generic template.

A target turns a :class:`~bridge.frame.Frame` (house convention: azimuth degrees positive =
left, elevation up, distance metres, gain dB) into the OSC messages one renderer understands,
converting at the edge, clamping to the receiver's documented ranges and never sending NaN.
It sends only what changed since the last frame (byte-exact comparison of the encoded
message), except for the objects the scheduler marks for a periodic refresh.

Flavours (``--target FLAVOUR:HOST:PORT[?key=value&...]``):

``adm`` -- ADM-OSC v1.0 (default port 4001). Object ``n`` (from 1):
    ``/adm/obj/n/aed fff`` azimuth deg (+left, -180..180), elevation deg (-90..90), distance
    normalised 0..1 (metres / ``dmax``), or with ``coords=xyz`` ``/adm/obj/n/xyz fff``
    (see below); ``/adm/obj/n/gain f`` linear (0..3.98 = +12 dB, see *Gain*);
    ``/adm/obj/n/w f`` width 0..1; ``/adm/obj/n/mute i``; ``/adm/obj/n/name s``;
    ``/adm/obj/n/dmax f`` metres; ``/adm/obj/n/dref f`` normalised (only with ``dref=``).
    Options: ``dmax`` (metres for distance 1.0; default 10, 1 with ``coords=xyz``),
    ``env=1`` (send ``/adm/env/change s <section>`` on each section change),
    ``coords=aed|xyz``, ``dref`` (metres), ``globaldmax=1`` (send ``/adm/obj/*/dmax`` instead
    of a per-object dmax), ``head=1`` (forward the head pose Gravity receives as
    ``/adm/lis/ypr f f f``, degrees, yaw + left, pitch + up, and ``/adm/lis/xyz f f f`` once the
    head has moved, normalised like the listener input: :mod:`renderer.listener`).
``iem`` -- IEM MultiEncoder (one instance, up to 64 inputs). Object ``n`` is input ``n-1``:
    ``/MultiEncoder/azimuthK f`` (deg; IEM is +left like us: its spherical-to-Cartesian
    conversion is x = cos(el) cos(az), y = cos(el) sin(az) with y pointing left),
    ``/MultiEncoder/elevationK f``, ``/MultiEncoder/gainK f`` (dB, -60..10),
    ``/MultiEncoder/muteK i``, and ``/MultiEncoder/inputSetting i`` (number of inputs, min(N, 64))
    on the first frame, after :meth:`Target.reset` and on each section or scene change. No
    distance or width parameter exists. Option ``prefix`` (see *IEM addresses*).
``iem-rotator`` -- head tracking for an IEM SceneRotator (before a binaural decoder): the head
    pose Gravity receives (:mod:`bridge.head`) as ``/SceneRotator/ypr f f f``, the scene's
    rotation in the plug-in's own convention (default "Roll->Pitch->Yaw" sequence, no flips;
    :mod:`renderer.listener`). No object messages. Option ``prefix``.
``iem-stereo`` -- one IEM StereoEncoder instance following object ``obj`` (default 1):
    ``/StereoEncoder/azimuth f``, ``/StereoEncoder/elevation f``, ``/StereoEncoder/width f``
    (deg, width 0..1 -> 0..180). Options ``obj``, ``prefix``.
``spat`` -- SPAT Revolution's own grammar: ``/source/n/aed fff`` with SPAT's azimuth sign
    (+right, so the sign is flipped here), elevation deg, distance metres; ``/source/n/gain f``
    dB (-60..12); ``/source/n/spread f`` percent 0..100 (width 0..1 times 100);
    ``/source/n/mute i`` (objects the scene leaves out); ``/source/n/name s`` (first send and
    refresh). Addresses ``/source/[remote number]/...`` per FLUX's manual
    (doc.flux.audio/spat-revolution/Ecosystem_&_integration_OSC_Connections_Matrix.html; the
    full table is its Appendix C, github.com/FLUX-SE/all_docs
    ``en_US/spat_revolution_doc/Appendix_C_OSC_Table.md``). Ranges: source gain -144.5..24 dB,
    spread 0..100, mute 0/1, as the SPAT Revolution Chataigne module sends them
    (github.com/nicolaserard/Spat-Revolution-Chataigne-Module, ``SpatRevolution.js``,
    ``RangeForParameter`` and ``OSCSourcesMessage``). Spread is SPAT's own percentage, not an
    angle: Gravity's width w (its renderer spreads over +-60*w deg) is sent as 100*w.
``generic`` -- anything else, from templates: ``msg=ADDRESS:FIELD,FIELD`` (repeatable);
    the address may use ``{n}`` (object number), ``{i}`` (n - 1) and ``{id}``; fields are
    listed in :data:`GENERIC_FIELDS`.

Common options: ``bundle=1`` packs each frame into OSC bundles (timetag "immediately") of at
most ``mtu`` bytes (default 1400).

ADM-OSC sources: the v1.0 specification, github.com/immersive-audio-live/ADM-OSC
(``docs/adm-osc.bs``, published at immersive-audio-live.github.io/ADM-OSC/, and
``docs/adm-osc-quick-reference.md``), and its implementation table
(``docs/html/implementation_table.html``: Nuendo takes ``x y z xyz w`` only; SPAT Revolution
and FletcherMachine take dmax "as a global message only: /adm/obj/*/dmax").

*xyz* (``coords=xyz``, for Nuendo): x right, y front, z up, each -1..1 (ADM-OSC Cartesian:
"x = 1.0 is right, y = 1.0 is forward, z = 1.0 is up"). The direction is mapped onto the ADM
cube with ITU-R BS.2127 section 10 (the ADM-OSC spec's "recommended conversion approach for
full ADM compatibility"; the EBU ADM Renderer's ``point_polar_to_cart``): azimuth +-30 deg
lands on the front corners, +-110 deg on the rear corners, elevation 30 deg on the top face,
so a stem the scene puts on the left loudspeaker sits on Nuendo's left loudspeaker. Distance
scales the point towards the centre: normalised d = metres / ``dmax`` (clamped to 0..1), and
the point is d times the cube-surface point. A cube receiver has no metres (its surface is
where the loudspeakers are), so with ``coords=xyz`` ``dmax`` defaults to 1 m, the renderer's
reference distance: every object at 1 m or more sits on the surface, as Atmos objects
normally do, depth being carried by the reverb send; nearer ones move into the room.
Physics-based receivers (SPAT, L-ISA, Holophonix) should take ``aed``, where d keeps its
metres through ``dmax``.

*dref* (``dref=METRES``): ``/adm/obj/n/dref`` = dref / dmax (0..1), the radius of the
reference volume inside which a physics-based receiver applies no distance attenuation
(ADM-OSC "Distance" section; 0 <= dref/dmax <= 1). ``dref=1`` matches Gravity's own renderer,
whose 1/r law is 0 dB at 1 m (``RenderConfig.reference_distance_m``). Not sent unless asked:
the receiver's default (1.0: the whole volume dimensionless, no distance attenuation) stays.

*Gain*: ADM-OSC's gain is linear with no maximum ("the receiver should clamp the value
according to its capabilities"). Gravity sends the scene gain as is, 10^(dB/20) clamped to
0..3.98 (-inf..+12 dB, the scene schema's range); a value above 1 is a boost of that object
relative to the others, not a request for headroom. The adm-osc reference module (1.0.2)
validates gain <= 1.0, and a receiver that clamps at 1.0 plays boosted stems at unity (the
planner's boosts are +1 dB for lead stems), shifting the balance by that much.

*IEM addresses*: an IEM plug-in only acts on received messages whose address starts with its
own name, ``/MultiEncoder/...`` or ``/StereoEncoder/...`` (IEMPluginSuite
``resources/OSC/OSCParameterInterface.cpp``, ``oscMessageReceived``); the OSC address a user
can edit in the plug-in only changes what the plug-in *sends*. So Gravity always sends with
the plug-in's name; ``prefix=`` names that user-edited sending address, so the plug-in's
echoes are recognised and dropped. ``inputSetting`` is the MultiEncoder's "Number of input
channels" parameter, 0..64 in steps of 1, 5 on a fresh instance (``MultiEncoder/Source``
``PluginProcessor.h``: ``startNnumberOfInputs``), so without it stems 6 and up would not be
encoded; IEM accepts int32 or float32 for any parameter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping
from urllib.parse import parse_qs

import numpy as np

from gravity.errors import quote
from renderer.listener import XYZ_SCALE_M, HeadPose

from .errors import TargetSpecError
from .frame import Frame
from .oscio import MessageTemplate, UdpOut, encode_message, pack_datagrams

__all__ = [
    "FLAVOURS",
    "GENERIC_FIELDS",
    "ADM_GAIN_MAX",
    "ADM_COORDS",
    "XYZ_DMAX_M",
    "adm_cube_xyz",
    "TargetSpec",
    "Target",
    "AdmTarget",
    "IemMultiTarget",
    "IemStereoTarget",
    "IemRotatorTarget",
    "SpatTarget",
    "GenericTarget",
    "make_target",
]

FLAVOURS: tuple[str, ...] = ("adm", "iem", "iem-stereo", "iem-rotator", "spat", "generic")
DEFAULT_PORTS: Mapping[str, int] = {"adm": 4001}
ADM_GAIN_MAX = 10 ** (12 / 20)
"""Largest linear gain sent over ADM-OSC (+12 dB, the scene schema's maximum)."""
ADM_COORDS: tuple[str, ...] = ("aed", "xyz")
"""ADM-OSC position messages: polar ``aed`` (default) or Cartesian ``xyz`` (Nuendo)."""
XYZ_DMAX_M = 1.0
"""Default ``dmax`` with ``coords=xyz``: the renderer's reference distance, metres (see the module docstring)."""
IEM_MULTI = "/MultiEncoder"
IEM_STEREO = "/StereoEncoder"
IEM_ROTATOR = "/SceneRotator"
HEAD_STEP_DEG = 1e-3
"""Forwarded head angles are rounded to this many degrees: a pose that comes back as an echo
(through a receiver set to send to Gravity) then encodes to the same bytes and is not sent again."""
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
    "adm": ("dmax", "env", "coords", "dref", "globaldmax", "head"),
    "iem": ("prefix",),
    "iem-rotator": ("prefix",),
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
    coords : str
        adm: ``aed`` or ``xyz`` (one of :data:`ADM_COORDS`).
    dref_m : float or None
        adm: reference distance in metres, sent as ``/adm/obj/n/dref`` = dref / dmax; None:
        not sent.
    dmax_global : bool
        adm (option ``globaldmax``): send ``/adm/obj/*/dmax`` instead of per-object dmax.
    prefix : str
        iem / iem-stereo: the plug-in's own (user-edited) sending address, whose echoes are
        dropped; Gravity always sends to the plug-in's name.
    obj : int
        iem-stereo: the object number this encoder instance follows.
    head : bool
        adm (option ``head``): forward the listener's head pose (``/adm/lis/ypr``, ``/adm/lis/xyz``).
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
    coords: str = "aed"
    dref_m: float | None = None
    dmax_global: bool = False
    prefix: str = ""
    obj: int = 1
    messages: tuple[tuple[str, tuple[str, ...]], ...] = ()
    head: bool = False

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
            elif key == "globaldmax":
                kw["dmax_global"] = _flag(key, v, text)
            elif key == "head":
                kw["head"] = _flag(key, v, text)
            elif key == "coords":
                if v.lower() not in ADM_COORDS:
                    raise TargetSpecError(
                        f"--target {quote(text)}: coords={quote(v)} must be one of {', '.join(ADM_COORDS)}"
                    )
                kw["coords"] = v.lower()
            elif key == "mtu":
                kw["mtu"] = _int_in(key, v, 64, 65507, text)
            elif key == "obj":
                kw["obj"] = _int_in(key, v, 1, 1024, text)
            elif key == "dmax":
                kw["dmax_m"] = _metres(key, v, text, zero_ok=False)
            elif key == "dref":
                kw["dref_m"] = _metres(key, v, text, zero_ok=True)
            elif key == "prefix":
                if not re.fullmatch(r"(/[A-Za-z0-9_.\-]+)+", v):
                    raise TargetSpecError(f"--target {quote(text)}: prefix={quote(v)} must look like /MultiEncoder")
                kw["prefix"] = v
            elif key == "msg":
                kw["messages"] = tuple(_parse_generic_msg(m, text) for m in values)
        if kw.get("coords") == "xyz" and "dmax_m" not in kw:
            kw["dmax_m"] = XYZ_DMAX_M  # a cube receiver's surface is the loudspeakers (module docstring)
        spec = cls(flavour=flavour, host=host, port=port, **kw)  # type: ignore[arg-type]
        if spec.dref_m is not None and spec.dref_m > spec.dmax_m:
            raise TargetSpecError(
                f"--target {quote(text)}: dref={spec.dref_m:g} m exceeds dmax={spec.dmax_m:g} m "
                f"(ADM-OSC: 0 <= dref/dmax <= 1)"
            )
        if flavour == "generic" and not kw.get("messages"):
            raise TargetSpecError(
                f"--target {quote(text)}: generic needs at least one msg=ADDRESS:FIELDS, "
                f"e.g. generic:127.0.0.1:9100?msg=/obj/{{n}}/aed:az,el,dist"
            )
        return spec

    def __str__(self) -> str:
        """``flavour:host:port``, the options left out (for log lines)."""
        return f"{self.flavour}:{self.host}:{self.port}"


def _metres(key: str, value: str, text: str, *, zero_ok: bool) -> float:
    try:
        d = float(value)
    except ValueError:
        d = float("nan")
    if not (math.isfinite(d) and (d >= 0 if zero_ok else d > 0)):
        what = "a non-negative" if zero_ok else "a positive"
        raise TargetSpecError(f"--target {quote(text)}: {key}={quote(value)} must be {what} number of metres")
    return d


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


# ------------------------------------------------------------------------------------ ADM cube
# ITU-R BS.2127 section 10 (the EBU ADM Renderer's ``Conversion.point_polar_to_cart``): the
# horizontal circle is cut into five sectors at the loudspeaker azimuths 0, -30, -110, 110, 30
# deg; each sector maps linearly (through the tangent law) onto one edge of the cube's square.
# Rows: (left azimuth, span counter-clockwise from the right edge, left corner xy, right corner xy).
_CUBE_SECTORS = np.array(
    [
        (0.0, 30.0, 0.0, 1.0, 1.0, 1.0),  # front centre .. front right
        (-30.0, 80.0, 1.0, 1.0, 1.0, -1.0),  # front right .. rear right
        (-110.0, 140.0, 1.0, -1.0, -1.0, -1.0),  # rear right .. rear left (across the back)
        (110.0, 80.0, -1.0, -1.0, -1.0, 1.0),  # rear left .. front left
        (30.0, 30.0, -1.0, 1.0, 0.0, 1.0),  # front left .. front centre
    ]
)
_EL_TOP, _EL_TOP_TILDE = 30.0, 45.0  # elevation 30 deg maps to the cube's top edge (45 deg in the cube)


def adm_cube_xyz(az_deg: np.ndarray, el_deg: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Polar to ADM Cartesian (ITU-R BS.2127 section 10): the ADM-OSC ``xyz`` of each object.

    Parameters
    ----------
    az_deg : np.ndarray [shape=(N,)]
        Azimuth, degrees, positive = left (ADM's sign, like Gravity's).
    el_deg : np.ndarray [shape=(N,)]
        Elevation, degrees, -90..90.
    dist : np.ndarray [shape=(N,)]
        Normalised distance 0..1 (1 = on the cube's surface).

    Returns
    -------
    np.ndarray [shape=(N, 3)]
        x (positive = right), y (positive = front), z (positive = up), each in -1..1.
    """
    az = np.asarray(az_deg, dtype=float)
    el = np.clip(np.asarray(el_deg, dtype=float), -90.0, 90.0)
    d = np.clip(np.asarray(dist, dtype=float), 0.0, 1.0)
    # which sector: the first whose counter-clockwise span from its right edge holds the azimuth
    right = _CUBE_SECTORS[:, 0] - _CUBE_SECTORS[:, 1]
    rel = np.mod(az[:, None] - right[None, :], 360.0)  # (N, 5), degrees from each right edge
    k = np.argmax(rel <= _CUBE_SECTORS[None, :, 1] + 1e-9, axis=1)
    sec = _CUBE_SECTORS[k]
    rel_k = rel[np.arange(len(az)), k]
    half = sec[:, 1] / 2.0
    # tangent-law position between the two corners: 0 at the left edge, 1 at the right edge
    g_r = 0.5 + 0.5 * np.tan(np.radians(rel_k - half)) / np.tan(np.radians(-half))
    p = np.arctan2(g_r, 1.0 - g_r) * (2.0 / np.pi)
    high = np.abs(el) > _EL_TOP
    el_tilde = np.where(
        high,
        _EL_TOP_TILDE + (90.0 - _EL_TOP_TILDE) * (np.abs(el) - _EL_TOP) / (90.0 - _EL_TOP),
        _EL_TOP_TILDE * el / _EL_TOP,
    )
    z = np.where(high, d * np.sign(el), d * np.tan(np.radians(el_tilde)))
    r_xy = np.where(high, d * np.tan(np.radians(90.0 - el_tilde)), d)
    x = r_xy * (sec[:, 2] + (sec[:, 4] - sec[:, 2]) * p)
    y = r_xy * (sec[:, 3] + (sec[:, 5] - sec[:, 3]) * p)
    return np.clip(np.stack([x, y, z], axis=1), -1.0, 1.0)


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
        self._head_last: dict[str, bytes] = {}
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

    def _head(self, pose: HeadPose) -> list[tuple[str, bytes]]:
        """(address, message) pairs that forward a head pose; none by default."""
        del pose  # the hook's fixed signature
        return []

    @property
    def takes_head(self) -> bool:
        """Whether head poses are forwarded to this target (:meth:`send_head`)."""
        return self.spec.head

    def send_head(self, pose: HeadPose) -> int:
        """Forward a head pose (the head input's thread): each message only when its bytes
        changed since the last one sent; returns the number of messages sent.
        """
        n = 0
        for address, data in self._head(pose):
            if self._head_last.get(address) != data:
                self._head_last[address] = data
                self.out.send(data)
                n += 1
        return n

    # -- engine
    def reset(self) -> None:
        """Forget what was sent: the next frame sends every value again (the next pose too)."""
        self._last.clear()
        self._static_sent.clear()
        self._head_last.clear()

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


def _head_angles(ypr: tuple[float, float, float]) -> list[float]:
    """Angles for the wire: rounded to :data:`HEAD_STEP_DEG`, in -180..180 degrees."""
    return [min(180.0, max(-180.0, round(v / HEAD_STEP_DEG) * HEAD_STEP_DEG)) for v in ypr]


class AdmTarget(Target):
    """ADM-OSC v1.0 (see the module docstring for the messages and ranges)."""

    echo_prefixes = ("/adm/",)

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        super().__init__(spec, out)
        self._pos = "/xyz" if spec.coords == "xyz" else "/aed"
        self._tpl: dict[int, tuple[MessageTemplate, MessageTemplate, MessageTemplate, MessageTemplate]] = {}
        self._global_sent = False

    def _templates(self, k: int) -> tuple[MessageTemplate, MessageTemplate, MessageTemplate, MessageTemplate]:
        t = self._tpl.get(k)
        if t is None:
            base = f"/adm/obj/{k + 1}"
            t = (
                MessageTemplate(base + self._pos, "fff"),
                MessageTemplate(base + "/gain", "f"),
                MessageTemplate(base + "/w", "f"),
                MessageTemplate(base + "/mute", "i"),
            )
            self._tpl[k] = t
        return t

    def _prepare(self, frame: Frame) -> tuple[list[list[float]], list[float], list[float]]:
        aed = frame.aed
        az = np.clip(_finite(aed[:, 0]), -180.0, 180.0)
        el = np.clip(_finite(aed[:, 1]), -90.0, 90.0)
        d = np.clip(_finite(aed[:, 2]) / self.spec.dmax_m, 0.0, 1.0)
        pos = adm_cube_xyz(az, el, d) if self.spec.coords == "xyz" else np.stack([az, el, d], axis=1)
        gain = np.clip(10.0 ** (_finite(frame.gain_db, -60.0) / 20.0), 0.0, ADM_GAIN_MAX)
        w = np.clip(_finite(frame.width), 0.0, 1.0)
        return pos.tolist(), gain.tolist(), w.tolist()

    def _moving(self, frame: Frame, k: int, prep: Any) -> list[tuple[int, bytes]]:
        del frame  # prepared in _prepare
        pos, gain, w = prep
        t = self._templates(k)
        return [(0, t[0].pack(*pos[k])), (1, t[1].pack(gain[k])), (2, t[2].pack(w[k]))]

    def _static(self, frame: Frame, k: int) -> list[bytes]:
        base = f"/adm/obj/{k + 1}"
        out = [encode_message(base + "/name", [frame.names[k][:128]], "s")]
        if not self.spec.dmax_global:
            out.append(encode_message(base + "/dmax", [self.spec.dmax_m], "f"))
        if self.spec.dref_m is not None:
            out.append(encode_message(base + "/dref", [min(self.spec.dref_m / self.spec.dmax_m, 1.0)], "f"))
        return out

    def _mute(self, k: int, muted: bool) -> bytes | None:
        return self._templates(k)[3].pack(1 if muted else 0)

    def _head(self, pose: HeadPose) -> list[tuple[str, bytes]]:
        out = [("/adm/lis/ypr", encode_message("/adm/lis/ypr", _head_angles(pose.adm_ypr()), "fff"))]
        p = pose.position_m / XYZ_SCALE_M  # house axes (front, left, up) -> ADM-OSC (right, front, up)
        if np.any(p) or "/adm/lis/xyz" in self._head_last:
            xyz = np.clip([-p[1], p[0], p[2]], -1.0, 1.0)
            out.append(("/adm/lis/xyz", encode_message("/adm/lis/xyz", [round(float(v), 4) for v in xyz], "fff")))
        return out

    def _preamble(self, frame: Frame) -> list[bytes]:
        if self.spec.env and frame.new_section and frame.section:
            return [encode_message("/adm/env/change", [frame.section[:128]], "s")]
        return []

    def reset(self) -> None:
        """Forget what was sent, the global dmax included."""
        super().reset()
        self._global_sent = False

    def frame_messages(self, frame: Frame, refresh: np.ndarray) -> list[bytes]:
        """The base class's messages, led by ``/adm/obj/*/dmax`` with ``globaldmax=1`` on the
        first frame and whenever object 1 is refreshed (once per refresh period), so a receiver
        that restarts learns the scale again.
        """
        msgs = super().frame_messages(frame, refresh)
        if self.spec.dmax_global and (not self._global_sent or bool(refresh[:1].any())):
            self._global_sent = True
            # ADM-OSC wildcard: SPAT Revolution and FletcherMachine read dmax only this way
            msgs.insert(0, encode_message("/adm/obj/*/dmax", [self.spec.dmax_m], "f"))
        return msgs


def _iem_echoes(name: str, prefix: str) -> tuple[str, ...]:
    """Echo prefixes of an IEM plug-in: its name, and the user-edited sending address if any."""
    return tuple(dict.fromkeys((name + "/", (prefix or name) + "/")))


class IemMultiTarget(Target):
    """IEM MultiEncoder: object ``n`` drives input ``n - 1`` (inputs 0..63).

    Sends ``/MultiEncoder/inputSetting`` (the number of inputs Gravity drives) on the first frame,
    after :meth:`reset`, and when the section or the scene changes, never on the periodic
    refresh, so the count set by hand between two sections is not fought over every second.
    """

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        super().__init__(spec, out)
        self.prefix = IEM_MULTI  # the plug-in reads only its own name (module docstring)
        self.echo_prefixes = _iem_echoes(IEM_MULTI, spec.prefix)
        self._tpl: dict[int, tuple[MessageTemplate, ...]] = {}
        self._inputs_tpl = MessageTemplate(f"{IEM_MULTI}/inputSetting", "i")
        self._inputs_for: str | None = None  # scene source the input count was last sent for

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

    def _preamble(self, frame: Frame) -> list[bytes]:
        if not frame.size or (
            self._inputs_for is not None and not frame.new_section and frame.scene_source == self._inputs_for
        ):
            return []
        self._inputs_for = frame.scene_source
        return [self._inputs_tpl.pack(min(frame.size, IEM_MAX_INPUTS))]

    def reset(self) -> None:
        """Forget what was sent: the next frame sends the input count and every value again."""
        super().reset()
        self._inputs_for = None

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
        p = IEM_STEREO  # the plug-in reads only its own name (module docstring)
        self.echo_prefixes = _iem_echoes(IEM_STEREO, spec.prefix)
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


class IemRotatorTarget(Target):
    """IEM SceneRotator: the head pose as ``/SceneRotator/ypr`` (scene rotation, the plug-in's
    default sequence); no object messages.
    """

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        super().__init__(spec, out)
        self.echo_prefixes = _iem_echoes(IEM_ROTATOR, spec.prefix)

    def _objects(self, frame: Frame) -> tuple[int, ...]:
        del frame  # no objects: head poses only
        return ()

    @property
    def takes_head(self) -> bool:
        """Always: head poses are all this target sends."""
        return True

    def _head(self, pose: HeadPose) -> list[tuple[str, bytes]]:
        address = f"{IEM_ROTATOR}/ypr"
        return [(address, encode_message(address, _head_angles(pose.scene_rotator_ypr()), "fff"))]


class SpatTarget(Target):
    """SPAT Revolution: ``/source/n/...`` with azimuth +right (sign flipped here), metres, dB,
    spread percent; mutes the objects a scene leaves out and names the sources.
    """

    echo_prefixes = ("/source/",)

    def __init__(self, spec: TargetSpec, out: UdpOut | None = None) -> None:
        super().__init__(spec, out)
        self._tpl: dict[int, tuple[MessageTemplate, MessageTemplate, MessageTemplate, MessageTemplate]] = {}

    def _templates(self, k: int) -> tuple[MessageTemplate, MessageTemplate, MessageTemplate, MessageTemplate]:
        t = self._tpl.get(k)
        if t is None:
            base = f"/source/{k + 1}"
            t = self._tpl[k] = (
                MessageTemplate(base + "/aed", "fff"),
                MessageTemplate(base + "/gain", "f"),
                MessageTemplate(base + "/spread", "f"),
                MessageTemplate(base + "/mute", "i"),
            )
        return t

    def _prepare(self, frame: Frame) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
        az_right = np.clip(-_finite(frame.aed[:, 0]), -180.0, 180.0)
        el = np.clip(_finite(frame.aed[:, 1]), -90.0, 90.0)
        d = np.clip(_finite(frame.aed[:, 2]), 0.0, 1000.0)
        g = np.clip(_finite(frame.gain_db, -60.0), -60.0, 12.0)
        spread = np.clip(_finite(frame.width), 0.0, 1.0) * 100.0
        return az_right.tolist(), el.tolist(), d.tolist(), g.tolist(), spread.tolist()

    def _moving(self, frame: Frame, k: int, prep: Any) -> list[tuple[int, bytes]]:
        del frame  # prepared in _prepare
        az, el, d, g, spread = prep
        t = self._templates(k)
        return [(0, t[0].pack(az[k], el[k], d[k])), (1, t[1].pack(g[k])), (2, t[2].pack(spread[k]))]

    def _static(self, frame: Frame, k: int) -> list[bytes]:
        return [encode_message(f"/source/{k + 1}/name", [frame.names[k][:128]], "s")]

    def _mute(self, k: int, muted: bool) -> bytes | None:
        return self._templates(k)[3].pack(1 if muted else 0)


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
    "iem-rotator": IemRotatorTarget,
    "spat": SpatTarget,
    "generic": GenericTarget,
}


def make_target(spec: TargetSpec | str, out: UdpOut | None = None) -> Target:
    """Build the target for a spec (or a ``--target`` string); ``out`` overrides the socket."""
    if isinstance(spec, str):
        spec = TargetSpec.parse(spec)
    return _CLASSES[spec.flavour](spec, out)
