"""Benchmark: gravity-live streaming N moving objects over ADM-OSC on loopback.

Measures, with the receiver in a separate process (its own interpreter, no shared GIL):

* achieved frame rate and packets lost (datagrams the bridge handed to the kernel minus
  datagrams received);
* inter-frame jitter at the receiver: |interval - 1/rate| per frame, p50 / p99 / max (ms), over
  the on-cadence frames (the extra first frame of each new section is sent at once, out of
  cadence, and left out of the intervals);
* the frame thread's own lateness versus its deadlines (p50 / p99, ms);
* section-change latency: from sending ``/gravity/section`` to the first datagram of the new
  scene at the receiver (both clocks are CLOCK_MONOTONIC, shared by the processes), ms;

while the planner thread re-plans every few seconds (``/gravity/prompt``), so the numbers include
planning running next to the frame thread.

Usage::

    python benchmarks/osc_stream.py                    # 64 objects, 100 Hz, 60 s
    python benchmarks/osc_stream.py --seconds 20 --bundle
    python benchmarks/osc_stream.py --write-request /tmp/req64.json   # for a gravity-live --soak run

The numbers we measured are in ``benchmarks/README_osc.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STOP = b"/bench/stop\x00,\x00\x00\x00"
AED1 = b"/adm/obj/1/aed\x00\x00,fff\x00\x00\x00\x00"


# ------------------------------------------------------------------------------------- receiver
def receive(port: int, out: str) -> None:
    """Receiver process: timestamps every datagram; frame starts are object 1's ``aed``."""
    from bridge.scheduler import raise_thread_priority

    raise_thread_priority()  # the measuring instrument should not add jitter of its own (best effort)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", port))
    buf = bytearray(65536)
    view = memoryview(buf)
    frames: list[tuple[int, float]] = []  # (arrival ns, elevation of object 1)
    datagrams = messages = 0
    first_ns = 0
    while True:
        n = sock.recv_into(buf)
        now = time.perf_counter_ns()
        data = view[:n]
        if data[: len(STOP)] == STOP:
            break
        datagrams += 1
        first_ns = first_ns or now
        if data[:8] == b"#bundle\x00":
            pos = 16
            while pos + 4 <= n:
                size = struct.unpack_from(">i", buf, pos)[0]
                pos += 4
                messages += 1
                if buf[pos : pos + len(AED1)] == AED1:
                    frames.append((now, struct.unpack_from(">f", buf, pos + len(AED1) + 4)[0]))
                pos += size
        else:
            messages += 1
            if data[: len(AED1)] == AED1:
                frames.append((now, struct.unpack_from(">f", buf, len(AED1) + 4)[0]))
    Path(out).write_text(json.dumps({"datagrams": datagrams, "messages": messages, "frames": frames}))


# ------------------------------------------------------------------------------------- the "DAW"
def daw(port: int, seconds: float, switch_every: float, replan_every: float, out: str) -> None:
    """DAW process: switches section A/B every ``switch_every`` s and re-plans every
    ``replan_every`` s; records when each switch left (CLOCK_MONOTONIC ns).
    """
    from bridge.oscio import encode_message

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    switches: list[tuple[int, float]] = []
    t0 = time.monotonic()
    next_switch, next_replan, end = t0 + switch_every, t0 + replan_every, t0 + seconds
    section, replans = "A", 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_switch:
            section = "B" if section == "A" else "A"
            msg = encode_message("/gravity/section", [section])
            switches.append((time.perf_counter_ns(), -1.0 if section == "B" else 1.0))
            sock.sendto(msg, ("127.0.0.1", port))
            next_switch += switch_every
        if now >= next_replan:
            replans += 1
            sock.sendto(
                encode_message("/gravity/prompt", [f"variation {replans}: wider, more motion"]), ("127.0.0.1", port)
            )
            next_replan += replan_every
        time.sleep(max(0.0, min(next_switch, next_replan, end) - time.monotonic()))
    Path(out).write_text(json.dumps({"switches": switches, "replans": replans}))


# ------------------------------------------------------------------------------------- scenes
CLASSES = ("arp", "fx", "synth_lead", "riser", "pad", "lead_vocal", "backing_vocal", "percussion")


