"""The user-simulator contract shared by every simulator (parametric, LLM, hybrid).

A simulator works on a batch of B users at once. ``sample_users`` draws their hidden state
(``replace_users`` puts new users into some rows in place, for autoreset);
``respond`` answers a batch of slates and updates that state in place; ``end_session`` decides
who comes back (retention) and ``start_session`` opens the next session for them.

``Responses`` carries per-item arrays ``[B, k]`` (click, watch fraction, like, follow, gift,
the ground-truth utility of each shown item), per-user arrays ``[B]`` (leave, satisfaction,
whether an instruction was written) and per-user text (instruction, reasoning, mindset; None
where a user has nothing to say or text was not requested). A simulator that knows the
structured fields of its instructions puts them in ``extra["instruction_vector"]`` (rows of
the instructing users, in order) so the environment need not parse its own templates, and
may put the normalised topics of each user's click in ``extra["clicked_topics"]`` ([B, T]).
``respond(..., active=mask)`` leaves users outside the mask untouched (autoreset slots).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np


@dataclass
class BatchState:
    """A struct of ``[B, ...]`` arrays; rows can be replaced by another batch's rows."""

    def __len__(self) -> int:
        return int(getattr(self, dataclasses.fields(self)[0].name).shape[0])

    def assign(self, rows: np.ndarray, other: Self) -> None:
        """Overwrite rows ``rows`` of every array with ``other`` (len(other) == len(rows))."""
        for f in dataclasses.fields(self):
            getattr(self, f.name)[rows] = getattr(other, f.name)

    def take(self, rows: np.ndarray) -> Self:
        return type(self)(**{f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)})


@dataclass
class Responses:
    """What a batch of users did with its slates (see module docstring)."""

    click: np.ndarray  # [B, k] bool
    watch: np.ndarray  # [B, k] float32 in [0, 1]; 0 where not clicked
    like: np.ndarray  # [B, k] bool
    follow: np.ndarray  # [B, k] bool (a new follow of the item's creator)
    gift: np.ndarray  # [B, k] bool
    utility: np.ndarray  # [B, k] float32 ground-truth utility of each shown item
    leave: np.ndarray  # [B] bool
    satisfaction: np.ndarray  # [B] float32 in [0, 1]
    instructed: np.ndarray  # [B] bool
    instruction: list[str | None] = field(default_factory=list)
    reasoning: list[str | None] = field(default_factory=list)
    mindset: list[str | None] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class UserSimulator(Protocol):
    """Batched simulated users. State arrays are updated in place."""

    def sample_users(self, n_users: int, rng: np.random.Generator) -> BatchState: ...

    def replace_users(
        self, state: BatchState, rows: np.ndarray, rng: np.random.Generator
    ) -> None: ...

    def respond(
        self,
        state: BatchState,
        items: np.ndarray,
        valid: np.ndarray,
        rng: np.random.Generator,
        text: str = "all",
        active: np.ndarray | None = None,
    ) -> Responses: ...

    def end_session(
        self, state: BatchState, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def start_session(
        self, state: BatchState, rows: np.ndarray, rng: np.random.Generator
    ) -> None: ...
