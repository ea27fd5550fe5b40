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

from recoworld.simulators.parametric.params import (  # fmt: skip
    P_AFF_LR,
    P_CREATOR,
    P_ERA,
    P_ERA_SCALE,
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
    P_POPULARITY,
    P_POSITION,
    P_QUALITY,
    P_SAT_RATE,
    P_TEMPERATURE,
    P_WATCH_NOISE,
    P_WATCH_OFFSET,
    P_WATCH_SLOPE,
)


@njit(cache=True, nogil=True, inline="always")
def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True, nogil=True, inline="always")
def item_terms(
    b, j, item, lat_dot, topic_idx, topic_w, topic_n, quality, creator_of, nov_pop, item_pop,
    item_era, era_mean, interest_base, interest, era, novelty_session, fatigue, exposure,
    affinity, creator_clicks, seen, consumed, instr_vec, instr_age, p, comps,
):  # fmt: skip
    """Utility terms of ``item`` (slot j) for user ``b`` into comps[b, j, :] (the order of
    ``parametric.COMPONENTS``); returns (utility, novelty). ``lat_dot[b, j]`` holds the latent
    match, computed beforehand by ``_latent_dots`` (a separate tight loop: fused in here it
    ran several times slower). Interest is measured against the population's per-topic base
    (``interest_base``; 0.5 everywhere for sampled users); era match against its mean over
    the catalog for the user's era (``era_mean``: a table over eras 0, 1/(G-1), ..., 1,
    interpolated), so that the term averages 0 over the catalog for every user."""
    active = instr_age[b] < p[P_INSTR_MEMORY]
    s_int = 0.0
    s_fat = 0.0
    s_ins = 0.0
    s_new = 0.0
    for q in range(topic_n[item]):
        t = topic_idx[item, q]
        w = topic_w[item, q]
        s_int += w * (interest[b, t] - interest_base[t])
        s_fat += w * fatigue[b, t]
        x = exposure[b, t] / p[P_EXPOSURE_SCALE]
        if x < 20.0:  # beyond, exp(-x) ~ 0 (and denormal results are very slow)
            s_new += w * math.exp(-x)
        if active:
            s_ins += w * instr_vec[b, t]
    g = era_mean.shape[0] - 1
    x = min(max(era[b], 0.0), 1.0) * g
    lo = min(int(x), g - 1)
    era_base = era_mean[lo] + (x - lo) * (era_mean[lo + 1] - era_mean[lo])
    c = creator_of[item]
    nov = 0.5 * s_new + 0.25 * (creator_clicks[b, c] == 0.0) + 0.25 * nov_pop[item]
    if (seen[b, item >> 3] >> (item & 7)) & 1:
        nov *= 0.5
    terms = (
        p[P_INTEREST] * s_int,
        p[P_LATENT] * lat_dot[b, j],
        p[P_QUALITY] * (2.0 * quality[item] - 1.0),
        p[P_CREATOR] * affinity[b, c],
        p[P_NOVELTY] * (novelty_session[b] - p[P_PIVOT]) * nov,
        -p[P_FATIGUE] * s_fat,
        p[P_INSTRUCTION] * s_ins,
        p[P_POPULARITY] * item_pop[item],
        p[P_ERA] * (math.exp(-abs(item_era[item] - era[b]) / p[P_ERA_SCALE]) - era_base),
    )
    total = 0.0
    for q in range(9):
        comps[b, j, q] = terms[q]
        total += terms[q]
    if (consumed[b, item >> 3] >> (item & 7)) & 1:
        total -= 2.0
    return total, nov


@njit(cache=True, nogil=True, inline="always")
def _show(b, items, valid, n_valid, topic_idx, topic_w, topic_n, fatigue, seen, p):
    """A slate was shown to user b: fatigue decays, shown topics add a little, all items
    are marked seen."""
    for t in range(fatigue.shape[1]):
        fatigue[b, t] *= p[P_FATIGUE_DECAY]
    for j in range(items.shape[1]):
        item = items[b, j]
        seen[b, item >> 3] |= np.uint8(1 << (item & 7))
        if valid[b, j]:
            for q in range(topic_n[item]):
                fatigue[b, topic_idx[item, q]] += p[P_FATIGUE_SHOW] * topic_w[item, q] / n_valid


