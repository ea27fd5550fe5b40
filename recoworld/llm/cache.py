"""SQLite response cache: reruns and evaluation replays get the exact same answers for free.

Keyed by ``request_key`` (sha256 of model, messages, schema and sampling parameters, seed
included). Only validated answers are stored. The database runs in WAL mode and every write
commits, so a crash loses at most the batch in flight; a lock makes it safe to share between
the threads of the HTTP backend.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from recoworld.llm.types import RawCompletion

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


class ResponseCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: list[str]) -> dict[str, RawCompletion]:
        if not keys:
            return {}
        out: dict[str, RawCompletion] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, text, prompt_tokens, completion_tokens FROM responses "
                    f"WHERE key IN ({marks})",
                    chunk,
                ).fetchall()
                for key, text, pt, ct in rows:
                    out[key] = RawCompletion(text=text, prompt_tokens=pt, completion_tokens=ct)
        self.hits += len(out)
        self.misses += len(set(keys)) - len(out)
        return out

    def put_many(self, model: str, items: list[tuple[str, RawCompletion]]) -> None:
        if not items:
            return
        now = time.time()
        rows = [(k, model, r.text, r.prompt_tokens, r.completion_tokens, now) for k, r in items]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
