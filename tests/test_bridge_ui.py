"""The browser monitor and editor (issue 20): protocol, hand edits, the edits log, the server's
trust rules, a real page in headless Chromium, and hostile WebSocket traffic while the bridge streams.

Independent peers: Chromium (Debian's, driven by playwright) is the page; python-osc decodes the
ADM-OSC wire on a real UDP socket; oscdump (liblo-tools) timestamps the wire from another process
during the fuzz; aiohttp's client plays the hostile page. Positions are checked against
``gravity.plot.top_view_xy`` (the page draws as ``gravity plot`` does) and against the scene book.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import dataclasses
import gc
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bridge.edits import Edit, SceneEdits
from bridge.scenes import ObjectMap, PreparedScene, SceneBook
from bridge.ui.protocol import MAX_MESSAGE_BYTES, Refused, TokenBucket, parse
from bridge.ui.record import EditLog, data_dir, edit_row, read_edits
from gravity.motion import wrap_az
from gravity.pipeline import make_scene
from gravity.request import Request
from gravity.scene import Scene
from waiting import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OSCDUMP = shutil.which("oscdump")

REQUEST = {  # six stems; 16 bars of 4/4 at 120 bpm (32 s sections, so the orbit never stops mid-test)
    "target_format": "binaural",
    "max_objects": 8,
    "style": "pop",
    "section": "verse",
    "global": {"bpm": 120, "energy": 0.6, "section_bars": 16},
    "stems": [
        {"id": "vox", "class": "lead_vocal"},
        {"id": "kick", "class": "kick"},
        {"id": "bass", "class": "bass"},
        {"id": "gtr", "class": "guitar"},
        {"id": "pad", "class": "pad"},
        {"id": "hat", "class": "hihat"},
    ],
    "rules": [
        {"type": "mono_low_end", "hz_below": 120},
        {"type": "max_elevation", "track_class": "pad", "max_deg": 35},
    ],
}
ORBIT = [{"t": i / 8, "az_deg": float(wrap_az(45.0 * i)), "el_deg": 20.0, "dist_m": 2.0} for i in range(9)]


def with_orbit(request: Request, **kw):
    """The planner's scene with the hi-hat orbiting (a frame on the wire every tick)."""
    res = make_scene(request, **kw)
    doc = copy.deepcopy(res.scene)
    for o in doc["objects"]:
        if o["id"] == "hat":
            o["az_deg"], o["el_deg"], o["dist_m"], o["motion"] = 0.0, 20.0, 2.0, ORBIT
    return dataclasses.replace(res, scene=doc)


def planned(doc=REQUEST, **kw) -> tuple[Request, dict]:
    req = Request.from_dict(doc)
    return req, with_orbit(req, planner="planner", **kw).scene


# ============================================================================ protocol
def test_parse_accepts_each_message_type_with_known_values():
    c = parse('{"type":"move","id":"pad","az":370,"el":12.34,"dist":3.456,"ref":7}')
    assert (c.kind, c.ref, c.edit.object_id, c.edit.position) == ("move", 7, "pad", (10.0, 12.3, 3.46))
    assert parse('{"type":"move","id":"pad","az":-180,"el":0,"dist":1}').edit.position == (180.0, 0.0, 1.0)
    c = parse('{"type":"set","id":"gtr","width":0.333}')
    assert (c.edit.width, c.edit.gain_db, c.edit.fields) == (0.33, None, frozenset({"width"}))
    assert parse('{"type":"set","id":"gtr","gain_db":-3.25}').edit.gain_db == -3.2
    assert parse('{"type":"lock","id":"kick","locked":true}').edit.locked is True
    assert parse('{"type":"reset","id":"kick"}').edit.reset is True
    assert parse('{"type":"prompt","text":"wider"}').text == "wider"
    c = parse('{"type":"hint","stem":"gtr","text":"far left"}')
    assert (c.stem, c.text) == ("gtr", "far left")
    assert parse('{"type":"ping"}').kind == "ping"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b'{"type":"ping"}', "binary"),
        ("x" * (MAX_MESSAGE_BYTES + 1), "size"),
        ('{"type":"prompt","text":"' + "\u00e9" * 9000 + '"}', "size"),  # 18 KB in UTF-8
        ("{", "json"),
        ('{"type":"move","id":"pad","az":NaN,"el":0,"dist":1}', "json"),
        ('{"type":"move","id":"pad","az":Infinity,"el":0,"dist":1}', "json"),
        ('{"type":"move","id":"pad","az":1e400,"el":0,"dist":1}', "value"),  # (decodes to inf)
        ("[" * 5000 + "]" * 5000, "json"),
        ('{"a":' * 2000 + "1" + "}" * 2000, "json"),
        ("[1,2]", "shape"),
        ('"move"', "shape"),
        ('{"type":"teleport","id":"pad"}', "type"),
        ('{"type":["move"]}', "type"),
        ('{"id":"pad"}', "type"),
        ('{"type":"move","id":"pad","az":0,"el":0}', "shape"),
        ('{"type":"move","id":"pad","az":0,"el":0,"dist":1,"speed":9}', "shape"),
        ('{"type":"set","id":"pad"}', "shape"),
        ('{"type":"move","id":"pad","az":"0","el":0,"dist":1}', "field"),
        ('{"type":"move","id":"pad","az":true,"el":0,"dist":1}', "field"),
        ('{"type":"move","id":"pad","az":0,"el":91,"dist":1}', "value"),
        ('{"type":"move","id":"pad","az":0,"el":0,"dist":0.1}', "value"),
        ('{"type":"move","id":"pad","az":99999999999,"el":0,"dist":1}', "value"),
        ('{"type":"set","id":"pad","width":1.5}', "value"),
        ('{"type":"set","id":"pad","gain_db":13}', "value"),
        ('{"type":"lock","id":"pad","locked":1}', "field"),
        ('{"type":"move","id":"../etc","az":0,"el":0,"dist":1}', "field"),
        ('{"type":"move","id":"' + "a" * 65 + '","az":0,"el":0,"dist":1}', "field"),
        ('{"type":"move","id":7,"az":0,"el":0,"dist":1}', "field"),
        ('{"type":"prompt","text":"' + "a" * 2001 + '"}', "value"),
        ('{"type":"prompt","text":"a\\u0000b"}', "value"),
        ('{"type":"prompt","text":"\\ud800"}', "value"),
        ('{"type":"hint","stem":"gtr","text":' + json.dumps("b" * 501) + "}", "value"),
        ('{"type":"ping","ref":-1}', "field"),
        ('{"type":"ping","ref":1.5}', "field"),
    ],
)
def test_parse_refuses_hostile_messages_with_a_reason(message, reason):
    with pytest.raises(Refused) as exc:
        parse(message)
    assert exc.value.reason == reason


