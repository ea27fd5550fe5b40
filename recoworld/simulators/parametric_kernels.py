"""Compiled (numba) kernels of the parametric user model: one pass over the B users.

This module is imported on first use (by ``ParametricUserModel``), never by ``import
recoworld``: vLLM's CPU workers start with the *spawn* method, re-import the main module, and
then scan every loaded module for Triton kernels; llvmlite (numba's LLVM binding) trips that
scan and the engine fails to start. Keeping numba out of the package import keeps any
program whose main module only imports ``recoworld`` safe to start vLLM engines.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from recoworld.simulators.parametric_params import (
    P_AFF_LR,
    P_CREATOR,
    P_EXPOSURE_SCALE,
    P_FATIGUE,
    P_FATIGUE_CLICK,
    P_FATIGUE_DECAY,
    P_FATIGUE_SHOW,
    P_FOLLOW_AFF,
    P_FOLLOW_BIAS,
    P_GIFT_AFF,
    P_GIFT_BIAS,
    P_INSTR_MEMORY,
    P_INSTR_PROB,
    P_INSTRUCTION,
    P_INTEREST,
    P_INTEREST_LR,
    P_LATENT,
    P_LEAVE_BIAS,
    P_LEAVE_BORED,
    P_LEAVE_DEPTH,
    P_LEAVE_NOVELTY,
    P_LIKE_BIAS,
    P_LIKE_WATCH,
    P_MAX_INSTR,
    P_NO_CLICK,
    P_NOVELTY,
    P_PIVOT,
    P_POSITION,
    P_QUALITY,
    P_SAT_RATE,
    P_TEMPERATURE,
    P_WATCH_NOISE,
    P_WATCH_OFFSET,
    P_WATCH_SLOPE,
)  # fmt: skip


@njit(cache=True, nogil=True, inline="always")
def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True, nogil=True, inline="always")
def item_terms(
    b, j, item, lat_dot, topic_idx, topic_w, topic_n, quality, creator_of, nov_pop, interest,
    novelty_session, fatigue, exposure, affinity, creator_clicks, seen, consumed, instr_vec,
    instr_age, p, comps,
):  # fmt: skip
    """Utility terms of ``item`` (slot j) for user ``b`` into comps[b, j, :]; returns
    (utility, novelty). ``lat_dot[b, j]`` holds the latent match, computed beforehand by
    ``_latent_dots`` (a separate tight loop: fused in here it ran several times slower)."""
    active = instr_age[b] < p[P_INSTR_MEMORY]
    s_int = 0.0
    s_fat = 0.0
    s_ins = 0.0
    s_new = 0.0
    for q in range(topic_n[item]):
        t = topic_idx[item, q]
        w = topic_w[item, q]
        s_int += w * interest[b, t]
        s_fat += w * fatigue[b, t]
        x = exposure[b, t] / p[P_EXPOSURE_SCALE]
        if x < 20.0:  # beyond, exp(-x) ~ 0 (and denormal results are very slow)
            s_new += w * math.exp(-x)
        if active:
            s_ins += w * instr_vec[b, t]
    c = creator_of[item]
    nov = 0.5 * s_new + 0.25 * (creator_clicks[b, c] == 0.0) + 0.25 * nov_pop[item]
    if (seen[b, item >> 3] >> (item & 7)) & 1:
        nov *= 0.5
    terms = (
        p[P_INTEREST] * (s_int - 0.5),
        p[P_LATENT] * lat_dot[b, j],
        p[P_QUALITY] * (2.0 * quality[item] - 1.0),
        p[P_CREATOR] * affinity[b, c],
        p[P_NOVELTY] * (novelty_session[b] - p[P_PIVOT]) * nov,
        -p[P_FATIGUE] * s_fat,
        p[P_INSTRUCTION] * s_ins,
    )
    total = 0.0
    for q in range(7):
        comps[b, j, q] = terms[q]
        total += terms[q]
    if (consumed[b, item >> 3] >> (item & 7)) & 1:
        total -= 2.0
    return total, nov


@njit(cache=True, nogil=True)
def _latent_dots(items, item_latent, latent, out):
    """out[b, j] = item_latent[items[b, j]] . latent[b]."""
    for b in range(items.shape[0]):
        for j in range(items.shape[1]):
            item = items[b, j]
            s = 0.0
            for d in range(latent.shape[1]):
                s += item_latent[item, d] * latent[b, d]
            out[b, j] = s


@njit(cache=True, nogil=True)
def utility_batch(
    items, topic_idx, topic_w, topic_n, item_latent, quality, creator_of, nov_pop, interest, latent,
    novelty_session, fatigue, exposure, affinity, creator_clicks, seen, consumed, instr_vec,
    instr_age, p, comps, nov, util,
):  # fmt: skip
    lat_dot = np.empty(items.shape, dtype=np.float64)
    _latent_dots(items, item_latent, latent, lat_dot)
    for b in range(items.shape[0]):
        for j in range(items.shape[1]):
            util[b, j], nov[b, j] = item_terms(
                b, j, items[b, j], lat_dot, topic_idx, topic_w, topic_n, quality, creator_of,
                nov_pop, interest, novelty_session, fatigue, exposure, affinity, creator_clicks,
                seen, consumed, instr_vec, instr_age, p, comps,
            )  # fmt: skip


@njit(cache=True, nogil=True)
def respond_batch(
    rng, active, items, valid, topic_idx, topic_w, topic_n, item_latent, quality, creator_of,
    nov_pop, interest, latent, novelty_session, fatigue, exposure, affinity, creator_clicks, seen,
    consumed, instr_vec, instr_age, p, follows, patience, satisfaction, session_step,
    instr_in_session, click, watch, like, follow, gift, comps, nov, util, probs, leave,
    instructed, p_leave, unmet, choice, clicked_topics,
):  # fmt: skip
    """One step for every user (see the module docstring for the model)."""
    n_users, k = items.shape
    lat_dot = np.empty(items.shape, dtype=np.float64)
    _latent_dots(items, item_latent, latent, lat_dot)
    n_topics = fatigue.shape[1]
    temp = p[P_TEMPERATURE]
    for b in range(n_users):
        if not active[b]:  # a slot about to be replaced (vector-env autoreset): untouched
            continue
        # utilities and the MNL over valid slots + no-click (index k)
        top = p[P_NO_CLICK] / temp
        n_valid = 0
        slate_nov = 0.0
        for j in range(k):
            if valid[b, j]:
                util[b, j], nov[b, j] = item_terms(
                    b, j, items[b, j], lat_dot, topic_idx, topic_w, topic_n, quality, creator_of,
                    nov_pop, interest, novelty_session, fatigue, exposure, affinity,
                    creator_clicks, seen, consumed, instr_vec, instr_age, p, comps,
                )  # fmt: skip
                n_valid += 1
                slate_nov += nov[b, j]
                top = max(top, (util[b, j] - p[P_POSITION] * j) / temp)
        total = 0.0
        for j in range(k):
            if valid[b, j]:
                probs[b, j] = math.exp((util[b, j] - p[P_POSITION] * j) / temp - top)
                total += probs[b, j]
        probs[b, k] = math.exp(p[P_NO_CLICK] / temp - top)
        total += probs[b, k]
        u = rng.random() * total
        chosen = k
        for j in range(k + 1):
            if j == k or valid[b, j]:
                u -= probs[b, j]
                if u < 0.0:
                    chosen = j
                    break
        for j in range(k + 1):
            probs[b, j] /= total
        choice[b] = chosen

        # fatigue decays every step; shown topics add a little, the clicked item more
        for t in range(n_topics):
            fatigue[b, t] *= p[P_FATIGUE_DECAY]
        for j in range(k):
            item = items[b, j]
            seen[b, item >> 3] |= np.uint8(1 << (item & 7))
            if valid[b, j]:
                for q in range(topic_n[item]):
                    fatigue[b, topic_idx[item, q]] += p[P_FATIGUE_SHOW] * topic_w[item, q] / n_valid

        experience = 0.0
        if chosen < k:
            item = items[b, chosen]
            c = creator_of[item]
            w = _sig(p[P_WATCH_SLOPE] * util[b, chosen] + p[P_WATCH_OFFSET]
                     + p[P_WATCH_NOISE] * rng.normal(0.0, 1.0))  # fmt: skip
            aff = affinity[b, c]
            liked = rng.random() < _sig(p[P_LIKE_BIAS] + p[P_LIKE_WATCH] * w)
            already = follows[b, c]
            new_follow = False
            if liked and not already:
                new_follow = rng.random() < _sig(p[P_FOLLOW_BIAS] + p[P_FOLLOW_AFF] * aff)
            gifted = False
            if already or new_follow:
                gifted = rng.random() < _sig(p[P_GIFT_BIAS] + p[P_GIFT_AFF] * aff + w)
            click[b, chosen] = True
            watch[b, chosen] = w
            like[b, chosen] = liked
            follow[b, chosen] = new_follow
            gift[b, chosen] = gifted
            follows[b, c] = already or new_follow
            creator_clicks[b, c] += 1.0
            aff += p[P_AFF_LR] * (w - 0.4 + 0.5 * liked)
            affinity[b, c] = min(max(aff, 0.0), 3.0)
            consumed[b, item >> 3] |= np.uint8(1 << (item & 7))
            mass = 0.0
            for q in range(topic_n[item]):
                t = topic_idx[item, q]
                ct = topic_w[item, q]
                clicked_topics[b, t] = ct
                fatigue[b, t] += p[P_FATIGUE_CLICK] * ct
                exposure[b, t] += ct * w
                mass += ct
            for t in range(n_topics):
                x = interest[b, t] + p[P_INTEREST_LR] * w * (clicked_topics[b, t]
                                                             - mass * interest[b, t])  # fmt: skip
                interest[b, t] = min(max(x, 0.0), 1.0)
            experience = 0.4 + 0.6 * w
        satisfaction[b] += p[P_SAT_RATE] * (experience - satisfaction[b])
        session_step[b] += 1
        instr_age[b] += 1

        # leave, or write an instruction instead
        miss = novelty_session[b] - slate_nov / max(n_valid, 1)
        unmet[b] = max(miss, 0.0)
        logit = (p[P_LEAVE_BIAS] + p[P_LEAVE_BORED] * (1.0 - satisfaction[b])
                 + p[P_LEAVE_NOVELTY] * unmet[b] + p[P_LEAVE_DEPTH] * session_step[b]
                 - patience[b])  # fmt: skip
        p_leave[b] = _sig(logit)
        if rng.random() < p_leave[b]:
            if instr_in_session[b] < p[P_MAX_INSTR] and rng.random() < p[P_INSTR_PROB]:
                instructed[b] = True
            else:
                leave[b] = True
