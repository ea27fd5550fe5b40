"""The frames of ``render_mode="rgb_array"``: one step of one user drawn as an RGB image.

This module owns the picture, nothing else: ``render_frame`` draws a step (the slate with
titles and topics, what the user did with each slot, a small user-state panel) and
``render_new_user`` draws the first frame of an episode (the first candidates of a new
user). The envs keep a ``LastStep`` of their last reset or step (only in ``"rgb_array"``)
and ``draw_last`` draws it when ``render()`` is called. The transcript of
``render_mode="ansi"`` is ``recoworld.envs.recoworld_env.format_step``.

A frame is ``[H, W, 3]`` uint8. H depends only on the slate size k (``frame_shape``), so
every frame of an env has the same size, as video encoders (``gymnasium.wrappers.RecordVideo``)
need; H and W are multiples of 16 (the encoders' macro block).

The satisfaction drawn in the user panel is hidden state, shown for people watching the
video; observations never contain it.

Pillow draws the frames with the font that ships with it (no system fonts). It is not a core
dependency: it comes with the ``clients`` extra and is imported on first use; without it,
``MissingExtraError`` names the extra.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recoworld.core.errors import require

if TYPE_CHECKING:
    from recoworld.catalog import Catalog
    from recoworld.envs.world import World

WIDTH = 640
HEADER_H = 32
SLOT_H = 44
PANEL_H = 92
PAD = 8
OUTCOME_W = 236  # right-hand column of a slot row: outcome badge, watch bar, marks

COLORS: dict[str, tuple[int, int, int]] = {
    "background": (255, 255, 255),
    "header": (38, 50, 56),
    "header_text": (255, 255, 255),
    "text": (33, 33, 33),
    "muted": (117, 117, 117),
    "separator": (224, 224, 224),
    # a slot row's background and its strong colour (left strip, badge) by outcome
    "clicked_bg": (226, 244, 225),
    "clicked": (46, 125, 50),
    "skipped_bg": (245, 245, 245),
    "skipped": (158, 158, 158),
    "duplicate_bg": (253, 236, 216),
    "duplicate": (230, 124, 20),
    "candidate_bg": (232, 240, 254),
    "candidate": (25, 103, 210),
    "like": (216, 27, 96),
    "follow": (57, 73, 171),
    "gift": (249, 168, 37),
    "bar_bg": (207, 216, 220),
    "watch": (67, 160, 71),
    "panel": (236, 239, 241),
    "instruction": (21, 101, 192),
    "reward_pos": (129, 199, 132),
    "reward_neg": (239, 154, 154),
}


def frame_shape(slate_size: int, width: int = WIDTH) -> tuple[int, int, int]:
    """``(H, W, 3)`` of every frame of an env with slates of ``slate_size`` items."""
    height = HEADER_H + slate_size * SLOT_H + PANEL_H
    return (_round16(height), _round16(width), 3)


def slot_box(j: int, width: int = WIDTH) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` (exclusive ends) of slate slot ``j``'s row: its
    background is ``COLORS["<outcome>_bg"]``, its left strip ``COLORS["<outcome>"]``."""
    y0 = HEADER_H + j * SLOT_H
    return (0, y0, _round16(width), y0 + SLOT_H)


def session_end_text(info: dict[str, Any], row: int) -> str:
    """How user ``row``'s session ended this step (for a step whose ``session_end`` is set):
    left or timed out, and whether it came back. Shared by the frame and the ansi text."""
    how = "left the session" if info["left"][row] else "session time is up"
    if info["returned"][row]:
        return f"{how}; came back after {float(info['gap_hours'][row]):.1f} h"
    return f"{how}; did not come back"


