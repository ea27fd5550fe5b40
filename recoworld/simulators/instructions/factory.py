"""The instruction parser named by ``WorldConfig.instruction_parser``."""

from __future__ import annotations

from recoworld.simulators.instructions.lexical import InstructionParser


def make_instruction_parser(kind: str, topic_names: list[str]) -> InstructionParser:
    """The parser named by ``WorldConfig.instruction_parser``: 'lexical' (topic names and cue
    words) or 'embedding' (MiniLM similarity; better on natural text, see
    ``benchmarks/instruction_parser.py``; its model loads on the first parse)."""
    if kind == "lexical":
        return InstructionParser(topic_names)
    if kind == "embedding":
        from recoworld.simulators.instructions.embedding import EmbeddingInstructionParser

        return EmbeddingInstructionParser(topic_names)
    raise ValueError(f"instruction_parser must be 'lexical' or 'embedding', got {kind!r}")