def test_token_bucket_bounds_the_rate():
    now = [0.0]
    b = TokenBucket(rate=10.0, burst=5.0, clock=lambda: now[0])
    assert [b.take() for _ in range(7)] == [True] * 5 + [False] * 2
    now[0] = 0.25  # 2.5 tokens back
    assert [b.take() for _ in range(3)] == [True, True, False]
    now[0] = 100.0  # never more than the burst
    assert sum(b.take() for _ in range(10)) == 5


# ============================================================================ hand edits
def _edits(request: Request, scene_doc: dict):
    books: list[SceneBook] = []
    omap = ObjectMap.from_request(request)
    directions = [(None, {})]
    edits = SceneEdits(books.append, lambda _s: request, lambda: directions[0])
    plan = PreparedScene(Scene.from_dict(scene_doc), omap, source="planner", section=None, fallback_section_s=32.0)
    edits.published(SceneBook(omap, plan))
    return edits, books, omap, directions


def _obj(book: SceneBook, oid: str, section=None) -> dict:
    return next(o for o in book.resolve(section).scene.raw["objects"] if o["id"] == oid)


def test_an_edit_is_rule_checked_then_published_or_refused_naming_the_rule():
    req, doc = planned()
    edits, books, omap, _ = _edits(req, doc)
    out = edits.apply(Edit("pad", position=(60.0, 30.0, 3.0), width=0.9), None)
    assert out.accepted and len(books) == 2
    pad = _obj(books[-1], "pad")
    assert (pad["az_deg"], pad["el_deg"], pad["dist_m"], pad["width"], "motion" in pad) == (60.0, 30.0, 3.0, 0.9, False)
    assert books[-1].default.crossfade_in is False  # a hand edit goes out in the next frame, no crossfade
    aed, _, width, _ = books[-1].default.evaluate(0.7)
    k = omap.index("pad")
    assert aed[k].tolist() == [60.0, 30.0, 3.0] and width[k] == 0.9
    assert [_obj(books[-1], i) for i in ("vox", "kick", "gtr")] == [_obj(books[0], i) for i in ("vox", "kick", "gtr")]
    assert out.proposed == books[0].default.scene.raw and out.edited == books[-1].default.scene.raw

    for edit, rule, rule_doc in [
        (Edit("kick", position=(0.0, 40.0, 1.8)), "rules[0].mono_low_end", REQUEST["rules"][0]),
        (Edit("pad", position=(60.0, 45.0, 3.0)), "rules[1].max_elevation", REQUEST["rules"][1]),
        (Edit("bass", width=0.5), "rules[0].mono_low_end", REQUEST["rules"][0]),
    ]:
        out = edits.apply(edit, None)
        assert (out.accepted, out.rule, out.rules) == (False, rule, (rule_doc,))
        assert out.message and len(books) == 2  # nothing published
    out = edits.apply(Edit("nobody", gain_db=-3.0), None)
    assert (out.accepted, out.rule) == (False, "unknown object")
    assert (edits.accepted, edits.refused) == (1, 4)


def test_edits_stay_through_replans_a_prompt_drops_unlocked_ones_locks_hold():
    req, doc = planned()
    edits, books, omap, directions = _edits(req, doc)
    assert edits.apply(Edit("pad", position=(60.0, 30.0, 3.0)), None).accepted
    assert edits.apply(Edit("gtr", position=(90.0, 0.0, 2.0)), None).accepted
    assert edits.apply(Edit("gtr", locked=True), None).accepted
    assert edits.state(None) == {"pad": (frozenset({"position"}), False), "gtr": (frozenset({"position"}), True)}

    # a re-plan (same direction, e.g. new markers): both edits laid over the new plan
    replan = copy.deepcopy(doc)
    for o in replan["objects"]:
        o["reverb_send"] = 0.3
    edits.published(
        SceneBook(
            omap, PreparedScene(Scene.from_dict(replan), omap, source="llm", section=None, fallback_section_s=32.0)
        )
    )
    book = books[-1]
    assert (_obj(book, "pad")["az_deg"], _obj(book, "pad")["reverb_send"]) == (60.0, 0.3)  # the edit over the new plan
    assert _obj(book, "gtr")["az_deg"] == 90.0 and book.default.source == "llm+edits"

    # a new prompt: the unlocked edit goes (the producer asked for a new proposal), the lock holds
    directions[0] = ("put the guitar behind me", {})
    edits.published(
        SceneBook(
            omap, PreparedScene(Scene.from_dict(doc), omap, source="planner", section=None, fallback_section_s=32.0)
        )
    )
    book = books[-1]
    assert _obj(book, "pad") == next(o for o in doc["objects"] if o["id"] == "pad")
    assert _obj(book, "gtr")["az_deg"] == 90.0
    assert edits.state(None) == {"gtr": (frozenset({"position"}), True)}
    assert edits.apply(Edit("gtr", reset=True), None).accepted
    assert books[-1].default.scene.raw == doc and edits.state(None) == {}


