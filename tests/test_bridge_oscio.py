"""OSC codec against python-osc (an independent implementation), sockets, rate-limited log."""

from __future__ import annotations

import logging
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_bundle_builder import IMMEDIATELY as PY_IMMEDIATELY
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message import OscMessage as PyMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.errors import OscBuildError, OscParseError, PortInUseError
from bridge.oscio import (
    IMMEDIATELY,
    MessageTemplate,
    UdpOut,
    bind_udp,
    decode_packet,
    encode_bundle,
    encode_message,
    ntp_from_unix,
    osc_string,
    pack_datagrams,
    parse_hostport,
    unix_from_ntp,
)
from bridge.ratelog import RateLimitedLog

f32 = st.floats(width=32, allow_nan=False)
i32 = st.integers(-(2**31), 2**31 - 1)
text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40)
address = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8), min_size=1, max_size=5
).map(lambda parts: "/" + "/".join(parts))
arg = st.one_of(f32, i32, text, st.binary(max_size=20), st.booleans(), st.none())


def test_osc_string_padding():
    assert osc_string("") == b"\x00\x00\x00\x00"
    assert osc_string("abc") == b"abc\x00"
    assert osc_string("abcd") == b"abcd\x00\x00\x00\x00"
    with pytest.raises(OscBuildError):
        osc_string("a\x00b")


def test_example_from_the_osc_spec():
    # OSC 1.0 spec example: "/oscillator/4/frequency" ,f 440.0
    data = encode_message("/oscillator/4/frequency", [440.0], "f")
    assert data == (b"/oscillator/4/frequency\x00" + b",f\x00\x00" + b"\x43\xdc\x00\x00")
    (msg,) = decode_packet(data)
    assert (msg.address, msg.types, msg.args) == ("/oscillator/4/frequency", "f", (440.0,))


@settings(max_examples=300, deadline=None)
@given(address, st.lists(arg, max_size=6))
def test_our_encoding_reads_back_in_python_osc(addr, args):
    data = encode_message(addr, args)
    theirs = PyMessage(data)
    assert theirs.address == addr
    assert list(theirs.params) == [a if not isinstance(a, bytes) else a for a in args]


@settings(max_examples=300, deadline=None)
@given(address, st.lists(st.one_of(f32, i32, text, st.binary(min_size=1, max_size=20)), max_size=6))
def test_python_osc_encoding_reads_back_in_ours(addr, args):
    b = OscMessageBuilder(addr)
    for a in args:
        b.add_arg(a)
    (msg,) = decode_packet(b.build().dgram)
    assert msg.address == addr and list(msg.args) == args


def test_bundles_nest_and_flatten_in_order():
    inner = encode_bundle([encode_message("/b", [2]), encode_message("/c", ["x"])])
    outer = encode_bundle([encode_message("/a", [1.5]), inner], timetag=ntp_from_unix(1e9))
    assert [m.address for m in decode_packet(outer)] == ["/a", "/b", "/c"]
    theirs = OscBundle(outer)
    assert theirs.num_contents == 2
    bb = OscBundleBuilder(PY_IMMEDIATELY)
    bb.add_content(OscMessageBuilder("/z").build())
    assert [m.address for m in decode_packet(bb.build().dgram)] == ["/z"]


def test_pack_datagrams_respects_the_mtu():
    msgs = [MessageTemplate(f"/adm/obj/{k}/aed", "fff").pack(1.0, 2.0, 0.5) for k in range(1, 65)]
    assert pack_datagrams(msgs, bundle=False) == msgs
    packed = pack_datagrams(msgs, bundle=True, max_bytes=600)
    assert all(len(d) <= 600 for d in packed) and len(packed) > 1
    assert [m.address for d in packed for m in decode_packet(d)] == [f"/adm/obj/{k}/aed" for k in range(1, 65)]
    assert struct.unpack(">Q", packed[0][8:16])[0] == IMMEDIATELY


