"""The LLM user: RecoWorld's loop — persona, memory, mindset — batched over B users.

Each simulated user has a persona (``persona.Persona``: liked and disliked topics, novelty
appetite, mood; kept structured in code and rendered to text only for prompts), drawn from
the hidden profile of a parametric user (sampled, or fitted to a real MovieLens rater), an
interaction memory (its last ``memory_steps`` steps, one line each: what it clicked, how
much it watched, why), per-session summaries (``memory_sessions`` most recent: length,
clicks, how the session ended) and a current mindset (a sentence it rewrites every step).
All of it lives in ``LLMUserState`` next to the parametric state, so fatigue, novelty,
creator affinity, satisfaction and retention keep their meaning.

Two decision modes (``LLMUserConfig.mode``), both real:

- ``score``: the preference for each shown item is the model's contrastive log-prob score
  (``llm_scoring.ContrastiveScorer``: item text after "You love {likes}." minus after "You
  love {dislikes}."), scaled by ``score_scale`` and optionally blended with the parametric
  taste (``parametric_weight``); it replaces the interest and latent terms of the choice
  model, which adds fatigue, novelty, creator affinity, the active instruction and position
  from the user state and samples the click, watch, like, follow, gift and leave decisions
  (``ParametricUserModel.respond(pref=...)``). The language parts are still generated: one
  batched call writes every active user's reason and new mindset (``narrate``; a reply that
  fails validation or looks broken keeps the grounded template text and is counted), and an
  instruction's sentence goes through the hybrid paraphrase path (fields from the state,
  paraphrase kept only if it parses back to them).
- ``generate``: the model answers the slate as JSON (``user_turn_schema``): per item skip or
  click with a watch fraction, like, follow, gift and a reason; then its new mindset, a
  satisfaction rating 0-10, an instruction when it is losing interest, and whether it
  leaves. Answers are validated (guided decoding where the backend has it), inconsistent
  actions are corrected and counted (a like without a click is dropped; a gift needs a
  follow), and the same show/consume dynamics as the parametric model update the state
  (``parametric_kernels.apply_batch``). The instruction's text is parsed into fields
  (``InstructionParser``), which become the user's active instruction; satisfaction is the
  model's rating moved by ``instruction_satisfaction_weight`` x how much of the slate
  honours that instruction, so following it pays even when a small model ignores its
  memory. A user whose answer still fails after the repairs takes the parametric decision
  for that step, flagged per user in ``Responses.extra["decision_source"]`` and counted in
  ``stats["generate_fallback"]`` (never silent): ``llm_user.on_invalid: record``, the
  default, since the embedded 135M model's JSON is sometimes cut off at the token limit;
  ``llm_user.on_invalid: raise`` raises ``StructuredOutputError`` instead.

docs/platform.md measured that 135M-270M models ignore a persona when generating decisions and
track it only through contrastive scoring, hence ``score`` is the default; a capable model
(an HF directory or an OpenAI-compatible server) plugs in through ``LLMConfig`` for either
mode. Item text is data: it is fenced and escaped in every prompt (``prompts.fence``), and
the score mode scores titles and topics only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, create_model

from recoworld.catalog.catalog import Catalog
from recoworld.llm.base import LLMBackend
from recoworld.llm.prompts import chat_request
from recoworld.simulators.base import Responses
from recoworld.simulators.config import LLMUserConfig
from recoworld.simulators.hybrid import HybridUserModel, looks_clean
from recoworld.simulators.instructions.lexical import InstructionParser
from recoworld.simulators.parametric.config import ParametricUserConfig
from recoworld.simulators.parametric.persona import mood_phrase
from recoworld.simulators.parametric.state import FittedPopulation, UserState
from recoworld.simulators.scoring import ContrastiveScorer

TEXT_FIELDS = ("mindset", "memory", "summaries", "session_clicks")


def _objects(n: int, value: Any) -> np.ndarray:
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = value
    return out


@dataclass
class LLMUserState(UserState):
    """Parametric hidden state plus the LLM user's text memory (object arrays [B])."""

    mindset: np.ndarray = dataclasses.field(default_factory=lambda: _objects(0, ""))
    memory: np.ndarray = dataclasses.field(default_factory=lambda: _objects(0, ()))
    summaries: np.ndarray = dataclasses.field(default_factory=lambda: _objects(0, ()))
    session_clicks: np.ndarray = dataclasses.field(default_factory=lambda: _objects(0, ()))


