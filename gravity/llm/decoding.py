"""Grammar-bounded decoding on llama.cpp with a reusable prompt cache and drafted tokens.

Three things make a scene cheap to generate on a laptop CPU:

* **Prompt cache.** The tokens in the context are remembered; a new prompt only evaluates
  what follows the longest common prefix (the fixed system text, at least). The system text's
  keys and values are also kept on disk (:meth:`Decoder.load_prefix`), so a new process (each
  ``gravity scene``) skips evaluating it: ~45 % of an 8-stem prompt, ~0.7 s on 2 CPU cores.
* **Lazy grammar.** llama.cpp's grammar sampler filters the whole vocabulary (49k tokens for
  SmolLM2) at every step. Here each token is first sampled without it and only *checked*
  against the grammar (a one-token candidate list); only a rejected token is re-sampled
  through the grammar. The result has exactly the constrained distribution:
  ``p(t) + (1 - S) p(t) / S = p(t) / S`` for a valid t, S the valid mass.
* **Drafts.** A caller-supplied draft (the deterministic planner's scene in the model's
  output format) is proposed a few tokens at a time; they are evaluated in one batch and
  each position is sampled from the model as usual, keeping drafted tokens while they match
  (speculative decoding with a free draft); after the model departs from it, its own earlier
  lines are proposed where the line it is writing repeats one. Every position is still sampled from the model,
  so a draft does not steer the text; only the number of sequential evaluations changes
  (up to the last bits of the logits: a batch is computed by other kernels than a single
  token, so a greedy near-tie can flip). A fine-tuned model agrees with its teacher on most
  fields, so most tokens come in batches.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["Decoder", "DecodeStats", "LineDraft"]

log = logging.getLogger(__name__)


@dataclass
class DecodeStats:
    """Numbers of one generation (times in seconds)."""

    tokens_in: int = 0
    tokens_cached: int = 0
    tokens_out: int = 0
    ttft_s: float = 0.0
    total_s: float = 0.0
    evals: int = 0  # sequential model evaluations after the prompt
    drafted: int = 0  # draft tokens evaluated
    accepted: int = 0  # draft tokens kept
    grammar_resamples: int = 0  # tokens the lazy check rejected
    timed_out: bool = False
    finish: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The counters as a dict, floats (seconds) rounded to 4 decimals."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


class LineDraft:
    """Draft continuations from a reference answer, aligned line by line, and from the answer's
    own earlier lines.

    While the partial line the model is writing is a prefix of the reference's line of the
    same index, the rest of that line and the following lines are proposed. After the model
    departs from it, an earlier line of the answer that starts with the partial line is
    proposed to its end (models repeat lines: low stems share the centre, an untrained model
    writes the same line again); failing that, the reference resumes at the next field
    (space) or line boundary.

    Parameters
    ----------
    reference : str
        The reference answer (e.g. the planner's scene in the model's output format).
    """

    def __init__(self, reference: str) -> None:
        self.lines = reference.splitlines(keepends=True)

    def __call__(self, text: str) -> str:
        """Proposed continuation of ``text`` (the answer so far); "" for none."""
        n = text.count("\n")
        partial = text[text.rfind("\n") + 1 :]
        line = self.lines[n] if n < len(self.lines) else ""
        rest = "".join(self.lines[n + 1 :])
        if line and line.startswith(partial):
            return line[len(partial) :] + rest
        if partial and n >= 2:  # line 0 is the room; an earlier stem line that goes on like this one
            for prev in reversed(text.split("\n")[1:n]):
                if prev.startswith(partial) and len(prev) > len(partial):
                    return prev[len(partial) :] + "\n"
        if line and partial.endswith(" "):  # departed earlier in the line: realign at the next field
            fields = line.rstrip("\n").split(" ")
            k = partial.count(" ")
            if k < len(fields):
                return " ".join(fields[k:]) + "\n" + rest
        return ""


@dataclass
class _Sampling:
    temperature: float
    top_p: float
    seed: int


class Decoder:
    """Decoding on a loaded ``llama_cpp.Llama`` (uses its context and batch directly).

    Not thread-safe: the owner serialises calls (one context, one KV cache).

    Parameters
    ----------
    llm : llama_cpp.Llama
        The loaded model.
    max_draft : int
        Most draft tokens evaluated with one sampled token.
    """

    def __init__(self, llm: Any, max_draft: int = 16) -> None:
        import llama_cpp

        self._lc = llama_cpp
        self.llm = llm
        self.max_draft = max_draft
        self._vocab = llm._model.vocab
        self._ctx = llm._ctx
        self._batch = llm._batch
        self._n_batch = llm.n_batch
        self._kv: list[int] = []  # tokens whose keys/values are in the context, in order
        one = (llama_cpp.llama_token_data * 1)()
        self._one = one
        self._one_arr = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)

    # ------------------------------------------------------------------ samplers
    def _chain(self, s: _Sampling, gbnf: str | None) -> Any:
        lc = self._lc
        ch = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if gbnf:
            g = lc.llama_sampler_init_grammar(self._vocab, gbnf.encode("utf-8"), b"root")
            if not g:
                lc.llama_sampler_free(ch)
                raise ValueError("llama.cpp rejected the grammar")
            lc.llama_sampler_chain_add(ch, g)
        if s.temperature <= 0:
            lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_greedy())
        else:
            lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_top_k(40))
            lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_top_p(s.top_p, 1))
            lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_min_p(0.05, 1))
            lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_temp(s.temperature))
            lc.llama_sampler_chain_add(ch, lc.llama_sampler_init_dist(s.seed))
        return ch

    def _allowed(self, grammar: Any, token: int) -> bool:
        """Whether the grammar (in its current state) accepts ``token`` next."""
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0  # type: ignore[assignment]  # ctypes converts
        self._one_arr.size, self._one_arr.selected, self._one_arr.sorted = 1, -1, False
        self._lc.llama_sampler_apply(grammar, ctypes.byref(self._one_arr))
        return math.isfinite(self._one[0].logit)

    # ------------------------------------------------------------------ context
    def _decode(self, tokens: list[int], logits_all: bool) -> None:
        """Evaluate tokens after the cached ones (in n_batch chunks)."""
        for i in range(0, len(tokens), self._n_batch):
            chunk = tokens[i : i + self._n_batch]
            self._batch.set_batch(chunk, n_past=len(self._kv), logits_all=logits_all)
            self._ctx.decode(self._batch)
            self._kv.extend(chunk)

    def _truncate(self, n: int) -> None:
        """Forget the cached tokens from position n on."""
        if n < len(self._kv):
            self._ctx.kv_cache_seq_rm(-1, n, -1)
            del self._kv[n:]

    def reset(self) -> None:
        """Empty the prompt cache."""
        self._truncate(0)

    def load_prefix(self, tokens: list[int], path: Path | None) -> str:
        """Make the context start with ``tokens`` (the prompt text every request shares),
        evaluated as a batch of its own: read from ``path`` where an earlier process wrote it,
        else evaluated and written there (atomically; a failure to write is logged, not raised).

        The prefix is always its own batch, so its keys and values are the same numbers whether
        they come from the file or from evaluation: a process that read the file writes what one
        that evaluated writes.

        Returns
        -------
        str
            ``"context"`` (already there), ``"file"`` or ``"evaluated"``.
        """
        if self._kv[: len(tokens)] == tokens:
            return "context"
        self._truncate(0)
        if path is not None and path.is_file() and self._read_state(tokens, path):
            return "file"
        self._decode(tokens, logits_all=False)
        if path is not None:
            self._write_state(tokens, path)
        return "evaluated"

    def _read_state(self, tokens: list[int], path: Path) -> bool:
        lc, n = self._lc, len(tokens)
        got, count = (lc.llama_token * n)(), ctypes.c_size_t(0)
        read = lc.llama_state_seq_load_file(self._ctx.ctx, str(path).encode(), 0, got, n, ctypes.byref(count))
        if read and count.value == n and list(got) == tokens:
            self._kv = list(tokens)
            return True
        self._ctx.kv_cache_seq_rm(-1, 0, -1)  # a stale or foreign file: evaluate instead
        log.info("%s: not this prompt's state; evaluating it", path)
        return False

    def _write_state(self, tokens: list[int], path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            arr = (self._lc.llama_token * len(tokens))(*tokens)
            if not self._lc.llama_state_seq_save_file(self._ctx.ctx, str(tmp).encode(), 0, arr, len(tokens)):
                raise OSError("llama.cpp could not write it")
            os.replace(tmp, path)
        except OSError as exc:  # an unwritable cache (a file where its folder should be...) is no error
            log.info("%s: prompt state not cached (%s)", path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    # ------------------------------------------------------------------ generate
    def generate(
        self,
        prompt_tokens: list[int],
        gbnf: str | None,
        *,
        max_tokens: int,
        temperature: float = 0.2,
        top_p: float = 0.9,
        seed: int = 0,
        deadline: float | None = None,
        draft: Callable[[str], str] | None = None,
        lazy_grammar: bool = True,
    ) -> tuple[str, DecodeStats]:
        """Generate until the grammar ends, an end-of-generation token, max_tokens or deadline.

        Parameters
        ----------
        prompt_tokens : list of int
            The prompt, tokenised (with BOS if the model wants one).
        gbnf : str or None
            GBNF grammar (root rule ``root``) bounding the output.
        max_tokens : int
            Most tokens generated.
        temperature, top_p, seed : sampling (temperature 0 = greedy).
        deadline : float, optional
            ``time.perf_counter()`` value after which generation stops (``timed_out``).
        draft : callable, optional
            ``draft(text_so_far) -> proposed continuation`` (e.g. :class:`LineDraft`).
        lazy_grammar : bool
            Check sampled tokens against the grammar (True) or filter the whole vocabulary
            through it at every step, as llama.cpp's sampler chain does (benchmarks).

        Returns
        -------
        text : str
        stats : DecodeStats
        """
        lc, llm = self._lc, self.llm
        st = DecodeStats(tokens_in=len(prompt_tokens))
        t0 = time.perf_counter()
        s = _Sampling(temperature, top_p, seed)
        free, full = self._chain(s, None), self._chain(s, gbnf)
        grammar = lc.llama_sampler_chain_get(full, 0) if gbnf else None
        try:
            # Prompt: reuse the common prefix, evaluate the rest (>= 1 token for fresh logits).
            common = 0
            for a, b in zip(self._kv, prompt_tokens, strict=False):
                if a != b:
                    break
                common += 1
            common = min(common, len(prompt_tokens) - 1)
            st.tokens_cached = common
            self._truncate(common)
            self._decode(prompt_tokens[common:], logits_all=False)
            idx = self._batch.n_tokens() - 1  # batch row whose logits give the next token
            out: list[int] = []
            k = min(4, self.max_draft)  # adaptive draft length

            def sample(i: int) -> int:
                if grammar is not None and not lazy_grammar:
                    return lc.llama_sampler_sample(full, self._ctx.ctx, i)
                t = lc.llama_sampler_sample(free, self._ctx.ctx, i)
                if grammar is not None and not self._allowed(grammar, t):
                    st.grammar_resamples += 1
                    return lc.llama_sampler_sample(full, self._ctx.ctx, i)  # accepts into the grammar
                if grammar is not None:
                    lc.llama_sampler_accept(full, t)
                return t

            def done(t: int) -> bool:
                if lc.llama_vocab_is_eog(self._vocab, t):
                    st.finish = "stop"
                    return True
                if len(out) >= max_tokens:
                    st.finish = "length"
                    return True
                if deadline is not None and time.perf_counter() > deadline:
                    st.timed_out, st.finish = True, "timeout"
                    return True
                return False

            t = sample(idx)
            st.ttft_s = time.perf_counter() - t0
            while not done(t):
                out.append(t)
                if k == 0 and b"\n" in llm.detokenize([t]):  # a new line: draft again
                    k = min(4, self.max_draft)
                proposal: list[int] = []
                if draft is not None and k > 0:
                    text = llm.detokenize(out).decode("utf-8", errors="ignore")
                    cont = draft(text)
                    if cont:
                        proposal = llm.tokenize(cont.encode("utf-8"), add_bos=False, special=False)[:k]
                base = len(self._kv)
                self._decode([t, *proposal], logits_all=bool(proposal))
                st.evals += 1
                st.drafted += len(proposal)
                # Row 0 holds the logits after t; row i those after proposal[i - 1].
                nxt = sample(0)
                kept = 0
                while kept < len(proposal) and nxt == proposal[kept] and not done(nxt):
                    out.append(nxt)
                    kept += 1
                    nxt = sample(kept)
                st.accepted += kept
                self._truncate(base + 1 + kept)
                if proposal:
                    # A batch costs about its tokens on a compute-bound CPU: a fully rejected
                    # draft stops drafting until the next line.
                    k = min(self.max_draft, 2 * k) if kept == len(proposal) else kept
                t = nxt
            st.tokens_out = len(out)
            text = llm.detokenize(out).decode("utf-8", errors="ignore")
            st.total_s = time.perf_counter() - t0
            return text, st
        finally:
            lc.llama_sampler_free(free)
            lc.llama_sampler_free(full)