def test_edits_are_per_section():
    req, doc = planned()
    omap = ObjectMap.from_request(req)
    books: list[SceneBook] = []
    edits = SceneEdits(books.append, lambda _s: req)
    mk = lambda s: PreparedScene(Scene.from_dict(doc), omap, source="planner", section=s, fallback_section_s=32.0)  # noqa: E731
    edits.published(SceneBook(omap, mk(None), {"verse": mk("Verse"), "chorus": mk("Chorus")}))
    assert edits.apply(Edit("pad", position=(-30.0, 10.0, 2.0)), "Verse").accepted
    assert _obj(books[-1], "pad", "Verse")["az_deg"] == -30.0
    assert _obj(books[-1], "pad", "Chorus") == _obj(books[0], "pad", "Chorus")
    assert _obj(books[-1], "pad", None) == _obj(books[0], "pad", None)


# ============================================================================ the edits log
def test_edits_go_to_the_users_data_folder():
    assert data_dir({"GRAVITY_DATA": "/g", "XDG_DATA_HOME": "/x"}) == Path("/g")
    assert data_dir({"XDG_DATA_HOME": "/x"}) == Path("/x/gravity")
    assert data_dir({}) == Path("~/.local/share/gravity").expanduser()


def test_edit_log_appends_whole_rows_atomically_within_bounds(tmp_path):
    req, doc = planned()
    row = edit_row(
        request=req.raw,
        proposed=doc,
        edited=doc,
        proposer="planner",
        section="Verse",
        edit={"object_id": "pad"},
        when=0.0,
    )
    assert row["time"] == "1970-01-01T00:00:00.000+00:00" and row["prompt_format"].startswith("gravity-prompt")
    size = len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()) + 1
    log = EditLog(tmp_path / "edits", max_file_bytes=10 * size, max_total_bytes=35 * size)

    def writer(n: int) -> None:
        for i in range(10):
            log.append({**row, "edit": {"writer": n, "i": i}})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = sorted((tmp_path / "edits").glob("edits-*.jsonl"))
    rows = read_edits(tmp_path / "edits")
    assert (log.rows, log.refused, len(rows)) == (35, 5, 35)  # the folder bound refused the last 5
    assert [f.name for f in files] == [f"edits-{n:06d}.jsonl" for n in range(1, 5)]
    assert all(f.stat().st_size <= 10 * size for f in files)  # each file within its bound
    assert all(r["request"] == req.raw and r["edited"] == doc for r in rows)  # every row whole
    assert sorted((r["edit"]["writer"], r["edit"]["i"]) for r in rows) == sorted(
        {(r["edit"]["writer"], r["edit"]["i"]) for r in rows}
    )
    assert (tmp_path / "edits").stat().st_mode & 0o077 == 0  # private: unreleased music
    small = EditLog(tmp_path / "small", max_row_bytes=100)
    assert small.append(row) is None and small.refused == 1 and not (tmp_path / "small").exists()


# ============================================================================ a live bridge on real sockets
class Wire:
    """ADM-OSC from the bridge, decoded by python-osc on a real UDP socket; (monotonic time, address, args)."""

    def __init__(self) -> None:
        from pythonosc.osc_bundle import OscBundle
        from pythonosc.osc_message import OscMessage

        self._bundle, self._message = OscBundle, OscMessage
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.msgs: list[tuple[float, str, list]] = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                d = self.sock.recv(65536)
            except (TimeoutError, OSError):
                continue
            t = time.monotonic()
            msgs = list(self._bundle(d)) if d.startswith(b"#bundle") else [self._message(d)]
            self.msgs.extend((t, m.address, list(m.params)) for m in msgs)

    def aed(self, n: int, since: float = 0.0) -> list[tuple[float, list]]:
        """(time, [az, el, dist normalised]) of object number ``n`` (1-based) since ``since``."""
        return [(t, a) for t, addr, a in list(self.msgs) if t >= since and addr == f"/adm/obj/{n}/aed"]

    def close(self) -> None:
        self._stop = True
        self._t.join(1.0)
        self.sock.close()


