"""Transport model: extrapolation, jitter (never backwards), seeks, tempo map, markers, sections."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from bridge.daw import DawHooks, DawListener, Dispatcher, build_dispatch_table
from bridge.oscio import bind_udp
from bridge.ratelog import RateLimitedLog
from bridge.transport import MAX_MARKERS, MAX_TEMPO_SEGMENTS, Marker, SectionTracker, Transport


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_stopped_transport_scrubs_and_holds():
    c = Clock()
    tr = Transport(clock=c)
    tr.report_position(12.5)
    c.t += 3.0
    assert tr.position() == 12.5 and not tr.state.playing


def test_playing_extrapolates_from_the_clock():
    c = Clock()
    tr = Transport(clock=c)
    tr.play(4.0)
    c.t += 1.25
    assert tr.position() == pytest.approx(5.25)
    tr.stop()
    c.t += 5.0
    assert tr.position() == pytest.approx(5.25)
    tr.play()
    c.t += 0.5
    assert tr.position() == pytest.approx(5.75)


def test_jittery_reports_never_move_the_playhead_backwards_and_converge():
    c = Clock()
    tr = Transport(clock=c, jump_threshold_s=0.25, slew_s=0.5)
    tr.play(0.0)
    rng = np.random.default_rng(7)
    truth0 = c.t
    last = -1.0
    worst = 0.0
    for k in range(2000):  # 20 s at 1 ms steps; a report every ~33 ms, late by 0..30 ms
        c.t += 0.001
        if k % 33 == 0:
            tr.report_position((c.t - truth0) - rng.uniform(0.0, 0.03))
        p = tr.position()
        assert p >= last - 1e-12
        last = p
        if k > 1000:
            worst = max(worst, abs(p - (c.t - truth0)))
    assert worst < 0.04  # within the report jitter
    assert tr.jumps == 0 and tr.corrections > 50


def test_big_differences_are_seeks():
    c = Clock()
    tr = Transport(clock=c)
    tr.play(10.0)
    c.t += 0.1
    tr.report_position(30.0)
    assert tr.position() == pytest.approx(30.0)
    tr.report_position(2.0)  # loop back
    assert tr.position() == pytest.approx(2.0) and tr.jumps == 2


def test_slew_must_exceed_the_jump_threshold():
    with pytest.raises(ValueError, match="must exceed jump_threshold_s"):
        Transport(jump_threshold_s=0.5, slew_s=0.5)


def test_bars_from_tempo_and_time_signature():
    tr = Transport(bpm=120, time_signature="4/4")
    assert tr.state.bar_beat(0.0) == (1, 1.0)
    assert tr.state.bar_beat(2.0) == (2, 1.0)
    tr.set_tempo(90)
    tr.set_time_signature(6, 8)
    bar, beat = tr.state.bar_beat(5.0)  # 7.5 beats of 6
    assert (bar, beat) == (2, pytest.approx(2.5))


def test_tempo_change_mid_song_keeps_the_bar_count_continuous():
    c = Clock()
    tr = Transport(bpm=100, time_signature="4/4", clock=c)
    tr.set_tempo(120)  # the DAW's first report replaces the start-up guess from the song start
    tr.set_time_signature(4)
    tr.play(0.0)
    c.t += 8.0  # 16 beats at 120 bpm: bar 5 starts
    assert tr.state.bar_beat(tr.position()) == (5, 1.0)
    tr.set_tempo(60)  # mid-song: from here on one beat per second
    st = tr.state
    before, after = st.bar_beat(8.0 - 1e-6), st.bar_beat(8.0)
    assert before[0] == 4 and before[1] == pytest.approx(5.0, abs=1e-4) and after == (5, 1.0)  # no jump
    c.t += 4.0
    assert tr.position() == pytest.approx(12.0)
    assert st.bar_beat(12.0) == (6, 1.0)  # 4 more beats at 60 bpm (one tempo from the start: bar 4)
    assert st.bar_beat(10.0) == (5, pytest.approx(3.0))
    assert st.bar_beat(4.0) == (3, 1.0)  # the past keeps its tempo
    assert st.beats_at(12.0) == pytest.approx(20.0) and st.seconds_at_beats(20.0) == pytest.approx(12.0)
    assert st.seconds_at_beats(8.0) == pytest.approx(4.0)
    beats = [st.beats_at(t) for t in np.linspace(0.0, 20.0, 2001)]
    assert np.all(np.diff(beats) > 0) and np.max(np.diff(beats)) < 2.0 * 120 / 60 * 0.01 + 1e-9  # continuous
    # a meter change mid-song counts bars from the playhead on, at the new length
    tr.set_time_signature(3)
    c.t += 3.0
    assert tr.state.bar_beat(tr.position()) == (7, 1.0)  # 3 beats at 60 bpm = one 3/4 bar after bar 6
    assert tr.state.bar_beat(10.0) == (5, pytest.approx(3.0))  # still 4/4 there


def test_tempo_map_is_relearned_on_a_second_pass_and_stays_bounded():
    c = Clock()
    tr = Transport(bpm=120, clock=c)
    tr.set_tempo(120)
    tr.play(0.0)
    c.t += 8.0
    tr.set_tempo(60)
    c.t += 2.0
    tr.report_position(2.0)  # loop back to 2 s; the DAW reports the tempo it has there
    tr.set_tempo(120)
    assert [(g.time_s, g.bpm) for g in tr.state.tempo_map] == [(0.0, 120.0)]
    assert tr.state.bar_beat(10.0) == (6, 1.0)  # 120 bpm all along again
    c.t += 6.0
    tr.set_tempo(60)  # the change comes again at 8 s
    assert tr.state.tempo_map[-1].time_s == pytest.approx(8.0) and tr.state.bar_beat(12.0) == (6, 1.0)
    for k in range(MAX_TEMPO_SEGMENTS + 20):  # a long tempo ramp
        c.t += 0.01
        tr.set_tempo(60.0 + (k % 2) * 0.5 + k * 1e-3)
    assert len(tr.state.tempo_map) == MAX_TEMPO_SEGMENTS


def test_tempo_change_over_real_udp_continues_the_bar_count():
    """REAPER's messages (/tempo/raw, /play, /time) from a python-osc client to the real listener on
    a loopback socket; the tempo halves mid-song. Bars sampled every 5 ms from the transport never
    jump, run at 2 beats/s before and 1 beat/s after.
    """
    tr = Transport(bpm=100)
    sock = bind_udp("127.0.0.1", 0)
    port = sock.getsockname()[1]
    disp = Dispatcher(build_dispatch_table(tr, DawHooks()))
    listener = DawListener(sock, disp, RateLimitedLog(logging.getLogger("test")), realtime_priority=False)
    listener.start()
    daw = SimpleUDPClient("127.0.0.1", port)
    stop = threading.Event()
    t0 = [0.0]

    def reports() -> None:  # REAPER sends /time a few dozen times a second while playing
        while not stop.wait(0.03):
            daw.send_message("/time", time.monotonic() - t0[0])

    try:
        daw.send_message("/tempo/raw", 120.0)
        daw.send_message("/time", 0.0)
        deadline = time.monotonic() + 5
        while tr.state.bpm != 120.0 and time.monotonic() < deadline:
            time.sleep(0.002)
        t0[0] = time.monotonic()
        daw.send_message("/play", 1)
        threading.Thread(target=reports, daemon=True).start()
        samples: list[tuple[float, float, float]] = []  # (wall s since play, song s, beats)
        changed_at = seen_pos = None  # wall s the change was sent; song s the first sample saw it
        while (now := time.monotonic()) - t0[0] < 1.2 or seen_pos is None and now - t0[0] < 5.0:
            if changed_at is None and now - t0[0] >= 0.6:
                daw.send_message("/tempo/raw", 60.0)
                changed_at = now - t0[0]
            st = tr.state
            # the clock is read after the state: the listener stamps a change on arrival, which may
            # fall between an earlier clock read and this state read
            pos = st.position(time.monotonic())
            samples.append((now - t0[0], pos, st.beats_at(pos)))
            if seen_pos is None and st.bpm == 60.0:
                seen_pos = pos
            time.sleep(0.005)
    finally:
        stop.set()
        listener.stop()
        sock.close()
    w, pos, beats = map(np.array, zip(*samples, strict=True))
    steps = np.diff(beats)
    assert tr.state.bpm == 60.0 and len(tr.state.tempo_map) == 2
    change = tr.state.tempo_map[1].time_s
    # where the playhead was when /tempo/raw 60 arrived: after it was sent, before the first sample
    # that saw it (a deadline of the receiving thread's, not a wall-clock window: on a busy machine
    # the listener may wait for a core)
    print(
        f"\ntempo 120 -> 60 at song time {change:.3f} s (sent at {changed_at:.3f} s); largest beat step "
        f"between 5 ms samples {steps.max():.4f} beats over {1e3 * np.diff(pos).max():.1f} ms; "
        f"{len(samples)} samples"
    )
    assert changed_at - 0.05 < change <= seen_pos, (changed_at, change, seen_pos)
    # continuous: no faster than 2 beats per song second between samples however far apart the
    # sampling thread got to run (a jump would be ~1.2 beats here)
    assert np.all(steps >= -1e-9) and np.all(steps <= 2.0 * np.diff(pos) + 1e-6), steps.max()
    before = (pos > 0.1) & (pos < change - 0.05)
    after = pos > change + 0.05
    rate_before = np.polyfit(pos[before], beats[before], 1)[0]
    rate_after = np.polyfit(pos[after], beats[after], 1)[0]
    assert rate_before == pytest.approx(2.0, rel=1e-6) and rate_after == pytest.approx(1.0, rel=1e-6)
    bar, beat = tr.state.bar_beat(pos[-1])
    expect = change * 2.0 + (pos[-1] - change)  # beats reached at the end
    assert (bar - 1) * 4 + beat - 1 == pytest.approx(expect, abs=1e-6)


def test_reaper_marker_slots_need_name_and_time():
    tr = Transport()
    tr.upsert_marker_slot(2, name="Chorus")
    assert tr.state.markers == ()
    tr.upsert_marker_slot(2, time_s=16.0)
    tr.upsert_marker_slot(1, name="Verse", time_s=0.0)
    tr.upsert_marker_slot(3, name="", time_s=40.0)  # REAPER's empty slots
    assert tr.state.markers == (Marker(0.0, "Verse"), Marker(16.0, "Chorus"))
    v = tr.state.markers_version
    tr.upsert_marker_slot(2, time_s=16.0)
    assert tr.state.markers_version == v  # unchanged table, no new version
    for i in range(MAX_MARKERS + 50):
        tr.upsert_marker_slot(100 + i, name=f"m{i}", time_s=float(i))
    assert len(tr.state.markers) <= MAX_MARKERS


def test_ableton_cue_points_in_beats_follow_the_tempo():
    tr = Transport(bpm=120)
    tr.set_markers_beats([("Intro", 0.0), ("Drop", 32.0)])
    assert tr.state.markers[1] == Marker(16.0, "Drop")
    tr.set_tempo(60.0)
    assert tr.state.markers[1] == Marker(32.0, "Drop")


def test_section_tracker_markers_events_and_crossings():
    c = Clock()
    tr = Transport(clock=c)
    tr.set_markers([Marker(0.0, "Verse"), Marker(8.0, "Chorus")])
    sec = SectionTracker()
    s = sec.update(tr.state, 1.0)
    assert (s.name, s.start_s, s.end_s, s.changed) == ("Verse", 0.0, 8.0, True)
    assert not sec.update(tr.state, 2.0).changed
    s = sec.update(tr.state, 8.0)
    assert (s.name, s.start_s, s.end_s, s.changed) == ("Chorus", 8.0, None, True)
    tr.play(9.0)
    tr.section_event("Bridge")  # explicit event wins at once...
    s = sec.update(tr.state, 9.0)
    assert (s.name, s.start_s, s.changed) == ("Bridge", 9.0, True)
    assert not sec.update(tr.state, 9.5).changed
    s = sec.update(tr.state, 3.0)  # ...until the playhead moves to another marker
    assert (s.name, s.changed) == ("Verse", True)
    assert sec.next_crossing_s(tr.state, 3.0) == 8.0 and sec.next_crossing_s(tr.state, 8.5) is None


def test_section_events_without_markers_and_lastmarker_time():
    c = Clock()
    tr = Transport(clock=c)
    sec = SectionTracker()
    assert sec.update(tr.state, 0.0).name is None
    tr.play(5.0)
    c.t += 1.0
    tr.section_event("Chorus")
    s = sec.update(tr.state, tr.position())
    assert (s.name, s.start_s) == ("Chorus", pytest.approx(6.0))
    tr.set_event_start(4.0)  # REAPER's /lastmarker/time arriving just after the name
    s = sec.update(tr.state, tr.position())
    assert (s.name, s.start_s, s.changed) == ("Chorus", 4.0, False)  # a correction, not a new section
    tr.section_event("Bridge", 7.0)
    assert sec.update(tr.state, tr.position()).changed
