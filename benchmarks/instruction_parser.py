"""Instruction parsers compared: lexical ``InstructionParser`` vs ``EmbeddingInstructionParser``.

Both read instruction text into the [T + 1] vector (topic deltas over the MovieLens genres +
a novelty flag). Two test sets:

- templated: every sentence ``render_instruction`` produces over the MovieLens vocabulary
  (one 'more' topic x none / one 'less' topic x novelty x every template variant);
- natural: hand-written paraphrases the way users type (``instruction_parser_data.yaml``:
  synonyms, typos, indirect phrasing), split by position into tune (even) / held-out (odd).
  The embedding parser's thresholds are chosen on tune only; results are for held-out only.

Metrics: exact match of the whole [T + 1] vector, precision / recall of the 'more' topics,
the 'less' topics and the novelty flag, and parse time per sentence (model loaded and topic
prototypes embedded beforehand; each sentence parsed once, so the vector cache never hits).

    python benchmarks/instruction_parser.py [--json results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

DATA = Path(__file__).with_name("instruction_parser_data.yaml")
TOPIC_GRID = np.round(np.arange(0.30, 0.901, 0.025), 3)
NOVELTY_GRID = np.round(np.arange(0.40, 0.951, 0.025), 3)
BIAS_GRID = np.round(np.arange(-0.10, 0.201, 0.025), 3)


def templated_set(topics: list[str]) -> list[dict[str, Any]]:
    from recoworld.simulators.instructions.lexical import Instruction, render_instruction

    out = []
    for more, less, novelty, variant in itertools.product(
        [None, *topics], [None, *topics], [False, True], range(3)
    ):
        if more is not None and more == less:
            continue
        inst = Instruction(
            more=[more] if more else [], less=[less] if less else [], novelty=novelty
        )
        if inst.is_empty():
            continue
        out.append(
            {
                "text": render_instruction(inst, variant),
                "more": inst.more,
                "less": inst.less,
                "novelty": novelty,
            }
        )
    return list({d["text"]: d for d in out}.values())  # some variants render alike


def natural_sets() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = yaml.safe_load(DATA.read_text())
    return data[0::2], data[1::2]


def score(parser: Any, examples: list[dict[str, Any]]) -> dict[str, float]:
    """Exact-match rate, per-field precision/recall and mean parse time (ms)."""
    tp = {"more": 0, "less": 0, "novelty": 0}
    n_pred = dict.fromkeys(tp, 0)
    n_true = dict.fromkeys(tp, 0)
    exact, elapsed = 0, 0.0
    for ex in examples:
        t0 = time.perf_counter()
        inst = parser.parse(ex["text"])
        elapsed += time.perf_counter() - t0
        truth = parser.vector(_instruction(ex))
        exact += bool(np.array_equal(parser.vector(inst), truth))
        for f in ("more", "less"):
            pred, true = set(getattr(inst, f)), set(ex[f])
            tp[f] += len(pred & true)
            n_pred[f] += len(pred)
            n_true[f] += len(true)
        tp["novelty"] += inst.novelty and ex["novelty"]
        n_pred["novelty"] += inst.novelty
        n_true["novelty"] += ex["novelty"]
    res = {"n": len(examples), "exact": exact / len(examples)}
    for f in tp:
        res[f"{f}_precision"] = tp[f] / n_pred[f] if n_pred[f] else 1.0
        res[f"{f}_recall"] = tp[f] / n_true[f] if n_true[f] else 1.0
    res["ms_per_sentence"] = 1000 * elapsed / len(examples)
    return res


def _instruction(ex: dict[str, Any]) -> Any:
    from recoworld.simulators.instructions.lexical import Instruction

    return Instruction(more=list(ex["more"]), less=list(ex["less"]), novelty=ex["novelty"])


def _middle_of_best(grid: np.ndarray, values: list[float]) -> float:
    """The grid point in the middle of the best-scoring thresholds (robust to ties)."""
    best = max(values)
    tied = [g for g, v in zip(grid, values, strict=True) if v == best]
    return float(tied[len(tied) // 2])


def tune(parser: Any, examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Choose the topic threshold, then the polarity bias (exact match of the topic part),
    then the novelty threshold (accuracy of the flag) on ``examples``."""
    truths = [parser.vector(_instruction(ex)) for ex in examples]

    def accuracy(part: slice) -> float:
        hits = [
            np.array_equal(parser.vector(ex["text"])[part], t[part])
            for ex, t in zip(examples, truths, strict=True)
        ]
        return float(np.mean(hits))

    topics, flag = slice(None, -1), slice(-1, None)
    topic_acc = []
    for th in TOPIC_GRID:
        parser.set_thresholds(topic=th)
        topic_acc.append(accuracy(topics))
    topic = _middle_of_best(TOPIC_GRID, topic_acc)
    bias_acc = []
    for b in BIAS_GRID:
        parser.set_thresholds(topic=topic, polarity_bias=b)
        bias_acc.append(accuracy(topics))
    bias = _middle_of_best(BIAS_GRID, bias_acc) + 0.0  # no "-0.000"
    parser.set_thresholds(polarity_bias=bias)
    novelty_acc = []
    for th in NOVELTY_GRID:
        parser.set_thresholds(novelty=th)
        novelty_acc.append(accuracy(flag))
    novelty = _middle_of_best(NOVELTY_GRID, novelty_acc)
    parser.set_thresholds(topic=topic, novelty=novelty)
    return {
        "topic_threshold": topic,
        "polarity_bias": bias,
        "novelty_threshold": novelty,
        "tune_topic_exact": max(bias_acc),
        "tune_novelty_accuracy": max(novelty_acc),
    }


