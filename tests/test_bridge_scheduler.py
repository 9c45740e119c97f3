"""Scenes per section, the frame computation (positions = gravity.motion at the section time),
crossfades, and the planning thread.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from gravity.motion import positions_at
from gravity.pipeline import make_scene
from gravity.scene import Scene
from bridge.planning import PlanContext, PlanWorker, canonical_section, marker_bars, section_request
from bridge.ratelog import RateLimitedLog
from bridge.scenes import ObjectMap, PreparedScene, SceneBook
from bridge.scheduler import FrameScheduler, SchedulerConfig, blend_aed
from bridge.transport import Marker, Transport
from waiting import wait_for

REQUEST = {
    "target_format": "binaural",
    "max_objects": 8,
    "style": "club",
    "section": "verse",
    "global": {"bpm": 120, "energy": 0.8},
    "stems": [{"id": "v1", "class": "lead_vocal"}, {"id": "k1", "class": "kick"}, {"id": "a1", "class": "arp"}],
}


def obj(oid, motion, *, stems=None, gain_db=0.0, width=0.2):
    o = {
        "id": oid,
        "class": "synth",
        "az_deg": motion[0]["az_deg"],
        "el_deg": motion[0]["el_deg"],
        "dist_m": motion[0]["dist_m"],
        "width": width,
        "gain_db": gain_db,
        "reverb_send": 0.1,
        "early_reflections": 0.1,
        "motion": motion,
    }
    if stems:
        o["stems"] = stems
    return o


def kf(t, az, el=0.0, d=2.0):
    return {"t": t, "az_deg": az, "el_deg": el, "dist_m": d}


def scene_doc(objects, bars=2, bpm=120):
    return {
        "version": "1.0",
        "bed": {"layout": "binaural"},
        "timing": {"bpm": bpm, "time_signature": "4/4", "section_bars": bars},
        "objects": objects,
    }


ORBIT = scene_doc(
    [
        obj("v1", [kf(0, 0, 10), kf(0.25, 90, 10), kf(0.5, 180, 10), kf(0.75, -90, 10), kf(1, 0, 10)]),
        obj("grp", [kf(0, -30), kf(1, -30)], stems=["k1", "a1"], gain_db=-6),
    ]
)
STILL = scene_doc([obj("v1", [kf(0, 120, -20, 3), kf(1, 120, -20, 3)])])


def test_canonical_section_names():
    assert canonical_section("Pre-Chorus 2", "verse") == "pre_chorus"
    assert canonical_section("CHORUS", "verse") == "chorus"
    assert canonical_section("Verse 1 (alt)", "drop") == "verse"
    assert canonical_section("Big Drop!", "verse") == "drop"
    assert canonical_section("prechorus", "verse") == "pre_chorus"
    assert canonical_section("Instrumental", "verse") == "interlude"
    assert canonical_section("zzz", "verse") == "verse"


def test_marker_bars_and_section_request():
    assert marker_bars(0.0, 16.0, 120.0, 4) == 8
    assert marker_bars(0.0, None, 120.0, 4) is None
    assert marker_bars(0.0, 0.1, 120.0, 4) == 1
    r = section_request(REQUEST, section="chorus", bars=4, bpm=400.0, time_signature="3/4", prompt="wide")
    assert (r.section, r.section_bars, r.bpm, r.time_signature, r.prompt) == ("chorus", 4, 300.0, "3/4", "wide")
    r = section_request(REQUEST, time_signature="nonsense")
    assert r.time_signature == "4/4"


def test_prepared_scene_uses_gravity_motion_and_numbers_stems():
    scene = Scene.from_dict(ORBIT)
    omap = ObjectMap(("v1", "k1", "a1", "extra"))
    ps = PreparedScene(scene, omap, source="file:x", section="Verse", fallback_section_s=99.0)
    assert ps.section_s == pytest.approx(4.0)  # 2 bars of 4/4 at 120 bpm, from the scene's timing
    for t in (0.0, 0.1, 0.37, 0.5, 0.99, 1.0, 1.5):
        aed, gain, width, active = ps.evaluate(t)
        assert aed[0] == pytest.approx(positions_at(scene.objects[0].keyframes, min(t, 1.0)))
        assert np.all(aed[1] == aed[2]) and aed[1][0] == -30.0  # the group drives both member stems
        assert list(active) == [True, True, True, False] and gain[1] == gain[2] == -6.0
    assert ps.evaluate(0.25)[0][0][0] == pytest.approx(90.0)


def make_scheduler(book_ref, transport, **cfg):
    return FrameScheduler(
        SchedulerConfig(rate_hz=100, **cfg),
        transport=transport,
        book=lambda: book_ref[0],
        targets=[],
        events=RateLimitedLog(__import__("logging").getLogger("t")),
        clock=lambda: 0.0,
    )


def test_frames_follow_sections_and_section_time():
    c = [100.0]
    tr = Transport(clock=lambda: c[0])
    omap = ObjectMap(("v1", "k1", "a1"))
    a = PreparedScene(Scene.from_dict(ORBIT), omap, source="A", section="Verse", fallback_section_s=4.0)
    b = PreparedScene(Scene.from_dict(STILL), omap, source="B", section="Chorus", fallback_section_s=4.0)
    book = [SceneBook(omap, a, {"chorus": b}, 1)]
    sch = make_scheduler(book, tr)
    tr.set_markers([Marker(0.0, "Verse"), Marker(8.0, "Chorus")])
    tr.play(0.0)
    f = sch.compute_frame(c[0])
    assert f.section == "Verse" and f.new_section and f.scene_source == "A"
    c[0] += 1.0
    f = sch.compute_frame(c[0])
    assert not f.new_section and f.section_t == pytest.approx(0.25) and f.aed[0][0] == pytest.approx(90.0)
    c[0] += 7.5  # playhead 8.5: into the chorus marker
    f = sch.compute_frame(c[0])
    assert f.section == "Chorus" and f.new_section and f.scene_source == "B"
    assert list(f.active) == [True, False, False] and f.aed[0] == pytest.approx([120.0, -20.0, 3.0])
    assert f.section_t == pytest.approx(0.5 / 4.0)
    assert sch.section_changes == 1


def test_replacement_within_a_section_is_crossfaded_along_the_great_circle():
    c = [100.0]
    tr = Transport(clock=lambda: c[0])
    omap = ObjectMap(("v1",))
    s0 = PreparedScene(
        Scene.from_dict(scene_doc([obj("v1", [kf(0, 0), kf(1, 0)])])),
        omap,
        source="planner",
        section=None,
        fallback_section_s=4.0,
    )
    s1 = PreparedScene(
        Scene.from_dict(scene_doc([obj("v1", [kf(0, 90), kf(1, 90)], gain_db=-12)])),
        omap,
        source="llm",
        section=None,
        fallback_section_s=4.0,
    )
    book = [SceneBook(omap, s0, {}, 1)]
    sch = make_scheduler(book, tr, crossfade_beats=2.0)  # 2 beats at 120 bpm = 1 s
    tr.play(0.0)
    sch.compute_frame(c[0])
    book[0] = SceneBook(omap, s1, {}, 2)
    f = sch.compute_frame(c[0])
    assert f.aed[0][0] == pytest.approx(0.0) and sch.crossfades == 1
    c[0] += 0.5
    f = sch.compute_frame(c[0])
    assert f.aed[0] == pytest.approx([45.0, 0.0, 2.0]) and f.gain_db[0] == pytest.approx(-6.0)
    c[0] += 0.6
    f = sch.compute_frame(c[0])
    assert f.aed[0][0] == pytest.approx(90.0) and f.scene_source == "llm"


def test_blend_goes_over_the_top_for_opposite_directions():
    a = np.array([[0.0, 0.0, 1.0]])
    b = np.array([[180.0, 0.0, 3.0]])
    mid = blend_aed(a, b, 0.5)
    assert mid[0][1] == pytest.approx(90.0) and mid[0][2] == pytest.approx(2.0)
    path = np.array([blend_aed(a, b, w)[0] for w in np.linspace(0, 1, 21)])
    assert np.all(np.isfinite(path))


class FakeLLM:
    """Stands in for gravity.llm.runtime.SceneLLM: make_scene(planner='auto', llm=...) labels it 'llm'."""


def test_plan_worker_plans_sections_pins_files_and_replaces_with_the_llm(tmp_path):
    books: list[SceneBook] = []
    calls: list[str] = []

    def fake_make_scene(request, *, planner="auto", seed=0, llm=None):
        calls.append(planner)
        result = make_scene(request, planner="planner", seed=seed)
        if llm is not None and planner == "auto":
            result = type(result)(result.scene, "llm", result.violations, result.seconds)
        return result

    w = PlanWorker(REQUEST, publish=books.append, make_scene_fn=fake_make_scene, llm_factory=FakeLLM, debounce_s=0.01)
    w.build_initial()
    assert books[-1].default.source == "planner" and not books[-1].sections
    w.start()
    try:
        w.request_replan(PlanContext(markers=(Marker(0.0, "Verse"), Marker(8.0, "Chorus")), bpm=120.0))
        wait_for(
            lambda: (
                {"verse", "chorus"} <= set((b := books[-1]).sections)
                and all(s.source == "llm" for s in b.sections.values())
            ),
            20,
            "both sections planned by the model",
            0.01,
        )
        b = books[-1]
        assert b.sections["verse"].scene.section_bars == 4  # 8 s at 120 bpm between the markers
        assert b.sections["verse"].section_s == pytest.approx(8.0)
        assert b.sections["verse"].scene.raw["timing"]["section"] == "verse"
        assert b.sections["chorus"].scene.raw["timing"]["section"] == "chorus"
        assert b.sections["chorus"].source == "llm" and "planner" in calls and "auto" in calls
        path = tmp_path / "still.json"
        path.write_text(json.dumps(STILL))
        w.request_scene_file(str(path), "Chorus")
        w.request_scene_file(str(tmp_path / "missing.json"), "Verse")  # logged, not fatal
        wait_for(
            lambda: books[-1].resolve("chorus").source == "file:still.json", 20, "the chorus pinned to still.json", 0.01
        )
        assert books[-1].resolve("CHORUS").source == "file:still.json"
        wait_for(lambda: w.failures >= 1, 20, "the missing scene file reported", 0.01)
        assert w.failures == 1 and w._thread.is_alive()  # the missing file was reported, the worker lives
    finally:
        w.stop()


def test_plan_process_plans_and_loads_in_another_process(tmp_path):
    from bridge.errors import BridgeError
    from bridge.planning import PlanProcess

    proc = PlanProcess(REQUEST, planner="planner")
    try:
        scene, source = proc.plan({"section": "chorus", "bars": 4, "bpm": 100.0}, "planner", 0)
        assert source == "planner" and scene.section_bars == 4 and scene.bpm == 100.0
        assert {o.id for o in scene.objects} >= {"v1"} and proc.starts == 1
        path = tmp_path / "still.json"
        path.write_text(json.dumps(STILL))
        assert proc.load(str(path)).objects[0].keyframes[0][1] == 120.0
        with pytest.raises(BridgeError, match="not found|No such file|cannot read"):
            proc.load(str(tmp_path / "missing.json"))
        with pytest.raises(BridgeError, match="section"):
            proc.plan({"section": "nonsense"}, "planner", 0)  # the request fails validation there
        assert proc.starts == 1  # errors are answers, the process lives on
    finally:
        proc.close()
    with pytest.raises(BridgeError, match="closed"):
        proc.plan({}, "planner", 0)


def test_closing_the_plan_process_under_a_running_plan_is_a_clean_bridge_error():
    """close() (shutdown, main thread) clears the pipe while the planning thread waits on it: the
    thread must see BridgeError('closed'), never an AttributeError/OSError (a logged traceback).
    """
    import threading

    from bridge.errors import BridgeError
    from bridge.planning import PlanProcess

    proc = PlanProcess(REQUEST, planner="planner")
    proc.start()
    proc.plan({"section": "verse", "bars": 4, "bpm": 100.0}, "planner", 0)  # the process is up
    seen: list[BaseException] = []

    def keep_planning() -> None:
        while True:
            try:
                proc.plan({"section": "chorus", "bars": 4, "bpm": 100.0}, "planner", 0)
            except BaseException as exc:  # noqa: BLE001 - the type is what the test checks
                seen.append(exc)
                return

    t = threading.Thread(target=keep_planning)
    t.start()
    time.sleep(0.3)
    proc.close()
    t.join(10)
    assert not t.is_alive() and len(seen) == 1
    assert isinstance(seen[0], BridgeError) and "closed" in str(seen[0]), repr(seen[0])
