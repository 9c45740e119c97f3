"""The deterministic proposer: the planner (the training teacher) and the phrase parser.

:func:`plan` turns a request into a scene proposal from the class placement table
(:mod:`gravity.defaults`), section and style; :func:`parse_hint` / :func:`parse_prompt` read
plain-language hints into :class:`Placement` values that the planner and the LLM's grammar
pins both follow. Azimuth degrees positive = left, elevation degrees up, distance metres.
"""

from gravity.plan.language import Placement, parse_hint, parse_prompt
from gravity.plan.planner import plan, read_hints

__all__ = ["plan", "read_hints", "Placement", "parse_hint", "parse_prompt"]