class ItemReview(BaseModel):
    """The LLM user's verdict on one item of the slate (generate mode)."""

    decision: Literal["skip", "click"]
    watch: float = Field(ge=0.0, le=1.0)
    like: bool
    follow: bool
    gift: bool
    reason: str = Field(max_length=80)


@lru_cache(maxsize=16)
def user_turn_schema(k: int) -> type[BaseModel]:
    """The JSON a generate-mode user returns for a slate of ``k`` items."""
    return create_model(
        "UserTurn",
        reviews=(list[ItemReview], Field(min_length=k, max_length=k)),
        mindset=(str, Field(min_length=1, max_length=160)),
        satisfaction=(int, Field(ge=0, le=10)),
        instruction=(str, Field(max_length=160)),
        leave=(bool, ...),
    )


class Narration(BaseModel):
    """Score mode: the user's words about the step it just took."""

    reason: str = Field(min_length=3, max_length=140)
    mindset: str = Field(min_length=3, max_length=140)


class LLMUserModel(HybridUserModel):
    """Batched LLM users (implements ``UserSimulator``; see the module docstring)."""

    def __init__(
        self,
        catalog: Catalog,
        config: ParametricUserConfig | None = None,
        population: FittedPopulation | None = None,
        backend: LLMBackend | None = None,
        llm_user: LLMUserConfig | None = None,
        parser: InstructionParser | None = None,
    ) -> None:
        super().__init__(catalog, config, population, backend, parser)
        self.llm_user = llm_user or LLMUserConfig()
        self.scorer = ContrastiveScorer(self.backend, catalog)
        self.slot_notes: np.ndarray | None = None  # [B, k] object: platform notes per slot
        self.representation: Any = None  # set_representation
        self.stats.update({"turns": 0, "narrated": 0, "narration_fallback": 0,
                           "generate_fallback": 0, "corrected_actions": 0})  # fmt: skip

    # ------------------------------------------------------------------ users
    def sample_users(self, n_users: int, rng: np.random.Generator) -> LLMUserState:
        base = super().sample_users(n_users, rng)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        state = LLMUserState(**fields, **{name: _objects(n_users, None) for name in TEXT_FIELDS})
        self._clear_text(state, np.arange(n_users))
        return state

    def replace_users(
        self, state: UserState, rows: np.ndarray, rng: np.random.Generator, clear: bool = True
    ) -> None:
        super().replace_users(state, rows, rng, clear)
        if isinstance(state, LLMUserState):
            self._clear_text(state, rows)

    def _clear_text(self, state: LLMUserState, rows: np.ndarray) -> None:
        for b in np.asarray(rows, dtype=np.int64):
            state.mindset[b] = f"{mood_phrase(float(state.satisfaction[b]))}, just opened the app"
            state.memory[b] = ()
            state.summaries[b] = ()
            state.session_clicks[b] = ()

    # ------------------------------------------------------------------ step
    def respond(
        self,
        state: UserState,
        items: np.ndarray,
        valid: np.ndarray,
        rng: np.random.Generator,
        text: str = "all",
        active: np.ndarray | None = None,
        pref: np.ndarray | None = None,
    ) -> Responses:
        if not isinstance(state, LLMUserState):
            raise TypeError("LLMUserModel.respond needs the LLMUserState from sample_users")
        b = items.shape[0]
        active = np.ones(b, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        rows = np.flatnonzero(active)
        if self.llm_user.mode == "score":
            resp = self._respond_score(state, items, valid, rng, text, active, rows)
        else:
            resp = self._respond_generate(state, items, valid, rng, text, active, rows)
        self._remember(state, items, valid, resp, rows)
        self.stats["turns"] += len(rows)
        return resp

    def _respond_score(
        self,
        state: LLMUserState,
        items: np.ndarray,
        valid: np.ndarray,
        rng: np.random.Generator,
        text: str,
        active: np.ndarray,
        rows: np.ndarray,
    ) -> Responses:
        cfg = self.llm_user
        pref = np.zeros(items.shape, dtype=np.float32)
        if rows.size:
            people = self.personas(state, rows)
            contrast = self.scorer.score(
                [p.likes for p in people], [p.dislikes for p in people], items[rows]
            )
            pref[rows] = cfg.score_scale * contrast
            if cfg.parametric_weight > 0:
                comps = self.utility_components(state, items[rows])[0]
                pref[rows] += cfg.parametric_weight * (comps[..., 0] + comps[..., 1])
        resp = super().respond(state, items, valid, rng, text=text, active=active, pref=pref)
        resp.extra["llm_preference"] = pref
        resp.extra["decision_source"] = np.where(active, "llm_score", None).astype(object)
        if cfg.narrate and text == "all" and rows.size:
            self._narrate(state, items, valid, resp, rows)
        return resp

    def _narrate(
        self,
        state: LLMUserState,
        items: np.ndarray,
        valid: np.ndarray,
        resp: Responses,
        rows: np.ndarray,
    ) -> None:
        """One batch: every active user's reason and mindset in its own words; template
        text (already in ``resp``) stays where the answer is invalid or looks broken."""
        titles = self._names()
        people = self.personas(state, rows)
        requests = []
        for person, r in zip(people, rows, strict=True):
            clicked = np.flatnonzero(resp.click[r])
            if clicked.size:
                j = int(clicked[0])
                outcome = (
                    f'You clicked item {j + 1}, "{titles[items[r, j]]}", and watched '
                    f"{resp.watch[r, j]:.0%} of it"
                    + (", and liked it." if resp.like[r, j] else ".")
                )
            else:
                outcome = "You skipped all of them."
            if resp.leave[r]:
                outcome += " Then you closed the app."
            requests.append(
                chat_request(
                    "llm_user_narrate",
                    request_id=self._request_id("narrate", state, r),
                    persona=person.describe(),
                    memory=list(state.memory[r]),
                    titles=[titles[i] for i, v in zip(items[r], valid[r], strict=True) if v],
                    trusted_titles=self._trusted_names(),
                    outcome=outcome,
                )
            )
        done = self.backend.generate(requests, Narration, on_invalid="record")
        for r, c in zip(rows, done, strict=True):
            parsed = c.parsed
            if parsed is not None and looks_clean(parsed.reason) and looks_clean(parsed.mindset):
                resp.reasoning[r] = parsed.reason  # type: ignore[attr-defined]
                resp.mindset[r] = parsed.mindset  # type: ignore[attr-defined]
                self.stats["narrated"] += 1
            else:
                self.stats["narration_fallback"] += 1

    def _respond_generate(
        self,
        state: LLMUserState,
        items: np.ndarray,
        valid: np.ndarray,
        rng: np.random.Generator,
        text: str,
        active: np.ndarray,
        rows: np.ndarray,
    ) -> Responses:
        b, k = items.shape
        t = self.catalog.n_topics
        cfg, pcfg = self.llm_user, self.config
        schema = user_turn_schema(k)
        people = self.personas(state, rows)
        requests = [
            dataclasses.replace(
                chat_request(
                    "llm_user_turn",
                    request_id=self._request_id("turn", state, r),
                    persona=person.describe(),
                    summaries=list(state.summaries[r]),
                    memory=list(state.memory[r]),
                    mindset=state.mindset[r],
                    instruction=self._active_instruction_text(state, r),
                    items=[
                        self._item_view(int(i), self._slot_note(r, j))
                        for j, i in enumerate(items[r])
                    ],
                ),
                max_tokens=120 + 90 * k,
            )
            for person, r in zip(people, rows, strict=True)
        ]
        turns = (
            self.backend.generate(requests, schema, on_invalid=cfg.on_invalid) if requests else []
        )
        failed = np.zeros(b, dtype=bool)
        answered = np.zeros(b, dtype=bool)
        parsed: dict[int, Any] = {}
        for r, c in zip(rows, turns, strict=True):
            if c.parsed is None:
                failed[r] = True
            else:
                answered[r] = True
                parsed[int(r)] = c.parsed

        # the ground truth of what was shown, before any state changes
        util = np.zeros((b, k), dtype=np.float32)
        nov = np.zeros((b, k), dtype=np.float32)
        if answered.any():
            _, nov_a, util_a = self.utility_components(state, items[answered])
            util[answered], nov[answered] = util_a, nov_a
        click = np.zeros((b, k), dtype=bool)
        watch = np.zeros((b, k), dtype=np.float32)
        like, follow, gift = (np.zeros((b, k), dtype=bool) for _ in range(3))
        sat_llm = np.zeros(b, dtype=np.float32)
        leave = np.zeros(b, dtype=bool)
        said: dict[int, str] = {}
        for r, turn in parsed.items():
            for j, rev in enumerate(turn.reviews):
                if not valid[r, j]:
                    continue
                click[r, j] = rev.decision == "click"
                watch[r, j] = max(rev.watch, 0.05) if click[r, j] else 0.0
                like[r, j] = rev.like and click[r, j]
                follow[r, j] = rev.follow and like[r, j]
                creator = self.catalog.creator[items[r, j]]
                gift[r, j] = (
                    rev.gift and click[r, j] and (follow[r, j] or state.follows[r, creator])
                )
                wrong = (rev.like, rev.follow, rev.gift) != (like[r, j], follow[r, j], gift[r, j])
                self.stats["corrected_actions"] += int(wrong)
                follow[r, j] &= not state.follows[r, creator]  # a *new* follow
            sat_llm[r] = turn.satisfaction / 10.0
            leave[r] = turn.leave
            words = turn.instruction.strip()
            if words and state.instructions_in_session[r] < pcfg.max_instructions_per_session:
                said[r] = words

        # how much of the slate honours the active instruction, in [-1, 1]
        tn = self.catalog.topics_normalized[items]  # [B, k, T]
        live = state.instruction_age < pcfg.instruction_memory
        honour = np.einsum("bkt,bt->bk", tn, state.instruction_vec)
        honour = np.where(valid, honour, 0.0).sum(1) / np.maximum(valid.sum(1), 1)
        honour = np.where(live, honour, 0.0).astype(np.float32)

        clicked_topics = np.zeros((b, t), dtype=np.float32)
        from recoworld.simulators.parametric.kernels import apply_batch

        apply_batch(
            answered, np.ascontiguousarray(items, dtype=np.int64), valid, click, watch, like,
            follow, *self.catalog.topic_lists, self.catalog.creator, state.interest,
            state.fatigue, state.exposure, state.creator_affinity, state.creator_clicks,
            state.seen, state.consumed, state.follows, state.session_step, state.instruction_age,
            clicked_topics, self._params,
        )  # fmt: skip
        sat = np.clip(sat_llm + cfg.instruction_satisfaction_weight * honour, 0.0, 1.0)
        state.satisfaction[answered] = sat[answered]

        instructed = np.zeros(b, dtype=bool)
        who = np.array(sorted(said), dtype=np.int64)
        vectors = None
        if who.size:
            instructed[who] = True
            vectors = np.stack([self.parser.vector(said[int(r)]) for r in who])
            state.instruction_vec[who] = vectors[:, :t]
            state.instruction_age[who] = 0
            state.instructions_in_session[who] += 1

        resp = Responses(
            click=click, watch=watch, like=like, follow=follow, gift=gift, utility=util,
            leave=leave, satisfaction=state.satisfaction.copy(), instructed=instructed,
            instruction=[said.get(r) for r in range(b)] if text != "none" else [None] * b,
            extra={"instruction_vector": vectors, "clicked_topics": clicked_topics,
                   "novelty": nov, "instruction_honour": honour},
        )  # fmt: skip
        resp.reasoning = [None] * b
        resp.mindset = [None] * b
        for r, turn in parsed.items():
            state.mindset[r] = turn.mindset
            if text == "all":
                resp.reasoning[r] = _reason_of(turn, self.catalog, items[r], click[r])
                resp.mindset[r] = turn.mindset
        source = np.where(answered, "llm_generate", None).astype(object)
        if failed.any():  # recorded failures: the parametric model decides for them
            self._fallback(state, items, valid, rng, text, failed, resp)
            source[failed] = "fallback_parametric"
            self.stats["generate_fallback"] += int(failed.sum())
        resp.extra["decision_source"] = source
        return resp

    def _fallback(
        self,
        state: LLMUserState,
        items: np.ndarray,
        valid: np.ndarray,
        rng: np.random.Generator,
        text: str,
        failed: np.ndarray,
        resp: Responses,
    ) -> None:
        """Parametric decisions for the users whose answer failed validation (recorded)."""
        sub = super().respond(state, items, valid, rng, text=text, active=failed)
        rows = np.flatnonzero(failed)
        for name in ("click", "watch", "like", "follow", "gift", "utility", "leave",
                     "satisfaction", "instructed"):  # fmt: skip
            getattr(resp, name)[rows] = getattr(sub, name)[rows]
        resp.extra["clicked_topics"][rows] = sub.extra["clicked_topics"][rows]
        for r in rows:
            resp.instruction[r] = sub.instruction[r]
            resp.reasoning[r] = sub.reasoning[r]
            resp.mindset[r] = sub.mindset[r]
        # the instruction vectors of both groups, in row order
        both = np.flatnonzero(resp.instructed)
        if both.size:
            full = np.zeros((len(failed), self.catalog.n_topics + 1), dtype=np.float32)
            for mask, src in ((resp.instructed & ~failed, resp.extra["instruction_vector"]),
                              (sub.instructed, sub.extra["instruction_vector"])):  # fmt: skip
                if src is not None:
                    full[mask] = src
            resp.extra["instruction_vector"] = full[both]

    # ------------------------------------------------------------------ memory
    def _remember(
        self,
        state: LLMUserState,
        items: np.ndarray,
        valid: np.ndarray,
        resp: Responses,
        rows: np.ndarray,
    ) -> None:
        """Append one line per active user to its interaction memory; keep the mindset."""
        titles = self._names()
        keep = self.llm_user.memory_steps
        for r in rows:
            clicked = [j for j in np.flatnonzero(resp.click[r]) if valid[r, j]]
            step = int(state.session_step[r])
            if clicked:
                parts = [
                    f'"{titles[items[r, j]]}" ({resp.watch[r, j]:.0%} watched'
                    + (", liked" if resp.like[r, j] else "") + ")"
                    for j in clicked
                ]  # fmt: skip
                line = f"Session {state.session_index[r] + 1}, step {step}: watched " + ", ".join(
                    parts
                )
                state.session_clicks[r] = (*state.session_clicks[r],
                                           *(titles[items[r, j]] for j in clicked))  # fmt: skip
            else:
                line = f"Session {state.session_index[r] + 1}, step {step}: skipped everything"
            if resp.instruction and resp.instruction[r]:
                line += f'; told the app "{resp.instruction[r]}"'
            if resp.mindset and resp.mindset[r]:
                state.mindset[r] = resp.mindset[r]
            if keep:
                state.memory[r] = (*state.memory[r], line)[-keep:]

    def end_session(
        self, state: UserState, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Summarise the session that ended into the user's long-term memory, then decide
        returns as the parametric model does (satisfaction-driven retention)."""
        if isinstance(state, LLMUserState):
            keep = self.llm_user.memory_sessions
            for r in rows:
                clicks = state.session_clicks[r]
                shown = ", ".join(f'"{c}"' for c in clicks[:3]) + ("..." if len(clicks) > 3 else "")
                summary = (
                    f"Session {state.session_index[r] + 1}: {state.session_step[r]} steps, "
                    f"{len(clicks)} watched{' (' + shown + ')' if clicks else ''}; "
                    f"left feeling: {state.mindset[r]}"
                )
                if keep:
                    state.summaries[r] = (*state.summaries[r], summary)[-keep:]
        return super().end_session(state, rows, rng)

    def start_session(self, state: UserState, rows: np.ndarray, rng: np.random.Generator) -> None:
        super().start_session(state, rows, rng)
        if isinstance(state, LLMUserState):
            for r in rows:
                state.session_clicks[r] = ()
                state.memory[r] = ()
                mood = mood_phrase(float(state.satisfaction[r]))
                state.mindset[r] = f"{mood}, back for another session"

    # ------------------------------------------------------------------ prompt parts
    def _request_id(self, kind: str, state: UserState, r: int) -> str:
        return (
            f"llm-user/{kind}/row-{r}/session-{state.session_index[r]}/step-{state.session_step[r]}"
        )

    def _names(self) -> list[str]:
        """What the user calls items in its memory and narration (titles, or code tokens)."""
        rep = self.representation
        return self.catalog.titles if rep is None else rep.names()

    def _trusted_names(self) -> bool:
        return self.representation is not None and self.representation.trusted_names

    def set_representation(self, representation: Any) -> None:
        """Read items as ``representation`` shows them (an ``ItemRepresentation``: titles
        and text, semantic-ID tokens with a legend, or text with metadata)."""
        self.representation = representation
        self.scorer.set_representation(representation)

    def _item_view(self, item: int, note: str = "") -> dict[str, str]:
        cat = self.catalog
        n = self.llm_user.description_chars
        if self.representation is not None:
            return {**self.representation.view(item, description_chars=n), "note": note}
        return {
            "title": cat.titles[item],
            "topics": ", ".join(cat.topic_list(item)),
            "creator": cat.creator_names[cat.creator[item]],
            "description": cat.descriptions[item][:n] if n else "",
            "note": note,
        }

    def _slot_note(self, r: int, j: int) -> str:
        """The platform's note on slot j of user r's slate (``slot_notes``, set by a
        population before a step: e.g. "shared by a friend"), or ""."""
        notes = self.slot_notes
        return "" if notes is None else str(notes[r, j] or "")

    def _active_instruction_text(self, state: UserState, r: int) -> str:
        if state.instruction_age[r] >= self.config.instruction_memory:
            return ""
        names = self.catalog.topic_names
        vec = state.instruction_vec[r]
        more = [names[i] for i in np.flatnonzero(vec > 0)]
        less = [names[i] for i in np.flatnonzero(vec < 0)]
        parts = ([f"more {', '.join(more)}"] if more else []) + (
            [f"less {', '.join(less)}"] if less else []
        )
        return "; ".join(parts)


def _reason_of(turn: Any, catalog: Catalog, items: np.ndarray, click: np.ndarray) -> str:
    """The reasons the model gave for its clicks (or for its first skip)."""
    chosen = [j for j in np.flatnonzero(click) if j < len(turn.reviews)]
    if chosen:
        return " ".join(
            f'Clicked "{catalog.titles[items[j]]}": {turn.reviews[j].reason}' for j in chosen
        )
    first = turn.reviews[0].reason if turn.reviews else ""
    return f"Skipped the slate: {first}"
