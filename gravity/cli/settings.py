"""The settings each subcommand takes, built from the config dataclasses (:mod:`gravity.settings`).

* ``gravity scene|render|live`` take the LLM flags built from
  :class:`gravity.llm.runtime.LLMConfig` (:func:`add_llm_args`, read back by :func:`llm_config`);
  ``gravity eval`` adds the same group from :mod:`training.cli` with greedy, patient defaults.
* ``gravity render`` takes one flag per :class:`renderer.config.RenderConfig` field
  (:func:`add_render_args`, :func:`render_config`).
* ``gravity data|train`` take ``--set KEY=VALUE`` overrides of ``DataConfig`` / ``TrainConfig``
  (:mod:`training.cli`, through :func:`gravity.settings.load`).

A bad value is one line naming the flag or key and what is allowed, exit 2. The config modules
are imported when the chosen subcommand's parser is built, never at import time; neither pulls a
heavy library (``gravity.llm.runtime`` imports llama.cpp only when a model loads,
``renderer.config`` is standard library only).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from gravity.settings import SettingsError, add_arguments, from_args

if TYPE_CHECKING:
    from gravity.llm.config import LLMConfig
    from renderer.config import RenderConfig

__all__ = ["add_llm_args", "llm_config", "add_render_args", "render_config", "SettingsError"]


def add_llm_args(p: argparse.ArgumentParser, **defaults: Any) -> None:
    """One flag per :class:`~gravity.llm.runtime.LLMConfig` field (``--model``, ``--threads`` ...,
    ``--quant``, ``--pin-hints/--no-pin-hints``); ``defaults`` replaces some fields' defaults.
    """
    from gravity.llm.config import LLMConfig

    add_arguments(p, LLMConfig, title="LLM runtime", defaults=defaults)  # the same title in training.cli (eval)


def llm_config(args: argparse.Namespace) -> LLMConfig:
    """The :func:`add_llm_args` flags as an LLM config; ``model_path`` is ``--model`` as given
    (None: resolved when the model is loaded, see :func:`gravity.llm.runtime.model_for`).
    """
    from gravity.llm.config import LLMConfig

    return from_args(LLMConfig, args)


def add_render_args(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`~renderer.config.RenderConfig` field (``--format``, ``--hop`` ...)."""
    from renderer.config import RenderConfig  # the CLI is the one place rooms meet

    add_arguments(p, RenderConfig, title="renderer")


def render_config(args: argparse.Namespace) -> RenderConfig:
    """The :func:`add_render_args` flags as a render config (its range checks raise
    :class:`~gravity.settings.SettingsError`).
    """
    from renderer.config import RenderConfig

    return from_args(RenderConfig, args)
