"""Synthetic data, LoRA fine-tuning, evaluation and convert-to-gguf (issue #6).

Modules (import them directly; this package imports nothing heavy):

* :mod:`training.data` -- deterministic request + phrase-grammar generator, teacher targets
  in :mod:`gravity.llm.format` format, held-out templates and vocabulary, manifest.
* :mod:`training.train` -- :class:`~training.train.TrainConfig` and the prompt-masked
  LoRA / QLoRA loop (transformers + peft, accelerate for multi-GPU).
* :mod:`training.evaluate` -- ``gravity eval``: raw and post-rule pass rates, teacher and
  hint agreement, tokens and latency; JSON + Markdown.
* :mod:`training.convert` -- merge, GGUF f16, ``llama_model_quantize``, GGUF LoRA, parity.
* :mod:`training.cli` -- ``add_*_arguments`` / ``run_*`` for the ``gravity`` CLI.
"""

__all__ = ["data", "train", "evaluate", "convert", "cli"]