def render_frame(
    catalog: Catalog,
    info: dict[str, Any],
    reward: float,
    row: int = 0,
    width: int = WIDTH,
    *,
    max_sessions: int | None = None,
    max_session_steps: int | None = None,
) -> np.ndarray:
    """The frame of one step for user ``row`` of a (batched) step ``info`` (as returned by
    ``World.step``), with the item names of ``catalog``; ``reward`` is that user's reward.
    ``max_sessions``/``max_session_steps`` (optional) draw the session progress."""
    items = [int(i) for i in info["item_index"][row]]
    k = len(items)
    c = _Canvas(k, width)
    w = c.width

    session = int(info["session"][row]) + 1
    step = int(info["step_in_session"][row]) + 1
    of_sessions = f"/{max_sessions}" if max_sessions else ""
    of_steps = f"/{max_session_steps}" if max_session_steps else ""
    header = (
        f"episode {int(info['episode_id'][row])}  ·  session {session}{of_sessions}"
        f"  ·  step {step}{of_steps}"
    )
    c.text((PAD, HEADER_H // 2), header, c.big, COLORS["header_text"], "lm")
    color = COLORS["reward_pos"] if reward > 0 else COLORS["reward_neg"] if reward < 0 else None
    c.text((w - PAD, HEADER_H // 2), f"reward {reward:+.2f}", c.big,
           color or COLORS["header_text"], "rm")  # fmt: skip

    for j, item in enumerate(items):
        if not info["shown"][row, j]:
            _slot(c, j, catalog, item, "duplicate", "not shown (duplicate)")
        elif info["click"][row, j]:
            x = _slot(c, j, catalog, item, "clicked", "clicked") + 4
            watch = float(info["watch"][row, j])
            x0, y0, _, _ = _outcome_box(j, w)
            c.bar((x0, y0 + 27, x0 + 90, y0 + 35), watch, COLORS["watch"])
            c.text((x0 + 96, y0 + 31), f"watched {watch:.0%}", c.small, COLORS["text"], "lm")
            for mark in ("like", "follow", "gift"):
                if info[mark][row, j]:
                    x = c.pill((x, y0 + 13), mark, COLORS[mark], right=False) + 4
        else:
            _slot(c, j, catalog, item, "skipped", "skipped")

    y = _panel_title(c, k)
    sat = float(info["satisfaction"][row])
    c.text((PAD, y + 5), "satisfaction", c.small, COLORS["text"], "lm")
    c.bar((PAD + 84, y, PAD + 244, y + 11), sat, _satisfaction_color(sat))
    c.text((PAD + 252, y + 5), f"{sat:.2f}", c.small, COLORS["text"], "lm")
    if max_session_steps:
        x = w // 2 + 20
        c.text((x, y + 5), "session", c.small, COLORS["text"], "lm")
        c.bar((x + 56, y, x + 196, y + 11), step / max_session_steps, COLORS["candidate"])
        c.text((x + 204, y + 5), f"{step}/{max_session_steps}", c.small, COLORS["text"], "lm")
    y += 20
    instruction = info["instruction"][row] if "instruction" in info else None
    if instruction:
        text = c.small.fit(f'instruction: "{instruction}"', w - 2 * PAD)
        c.text((PAD, y), text, c.small, COLORS["instruction"])
    else:
        c.text((PAD, y), "no instruction", c.small, COLORS["muted"])
    y += 18
    if info["session_end"][row]:
        c.text((PAD, y), session_end_text(info, row), c.small, COLORS["text"])
    elif "mindset" in info and info["mindset"][row]:
        text = c.small.fit(f"mindset: {info['mindset'][row]}", w - 2 * PAD)
        c.text((PAD, y), text, c.small, COLORS["muted"])
    return c.frame


def render_new_user(
    catalog: Catalog,
    candidates: np.ndarray,
    episode_id: int,
    slate_size: int,
    width: int = WIDTH,
) -> np.ndarray:
    """The first frame of an episode: a new user and its first ``slate_size`` candidates
    (catalog indices ``candidates``); same size as the step frames of that slate size."""
    c = _Canvas(slate_size, width)
    c.text((PAD, HEADER_H // 2), f"episode {episode_id}  ·  new user", c.big,
           COLORS["header_text"], "lm")  # fmt: skip
    for j, item in enumerate(np.asarray(candidates)[:slate_size].tolist()):
        _slot(c, j, catalog, int(item), "candidate", "candidate")
    y = _panel_title(c, slate_size)
    text = f"a new user arrives; the first of its {len(candidates)} candidates are listed above"
    c.text((PAD, y), text, c.small, COLORS["text"])
    return c.frame


@dataclass
class LastStep:
    """What an env in ``render_mode="rgb_array"`` keeps of its last reset or step, so that
    ``render()`` draws the frame only when asked (``draw_last``). Batched over B users."""

    episode_id: np.ndarray  # [B]
    candidates: np.ndarray | None = None  # [B, M] catalog indices: needed for new users
    info: dict[str, Any] | None = None  # the world's step info; None after a reset
    reward: np.ndarray | None = None  # [B]
    new_user: np.ndarray | None = None  # [B] bool: rows reset at this step (autoreset)


def draw_last(world: World, last: LastStep | None, row: int = 0) -> np.ndarray:
    """The frame of user ``row`` for ``last`` (a blank frame before the first reset)."""
    k = world.slate_size
    if last is None:
        return _Canvas(k, WIDTH).frame
    if last.info is None or (last.new_user is not None and last.new_user[row]):
        assert last.candidates is not None
        return render_new_user(world.catalog, last.candidates[row], int(last.episode_id[row]), k)
    assert last.reward is not None
    episode = world.config.episode
    return render_frame(
        world.catalog, last.info, float(last.reward[row]), row,
        max_sessions=episode.max_sessions, max_session_steps=episode.max_session_steps,
    )  # fmt: skip


# ---------------------------------------------------------------------------- drawing


def _slot(c: _Canvas, j: int, catalog: Catalog, item: int, outcome: str, label: str) -> int:
    """Row ``j``: background and strip by outcome, position, title, topics, outcome badge
    (returns the badge's right end)."""
    x0, y0, x1, y1 = slot_box(j, c.width)
    strong = COLORS[outcome]
    c.rect((x0, y0, x1, y1 - 1), COLORS[f"{outcome}_bg"])
    c.rect((x0, y1 - 1, x1, y1), COLORS["separator"])
    c.rect((x0, y0, x0 + 5, y1 - 1), strong)
    c.text((PAD + 16, y0 + SLOT_H // 2), str(j + 1), c.big, strong, "mm")
    text_w = c.width - OUTCOME_W - 44 - PAD
    c.text((44, y0 + 5), c.big.fit(catalog.titles[item], text_w), c.big, COLORS["text"])
    topics = c.small.fit(", ".join(catalog.topic_list(item)), text_w)
    c.text((44, y0 + 25), topics, c.small, COLORS["muted"])
    bx, by, _, _ = _outcome_box(j, c.width)
    return c.pill((bx, by + 13), label, strong, right=False)


def _outcome_box(j: int, w: int) -> tuple[int, int, int, int]:
    _, y0, x1, y1 = slot_box(j, w)
    return (x1 - OUTCOME_W, y0, x1 - PAD, y1)


def _panel_title(c: _Canvas, k: int) -> int:
    y = HEADER_H + k * SLOT_H + 6
    c.text((PAD, y), "user state (hidden, for viewers: never in the observation)", c.small,
           COLORS["muted"])  # fmt: skip
    return y + 18


def _satisfaction_color(s: float) -> tuple[int, int, int]:
    """Red (0) through amber to green (1)."""
    s = min(max(s, 0.0), 1.0)
    red, amber, green = (229, 57, 53), (251, 192, 45), (67, 160, 71)
    a, b, t = (red, amber, s / 0.5) if s < 0.5 else (amber, green, (s - 0.5) / 0.5)
    return tuple(round(p + (q - p) * t) for p, q in zip(a, b, strict=True))  # type: ignore[return-value]


class _Font:
    """Pillow's bundled font, each glyph rasterised once. Pillow rasterises every glyph of
    every string it draws (~17 µs a glyph); here a string's coverage mask is composed from
    cached glyphs with numpy (no kerning: the font is hinted to whole-pixel advances)."""

    def __init__(self, font: Any) -> None:
        self.font = font
        bottom = max(font.getbbox(ch)[3] for ch in "Agjpqy|(),É")
        self.height = int(bottom) + 1  # row 0 is the ascender line (Pillow's anchor "la")
        self._glyphs: dict[str, tuple[np.ndarray, int, int, int]] = {}
        self._masks: dict[str, np.ndarray] = {}

    def glyph(self, ch: str) -> tuple[np.ndarray, int, int, int]:
        """``(coverage [h, w] uint8, x offset, y offset, advance)`` of one character."""
        g = self._glyphs.get(ch)
        if g is None:
            image, image_draw, _ = _pil()
            x0, y0, x1, y1 = (int(v) for v in self.font.getbbox(ch))
            advance = round(self.font.getlength(ch))
            if x1 <= x0 or y1 <= y0:
                g = (np.zeros((0, 0), np.uint8), 0, 0, advance)
            else:
                im = image.new("L", (x1 - x0, y1 - y0), 0)
                image_draw.Draw(im).text((-x0, -y0), ch, font=self.font, fill=255)
                g = (np.asarray(im), x0, y0, advance)
            self._glyphs[ch] = g
        return g

    def length(self, text: str) -> int:
        return sum(self.glyph(ch)[3] for ch in text)

    def fit(self, text: str, max_px: int) -> str:
        """``text``, cut with an ellipsis to fit ``max_px`` pixels."""
        if self.length(text) <= max_px:
            return text
        budget = max_px - self.length("…")
        used, n = 0, 0
        for ch in text:
            used += self.glyph(ch)[3]
            if used > budget:
                break
            n += 1
        return text[:n].rstrip() + "…"

    def mask(self, text: str) -> np.ndarray:
        """Coverage of ``text`` drawn from (0, 0), ``[height, 3 * width]`` uint8 (each value
        repeated for the three channels of a row of RGB pixels)."""
        m = self._masks.get(text)
        if m is None:
            m = np.zeros((self.height, self.length(text) + 2), np.uint8)
            x = 0
            for ch in text:
                cov, dx, dy, advance = self.glyph(ch)
                if cov.size:
                    x0, y0 = max(x + dx, 0), max(dy, 0)
                    h = min(cov.shape[0] - (y0 - dy), m.shape[0] - y0)
                    w = min(cov.shape[1] - (x0 - x - dx), m.shape[1] - x0)
                    part = cov[y0 - dy : y0 - dy + h, x0 - x - dx : x0 - x - dx + w]
                    np.maximum(m[y0 : y0 + h, x0 : x0 + w], part, out=m[y0 : y0 + h, x0 : x0 + w])
                x += advance
            m = np.repeat(m, 3, axis=1)
            if len(self._masks) >= 1024:  # bounded (~16 MB): titles change every step
                self._masks.clear()
            self._masks[text] = m
        return m


class _Fonts:
    def __init__(self, big: _Font, small: _Font) -> None:
        self.big, self.small = big, small


def _pil() -> tuple[Any, Any, Any]:
    """``(Image, ImageDraw, ImageFont)``, after checking Pillow is installed."""
    require("PIL", "clients", "render_mode='rgb_array'")
    from PIL import Image, ImageDraw, ImageFont

    return Image, ImageDraw, ImageFont


@functools.cache
def _fonts() -> _Fonts:
    _, _, image_font = _pil()
    from PIL import features

    if features.check("freetype2"):  # Pillow's bundled scalable font (Aileron)
        return _Fonts(
            _Font(image_font.load_default(size=14)), _Font(image_font.load_default(size=12))
        )
    font = _Font(image_font.load_default())  # Pillow built without FreeType: its bitmap font
    return _Fonts(font, font)


@functools.cache
def _template(k: int, width: int) -> np.ndarray:
    """The static part of a frame: background, header bar, panel."""
    h, w, _ = frame_shape(k, width)
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = COLORS["background"]
    frame[:HEADER_H] = COLORS["header"]
    frame[HEADER_H + k * SLOT_H :] = COLORS["panel"]
    frame.flags.writeable = False
    return frame


class _Canvas:
    """A frame being drawn: a copy of the template plus drawing primitives. They work on
    the frame seen as ``[H, 3 * W]`` rows of channel values, so numpy's inner loops run over
    whole rows (on ``[..., 3]`` they run three values at a time, ~10x slower)."""

    def __init__(self, k: int, width: int) -> None:
        _pil()
        fonts = _fonts()
        self.big, self.small = fonts.big, fonts.small
        self.frame = _template(k, width).copy()
        self.height, self.width = self.frame.shape[:2]
        self.rows = self.frame.reshape(self.height, 3 * self.width)

    def rect(self, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> None:
        """Fill ``box`` ``(x0, y0, x1, y1)``, exclusive ends."""
        x0, y0, x1, y1 = box
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.width), min(y1, self.height)
        if x1 > x0 and y1 > y0:
            self.rows[y0:y1, 3 * x0 : 3 * x1] = _color_row(color, self.width, np.uint8)[
                : 3 * (x1 - x0)
            ]

    def text(
        self,
        xy: tuple[int, int],
        text: str,
        font: _Font,
        color: tuple[int, int, int],
        anchor: str = "la",
    ) -> None:
        """Draw ``text`` at ``xy``; ``anchor`` as Pillow's: horizontal l/m/r, vertical a
        (top: the ascender line) or m (middle)."""
        m = font.mask(text)
        h, w = m.shape[0], m.shape[1] // 3
        x, y = xy
        x -= {"l": 0, "m": (w - 2) // 2, "r": w - 2}[anchor[0]]
        y -= {"a": 0, "m": h // 2}[anchor[1]]
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, self.width), min(y + h, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        a = m[y0 - y : y1 - y, 3 * (x0 - x) : 3 * (x1 - x)].astype(np.uint16)
        region = self.rows[y0:y1, 3 * x0 : 3 * x1]
        out = region * (255 - a)
        out += _color_row(color, self.width, np.uint16)[: 3 * (x1 - x0)] * a
        out += 127
        out //= 255
        region[:] = out

    def bar(
        self, box: tuple[int, int, int, int], fraction: float, color: tuple[int, int, int]
    ) -> None:
        """A progress bar in ``box``, filled to ``fraction`` (clipped to [0, 1])."""
        x0, y0, x1, y1 = box
        self.rect(box, COLORS["bar_bg"])
        fill = round((x1 - x0) * min(max(fraction, 0.0), 1.0))
        if fill > 0:
            self.rect((x0, y0, x0 + fill, y1), color)

    def pill(self, at: tuple[int, int], text: str, color: tuple[int, int, int], right: bool) -> int:
        """A white label on a ``color`` box; ``at`` is its right (or left) middle. Returns
        the box's other end."""
        tw = self.small.length(text) + 10
        x, y = at
        x0, x1 = (x - tw, x) if right else (x, x + tw)
        self.rect((x0, y - 8, x1, y + 9), color)
        self.text(((x0 + x1) // 2, y), text, self.small, (255, 255, 255), "mm")
        return x0 if right else x1


@functools.lru_cache(maxsize=256)
def _color_row(color: tuple[int, int, int], width: int, dtype: type) -> np.ndarray:
    """``color`` repeated for a row of ``width`` pixels, ``[3 * width]`` (read-only)."""
    row = np.tile(np.asarray(color, dtype), width)
    row.flags.writeable = False
    return row


def _round16(n: int) -> int:
    return -(-n // 16) * 16
