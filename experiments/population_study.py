"""Population study: does the coupling between users show? Sharing, concentration, publishing.

A population of ``--users`` parametric users on one platform (synthetic catalog whose newest
``--reserve`` items are held back and published over time, sharing of liked items along a
Watts-Strogatz friendship graph, trending slots, arrivals up to ``--capacity``) is served by a
baseline policy (``make_baseline``: ``random`` or ``popular``) for ``--steps`` steps. Tracked:

(a) **reach of early-shared items**: the first ``--matched`` items (available from the start)
    that a user shared with a friend, in order of the first share (an item counts as shared
    when it sits in some inbox or fills a "shared by a friend" slot after a step), each next
    to a matched control: a never-shared item, available from the start, with the nearest
    reach, then clicks (what feeds trending), then catalog popularity at the shared item's
    first share. Reach = users (present or gone) ever shown the item. Shared items were
    liked, so they may be better than their controls on traits the match does not see;
    the same world is therefore also run with sharing off (``share_probability`` 0, same
    seed: the counterfactual), where the same items' reach gain is measured too. The
    sharing channel itself is measured directly: impressions through "shared by a friend"
    slots, the likes they bring and the implied reproduction number of a share.
(b) **creator exposure Gini** after every step (the population's creator ledger), with
    sharing on, sharing off, and uncoupled (no sharing, trending or follower slots);
(c) **published items**: how many of the items released during the run reached >= 10 users.

    python experiments/population_study.py [--users 2000] [--steps 100] [--policy random]
        [--out runs/population_study]

Outputs under ``--out`` (written atomically): ``study.json`` (config, per-step series and
headline numbers), ``study.png`` (three panels) and ``manifest.json``.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

REACH_THRESHOLD = 10


def study_config(args: argparse.Namespace, variant: str = "coupled") -> dict[str, Any]:
    """The population of the study: ``coupled`` (everything on), ``no_sharing``
    (share_probability 0) or ``uncoupled`` (no sharing, trending or follower slots; creators
    still publish)."""
    share_probability = 0.0 if variant != "coupled" else args.share_probability
    trending = 0 if variant == "uncoupled" else args.trending_slots
    follower = 0 if variant == "uncoupled" else 1
    return {
        "world": {
            "catalog": {"synthetic": {"n_items": args.items, "n_creators": 200, "seed": args.seed}},
            "candidates": {"n_candidates": 10},
            "episode": {"slate_size": 3, "text_info": "none", "max_sessions": args.max_sessions},
            "users": {"patience_mean": args.patience},
        },
        "n_users": args.users,
        "capacity": args.capacity or 3 * args.users,
        "arrival_rate": args.arrival_rate,
        "max_cycles": args.steps + 1,
        "social": {
            "degree": args.degree,
            "rewire": 0.1,
            "share_probability": share_probability,
            "slots": args.social_slots,
        },
        "trending": {"slots": trending, "decay": 0.95},
        "publishing": {
            "reserve": args.reserve,
            "rate": args.publish_rate,
            "follower_slots": follower,
        },
    }


def reach_all(pop: Any) -> np.ndarray:
    """[N] users (present or gone) ever shown each item (``Population.reach`` for all items)."""
    state = pop.world.state
    seen = state.seen[np.flatnonzero(pop.joined)]
    bits = np.unpackbits(seen, axis=1, bitorder="little")[:, : pop.catalog.n_items]
    return bits.sum(axis=0, dtype=np.int64)


def shared_now(pop: Any) -> np.ndarray:
    """Items that sit in an inbox or fill a 'shared by a friend' slot right now."""
    inbox = pop.inbox[pop.inbox >= 0]
    slots = pop.world.cands[pop.shared]
    return np.unique(np.concatenate([inbox, slots]))


@dataclass
class Run:
    """Per-step series of one population run."""

    n_start: int = 0
    n_released: int = 0
    joined: int = 0
    reach: list[np.ndarray] = field(default_factory=list)  # [N] per step
    clicks: list[np.ndarray] = field(default_factory=list)  # cumulative [N] per step
    first_share: dict[int, int] = field(default_factory=dict)  # item -> step index
    share_order: list[int] = field(default_factory=list)
    ever_shared: np.ndarray | None = None
    popularity: np.ndarray | None = None  # catalog popularity, in the population's order
    gini: list[float] = field(default_factory=list)
    present: list[int] = field(default_factory=list)
    published: list[int] = field(default_factory=list)
    published_reached: list[int] = field(default_factory=list)
    shared_slots: list[int] = field(default_factory=list)
    impressions: int = 0  # slots shown to users
    shared_impressions: np.ndarray | None = None  # [N] shown in a 'shared by a friend' slot
    shared_likes: int = 0  # likes of items shown in a shared slot


def simulate(
    config: Any, policy_name: str, steps: int, seed: int, progress: Any, label: str
) -> Run:
    from recoworld.envs.population.population import Population
    from recoworld.policies.baselines import make_baseline

    pop = Population(config)
    obs = pop.reset(seed)
    policy = make_baseline(policy_name, pop.world, seed)
    n_items = pop.catalog.n_items
    run = Run(
        n_start=pop.n_released,
        ever_shared=np.zeros(n_items, dtype=bool),
        popularity=pop.catalog.popularity.copy(),
        shared_impressions=np.zeros(n_items, dtype=np.int64),
    )
    clicks = np.zeros(n_items, dtype=np.int64)
    task = progress.add_task(label, total=steps, note="")
    for t in range(steps):
        actions = policy.act(obs)
        flags = np.take_along_axis(pop.shared, actions, axis=1)  # slots shared by a friend
        active = pop.alive.copy()
        obs, _, _, _, info = pop.step(actions)
        shown = info["shown"] & active[:, None]  # info["shown"] is True for absent rows too
        shown_shared = flags & shown
        run.impressions += int(shown.sum())
        run.shared_impressions += np.bincount(info["item_index"][shown_shared], minlength=n_items)
        run.shared_likes += int((info["like"] & shown_shared).sum())
        pop.arrivals(obs)
        reach = reach_all(pop)
        run.reach.append(reach)
        clicks = clicks + np.bincount(info["item_index"][info["click"]], minlength=n_items)
        run.clicks.append(clicks)
        now = shared_now(pop)
        new = now[~run.ever_shared[now]]
        # in order of the first share; ties within a step: the item in more inboxes first
        in_inboxes = np.bincount(pop.inbox[pop.inbox >= 0], minlength=n_items)
        for item in new[np.argsort(-in_inboxes[new], kind="stable")].tolist():
            run.first_share[item] = t
            run.share_order.append(item)
        run.ever_shared[new] = True
        run.gini.append(float(pop.exposure_gini[-1]))
        run.present.append(int(pop.alive.sum()))
        released = np.arange(run.n_start, pop.n_released)
        run.published.append(len(released))
        run.published_reached.append(int((reach[released] >= REACH_THRESHOLD).sum()))
        run.shared_slots.append(int(info["shared"][pop.alive].sum()))  # present users
        note = f"users {run.present[-1]:>5}  shared items {len(run.share_order):>5}"
        progress.update(task, advance=1, note=f"{note}  Gini {run.gini[-1]:.3f}")
    run.n_released = pop.n_released
    run.joined = int(pop.joined.sum())
    pop.close()
    return run


def match_controls(
    treated: list[int],
    first_share: dict[int, int],
    reach: np.ndarray,
    clicks: np.ndarray,
    ever_shared: np.ndarray,
    popularity: np.ndarray,
    n_start: int,
) -> list[int]:
    """For each treated item, a never-shared item (each used once) available from the start
    with the nearest reach at the treated item's first share, then the nearest clicks so far
    (what feeds trending), then the nearest catalog popularity."""
    logpop = np.log1p(popularity.astype(np.float64))
    pool = np.flatnonzero(~ever_shared[:n_start])
    controls: list[int] = []
    for item in treated:
        candidates = np.setdiff1d(pool, controls)
        t = first_share[item]
        for measure in (reach[t], clicks[t]):  # [N] each, at the share step
            gap = np.abs(measure[candidates] - measure[item])
            candidates = candidates[gap == gap.min()]
        controls.append(int(candidates[np.argmin(np.abs(logpop[candidates] - logpop[item]))]))
    return controls


def plot(study: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    on, off = study["series"], study["counterfactual_series"]
    bare = study["uncoupled_series"]
    steps = np.arange(1, len(on["exposure_gini"]) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    ax = axes[0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, pair in enumerate(study["shared_vs_control"][: study["plotted_pairs"]]):
        c = colors[i % len(colors)]
        ax.plot(steps, pair["reach_shared"], color=c, lw=2, label=f"item {pair['item']}")
        ax.plot(steps, pair["reach_control"], color=c, lw=1.2, ls="--")
        ax.plot(steps, pair["reach_no_sharing"], color=c, lw=1.0, ls=":")
    ax.set_title(
        "(a) reach of early-shared items (solid), matched never-shared\n"
        "controls (dashed), the same items with sharing off (dotted)",
        fontsize=10,
    )
    ax.set_xlabel("step")
    ax.set_ylabel("users shown the item")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(steps, on["exposure_gini"], color="tab:red", label="sharing on")
    ax.plot(steps, off["exposure_gini"], color="tab:gray", ls="--", label="sharing off")
    ax.plot(steps, bare["exposure_gini"], color="black", ls=":", label="uncoupled")
    ax.set_title("(b) creator exposure Gini", fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel("Gini of cumulative exposure")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.plot(steps, on["published"], color="tab:blue", label="published so far")
    ax.plot(
        steps,
        on["published_reached"],
        color="tab:green",
        label=f"published, shown to >= {REACH_THRESHOLD} users",
    )
    ax.plot(
        steps, off["published_reached"], color="tab:green", ls="--", label="the same, sharing off"
    )
    ax.set_title("(c) creators publishing held-back items", fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel("items")
    ax.legend(fontsize=8)
    fig.suptitle(study["title"], fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def series(run: Run) -> dict[str, list]:
    return {
        "exposure_gini": run.gini,
        "users_present": run.present,
        "published": run.published,
        "published_reached": run.published_reached,
        "shared_slots": run.shared_slots,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--capacity", type=int, help="most users ever; default 3 x --users")
    parser.add_argument("--arrival-rate", type=float, default=30.0, help="new users per step")
    parser.add_argument("--patience", type=float, default=3.0, help="users.patience_mean")
    parser.add_argument("--max-sessions", type=int, default=20, help="sessions per user")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--reserve", type=int, default=400, help="newest items held back")
    parser.add_argument("--publish-rate", type=float, default=2.0, help="items per step")
    parser.add_argument("--share-probability", type=float, default=0.25)
    parser.add_argument("--degree", type=int, default=6, help="friends per user (even)")
    parser.add_argument("--social-slots", type=int, default=1, help="shared candidate slots")
    parser.add_argument("--trending-slots", type=int, default=2)
    parser.add_argument("--policy", choices=("random", "popular"), default="random")
    parser.add_argument("--tracked", type=int, default=5, help="early-shared items plotted")
    parser.add_argument(
        "--matched", type=int, default=50, help="early-shared items in the headline comparison"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/population_study"))
    args = parser.parse_args()

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from recoworld.core.atomic import atomic_write, atomic_write_json
    from recoworld.core.manifest import write_manifest
    from recoworld.core.stats import paired_bootstrap_ci
    from recoworld.envs.population.config import PopulationConfig

    console = Console()
    config = PopulationConfig.model_validate(study_config(args, "coupled"))
    no_sharing = PopulationConfig.model_validate(study_config(args, "no_sharing"))
    uncoupled = PopulationConfig.model_validate(study_config(args, "uncoupled"))
    started = time.perf_counter()
    columns = (
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        on = simulate(config, args.policy, args.steps, args.seed, progress, "sharing on")
        off = simulate(no_sharing, args.policy, args.steps, args.seed, progress, "sharing off")
        bare = simulate(uncoupled, args.policy, args.steps, args.seed, progress, "uncoupled")
    seconds = time.perf_counter() - started

    reach_on, clicks_on, reach_off = np.stack(on.reach), np.stack(on.clicks), np.stack(off.reach)
    assert on.ever_shared is not None and on.popularity is not None
    popularity = on.popularity
    treated = [i for i in on.share_order if i < on.n_start][: max(args.tracked, args.matched)]
    controls = match_controls(
        treated, on.first_share, reach_on, clicks_on, on.ever_shared, popularity,
        on.n_start,
    )  # fmt: skip
    pairs = []
    for item, ctrl in zip(treated, controls, strict=True):
        t0 = on.first_share[item]
        pairs.append(
            {
                "item": int(item),
                "control": int(ctrl),
                "first_share_step": t0 + 1,
                "popularity": float(popularity[item]),
                "control_popularity": float(popularity[ctrl]),
                "clicks_at_share": int(clicks_on[t0, item]),
                "control_clicks_at_share": int(clicks_on[t0, ctrl]),
                "reach_at_share": int(reach_on[t0, item]),
                "control_reach_at_share": int(reach_on[t0, ctrl]),
                "final_reach": int(reach_on[-1, item]),
                "control_final_reach": int(reach_on[-1, ctrl]),
                "no_sharing_reach_at_share": int(reach_off[t0, item]),
                "no_sharing_final_reach": int(reach_off[-1, item]),
                "reach_shared": reach_on[:, item].tolist(),
                "reach_control": reach_on[:, ctrl].tolist(),
                "reach_no_sharing": reach_off[:, item].tolist(),
                "impressions_via_friends": int(on.shared_impressions[item]),
            }
        )
    gain = np.array([p["final_reach"] - p["reach_at_share"] for p in pairs])
    gain_ctrl = np.array([p["control_final_reach"] - p["control_reach_at_share"] for p in pairs])
    gain_off = np.array(
        [p["no_sharing_final_reach"] - p["no_sharing_reach_at_share"] for p in pairs]
    )
    vs_control = paired_bootstrap_ci(gain, gain_ctrl) if pairs else None
    vs_off = paired_bootstrap_ci(gain, gain_off) if pairs else None
    released = np.arange(on.n_start, on.n_released)
    released_off = np.arange(off.n_start, off.n_released)
    reach_bare = bare.reach[-1]
    released_bare = np.arange(bare.n_start, bare.n_released)
    # the sharing channel: impressions through 'shared by a friend' slots, the likes they
    # bring and the implied reproduction number of a share (new shared impressions that one
    # shared impression causes: like rate x friends x share probability x P(shown | slot))
    via_friends = int(on.shared_impressions.sum())
    slots_filled = int(np.sum(on.shared_slots))
    like_rate = on.shared_likes / max(via_friends, 1)
    shown_rate = via_friends / max(slots_filled, 1)
    reproduction = like_rate * args.degree * args.share_probability * shown_rate
    headline = {
        "users_joined": on.joined,
        "users_present_at_end": on.present[-1],
        "items_ever_shared": int(on.ever_shared.sum()),
        "impressions": on.impressions,
        "impressions_via_friends": via_friends,
        "share_of_impressions_via_friends": via_friends / max(on.impressions, 1),
        "likes_per_shared_impression": like_rate,
        "shared_slots_shown_rate": shown_rate,
        "share_reproduction_number": reproduction,
        "tracked_mean_impressions_via_friends": float(
            np.mean([p["impressions_via_friends"] for p in pairs])
        )
        if pairs
        else None,
        "matched_pairs": len(pairs),
        "shared_mean_reach_gain": float(gain.mean()) if pairs else None,
        "control_mean_reach_gain": float(gain_ctrl.mean()) if pairs else None,
        "no_sharing_mean_reach_gain": float(gain_off.mean()) if pairs else None,
        "gain_minus_control": vs_control,
        "gain_minus_no_sharing": vs_off,
        "pairs_shared_ahead_of_control": int((gain > gain_ctrl).sum()),
        "pairs_control_ahead": int((gain < gain_ctrl).sum()),
        "exposure_gini_first": on.gini[0],
        "exposure_gini_last": on.gini[-1],
        "exposure_gini_last_no_sharing": off.gini[-1],
        "exposure_gini_last_uncoupled": bare.gini[-1],
        "published": len(released),
        "published_reached_10": int((reach_on[-1, released] >= REACH_THRESHOLD).sum()),
        "published_median_reach": float(np.median(reach_on[-1, released]))
        if len(released)
        else None,
        "published_no_sharing": len(released_off),
        "published_reached_10_no_sharing": int(
            (reach_off[-1, released_off] >= REACH_THRESHOLD).sum()
        ),
        "published_uncoupled": len(released_bare),
        "published_reached_10_uncoupled": int((reach_bare[released_bare] >= REACH_THRESHOLD).sum()),
        "seconds": seconds,
    }
    study = {
        "title": (
            f"{args.users:,} users at the start (capacity {config.max_users:,}, "
            f"{args.arrival_rate:g} arrivals/step), {args.steps} steps, policy {args.policy}, "
            f"share p={args.share_probability}, {args.reserve} items held back"
        ),
        "config": config.model_dump(mode="json"),
        "policy": args.policy,
        "steps": args.steps,
        "seed": args.seed,
        "headline": headline,
        "plotted_pairs": args.tracked,
        "shared_vs_control": pairs,
        "series": series(on),
        "counterfactual_series": series(off),
        "uncoupled_series": series(bare),
        "published_items": {
            "item": released.tolist(),
            "final_reach": reach_on[-1, released].tolist(),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(study, args.out / "study.json")
    png = plot(study)
    atomic_write(args.out / "study.png", lambda tmp: Path(tmp).write_bytes(png))
    write_manifest(
        args.out, study["config"], args.seed, policy=args.policy, steps=args.steps,
        counterfactuals={
            "no_sharing": {"social.share_probability": 0.0},
            "uncoupled": {"social.share_probability": 0.0, "trending.slots": 0,
                          "publishing.follower_slots": 0},
        },
    )  # fmt: skip

    h = headline
    console.print(f"[bold]Population study[/]: {study['title']} ({seconds:.1f} s for three runs)")
    console.print(
        f"  users: {h['users_joined']} joined, {h['users_present_at_end']} present at the end; "
        f"{h['items_ever_shared']} items were shared by a friend"
    )
    console.print(
        f"  sharing channel: {h['impressions_via_friends']:,} of {h['impressions']:,} "
        f"impressions ({h['share_of_impressions_via_friends']:.1%}) came through 'shared by a "
        f"friend' slots; {h['likes_per_shared_impression']:.3f} likes per such impression, "
        f"so one share begets {h['share_reproduction_number']:.2f} further shared impressions "
        "(< 1: no cascades)"
    )
    for p in pairs[: args.tracked]:
        console.print(
            f"  item {p['item']} (first shared at step {p['first_share_step']}): reach "
            f"{p['reach_at_share']} -> {p['final_reach']} | matched control {p['control']}: "
            f"{p['control_reach_at_share']} -> {p['control_final_reach']} | same item, "
            f"sharing off: {p['no_sharing_reach_at_share']} -> {p['no_sharing_final_reach']}"
        )
    if vs_control is not None and vs_off is not None:
        console.print(
            f"  {len(pairs)} early-shared items, mean reach gain after the first share: "
            f"{h['shared_mean_reach_gain']:.1f} vs {h['control_mean_reach_gain']:.1f} for "
            f"matched controls (difference {vs_control['mean']:.1f}, 95% CI "
            f"[{vs_control['lo']:.1f}, {vs_control['hi']:.1f}]; shared ahead in "
            f"{h['pairs_shared_ahead_of_control']}, control in {h['pairs_control_ahead']}) and "
            f"{h['no_sharing_mean_reach_gain']:.1f} for the same items with sharing off "
            f"(difference {vs_off['mean']:.1f}, 95% CI [{vs_off['lo']:.1f}, {vs_off['hi']:.1f}])"
        )
    console.print(
        f"  creator exposure Gini: {h['exposure_gini_first']:.3f} (step 1) -> "
        f"{h['exposure_gini_last']:.3f} (step {args.steps}); sharing off: "
        f"{h['exposure_gini_last_no_sharing']:.3f}; uncoupled (no sharing, trending or "
        f"follower slots): {h['exposure_gini_last_uncoupled']:.3f}"
    )
    console.print(
        f"  published during the run: {h['published']} items, {h['published_reached_10']} "
        f"reached >= {REACH_THRESHOLD} users (median reach {h['published_median_reach']}); "
        f"sharing off: {h['published_reached_10_no_sharing']} of {h['published_no_sharing']}; "
        f"uncoupled: {h['published_reached_10_uncoupled']} of {h['published_uncoupled']}"
    )
    console.print(f"  wrote {args.out / 'study.json'}, {args.out / 'study.png'}")


if __name__ == "__main__":
    main()