def errors(parser: Any, examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for ex in examples:
        inst = parser.parse(ex["text"])
        if not np.array_equal(parser.vector(inst), parser.vector(_instruction(ex))):
            got = {"more": inst.more, "less": inst.less, "novelty": inst.novelty}
            out.append({"text": ex["text"], "got": got})
    return out


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--errors", choices=["tune", "held-out"], help="also print the parsers' errors on a set"
    )
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from recoworld.catalog import load_catalog
    from recoworld.catalog.config import CatalogConfig
    from recoworld.simulators.instructions.embedding import EmbeddingInstructionParser
    from recoworld.simulators.instructions.lexical import InstructionParser

    catalog, _ = load_catalog(CatalogConfig(source="movielens"))
    topics = list(catalog.topic_names)  # the 19 MovieLens 100k genres
    embedding = EmbeddingInstructionParser(topics)
    t0 = time.perf_counter()
    embedding.embed(["warm-up"])
    load_s = time.perf_counter() - t0
    embedding.parse("warm up the topic prototypes")

    tune_set, held_out = natural_sets()
    tuned = tune(embedding, tune_set)
    templated = templated_set(topics)
    sets = {"templated": templated, "natural held-out": held_out}
    results: dict[str, Any] = {
        "model_load_s": load_s,
        "torch_threads": _torch_threads(),
        "tuning": tuned,
        "n_tune": len(tune_set),
        "sets": {},
    }
    for set_name, examples in sets.items():
        # fresh parsers so no sentence is already in a vector cache
        lex = InstructionParser(topics)
        emb = embedding
        emb.clear_cache(embeddings=True)  # cold: each new span is embedded once
        results["sets"][set_name] = {
            "lexical": score(lex, examples),
            "embedding": score(emb, examples),
        }
    results["errors"] = {
        set_name: {
            "lexical": errors(InstructionParser(topics), examples),
            "embedding": errors(embedding, examples),
        }
        for set_name, examples in (("tune", tune_set), ("held-out", held_out))
    }

    table = Table(title="Instruction parsers: lexical vs embedding (MovieLens genres)")
    cols = ["exact", "more_precision", "more_recall", "less_precision", "less_recall",
            "novelty_precision", "novelty_recall", "ms_per_sentence"]  # fmt: skip
    table.add_column("set")
    table.add_column("parser")
    table.add_column("n", justify="right")
    for c in cols:
        table.add_column(c.replace("_precision", " P").replace("_recall", " R"), justify="right")
    for set_name, per in results["sets"].items():
        for name, r in per.items():
            vals = [f"{r[c]:.3f}" if c != "ms_per_sentence" else f"{r[c]:.2f}" for c in cols]
            table.add_row(set_name, name, str(r["n"]), *vals)
    console = Console(width=max(Console().width, 150))
    console.print(table)
    console.print(
        f"model load {load_s:.2f} s (torch threads {results['torch_threads']}); thresholds from "
        f"{len(tune_set)} tune sentences: topic {tuned['topic_threshold']:.3f}, "
        f"polarity bias {tuned['polarity_bias']:.3f}, "
        f"novelty {tuned['novelty_threshold']:.3f}"
    )
    if args.errors:
        for name, errs in results["errors"][args.errors].items():
            console.print(f"[bold]{name} errors on {args.errors} ({len(errs)})[/bold]")
            for e in errs:
                console.print(f"  {e['text']!r} -> {e['got']}")
    nat = results["sets"]["natural held-out"]
    tpl = results["sets"]["templated"]
    gap = nat["embedding"]["exact"] - nat["lexical"]["exact"]
    winner = "embedding" if gap > 0 else "lexical" if gap < 0 else "neither"
    ms_emb, ms_lex = nat["embedding"]["ms_per_sentence"], nat["lexical"]["ms_per_sentence"]
    verdict = (
        f"verdict: {winner} parser is better on natural held-out text "
        f"(exact {nat['embedding']['exact']:.1%} embedding vs {nat['lexical']['exact']:.1%} "
        f"lexical, {gap:+.1%}); templated exact {tpl['embedding']['exact']:.1%} vs "
        f"{tpl['lexical']['exact']:.1%}; embedding costs {ms_emb:.1f} ms vs {ms_lex:.2f} ms "
        "per sentence"
    )
    results["verdict"] = verdict
    console.print(verdict)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


if __name__ == "__main__":
    main()