def request_doc(n: int) -> dict:
    """``n`` stems of mixed classes (several of which the planner sets in motion)."""
    return {
        "target_format": "7.1.4",
        "max_objects": min(128, n),
        "style": "edm",
        "section": "drop",
        "global": {"bpm": 120, "energy": 0.9},
        "stems": [{"id": f"s{k:03d}", "class": CLASSES[k % len(CLASSES)]} for k in range(1, n + 1)],
    }


def orbit_scene(n: int, el: float, bars: int = 8) -> dict:
    """``n`` objects orbiting at elevation ``el``, each a different phase: every object moves every frame."""
    objs = []
    for k in range(n):
        phase = 360.0 * k / n
        keys = [
            {
                "t": i / 16,
                "az_deg": float(((phase + 90.0 * i) + 180.0) % 360.0 - 180.0) or 0.0,
                "el_deg": el,
                "dist_m": 2.0 + (k % 4),
            }
            for i in range(17)
        ]
        for kf in keys:
            if kf["az_deg"] <= -180.0:
                kf["az_deg"] = 180.0
        objs.append(
            {
                "id": f"s{k + 1:03d}",
                "class": "synth",
                "az_deg": keys[0]["az_deg"],
                "el_deg": el,
                "dist_m": keys[0]["dist_m"],
                "width": 0.2,
                "gain_db": -6.0,
                "reverb_send": 0.2,
                "early_reflections": 0.2,
                "motion": keys,
            }
        )
    return {
        "version": "1.0",
        "bed": {"layout": "7.1.4"},
        "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": bars},
        "objects": objs,
    }


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(a, q: float) -> float:
    return float(np.percentile(np.asarray(a, dtype=float), q)) if len(a) else float("nan")


