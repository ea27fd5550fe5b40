"""The task suite: named, versioned worlds whose phenomenon is proven by two hidden-state
oracles before any learner runs (``spec``: the registry and Gymnasium ids; ``oracles``: the
reference policies; ``check``: evaluation with common random numbers, the phenomenon check
and normalized scores). Importing ``recoworld`` registers every task's Gymnasium id.
"""

from __future__ import annotations

from recoworld.tasks.spec import TaskSpec, all_tasks, load_task, register_tasks, task_files

__all__ = ["TaskSpec", "all_tasks", "load_task", "register_tasks", "task_files"]
