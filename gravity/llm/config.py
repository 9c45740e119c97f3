"""The LLM runtime's settings, :class:`LLMConfig`: one frozen dataclass, apart from the runtime
so that the CLI builds its flags from it without importing numpy, the request schema or
llama.cpp (:mod:`gravity.settings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gravity.llm.requant import QUANTS

__all__ = ["LLMConfig"]


@dataclass(frozen=True)
class LLMConfig:
    """How to load and sample the model. ``gravity scene|render|eval|live`` build their LLM flags
    from these fields (:mod:`gravity.settings`: type, default and the first sentence of each entry
    below as help; ``flags`` in the metadata keep the flags' older names).

    Attributes
    ----------
    model_path : str or None
        GGUF model file (default: Gravity's fine-tune if shipped, else the embedded base).
        Resolution order: :func:`gravity.llm.runtime.resolve_model`.
    lora_path : str or None
        GGUF LoRA adapter applied at load time.
    n_gpu_layers : int
        Layers offloaded to a GPU (0 = CPU only, -1 = all).
    n_threads : int or None
        CPU threads for prompt and generation (default: half the cores, at least 1). llama.cpp's
        threads spin at barriers: on a busy machine a second thread made a 2-core box 15x slower
        (measured).
    n_ctx : int
        Context size in tokens.
    seed : int
        Sampling seed.
    temperature : float
        Sampling temperature (0 = greedy).
    top_p : float
        Nucleus sampling: sample among the most likely tokens that hold this probability mass.
    timeout_s : float
        Wall-clock limit of one generation in seconds, then the planner's scene is used.
    use_grammar : bool
        Bound the output with the request's GBNF grammar (off only for benchmarks).
    draft : bool
        Propose the planner's scene as draft tokens (pays where a batch is cheap: GPU offload,
        bigger memory-bound models). Same output, fewer sequential evaluations when the model
        agrees with it (:mod:`gravity.llm.decoding`). Off by default: with the 135M model on a
        2-core CPU a batch costs about as much as its tokens one by one (compute-bound), so
        drafts cost 12-30 % unless nearly all are accepted (measured).
    max_draft : int
        Most draft tokens per evaluation.
    quant : str
        Weight layout to run, re-quantized once and cached on disk (:mod:`gravity.llm.requant`):
        ``auto`` = the embedded Q4_1 model as IQ4_NL (1.35x faster on CPU), other models as they
        are; ``none`` = every file as is; a type re-quantizes whatever model is loaded (``q8_0``
        keeps its weights exactly). IQ4_NL is another 4-bit layout that llama.cpp repacks for the
        CPU: 8-stem scenes 1.35x faster, the adapter's eval unchanged (measured).
    candidates : int
        Scenes the scene critic chooses from: the model's answer, then the planner's scene, then
        more model samples (seeds ``seed + 1``...) at ``temperature``; 1 = the model's answer
        alone. Ranked by adherence to the text, then the critic's score (:mod:`gravity.critic`),
        so the default proposer is never worse than the planner on the critic. 1..16.
    pin_hints : bool
        Write what the phrase parser reads in each hint exactly into the grammar (azimuth,
        elevation, distance, width, motion, where the hard rules allow it), so the model places
        the rest around the user's explicit words; a reading that left words unread (a second
        side, an exception, a reference to another stem: ``Placement.exact`` False) is not
        pinned, the model reads that text itself. Off to measure the model's own reading.
    """

    model_path: str | None = field(default=None, metadata={"flags": ("--model",), "metavar": "GGUF"})
    lora_path: str | None = field(default=None, metadata={"flags": ("--lora",), "metavar": "GGUF"})
    n_gpu_layers: int = field(default=0, metadata={"metavar": "N"})
    n_threads: int | None = field(default=None, metadata={"flags": ("--threads",), "metavar": "N"})
    n_ctx: int = field(default=4096, metadata={"flags": ("--ctx",), "metavar": "TOKENS"})
    seed: int = field(default=0, metadata={"flags": ("--llm-seed",), "metavar": "N"})
    temperature: float = 0.2
    top_p: float = 0.9
    timeout_s: float = field(default=20.0, metadata={"flags": ("--timeout",), "metavar": "SECONDS"})
    use_grammar: bool = field(default=True, metadata={"flags": ("--grammar",)})
    draft: bool = False
    max_draft: int = field(default=16, metadata={"metavar": "TOKENS"})
    quant: str = field(default="auto", metadata={"choices": ("auto", "none", *QUANTS)})
    pin_hints: bool = True
    candidates: int = field(default=2, metadata={"metavar": "N"})

    #: Most candidates: each model candidate is a whole generation.
    MAX_CANDIDATES = 16

    def __post_init__(self) -> None:
        """Refuse values out of range, one line via the settings engine (``--timeout -5`` is an
        error, not a generation that times out at once).
        """
        if not 1 <= self.candidates <= self.MAX_CANDIDATES:
            raise ValueError(f"candidates={self.candidates}: expected 1..{self.MAX_CANDIDATES}")
        checks = (
            ("timeout_s", self.timeout_s >= 0, "a number of seconds >= 0 (0: the planner's scene at once)"),
            ("temperature", 0 <= self.temperature <= 10, "0..10"),
            ("top_p", 0 < self.top_p <= 1, "above 0, at most 1"),
            ("n_ctx", 64 <= self.n_ctx <= 2**20, "64..1048576 tokens"),
            ("n_threads", self.n_threads is None or 1 <= self.n_threads <= 1024, "1..1024 or none"),
            ("n_gpu_layers", self.n_gpu_layers >= -1, "-1 (all), 0 (CPU only) or more"),
            ("seed", 0 <= self.seed <= 2**32 - 1 - self.MAX_CANDIDATES, "0..4294967279 (llama.cpp's 32-bit seed)"),
            ("max_draft", 0 <= self.max_draft <= 1024, "0..1024 tokens"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)}: expected {allowed}")
