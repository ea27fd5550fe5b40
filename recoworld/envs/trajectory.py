"""Trajectory logs: every step of every user, text included, in one Parquet file.

``TrajectoryLog.record`` takes the batched ``info`` of a ``World`` / vector-env step (and
the reward and episode flags) and keeps the rows of the slots that really stepped; ``write``
builds one Arrow table and writes it atomically (temp file + rename), so a crash never
leaves a truncated log. ``read_trajectories`` reads it back with pyarrow.

One row = one user-step. Slate columns are fixed-size lists of length k; text columns are
strings (null where there is no text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recoworld.core.atomic import atomic_write_parquet
from recoworld.envs.reward import REWARD_TERMS

SCALAR_COLUMNS = (
    "episode_id", "session", "step_in_session", "left", "session_end", "returned", "gap_hours",
    "satisfaction", "instructed", "n_duplicates",
    *(f"reward_{t}" for t in REWARD_TERMS),
)  # fmt: skip
SLATE_COLUMNS = ("item_ids", "shown", "click", "watch", "like", "follow", "gift", "utility")
TEXT_COLUMNS = ("instruction", "reasoning", "mindset", "instruction_source", "decision_source")
OPTIONAL_COLUMNS = (
    "item_index", "candidate_index", "candidate_relevance", "slate_relevance", "user_novelty",
    "user_session_novelty", "instruction_vector",
)  # fmt: skip
"""Logged when the step's info has them (``episode.ground_truth_info`` adds all but the
first): 2-d arrays become fixed-size list columns."""


class TrajectoryLog:
    """Collects user-steps from batched infos; see the module docstring."""

    def __init__(self, metadata: dict[str, str] | None = None) -> None:
        self.metadata = dict(metadata or {})
        self._chunks: list[dict[str, Any]] = []
        self.n_rows = 0

    def record(
        self,
        t: int,
        info: dict[str, Any],
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Keep the rows of ``info`` that stepped (its ``_click`` mask when present)."""
        mask = np.asarray(info.get("_click", np.ones(len(reward), dtype=bool)), dtype=bool)
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        chunk: dict[str, Any] = {
            "t": np.full(rows.size, t, dtype=np.int64),
            "user_slot": rows.astype(np.int64),
            "reward": np.asarray(reward)[rows].astype(np.float32),
            "terminated": np.asarray(terminated)[rows],
            "truncated": np.asarray(truncated)[rows],
        }
        for key in (*SCALAR_COLUMNS, *SLATE_COLUMNS):
            chunk[key] = np.asarray(info[key])[rows]
        for key in OPTIONAL_COLUMNS:
            if key in info:
                chunk[key] = np.asarray(info[key])[rows]
        for key in (*TEXT_COLUMNS, "titles"):
            if key in info:
                chunk[key] = [info[key][r] for r in rows]
        self._chunks.append(chunk)
        self.n_rows += rows.size

    def to_table(self) -> pa.Table:
        if not self._chunks:
            raise ValueError("TrajectoryLog: nothing recorded")
        columns: dict[str, pa.Array] = {}
        keys = list(dict.fromkeys(key for c in self._chunks for key in c))
        for key in keys:
            missing = [i for i, c in enumerate(self._chunks) if key not in c]
            if missing and key not in TEXT_COLUMNS:
                raise ValueError(f"TrajectoryLog: column {key!r} missing from some steps")
            # a text column can be absent from some steps (e.g. no instruction was written)
            parts = [c.get(key, [None] * len(c["t"])) for c in self._chunks]
            if key in SLATE_COLUMNS or (key in OPTIONAL_COLUMNS and parts[0].ndim == 2):
                flat = np.concatenate(parts)
                columns[key] = pa.FixedSizeListArray.from_arrays(
                    pa.array(flat.ravel()), flat.shape[1]
                )
            elif key == "titles":
                columns[key] = pa.array([list(x) for p in parts for x in p], pa.list_(pa.string()))
            elif key in TEXT_COLUMNS:
                columns[key] = pa.array([x for p in parts for x in p], pa.string())
            else:
                columns[key] = pa.array(np.concatenate(parts))
        table = pa.table(columns)
        meta = {k.encode(): v.encode() for k, v in self.metadata.items()}
        return table.replace_schema_metadata(meta)

    def write(self, path: str | Path) -> Path:
        return atomic_write_parquet(self.to_table(), path)


def read_trajectories(path: str | Path) -> pa.Table:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trajectory log not found: {path}")
    return pq.read_table(path)
