"""Transport model: extrapolation, jitter (never backwards), seeks, tempo, markers, sections."""

from __future__ import annotations

import numpy as np
import pytest

from bridge.transport import MAX_MARKERS, Marker, SectionTracker, Transport


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
    with pytest.raises(ValueError):
        Transport(jump_threshold_s=0.5, slew_s=0.5)


def test_bars_from_tempo_and_time_signature():
    tr = Transport(bpm=120, time_signature="4/4")
    assert tr.state.bar_beat(0.0) == (1, 1.0)
    assert tr.state.bar_beat(2.0) == (2, 1.0)
    tr.set_tempo(90)
    tr.set_time_signature(6, 8)
    bar, beat = tr.state.bar_beat(5.0)  # 7.5 beats of 6
    assert (bar, beat) == (2, pytest.approx(2.5))


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
