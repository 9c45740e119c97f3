"""The renderer: a scene's objects in, binaural / stereo / AmbiX / loudspeakers out, block by block.

One engine serves both uses. :meth:`Renderer.process` is the streaming call (a realtime
preview feeds it one block per audio callback); :func:`renderer.offline.render_files` feeds it
whole files the same way, so both produce the same samples, and the output does not depend
on the block size: the stream is processed in units of ``config.static_hop`` samples counted
from the start (a block that is not a whole number of units is buffered), every hop's
arithmetic is the same whatever the block, and voices are summed in a fixed order.

Signal flow per object (positions from :func:`gravity.motion.positions_at`, evaluated at every
hop boundary and interpolated per sample in between)::

    object signal ─┬─ width > 0: decorrelation filters ─► V virtual sources across the width
                   │    (each: direction, 1/r gain, air absorption, [propagation delay])
                   ├─ early_reflections > 0: one image source per room surface
                   │    (own direction, delay, 1/r attenuation, reflection coefficient)
                   │
                   │  voices of moving objects ─► ConvolutionEngine (hop 256) ──┐
                   │  voices of static objects ─► ConvolutionEngine (hop 1024) ─┴─► [binaural:
                   │                               diffuse-field EQ] ─────────────► + ─► out
                   └─ reverb_send ─► sum over objects ─► FDN reverb (decorrelated) ─► +

Each voice's filter (per output channel) is a spectrum: HRTF pair with its interaural delay as
a phase ramp (binaural), equal-power pan gains (stereo), SN3D spherical harmonics (AmbiX) or
the EBU ADM Renderer's point-source gains (loudspeaker layouts, LFE silent), times distance
gain, air absorption and object gain.

Latency: ``static_hop + lookahead`` samples (21.7 ms at the defaults, 5.7 ms with
``static_hop = hop = 256``); offline renders remove it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gravity.motion import positions_at
from gravity.scene import Scene
from hrtf import HRTFModel

from .config import SPEAKER_CHANNELS, SPEED_OF_SOUND_M_S, RenderConfig
from .engine import ConvolutionEngine, FIRBank, frame_size
from .fft import next_fast_len
from .formats import (
    AirTable,
    AmbisonicFormat,
    BinauralFormat,
    LoudspeakerFormat,
    Spatialiser,
    StereoFormat,
    diffuse_field_eq,
)
from .kernels import FilterParams
from .listener import HeadPose, Listener
from .parallel import default_threads
from .room import FDNReverb, Shoebox
from .sources import (
    DelayLine,
    air_coefficient,
    decorrelation_filters,
    distance_gain,
    spread_directions,
    spread_offsets,
)

__all__ = ["Renderer"]

log = logging.getLogger(__name__)

_DIRECT, _IMAGE = 0, 1
# Delay modes of a voice: none, fixed integer (fraction in the filter), time-varying (Lagrange).
_NO_DELAY, _FIXED, _VARYING = 0, 1, 2


@dataclass(frozen=True)
class _Voices:
    """The static description of every voice (virtual source) of a scene."""

    obj: NDArray[np.intp]  # object index
    kind: NDArray[np.intp]  # _DIRECT / _IMAGE
    offset_deg: NDArray[np.float64]  # spread offset (direct voices)
    surface: NDArray[np.intp]  # column of Shoebox.images (image voices)
    source_row: NDArray[np.intp]  # row of the per-block source signal matrix
    delay_mode: NDArray[np.intp]
    moving: NDArray[np.bool_]


class Renderer:
    """Streaming renderer of one scene (pedalboard-style processor).

    Parameters
    ----------
    scene : gravity.scene.Scene
        The scene; its objects, in order, are the input channels.
    sample_rate : int
        Render sample rate in Hz (inputs must already be at this rate).
    config : RenderConfig, optional
        Settings (format, hop, room, EQ...). Default :class:`RenderConfig()`.
    model : hrtf.HRTFModel, optional
        HRTF set at ``sample_rate`` (binaural only). Default: the embedded MIT KEMAR via
        :func:`hrtf.load_model` (cached on disk).
    duration_s : float, optional
        Length of the material in seconds: the motion time base when the scene has no
        ``timing`` (motion t = 0..1 is stretched over it). Without timing or duration,
        objects stay at their t = 0 position.
    motion_origin_s : float
        Stream time in seconds where the scene's motion starts: motion t = (stream time -
        origin) / section length, clamped to the keyframes as :func:`positions_at` does (a
        section's scene played from its start in the song). Default 0 (t from stream start).
    listener : renderer.listener.Listener, optional
        Head tracking (:mod:`renderer.listener`): every hop's voice directions are turned
        against the head pose the listener holds (read once per rendered block: world-locked
        objects) and its position moves the objects (the room moves with it). Every voice is
        then a moving voice (per-hop filters, crossfaded over a hop, so a turning head makes no
        click; delays time-varying), which costs more than static voices' long frames. None
        (the default): nothing turns and the output is unchanged.

    Examples
    --------
    >>> r = Renderer(scene)                          # doctest: +SKIP
    >>> out = r.process(block)                       # (n_objects, n) -> (2, n) float32
    >>> out = r(block, 48000)                        # same, pedalboard-style
    >>> r.reset()                                    # silence tails, back to time 0
    """

    #: Input samples beyond +-MAX_INPUT (full scale is 1) are clipped: no overflow, ever.
    MAX_INPUT = 1e6

    def __init__(
        self,
        scene: Scene,
        sample_rate: int = 48000,
        config: RenderConfig | None = None,
        *,
        model: HRTFModel | None = None,
        duration_s: float | None = None,
        motion_origin_s: float = 0.0,
        listener: Listener | None = None,
    ) -> None:
        self.scene = scene
        self.listener = listener
        self.head_seq = 0  # sequence number of the listener's pose the last block was rendered with
        self.config = cfg = config or RenderConfig()
        self.sample_rate = int(sample_rate)
        self.n_inputs = len(scene.objects)
        self.n_channels = cfg.n_channels
        self.hop = cfg.hop
        self._threads = cfg.threads or default_threads()
        section = scene.section_s(duration_s)
        if section is None:
            if any(not o.is_static for o in scene.objects):
                log.warning("scene has no timing and no duration was given: moving objects stay at t = 0")
            section = float("inf")
        self.section_s = float(section)
        self._motion_origin_s = float(motion_origin_s)
        self._motion_origin = self._motion_origin_s * self.sample_rate  # samples
        log.info("renderer: %s", cfg.to_dict())

        # ---- output format and engine geometry
        if cfg.fmt == "binaural":
            if model is None:
                from hrtf import load_model

                model = load_model(rate=self.sample_rate)
            if model.sample_rate != self.sample_rate:
                raise ValueError(f"HRTF model is at {model.sample_rate} Hz, renderer at {self.sample_rate} Hz")
            flen = cfg.lookahead + int(np.ceil(model.max_delay)) + 2 + model.n_taps + 12
        else:
            # Pure (fractional) delays times the air one-pole, whose tail is < -100 dB after 64.
            flen = cfg.lookahead + 2 + 64
        n_fft, p, q = frame_size(cfg.hop, flen)
        self.n_fft = n_fft
        air = AirTable(n_fft)
        self._air = air
        spat: Spatialiser
        if cfg.fmt == "binaural":
            assert model is not None
            spat = BinauralFormat(model, n_fft, p, q, cfg.lookahead, air, self._threads)
        elif cfg.fmt == "stereo":
            spat = StereoFormat(n_fft, p, q, cfg.lookahead, air)
        elif cfg.fmt in SPEAKER_CHANNELS:
            spat = LoudspeakerFormat(cfg.fmt, n_fft, p, q, cfg.lookahead, air)
        else:
            order = 1 if cfg.fmt == "foa" else cfg.ambisonic_order
            spat = AmbisonicFormat(order, n_fft, p, q, cfg.lookahead, air)
        self._spat = spat
        self.model = model

        # ---- room
        self.room = Shoebox.from_preset(scene.room_preset)
        surfaces = self.room.surfaces if cfg.early_reflections else np.zeros(0, np.intp)

        # ---- voices
        self._gain = np.array([10.0 ** (o.gain_db / 20.0) for o in scene.objects])
        self._er = np.array([o.early_reflections for o in scene.objects])
        self._send = np.array([o.reverb_send for o in scene.objects]) * self._gain
        # A head-tracked render turns every object against the head: none keeps its filters.
        self._static_obj = np.array([o.is_static and listener is None for o in scene.objects], bool)
        obj, kind, off, surf, row, mode = [], [], [], [], [], []
        self._decor: list[tuple[int, FIRBank, int]] = []  # (object, bank, first source row)
        n_rows = self.n_inputs
        for i, o in enumerate(scene.objects):
            offsets = spread_offsets(o.width, cfg.max_spread_deg)
            if len(offsets) > 1:
                amount = min(1.0, float(np.sqrt(o.width / cfg.full_decorrelation_width)))
                h = decorrelation_filters(
                    len(offsets),
                    self.sample_rate,
                    crossover_hz=cfg.decorrelation_crossover_hz,
                    amount=amount,
                    seed=cfg.seed * 1000003 + i,
                )
                self._decor.append((i, FIRBank(h, cfg.static_hop, shared_input=True), n_rows))
                rows = list(range(n_rows, n_rows + len(offsets)))
                n_rows += len(offsets)
            else:
                rows = [i]
            fixed = bool(self._static_obj[i])
            dmode = (_FIXED if fixed else _VARYING) if cfg.propagation_delay else _NO_DELAY
            for b, r in zip(offsets, rows, strict=True):
                obj.append(i)
                kind.append(_DIRECT)
                off.append(b)
                surf.append(-1)
                row.append(r)
                mode.append(dmode)
            if o.early_reflections > 0:
                for s in range(len(surfaces)):
                    obj.append(i)
                    kind.append(_IMAGE)
                    off.append(0.0)
                    surf.append(s)
                    row.append(i)
                    mode.append(_FIXED if fixed else _VARYING)
        oi = np.asarray(obj, np.intp)
        self._v = _Voices(
            obj=oi,
            kind=np.asarray(kind, np.intp),
            offset_deg=np.asarray(off, float),
            surface=np.asarray(surf, np.intp),
            source_row=np.asarray(row, np.intp),
            delay_mode=np.asarray(mode, np.intp),
            moving=~self._static_obj[oi] if len(oi) else np.zeros(0, bool),
        )
        self.n_voices = len(oi)
        self._n_rows = n_rows
        # Two engines: moving voices get new filters every hop; static ones (static objects and
        # their reflections) keep theirs and use longer frames (static_hop), which is cheaper.
        self._moving_idx = np.flatnonzero(self._v.moving)
        self._static_idx = np.flatnonzero(~self._v.moving)
        self.engine = ConvolutionEngine(
            len(self._moving_idx),
            self.n_channels,
            cfg.hop,
            n_fft,
            moving=np.ones(len(self._moving_idx), bool),
            tables=spat.tables if len(self._moving_idx) else None,
        )
        self.static_n_fft = next_fast_len(cfg.static_hop + flen)
        self.static_engine = ConvolutionEngine(
            len(self._static_idx), self.n_channels, cfg.static_hop, self.static_n_fft
        )

        # ---- delays: propagation and reflections
        max_path = self.room.max_extra_path_m + (50.0 if cfg.propagation_delay else 0.0)
        if listener is not None:
            max_path += 4.0  # a head moved within ADM-OSC's -1..1 cube (+-1 m) lengthens paths by < 3.5 m
        self._delayed = np.flatnonzero(self._v.delay_mode != _NO_DELAY)
        self._delay_line = (
            DelayLine(n_rows, max_path / SPEED_OF_SOUND_M_S * self.sample_rate + 8) if self._delayed.size else None
        )

        # ---- reverb and equaliser
        self._reverb: FDNReverb | None = None
        self._reverb_rows: NDArray[np.intp] | None = None  # output channels of the reverb (None: all)
        if cfg.reverb and np.any(self._send > 0):
            if cfg.fmt in ("binaural", "stereo"):
                self._reverb = FDNReverb(self.room, self.sample_rate, 2, binaural_coherence=True, seed=cfg.seed)
            elif isinstance(spat, LoudspeakerFormat):
                # Decorrelated, equal on every loudspeaker, none in the LFE; 1/sqrt(n) each, so the
                # diffuse field's total power is that of a panned source (power sum 1), the same
                # direct-to-reverb ratio as the Ambisonic W channel and as each binaural ear.
                main = spat.layout.main
                even = np.full(len(main), 1.0 / np.sqrt(len(main)))
                self._reverb = FDNReverb(self.room, self.sample_rate, len(main), even, seed=cfg.seed)
                self._reverb_rows = main
            else:
                order = int(np.sqrt(self.n_channels)) - 1
                gains = [1.0 / np.sqrt(2 * d + 1) for d in range(order + 1) for _ in range(2 * d + 1)]
                self._reverb = FDNReverb(self.room, self.sample_rate, self.n_channels, gains, seed=cfg.seed)
        self._eq: FIRBank | None = None
        if cfg.fmt == "binaural" and cfg.hrtf_eq == "diffuse_field":
            assert model is not None
            h = diffuse_field_eq(model, max_boost_db=cfg.eq_max_boost_db)
            self._eq = FIRBank(np.stack([h, h]), cfg.static_hop)
        self.block_unit = cfg.static_hop  # samples processed at a time (FIFO unit)
        self.latency_samples = cfg.static_hop + cfg.lookahead
        self.nonfinite_samples = 0
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self, start_s: float = 0.0) -> None:
        """Silence every tail (delay lines, reverb, FIFOs) and restart at ``start_s``.

        Parameters
        ----------
        start_s : float
            Stream position in seconds to restart from (a DAW seek), rounded to a whole
            number of static hops (``config.static_hop / sample_rate``, 21.3 ms by default).
            Parameters are kept.
        """
        unit = self.config.static_hop // self.hop
        self._hop_index = unit * max(0, int(round(start_s * self.sample_rate / self.config.static_hop)))
        self._pos_cache: tuple[int, NDArray[np.float64] | None] = (0, None)
        self.engine.reset()
        self.static_engine.reset()
        for _, bank, _ in self._decor:
            bank.reset()
        if self._delay_line is not None:
            self._delay_line.reset()
        if self._reverb is not None:
            self._reverb.reset()
        if self._eq is not None:
            self._eq.reset()
        self._in_fifo = np.zeros((self.n_inputs, 0), np.float32)
        self._out_fifo = np.zeros((self.n_channels, self.block_unit), np.float32)  # the latency
        self._fifo_mode: bool | None = None  # process() (True) or process_units() (False) since the reset
        self._send_delay = np.zeros(self.config.lookahead, np.float32)
        self._init_filters()

    def _init_filters(self) -> None:
        """Set every voice's filters (and delays) at the current hop boundary, no crossfade."""
        allv = np.arange(self.n_voices)
        pos = self._object_positions(np.array([self._hop_index]))  # (O, 1, 3)
        geom = self._head_geometry(pos, allv, self._head_pose())
        gain, air_a, extra, tau = self._params(allv, *geom)
        mv, sv = self._moving_idx, self._static_idx
        if mv.size:
            fp = self._fparams(geom[0][mv], geom[1][mv], gain[mv], air_a[mv], extra[mv])
            self.engine.set_filters(np.arange(len(mv)), self._spat.tables.filters(fp.at((slice(None), 0))))
        if sv.size:
            phi_s = self._spat.static_filters(
                self.static_n_fft,
                geom[0][sv, 0],
                geom[1][sv, 0],
                gain[sv, 0],
                air_a[sv, 0],
                extra[sv, 0],
            )
            self.static_engine.set_filters(np.arange(len(sv)), phi_s)
        self._tau = tau[:, 0].copy()  # delay of every voice at the current boundary (samples)
        fixed = self._v.delay_mode == _FIXED
        self._fixed_int = np.where(fixed, np.floor(self._tau), 0).astype(np.intp)

    @property
    def tail_samples(self) -> int:
        """Samples of output that follow the end of the input (filters, reflections, reverb)."""
        cfg = self.config
        tail = 0.05  # HRTF filters, decorrelators, equaliser
        if cfg.early_reflections and np.any(self._er > 0):
            tail += self.room.max_extra_path_m / SPEED_OF_SOUND_M_S
        if cfg.propagation_delay:
            tail += 50.0 / SPEED_OF_SOUND_M_S
        if self._reverb is not None:
            tail += self.room.rt60_s
        return int(np.ceil(tail * self.sample_rate))

    @property
    def motion_origin_s(self) -> float:
        """Stream time in seconds where motion t = 0 is (see the constructor). Setting it takes
        effect from the next :meth:`reset` (positions are a function of time: no state kept).
        """
        return self._motion_origin_s

    @motion_origin_s.setter
    def motion_origin_s(self, seconds: float) -> None:
        self._motion_origin_s = float(seconds)
        self._motion_origin = self._motion_origin_s * self.sample_rate
        self._pos_cache = (0, None)

    @property
    def time_s(self) -> float:
        """Stream position in seconds: input time of the next sample :meth:`process` takes."""
        return (self._hop_index * self.hop + self._in_fifo.shape[1]) / self.sample_rate

    #: Hop boundaries of object positions computed per call of positions_at (a cache).
    POSITION_BLOCK = 512

    def _object_positions(self, hops: NDArray[np.int64]) -> NDArray[np.float64]:
        """(O, len(hops), 3) positions (az, el, dist) at hop boundaries (sample = hop * H).

        Positions come from :func:`gravity.motion.positions_at` (the one place they are
        computed), evaluated for blocks of :attr:`POSITION_BLOCK` consecutive boundaries at a
        time and cached: a pure function of time, so caching changes no value.
        """
        out = np.empty((self.n_inputs, len(hops), 3))
        h0, h1 = int(hops[0]), int(hops[-1])
        c0, cache = self._pos_cache
        if cache is None or h0 < c0 or h1 >= c0 + cache.shape[1]:
            c0 = h0
            k = np.arange(h0, h0 + max(self.POSITION_BLOCK, h1 - h0 + 1))
            t = (
                (k * self.hop - self._motion_origin) / (self.sample_rate * self.section_s)
                if np.isfinite(self.section_s)
                else np.zeros(len(k))
            )
            cache = np.empty((self.n_inputs, len(k), 3))
            for i, o in enumerate(self.scene.objects):
                cache[i] = o.keyframes[0, 1:] if o.is_static else positions_at(o.keyframes, np.asarray(t, float))
            self._pos_cache = (c0, cache)
        out[:] = cache[:, np.asarray(hops) - c0]
        return out

    def _voice_geometry(
        self, pos: NDArray[np.float64], voices: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Geometry of voices at the boundaries in ``pos`` (O, T, 3).

        Returns az, el (degrees), distance and the object's direct distance (metres), each
        of shape (len(voices), T).
        """
        v = self._v
        p = pos[v.obj[voices]]  # (n, T, 3)
        az, el, dist = p[..., 0].copy(), p[..., 1].copy(), p[..., 2].copy()
        direct_dist = dist.copy()
        direct = v.kind[voices] == _DIRECT
        spread = direct & (v.offset_deg[voices] != 0.0)
        if np.any(spread):
            az[spread], el[spread] = spread_directions(az[spread], el[spread], v.offset_deg[voices][spread][:, None])
        img = ~direct
        if np.any(img):
            ia, ie, idist = self.room.images(az[img], el[img], dist[img])  # (m, T, n_surfaces)
            col = v.surface[voices][img]
            pick = np.arange(len(col))
            az[img], el[img], dist[img] = ia[pick, :, col], ie[pick, :, col], idist[pick, :, col]
        return az, el, dist, direct_dist

    def _head_pose(self) -> HeadPose | None:
        """The listener's pose now (read once per block), None without a listener or facing front."""
        if self.listener is None:
            return None
        self.head_seq, pose = self.listener.state
        return None if pose.is_identity else pose

    def _head_geometry(
        self, pos: NDArray[np.float64], voices: NDArray[np.intp], pose: HeadPose | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`_voice_geometry` as the head hears it: objects around the head's position,
        then every voice direction (spread and reflections included: the room is world-locked
        too) turned by the head's rotation.
        """
        if pose is None:
            return self._voice_geometry(pos, voices)
        az, el, dist, direct_dist = self._voice_geometry(pose.locate(pos), voices)
        az, el = pose.turn(az, el)
        return az, el, dist, direct_dist

    def _params(
        self,
        voices: NDArray[np.intp],
        _az: NDArray[np.float64],  # (the geometry tuple's direction: gains here depend on distance only)
        _el: NDArray[np.float64],
        dist: NDArray[np.float64],
        direct_dist: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Gain, air-absorption pole, filter extra delay, delay-line delay tau (samples): (n, T)."""
        cfg, v = self.config, self._v
        obj = v.obj[voices]
        gain = self._gain[obj][:, None] * distance_gain(dist, cfg.reference_distance_m, cfg.near_clamp_m)
        img = v.kind[voices] == _IMAGE
        tau = np.zeros(dist.shape)
        if cfg.propagation_delay:
            tau[~img] = dist[~img] / SPEED_OF_SOUND_M_S * self.sample_rate
        if np.any(img):
            refl = np.asarray(self.room.reflection)[self.room.surfaces][v.surface[voices][img]]
            gain[img] *= (self._er[obj][img] * refl)[:, None]
            # Reflections arrive later than the direct sound by their extra path (or by their
            # whole path when propagation delay is on).
            path = dist[img] - (0.0 if cfg.propagation_delay else direct_dist[img])
            tau[img] = np.maximum(path, 0.0) / SPEED_OF_SOUND_M_S * self.sample_rate
        mode = v.delay_mode[voices]
        extra = np.zeros(dist.shape)
        fixed = mode == _FIXED
        # Fixed delays: integer part in the delay line, fraction as an exact phase ramp.
        extra[fixed] = tau[fixed] - np.floor(tau[fixed])
        extra[mode == _VARYING] = -DelayLine.MIN_DELAY
        if cfg.air_absorption:
            air_a = air_coefficient(dist, self.sample_rate, cfg.air_cutoff_hz)
        else:
            air_a = np.zeros(dist.shape)
        return gain, air_a, extra, tau

    def _fparams(
        self,
        az: NDArray[np.float64],
        el: NDArray[np.float64],
        gain: NDArray[np.float64],
        air_a: NDArray[np.float64],
        extra: NDArray[np.float64],
    ) -> FilterParams:
        """Moving-engine filter parameters, leading shape (n, T), for parameters of shape (n, T)."""
        n, T = az.shape
        air_idx = self._air.index(air_a)
        p = self._spat.params(az.ravel(), el.ravel(), gain.ravel(), air_idx.ravel(), extra.ravel())
        return FilterParams(*(f.reshape((n, T) + f.shape[1:]) for f in p))  # type: ignore[arg-type]  # same fields

    # ------------------------------------------------------------ processing

    def _sources(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Source signal matrix: object signals, then the decorrelated rows of wide objects."""
        if not self._decor:
            return x
        rows = np.empty((self._n_rows, x.shape[1]), np.float32)
        rows[: self.n_inputs] = x
        for i, bank, first in self._decor:
            rows[first : first + bank.n_filters] = bank.process(x[i : i + 1])
        return rows

    def _process_hops(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Render whole static hops: x (O, n) -> (C, n), n a multiple of ``static_hop``."""
        J = x.shape[1] // self.hop
        v = self._v
        src = self._sources(x)
        xv = src[v.source_row]  # voice inputs; delayed voices are overwritten below
        mv, sv = self._moving_idx, self._static_idx
        if mv.size:
            pos = self._object_positions(self._hop_index + np.arange(1, J + 1))
            # One pose for the block's hop boundaries: a new pose is crossfaded in over the first hop.
            geom = self._head_geometry(pos, mv, self._head_pose())
            gain, air_a, extra, tau = self._params(mv, *geom)
        if self._delay_line is not None:
            self._delay_line.push(src)
            fixed = self._delayed[v.delay_mode[self._delayed] == _FIXED]
            if fixed.size:
                xv[fixed] = self._delay_line.read_integer(v.source_row[fixed], self._fixed_int[fixed])
            var = v.delay_mode[mv] == _VARYING if mv.size else np.zeros(0, bool)
            if np.any(var):
                vi = mv[var]
                tau_b = np.concatenate([self._tau[vi][:, None], tau[var]], axis=1) + DelayLine.MIN_DELAY
                xv[vi] = self._delay_line.read_varying(v.source_row[vi], tau_b)
        y = np.zeros((self.n_channels, x.shape[1]), np.float32)
        if mv.size:
            xm = xv[mv]
            on = self.engine.active_voices(xm)
            fp = self._fparams(*geom[:2], gain, air_a, extra)
            if not np.all(on):
                # Silent voices output zeros: jump straight to the filter at the block's end.
                off = ~on
                last = self._spat.tables.filters(fp.at((off, -1)))
                self.engine.set_filters(np.flatnonzero(off), last)
            self._tau[mv] = tau[:, -1]
            y += self.engine.process(xm, fp.at(on) if np.any(on) else None, on, self._threads)
        if sv.size:
            # One thread: sharing the static engine's few long hops measured slower here.
            y += self.static_engine.process(xv[sv])
        if self._eq is not None:
            y = self._eq.process(y)
        if self._reverb is not None:
            send = np.zeros(x.shape[1], np.float32)
            for g, row in zip(self._send.astype(np.float32), x, strict=True):  # fixed order: block-size independent
                if g:
                    send += g * row
            # Delay the send by the look-ahead so the reverb stays aligned with the voices.
            s = np.concatenate([self._send_delay, send])
            self._send_delay = s[len(s) - self.config.lookahead :]
            if self._reverb_rows is None:
                y = y + self._reverb.process(s[: x.shape[1]])
            else:
                y[self._reverb_rows] += self._reverb.process(s[: x.shape[1]])
        self._hop_index += J
        return y

    def _checked(self, block: NDArray[np.floating], sample_rate: int | None) -> NDArray[np.float32]:
        """``block`` as a finite (n_objects, n) float32 array (see :meth:`process`)."""
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise ValueError(
                f"block is at {sample_rate} Hz but the renderer runs at {self.sample_rate} Hz; resample first"
            )
        x = np.asarray(block, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[0] != self.n_inputs:
            raise ValueError(f"block must have shape ({self.n_inputs}, n): one row per scene object, got {x.shape}")
        # max(-min, max) needs no |x| temporary; a NaN anywhere makes it NaN.
        peak = max(-float(x.min()), float(x.max())) if x.size else 0.0
        if not np.isfinite(peak):
            finite = np.isfinite(x)
            self.nonfinite_samples += int(np.count_nonzero(~finite))
            x = np.where(finite, x, np.float32(0.0))
            peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak > self.MAX_INPUT:
            # Not audio; clipped so that no sum of voices can overflow float32 to inf/NaN.
            x = np.clip(x, -self.MAX_INPUT, self.MAX_INPUT)
        return x

    def process(self, block: NDArray[np.floating], sample_rate: int | None = None) -> NDArray[np.float32]:
        """Render one block.

        Parameters
        ----------
        block : ndarray, shape (n_objects, n) or (n,) for a one-object scene
            One mono signal per scene object, in scene order, at :attr:`sample_rate` (float,
            nominal range +-1). Non-finite samples are replaced by 0 and counted in
            :attr:`nonfinite_samples`, magnitudes above :attr:`MAX_INPUT` are clipped (the
            realtime path never raises on audio and never outputs NaN/inf).
        sample_rate : int, optional
            Checked against :attr:`sample_rate` if given (no resampling here).

        Returns
        -------
        ndarray of float32, shape (n_channels, n)
            Output delayed by :attr:`latency_samples`. Not clipped: the offline path reports
            peaks and can limit.
        """
        x = self._checked(block, sample_rate)
        if self._fifo_mode is False:
            raise ValueError("process() after process_units(): reset() first")
        self._fifo_mode = True
        n = x.shape[1]
        fifo = np.concatenate([self._in_fifo, x], axis=1)
        m = (fifo.shape[1] // self.block_unit) * self.block_unit
        if m:
            y = self._process_hops(np.ascontiguousarray(fifo[:, :m]))
            self._out_fifo = np.concatenate([self._out_fifo, y], axis=1)
        self._in_fifo = fifo[:, m:]
        out = self._out_fifo[:, :n]
        self._out_fifo = self._out_fifo[:, n:]
        return np.ascontiguousarray(out)

    def process_units(self, block: NDArray[np.floating]) -> NDArray[np.float32]:
        """Render whole units straight through, without :meth:`process`'s output buffer.

        :meth:`process` takes any block length and so keeps one unit (``block_unit`` samples)
        of output in hand: what it returns was rendered a unit earlier. A caller that always
        gives whole units (the head-tracked player) gets its output here as it is rendered, so
        a head pose read for this call shapes the first sample returned. The samples are
        those of :meth:`process`, ``block_unit`` samples earlier.

        Parameters
        ----------
        block : ndarray, shape (n_objects, n)
            As for :meth:`process`, with ``n`` a multiple of :attr:`block_unit`.

        Returns
        -------
        ndarray of float32, shape (n_channels, n)
            Output delayed by ``config.lookahead`` samples only.

        Raises
        ------
        ValueError
            ``n`` is not a whole number of units, or :meth:`process` was called since the
            last :meth:`reset` (the two keep different buffers).
        """
        x = self._checked(block, None)
        if x.shape[1] % self.block_unit:
            raise ValueError(f"process_units takes whole units of {self.block_unit} samples, got {x.shape[1]}")
        if self._fifo_mode is True:
            raise ValueError("process_units() after process(): reset() first")
        self._fifo_mode = False
        if not x.shape[1]:
            return np.zeros((self.n_channels, 0), np.float32)
        return self._process_hops(np.ascontiguousarray(x))

    __call__ = process
