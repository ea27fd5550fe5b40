"""The task registry: named, versioned, frozen worlds (``TaskSpec``), read from the YAML files
in ``recoworld/tasks/data/`` (``<Name>-v<version>.yaml``), and their Gymnasium ids.

A task file has two sections: ``task:`` (what the recommender must learn, the phenomenon,
the two oracles that prove it, the margin the proof needs, the training budget, the
pre-registered expectations and — once the phenomenon check has run — the reference scores)
and ``world:`` (the frozen ``WorldConfig``; a ``population:`` section for the population
task). A task never changes once learners have seen it: a change is a new file with the next
version. ``register_tasks`` registers ``recoworld/<Name>-v<version>`` for each file (the
vector env as its ``vector_entry_point``); only the file names are read at import.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import yaml
from pydantic import Field

from recoworld.core.atomic import atomic_write_text
from recoworld.core.config import StrictModel, read_yaml_mapping
from recoworld.envs.config import WorldConfig, resolve_world_config

FILE_RE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)-v(?P<version>\d+)\.yaml$")
POPULATION_RE = re.compile(r"^population:", re.MULTILINE)
REFERENCE_RE = re.compile(r"^(?:# Written by[^\n]*\n)?reference:", re.MULTILINE)
Lens = Literal[
    "oracle",
    "population",
    "static_novelty",
    "no_instruction",
    "no_creator",
    "old_quality",
    "no_coupled",
]
"""Oracle lenses (``recoworld.tasks.oracles``): how a hidden-state reference policy sees the
users' utility."""


class ReferenceScores(StrictModel):
    """Raw scores of the reference policies on the task's evaluation protocol (the mean over
    the check's seeds of each seed's mean over user lives): the anchors of normalized
    scores (0 = ``random``, 100 = the exploiting oracle)."""

    metrics: dict[str, dict[str, float]] = Field(
        description="metric -> policy -> value (policies: random, popular, blind, exploit)."
    )
    difference: dict[str, float] = Field(
        description="exploit - blind mean return: mean, lo, hi (paired 95% bootstrap CI)."
    )
    required: float = Field(description="margin x (exploit - random) mean return.")
    valid: bool = Field(description="difference.lo > required: the phenomenon is proven.")
    seeds: list[int]
    episodes: int
    users: int
    commit: str = Field("", description="The git commit the check ran at.")


class TaskSpec(StrictModel):
    """One task (see the module docstring); ``world_config()`` builds its world."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    version: int = Field(ge=0)
    summary: str
    learn: str = Field(description="What the recommender must learn.")
    phenomenon: str = Field(description="The hidden phenomenon the task tests.")
    exploit: Lens = Field(description="The oracle that reads (and exploits) the phenomenon.")
    exploit_reads: str
    blind: Lens = Field(description="The oracle that cannot read the phenomenon.")
    blind_reads: str
    margin: float = Field(
        ge=0.0,
        le=1.0,
        description="Valid iff the lower end of the paired 95% CI of exploit - blind mean "
        "return exceeds margin x (exploit - random).",
    )
    budget_steps: int = Field(ge=1, description="Training budget per run, in env steps.")
    eval_users: int = Field(64, ge=1, description="Parallel users of an evaluation.")
    eval_episodes: int = Field(200, ge=1, description="User lives per evaluation seed.")
    check_seeds: list[int] = Field(
        default_factory=lambda: [1000, 1001, 1002, 1003, 1004],
        min_length=1,
        description="Evaluation seeds of the phenomenon check and of the benchmark "
        "(distinct from training seeds).",
    )
    algorithms: list[str] = Field(
        default_factory=list, description="Algorithms the benchmark trains on this task."
    )
    baselines: list[str] = Field(
        default_factory=lambda: ["random", "popular", "linucb"],
        description="Baselines the benchmark evaluates beside the oracles.",
    )
    expected: dict[str, str] = Field(
        default_factory=dict,
        description="Pre-registered expectation per algorithm (from its paper), written "
        "before any learner ran on the task.",
    )
    reference: ReferenceScores | None = None
    kind: Literal["gym", "pettingzoo"] = "gym"
    path: Path = Field(description="The task file.")
    world: dict[str, Any] = Field(default_factory=dict, description="The raw world section.")
    population: dict[str, Any] | None = Field(None, description="The raw population section.")

    @property
    def id(self) -> str:
        return f"recoworld/{self.name}-v{self.version}"

    @property
    def key(self) -> str:
        """``<Name>-v<version>``: the task's name in CLIs and result files."""
        return f"{self.name}-v{self.version}"

    def world_config(self, overrides: dict[str, Any] | None = None) -> WorldConfig:
        """The task's world (``overrides`` merged in: then it is no longer the task)."""
        world = self.world if self.population is None else self.population.get("world", {})
        return resolve_world_config(world, overrides)


