"""EmbeddingInstructionParser with the real MiniLM encoder (loaded once for this module)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recoworld.catalog.movielens import ML100K_GENRES
from recoworld.simulators.instructions.embedding import EmbeddingInstructionParser
from recoworld.simulators.instructions.lexical import (
    Instruction,
    InstructionParser,
    render_instruction,
)

GENRES = list(ML100K_GENRES)


@pytest.fixture(scope="module")
def parser() -> EmbeddingInstructionParser:
    return EmbeddingInstructionParser(GENRES)


@pytest.mark.parametrize(
    ("text", "more", "less", "novelty"),
    [
        ("can u show me some scary movies", ["Horror"], [], False),
        ("no more cartoons pls", [], ["Animation"], False),
        ("ugh, so many dramas. give me comedies instead", ["Comedy"], ["Drama"], False),
        ("more sci-fi please!! and surprise me", ["Sci-Fi"], [], True),
    ],
)
def test_clear_sentences(parser, text, more, less, novelty):
    inst = parser.parse(text)
    assert (inst.more, inst.less, inst.novelty) == (more, less, novelty)


def test_agrees_with_lexical_parser_on_templates(parser):
    lexical = InstructionParser(GENRES)
    for more, less, novelty, variant in itertools.product(
        [None, "Action", "Film-Noir", "Children's"],
        [None, "Sci-Fi", "Western"],
        [False, True],
        range(3),
    ):
        inst = Instruction(
            more=[more] if more else [], less=[less] if less else [], novelty=novelty
        )
        text = render_instruction(inst, variant)
        expected = lexical.vector(text)
        assert np.array_equal(parser.vector(text), expected), text
        assert np.array_equal(expected, lexical.vector(inst)), text


@pytest.mark.parametrize("text", ["thanks, this is great", "what time is it", "lol ok", "", None])
def test_unrelated_text_gives_zeros(parser, text):
    vec = parser.vector(text)
    assert vec.shape == (len(GENRES) + 1,) and vec.dtype == np.float32
    assert not vec.any()


def test_cache(parser):
    text = "I'm tired of westerns, more musicals"
    first = parser.vector(text)
    assert text in parser._cache
    first[0] = 99.0  # callers get copies
    again = parser.vector(text)
    assert again[0] == 0.0
    assert again[GENRES.index("Western")] == -1 and again[GENRES.index("Musical")] == 1
    parser.set_thresholds(topic=parser.topic_threshold)
    assert text not in parser._cache  # changing thresholds drops cached vectors
    assert np.array_equal(parser.vector(text), again)


@pytest.mark.parametrize("bad", [42, 1.5, ["more horror"], b"more horror"])
def test_bad_input(parser, bad):
    with pytest.raises(TypeError, match="str"):
        parser.vector(bad)
    with pytest.raises(TypeError, match="str"):
        parser.parse(bad)
