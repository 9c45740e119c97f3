"""The browser monitor and editor: an aiohttp server (HTTP + WebSocket) in its own thread.

``GET /`` serves the page (``static/``: HTML, vanilla JS drawing SVG, CSS; nothing is fetched
from anywhere else), ``GET /ws`` the WebSocket. The server pushes, to every page:

``scene``
    the objects of the section's scene (id, class, family colour, member stems, width, gain,
    motion path, locked and edited flags), the section and who proposed it; again whenever the
    scene or its edits change (``v`` numbers it);
``frame``
    every frame the session produces (the bridge's frame rate): playhead, section, section time and
    each object's (az deg +left, el deg, dist m, width, gain dB), taken from the frame that went
    on the wire (the first member stem of each object), so the page shows what the renderers get;
``card``
    the critic's card (:func:`gravity.critic.critique`) of that scene, with the request's rules
    and hints, computed off the event loop;
``edit`` / ``ack`` / ``pong`` / ``error``
    answers to what the page sent (:mod:`bridge.ui.protocol`).

Frames reach the server through a frame listener that only stores the frame and, at most once
per frame, schedules the event loop (the frame thread never waits here). Each page has its own
sender task that sends the newest frame when it can: a slow page skips frames, it never holds up
the others or the bridge.

Trust: bound to loopback by default, where the ``Host`` header must name a loopback address (a
DNS-rebinding page cannot reach it); on any other address a token (printed at start) is required
on every HTTP and WebSocket request (``?token=``, then a ``SameSite=Strict`` cookie). A WebSocket
whose ``Origin`` is not this server is refused (no other web page can drive the bridge). Every
message is bounded in size (:data:`~bridge.ui.protocol.MAX_MESSAGE_BYTES`) and rate (per-page
token buckets), validated (:func:`~bridge.ui.protocol.parse`), and a refused one is dropped with a
rate-limited logged reason (:class:`~bridge.ratelog.RateLimitedLog`); edits run one at a time per
page on a worker thread, a newer one superseding one not yet started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from aiohttp import WSMsgType, web

from bridge.edits import Edit, EditOutcome
from bridge.errors import BridgeError, PortInUseError
from bridge.frame import Frame
from bridge.ratelog import RateLimitedLog
from bridge.scenes import PreparedScene
from bridge.ui import DEFAULT_PORT
from bridge.ui.protocol import MAX_MESSAGE_BYTES, Command, Refused, TokenBucket, parse
from bridge.ui.record import EditLog, edit_row
from bridge.ui.session import UISession

__all__ = ["DEFAULT_PORT", "UILimits", "UIServer", "is_loopback"]

log = logging.getLogger("gravity.ui")


_STATIC = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_COOKIE = "gravity_token"
_PATH_SAMPLES = 33  # points of a moving object's path drawn on the page


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only (127.0.0.0/8, ::1)."""
    if host.strip("[]").casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class UILimits:
    """Bounds on what pages may do.

    Attributes
    ----------
    max_clients : int
        Pages connected at once.
    connects_per_s, connect_burst : float
        New WebSocket connections, all pages together (so reconnecting does not reset the limits
        below); beyond, a connection is refused (429).
    all_messages_per_s, all_message_burst : float
        Messages from all pages together; beyond, they are dropped unparsed.
    messages_per_s, message_burst : float
        Messages one page may send (token bucket); beyond, they are dropped unparsed.
    edits_per_s, edit_burst : float
        Edits one page may send.
    directions_per_s, direction_burst : float
        Prompts and hints one page may send (each re-plans every section).
    errors_per_s : float
        Error answers sent back to one page, at most (the rest are only counted).
    record_quiet_s : float
        An object's edits are recorded once it has been left alone this long (a drag is one row).
    """

    max_clients: int = 8
    connects_per_s: float = 2.0
    connect_burst: float = 10.0
    all_messages_per_s: float = 400.0
    all_message_burst: float = 800.0
    messages_per_s: float = 200.0
    message_burst: float = 400.0
    edits_per_s: float = 60.0
    edit_burst: float = 60.0
    directions_per_s: float = 2.0
    direction_burst: float = 5.0
    errors_per_s: float = 1.0
    record_quiet_s: float = 1.0


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    messages: TokenBucket
    edits: TokenBucket
    directions: TokenBucket
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    outbox: deque[str] = field(default_factory=lambda: deque(maxlen=64))
    seq: int = -1
    scene_v: int = -1
    card_v: int = -1
    edit_busy: bool = False
    edit_next: Command | None = None
    last_error_s: float = -1e9

    def send(self, doc: dict[str, Any]) -> None:
        self.outbox.append(json.dumps(doc, separators=(",", ":"), allow_nan=False))
        self.wake.set()


