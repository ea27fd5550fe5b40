"""Offline slate TS: fit the Bayesian GRU slate model on logged slates, score held-out clicks.

This module owns the logged-slate data path of ``recoworld.rl.slate_ts.model``: reading
logs into ``SlateLog`` (our Parquet trajectory logs; the Open Bandit Dataset sample shipped
in the ``obp==0.4.1`` wheel), building the per-step click histories, splitting, fitting the
posterior (plain torch SVI, the same loss as the RLlib learner) and the paper's metric,
hit-rate@k on held-out clicks: for each held-out click, rank every catalog item by the
posterior-mean score given the user's earlier clicks, and count a hit when the clicked item
is among the top k (the paper: hit-rate@20 on clicks after step 5).

Sources:

- ``from_trajectories(path, catalog)``: a ``recoworld simulate``/``TrajectoryLog`` Parquet
  log. A sequence is one user life (``episode_id``), in step order; the slate is the logged
  ``item_ids`` mapped to catalog indices, with the per-slot ``shown`` and ``click``.
- ``load_open_bandit(behaviors, campaign)``: the Open Bandit Dataset (ZOZOTOWN) sample in
  ``obp/dataset/obd/<behavior>/<campaign>/<campaign>.csv`` (found with
  ``importlib.util.find_spec``; ``obp`` itself is never imported). What the wheel really
  ships: 10,000 impressions per behavior policy (``random``, ``bts``), each ONE item at one
  of the 3 positions with its click (0.4% click rate: 38 + 42 clicks in ``all``), sampled
  from the full log, so the 3-slot slates cannot be put back together (timestamps are
  almost all distinct) and there is no user id. Here each impression is a slate of length 1
  (click or no click: the model's no-click bias for length 1 carries the base rate), item
  groups are ``item_feature_1`` (12 categories), and a *sequence* is one user-feature
  combination (``user_feature_0..3``; 240 of them): a context's earlier clicks stand in
  for a user's. Held-out clicks are the last ``test_fraction`` of impressions in time.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recoworld.catalog import Catalog
from recoworld.core.stats import bootstrap_ci
from recoworld.rl.slate_ts.model import ModelSpec, SlateTSModel

OBD_BEHAVIORS = ("random", "bts")
OBD_CAMPAIGNS = ("all", "men", "women")


@dataclass
class SlateLog:
    """Logged slates, sequence by sequence in time order (row n = one step)."""

    seq: np.ndarray  # [n] int64 sequence (user) id, rows grouped by seq in time order
    slate: np.ndarray  # [n, k] int64 catalog indices (-1: empty slot)
    shown: np.ndarray  # [n, k] bool
    click: np.ndarray  # [n, k] bool
    item_group: np.ndarray  # [N] int64 group of each item
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.seq)
        for key in ("slate", "shown", "click"):
            arr = getattr(self, key)
            if arr.ndim != 2 or arr.shape[0] != n:
                raise ValueError(f"SlateLog.{key}: expected shape [{n}, k], got {arr.shape}")
        if n and (self.slate.max() >= self.n_items):
            raise ValueError(f"SlateLog.slate: item index >= n_items ({self.n_items})")
        if n and np.any(np.diff(self.seq) != 0) and not _grouped(self.seq):
            raise ValueError("SlateLog.seq: rows of a sequence must be contiguous")

    @property
    def n_items(self) -> int:
        return len(self.item_group)

    @property
    def n_clicks(self) -> int:
        return int((self.click & self.shown).sum())

    def __len__(self) -> int:
        return len(self.seq)


def _grouped(seq: np.ndarray) -> bool:
    change = np.flatnonzero(np.diff(seq) != 0)
    starts = np.concatenate([[seq[0]], seq[change + 1]])
    return len(np.unique(starts)) == len(starts)


def _fixed_lists(table: Any, column: str) -> np.ndarray:
    col = table.column(column).combine_chunks()
    width = col.type.list_size
    return np.asarray(col.values.to_numpy(zero_copy_only=False)).reshape(-1, width)


def from_trajectories(path: str | Path | Any, catalog: Catalog, item_group: np.ndarray) -> SlateLog:
    """A RecoWorld trajectory log (Parquet path or Arrow table) as a ``SlateLog``."""
    from recoworld.envs.trajectory import read_trajectories

    table = read_trajectories(path) if isinstance(path, str | Path) else path
    missing = [c for c in ("episode_id", "t", "item_ids", "click") if c not in table.column_names]
    if missing:
        raise ValueError(f"trajectory log lacks columns {missing}")
    if len(item_group) != catalog.n_items:
        raise ValueError("item_group: one group per catalog item expected")
    ids = _fixed_lists(table, "item_ids")
    click = _fixed_lists(table, "click").astype(bool)
    shown = (
        _fixed_lists(table, "shown").astype(bool)
        if "shown" in table.column_names
        else np.ones_like(click)
    )
    order = np.argsort(catalog.item_ids, kind="stable")
    pos = np.minimum(np.searchsorted(catalog.item_ids, ids, sorter=order), len(order) - 1)
    items = order[pos]
    unknown = catalog.item_ids[items] != ids
    if unknown.any():
        raise ValueError(
            f"trajectory log: {int(unknown.sum())} item ids are not in catalog {catalog.name!r}"
        )
    episode = np.asarray(table.column("episode_id").to_numpy(), np.int64)
    t = np.asarray(table.column("t").to_numpy(), np.int64)
    rows = np.lexsort((t, episode))
    return SlateLog(
        seq=episode[rows], slate=items[rows].astype(np.int64), shown=shown[rows],
        click=click[rows], item_group=np.asarray(item_group, np.int64),
        name=f"trajectories ({len(rows)} user-steps)",
    )  # fmt: skip


def open_bandit_dir() -> Path:
    """The Open Bandit Dataset sample directory inside the installed ``obp`` wheel."""
    spec = importlib.util.find_spec("obp")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the Open Bandit Dataset ships in the obp==0.4.1 wheel: "
            "pip install --no-deps obp==0.4.1 (make data installs it)"
        )
    path = Path(spec.submodule_search_locations[0]) / "dataset" / "obd"
    if not path.is_dir():
        raise FileNotFoundError(f"obp is installed but has no dataset/obd directory: {path}")
    return path


def load_open_bandit(behaviors: tuple[str, ...] = OBD_BEHAVIORS, campaign: str = "all") -> SlateLog:
    """The Open Bandit Dataset sample as a ``SlateLog`` (see the module docstring)."""
    import pandas as pd

    if campaign not in OBD_CAMPAIGNS:
        raise ValueError(f"campaign: one of {OBD_CAMPAIGNS}, got {campaign!r}")
    bad = [b for b in behaviors if b not in OBD_BEHAVIORS]
    if bad or not behaviors:
        raise ValueError(f"behaviors: a non-empty subset of {OBD_BEHAVIORS}, got {behaviors}")
    root = open_bandit_dir()
    cols = ["timestamp", "item_id", "position", "click", *(f"user_feature_{i}" for i in range(4))]
    frames = []
    for b in behaviors:
        f = root / b / campaign / f"{campaign}.csv"
        if not f.is_file():
            raise FileNotFoundError(f"Open Bandit Dataset file missing: {f}")
        frames.append(pd.read_csv(f, usecols=cols).assign(behavior=b))
    df = pd.concat(frames, ignore_index=True)
    ctx = root / behaviors[0] / campaign / "item_context.csv"
    items = pd.read_csv(ctx).sort_values("item_id")
    n_items = int(items["item_id"].max()) + 1
    group = np.zeros(n_items, np.int64)
    group[items["item_id"].to_numpy()] = pd.factorize(items["item_feature_1"])[0]
    df["time"] = pd.to_datetime(df["timestamp"], utc=True).astype("int64")  # ns since epoch
    user = [f"user_feature_{i}" for i in range(4)]
    df["seq"] = df.groupby(user, sort=False).ngroup()
    df = df.sort_values(["seq", "time"], kind="stable").reset_index(drop=True)
    n = len(df)
    return SlateLog(
        seq=df["seq"].to_numpy(np.int64),
        slate=df["item_id"].to_numpy(np.int64)[:, None],
        shown=np.ones((n, 1), bool),
        click=df["click"].to_numpy().astype(bool)[:, None],
        item_group=group,
        name=f"Open Bandit Dataset ({'+'.join(behaviors)}/{campaign}, {n} impressions)",
        meta={"time": df["time"].to_numpy(), "position": df["position"].to_numpy()},
    )


# ---------------------------------------------------------------------------- steps
@dataclass
class Steps:
    """Per-step model inputs of a ``SlateLog``: click histories and positions."""

    hist: np.ndarray  # [n, H] clicked items before the step, newest first, -1 padded
    slate: np.ndarray
    shown: np.ndarray
    click: np.ndarray
    seq: np.ndarray
    step: np.ndarray  # [n] index of the step within its sequence

    def take(self, mask: np.ndarray) -> Steps:
        return Steps(*(getattr(self, k)[mask] for k in self.__dataclass_fields__))

    def rows(self) -> dict[str, torch.Tensor]:
        """Likelihood rows (one per click, one per no-click step) as tensors."""
        from recoworld.rl.slate_ts.algorithm import steps_to_rows

        rows = steps_to_rows(self.hist, self.slate, self.shown, self.click)
        return {k: torch.as_tensor(v) for k, v in rows.items()}


def log_steps(log: SlateLog, history: int = 10) -> Steps:
    """The click history (last ``history`` clicked items, newest first, this step's clicks
    excluded) of every step of ``log``, the same encoding as ``recent_ids``."""
    n = len(log)
    hist = np.full((n, history), -1, np.int64)
    step = np.zeros(n, np.int64)
    recent: list[int] = []
    for r in range(n):
        if r == 0 or log.seq[r] != log.seq[r - 1]:
            recent, i = [], 0
        hist[r, : len(recent)] = recent
        step[r] = i
        i += 1
        clicked = log.slate[r][log.click[r] & log.shown[r]].tolist()
        if clicked:
            recent = (clicked + recent)[:history]
    return Steps(hist, log.slate, log.shown, log.click & log.shown, log.seq, step)


def split_by_sequence(
    steps: Steps, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Steps, Steps]:
    """Held-out users: a random ``test_fraction`` of the sequences goes to the test part."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    seqs = np.unique(steps.seq)
    rng = np.random.default_rng(seed)
    test = rng.choice(seqs, size=max(1, round(test_fraction * len(seqs))), replace=False)
    mask = np.isin(steps.seq, test)
    return steps.take(~mask), steps.take(mask)


