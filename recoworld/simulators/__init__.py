"""Simulated users: the batched simulator contract, the parametric model, users fitted to
MovieLens, and the instructions users write."""

from recoworld.simulators.base import BatchState, Responses, UserSimulator
from recoworld.simulators.instructions.lexical import (
    Instruction,
    InstructionParser,
    render_instruction,
)
from recoworld.simulators.parametric.model import ParametricUserModel
from recoworld.simulators.parametric.movielens_fit import fit_movielens_population
from recoworld.simulators.parametric.state import FittedPopulation, UserState

__all__ = [
    "BatchState",
    "FittedPopulation",
    "Instruction",
    "InstructionParser",
    "ParametricUserModel",
    "Responses",
    "UserSimulator",
    "UserState",
    "fit_movielens_population",
    "render_instruction",
]
