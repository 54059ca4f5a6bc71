"""Tasks: one file per data set or benchmark, each a `Task` registered by name.

A task loads its rows (local path or hub id), builds the prompt, extracts the answer from a response and scores
it. The same object serves evaluation and the training rewards (the accuracy reward reuses `Task.score`).
Adding a benchmark is one new file in this folder that defines a `Task` subclass decorated with `@register_task`.
"""

from __future__ import annotations

from intuitor.tasks.base import TASKS, Task, get_task, load_all, register_task


__all__ = ["TASKS", "Task", "get_task", "register_task", "load_all"]
