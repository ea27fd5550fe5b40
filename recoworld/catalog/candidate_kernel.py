"""Compiled (numba) candidate sampling: M distinct items per user in one pass (imported on
first use by ``CandidateGenerator``; see ``recoworld.simulators.parametric.kernels`` for why
numba stays out of ``import recoworld``). ``sample_row`` is one user's draw, shared by the
world's compiled step (``recoworld.envs.single_kernels``)."""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True)
def sample_candidates(
    rng, history, counts, pop_prob, pop_alias, fresh, topic_items, topic_offsets, topic_counts,
    n_items, out,
):  # fmt: skip
    """Fill ``out[b]`` with M distinct items per user (``sample_row`` for every row)."""
    for b in range(out.shape[0]):
        sample_row(
            rng, history, b, counts, pop_prob, pop_alias, fresh, topic_items, topic_offsets,
            topic_counts, n_items, out, b,
        )  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def sample_row(
    rng, history, h, counts, pop_prob, pop_alias, fresh, topic_items, topic_offsets,
    topic_counts, n_items, out, b,
):  # fmt: skip
    """Fill ``out[b]`` with M distinct items for the user whose click-topic history is
    ``history[h]`` (float32 or float64: read as float64). Sources in slot order, then
    dedupe: a repeated item is redrawn uniformly, after 64 misses the first unused item is
    taken."""
    m = out.shape[1]
    n_topics = history.shape[1]
    j = 0
    for _ in range(counts[0]):  # popular: alias table
        u = rng.random() * n_items
        i = min(int(u), n_items - 1)
        out[b, j] = i if u - i < pop_prob[i] else pop_alias[i]
        j += 1
    for _ in range(counts[1]):  # random
        out[b, j] = rng.integers(0, n_items)
        j += 1
    if counts[2] > 0:  # interest: topic ~ observed history (+0.05), item ~ U(topic)
        total = 0.0
        for t in range(n_topics):
            if topic_counts[t] > 0:
                total += float(history[h, t]) + 0.05
        for _ in range(counts[2]):
            u = rng.random() * total
            topic = -1
            for t in range(n_topics):
                if topic_counts[t] > 0:
                    topic = t
                    u -= float(history[h, t]) + 0.05
                    if u < 0.0:
                        break
            k = int(rng.random() * topic_counts[topic])
            out[b, j] = topic_items[topic_offsets[topic] + min(k, topic_counts[topic] - 1)]
            j += 1
    for _ in range(counts[3]):  # fresh
        out[b, j] = fresh[rng.integers(0, len(fresh))]
        j += 1
    for j in range(1, m):  # dedupe (M is small: quadratic is cheapest)
        tries = 0
        while True:
            dup = False
            for q in range(j):
                if out[b, q] == out[b, j]:
                    dup = True
                    break
            if not dup:
                break
            tries += 1
            if tries <= 64:
                out[b, j] = rng.integers(0, n_items)
            else:
                out[b, j] = (out[b, j] + 1) % n_items