def task_dir() -> Path:
    return Path(__file__).resolve().parent / "data"


def task_files() -> dict[str, Path]:
    """``<Name>-v<version>`` -> task file, for every task shipped with the package."""
    out = {}
    for path in sorted(task_dir().glob("*.yaml")):
        if FILE_RE.match(path.name):
            out[path.stem] = path
    return out


@functools.cache
def load_task(key: str) -> TaskSpec:
    """The task ``<Name>-v<version>`` (or its Gymnasium id ``recoworld/<Name>-v<version>``)."""
    key = key.removeprefix("recoworld/")
    files = task_files()
    if key not in files:
        raise ValueError(f"unknown task {key!r}; available: {', '.join(files)}")
    return read_task(files[key])


def read_task(path: Path) -> TaskSpec:
    """A task from its file; the file name must match the task's name and version."""
    raw = read_yaml_mapping(path)
    match = FILE_RE.match(path.name)
    if match is None:
        raise ValueError(f"{path}: task files are named <Name>-v<version>.yaml")
    unknown = set(raw) - {"task", "world", "population", "reference"}
    if unknown or "task" not in raw:
        raise ValueError(f"{path}: expected a 'task:' section and 'world:' or 'population:'")
    spec = TaskSpec.model_validate(
        {**raw["task"], "path": path, "world": raw.get("world") or {},
         "population": raw.get("population"), "reference": raw.get("reference"),
         "kind": "pettingzoo" if "population" in raw else "gym"}
    )  # fmt: skip
    if (spec.name, str(spec.version)) != (match["name"], match["version"]):
        raise ValueError(f"{path}: the file name says {path.stem}, the task says {spec.key}")
    return spec


def write_reference(task: TaskSpec, reference: ReferenceScores) -> None:
    """Write ``reference`` as the task file's last section (replacing an earlier one); the
    rest of the file, comments included, is kept byte for byte."""
    text = task.path.read_text()
    head = REFERENCE_RE.split(text, maxsplit=1)[0].rstrip("\n")
    body = yaml.safe_dump(
        {"reference": reference.model_dump(mode="json")}, sort_keys=False, width=96
    )
    note = "# Written by `recoworld tasks check --write-reference` (the phenomenon check).\n"
    atomic_write_text(f"{head}\n{note}{body}", task.path)
    load_task.cache_clear()


def all_tasks() -> list[TaskSpec]:
    return [load_task(key) for key in task_files()]


def register_tasks() -> list[str]:
    """Register every gym task as ``recoworld/<Name>-v<version>`` (idempotent); returns the
    ids. The population task is a PettingZoo env (``recoworld.tasks.parallel_env``)."""
    ids = []
    for key, path in task_files().items():
        if POPULATION_RE.search(path.read_text()):
            continue
        env_id = f"recoworld/{key}"
        ids.append(env_id)
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="recoworld.envs.recoworld_env:RecoWorldEnv",
            vector_entry_point="recoworld.envs.vector_env:RecoWorldVectorEnv",
            kwargs={"config": str(path)},
            disable_env_checker=False,
        )
    return ids
