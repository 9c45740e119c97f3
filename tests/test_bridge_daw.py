"""DAW input: REAPER, AbletonOSC and Gravity namespaces into the transport; echoes, bad input,
and an in-process fuzz of >= 100k random and mutated packets through the real listener path.
"""

from __future__ import annotations

import logging
import math
import random
import time

import pytest

from bridge.daw import BadArgs, DawHooks, DawListener, Dispatcher, address_template, build_dispatch_table
from bridge.oscio import OscMessage, encode_bundle, encode_message
from bridge.ratelog import RateLimitedLog
from bridge.transport import MAX_MARKERS, Marker, Transport


class Hooks:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def make(self) -> DawHooks:
        return DawHooks(
            wake=lambda: self.calls.append(("wake",)),
            replan=lambda: self.calls.append(("replan",)),
            load_scene=lambda p, s: self.calls.append(("scene", p, s)),
            prompt=lambda t: self.calls.append(("prompt", t)),
            resubscribe=lambda: self.calls.append(("resubscribe",)),
            track_name=lambda i, n: self.calls.append(("track", i, n)),
        )

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def rig():
    clock = [1000.0]
    tr = Transport(clock=lambda: clock[0])
    hooks = Hooks()
    disp = Dispatcher(build_dispatch_table(tr, hooks.make(), clock=lambda: clock[0]), echo_prefixes=("/adm/",))
    events = RateLimitedLog(logging.getLogger("t"))
    listener = DawListener(sock=None, dispatcher=disp, events=events)  # type: ignore[arg-type]

    def send(address, *args, types=None):
        listener.handle_datagram(encode_message(address, list(args), types))

    return tr, hooks, listener, send, clock


def test_address_templates():
    assert address_template("/marker/12/name") == ("/marker/@/name", (12,))
    assert address_template("/play") == ("/play", ())
    assert address_template("/track/3/fx/2/name") == ("/track/@/fx/@/name", (3, 2))


def test_reaper_session(rig):
    tr, hooks, lis, send, clock = rig
    send("/tempo/raw", 128.0)
    send("/marker/1/name", "Verse")
    send("/marker/1/time", 0.0)
    send("/marker/2/name", "Chorus")
    send("/marker/2/time", 15.0)
    send("/time", 3.0)
    send("/play", 1.0)
    clock[0] += 0.5
    assert tr.state.playing and tr.state.bpm == 128.0
    assert tr.state.markers == (Marker(0.0, "Verse"), Marker(15.0, "Chorus"))
    assert tr.position() == pytest.approx(3.5)
    send("/beat/str", "2.3.00")
    assert tr.state.daw_bar_beat == "2.3.00"
    send("/play", 0)  # REAPER's feedback when it stops
    assert not tr.state.playing
    send("/play")  # trigger without argument
    assert tr.state.playing
    send("/stop", 1.0)
    assert not tr.state.playing
    send("/record", 1)
    assert tr.state.playing
    send("/lastmarker/time", 15.0)
    send("/lastmarker/name", "Chorus")
    assert tr.state.event[:2] == ("Chorus", 15.0) and "wake" in hooks.names()
    send("/track/3/name", "Kick")
    assert ("track", 3, "Kick") in hooks.calls
    send("/track/1/vu", 0.5)  # REAPER feedback we do not use
    send("/master/volume", 0.7)
    assert lis.ignored == 2 and lis.unknown == 0 and lis.bad_args == 0


def test_ableton_session(rig):
    tr, hooks, lis, send, clock = rig
    send("/live/song/get/tempo", 100.0)
    send("/live/song/get/signature_numerator", 3)
    send("/live/song/get/signature_denominator", 4)
    send("/live/song/get/cue_points", "Intro", 0.0, "Drop", 48.0)
    send("/live/song/get/is_playing", True)
    send("/live/song/get/current_song_time", 10.0)
    assert tr.state.bpm == 100.0 and (tr.state.beats_per_bar, tr.state.beat_unit) == (3, 4)
    assert [(m.name, m.time_s) for m in tr.state.markers] == [("Intro", 0.0), ("Drop", pytest.approx(48 * 0.6))]
    assert tr.state.playing and tr.position() == pytest.approx(6.0)
    send("/live/song/get/cue_points", 0.0, "A", 4.0, "B")  # (time, name) order is understood too
    assert [m.name for m in tr.state.markers] == ["A", "B"]
    send("/live/startup")
    assert "resubscribe" in hooks.names()
    send("/live/song/get/cue_points", "odd", 1.0, "x")
    send("/live/song/get/signature_denominator", 3)
    assert lis.bad_args == 2