def split_by_time(
    steps: Steps, time: np.ndarray, test_fraction: float = 0.3
) -> tuple[Steps, Steps]:
    """Held-out future: the last ``test_fraction`` of steps by ``time`` go to the test part
    (histories keep the earlier clicks of the same sequence)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    time = np.asarray(time, dtype=np.int64)
    cut = np.quantile(time, 1 - test_fraction)
    mask = time > cut
    return steps.take(~mask), steps.take(mask)


# ---------------------------------------------------------------------------- fit / score
def fit_posterior(
    train: Steps,
    spec: ModelSpec,
    updates: int = 1000,
    minibatch_size: int = 256,
    lr: float = 0.01,
    seed: int = 0,
) -> tuple[SlateTSModel, list[float]]:
    """SVI on the training steps; returns the model and the minibatch ELBO per row
    every 50 updates."""
    torch.manual_seed(seed)
    model = SlateTSModel(spec)
    rows = train.rows()
    n = len(rows["target"])
    if n == 0:
        raise ValueError("fit_posterior: no training rows")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    trace: list[float] = []
    for u in range(updates):
        idx = torch.randint(0, n, (min(minibatch_size, n),), generator=gen)
        loss, parts = model.loss({k: v[idx] for k, v in rows.items()}, n, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if u % 50 == 0 or u == updates - 1:
            trace.append(float(parts["elbo_per_row"]))
    return model, trace


def clicked_items(steps: Steps, min_step: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) of every click at sequence step >= ``min_step``."""
    r, j = np.nonzero(steps.click)
    keep = steps.step[r] >= min_step
    return r[keep], steps.slate[r[keep], j[keep]]


