"""docs/config.md is generated from the config dataclasses (`hero.config_docs`): the checked-in file must be what the
generator writes today, and every field it lists must carry a docstring (the table's "meaning" column)."""

import dataclasses
from pathlib import Path

from hero import config_docs

ROOT = Path(__file__).resolve().parents[1]


def _documented_configs() -> list[tuple[type, str]]:
    """Every (config class, dotted path) the reference has a table for: the roots and, below them, each field whose
    default is itself a config (the tables `config_docs.section` adds)."""
    out, seen = [], set()
    stack = list(reversed(config_docs.roots()))
    while stack:
        cls, path = stack.pop()
        if (cls, path) in seen:
            continue
        seen.add((cls, path))
        out.append((cls, path))
        nested = []
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if f.init and dataclasses.is_dataclass(default):
                nested.append((type(default), f"{path}.{f.name}"))
        stack += reversed(nested)
    return out


def test_config_reference_is_current():
    checked_in = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert checked_in == config_docs.render(), "docs/config.md is stale: run `python -m hero.config_docs`"


def test_every_field_of_the_reference_has_a_docstring():
    missing = []
    for cls, path in _documented_configs():
        docs = config_docs.field_docs(cls)
        missing += [f"{path}.{f.name} ({cls.__module__}.{cls.__qualname__})"
                    for f in dataclasses.fields(cls) if f.init and not docs.get(f.name)]
    assert not missing, "fields without a docstring (a string literal right under the field):\n" + "\n".join(missing)


def test_the_reference_covers_the_run_config_and_every_registered_task():
    from hero.tasks import TASKS
    from hero.train.config import RunConfig

    classes = {cls for cls, _ in _documented_configs()}
    assert RunConfig in classes and all(task.config_cls in classes for task in TASKS.values())


@dataclasses.dataclass(frozen=True)
class _Sample:
    documented: int = 1
    """Read by the generator."""
    bare: int = 2
    trailing: int = 3  # a comment is not a docstring


@dataclasses.dataclass(frozen=True)
class _SampleChild(_Sample):
    bare: int = 5
    """Documented where the subclass redeclares it."""
    own: str = "x"


def test_field_docs_finds_the_docstrings_written_under_fields_and_nothing_else():
    assert config_docs.field_docs(_Sample) == {"documented": "Read by the generator."}
    assert config_docs.field_docs(_SampleChild) == {"documented": "Read by the generator.",
                                                   "bare": "Documented where the subclass redeclares it."}