def _bridge(wire_port: int, realtime: bool = False):
    from bridge.live import LiveBridge, LiveConfig
    from bridge.targets import TargetSpec

    config = LiveConfig(
        listen_port=free_port(),
        targets=(TargetSpec.parse(f"adm:127.0.0.1:{wire_port}"),),
        rate_hz=50.0,
        planner="planner",
        plan_in_subprocess=False,
        realtime_priority=realtime,
    )
    bridge = LiveBridge(config, REQUEST, make_scene_fn=with_orbit)
    bridge.start()
    bridge.transport.play(0.0)
    return bridge


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A bridge at 50 Hz streaming ADM-OSC to a python-osc socket, with the UI server on a free port."""
    from bridge.ui.server import UIServer, UILimits
    from bridge.ui.session import LiveSession

    wire = Wire()
    bridge = _bridge(wire.port)
    folder = tmp_path_factory.mktemp("edits")
    server = UIServer(LiveSession(bridge), port=0, edit_log=EditLog(folder), limits=UILimits(record_quiet_s=0.2))
    server.start()
    yield bridge, server, wire, folder
    server.stop()
    bridge.stop()
    wire.close()


def _k(bridge, oid: str) -> int:
    return bridge.book.map.index(oid) + 1  # object number on the wire


def test_an_edit_is_on_the_wire_within_one_frame(live):
    bridge, _, wire, _ = live
    period = 1.0 / bridge.config.rate_hz
    lat = []
    for i, az in enumerate((-40.0, -35.0, -30.0, -25.0, -20.0)):
        t0 = time.monotonic()
        out = bridge.apply_edit(Edit("pad", position=(az, 10.0, 2.5)))
        assert out.accepted, out
        got = wait_for(
            lambda az=az, t0=t0: [t for t, a in wire.aed(_k(bridge, "pad"), t0) if abs(a[0] - az) < 1e-3],
            2,
            f"edit {i} on the wire",
        )
        lat.append(got[0] - t0)
    print(f"edit -> ADM-OSC wire: {', '.join(f'{x * 1e3:.1f}' for x in lat)} ms (frame period {period * 1e3:.0f} ms)")
    assert np.median(lat) < period  # within one frame (the frame thread is woken at once)
    _, a = wire.aed(_k(bridge, "pad"))[-1]
    assert a[1] == pytest.approx(10.0) and a[2] == pytest.approx(2.5 / 10.0)  # dist normalised by dmax 10 m


def test_an_edit_is_kept_for_the_section_through_a_replan(live):
    from bridge.planning import PlanContext

    bridge, _, wire, _ = live
    assert bridge.apply_edit(Edit("gtr", position=(100.0, 5.0, 3.0))).accepted
    bridge.worker.request_replan(PlanContext(bpm=126.0))  # the DAW's tempo changed: every section re-planned
    wait_for(lambda: bridge.book.default.scene.raw["timing"]["bpm"] == 126.0, 5, "a re-plan")  # a new plan ...
    assert bridge.book.default.source == "planner+edits" and bridge.worker.book.default.source == "planner"
    gtr = _obj(bridge.book, "gtr")
    assert (gtr["az_deg"], gtr["el_deg"], gtr["dist_m"]) == (100.0, 5.0, 3.0)  # ... with the edit over it
    t0 = time.monotonic()
    time.sleep(1.2)  # a full refresh of every object (refresh 1 s)
    assert all(abs(a[0] - 100.0) < 1e-3 for _, a in wire.aed(_k(bridge, "gtr"), t0))
    bridge.worker.request_replan(PlanContext())  # back to the request's tempo for the tests that follow
    wait_for(lambda: bridge.book.default.scene.raw["timing"]["bpm"] == 120.0, 5, "tempo back")


# ============================================================================ trust: host, origin, token
def run_async(coro):
    """``asyncio.run(coro)`` in a thread of its own (playwright's sync API keeps a loop running in this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _get(port: int, path: str = "/", headers: dict | None = None) -> tuple[int, dict, bytes]:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    out = (r.status, dict(r.getheaders()), r.read())
    c.close()
    return out


async def _ws_status(url: str, headers: dict | None = None) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as s:
        try:
            async with s.ws_connect(url, headers=headers or {}) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_server_serves_the_page_to_loopback_only_and_refuses_other_origins(live):
    _, server, _, _ = live
    port = server.port
    status, headers, body = _get(port)
    assert status == 200 and b'<svg id="top"' in body and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    assert _get(port, "/app.js")[0] == 200 and _get(port, "/style.css")[0] == 200
    assert _get(port, "/../pyproject.toml")[0] == 404 and _get(port, "/static/app.js")[0] == 404
    assert _get(port, headers={"Host": f"evil.example:{port}"})[0] == 421  # DNS rebinding
    ws = f"ws://127.0.0.1:{port}/ws"
    assert run_async(_ws_status(ws, {"Origin": "http://evil.example"})) == 403  # another web page
    assert run_async(_ws_status(ws, {"Origin": f"http://127.0.0.1:{port}"})) == 101


def test_a_token_guards_every_request_beyond_loopback(live):
    from bridge.errors import PortInUseError
    from bridge.ui.server import UIServer, is_loopback
    from bridge.ui.session import LiveSession

    assert [is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "localhost", "0.0.0.0", "192.168.1.2")] == [
        True
    ] * 4 + [False] * 2
    assert UIServer(LiveSession(live[0]), host="0.0.0.0").token  # generated for any non-loopback address
    with pytest.raises(PortInUseError, match=f"127.0.0.1:{live[1].port}"):
        UIServer(LiveSession(live[0]), port=live[1].port).start()  # a port in use: one clear error
    with UIServer(LiveSession(live[0]), port=0, token="s3cret") as server:
        port = server.port
        assert server.url.endswith("/?token=s3cret")
        assert [_get(port, p)[0] for p in ("/", "/app.js", "/?token=nope")] == [403, 403, 403]
        status, headers, _ = _get(port, "/?token=s3cret")
        assert (
            status == 200
            and "gravity_token=s3cret" in headers["Set-Cookie"]
            and "SameSite=Strict" in headers["Set-Cookie"]
        )
        assert _get(port, "/app.js", {"Cookie": "gravity_token=s3cret"})[0] == 200
        assert run_async(_ws_status(f"ws://127.0.0.1:{port}/ws")) == 403
        assert run_async(_ws_status(f"ws://127.0.0.1:{port}/ws?token=s3cret")) == 101
        # reconnecting does not reset the limits: new connections are rate-limited (burst 10, 2/s)
        codes = [run_async(_ws_status(f"ws://127.0.0.1:{port}/ws?token=s3cret")) for _ in range(12)]
        assert codes.count(101) <= 10 and codes.count(429) >= 2 and set(codes) == {101, 429}