@torch.no_grad()
def model_hits(
    model: SlateTSModel, test: Steps, ks: tuple[int, ...] = (20,), min_step: int = 5
) -> dict[int, np.ndarray]:
    """Per held-out click (step >= ``min_step``): 1 when the clicked item is in the
    posterior mean's top k over the whole catalog, for each k."""
    rows, items = clicked_items(test, min_step)
    out = {k: np.zeros(len(rows)) for k in ks}
    if not len(rows):
        return out
    p = model.mean_params()
    z = model._history(p, torch.as_tensor(test.hist[rows]))
    sc = model.scores(p, z, p.items[:, None])[0]  # [R, N]
    rank = (sc > sc.gather(1, torch.as_tensor(items)[:, None])).sum(1).numpy()
    for k in ks:
        out[k] = (rank < k).astype(np.float64)
    return out


def popularity_hits(
    train: Steps, test: Steps, n_items: int, ks: tuple[int, ...] = (20,), min_step: int = 5
) -> dict[int, np.ndarray]:
    """The most-popular baseline: items ranked by their training clicks."""
    _, train_items = clicked_items(train)
    counts = np.bincount(train_items, minlength=n_items).astype(np.float64)
    _, items = clicked_items(test, min_step)
    rank = (counts[None, :] > counts[items][:, None]).sum(1)
    return {k: (rank < k).astype(np.float64) for k in ks}


def summarize_hits(hits: dict[int, np.ndarray], seed: int = 0) -> dict[str, Any]:
    """hit-rate@k with its 95% bootstrap CI over held-out clicks."""
    return {
        f"hit@{k}": bootstrap_ci(v, seed=seed) if len(v) else {"mean": float("nan"), "n": 0}
        for k, v in hits.items()
    }


def evaluate_open_bandit(
    spec_kwargs: dict[str, Any] | None = None,
    ks: tuple[int, ...] = (1, 3, 5, 10),
    updates: int = 600,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit on the first 70% (by time) of the Open Bandit sample; hit-rate@k on the clicks
    of the rest for the model, most-popular and random ranking (k / n_items)."""
    log = load_open_bandit()
    steps = log_steps(log)
    train, test = split_by_time(steps, log.meta["time"], test_fraction)
    spec = ModelSpec(
        n_items=log.n_items, item_group=tuple(int(g) for g in log.item_group), max_slate=1,
        **(spec_kwargs or {}),
    )  # fmt: skip
    model, trace = fit_posterior(train, spec, updates=updates, seed=seed)
    return {
        "data": log.name,
        "train_impressions": len(train.seq),
        "train_clicks": int(train.click.sum()),
        "test_clicks": int(test.click.sum()),
        "elbo_trace": trace,
        "slate_ts": summarize_hits(model_hits(model, test, ks, min_step=0), seed),
        "popular": summarize_hits(popularity_hits(train, test, log.n_items, ks, 0), seed),
        "random": {f"hit@{k}": k / log.n_items for k in ks},
    }
