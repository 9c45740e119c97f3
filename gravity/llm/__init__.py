"""The LLM proposer: model input/output format, GBNF grammar, decoding, llama.cpp runtime.

Modules: :mod:`~gravity.llm.format` (the one place the model's input and answer format is
written, shared with training), :mod:`~gravity.llm.grammar` (per-request GBNF bounds),
:mod:`~gravity.llm.decoding` (token generation with a lazy grammar check and drafts),
:mod:`~gravity.llm.runtime` (model resolution, :class:`SceneLLM`), :mod:`~gravity.llm.config`
(:class:`LLMConfig`, which the CLI's flags are built from), :mod:`~gravity.llm.requant` (cached
re-quantisation) and ``models/`` (Gravity's shipped adapter). Names load lazily: llama.cpp is
imported only when a model is loaded.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "LLMConfig": "config",
    "SceneLLM": "runtime",
    "ModelInfo": "runtime",
    "Proposal": "runtime",
    "resolve_model": "runtime",
    "list_models": "runtime",
    "model_for": "runtime",
    "AnswerError": "format",
    "model_input": "format",
    "encode_scene": "format",
    "parse_answer": "format",
    "grammar": "grammar",
}
__all__ = [
    "LLMConfig",
    "SceneLLM",
    "ModelInfo",
    "Proposal",
    "resolve_model",
    "list_models",
    "model_for",
    "AnswerError",
    "model_input",
    "encode_scene",
    "parse_answer",
    "grammar",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"gravity.llm.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'gravity.llm' has no attribute {name!r}")
