"""Every renderer setting, declared once with its default and the reason for it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal, Mapping

__all__ = ["RenderConfig", "Format", "FORMATS", "SPEAKER_CHANNELS", "PLAN_TARGET", "SPEED_OF_SOUND_M_S"]

Format = Literal[
    "binaural", "stereo", "foa", "hoa",
    "5.1", "5.1.2", "5.1.4", "7.1", "7.1.2", "7.1.4", "9.1.6",
    "0+5+0", "2+5+0", "4+5+0", "0+7+0", "4+7+0", "4+9+0",
    "adm",
]  # fmt: skip
#: Loudspeaker formats and their channel counts, the LFE included (layouts, channel order and
#: panner: :mod:`renderer.speakers`; kept here as plain data so the CLI's settings need no numpy).
SPEAKER_CHANNELS: dict[str, int] = {
    "5.1": 6, "5.1.2": 8, "5.1.4": 10, "7.1": 8, "7.1.2": 10, "7.1.4": 12, "9.1.6": 16,
    "0+5+0": 6, "2+5+0": 8, "4+5+0": 10, "0+7+0": 8, "4+7+0": 12, "4+9+0": 14,
}  # fmt: skip
#: The request ``target_format`` a render in a BS.2051-named layout is planned for: the same
#: layout's channel-based name (4+9+0, 9.1.4 with a screen pair, has none: 7.1.4, also with height).
PLAN_TARGET: dict[str, str] = {
    "0+5+0": "5.1", "2+5+0": "5.1.2", "4+5+0": "5.1.4", "0+7+0": "7.1", "4+7+0": "7.1.4", "4+9+0": "7.1.4",
}  # fmt: skip
#: Output formats, in the order the CLI lists them.
FORMATS: tuple[str, ...] = ("binaural", "stereo", "foa", "hoa", *SPEAKER_CHANNELS, "adm")

#: Speed of sound in m/s (dry air at 20 degC), for propagation and reflection delays.
SPEED_OF_SOUND_M_S = 343.0


@dataclass(frozen=True)
class RenderConfig:
    """Renderer settings (frozen; build a new one with :meth:`replace`).

    ``gravity render`` builds one flag per field (:mod:`gravity.settings`: type, default and the
    first sentence of each entry below as help; ``flags`` in the metadata name the flags that
    keep an older name or would clash with the command's own).

    Attributes
    ----------
    fmt : str
        Output format: binaural, stereo, foa, hoa, or a loudspeaker layout (5.1 to 9.1.6, or an
        ITU-R BS.2051 name such as 4+7+0); ``gravity render`` without it renders the format
        the scene was planned for (its request's target_format) where that is one of these,
        else binaural. ``binaural``: 2 channels (left, right) through the HRTF set.
        ``stereo``: 2 channels, equal-power pan from azimuth (+az = left).
        ``foa``: 4 channels AmbiX (ACN order W, Y, Z, X; SN3D). ``hoa``: AmbiX of
        ``ambisonic_order`` ((order + 1)^2 channels). Loudspeaker layouts: one channel per
        loudspeaker in the BS.2051 order (5.1 = 0+5+0: M+030 M-030 M+000 LFE1 M+110 M-110;
        7.1.4 = 4+7+0: L R C LFE, M+-090, M+-135, U+-045, U+-135; 9.1.6 and 7.1.2 at Dolby's
        positions), panned by the EBU ADM Renderer's point-source panner, the LFE silent
        (:mod:`renderer.speakers`). ``adm``: not rendered but exported: the stems as the tracks
        of an ADM BW64 file, the scene as its object metadata (:mod:`renderer.export`; of the
        settings below only ``reference_distance_m``, ``near_clamp_m`` and ``max_spread_deg``
        apply).
    hop : int
        Filter-update interval in samples. Positions are evaluated at every multiple of
        ``hop`` samples (from :func:`gravity.motion.positions_at`) and the filters in between
        are linearly interpolated per sample (output crossfade). 256 samples (5.3 ms at 48 kHz)
        keeps a 360-degree-in-3-s sweep within -59 dB of a per-sample reference; 128 gives
        -73 dB at ~1.5x the cost of moving sources, 512 -48 dB.
    static_hop : int
        Frame hop in samples for voices that never move (static objects and their
        reflections): their filters never change, so they are convolved in longer frames
        (4x fewer FFTs per second at the default). Must be a multiple of ``hop``; it is the
        streaming latency unit (``latency = static_hop + lookahead``, 21.7 ms by default; set
        it to ``hop`` for a 5.7 ms preview).
    lookahead : int
        Samples of look-ahead in front of every filter (``D0``), so the band-limited
        fractional ITD delays (whose sinc tails reach before the onset) stay causal. Part of
        :attr:`Renderer.latency_samples`; compensated in offline renders.
    ambisonic_order : int
        Order for ``fmt="hoa"`` (1..3; default 3, 16 channels). ``foa`` is always order 1.
    hrtf_eq : {"diffuse_field", "none"}
        Binaural equalisation of the HRTF set. ``diffuse_field`` equalises the HRTF set by the
        inverse of its diffuse-field average (1/3-octave smoothed, minimum phase, boost limited
        to ``eq_max_boost_db``): removes the
        direction-independent colour of the measurement (KEMAR: ear-canal resonance, the
        loudspeaker's bass roll-off below ~200 Hz) so headphones sound neutral. ``none`` plays
        the raw HRIRs (used by the tests that compare against the measurements).
    eq_max_boost_db : float
        Largest boost the diffuse-field equaliser may apply, in dB.
    near_clamp_m : float
        Distances below this (metres) are clamped for the 1/r law (no blow-up at the head).
    reference_distance_m : float
        Distance (metres) at which the distance gain is 0 dB (1/r law).
    air_absorption : bool
        One-pole low-pass whose cutoff falls with distance (``air_cutoff_hz`` at 1 m, times
        1/sqrt(r)); ~-1.2 dB at 10 kHz for 10 m, ~-5 dB for 50 m.
    air_cutoff_hz : float
        Air-absorption cutoff at 1 m in Hz (-3 dB of the one-pole at 1 m; above Nyquist,
        so near sources are untouched).
    propagation_delay : bool
        Delay each direct sound by distance / speed of sound (Doppler on moving sources). Off by
        default: a producer expects the stems to stay in time with the grid.
    reverb : bool
        Late reverb (FDN) fed by each object's ``reverb_send``.
    early_reflections : bool
        First-order image sources (shoebox of the scene's ``room_preset``) scaled by each
        object's ``early_reflections``.
    max_spread_deg : float
        Half-angle in degrees of the spread of an object of width 1 (virtual sources span
        ``+-width * max_spread_deg`` around it).
    decorrelation_crossover_hz : float
        Below this frequency the virtual sources of a wide object stay coherent (a wide bass
        stays mono-compatible); above it they are decorrelated.
    full_decorrelation_width : float
        Width at and above which the virtual sources are fully decorrelated; below it the
        decorrelation amount is ``sqrt(width / full_decorrelation_width)``, so a slightly wide
        object (a lead vocal at 0.15) stays focused instead of turning diffuse.
    seed : int
        Seed of the decorrelation filters and the reverb (renders are deterministic).
    threads : int
        Threads that share the moving voices' hops of a block (0 = one per CPU core, at
        most 8). Only blocks of >= 8 hops are split (offline renders; a 512-sample preview
        block stays in one thread). Output is bit-identical for any count. On this 2-core
        VM, 2 threads render 16 moving objects ~10-16 % faster (wall clock) for ~30 % more
        CPU time; static voices always stay in one thread (sharing them measured slower).
    """

    fmt: Format = field(default="binaural", metadata={"flags": ("--format",)})
    hop: int = 256
    static_hop: int = 1024
    lookahead: int = 16
    ambisonic_order: int = 3
    hrtf_eq: Literal["diffuse_field", "none"] = "diffuse_field"
    eq_max_boost_db: float = 24.0
    near_clamp_m: float = 0.25
    reference_distance_m: float = 1.0
    air_absorption: bool = True
    air_cutoff_hz: float = 44700.0
    propagation_delay: bool = False
    reverb: bool = True
    early_reflections: bool = True
    max_spread_deg: float = 60.0
    decorrelation_crossover_hz: float = 250.0
    full_decorrelation_width: float = 0.6
    seed: int = field(default=0, metadata={"flags": ("--render-seed",)})  # --seed: the proposer's
    threads: int = field(default=0, metadata={"flags": ("--render-threads",)})  # --threads: llama.cpp's

    def __post_init__(self) -> None:
        """Check every field; a bad value raises ValueError naming it and its range."""
        if self.fmt not in FORMATS:
            raise ValueError(f"fmt={self.fmt!r} must be one of {FORMATS}")
        if not (isinstance(self.hop, int) and 16 <= self.hop <= 4096):
            raise ValueError(f"hop={self.hop!r} must be an integer number of samples in [16, 4096]")
        if not (isinstance(self.static_hop, int) and self.static_hop >= self.hop and self.static_hop % self.hop == 0):
            raise ValueError(f"static_hop={self.static_hop!r} must be a multiple of hop={self.hop} samples")
        if not (isinstance(self.lookahead, int) and 4 <= self.lookahead <= 256):
            raise ValueError(f"lookahead={self.lookahead!r} must be an integer in [4, 256] samples")
        if self.hrtf_eq not in ("diffuse_field", "none"):
            raise ValueError(f"hrtf_eq={self.hrtf_eq!r} must be 'diffuse_field' or 'none'")
        order = self.ambisonic_order if self.fmt == "hoa" else 1
        if not (isinstance(order, int) and 1 <= order <= 3):
            raise ValueError(f"ambisonic_order={self.ambisonic_order!r} must be 1, 2 or 3")
        if not (self.near_clamp_m > 0 and self.reference_distance_m > 0):
            raise ValueError("near_clamp_m and reference_distance_m must be > 0 metres")
        if not (isinstance(self.threads, int) and 0 <= self.threads <= 64):
            raise ValueError(f"threads={self.threads!r} must be an integer in [0, 64] (0 = auto)")
        if not (self.air_cutoff_hz > 0 and 0 <= self.max_spread_deg <= 180):
            raise ValueError("air_cutoff_hz must be > 0 Hz and max_spread_deg in [0, 180] degrees")

    @property
    def n_channels(self) -> int:
        """Output channel count of :attr:`fmt`."""
        if self.fmt == "adm":  # one track per stem: the scene knows, not the config
            raise ValueError("fmt='adm' is exported (renderer.export), not rendered: no channel count")
        if self.fmt in ("binaural", "stereo"):
            return 2
        if self.fmt in SPEAKER_CHANNELS:
            return SPEAKER_CHANNELS[self.fmt]
        order = 1 if self.fmt == "foa" else self.ambisonic_order
        return (order + 1) ** 2

    def replace(self, **changes: Any) -> "RenderConfig":
        """Return a copy with some fields changed; unknown names are an error."""
        return RenderConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (logged and stored in render reports)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RenderConfig":
        """Build from a mapping; unknown keys raise :class:`ValueError` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown RenderConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(d))
