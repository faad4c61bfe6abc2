"""The task registry: one entry per downstream task family, the single place the platform learns what tasks
exist and which datasets each reads.

A task is a `hero.tasks.downstream.DownstreamTask` subclass that owns everything about itself: its config
(``config_cls``), head and loss (the module), collate, how it writes predictions (``write_predictions``), how a
prediction file is scored (``score``), its headline metrics (``headlines``) and the datasets it reads
(``datasets``: annotation prefix -> annotation form). ``@register_task`` on the class makes it known to the
trainer (``task: <dataset>``), prediction, the evaluate pipeline and corpus ingestion. See docs/adding-a-task.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from hero.config import ConfigError
from hero.corpus.annotations import register_dataset

if TYPE_CHECKING:
    from hero.tasks.downstream import DownstreamTask

T = TypeVar("T", bound="type[DownstreamTask]")

TASKS: dict[str, type["DownstreamTask"]] = {}
"""Task family name -> task class, in registration order."""
_DATASET_TASK: dict[str, str] = {}


def register_task(cls: T) -> T:
    """Class decorator: register a downstream task family and the datasets it reads.

    Raises:
        ValueError: the class lacks a name, datasets or headlines, or a name / dataset is taken by another task.
    """
    name = cls.name
    if not name or not cls.datasets or not cls.headlines:
        raise ValueError(f"{cls.__name__}: a task needs a name, datasets and headlines to be registered")
    if TASKS.get(name, cls) is not cls:
        raise ValueError(f"task {name!r} is already registered by {TASKS[name].__name__}")
    for dataset, form in cls.datasets.items():
        if _DATASET_TASK.get(dataset, name) != name:
            raise ValueError(f"dataset {dataset!r} is already read by task {_DATASET_TASK[dataset]!r}")
    for dataset, form in cls.datasets.items():
        register_dataset(dataset, form)
        _DATASET_TASK[dataset] = name
    TASKS[name] = cls
    return cls


def unregister_task(name: str) -> None:
    """Forget a task family and its datasets (tests that register a throwaway task clean up with it)."""
    cls = TASKS.pop(name)
    for dataset in cls.datasets:
        _DATASET_TASK.pop(dataset, None)


def datasets() -> tuple[str, ...]:
    """Every dataset some registered task reads."""
    return tuple(_DATASET_TASK)


def task_of_dataset(dataset: str) -> type["DownstreamTask"]:
    """The task class that reads ``dataset``; a `ConfigError` naming the known datasets otherwise."""
    if dataset not in _DATASET_TASK:
        raise ConfigError(f"task: unknown dataset {dataset!r} (known: pretrain, {', '.join(_DATASET_TASK)})")
    return TASKS[_DATASET_TASK[dataset]]


def headlines(dataset: str) -> tuple[str, ...]:
    """The metrics ``dataset`` is judged by (its task's ``headlines``; HERO's headline number first)."""
    return task_of_dataset(dataset).headlines