def test_ableton_beats_follow_the_tempo_map(rig):
    """AbletonOSC reports the song position in beats: across a tempo change the playhead in
    seconds stays continuous (the beats are read through the tempo map, not the current tempo).
    """
    tr, hooks, lis, send, clock = rig
    send("/live/song/get/tempo", 120.0)
    send("/live/song/get/is_playing", True)
    send("/live/song/get/current_song_time", 16.0)  # 8 s
    jumps = tr.jumps
    clock[0] += 1.0
    send("/live/song/get/tempo", 60.0)  # at 9 s = beat 18
    clock[0] += 1.0
    send("/live/song/get/current_song_time", 19.0)  # one beat later at 60 bpm: 10 s
    assert tr.position() == pytest.approx(10.0) and tr.jumps == jumps  # dividing by the new tempo: 19 s, a jump
    assert tr.state.bar_beat(10.0) == (5, pytest.approx(4.0))  # beat 19 from 0: bar 5, beat 4
    send("/live/song/get/cue_points", "Drop", 22.0)  # cue points in beats go through the map too
    assert tr.state.markers[0].time_s == pytest.approx(13.0)


def test_gravity_namespace(rig):
    tr, hooks, lis, send, clock = rig
    send("/gravity/transport", 1, 12.0, 90.0, types="iff")
    assert tr.state.playing and tr.position() == pytest.approx(12.0) and tr.state.bpm == 90.0
    send("/gravity/transport", "stop")
    assert not tr.state.playing
    send("/gravity/tempo", 140.0, 7, 8, types="fii")
    assert (tr.state.bpm, tr.state.beats_per_bar, tr.state.beat_unit) == (140.0, 7, 8)
    send("/gravity/marker", "Drop", 30.0)
    assert Marker(30.0, "Drop") in tr.state.markers
    send("/gravity/markers/clear")
    assert tr.state.markers == ()
    send("/gravity/section", "Bridge")
    assert tr.state.event[0] == "Bridge"
    send("/gravity/scene", "/tmp/x.json", "Chorus")
    send("/gravity/scene", "/tmp/y.json")
    send("/gravity/prompt", "wider, vocals up front")
    assert ("scene", "/tmp/x.json", "Chorus") in hooks.calls and ("scene", "/tmp/y.json", None) in hooks.calls
    assert ("prompt", "wider, vocals up front") in hooks.calls
    send("/gravity/nonsense", 1)
    assert lis.unknown == 1


@pytest.mark.parametrize(
    ("address", "args"),
    [
        ("/time", ["soon"]),
        ("/time", [float("nan")]),
        ("/time", [float("inf")]),
        ("/time", [1e12]),
        ("/time", []),
        ("/tempo/raw", [0.0]),
        ("/tempo/raw", [-120.0]),
        ("/tempo/raw", [True]),
        ("/marker/1/time", ["x"]),
        ("/play", ["maybe"]),
        ("/gravity/transport", ["dance"]),
        ("/gravity/tempo", [120.0, 4, 3]),
        ("/gravity/section", [""]),
        ("/gravity/marker", ["x"]),
        ("/gravity/scene", [5]),
        ("/lastmarker/name", [1]),
        ("/marker/1/name", ["x" * 1000]),
        ("/gravity/prompt", ["x" * 3000]),
    ],
)
def test_bad_arguments_are_counted_and_change_nothing(rig, address, args):
    tr, hooks, lis, send, clock = rig
    before = tr.state
    send(address, *args)
    assert lis.bad_args == 1
    assert tr.state.bpm == before.bpm and tr.state.anchor == before.anchor and tr.state.markers == before.markers


def test_echoes_of_our_own_output_are_dropped(rig):
    tr, hooks, lis, send, clock = rig
    send("/adm/obj/1/aed", 10.0, 0.0, 0.5)
    send("/adm/obj/1/gain", 1.0)
    assert lis.echoes == 2 and hooks.calls == [] and lis.unknown == 0


def test_dispatcher_reports_outcomes():
    d = Dispatcher({"/a/@/b": lambda _m, _i: None}, ignore_prefixes=("/meters",), echo_prefixes=("/adm/",))
    assert d.dispatch(OscMessage("/a/7/b", "", ())) == "ok"
    assert d.dispatch(OscMessage("/meters/3", "", ())) == "ignored"
    assert d.dispatch(OscMessage("/adm/obj/1/aed", "", ())) == "echo"
    assert d.dispatch(OscMessage("/zzz", "", ())) == "unknown"
    with pytest.raises(BadArgs):
        Dispatcher(build_dispatch_table(Transport(), DawHooks())).dispatch(OscMessage("/time", "s", ("x",)))


