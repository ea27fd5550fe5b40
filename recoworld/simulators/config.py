"""Config of the LLM user (the RecoWorld loop: persona, memory, mindset) shared by the LLM
and hybrid simulators.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recoworld.core.config import StrictModel


class LLMUserConfig(StrictModel):
    """The LLM user (``simulator: llm``): how it decides, and what it remembers."""

    mode: Literal["score", "generate"] = Field(
        "score",
        description="'score': per-item preference from the model's log-probs (contrastive "
        "'You love {likes}' vs '{dislikes}'), choices by the choice model with fatigue, novelty "
        "and position from the user state; reasons and mindset still written by the model. "
        "'generate': the model reviews the slate as JSON (skip/click, watch, like, follow, "
        "gift, reason), rewrites its mindset, rates satisfaction, may write an instruction "
        "and decides to leave. Small models track a persona only in 'score' (docs/platform.md).",
    )
    score_scale: float = Field(
        4.0, ge=0.0, description="score mode: logit units per nat of log-prob contrast."
    )
    parametric_weight: float = Field(
        0.0,
        ge=0.0,
        description="score mode: weight of the parametric interest + latent terms added to the "
        "LLM preference (0 = the LLM alone decides what the user likes).",
    )
    narrate: bool = Field(
        True, description="score mode: the model writes each step's reason and mindset."
    )
    memory_steps: int = Field(
        6, ge=0, description="Recent interactions kept in the prompt (interaction memory)."
    )
    memory_sessions: int = Field(
        3, ge=0, description="Summaries of past sessions kept in the prompt."
    )
    on_invalid: Literal["raise", "record"] = Field(
        "record",
        description="generate mode: what happens when a user's answer still fails validation "
        "after llm.max_repairs re-asks. 'record': that user takes the parametric model's "
        "decision for the step, flagged in decision_source ('fallback_parametric') and counted "
        "(stats['generate_fallback']); 'raise': StructuredOutputError naming the request. "
        "(llm.on_invalid applies to direct backend calls, not to the user's turn.)",
    )
    description_chars: int = Field(
        160, ge=0, description="generate mode: item description characters shown."
    )
    instruction_satisfaction_weight: float = Field(
        0.25,
        ge=0.0,
        description="generate mode: how much satisfaction moves with the share of the slate "
        "that honours the user's active instruction (so following it pays even when the "
        "model ignores its own memory).",
    )