def test_template_equals_generic_encoder():
    t = MessageTemplate("/MultiEncoder/azimuth3", "f")
    assert t.pack(-45.5) == encode_message("/MultiEncoder/azimuth3", [-45.5], "f")
    assert MessageTemplate("/x", "ifdh").pack(1, 2.0, 3.0, 4) == encode_message("/x", [1, 2.0, 3.0, 4], "ifdh")
    with pytest.raises(OscBuildError):
        MessageTemplate("/x", "s")
    with pytest.raises(OscBuildError):
        encode_message("no-slash", [1])
    with pytest.raises(OscBuildError):
        encode_message("/x", [object()])
    with pytest.raises(OscBuildError):
        encode_message("/x", [1, 2], "i")


def test_ntp_round_trip():
    assert unix_from_ntp(ntp_from_unix(1795448428.954102)) == pytest.approx(1795448428.954102, abs=1e-6)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "multiple of 4"),
        (b"/abc", "unterminated"),
        (b"/ab\x00,f\x00\x00", "needs 4 bytes"),
        (b"/ab\x00,q\x00\x00", "unknown type tag"),
        (b"/ab\x00,[f]\x00\x00\x00\x00" + b"\x00" * 4, "arrays"),
        (b"/ab\x00xf\x00\x00", "must start with ','"),
        (b"ab\x00\x00", "must start with '/'"),
        (b"/\xff\xfe\x00", "UTF-8"),
        (b"/ab\x00,b\x00\x00\xff\xff\xff\xff", "negative blob"),
        (b"/ab\x00,b\x00\x00\x00\x00\x00\x10", "needs 16 bytes"),
        (b"#bundle\x00" + b"\x00" * 8 + b"\x00\x00\x00\x05/ab\x00", "bad bundle element"),
        (b"#bundle\x00" + b"\x00" * 4, "16-byte header"),
    ],
)
def test_malformed_packets_say_what_is_wrong(data, words):
    with pytest.raises(OscParseError, match=words if words[0] != "'" else None):
        decode_packet(data)


def test_nesting_and_message_count_are_bounded():
    pkt = encode_message("/x", [1])
    for _ in range(6):
        pkt = encode_bundle([pkt])
    with pytest.raises(OscParseError, match="nested"):
        decode_packet(pkt)
    many = encode_bundle([encode_message("/x", [1])] * 2000)
    with pytest.raises(OscParseError, match="more than"):
        decode_packet(many)


def test_message_without_type_tags_is_allowed():
    (msg,) = decode_packet(b"/play\x00\x00\x00")
    assert msg.address == "/play" and msg.args == ()


def test_parse_hostport():
    assert parse_hostport("9000", default_host="127.0.0.1") == ("127.0.0.1", 9000)
    assert parse_hostport("0.0.0.0:9001", default_host="127.0.0.1") == ("0.0.0.0", 9001)
    with pytest.raises(ValueError, match="port must be"):
        parse_hostport("x:abc", default_host="h")
    with pytest.raises(ValueError, match="1..65535"):
        parse_hostport("70000", default_host="h")


def test_port_in_use_gives_a_clear_message():
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        with pytest.raises(PortInUseError, match=rf"UDP port {port} .* already in use.*--listen"):
            bind_udp("127.0.0.1", port)
    finally:
        holder.close()
    sock = bind_udp("127.0.0.1", port)  # free again
    sock.close()


def test_sender_to_a_closed_port_never_raises():
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    out = UdpOut("127.0.0.1", port)
    results = [out.send(encode_message("/x", [i])) for i in range(50)]
    out.close()
    assert out.sent + out.refused + out.errors + out.dropped == 50
    assert any(results)


def test_rate_limited_log_counts_everything_and_logs_little(caplog):
    now = [0.0]
    rl = RateLimitedLog(logging.getLogger("t"), interval_s=10.0, max_kinds=3, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="t"):
        for i in range(1000):
            rl.report("malformed", "bad packet %d", i)
        assert rl.drain() == 1
        now[0] = 11.0
        rl.report("malformed", "bad packet %d", 1000)
        rl.drain()
        for k in range(10):
            rl.report(f"kind{k}", "x")
        rl.drain()
    assert rl.counts["malformed"] == 1001
    assert len(rl.counts) <= 4  # 3 kinds + "other": hostile input cannot grow it
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs[0].startswith("bad packet 0") and "999 more like it" in msgs[0] and "1000 in all" in msgs[0]
    assert msgs[1] == "bad packet 1000"  # one per interval per kind, whatever the flood
