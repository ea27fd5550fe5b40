"""LLM re-ranker: an LLM picks k of the M candidates from the user's history and request.

For each of the B users of a (batched) observation one chat request is rendered from the
``reranker`` prompt templates (``recoworld/prompts/reranker.*.jinja``): the titles of the
user's recent clicks (``observation["recent_ids"]`` via the catalog), the user's latest
instruction, and the M candidates numbered 1..M with title and topics. Titles and the
user's words are data and go through the ``fence`` filter. All B requests go to
``LLMBackend.generate`` in one call, with a schema of exactly k distinct candidate numbers
in 1..M (``rerank_schema``): the backend's guided decoding and validation enforce it, and
an invalid answer (duplicates, out of range, wrong length) is re-asked up to the backend's
``max_repairs``. An answer that still fails comes back recorded (``on_invalid="record"``)
and that user gets the most popular candidates instead; ``stats["fallback"]`` counts them.

Where the instruction text comes from: the observation carries only the parsed vector; the
text is in the env's step ``info["instruction"]``. The re-ranker therefore implements
``update(..., info)`` (the ``OnlineRecommender`` hook) to remember each user slot's latest
instruction text, and forgets it when that slot's session ends (as the observation does).
A slot whose observation has an active instruction but no remembered text (``update`` not
called, or ``episode.text_info="none"``) gets the parsed fields rendered as text ("more
Comedy; less Horror; something new"). An observation without an active instruction shows
none.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field, create_model, model_validator

from recoworld.catalog.catalog import Catalog
from recoworld.core.config import StrictModel
from recoworld.llm.base import LLMBackend
from recoworld.llm.prompts import chat_request
from recoworld.llm.types import ChatRequest
from recoworld.policies.base import batched, batched_info, require, step_mask, top_k, unbatch


class RerankerConfig(StrictModel):
    """LLM re-ranker settings."""

    history: int = Field(10, ge=0, description="Recent clicked titles shown (<= H).")
    temperature: float | None = Field(
        0.0, ge=0.0, le=2.0, description="Sampling temperature (None: the backend's)."
    )
    max_tokens: int | None = Field(
        None, ge=8, description="Completion budget (None: 16 + 6 per slate slot)."
    )


class _Picks(BaseModel):
    picks: list[int]

    @model_validator(mode="after")
    def _distinct(self) -> _Picks:
        if len(set(self.picks)) != len(self.picks):
            raise ValueError("picks must be different candidate numbers (no repeats)")
        return self


@lru_cache(maxsize=32)
def rerank_schema(k: int, m: int) -> type[BaseModel]:
    """The answer: exactly ``k`` distinct candidate numbers in 1..``m``."""
    if not 1 <= k <= m:
        raise ValueError(f"rerank_schema: need 1 <= k <= m, got k={k}, m={m}")
    return create_model(
        "RerankPicks",
        __base__=_Picks,
        picks=(list[Annotated[int, Field(ge=1, le=m)]], Field(min_length=k, max_length=k)),
    )


def describe_instruction(vector: np.ndarray, topic_names: list[str]) -> str:
    """The parsed instruction fields as text ("" when none)."""
    t = len(topic_names)
    more = [topic_names[i] for i in np.flatnonzero(vector[:t] > 0)]
    less = [topic_names[i] for i in np.flatnonzero(vector[:t] < 0)]
    parts = []
    if more:
        parts.append("more " + ", ".join(more))
    if less:
        parts.append("less " + ", ".join(less))
    if t < len(vector) and vector[t] > 0:
        parts.append("something new")
    return "; ".join(parts)


class LLMRerankerRecommender:
    """Batched LLM re-ranking over one ``LLMBackend`` (see the module docstring)."""

    name = "llm_rerank"

    def __init__(
        self,
        catalog: Catalog,
        backend: LLMBackend,
        slate_size: int,
        popularity_index: int,
        config: RerankerConfig | None = None,
        owns_backend: bool = False,
    ) -> None:
        if slate_size < 1:
            raise ValueError(f"slate_size must be >= 1, got {slate_size}")
        self.catalog = catalog
        self.backend = backend
        self.slate_size = slate_size
        self.popularity_index = popularity_index
        self.config = config or RerankerConfig()
        self.owns_backend = owns_backend
        self.instruction_text: dict[int, str] = {}  # user slot -> latest instruction text
        self.stats = {"acts": 0, "requests": 0, "llm": 0, "fallback": 0}
        self._calls = 0

    # ------------------------------------------------------------------ prompts
    def requests(self, observation: dict[str, np.ndarray]) -> list[ChatRequest]:
        """One chat request per user of a (batched) observation."""
        obs, _ = batched(observation)
        require(obs, ("candidates", "candidate_ids", "recent_ids", "instruction"), "LLMReranker")
        items = np.asarray(obs["candidate_ids"], dtype=np.int64)
        recent = np.asarray(obs["recent_ids"], dtype=np.int64)
        instruction = np.asarray(obs["instruction"])
        b, m = items.shape
        k = self.slate_size
        if k > m:
            raise ValueError(f"LLMReranker: slate size {k} exceeds the {m} candidates")
        if items.min() < 0 or items.max() >= self.catalog.n_items:
            raise ValueError("LLMReranker: candidate items outside its catalog")
        titles, names = self.catalog.titles, self.catalog.topic_names
        example = ", ".join(["<number>"] * k)
        out = []
        for row in range(b):
            history = [titles[i] for i in recent[row] if i >= 0][: self.config.history]
            text = ""
            if (instruction[row] != 0).any():
                text = self.instruction_text.get(row) or describe_instruction(
                    instruction[row], names
                )
            candidates = [
                {"title": titles[i], "topics": ", ".join(self.catalog.topic_list(i))}
                for i in items[row]
            ]
            req = chat_request(
                "reranker", request_id=f"rerank-{self._calls}-{row}", k=k, history=history,
                instruction=text, candidates=candidates, example=example,
            )  # fmt: skip
            out.append(
                ChatRequest(
                    messages=req.messages,
                    request_id=req.request_id,
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_tokens or 16 + 6 * k,
                )
            )
        return out

    # ------------------------------------------------------------------ protocol
    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs, single = batched(observation)
        requests = self.requests(obs)
        b, m = np.shape(obs["candidate_ids"])
        k = self.slate_size
        self._calls += 1
        completions = self.backend.generate(requests, rerank_schema(k, m), on_invalid="record")
        popular = top_k(np.asarray(obs["candidates"])[..., self.popularity_index], k)
        slates = popular.copy()
        for row, c in enumerate(completions):
            if c.parsed is None:
                self.stats["fallback"] += 1
                continue
            slates[row] = np.asarray(c.parsed.picks, dtype=np.int64) - 1  # type: ignore[attr-defined]
            self.stats["llm"] += 1
        self.stats["acts"] += 1
        self.stats["requests"] += b
        return unbatch(slates, single)

    def update(
        self,
        observation: dict[str, np.ndarray],
        slate: np.ndarray,
        reward: np.ndarray,
        next_observation: dict[str, np.ndarray],
        done: np.ndarray,
        info: dict[str, Any],
    ) -> None:
        """Remember each slot's latest instruction text; forget it when the slot's session
        or life ends (the re-ranker learns nothing else)."""
        obs, single = batched(observation)
        info = batched_info(info, single)
        b = len(obs["candidates"])
        stepped = step_mask(info, b)
        texts = info.get("instruction")
        instructed = np.asarray(info.get("instructed", np.zeros(b, bool)), bool).reshape(b)
        if texts is not None:
            for row in np.flatnonzero(instructed & stepped):
                if texts[row]:
                    self.instruction_text[int(row)] = str(texts[row])
        # a new session (or a new user in the slot) starts without an instruction
        ended = np.asarray(info.get("session_end", np.zeros(b, bool)), bool).reshape(b)
        ended = (ended & stepped) | np.asarray(done, dtype=bool).reshape(b)
        for row in np.flatnonzero(ended):
            self.instruction_text.pop(int(row), None)

    def close(self) -> None:
        """Close the backend if this re-ranker started it."""
        if self.owns_backend:
            self.backend.close()
            self.owns_backend = False
