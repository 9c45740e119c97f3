-- A real Ardour session, headless, for tests/test_bridge_ardour.py (run by ardour7-lua: luasession,
-- Ardour's Lua session host, on a JACK server or Ardour's dummy audio backend).
--
-- arg[1] session folder (created here; must not exist), arg[2] Ardour's OSC port (the OSC control
-- surface is switched on by the test's config file), arg[4] the audio backend: "JACK" (a running
-- JACK server: a clock that keeps real time) or "None (Dummy)" (Ardour's own; its clock sleeps
-- a period after each cycle and falls behind real time, by 3 % idle and more on a busy machine),
-- arg[3] the hand-shake folder: this script
-- writes "ready" (the session as Ardour holds it), waits for the test's "go", then plays the song
-- and logs Ardour's own playhead to "ardour.log" every ~5 ms: "<monotonic us> <sample> <tag>"
-- (g_get_monotonic_time: the test's time.monotonic clock).
--
-- The song: 150 bpm in 3/4 (1.2 s a bar); markers intro (bar 2, 1.2 s), verse (bar 3, 2.4 s) and
-- chorus (bar 5, 4.8 s); a loop range from 3.6 s (bar 4) to 6.0 s (bar 6), across the chorus marker.
-- Lua cannot add a marker to Session:locations() in Ardour 7 (Locations:add is not bound), so the
-- markers are added the way a control surface adds them: locate, then /add_marker over Ardour's
-- own OSC port.

local dir, port, work, backend = arg[1], tonumber (arg[2]), arg[3], arg[4] or "None (Dummy)"
local RATE, BPM, BEATS = 48000, 150, 3
local BAR_S = BEATS * 60 / BPM
local MARKERS = { { "intro", 1 }, { "verse", 2 }, { "chorus", 4 } } -- name, bars from the start
local LOOP = { 3, 5 } -- bars

local TRS = ARDOUR.TransportRequestSource.TRS_UI
local STOP = ARDOUR.LocateTransportDisposition.MustStop
local ROLL = ARDOUR.LocateTransportDisposition.MustRoll
local now_us = ARDOUR.LuaAPI.monotonic_time

local function wait_until (pred, seconds, what)
	local deadline = now_us () + seconds * 1e6
	while not pred () do
		if now_us () > deadline then
			error ("timed out waiting for " .. what)
		end
		sleep (0.005)
	end
end

local function exists (path)
	local f = io.open (path, "r")
	if f then f:close () end
	return f ~= nil
end

assert (AudioEngine:set_backend (backend, "", ""), "no audio backend " .. backend)
if backend ~= "JACK" then
	AudioEngine:set_buffer_size (256) -- 5.3 ms audio blocks (JACK's server sets its own)
end
assert (create_session (dir, "gravity", RATE), "Ardour could not create the session")

local tm = Temporal.TempoMap.fetch_writable ()
tm:set_tempo (Temporal.Tempo (BPM, BPM, 4), Temporal.timepos_t (0))
tm:set_meter (Temporal.Meter (BEATS, 4), Temporal.timepos_t (0))
Temporal.TempoMap.update (tm)

local osc = ARDOUR.LuaOSC.Address ("osc.udp://127.0.0.1:" .. port)
local function count_marks ()
	local n = 0
	for l in Session:locations ():list ():iter () do
		if l:is_mark () then n = n + 1 end
	end
	return n
end
for i, m in ipairs (MARKERS) do
	local s = math.floor (m[2] * BAR_S * RATE + 0.5)
	Session:request_locate (s, false, STOP, TRS)
	wait_until (function () return Session:transport_sample () == s end, 5, "the locate to " .. m[1])
	osc:send ("/add_marker", "s", m[1])
	wait_until (function () return count_marks () == i end, 5, "marker " .. m[1])
end
osc:send ("/loop_location", "ii", math.floor (LOOP[1] * BAR_S * RATE + 0.5), math.floor (LOOP[2] * BAR_S * RATE + 0.5))
wait_until (function () return Session:locations ():auto_loop_location () ~= nil end, 5, "the loop range")
Session:request_locate (0, false, STOP, TRS)
wait_until (function () return Session:transport_sample () == 0 end, 5, "the locate to 0")

local ready = io.open (work .. "/ready.tmp", "w")
ready:write (string.format ("rate %d\nblock %d\n", Session:nominal_sample_rate (), Session:get_block_size ()))
local tmr = Temporal.TempoMap.read ()
ready:write (string.format ("tempo %.3f\n", tmr:quarters_per_minute_at (Temporal.timepos_t (0))))
for l in Session:locations ():list ():iter () do
	if l:is_mark () then
		ready:write (string.format ("marker %d %s\n", l:start ():samples (), l:name ()))
	elseif l:is_auto_loop () then
		ready:write (string.format ("loop %d %d\n", l:start ():samples (), l:_end ():samples ()))
	end
end
ready:close ()
os.rename (work .. "/ready.tmp", work .. "/ready")

-- Gravity connects now and walks the markers (the playhead moves and comes back): wait for "go"
wait_until (function () return exists (work .. "/go") end, 120, "the test's go")

local log = io.open (work .. "/ardour.log", "w")
local function note (tag)
	log:write (string.format ("%d %d %s\n", now_us (), Session:transport_sample (), tag))
end
local function run_until (pred, seconds)
	local deadline = now_us () + seconds * 1e6
	while not pred () and now_us () < deadline do
		note (Session:transport_rolling () and "roll" or "stop")
		sleep (0.005)
	end
end
local function run_for (seconds)
	run_until (function () return false end, seconds)
end
local function past (s)
	return function () return Session:transport_sample () >= s * RATE end
end

note ("go")
note ("ev:roll")
Session:request_roll (TRS)
run_until (past (3.2), 10)
note ("ev:locate-rolling")
Session:request_locate (math.floor (4.2 * RATE), false, ROLL, TRS)
run_for (0.2)
run_until (past (5.6), 10)
note ("ev:stop")
Session:request_stop (false, false, TRS)
run_for (0.8)
note ("ev:locate-stopped")
Session:request_locate (math.floor (1.5 * RATE), false, STOP, TRS)
run_for (0.6)
note ("ev:loop")
Session:request_play_loop (true, true)
run_for (5.4)
note ("ev:stop")
Session:request_stop (false, false, TRS)
run_for (0.5)
note ("done")
log:close ()
close_session ()