class UIServer:
    """The page and its WebSocket for one session, served from a background thread.

    Parameters
    ----------
    session : UISession
        What is shown and steered (:class:`~bridge.ui.session.LiveSession`, :class:`~bridge.ui.session.FileSession`).
    host, port : str, int
        Where to listen (port 0: any free port; :attr:`port` tells which after :meth:`start`).
    token : str or None
        Required on every request when given; generated when ``host`` is not loopback and none is
        given.
    limits : UILimits
        Rates and sizes.
    edit_log : EditLog or None
        Where accepted edits are recorded (None: not recorded).
    """

    def __init__(
        self,
        session: UISession,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        limits: UILimits = UILimits(),
        edit_log: EditLog | None = None,
    ) -> None:
        self.session = session
        self.host, self.port = host, int(port)
        self.loopback = is_loopback(host)
        self.token = token if token is not None or self.loopback else secrets.token_urlsafe(18)
        self.limits = limits
        self.edit_log = edit_log
        self.events = RateLimitedLog(log)
        self.counts: dict[str, int] = {"frames_in": 0, "frames_out": 0, "messages": 0, "dropped": 0}
        self.counts.update({"edits": 0, "refused": 0, "superseded": 0, "directions": 0, "recorded": 0})
        self._pages = {
            name: resources.files("bridge.ui").joinpath("static").joinpath(name).read_bytes() for name in _STATIC
        }
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._clients: set[_Client] = set()
        self._connects = TokenBucket(limits.connects_per_s, limits.connect_burst)
        self._all = TokenBucket(limits.all_messages_per_s, limits.all_message_burst)
        self._work = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gravity-ui-edit")
        self._critic = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gravity-ui-critic")
        self._latest: Frame | None = None
        self._armed = False
        self._listening = False
        self._frame_msg = ""
        self._frame_seq = -1
        self._scene_key: tuple[Any, ...] = ()
        self._scene_ps: PreparedScene | None = None
        self._first_row: np.ndarray = np.zeros(0, dtype=np.intp)
        self._scene_msg = ""
        self._scene_v = 0
        self._card_msg = ""
        self._card_v = -1
        self._card_busy = False
        self._card_again = False
        self._unrecorded: dict[tuple[str | None, str], tuple[float, dict[str, Any]]] = {}
        self._unrecorded_lock = threading.Lock()  # (the event loop adds, the edit worker takes)
        self._hosts: set[str] = set()
        self._colors: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle (any thread)
    @property
    def url(self) -> str:
        """The page's address (with the token when one is required)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def start(self, timeout_s: float = 10.0) -> None:
        """Bind and serve; raises :class:`~bridge.errors.PortInUseError` when the port is taken."""
        self._colors = _family_colors()  # (imports the plotting module: here, not on the event loop)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._thread_main, name="gravity-ui", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout_s):
            raise BridgeError(f"browser UI did not start within {timeout_s:g} s")
        if self._start_error is not None:
            self._thread.join(2.0)
            exc = self._start_error
            if isinstance(exc, OSError):
                raise PortInUseError(
                    f"browser UI: cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); "
                    "choose another port (--ui PORT)"
                ) from None
            raise BridgeError(f"browser UI failed to start: {exc}") from None

    def stop(self) -> None:
        """Close every page's WebSocket, stop serving, stop the threads."""
        self._set_listening(False)  # first: no frame may reach a loop that is closing
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # (already closed)
                pass
        if self._thread is not None:
            self._thread.join(5.0)
        self._work.shutdown(wait=True, cancel_futures=True)
        self._critic.shutdown(wait=False, cancel_futures=True)
        self._flush_records(force=True)
        self.events.drain()

    def __enter__(self) -> "UIServer":
        """Start serving."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving."""
        self.stop()

    def stats(self) -> dict[str, Any]:
        """Counters: frames in and out, messages, drops by reason, edits, records, pages."""
        return {**self.counts, "pages": len(self._clients), "problems": dict(self.events.counts)}

    def _thread_main(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # a bind error before _started: handed to start()
            self._start_error = exc
            self._started.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self._page)
        app.router.add_get("/ws", self._socket)
        for name in _STATIC:
            if name != "index.html":
                app.router.add_get(f"/{name}", self._page)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=16)
            await site.start()
            self.port = int(runner.addresses[0][1])
            self._hosts = {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]", self.host)}
            self._started.set()
            log.info("browser UI on %s", self.url if self.token is None else self.url.split("?")[0] + " (token)")
            housekeeping = asyncio.ensure_future(self._housekeeping())
            await self._stopping.wait()
            housekeeping.cancel()
            for c in list(self._clients):
                await c.ws.close(code=1001, message=b"server stopping")
        finally:
            await runner.cleanup()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            try:
                self.events.drain()
                if self._unrecorded:
                    self._work.submit(self._flush_records)
            except Exception:  # housekeeping must outlive its own bugs
                log.exception("browser UI housekeeping failed")

    # ------------------------------------------------------------------ HTTP
    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.loopback and request.host not in self._hosts:
            self._drop(None, "host", "Host header %s is not this loopback server", request.host[:80])
            return web.Response(status=421, text="wrong host\n")
        from_query = False
        if self.token is not None:
            given = request.query.get("token") or request.cookies.get(_COOKIE) or ""
            from_query = "token" in request.query
            if not hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode()):
                self._drop(None, "token", "request without the right token from %s", request.remote or "?")
                return web.Response(status=403, text="token required: open the address gravity printed\n")
        resp = await handler(request)
        if not resp.prepared:  # (a WebSocket has sent its headers already)
            resp.headers["Content-Security-Policy"] = _CSP
            resp.headers["X-Content-Type-Options"] = "nosniff"
            resp.headers["Referrer-Policy"] = "no-referrer"
            resp.headers["Cache-Control"] = "no-store"
            if from_query and self.token is not None:
                resp.set_cookie(_COOKIE, self.token, httponly=True, samesite="Strict", path="/")
        return resp

    async def _page(self, request: web.Request) -> web.Response:
        name = request.path.lstrip("/") or "index.html"
        return web.Response(body=self._pages[name], content_type=_STATIC[name], charset="utf-8")

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            self._drop(None, "origin", "WebSocket from another origin refused: %s", origin[:80])
            return web.Response(status=403, text="cross-origin WebSocket refused\n")
        if len(self._clients) >= self.limits.max_clients:
            return web.Response(status=503, text="too many pages open\n")
        if not self._connects.take():
            self._drop(None, "rate", "more than %g new page connections/s; refused", self.limits.connects_per_s)
            return web.Response(status=429, text="too many connections: wait a moment\n")
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=20.0, compress=False)
        await ws.prepare(request)
        lim = self.limits
        c = _Client(
            ws,
            TokenBucket(lim.messages_per_s, lim.message_burst),
            TokenBucket(lim.edits_per_s, lim.edit_burst),
            TokenBucket(lim.directions_per_s, lim.direction_burst),
        )
        self._clients.add(c)
        self._set_listening(True)
        c.send(
            {
                "type": "hello",
                "rate_hz": self.session.rate_hz,
                "max_message_bytes": MAX_MESSAGE_BYTES,
                "colors": self._colors,
            }
        )
        sender = asyncio.ensure_future(self._sender(c))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(c, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.counts["messages"] += 1
                    if self._all.take():
                        self._drop(c, "binary", "binary message (%d bytes) dropped", len(msg.data))
                    else:
                        self._drop(
                            c, "rate", "pages send more than %g messages/s; dropped", self.limits.all_messages_per_s
                        )
                elif msg.type == WSMsgType.ERROR:
                    self.counts["messages"] += 1
                    self._drop(c, "size", "connection closed: %s", str(ws.exception())[:80])
                    break
        finally:
            self._clients.discard(c)
            if not self._clients:
                self._set_listening(False)
            sender.cancel()
        return ws

    async def _sender(self, c: _Client) -> None:
        """Send this page its answers, then the scene, card and newest frame it has not had."""
        ws = c.ws
        try:
            while not ws.closed:
                await c.wake.wait()
                c.wake.clear()
                while c.outbox:
                    await ws.send_str(c.outbox.popleft())
                if c.scene_v != self._scene_v and self._scene_msg:
                    c.scene_v = self._scene_v
                    await ws.send_str(self._scene_msg)
                if c.card_v != self._card_v and self._card_v == self._scene_v:
                    c.card_v = self._card_v
                    await ws.send_str(self._card_msg)
                if c.seq != self._frame_seq and c.scene_v == self._scene_v:
                    c.seq = self._frame_seq
                    await ws.send_str(self._frame_msg)
                    self.counts["frames_out"] += 1
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    # ------------------------------------------------------------------ frames
    def _set_listening(self, on: bool) -> None:
        """Follow the session's frames only while a page is open (the frame thread does nothing for us otherwise)."""
        if on and not self._listening:
            self.session.add_frame_listener(self._on_frame)
            self._listening = True
        elif not on and self._listening:
            self.session.remove_frame_listener(self._on_frame)
            self._listening = False

    def _on_frame(self, frame: Frame) -> None:
        """Frame listener (the frame thread): keep the frame; wake the event loop once."""
        self._latest = frame
        if not self._armed:
            self._armed = True
            try:
                loop = self._loop
                if loop is not None:
                    loop.call_soon_threadsafe(self._frame_in)
            except RuntimeError:  # the loop closed (stopping): nobody to show the frame to
                self._armed = False

    def _frame_in(self) -> None:
        self._armed = False
        try:
            self._show(self._latest)
        except Exception as exc:  # a bug here must not take the page down, let alone the bridge
            self.events.report("ui-bug", "browser UI: frame not shown: %r", exc)

    def _show(self, frame: Frame | None) -> None:
        """Describe the frame (and its scene, when that changed) for the pages; wake their senders."""
        if frame is None:
            return
        self.counts["frames_in"] += 1
        ps = self.session.scene(frame.section)
        if ps is None:
            return
        key = (id(ps), frame.section, self.session.edits.version)
        if key != self._scene_key or ps is not self._scene_ps:
            self._scene_key, self._scene_ps = key, ps
            self._new_scene(ps, frame)
        p = _positions(ps, self._first_row, frame)
        self._frame_msg = json.dumps(
            {
                "type": "frame",
                "v": self._scene_v,
                "seq": frame.seq,
                "pos_s": round(frame.playhead_s, 3),
                "playing": frame.playing,
                "section": frame.section,
                "t": round(frame.section_t, 4),
                "p": np.round(p, 2).tolist(),
            },
            separators=(",", ":"),
            allow_nan=False,
        )
        self._frame_seq = frame.seq
        for c in self._clients:
            c.wake.set()

    def _new_scene(self, ps: PreparedScene, frame: Frame) -> None:
        """The section's scene or its edits changed: describe it, and have the critic look at it."""
        from gravity.vocab import family_of

        self._scene_v += 1
        objs = ps.scene.objects
        first = np.full(len(objs), -1, dtype=np.intp)
        for k in range(len(ps.rows) - 1, -1, -1):
            if ps.rows[k] >= 0:
                first[ps.rows[k]] = k
        self._first_row = first
        state = self.session.edits.state(frame.section)
        t = np.linspace(0.0, 1.0, _PATH_SAMPLES)
        self._scene_msg = json.dumps(
            {
                "type": "scene",
                "v": self._scene_v,
                "section": frame.section,
                "source": ps.source,
                "section_s": round(ps.section_s, 3),
                "objects": [
                    {
                        "id": o.id,
                        "class": o.cls,
                        "family": family_of(o.cls),
                        "stems": list(o.stems),
                        "width": o.width,
                        "gain_db": o.gain_db,
                        "reverb_send": o.reverb_send,
                        "moving": not o.is_static,
                        "path": None if o.is_static else np.round(o.position_at(t), 1).tolist(),
                        "locked": state.get(o.id, (frozenset(), False))[1],
                        "edited": sorted(state.get(o.id, (frozenset(), False))[0]),
                    }
                    for o in objs
                ],
            },
            separators=(",", ":"),
            allow_nan=False,
        )
        self._want_card(ps, frame.section)

    def _want_card(self, ps: PreparedScene, section: str | None) -> None:
        if self._card_busy:
            self._card_again = True
            return
        self._card_busy = True
        v = self._scene_v
        loop = self._loop
        assert loop is not None
        fut = loop.run_in_executor(self._critic, self._card, ps, section, v)
        fut.add_done_callback(self._card_done)

    def _card(self, ps: PreparedScene, section: str | None, v: int) -> tuple[int, str]:
        """(worker thread) The critic's card, the request's rules and hints, as a message."""
        from gravity.critic import critique

        request = self.session.request_for(section)
        card = critique(request, ps.scene)
        d = card.to_dict()
        issues = [*d["pair_issues"], *d["anchor_issues"], *d["height_issues"], *d["motion_issues"]]
        issues += d["adherence_issues"]
        msg = {
            "type": "card",
            "v": v,
            "score": d["score"],
            "parts": d["parts"],
            "summary": card.summary(),
            "issues": issues[:40],
            "numbers": {
                k: d[k] for k in ("front30_share", "coverage_static", "spread_index", "mean_width", "adherence")
            },
            "rules": list(request.rules)[:64],
            "prompt": request.prompt,
            "hints": {s.id: s.hint for s in request.stems if s.hint},
        }
        return v, json.dumps(msg, separators=(",", ":"), allow_nan=False, default=str)

    def _card_done(self, fut: asyncio.Future[tuple[int, str]]) -> None:
        self._card_busy = False
        try:
            v, msg = fut.result()
        except Exception as exc:  # the critic is advice: never fatal
            self.events.report("ui-critic", "critic card failed: %r", exc)
        else:
            if v == self._scene_v:
                self._card_v, self._card_msg = v, msg
                for c in self._clients:
                    c.wake.set()
        if self._card_again and self._scene_ps is not None:
            self._card_again = False
            self._want_card(self._scene_ps, self._latest.section if self._latest else None)

    # ------------------------------------------------------------------ messages
    def _drop(self, c: _Client | None, reason: str, fmt: str, *args: Any) -> None:
        self.counts["dropped"] += 1
        self.events.report("ui-" + reason, "browser UI: " + fmt, *args)
        if c is not None:
            now = time.monotonic()
            if now - c.last_error_s >= 1.0 / self.limits.errors_per_s:
                c.last_error_s = now
                c.send({"type": "error", "reason": reason})

    def _on_text(self, c: _Client, data: str) -> None:
        self.counts["messages"] += 1
        if not self._all.take():
            self._drop(c, "rate", "pages send more than %g messages/s; dropped", self.limits.all_messages_per_s)
            return
        if not c.messages.take():
            self._drop(c, "rate", "a page sends more than %g messages/s; dropped", self.limits.messages_per_s)
            return
        try:
            cmd = parse(data)
        except Refused as r:
            self._drop(c, r.reason, "message dropped: %s", r.detail)
            return
        try:
            self._dispatch(c, cmd)
        except Exception as exc:  # a bug here must not close the page, let alone the bridge
            self.events.report("ui-bug", "browser UI: message %s failed: %r", cmd.kind, exc)

    def _dispatch(self, c: _Client, cmd: Command) -> None:
        if cmd.kind == "ping":
            c.send({"type": "pong", "ref": cmd.ref, "server_s": time.monotonic()})
        elif cmd.edit is not None:
            if not c.edits.take():
                self._drop(c, "rate", "a page sends more than %g edits/s; dropped", self.limits.edits_per_s)
            elif c.edit_busy:
                self.counts["superseded"] += c.edit_next is not None
                c.edit_next = cmd  # latest wins: a drag needs only its newest position
            else:
                self._start_edit(c, cmd)
        else:
            if not c.directions.take():
                self._drop(c, "rate", "a page sends more than %g prompts/s; dropped", self.limits.directions_per_s)
                return
            self.counts["directions"] += 1
            if cmd.kind == "prompt":
                ok = self.session.request_prompt(cmd.text)
            else:
                ok = self.session.request_hint(cmd.stem, cmd.text)
            c.send({"type": "ack", "what": cmd.kind, "ref": cmd.ref, "ok": ok})

    def _start_edit(self, c: _Client, cmd: Command) -> None:
        c.edit_busy = True
        loop = self._loop
        assert loop is not None and cmd.edit is not None
        fut = loop.run_in_executor(self._work, self.session.apply_edit, cmd.edit)
        fut.add_done_callback(lambda f: self._edit_done(c, cmd, f))

    def _edit_done(self, c: _Client, cmd: Command, fut: asyncio.Future[EditOutcome]) -> None:
        c.edit_busy = False
        assert cmd.edit is not None
        try:
            out = fut.result()
        except Exception as exc:
            self.events.report("ui-bug", "browser UI: edit failed: %r", exc)
            c.send({"type": "edit", "ref": cmd.ref, "id": cmd.edit.object_id, "ok": False, "rule": "error"})
        else:
            self.counts["edits" if out.accepted else "refused"] += 1
            c.send(
                {
                    "type": "edit",
                    "ref": cmd.ref,
                    "id": out.object_id,
                    "ok": out.accepted,
                    "rule": out.rule,
                    "message": out.message,
                    "rules": list(out.rules),
                }
            )
            if out.accepted and (cmd.edit.fields or cmd.edit.reset):
                self._to_record(cmd.edit, out)
        if c.edit_next is not None and not c.ws.closed:
            nxt, c.edit_next = c.edit_next, None
            self._start_edit(c, nxt)

    # ------------------------------------------------------------------ the edits log
    def _to_record(self, edit: Edit, out: EditOutcome) -> None:
        """Keep the newest accepted edit of an object; recorded once the object is left alone."""
        if self.edit_log is None or out.request is None or out.edited is None or out.proposed is None:
            return
        fields = {k: v for k, v in asdict(edit).items() if v is not None and v is not False}
        row = edit_row(
            request=out.request.raw,
            proposed=out.proposed,
            edited=out.edited,
            proposer=out.source,
            section=out.section,
            edit=fields,
            model=self.session.model_info(),
        )
        key = (out.section, edit.object_id)
        with self._unrecorded_lock:
            self._unrecorded.pop(key, None)  # (re-inserted last: oldest first)
            self._unrecorded[key] = (time.monotonic() + self.limits.record_quiet_s, row)

    def _flush_records(self, force: bool = False) -> None:
        """(worker thread) Append the rows whose objects were left alone (all with ``force``)."""
        if self.edit_log is None:
            return
        now = time.monotonic()
        with self._unrecorded_lock:
            due_rows = [row for _, (due, row) in self._unrecorded.items() if force or due <= now]
            self._unrecorded = {k: v for k, v in self._unrecorded.items() if not (force or v[0] <= now)}
        for row in due_rows:
            try:
                if self.edit_log.append(row) is not None:
                    self.counts["recorded"] += 1
            except OSError as exc:
                self.events.report("ui-record", "edit not recorded: %s", exc)


def _positions(ps: PreparedScene, first: np.ndarray, frame: Frame) -> np.ndarray:
    """(objects, 5) rows of (az deg +left, el deg, dist m, width, gain dB) of ``ps``'s objects in
    ``frame``: each object's first numbered member stem ``first[j]``, as on the wire; an object
    without one (or inactive in the frame) is evaluated at the frame's section time.
    """
    objs = ps.scene.objects
    out = np.zeros((len(objs), 5))
    for j, o in enumerate(objs):
        k = int(first[j]) if j < len(first) else -1
        if 0 <= k < frame.size and bool(frame.active[k]):
            out[j, :3] = frame.aed[k]
            out[j, 3], out[j, 4] = frame.width[k], frame.gain_db[k]
        else:
            out[j, :3] = o.position_at(frame.section_t)
            out[j, 3], out[j, 4] = o.width, o.gain_db
    return out


def _family_colors() -> dict[str, str]:
    """One colour per stem family, the same as ``gravity plot``'s."""
    from gravity.plot import FAMILY_COLORS

    return dict(FAMILY_COLORS)