@njit(cache=True, nogil=True, inline="always")
def _consume(
    b, item, w, liked, new_follow, topic_idx, topic_w, topic_n, creator_of, interest, fatigue,
    exposure, affinity, creator_clicks, consumed, follows, clicked_topics, p,
):  # fmt: skip
    """User b clicked ``item`` and watched fraction w: creator affinity and follows, the
    consumed bit, fatigue, exposure and interest drift towards the clicked topics (which
    are added to clicked_topics[b])."""
    c = creator_of[item]
    if new_follow:
        follows[b, c] = True
    creator_clicks[b, c] += 1.0
    aff = affinity[b, c] + p[P_AFF_LR] * (w - 0.4 + 0.5 * liked)
    affinity[b, c] = min(max(aff, 0.0), 3.0)
    consumed[b, item >> 3] |= np.uint8(1 << (item & 7))
    n_q = topic_n[item]
    mass = 0.0
    for q in range(n_q):
        t = topic_idx[item, q]
        ct = topic_w[item, q]
        clicked_topics[b, t] += ct
        fatigue[b, t] += p[P_FATIGUE_CLICK] * ct
        exposure[b, t] += ct * w
        mass += ct
    # interest drifts towards this item's topics, away from the rest (each topic once,
    # from its value before the click; for a topic listed twice the last weight counts)
    rate = p[P_INTEREST_LR] * w
    for t in range(interest.shape[1]):
        target = 0.0
        for q in range(n_q):
            if topic_idx[item, q] == t:
                target = topic_w[item, q]
        x = interest[b, t] + rate * (target - mass * interest[b, t])
        interest[b, t] = min(max(x, 0.0), 1.0)


@njit(cache=True, nogil=True)
def apply_batch(
    active, items, valid, click, watch, like, follow, topic_idx, topic_w, topic_n, creator_of,
    interest, fatigue, exposure, affinity, creator_clicks, seen, consumed, follows, session_step,
    instr_age, clicked_topics, p,
):  # fmt: skip
    """State updates for responses decided elsewhere (the LLM user's generate mode): the
    same show/consume dynamics as ``respond_batch``, for every click of the slate."""
    for b in range(items.shape[0]):
        if not active[b]:
            continue
        n_valid = 0
        for j in range(items.shape[1]):
            n_valid += valid[b, j]
        _show(b, items, valid, max(n_valid, 1), topic_idx, topic_w, topic_n, fatigue, seen, p)
        for j in range(items.shape[1]):
            if click[b, j] and valid[b, j]:
                _consume(b, items[b, j], watch[b, j], like[b, j], follow[b, j], topic_idx,
                         topic_w, topic_n, creator_of, interest, fatigue, exposure, affinity,
                         creator_clicks, consumed, follows, clicked_topics, p)  # fmt: skip
        session_step[b] += 1
        instr_age[b] += 1


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
    items, topic_idx, topic_w, topic_n, item_latent, quality, creator_of, nov_pop, item_pop,
    item_era, era_mean, interest_base, interest, latent, era, novelty_session, fatigue, exposure,
    affinity, creator_clicks, seen, consumed, instr_vec, instr_age, p, comps, nov, util,
):  # fmt: skip
    lat_dot = np.empty(items.shape, dtype=np.float64)
    _latent_dots(items, item_latent, latent, lat_dot)
    for b in range(items.shape[0]):
        for j in range(items.shape[1]):
            util[b, j], nov[b, j] = item_terms(
                b, j, items[b, j], lat_dot, topic_idx, topic_w, topic_n, quality, creator_of,
                nov_pop, item_pop, item_era, era_mean, interest_base, interest, era,
                novelty_session, fatigue, exposure, affinity, creator_clicks, seen, consumed,
                instr_vec, instr_age, p, comps,
            )  # fmt: skip


@njit(cache=True, nogil=True)
def respond_batch(
    rng, active, items, valid, topic_idx, topic_w, topic_n, item_latent, quality, creator_of,
    nov_pop, item_pop, item_era, era_mean, interest_base, interest, latent, era, novelty_session,
    fatigue, exposure, affinity, creator_clicks, seen, consumed, instr_vec, instr_age, p, follows,
    patience, satisfaction, session_step, instr_in_session, click, watch, like, follow, gift,
    comps, nov, util, probs, leave, instructed, p_leave, unmet, choice, clicked_topics, pref,
    use_pref,
):  # fmt: skip
    """One step for every user (see the module docstring for the model). With ``use_pref``,
    ``pref[b, j]`` replaces the interest and latent terms of slot j (the LLM user's score
    mode: the preference comes from the model, fatigue/novelty/position from the state)."""
    n_users, k = items.shape
    lat_dot = np.empty(items.shape, dtype=np.float64)
    _latent_dots(items, item_latent, latent, lat_dot)
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
                    nov_pop, item_pop, item_era, era_mean, interest_base, interest, era,
                    novelty_session, fatigue, exposure, affinity, creator_clicks, seen, consumed,
                    instr_vec, instr_age, p, comps,
                )  # fmt: skip
                if use_pref:
                    util[b, j] += pref[b, j] - comps[b, j, 0] - comps[b, j, 1]
                    comps[b, j, 0] = pref[b, j]
                    comps[b, j, 1] = 0.0
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

        _show(b, items, valid, n_valid, topic_idx, topic_w, topic_n, fatigue, seen, p)
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
            _consume(b, item, w, liked, new_follow, topic_idx, topic_w, topic_n, creator_of,
                     interest, fatigue, exposure, affinity, creator_clicks, consumed, follows,
                     clicked_topics, p)  # fmt: skip
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
