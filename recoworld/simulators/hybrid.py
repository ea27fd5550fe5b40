"""The hybrid simulator: parametric users decide, an LLM speaks when there is something to say.

Actions (clicks, watch, likes, follows, gifts, leaving) and the *fields* of every
instruction (more of / less of which topics, something new) come from the parametric model
and its hidden state, exactly as in the parametric world: for the same seed the two worlds
take the same trajectory. The LLM is asked only for the few users who write an instruction
this step, all in one batch, and only when the world keeps text (``text_info`` other than
"none"): it rewrites the templated sentence in the user's voice, given
its persona. A paraphrase is kept only if it looks like something a user typed (no markup,
no echo of the prompt, not cut off: ``looks_clean``) and ``InstructionParser`` reads it back
to the same fields; otherwise the template stands and the fallback is counted (invalid
output, unclean text, or a mismatch), so the recommender never reads a sentence that says
something the user does not want. docs/platform.md measured that the embedded 135M model cannot
verbalise a state (0-1 % correct): with it, expect the template to stand almost always; a
capable model (an HF directory or an OpenAI-compatible server, via ``LLMConfig``) produces
real language through the same path.

A paraphrase costs one batched engine call per step, as long as its longest answer: each
request gets ``PARAPHRASE_MAX_TOKENS`` (a 200-character sentence in JSON needs ~60 tokens;
the embedded model sometimes runs on with emoji or digit runs to the whole budget, and
the batch waits for it), and an invalid answer is not re-asked (``max_repairs=0``): the
template is the fallback either way, and a repair round is a second serial engine call.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pydantic import BaseModel, Field

from recoworld.catalog.catalog import Catalog
from recoworld.llm.base import LLMBackend
from recoworld.llm.prompts import chat_request
from recoworld.simulators.base import Responses
from recoworld.simulators.instructions.lexical import InstructionParser
from recoworld.simulators.parametric.config import ParametricUserConfig
from recoworld.simulators.parametric.model import ParametricUserModel
from recoworld.simulators.parametric.state import FittedPopulation, UserState

PARAPHRASE_MAX_TOKENS = 96
"""Completion budget of a paraphrase: ``Paraphrase.text`` is at most 200 characters, ~60
tokens of English in its JSON (2+ characters a token leaves room); the answers that ran
past it in docs/results/benchmarks.md were degenerate (emoji, digit runs)."""

PROMPT_ECHOES = ("json", "name each", "you want more of", "you want less of", "in your own words",
                 "reply as", "the app:", "data>")  # fmt: skip


def looks_clean(text: str) -> bool:
    """A sentence a user could have typed: no markup, no echo of the prompt's wording, and a
    finished last sentence (not cut off at the token limit)."""
    t = text.strip()
    low = t.lower()
    return (
        len(t) >= 8
        and "<" not in t
        and ">" not in t
        and t[-1] in ".!?"
        and not any(echo in low for echo in PROMPT_ECHOES)
    )


class Paraphrase(BaseModel):
    """What the LLM returns for an instruction paraphrase."""

    text: str = Field(min_length=3, max_length=200)


class HybridUserModel(ParametricUserModel):
    """Parametric behaviour + LLM-written instructions (see module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        config: ParametricUserConfig | None = None,
        population: FittedPopulation | None = None,
        backend: LLMBackend | None = None,
        parser: InstructionParser | None = None,
    ) -> None:
        super().__init__(catalog, config, population)
        if backend is None:
            raise ValueError("the hybrid simulator needs an LLM backend")
        self.backend = backend
        self.parser = parser or InstructionParser(catalog.topic_names)
        self.stats = {"instructions": 0, "paraphrased": 0, "fallback_invalid": 0,
                      "fallback_unclean": 0, "fallback_mismatch": 0}  # fmt: skip

    def say_instructions(
        self, state: UserState, who: np.ndarray, vectors: np.ndarray, resp: Responses
    ) -> None:
        """Templates first (the fallback), then one LLM batch for the users ``who``; records
        per user where the sentence came from in ``resp.extra["paraphrase_outcome"]``."""
        super().say_instructions(state, who, vectors, resp)
        resp.extra["paraphrase_outcome"] = self._paraphrase(state, who, vectors, resp)

    def _paraphrase(
        self, state: UserState, who: np.ndarray, vectors: np.ndarray, resp: Responses
    ) -> np.ndarray:
        names = self.catalog.topic_names
        people = self.personas(state, who)
        requests = []
        for j, b in enumerate(who):
            vec = vectors[j]
            request = chat_request(
                "instruction_paraphrase",
                request_id=f"hybrid/row-{b}/session-{state.session_index[b]}"
                f"/step-{state.session_step[b]}",
                persona=people[j].describe(),
                sentence=resp.instruction[b],
                more=[names[t] for t in np.flatnonzero(vec[:-1] > 0)],
                less=[names[t] for t in np.flatnonzero(vec[:-1] < 0)],
                novelty=bool(vec[-1]),
            )
            requests.append(dataclasses.replace(request, max_tokens=PARAPHRASE_MAX_TOKENS))
        completions = self.backend.generate(
            requests, Paraphrase, on_invalid="record", max_repairs=0
        )
        outcome = np.empty(len(who), dtype=object)
        for j, (b, c) in enumerate(zip(who, completions, strict=True)):
            if not c.ok:
                outcome[j] = "fallback_invalid"
            elif not looks_clean(c.parsed.text):  # type: ignore[union-attr]
                outcome[j] = "fallback_unclean"
            elif np.array_equal(self.parser.vector(c.parsed.text), vectors[j]):  # type: ignore[union-attr]
                resp.instruction[b] = c.parsed.text  # type: ignore[union-attr]
                outcome[j] = "paraphrased"
            else:
                outcome[j] = "fallback_mismatch"
            self.stats[outcome[j]] += 1
        self.stats["instructions"] += len(who)
        return outcome
