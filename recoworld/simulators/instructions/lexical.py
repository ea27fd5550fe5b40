"""Instructions: what a user tells the recommender when it senses it is losing interest.

An instruction has structured fields — topics wanted more, topics wanted less, and a wish
for something new — and a sentence. Following the measurement in docs/platform.md (small
LLMs cannot verbalize a hidden state), the *fields* always come from code (the simulator's
hidden state) and the *sentence* from templates here; an LLM paraphrase (LLM issue) is kept
only if ``parse_instruction`` reads it back to the same fields.

``parse_instruction`` is what the environment applies to any instruction text (templated or
LLM-written) to build the observation's instruction vector: [T] topic deltas (+1 more,
-1 less) followed by one novelty flag. It matches topic names (case-insensitive, with a few
inflections) and the cue words around them; anything unrecognised contributes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

LESS_CUES = ("fewer", "less", "no more", "too many", "too much", "tired of", "enough",
             "stop showing", "not so many", "sick of", "don't want", "do not want", "hate",
             "can't stand", "no ")  # fmt: skip
MORE_CUES = ("more", "show me", "want", "like", "love", "prefer", "rather", "instead",
             "craving", "in the mood for", "give me")  # fmt: skip
NOVELTY_CUES = ("something new", "something different", "new", "different", "surprise",
                "fresh", "haven't seen", "novel")  # fmt: skip

_TEMPLATES_BOTH = (
    "There's too much {less} lately; I want more {more}.",
    "Fewer {less} clips please, more {more}.",
    "I'm tired of {less}. Show me more {more} instead.",
)
_TEMPLATES_LESS = (
    "Too much {less} lately; please cut it down.",
    "Fewer {less} clips please.",
)
_TEMPLATES_MORE = (
    "Show me more {more}.",
    "I'd like more {more} please.",
)
_NOVELTY_SUFFIX = " And surprise me with something new."
_NOVELTY_ONLY = "This is all the same stuff; show me something new."


@dataclass
class Instruction:
    """Structured instruction fields (topic names from the catalog's vocabulary)."""

    more: list[str] = field(default_factory=list)
    less: list[str] = field(default_factory=list)
    novelty: bool = False

    def is_empty(self) -> bool:
        return not (self.more or self.less or self.novelty)


def render_instruction(inst: Instruction, variant: int = 0) -> str:
    """A sentence for ``inst`` from templates (``variant`` picks among phrasings)."""
    more, less = " and ".join(inst.more), " and ".join(inst.less)
    if more and less:
        text = _TEMPLATES_BOTH[variant % len(_TEMPLATES_BOTH)].format(more=more, less=less)
    elif less:
        text = _TEMPLATES_LESS[variant % len(_TEMPLATES_LESS)].format(less=less)
    elif more:
        text = _TEMPLATES_MORE[variant % len(_TEMPLATES_MORE)].format(more=more)
    else:
        return _NOVELTY_ONLY if inst.novelty else ""
    return text + (_NOVELTY_SUFFIX if inst.novelty and "different" not in text else "")


def _topic_pattern(name: str) -> re.Pattern[str]:
    base = re.escape(name.lower())
    return re.compile(rf"(?<![a-z0-9]){base}(?:s|es|'s)?(?![a-z0-9])")


def last_cue_end(text: str, cues: tuple[str, ...]) -> int:
    """End offset of the last cue in ``text`` (-1 if none); a negated cue such as "don't
    want" ends where "want" ends, and ties go to the less-cues."""
    ends = [text.rfind(c) + len(c) for c in cues if text.rfind(c) >= 0]
    return max(ends, default=-1)


class InstructionParser:
    """Parses instruction text into fields and the [T + 1] observation vector."""

    def __init__(self, topic_names: list[str], cache_size: int = 65536) -> None:
        self.topic_names = list(topic_names)
        self._index = {t: i for i, t in enumerate(self.topic_names)}
        self._patterns = [_topic_pattern(t) for t in self.topic_names]
        # Templated instructions repeat: vectors are cached by text (bounded, FIFO).
        self._cache: dict[str, np.ndarray] = {}
        self._cache_size = cache_size

    @property
    def dim(self) -> int:
        return len(self.topic_names) + 1

    def parse(self, text: str | None) -> Instruction:
        """Fields of ``text``: each mentioned topic goes to 'less' when the nearest cue before
        it in its clause is a less-cue, to 'more' when it is a more-cue (or 'more' follows)."""
        inst = Instruction()
        if not text:
            return inst
        low = text.lower()
        for clause in re.split(r"[.;!?]|\bbut\b|\band\b(?= (?:more|less|fewer|show))", low):
            for name, pat in zip(self.topic_names, self._patterns, strict=True):
                m = pat.search(clause)
                if m is None:
                    continue
                before = clause[: m.start()]
                last_less = last_cue_end(before, LESS_CUES)
                last_more = last_cue_end(before, MORE_CUES)
                if last_less >= last_more and last_less >= 0:
                    inst.less.append(name)
                elif last_more >= 0 or re.search(r"\bmore\b", clause[m.end() :]):
                    inst.more.append(name)
        inst.novelty = any(re.search(rf"\b{re.escape(c)}\b", low) for c in NOVELTY_CUES)
        inst.more = [t for t in dict.fromkeys(inst.more) if t not in inst.less]
        inst.less = list(dict.fromkeys(inst.less))
        return inst

    def vector(self, inst: Instruction | str | None) -> np.ndarray:
        """[T + 1] float32: +1 for 'more' topics, -1 for 'less', last entry = novelty."""
        if isinstance(inst, str):
            cached = self._cache.get(inst)
            if cached is None:
                cached = self.vector(self.parse(inst))
                if len(self._cache) >= self._cache_size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[inst] = cached
            return cached.copy()
        if inst is None:
            inst = Instruction()
        if not isinstance(inst, Instruction):
            raise TypeError(
                f"instruction must be a str, an Instruction or None, got {type(inst).__name__}"
            )
        vec = np.zeros(self.dim, dtype=np.float32)
        for t in inst.more:
            vec[self._index[t]] = 1.0
        for t in inst.less:
            vec[self._index[t]] = -1.0
        vec[-1] = float(inst.novelty)
        return vec
