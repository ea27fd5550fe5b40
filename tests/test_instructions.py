from __future__ import annotations

import itertools

import numpy as np
import pytest

from recoworld.catalog.movielens import ML100K_GENRES
from recoworld.catalog.synthetic import TOPIC_VOCABULARY
from recoworld.simulators.instructions.lexical import (
    Instruction,
    InstructionParser,
    render_instruction,
)

SYN = list(TOPIC_VOCABULARY)


@pytest.mark.parametrize("topics", [SYN, ML100K_GENRES])
def test_templates_parse_back_to_their_fields(topics):
    parser = InstructionParser(topics)
    for more, less, novelty, variant in itertools.product(
        topics[:6], [None, *topics[3:9]], [False, True], range(3)
    ):
        if more == less:
            continue
        inst = Instruction(more=[more], less=[less] if less else [], novelty=novelty)
        text = render_instruction(inst, variant)
        back = parser.parse(text)
        assert (back.more, back.less, back.novelty) == (inst.more, inst.less, inst.novelty), text


def test_free_text_cues():
    parser = InstructionParser(SYN)
    inst = parser.parse("No more politics. I'm sick of news, but I'd love some quick cooking!")
    assert inst.less == ["news"] and inst.more == ["cooking"]
    assert parser.parse("Show me something different").novelty
    assert parser.parse("").is_empty() and parser.parse(None).is_empty()
    assert parser.parse("great stuff, thanks").is_empty()


def test_vector_layout():
    parser = InstructionParser(SYN)
    vec = parser.vector("Fewer gaming clips please, more music. Surprise me with something new.")
    assert vec.shape == (len(SYN) + 1,)
    assert vec[SYN.index("gaming")] == -1 and vec[SYN.index("music")] == 1 and vec[-1] == 1
    assert np.count_nonzero(vec) == 3


def test_negated_more_cue_means_less():
    parser = InstructionParser(SYN)
    inst = parser.parse("I don't want fitness; I want travel.")
    assert inst.less == ["fitness"] and inst.more == ["travel"]