# ------------------------------------------------------------------------------------- benchmark
def bench(args: argparse.Namespace) -> dict:
    from bridge.live import LiveBridge, LiveConfig, rss_bytes
    from bridge.oscio import encode_message
    from bridge.targets import TargetSpec

    tmp = Path(tempfile.mkdtemp(prefix="gravity-bench-"))
    (tmp / "A.json").write_text(json.dumps(orbit_scene(args.objects, 20.0)))
    (tmp / "B.json").write_text(json.dumps(orbit_scene(args.objects, -20.0)))
    rx_port, ctl_port = free_port(), free_port()
    rx_out = tmp / "rx.json"
    rx = subprocess.Popen([sys.executable, __file__, "--receive", str(rx_port), "--out", str(rx_out)])
    time.sleep(0.5)
    spec = TargetSpec.parse(f"adm:127.0.0.1:{rx_port}" + ("?bundle=1" if args.bundle else ""))
    cfg = LiveConfig(
        listen_port=ctl_port, targets=(spec,), rate_hz=args.rate, crossfade_beats=0.0, allow_dirs=(str(tmp),)
    )
    bridge = LiveBridge(cfg, request_doc(args.objects))
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(address: str, *a: object, types: str | None = None) -> None:
        ctl.sendto(encode_message(address, list(a), types), ("127.0.0.1", ctl_port))

    bridge.start()
    send("/gravity/scene", str(tmp / "A.json"), "A")
    send("/gravity/scene", str(tmp / "B.json"), "B")
    time.sleep(1.0)
    send("/gravity/transport", 1, 0.0, 120.0, types="iff")
    send("/gravity/section", "A")
    time.sleep(1.0)
    sch = bridge.scheduler
    assert sch is not None
    f0, skipped0 = sch.frames, sch.late_skipped
    sent0 = bridge.targets[0].out.sent
    rss0 = rss_bytes()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t_start = time.perf_counter_ns()
    # The DAW is its own process (as in real life): this thread only sleeps, so the measured
    # process runs nothing but gravity-live's threads.
    daw_out = tmp / "daw.json"
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--daw",
            str(ctl_port),
            "--seconds",
            str(args.seconds),
            "--switch-every",
            str(args.switch_every),
            "--replan-every",
            str(args.replan_every),
            "--out",
            str(daw_out),
        ],
        check=True,
    )
    t_end = time.perf_counter_ns()
    dawd = json.loads(daw_out.read_text())
    switches = [(int(t), float(s)) for t, s in dawd["switches"]]
    n_replans = dawd["replans"]
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    stats = sch.stats()
    frames_sent = sch.frames - f0
    skipped = sch.late_skipped - skipped0
    sent = bridge.targets[0].out.sent - sent0
    bridge.stop()
    total_sent = bridge.targets[0].out.sent
    time.sleep(0.3)
    ctl.sendto(STOP, ("127.0.0.1", rx_port))
    rx.wait(20)
    rxd = json.loads(rx_out.read_text())
    lat = []
    early: set[int] = set()  # the out-of-cadence first frame of each new section
    for t_send, sign in switches:
        later = [(t, el) for t, el in rxd["frames"] if t >= t_send and np.sign(el) == sign]
        if later:
            lat.append((later[0][0] - t_send) / 1e6)
            early.add(later[0][0])
    frames = [(t, el) for t, el in rxd["frames"] if t_start <= t <= t_end]
    times = np.array([t for t, _ in frames if t not in early], dtype=np.int64)
    intervals_ms = np.diff(times) / 1e6
    period_ms = 1e3 / args.rate
    jitter = np.abs(intervals_ms - period_ms)
    dur = (t_end - t_start) / 1e9
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / dur
    return {
        "objects": args.objects,
        "rate_hz": args.rate,
        "bundle": args.bundle,
        "seconds": round(dur, 2),
        "machine": f"{os.cpu_count()} cores, load avg {os.getloadavg()[0]:.2f} at the end",
        "achieved_rate_hz": round(len(times) / dur, 2),
        "frames_sent": frames_sent,
        "frames_received": len(frames),
        "section_frames_out_of_cadence": len(frames) - len(times),
        "late_skipped": skipped,
        "jitter_ms": {
            "p50": round(pct(jitter, 50), 3),
            "p99": round(pct(jitter, 99), 3),
            "max": round(float(jitter.max()) if len(jitter) else float("nan"), 3),
        },
        "interval_ms": {"mean": round(float(intervals_ms.mean()), 4) if len(intervals_ms) else None},
        "sender_lateness_ms": {
            "p50": round(stats.lateness_p50_ms, 3),
            "p99": round(stats.lateness_p99_ms, 3),
            "max": round(stats.lateness_max_ms, 3),
        },
        "frame_compute_ms": {"p50": round(stats.compute_p50_ms, 3), "p99": round(stats.compute_p99_ms, 3)},
        "datagrams": {
            "sent_total": total_sent,
            "received_total": rxd["datagrams"],
            "lost": total_sent - rxd["datagrams"],
            "sent_in_window": sent,
        },
        "messages_per_s": round(rxd["messages"] / max(dur, 1e-9), 0),
        "section_change_ms": {
            "n": len(lat),
            "median": round(statistics.median(lat), 3) if lat else None,
            "p99": round(pct(lat, 99), 3) if lat else None,
            "max": round(max(lat), 3) if lat else None,
        },
        "replans": n_replans,
        "sender_cpu_percent": round(100 * cpu, 1),
        "frame_thread": sch.priority,
        "rss_mb": {"start": round(rss0 / 2**20, 1), "end": round(rss_bytes() / 2**20, 1)},
        "period_error_ppm": round(stats.period_error_ppm, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="measurement length (default 60)")
    p.add_argument("--objects", type=int, default=64, help="moving objects (default 64)")
    p.add_argument("--rate", type=float, default=100.0, help="frames per second (default 100)")
    p.add_argument("--bundle", action="store_true", help="one bundle per frame (split at 1400 bytes)")
    p.add_argument("--switch-every", type=float, default=2.0, help="seconds between section changes")
    p.add_argument("--replan-every", type=float, default=5.0, help="seconds between /gravity/prompt re-plans")
    p.add_argument("--json", help="also write the result here")
    p.add_argument("--write-request", help="write the N-stem request used here, then exit")
    p.add_argument("--receive", type=int, help=argparse.SUPPRESS)
    p.add_argument("--daw", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.receive:
        receive(args.receive, args.out)
        return 0
    if args.daw:
        daw(args.daw, args.seconds, args.switch_every, args.replan_every, args.out)
        return 0
    if args.write_request:
        Path(args.write_request).write_text(json.dumps(request_doc(args.objects), indent=1))
        return 0
    result = bench(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
