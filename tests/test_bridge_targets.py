"""Output flavours: addresses, type tags, units, signs, ranges, change detection, mute policy.

Messages are decoded with python-osc, an implementation independent of ours.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage as PyMessage

from bridge.errors import TargetSpecError
from bridge.targets import ADM_GAIN_MAX, TargetSpec, make_target
from helpers import osc_frame as frame


class FakeOut:
    """Collects datagrams instead of sending them."""

    def __init__(self) -> None:
        self.datagrams: list[bytes] = []
        self.sent = self.refused = self.errors = self.dropped = 0

    def send(self, datagram: bytes) -> bool:
        self.datagrams.append(datagram)
        self.sent += 1
        return True

    def close(self) -> None:
        pass

    def take(self) -> list[tuple[str, str, list]]:
        out = []
        for d in self.datagrams:
            msgs = list(OscBundle(d)) if d.startswith(b"#bundle") else [PyMessage(d)]
            for m in msgs:
                m = getattr(m, "message", m)
                tags = m.dgram[len(m.address) + 1 :].split(b",", 1)[1].split(b"\x00", 1)[0].decode() if m.params else ""
                out.append((m.address, tags, list(m.params)))
        self.datagrams.clear()
        return out


def no_refresh(n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool)


# --------------------------------------------------------------------------------- spec parsing
def test_spec_parsing_defaults_and_options():
    s = TargetSpec.parse("adm")
    assert (s.flavour, s.host, s.port, s.bundle, s.dmax_m) == ("adm", "127.0.0.1", 4001, False, 10.0)
    s = TargetSpec.parse("adm:10.0.0.5:5000?bundle=1&dmax=20&env=1&mtu=9000")
    assert (s.host, s.port, s.bundle, s.dmax_m, s.env, s.mtu) == ("10.0.0.5", 5000, True, 20.0, True, 9000)
    s = TargetSpec.parse("iem-stereo:localhost:9002?obj=3")
    assert (s.flavour, s.obj) == ("iem-stereo", 3)
    s = TargetSpec.parse("generic:127.0.0.1:9100?msg=/obj/{n}/aed:az,el,dist&msg=/obj/{n}/name:id")
    assert s.messages == (("/obj/{n}/aed", ("az", "el", "dist")), ("/obj/{n}/name", ("id",)))
    assert str(TargetSpec.parse("spat:h:1")) == "spat:h:1"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("dolby:1.2.3.4:1", "unknown flavour 'dolby'"),
        ("iem:127.0.0.1", "iem needs a port"),
        ("adm:h:notaport", "not a number"),
        ("adm:h:70000", "1..65535"),
        ("adm:h:1?foo=1", "unknown option 'foo' for adm; allowed: bundle, mtu, dmax, env"),
        ("adm:h:1?dmax=-3", "positive number of metres"),
        ("adm:h:1?bundle=maybe", "must be 0 or 1"),
        ("iem-stereo:h:1?obj=0", "obj='0' must be an integer 1..1024"),
        ("generic:h:1", "generic needs at least one msg"),
        ("generic:h:1?msg=/o/{n}:az,speed", "unknown field"),
        ("generic:h:1?msg=/gravity/x:az", "input namespace"),
        ("generic:h:1?msg=/o/{q}:az", "may only use"),
        ("adm:a:1:2", "too many"),
    ],
)
def test_spec_errors_name_the_problem(text, words):
    with pytest.raises(TargetSpecError, match=words.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")):
        TargetSpec.parse(text)


# --------------------------------------------------------------------------------- ADM-OSC
def test_adm_messages_units_and_ranges():
    out = FakeOut()
    t = make_target("adm:127.0.0.1:4001?dmax=5", out)
    f = frame(
        [[30.0, 10.0, 2.5], [-200.0, 95.0, 50.0], [float("nan"), 0.0, -1.0]],
        gain_db=[0.0, -6.0, 40.0],
        width=[0.5, 2.0, -1.0],
        names=("v1", "k1", "fx"),
    )
    t.send_frame(f, no_refresh(3))
    msgs = out.take()
    by = {(a, tt): p for a, tt, p in msgs}
    assert by[("/adm/obj/1/aed", "fff")] == pytest.approx([30.0, 10.0, 0.5])
    assert by[("/adm/obj/2/aed", "fff")] == pytest.approx([-180.0, 90.0, 1.0])  # clamped
    assert by[("/adm/obj/3/aed", "fff")] == pytest.approx([0.0, 0.0, 0.0])  # NaN -> 0, never NaN
    assert by[("/adm/obj/1/gain", "f")] == pytest.approx([1.0])
    assert by[("/adm/obj/2/gain", "f")] == pytest.approx([10 ** (-6 / 20)], rel=1e-6)
    assert by[("/adm/obj/3/gain", "f")] == pytest.approx([ADM_GAIN_MAX], rel=1e-6)
    assert [by[(f"/adm/obj/{n}/w", "f")][0] for n in (1, 2, 3)] == pytest.approx([0.5, 1.0, 0.0])
    assert by[("/adm/obj/1/name", "s")] == ["v1"] and by[("/adm/obj/3/dmax", "f")] == [5.0]
    assert not any(a.endswith("/mute") for a, _, _ in msgs)  # nothing muted by us, so no mute traffic
    for _, _, params in msgs:
        assert all(math.isfinite(p) for p in params if isinstance(p, float))


def test_adm_sends_only_what_changed_and_refreshes():
    out = FakeOut()
    t = make_target("adm", out)
    f1 = frame([[10.0, 0.0, 2.0], [20.0, 0.0, 2.0]])
    t.send_frame(f1, no_refresh(2))
    assert len(out.take()) == 2 * 5  # aed gain w name dmax, per object
    t.send_frame(f1, no_refresh(2))
    assert out.take() == []  # nothing changed
    t.send_frame(frame([[10.0, 0.0, 2.0], [25.0, 0.0, 2.0]]), no_refresh(2))
    assert [a for a, _, _ in out.take()] == ["/adm/obj/2/aed"]
    t.send_frame(frame([[10.0, 0.0, 2.0], [25.0, 0.0, 2.0]]), np.array([True, False]))
    assert sorted(a for a, _, _ in out.take()) == sorted(
        ["/adm/obj/1/aed", "/adm/obj/1/gain", "/adm/obj/1/w", "/adm/obj/1/name", "/adm/obj/1/dmax"]
    )


def test_adm_mutes_only_what_it_muted():
    out = FakeOut()
    t = make_target("adm", out)
    t.send_frame(frame([[0, 0, 1], [0, 0, 1]], active=[True, False]), no_refresh(2))
    msgs = out.take()
    assert ("/adm/obj/2/mute", "i", [1]) in msgs
    assert not any(a.startswith("/adm/obj/2/") and not a.endswith("mute") for a, _, _ in msgs)  # not moved
    t.send_frame(frame([[0, 0, 1], [0, 0, 1]], active=[True, False]), no_refresh(2))
    assert out.take() == []  # muted once, not again
    t.send_frame(frame([[0, 0, 1], [5, 0, 1]], active=[True, True]), no_refresh(2))
    msgs = out.take()
    assert ("/adm/obj/2/mute", "i", [0]) in msgs  # we muted it, so we unmute it
    assert ("/adm/obj/1/mute", "i", [0]) not in msgs  # never touched object 1's mute


def test_adm_env_change_and_bundles():
    out = FakeOut()
    t = make_target("adm:127.0.0.1:4001?env=1&bundle=1&mtu=200", out)
    t.send_frame(frame([[1, 2, 3]] * 8, section="Chorus", new_section=True), no_refresh(8))
    assert all(d.startswith(b"#bundle") and len(d) <= 200 for d in out.datagrams)
    msgs = out.take()
    assert msgs[0] == ("/adm/env/change", "s", ["Chorus"])
    assert len(msgs) == 1 + 8 * 5


# --------------------------------------------------------------------------------- IEM, SPAT, generic
def test_iem_multiencoder_is_zero_based_plus_left_and_db():
    out = FakeOut()
    t = make_target("iem:127.0.0.1:9002", out)
    aed = [[45.0, 10.0, 2.0]] + [[-30.0, 0.0, 1.0]] * 69
    gains = [-80.0, 20.0] + [0.0] * 68
    t.send_frame(frame(aed, gain_db=gains, active=[True] * 69 + [False]), no_refresh(70))
    by = {a: p for a, _, p in out.take()}
    assert by["/MultiEncoder/azimuth0"] == [45.0]  # object 1 -> input 0; IEM azimuth is +left like ours
    assert by["/MultiEncoder/elevation0"] == [10.0]
    assert by["/MultiEncoder/gain0"] == [-60.0] and by["/MultiEncoder/gain1"] == [10.0]  # IEM's -60..10 dB
    assert "/MultiEncoder/azimuth63" in by and not any("64" in a for a in by)  # 64 inputs at most
    assert not any(a.startswith("/MultiEncoder/mute") for a in by)


def test_iem_stereo_follows_one_object():
    out = FakeOut()
    t = make_target("iem-stereo:127.0.0.1:9003?obj=2", out)
    t.send_frame(frame([[10, 0, 1], [-60, 20, 1]], width=[0.0, 0.5]), no_refresh(2))
    by = {a: p for a, _, p in out.take()}
    assert by == {"/StereoEncoder/azimuth": [-60.0], "/StereoEncoder/elevation": [20.0], "/StereoEncoder/width": [90.0]}


def test_spat_flips_the_azimuth_sign_and_keeps_metres():
    out = FakeOut()
    t = make_target("spat:127.0.0.1:8000", out)
    t.send_frame(frame([[30.0, 5.0, 3.5], [180.0, 0.0, 1.0]], gain_db=[-3.0, 0.0]), no_refresh(2))
    by = {a: p for a, _, p in out.take()}
    assert by["/source/1/aed"] == pytest.approx([-30.0, 5.0, 3.5])  # 30 deg left = -30 in SPAT (+right)
    assert abs(by["/source/2/aed"][0]) == pytest.approx(180.0)
    assert by["/source/1/gain"] == pytest.approx([-3.0])


def test_generic_templates():
    out = FakeOut()
    spec = "generic:127.0.0.1:9100?msg=/src/{i}/{id}/pos:x,y,z,n&msg=/src/{n}/look:az_right,dist_norm,gain"
    t = make_target(spec, out)
    t.send_frame(frame([[90.0, 0.0, 2.0]], gain_db=[-20.0], names=("vox",)), no_refresh(1))
    msgs = out.take()
    (a1, t1, p1), (a2, t2, p2) = msgs
    assert (a1, t1) == ("/src/0/vox/pos", "fffi") and p1 == pytest.approx([0.0, 2.0, 0.0, 1], abs=1e-6)  # y = left
    assert (a2, t2) == ("/src/1/look", "fff") and p2 == pytest.approx([-90.0, 0.2, 0.1])
    assert t.echo_prefixes == ("/src/",)
