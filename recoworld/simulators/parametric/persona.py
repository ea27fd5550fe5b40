"""Personas: a simulated user's profile, kept structured in code and rendered to text only
for prompts.

docs/platform.md measured that small models read negations badly ("you can't stand jazz" reads
as "jazz is relevant"), so the structure — liked topics, disliked topics, novelty appetite,
mood — stays in code; ``Persona.describe`` writes a short positive-first sentence for the
system prompt, and contrastive prompts can use ``likes`` and ``dislikes`` separately.
A persona is derived from the hidden state of parametric users (including users fitted to
MovieLens raters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from recoworld.catalog.catalog import Catalog

if TYPE_CHECKING:
    from recoworld.simulators.parametric.state import UserState


@dataclass(frozen=True)
class Persona:
    likes: tuple[str, ...]
    dislikes: tuple[str, ...]
    novelty: str  # "loves discovering new things" | "likes some variety" | "sticks to favourites"
    mood: str

    def describe(self) -> str:
        text = f"a viewer who loves {_join(self.likes)}"
        if self.dislikes:
            text += f" and finds {_join(self.dislikes)} boring"
        return f"{text}; {self.novelty}; right now {self.mood}"


def _join(items: tuple[str, ...]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def novelty_phrase(propensity: float) -> str:
    if propensity >= 0.6:
        return "loves discovering new things"
    if propensity >= 0.3:
        return "likes some variety"
    return "sticks to favourites"


def mood_phrase(satisfaction: float) -> str:
    if satisfaction > 0.6:
        return "enjoying this"
    if satisfaction > 0.35:
        return "only half interested"
    return "getting bored"


def personas(
    state: UserState,
    rows: np.ndarray,
    catalog: Catalog,
    n_likes: int = 3,
    n_dislikes: int = 2,
    base: np.ndarray | None = None,
) -> list[Persona]:
    """Personas of users ``rows`` from their hidden interests, session novelty and mood.
    With ``base`` ([T], the population's mean interest — users fitted to real data), tastes
    are read relative to it: a genre everyone rates highly (Drama in MovieLens) is a like
    only for users who like it more than most, as in the fitted utility."""
    names = catalog.topic_names
    out = []
    for b in np.asarray(rows, dtype=np.int64):
        if base is None:
            score, like_at, dislike_at = state.interest[b], 0.2, 0.1
        else:
            score, like_at, dislike_at = state.interest[b] - base, 0.0, -0.05
        order = np.argsort(-score, kind="stable")
        likes = tuple(names[t] for t in order[:n_likes] if score[t] > like_at)
        dislikes = tuple(names[t] for t in order[::-1][:n_dislikes] if score[t] < dislike_at)
        out.append(
            Persona(
                likes=likes or (names[order[0]],),
                dislikes=dislikes,
                novelty=novelty_phrase(float(state.novelty_session[b])),
                mood=mood_phrase(float(state.satisfaction[b])),
            )
        )
    return out