# ============================================================================ the page in a real browser
@pytest.fixture(scope="module")
def page(live, tmp_path_factory):
    if not CHROMIUM:
        pytest.skip("needs Debian's chromium (make sysdeps)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    _, server, _, _ = live
    shots = tmp_path_factory.mktemp("ui_shots")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.goto(server.url)
        wait_for(lambda: pg.evaluate("window.gravity.frames") > 10, 10, "frames on the page", 0.05)
        yield pg, shots, errors
        browser.close()


def _state(pg, expr: str):
    return pg.evaluate(f"window.gravity.{expr}")


def _client_xy(pg, view: str, az: float, el: float, d: float) -> tuple[float, float]:
    """Screen pixels of (az, el, d) in the page's top view (``top``) or elevation map (``elev``)."""
    return tuple(
        pg.evaluate(
            """([view, az, el, d]) => {
                const svg = document.getElementById(view), pt = svg.createSVGPoint();
                if (view === "top") { const [x, y] = window.gravity.topXY(az, el, d); pt.x = x; pt.y = -y; }
                else { pt.x = -az; pt.y = -el; }
                const p = pt.matrixTransform(svg.getScreenCTM()); return [p.x, p.y]; }""",
            [view, az, el, d],
        )
    )


def _drag(pg, view: str, oid: str, to: tuple[float, float]) -> None:
    box = pg.locator(f"#{view}-objects circle[data-id='{oid}']").bounding_box()
    pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    pg.mouse.down()
    pg.mouse.move(*to, steps=8)
    pg.mouse.up()


def test_page_shows_every_object_and_live_positions_at_the_frame_rate(live, page):
    from gravity.plot import top_view_xy

    bridge, _, _, _ = live
    pg, shots, errors = page
    objs = bridge.book.default.scene.objects
    assert pg.locator("#top-objects circle").count() == len(objs) == pg.locator("#elev-objects circle").count()
    assert pg.locator("#objects tbody tr").count() == len(objs)
    assert [r.get_attribute("data-id") for r in pg.locator("#top-objects circle").all()] == [o.id for o in objs]
    wait_for(lambda: pg.locator("#score").inner_text() != "-", 5, "the critic's card")
    assert "mono_low_end" in pg.locator("#rules").inner_text()
    f0, t0 = _state(pg, "frames"), time.monotonic()
    time.sleep(2.0)
    fps = (_state(pg, "frames") - f0) / (time.monotonic() - t0)
    meter = _state(pg, "fps")
    print(f"page received {fps:.1f} frames/s (bridge {bridge.config.rate_hz:g} Hz); the page's own meter {meter:.1f}")
    assert fps >= 25.0
    # the page draws where gravity plot would: the orbiting hat's circle against plot.top_view_xy
    j = [o.id for o in objs].index("hat")
    frame, cx, cy = pg.evaluate(
        """(j) => { const c = document.querySelectorAll('#top-objects circle')[j];
                    return [window.gravity.lastFrame.p[j], +c.getAttribute('cx'), +c.getAttribute('cy')]; }""",
        j,
    )
    x, y = top_view_xy(frame[0], frame[1], frame[2])
    assert (cx, cy) == (pytest.approx(x, abs=1e-6), pytest.approx(-y, abs=1e-6))
    assert frame[1] == pytest.approx(20.0) and frame[2] == pytest.approx(2.0)
    assert pg.locator("#section").inner_text() == "-" and pg.locator("#transport").inner_text() == "PLAY"
    pg.screenshot(path=str(shots / "1_live.png"))
    assert not errors, errors


def test_dragging_an_object_moves_it_on_the_adm_osc_wire(live, page):
    bridge, server, wire, folder = live
    pg, shots, errors = page
    pad = _obj(bridge.book, "pad")
    t0 = time.monotonic()
    _drag(pg, "top", "pad", _client_xy(pg, "top", 60.0, pad["el_deg"], 3.0))
    n = _k(bridge, "pad")
    got = wait_for(lambda: [a for _, a in wire.aed(n, t0) if abs(a[0] - 60.0) < 2.0], 5, "the drag on the wire")
    wait_for(lambda: _state(pg, "inflight") is None and _state(pg, "lastEdit.ok"), 5, "the last move answered")
    pad = _obj(bridge.book, "pad")
    time.sleep(0.1)
    last = wire.aed(n)[-1][1]
    assert abs(pad["az_deg"] - 60.0) < 2.0 and pad["dist_m"] == pytest.approx(3.0, abs=0.1) and "motion" not in pad
    assert last == pytest.approx([pad["az_deg"], pad["el_deg"], pad["dist_m"] / 10.0], abs=1e-4)  # wire = scene book
    assert got and "edited pad" in pg.locator("#notice").inner_text()
    pg.screenshot(path=str(shots / "2_dragged.png"))
    # the drag is one row of training data once the object is left alone
    rows = wait_for(
        lambda: [r for r in read_edits(folder) if r["edit"].get("object_id") == "pad" and "position" in r["edit"]],
        5,
        "the edit recorded",
    )
    assert (
        rows[-1]["edited"] == bridge.book.default.scene.raw
        and rows[-1]["proposed"] == bridge.edits.planned(None).scene.raw
    )
    assert rows[-1]["request"]["stems"] == REQUEST["stems"] and rows[-1]["proposer"] == "planner"
    assert not errors, errors


def test_a_refused_edit_shows_the_rule_on_the_page(live, page):
    bridge, _, wire, _ = live
    pg, shots, errors = page
    n = _k(bridge, "pad")
    pad = _obj(bridge.book, "pad")
    t0 = time.monotonic()
    _drag(pg, "elev", "pad", _client_xy(pg, "elev", pad["az_deg"], 50.0, 1.0))  # the rule: pad at most 35 deg up
    wait_for(lambda: "refused" in pg.locator("#notice").inner_text(), 5, "the refusal on the page")
    text = pg.locator("#notice").inner_text()
    assert "rules[1].max_elevation" in text and '"max_deg":35' in text
    assert pg.locator("#notice").get_attribute("class") == "refused"
    time.sleep(1.2)  # a full refresh
    # the drag went as far as the rule allows (the moves below 35 deg were accepted on the way), no further
    now = _obj(bridge.book, "pad")
    assert pad["el_deg"] <= now["el_deg"] <= 35.0 and all(a[1] <= 35.0 for _, a in wire.aed(n, t0))
    assert wire.aed(n)[-1][1][1] == pytest.approx(now["el_deg"])
    # and the page shows the object where the wire has it, not where the pointer let go
    cy = float(pg.locator("#elev-objects circle[data-id='pad']").get_attribute("cy"))
    assert cy == pytest.approx(-now["el_deg"], abs=0.01) and _state(pg, "hold") is None
    pg.screenshot(path=str(shots / "3_refused.png"))
    assert not errors, errors


def test_a_prompt_replans_the_section(live, page):
    bridge, _, wire, _ = live
    pg, shots, errors = page
    n = _k(bridge, "gtr")
    assert bridge.apply_edit(Edit("gtr", reset=True)).accepted
    pad = _obj(bridge.book, "pad")  # where the drags above left it
    pg.locator("#objects tr[data-id='pad'] input.lock").check()  # lock it from the page
    wait_for(lambda: bridge.edits.state(None).get("pad", (0, False))[1], 5, "the lock")
    t0 = time.monotonic()
    pg.fill("#prompt", "put the guitar behind me")
    pg.press("#prompt", "Enter")
    wait_for(
        lambda: [a for _, a in wire.aed(n, t0) if abs(wrap_az(a[0] - 180.0)) < 1.0],
        10,
        "the re-planned guitar on the wire",
    )
    assert bridge.worker.prompt == "put the guitar behind me" and "re-planning" in pg.locator("#notice").inner_text()
    assert _obj(bridge.book, "gtr")["az_deg"] == 180.0
    assert _obj(bridge.book, "pad") == pad  # the locked object held through the new direction
    j = [o.id for o in bridge.book.default.scene.objects].index("gtr")
    wait_for(
        lambda: abs(wrap_az(_state(pg, "lastFrame.p")[j][0] - 180.0)) < 1.0, 5, "the re-planned guitar on the page"
    )
    time.sleep(0.3)
    pg.screenshot(path=str(shots / "4_prompt.png"))
    shutil.copy(shots / "4_prompt.png", "/tmp/ui_shot.png")  # for a person to look at
    assert not errors, errors


# ============================================================================ hostile traffic while streaming
class OscDump:
    """``oscdump -L PORT`` in another process: receive times of the wire, independent of this one."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            [OSCDUMP, "-L", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.lines: list[tuple[float, str]] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split(None, 2)
            if len(parts) >= 2:
                hi, _, lo = parts[0].partition(".")
                self.lines.append((int(hi, 16) - 2208988800 + int(lo, 16) / 2**32, parts[1]))

    def times(self, address: str, t0: float, t1: float) -> np.ndarray:
        return np.array([t for t, a in list(self.lines) if a == address and t0 <= t <= t1])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def hostile(rng: random.Random, i: int) -> str | bytes:
    """Message ``i`` of the fuzz: malformed, mistyped, out of range, oversized, deep, binary, or
    well-formed with hostile values.
    """

    def junk(depth: int = 0):
        r = rng.random()
        if depth > 3 or r < 0.3:
            return rng.choice([None, True, -1, 2**70, 1e308, -0.0, "", "x" * rng.randint(0, 300), "\u202e\U0001f600"])
        if r < 0.65:
            return [junk(depth + 1) for _ in range(rng.randint(0, 4))]
        return {
            rng.choice(["type", "id", "az", "text", "ref", "\x00"]): junk(depth + 1) for _ in range(rng.randint(0, 4))
        }

    ids = ["pad", "gtr", "kick", "hat", "vox", "bass", "nobody", "a" * 64]
    k = i % 12
    if k == 0:
        return json.dumps(junk())
    if k == 1:
        return json.dumps(
            {
                "type": rng.choice(["move", "set", "lock", "hint"]),
                "id": junk(),
                "az": junk(),
                "el": junk(),
                "dist": junk(),
            }
        )
    if k == 2:
        return '{"type":"move","id":"pad","az":%s,"el":0,"dist":1}' % rng.choice(
            ["NaN", "Infinity", "-Infinity", "1e999"]
        )
    if k == 3:  # just under the size bound, over the prompt bound
        return json.dumps({"type": "prompt", "text": "y" * rng.randint(2001, MAX_MESSAGE_BYTES - 40)})
    if k == 4:
        d = rng.randint(100, 5000)
        return rng.choice(["[", '{"a":']) * d + "0" + rng.choice(["]", "}"]) * d
    if k == 5:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 2000)))
    if k == 6:
        return json.dumps(
            {"type": rng.choice(["teleport", "MOVE", "", "__proto__"]), "id": rng.choice(ids), "extra": list(range(5))}
        )
    if k == 7:  # well-formed moves anywhere: the rules accept some, refuse others (the orbiting hat, the
        # cadence probe, keeps moving)
        return json.dumps(
            {
                "type": "move",
                "id": rng.choice(["pad", "gtr", "kick", "vox", "bass"]),
                "az": rng.uniform(-400, 400),
                "el": rng.uniform(-95, 95),
                "dist": rng.uniform(0, 60),
            }
        )
    if k == 8:
        return json.dumps(
            {
                "type": "set",
                "id": rng.choice(ids),
                "width": rng.choice([True, -1, 0.5, 2, "1"]),
                "gain_db": rng.uniform(-100, 50),
            }
        )
    if k == 9:
        return '{"type":"prompt","text":"\\ud83d%s"}' % rng.choice(["", "\\u0000", "ok"])
    if k == 10:
        return json.dumps(
            {
                "type": rng.choice(["prompt", "hint"]),
                "stem": rng.choice(ids),
                "text": "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(0, 80))),
            }
        )
    if i % 600 == 11:  # over the size bound: the server closes the connection (1009); the fuzzer reconnects
        return "z" * (MAX_MESSAGE_BYTES + rng.randint(1, 5000))
    return json.dumps({"type": "ping", "ref": rng.choice([0, -5, 2**40, 1.5, "1", None])})


async def _fuzz(url: str, n: int, seed: int, oversize: bool = True) -> dict[str, int]:
    import aiohttp

    async def drain(ws) -> None:  # read (and ignore) what the server answers, until it closes
        async for _ in ws:
            pass

    rng = random.Random(seed)
    sent = reconnects = 0
    async with aiohttp.ClientSession() as s:
        ws = await s.ws_connect(url, max_msg_size=0)
        reader = asyncio.ensure_future(drain(ws))
        for i in range(n):
            m = hostile(rng, i)
            if not oversize and len(m) > MAX_MESSAGE_BYTES:
                m = m[: MAX_MESSAGE_BYTES // 2]
            if ws.closed:
                ws = await s.ws_connect(url, max_msg_size=0)
                reader = asyncio.ensure_future(drain(ws))
                reconnects += 1
            try:
                await (ws.send_bytes(m) if isinstance(m, bytes) else ws.send_str(m))
                sent += 1
            except (ConnectionError, RuntimeError):
                pass
            if len(m) > MAX_MESSAGE_BYTES:  # the server closes on it: wait for the close, then reconnect
                await asyncio.wait_for(reader, 5)
            elif i % 50 == 0:
                await asyncio.sleep(0)  # let the reader run
        await ws.close()
        reader.cancel()
    return {"sent": sent, "reconnects": reconnects}


def fuzz_in_another_process(url: str, n: int, seed: int, oversize: bool) -> dict[str, int]:
    """:func:`_fuzz` from a separate Python process (a hostile page is another program: it must not
    share this process's interpreter lock with the frame thread being measured).
    """
    call = f"t._fuzz({url!r}, {n}, {seed}, {oversize})"
    code = f"import json, asyncio, test_bridge_ui as t; print(json.dumps(asyncio.run({call})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not OSCDUMP, reason="needs Debian's liblo-tools (oscdump)")
@pytest.mark.realtime  # a wire-cadence soak under a flood: it wants a core of its own (not test-fast's workers)
def test_hostile_websocket_messages_do_not_disturb_the_stream():
    """10k hostile messages parsed and dropped (every one reaches the validator), then a 2k flood
    at the default rate limits, while the bridge streams at 50 Hz: the wire stays on cadence.
    """
    from bridge.ui.server import UILimits, UIServer
    from bridge.ui.session import LiveSession

    port = free_port()
    dump = OscDump(port)
    bridge = _bridge(port, realtime=True)  # as gravity live runs it: the frame thread's priority raised, and
    gc.freeze()  # start-up's objects out of the collector's full passes
    try:
        print(f"frame thread scheduling: {bridge.scheduler.priority}")
        hat = f"/adm/obj/{_k(bridge, 'hat')}/aed"
        wait_for(lambda: len(dump.lines) > 10, 10, "oscdump hears the bridge", 0.05)
        big = 1e9
        open_limits = UILimits(
            connects_per_s=big, connect_burst=big, all_messages_per_s=big, all_message_burst=big, messages_per_s=big,
            message_burst=big, edits_per_s=big, edit_burst=big, errors_per_s=big,
        )  # fmt: skip
        results = {}
        for name, limits, n in (("parsed", open_limits, 10_000), ("flood", UILimits(), 2_000)):
            with UIServer(LiveSession(bridge), port=0, limits=limits) as server:
                url = f"ws://127.0.0.1:{server.port}/ws"
                base0 = time.time()
                time.sleep(1.0)
                t0 = time.time()
                fuzz = fuzz_in_another_process(url, n, seed=20 + n, oversize=name == "parsed")
                t1 = time.time()
                time.sleep(0.3)  # the last frames reach oscdump
                assert run_async(_ws_status(url)) == 101  # the server still takes a proper page
                results[name] = (server.stats(), fuzz, dump.times(hat, base0, t0), dump.times(hat, t0, t1), t1 - t0, n)
        stats = bridge.scheduler.stats()
        assert bridge.scheduler.alive and bridge.listener is not None
    finally:
        gc.unfreeze()
        bridge.stop()
        dump.close()
    period = 1.0 / bridge.config.rate_hz
    for name, (st, fuzz, base, during, secs, n) in results.items():
        gaps = np.diff(during) * 1e3
        bgaps = np.diff(base) * 1e3
        print(
            f"{name}: {fuzz['sent']} hostile messages in {secs:.2f} s ({fuzz['reconnects']} reconnects), "
            f"dropped {st['dropped']}, edits {st['edits']} accepted / {st['refused']} refused / "
            f"{st['superseded']} superseded; wire {len(during)} frames = {len(during) / secs:.1f}/s, gap p50 "
            f"{np.percentile(gaps, 50):.1f} p99 {np.percentile(gaps, 99):.1f} max {gaps.max():.1f} ms (quiet before: "
            f"p99 {np.percentile(bgaps, 99):.1f} max {bgaps.max():.1f} ms); problems {st['problems']}"
        )
        assert fuzz["sent"] >= n * 0.99
        assert st["messages"] >= 0.98 * fuzz["sent"]  # (a message sent as the server closes the socket is lost)
        assert len(during) >= 0.9 * secs / period  # (early frames, one per accepted edit, come on top)
        assert np.percentile(gaps, 99) < 3 * period * 1e3 and gaps.max() < 500.0
    st = results["parsed"][0]
    assert (
        st["dropped"] + st["edits"] + st["refused"] + st["superseded"] + st["directions"]
        >= 0.95 * results["parsed"][1]["sent"]
    )
    assert set(st["problems"]) >= {"ui-json", "ui-binary", "ui-shape", "ui-type", "ui-field", "ui-value"}
    flood = results["flood"][0]
    assert flood["problems"]["ui-rate"] >= 0.5 * flood["messages"]  # the default limits drop a flood unparsed
    print(
        f"scheduler: {stats.cadence_frames} frames on cadence, {stats.late_skipped} skipped, lateness p50 "
        f"{stats.lateness_p50_ms:.2f} p99 {stats.lateness_p99_ms:.2f} max {stats.lateness_max_ms:.2f} ms"
    )
    assert stats.late_skipped <= 0.01 * stats.frames and stats.errors == 0  # on cadence through it all


# ============================================================================ gravity ui and gravity live --ui
def test_file_session_edits_replans_and_writes_the_scene(tmp_path):
    from bridge.ui.session import FileSession

    req, doc = planned()
    out = tmp_path / "edited.json"
    s = FileSession(doc, REQUEST, rate_hz=50.0, out=out)
    frames: list = []
    s.add_frame_listener(frames.append)
    s.start()
    try:
        wait_for(lambda: len(frames) >= 5, 5, "frames")
        k = s.map.index("hat")
        assert frames[-1].aed[k].tolist() == pytest.approx(
            s.scene(None).scene.objects[5].position_at(frames[-1].section_t).tolist()
        )
        assert s.apply_edit(Edit("pad", position=(20.0, 10.0, 2.0))).accepted
        assert json.loads(out.read_text())["objects"][4]["az_deg"] == 20.0
        assert s.apply_edit(Edit("kick", position=(0.0, 30.0, 2.0))).rule == "rules[0].mono_low_end"
        assert s.request_hint("gtr", "far left, behind")
        wait_for(lambda: s.plans == 1, 5, "the hint's re-plan")
        gtr = _obj(SceneBook(s.map, s.scene(None)), "gtr")
        assert gtr["az_deg"] == 135.0 and s.request.stem("gtr").hint == "far left, behind"
        assert not s.request_hint("nobody", "up")
    finally:
        s.stop()
    bare = FileSession(doc)  # no request: only what every scene keeps; no re-planning
    assert not bare.request_prompt("wider") and bare.apply_edit(Edit("kick", position=(0.0, 30.0, 2.0))).accepted


def _serve(argv: list[str], env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gravity", *argv], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    lines: list[str] = []

    def url() -> str | None:
        line = proc.stderr.readline()
        lines.append(line)
        if "browser monitor and editor at " in line:
            return line.split(" at ", 1)[1].strip()
        assert line or proc.poll() is None, "".join(lines)
        return None

    return proc, wait_for(url, 30, "the page's address", 0.0)


def test_gravity_ui_and_gravity_live_ui_serve_the_page(tmp_path):
    _, doc = planned()
    (tmp_path / "scene.json").write_text(json.dumps(doc))
    (tmp_path / "req.json").write_text(json.dumps(REQUEST))
    env = {**os.environ, "GRAVITY_DATA": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    for argv in (
        ["ui", str(tmp_path / "scene.json"), "--request", str(tmp_path / "req.json"), "--port", "0"],
        [
            "live",
            "--request",
            str(tmp_path / "req.json"),
            "--planner",
            "planner",
            "--listen",
            str(free_port()),
            "--target",
            f"adm:127.0.0.1:{free_port()}",
            "--ui",
            "0",
            "--no-status",
        ],
    ):
        proc, url = _serve(argv, env)
        try:
            assert (
                proc.stderr.readline().strip()
                == f"gravity: accepted edits are recorded in {tmp_path / 'data' / 'edits'}"
            )
            port = int(url.rsplit(":", 1)[1].strip("/"))
            status, _, body = _get(port)
            assert status == 200 and b"Gravity" in body and url == f"http://127.0.0.1:{port}/"
            assert run_async(_ws_status(f"ws://127.0.0.1:{port}/ws")) == 101
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    r = subprocess.run(
        [sys.executable, "-m", "gravity", "live", "--request", str(tmp_path / "req.json"), "--ui-host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 1 and "--ui-host" in r.stderr and "needs --ui" in r.stderr
