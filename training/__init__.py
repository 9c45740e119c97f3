"""Synthetic data, LoRA fine-tuning, evaluation and convert-to-gguf (issue #6)."""
