"""Simulated users: the batched simulator contract, the parametric model, users fitted to
MovieLens, and the instructions users write."""

from recoworld.simulators.base import BatchState, Responses, UserSimulator
from recoworld.simulators.instructions import Instruction, InstructionParser, render_instruction
from recoworld.simulators.movielens_users import fit_movielens_population
from recoworld.simulators.parametric import FittedPopulation, ParametricUserModel, UserState

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
