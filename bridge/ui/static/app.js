// Gravity's browser monitor and editor (vanilla JS + SVG; served by bridge/ui/server.py).
//
// Conventions as `gravity plot` (gravity/plot.py): azimuth degrees, + = LEFT, 0 = front, wrapped to
// (-180, 180]; elevation degrees, + = up; distance metres. Top view: front UP, left on the LEFT,
// x = -r sin(az), y = r cos(az) with r = log2(1 + dist cos(el)) (page y grows downwards, so it is
// drawn at -y). Elevation map: azimuth across, +180 (left) on the left to -180 (right) on the right.
//
// The server pushes `scene` (objects), `frame` (positions as sent on the wire), `card` (the critic);
// the page sends edits (`move`, `set`, `lock`, `reset`), `prompt` and `hint` (bridge/ui/protocol.py).
// A drag keeps one `move` in flight and sends only the newest position when it is answered.
"use strict";
(function () {
  const RINGS = [0.5, 1, 2, 4, 8, 16, 32, 50];
  const MIN_OUTER = 4;
  const NS = "http://www.w3.org/2000/svg";
  const S = {
    ws: null, scene: null, colors: {}, frames: 0, stamps: [], fps: 0, outer: MIN_OUTER, ref: 1,
    drag: null, local: null, hold: null, inflight: null, pending: null, lastEdit: null, lastFrame: null, lastCard: null,
    acks: [], errors: [], nodes: [], retry: 500,
  };
  window.gravity = S; // read by the tests and handy in the console

  const $ = (id) => document.getElementById(id);
  const rad = (d) => (d * Math.PI) / 180;
  const deg = (r) => (r * 180) / Math.PI;
  const radial = (dh) => Math.log2(1 + Math.max(dh, 0));
  function wrapAz(a) {
    if (a > -180 && a <= 180) return a;
    const w = -((((-a + 180) % 360) + 360) % 360) + 180;
    return w <= -180 ? 180 : w;
  }
  function topXY(az, el, d) {
    const r = radial(d * Math.cos(rad(el)));
    return [-r * Math.sin(rad(az)), r * Math.cos(rad(az))];
  }
  S.topXY = topXY;
  function node(tag, attrs, parent) {
    const n = document.createElementNS(NS, tag);
    for (const k in attrs) n.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(n);
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }
  function notice(text, kind) { const n = $("notice"); n.textContent = text; n.className = kind || ""; }
  function color(o) { return S.colors[o.family] || "#7f7f7f"; }
  function fmtTime(s) {
    const m = Math.floor(Math.max(0, s) / 60), r = Math.max(0, s) - 60 * m;
    return String(m).padStart(2, "0") + ":" + r.toFixed(3).padStart(6, "0");
  }

  // ------------------------------------------------------------------ connection
  function send(doc) {
    if (S.ws && S.ws.readyState === 1) { S.ws.send(JSON.stringify(doc)); return true; }
    return false;
  }
  function connect() {
    const token = new URLSearchParams(location.search).get("token");
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" +
      (token ? "?token=" + encodeURIComponent(token) : "");
    const ws = new WebSocket(url);
    S.ws = ws;
    ws.onopen = () => { $("conn").textContent = "live"; $("conn").className = "ok"; S.retry = 500; };
    ws.onclose = () => {
      $("conn").textContent = "reconnecting"; $("conn").className = "bad";
      setTimeout(connect, S.retry); S.retry = Math.min(5000, S.retry * 2);
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      const on = HANDLERS[m.type];
      if (on) on(m);
    };
  }

  const HANDLERS = {
    hello(m) { S.colors = m.colors || {}; },
    scene(m) { S.scene = m; buildScene(m); },
    frame(m) { onFrame(m); },
    card(m) { S.lastCard = m; showCard(m); },
    edit(m) { onEdit(m); },
    ack(m) {
      S.acks.push(m);
      if (m.what === "prompt") notice(m.ok ? "re-planning every section with the new prompt" : "this session cannot re-plan (no request)", m.ok ? "info" : "refused");
      else notice(m.ok ? "re-planning with the new hint" : "hint refused (unknown stem, or no request)", m.ok ? "info" : "refused");
    },
    error(m) { S.errors.push(m); },
    pong() {},
  };

  // ------------------------------------------------------------------ drawing
  function outerRing(scene) {
    let far = MIN_OUTER;
    for (const o of scene.objects) for (const p of o.path || []) far = Math.max(far, p[2]);
    const f = S.lastFrame;
    if (f && f.v === scene.v) for (const p of f.p) far = Math.max(far, p[2]);
    return RINGS.find((r) => r >= far) || 50;
  }
  function drawGrids() {
    const R = radial(S.outer), pad = 0.45;
    const top = $("top");
    top.setAttribute("viewBox", [-R - pad, -R - pad, 2 * (R + pad), 2 * (R + pad)].join(" "));
    const g = $("top-grid"); clear(g);
    for (const d of RINGS) {
      if (d > S.outer) break;
      const r = radial(d);
      node("circle", { class: "ring", cx: 0, cy: 0, r: r }, g);
      node("text", { class: "ringlabel", x: 0.72 * r + 0.03, y: 0.72 * r + 0.05 }, g).textContent = d + " m";
    }
    node("line", { class: "axis", x1: 0, y1: -R, x2: 0, y2: R }, g);
    node("line", { class: "axis", x1: -R, y1: 0, x2: R, y2: 0 }, g);
    const lab = [["front", 0, -R - 0.12], ["rear", 0, R + 0.3], ["L", -R - 0.3, 0.08], ["R", R + 0.12, 0.08]];
    for (const [t, x, y] of lab) node("text", { class: "ringlabel", x: x, y: y, "text-anchor": "middle" }, g).textContent = t;
    node("circle", { class: "head", cx: 0, cy: 0, r: 0.17 }, g);
    node("path", { class: "head", d: "M -0.06 -0.16 L 0 -0.26 L 0.06 -0.16" }, g);
    const e = $("elev-grid"); clear(e);
    for (let el = -90; el <= 90; el += 30) {
      node("line", { class: "axis", x1: -180, y1: -el, x2: 180, y2: -el }, e);
      node("text", { class: "ringlabel", x: -188, y: -el + 2 }, e).textContent = el;
    }
    for (let az = 180; az >= -180; az -= 45) {
      node("line", { class: "axis", x1: -az, y1: -90, x2: -az, y2: 90 }, e);
      node("text", { class: "ringlabel", x: -az, y: 98, "text-anchor": "middle" }, e).textContent = az;
    }
  }
  function markerR(o, view) {
    const w = Math.min(1, Math.max(0, o.width));
    return view === "top" ? (0.07 + 0.13 * w) * Math.max(1, radial(S.outer) / 2.3) : 3 + 5 * w;
  }
  function buildScene(m) {
    S.outer = outerRing(m);
    drawGrids();
    const tp = $("top-paths"), to = $("top-objects"), ep = $("elev-paths"), eo = $("elev-objects");
    [tp, to, ep, eo].forEach(clear);
    S.nodes = m.objects.map((o, j) => {
      const c = color(o);
      const cls = "obj" + (o.locked ? " locked" : "") + (o.edited.length ? " edited" : "");
      if (o.path) {
        node("polyline", { class: "path", stroke: c, points: o.path.map((p) => { const [x, y] = topXY(p[0], p[1], p[2]); return x + "," + -y; }).join(" ") }, tp);
        node("polyline", { class: "path", stroke: c, points: o.path.map((p) => -wrapAz(p[0]) + "," + -p[1]).join(" ") }, ep);
      }
      const label = o.id + (o.stems.length > 1 ? " (" + o.stems.length + ")" : "");
      const top = node("circle", { class: cls, r: markerR(o, "top"), fill: c, "data-id": o.id, "data-j": j }, to);
      const topText = node("text", {}, to); topText.textContent = label;
      const elev = node("circle", { class: cls, r: markerR(o, "elev"), fill: c, "data-id": o.id, "data-j": j }, eo);
      const elevText = node("text", {}, eo); elevText.textContent = label;
      for (const [n, view] of [[top, "top"], [elev, "elev"]]) n.addEventListener("pointerdown", (ev) => startDrag(ev, j, view));
      return { top, topText, elev, elevText, o };
    });
    // until its first frame, the new scene shows the last positions (and a dragged object where it is held)
    const f = S.lastFrame;
    if (f && f.p.length === S.nodes.length) f.p.forEach((p, j) => place(j, p[0], p[1], p[2]));
    const d = S.drag || S.local;
    if (d && (S.drag || S.hold === d.j)) place(d.j, d.az, d.el, d.dist);
    labels();
    $("source").textContent = m.source;
    $("section").textContent = m.section === null ? "-" : m.section;
    buildTable(m);
  }
  function place(j, az, el, d) {
    const n = S.nodes[j];
    if (!n) return;
    const [x, y] = topXY(az, el, d);
    n.top.setAttribute("cx", x); n.top.setAttribute("cy", -y);
    n.tx = x; n.ty = -y;
    const ex = -wrapAz(az), ey = -el;
    n.elev.setAttribute("cx", ex); n.elev.setAttribute("cy", ey);
    n.ex = ex; n.ey = ey;
  }
  // Labels: objects drawn on top of each other (kick and bass both front-centre) get their labels
  // stacked (upwards in the top view, downwards in the elevation map) instead of printed over each other.
  function labels() {
    const near = (a, b, ka, kb, r) => Math.abs(a[ka] - b[ka]) < r && Math.abs(a[kb] - b[kb]) < r;
    const lineTop = 0.19, lineElev = 7;
    S.nodes.forEach((n, j) => {
      if (n.tx === undefined) return; // (not placed yet: held where a drag left it, before any frame)
      let kt = 0, ke = 0;
      for (let i = 0; i < j && i < 64; i++) {
        const m = S.nodes[i];
        if (m.tx === undefined) continue;
        if (near(n, m, "tx", "ty", 0.12)) kt++;
        if (near(n, m, "ex", "ey", 5)) ke++;
      }
      n.topText.setAttribute("x", n.tx + markerR(n.o, "top") + 0.03); n.topText.setAttribute("y", n.ty + 0.06 - kt * lineTop);
      n.elevText.setAttribute("x", n.ex + markerR(n.o, "elev") + 1.5); n.elevText.setAttribute("y", n.ey + 2.5 + ke * lineElev);
    });
  }
  function onFrame(m) {
    S.frames++;
    const now = performance.now();
    S.stamps.push(now);
    while (S.stamps.length && now - S.stamps[0] > 2000) S.stamps.shift();
    if (S.stamps.length > 1) S.fps = (S.stamps.length - 1) / ((now - S.stamps[0]) / 1000);
    S.lastFrame = m;
    if (!S.scene || m.v !== S.scene.v) return;
    m.p.forEach((p, j) => { if (!(S.drag && S.drag.j === j) && !(S.hold === j)) place(j, p[0], p[1], p[2]); });
    labels();
    $("section").textContent = m.section === null ? "-" : m.section;
    $("playhead").textContent = fmtTime(m.pos_s);
    $("transport").textContent = m.playing ? "PLAY" : "stop";
    $("sectiont").textContent = m.t.toFixed(2);
    if (S.frames % 10 === 0) $("fps").textContent = S.fps.toFixed(0);
  }

  // ------------------------------------------------------------------ dragging
  function svgPoint(svg, ev) {
    const pt = svg.createSVGPoint(); pt.x = ev.clientX; pt.y = ev.clientY;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }
  function startDrag(ev, j, view) {
    const f = S.lastFrame;
    if (!f || !S.scene || f.v !== S.scene.v) return;
    ev.preventDefault();
    const p = f.p[j];
    S.drag = { j: j, id: S.scene.objects[j].id, view: view, az: p[0], el: p[1], dist: p[2] };
    const svg = $(view);
    svg.setPointerCapture(ev.pointerId);
    S.nodes[j].top.classList.add("dragging"); S.nodes[j].elev.classList.add("dragging");
  }
  function moveDrag(ev) {
    const d = S.drag;
    if (!d) return;
    const q = svgPoint($(d.view), ev);
    if (d.view === "top") {
      const x = q.x, y = -q.y;
      const r = Math.min(Math.hypot(x, y), radial(S.outer));
      d.az = wrapAz(deg(Math.atan2(-x, y)));
      const c = Math.max(0.05, Math.cos(rad(d.el)));
      d.dist = Math.min(50, Math.max(0.25, (Math.pow(2, r) - 1) / c));
    } else {
      d.az = wrapAz(Math.max(-180, Math.min(180, -q.x)));
      d.el = Math.max(-90, Math.min(90, -q.y));
    }
    d.az = Math.round(d.az * 10) / 10; d.el = Math.round(d.el * 10) / 10; d.dist = Math.round(d.dist * 100) / 100;
    place(d.j, d.az, d.el, d.dist);
    labels();
    S.pending = { type: "move", id: d.id, az: d.az, el: d.el, dist: d.dist };
    pump();
  }
  function endDrag() {
    const d = S.drag;
    if (!d) return;
    S.drag = null;
    S.local = d;
    const n = S.nodes[d.j];
    if (n) { n.top.classList.remove("dragging"); n.elev.classList.remove("dragging"); }
    pump();
    // shown where it was put until the last move is answered (then the frames take over again)
    S.hold = S.inflight !== null || S.pending ? d.j : null;
  }
  function pump() {
    if (S.inflight !== null || !S.pending) return;
    const msg = S.pending; S.pending = null;
    msg.ref = S.ref++;
    if (send(msg)) S.inflight = msg.ref;
  }
  function onEdit(m) {
    S.lastEdit = m;
    if (!m.ok) {
      const rules = (m.rules || []).map((r) => JSON.stringify(r)).join("; ");
      notice("refused: " + m.rule + " - " + m.message + (rules ? " [" + rules + "]" : ""), "refused");
    } else notice("edited " + m.id + " (on the wire now; kept for this section)", "accepted");
    if (m.ref === S.inflight) { S.inflight = null; pump(); }
    if (S.inflight === null && !S.pending) S.hold = null;
  }
  for (const id of ["top", "elev"]) {
    $(id).addEventListener("pointermove", moveDrag);
    $(id).addEventListener("pointerup", endDrag);
    $(id).addEventListener("pointercancel", endDrag);
  }

  // ------------------------------------------------------------------ the side panel
  function edit(doc) { doc.ref = S.ref++; send(doc); }
  function buildTable(m) {
    const body = $("objects").querySelector("tbody");
    const ids = m.objects.map((o) => o.id).join("\n");
    if (body.dataset.ids !== ids) {
      clear(body);
      body.dataset.ids = ids;
      for (const o of m.objects) {
        const tr = document.createElement("tr");
        tr.dataset.id = o.id;
        const cell = () => tr.appendChild(document.createElement("td"));
        const dot = document.createElement("span"); dot.className = "dot"; cell().appendChild(dot);
        cell().textContent = o.id;
        const st = cell(); st.className = "stems";
        const lock = document.createElement("input"); lock.type = "checkbox"; lock.className = "lock";
        lock.addEventListener("change", () => edit({ type: "lock", id: o.id, locked: lock.checked }));
        cell().appendChild(lock);
        const w = document.createElement("input"); w.type = "range"; w.min = 0; w.max = 1; w.step = 0.05; w.className = "width";
        w.addEventListener("change", () => edit({ type: "set", id: o.id, width: Number(w.value) }));
        cell().appendChild(w);
        const g = document.createElement("input"); g.type = "number"; g.min = -60; g.max = 12; g.step = 0.5; g.className = "num gain";
        g.addEventListener("change", () => { const v = Number(g.value); if (Number.isFinite(v)) edit({ type: "set", id: o.id, gain_db: v }); });
        cell().appendChild(g);
        const h = document.createElement("input"); h.className = "hint"; h.maxLength = 500; h.placeholder = "hint";
        h.addEventListener("change", () => { for (const s of o.stems.slice(0, 4)) send({ type: "hint", stem: s, text: h.value }); });
        cell().appendChild(h);
        const r = document.createElement("button"); r.textContent = "reset"; r.title = "back to the plan";
        r.addEventListener("click", () => edit({ type: "reset", id: o.id }));
        cell().appendChild(r);
        body.appendChild(tr);
      }
    }
    m.objects.forEach((o, j) => {
      const tr = body.children[j];
      tr.querySelector(".dot").style.background = color(o);
      tr.querySelector(".stems").textContent = o.class + (o.stems.length > 1 || o.stems[0] !== o.id ? ": " + o.stems.join(", ") : "");
      tr.querySelector(".stems").title = o.stems.join(", ");
      const set = (sel, prop, v) => { const n = tr.querySelector(sel); if (document.activeElement !== n) n[prop] = v; };
      set(".lock", "checked", o.locked);
      set(".width", "value", o.width);
      set(".gain", "value", o.gain_db);
    });
  }
  function showCard(m) {
    $("score").textContent = m.score.toFixed(2);
    const parts = $("parts"); clear(parts);
    for (const k in m.parts) {
      const row = document.createElement("div");
      const name = document.createElement("span"); name.className = "name"; name.textContent = k;
      const bar = document.createElement("span"); bar.className = "bar"; bar.style.width = Math.round(120 * m.parts[k]) + "px";
      const val = document.createElement("span"); val.textContent = m.parts[k].toFixed(2);
      row.append(name, bar, val); parts.appendChild(row);
    }
    const issues = $("issues"); clear(issues);
    for (const t of m.issues.length ? m.issues : ["no issues"]) { const li = document.createElement("li"); li.textContent = t; issues.appendChild(li); }
    const rules = $("rules"); clear(rules);
    for (const r of m.rules.length ? m.rules : ["none"]) { const li = document.createElement("li"); li.textContent = typeof r === "string" ? r : JSON.stringify(r); rules.appendChild(li); }
    const p = $("prompt"); if (document.activeElement !== p) p.placeholder = m.prompt || "e.g. wider, vocals up high";
    const body = $("objects").querySelector("tbody");
    for (const tr of body.children) {
      const h = tr.querySelector(".hint"), o = S.scene && S.scene.objects.find((x) => x.id === tr.dataset.id);
      if (o && document.activeElement !== h) h.placeholder = (m.hints && m.hints[o.stems[0]]) || "hint";
    }
  }
  $("prompt-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (send({ type: "prompt", text: $("prompt").value })) notice("sending the prompt", "info");
  });

  connect();
})();