# ------------------------------------------------------------------------------------ fuzz
VALID = [
    encode_message("/play", [1]),
    encode_message("/stop", [1.0]),
    encode_message("/time", [12.5]),
    encode_message("/tempo/raw", [128.0]),
    encode_message("/beat/str", ["4.1.00"]),
    encode_message("/marker/3/name", ["Chorus"]),
    encode_message("/marker/3/time", [30.0]),
    encode_message("/lastmarker/name", ["Verse"]),
    encode_message("/lastmarker/time", [0.0]),
    encode_message("/track/2/name", ["Bass"]),
    encode_message("/live/song/get/tempo", [120.0]),
    encode_message("/live/song/get/current_song_time", [16.0]),
    encode_message("/live/song/get/cue_points", ["A", 0.0, "B", 8.0]),
    encode_message("/gravity/transport", [1, 3.0, 100.0], "iff"),
    encode_message("/gravity/section", ["Drop"]),
    encode_message("/gravity/marker", ["Bridge", 44.0]),
    encode_message("/gravity/tempo", [90.0, 3, 4], "fii"),
    encode_message("/adm/obj/1/aed", [1.0, 2.0, 0.3]),
    encode_bundle([encode_message("/time", [1.0]), encode_message("/play", [1])]),
]
ADDRESSES = [
    "/play",
    "/time",
    "/tempo/raw",
    "/marker/1/name",
    "/marker/99999/time",
    "/lastmarker/name",
    "/live/song/get/cue_points",
    "/live/song/get/is_playing",
    "/gravity/transport",
    "/gravity/tempo",
    "/gravity/marker",
    "/gravity/section",
    "/track/5/name",
    "/live/song/get/signature_denominator",
]
WILD = [
    0.0,
    -1.0,
    1e308,
    -1e308,
    3.4e38,
    float("inf"),
    float("nan"),
    1e-45,
    7,
    -(2**31),
    2**31 - 1,
    "",
    "x" * 300,
    "Chorus",
    True,
    False,
    None,
    b"\x00\xff",
    120.0,
    0.5,
]


def _tag(v: object) -> str:
    if v is True or v is False or v is None:
        return {True: "T", False: "F", None: "N"}[v]
    if isinstance(v, float):
        return "d" if math.isfinite(v) and abs(v) > 3.4e38 else "f"  # too big for float32
    return {int: "i", str: "s", bytes: "b"}[type(v)]


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0 and b:  # flip bytes
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 1:  # truncate
        b = b[: rng.randrange(len(b) + 1)]
    elif kind == 2:  # extend with junk
        b += bytes(rng.randrange(256) for _ in range(rng.choice((1, 3, 4, 8, 64))))
    elif kind == 3:  # corrupt the type tags
        i = b.find(b",")
        if i >= 0 and i + 1 < len(b):
            b[i + 1] = ord(rng.choice("ifsbdhtTFNI[]cmrXZ\x00"))
    elif kind == 4:  # a lying bundle element size
        b = bytearray(b"#bundle\x00" + bytes(8) + rng.randrange(-(2**31), 2**31).to_bytes(4, "big", signed=True)) + b
    else:  # nest deeper than allowed
        for _ in range(rng.randint(1, 8)):
            b = bytearray(encode_bundle([bytes(b) if len(b) % 4 == 0 else bytes(b) + b"\x00" * (-len(b) % 4)]))
    return bytes(b)


def fuzz_packets(n: int, seed: int = 1) -> list[bytes]:
    """``n`` packets: a quarter random bytes, half mutated valid packets, a quarter valid
    addresses with wild arguments.
    """
    rng = random.Random(seed)
    out = []
    for k in range(n):
        r = k % 4
        if r == 0:
            out.append(rng.randbytes(rng.choice((0, 1, 3, 4, 8, 16, 33, 64, 200))))
        elif r in (1, 2):
            out.append(_mutate(rng, rng.choice(VALID)))
        else:
            args = [rng.choice(WILD) for _ in range(rng.randint(0, 4))]
            out.append(encode_message(rng.choice(ADDRESSES), args, "".join(_tag(a) for a in args)))
    return out


def test_fuzz_100k_packets_through_the_listener(rig):
    tr, hooks, lis, send, clock = rig
    packets = fuzz_packets(100_000)
    t0 = time.perf_counter()
    for k, p in enumerate(packets):
        lis.handle_datagram(p, ("127.0.0.1", 5))
        if k % 1000 == 0:
            clock[0] += 0.01
    dt = time.perf_counter() - t0
    assert lis.packets == 100_000
    assert lis.malformed > 20_000 and lis.bad_args > 1000 and lis.messages > 30_000  # it really was exercised
    st = tr.state
    pos = tr.position()
    assert math.isfinite(pos) and -3600 <= pos <= 7 * 24 * 3600
    assert 1.0 <= st.bpm <= 1000.0 and len(st.markers) <= MAX_MARKERS
    assert all(math.isfinite(m.time_s) for m in st.markers)
    assert sum(lis.events.counts.values()) >= lis.malformed  # every problem counted
    send("/time", 5.0)  # and it still works afterwards
    send("/stop", 1)
    assert tr.position() == pytest.approx(5.0, abs=0.3)
    print(
        f"fuzz: 100000 packets in {dt:.2f} s; malformed {lis.malformed}, bad args {lis.bad_args}, "
        f"unknown {lis.unknown}, ok messages {lis.messages - lis.bad_args - lis.unknown}"
    )
