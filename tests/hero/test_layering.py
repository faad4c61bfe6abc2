"""Import layers of hero/ (docs/architecture.md#layers): a module imports only modules of its own layer or a lower one.

The imports are read from the source (every ``import`` statement, those inside functions included, since a lazy
import is a dependency all the same), so a violation is caught before anything runs. On top of the layers: the
packages form no cycle, a package's ``__init__`` (run whenever any module inside it is imported) loads nothing
above its lowest module, and some contracts are named on their own. The last test keeps the runtime check: every
hero module imports in a fresh interpreter where the orchestration packages cannot be imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

HERO = Path(__file__).resolve().parents[2] / "hero"

LAYERS: Sequence[tuple[str, Sequence[str]]] = (
    # lowest first; an entry names a module or a package with everything in it (the longest entry wins), except
    # "hero", which names only the package's own __init__ (its public names, loaded lazily)
    ("foundation", ("hero.config", "hero.storage")),
    ("metrics", ("hero.metrics",)),
    ("data", ("hero.text", "hero.corpus", "hero.synth", "hero.features", "hero.data")),
    ("model", ("hero.model", "hero.presets")),
    ("tasks", ("hero.tasks", "hero")),
    ("runs", ("hero.train", "hero.compat")),
    ("apps", ("hero.eval", "hero.bench", "hero.demo", "hero.feature_bench", "hero.config_docs")),
)

CONTRACTS: Sequence[tuple[str, str, str]] = (
    # (importer, forbidden import, why): each also holds for everything inside the named packages
    *(("hero", tool, "hero runs alone under torchrun") for tool in ("kedro", "mlflow", "optuna", "dvc", "pipelines")),
    ("hero.model", "hero.tasks", "the encoder knows no objective; converters building task models are hero.compat"),
    ("hero.corpus", "hero.features", "hero.features reads manifests from hero.corpus"),
)


# ----------------------------------------------------------------------------------------------- the checker
@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    line: int
    at_load: bool
    """False for an import inside a function: it runs when the function is called, not when the module loads."""


def module_files(root: Path, package: str) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module in the package folder ``root`` named ``package``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: Iterable[str]) -> None:
        self.module, self.known, self.depth = module, set(known), 0
        self.base = module if is_package else module.rpartition(".")[0]
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt) -> None:
        self.found.append(Import(self.module, target, node.lineno, self.depth == 0))

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.base.split(".")
            base = parts[: len(parts) - node.level + 1]  # level 1: this package, 2: its parent, ...
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        self._add(source, node)
        for alias in node.names:  # `from pkg import module` imports that module too
            if f"{source}.{alias.name}" in self.known:
                self._add(f"{source}.{alias.name}", node)


def collect_imports(files: Mapping[str, Path]) -> list[Import]:
    """Every import statement of every module in ``files`` (``module_files``), resolved to dotted names."""
    out = []
    for module, path in files.items():
        collector = _Collector(module, path.name == "__init__.py", files)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        out += collector.found
    return out


def _inside(module: str, name: str) -> bool:
    return module == name or module.startswith(name + ".")


def layer_of(module: str, layers: Sequence[tuple[str, Sequence[str]]], root: str) -> int | None:
    """Index into ``layers`` of the longest entry that names ``module`` or a package holding it (the root package's
    entry names only the root module itself); None when no entry does."""
    best: tuple[int, int] | None = None
    for i, (_, entries) in enumerate(layers):
        for e in entries:
            if (module == e if e == root else _inside(module, e)) and (best is None or len(e) > best[1]):
                best = (i, len(e))
    return None if best is None else best[0]


def _where(imp: Import, files: Mapping[str, Path]) -> str:
    path = Path(*imp.importer.split("."))
    path = path / "__init__.py" if files[imp.importer].name == "__init__.py" else path.with_suffix(".py")
    return f"{path.as_posix()}:{imp.line}"


def unmapped_modules(files: Mapping[str, Path], layers, root: str) -> list[str]:
    return [m for m in files if layer_of(m, layers, root) is None]


def upward_imports(imports: Iterable[Import], files: Mapping[str, Path], layers, root: str) -> list[str]:
    """One line per import that reaches above its module's layer."""
    out = []
    for imp in imports:
        if not _inside(imp.target, root):
            continue
        src, dst = layer_of(imp.importer, layers, root), layer_of(imp.target, layers, root)
        if src is not None and dst is not None and dst > src:
            out.append(f"{_where(imp, files)}: {imp.importer} ({layers[src][0]}) imports {imp.target} "
                       f"({layers[dst][0]}), a higher layer")
    return out


def package_of(module: str, root: str) -> str:
    return ".".join(module.split(".")[:2]) if module != root else root


def package_cycles(imports: Iterable[Import], root: str) -> list[list[str]]:
    """The groups of packages (``root.<name>``, and the root module) that import each other in a cycle."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if _inside(imp.target, root):
            a, b = package_of(imp.importer, root), package_of(imp.target, root)
            graph.setdefault(a, set())
            graph.setdefault(b, set())
            if a != b:
                graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def heavy_package_inits(imports: Iterable[Import], files: Mapping[str, Path], layers, root: str) -> list[str]:
    """A package's ``__init__`` runs whenever any module inside it is imported: what it imports at load time
    must sit no higher than the package's lowest module."""
    out = []
    for imp in imports:
        if not (imp.at_load and files[imp.importer].name == "__init__.py" and _inside(imp.target, root)):
            continue
        inside = [layer_of(m, layers, root) for m in files if _inside(m, imp.importer) and m != imp.importer]
        lowest = min((x for x in inside if x is not None), default=None)
        dst = layer_of(imp.target, layers, root)
        if lowest is not None and dst is not None and dst > lowest:
            out.append(f"{_where(imp, files)}: {imp.importer} loads {imp.target} ({layers[dst][0]}) with every "
                       f"module inside it, some of them in layer {layers[lowest][0]}")
    return out


def broken_contracts(imports: Iterable[Import], files: Mapping[str, Path], contracts) -> list[str]:
    return [f"{_where(imp, files)}: {imp.importer} imports {imp.target} ({why})"
            for imp in imports for importer, forbidden, why in contracts
            if _inside(imp.importer, importer) and _inside(imp.target, forbidden)]


# --------------------------------------------------------------------------------------------- on hero/ itself
FILES = module_files(HERO, "hero")
IMPORTS = collect_imports(FILES)


def test_every_module_has_a_layer():
    assert unmapped_modules(FILES, LAYERS, "hero") == [], "add them to LAYERS (and to docs/architecture.md#layers)"


def test_no_import_reaches_a_higher_layer():
    assert upward_imports(IMPORTS, FILES, LAYERS, "hero") == []


def test_packages_import_each_other_in_no_cycle():
    assert package_cycles(IMPORTS, "hero") == []


def test_package_inits_load_nothing_above_their_modules():
    assert heavy_package_inits(IMPORTS, FILES, LAYERS, "hero") == []


def test_named_contracts_hold():
    assert broken_contracts(IMPORTS, FILES, CONTRACTS) == []


def test_the_checker_sees_the_imports_of_hero():
    """Guards the checker against silently reading nothing: known edges of each kind are found."""
    edges = {(i.importer, i.target, i.at_load) for i in IMPORTS}
    assert ("hero.tasks.pretrain", "hero.model.hero", True) in edges                 # at load
    assert ("hero.eval.search", "hero.train.finetune", False) in edges               # inside a function
    assert ("hero.tasks.video_qa", "hero.metrics.scoring", True) in edges           # from package import module
    assert len(FILES) > 100 and all(layer_of(m, LAYERS, "hero") is not None for m in FILES)


# ------------------------------------------------------------------------- the checker on a synthetic package
SYNTHETIC = {
    "__init__.py": "def __getattr__(name):\n    from pkg.top import app\n    return app\n",
    "base/__init__.py": "from pkg.base.util import helper\n",
    "base/util.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.mid import Thing\n"
                    "def helper():\n    return 1\n",
    "mid/__init__.py": "",
    "mid/core.py": "from . import shape\nfrom ..base import util\n\ndef later():\n    from pkg.top import app\n",
    "mid/shape.py": "import pkg.base.util\n",
    "top/__init__.py": "from pkg.top.app import run\n",
    "top/app.py": "from pkg.mid.core import later\nimport kedro\n\ndef run():\n    return later()\n",
    "top/low.py": "",
    "stray.py": "",
}
SYNTHETIC_LAYERS = (("base", ("pkg.base",)), ("mid", ("pkg.mid", "pkg.top.low")), ("top", ("pkg.top", "pkg")))


@pytest.fixture
def synthetic(tmp_path):
    for rel, text in SYNTHETIC.items():
        (tmp_path / "pkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / rel).write_text(text)
    files = module_files(tmp_path / "pkg", "pkg")
    return files, collect_imports(files)


def test_checker_resolves_relative_and_function_level_imports(synthetic):
    files, imports = synthetic
    edges = {(i.importer, i.target, i.at_load) for i in imports}
    assert {("pkg.mid.core", "pkg.mid.shape", True), ("pkg.mid.core", "pkg.base.util", True),
            ("pkg.mid.core", "pkg.top.app", False), ("pkg", "pkg.top.app", False),
            ("pkg.base.util", "pkg.mid", True), ("pkg.mid.shape", "pkg.base.util", True)} <= edges


def test_checker_reports_each_kind_of_violation(synthetic):
    files, imports = synthetic
    assert unmapped_modules(files, SYNTHETIC_LAYERS, "pkg") == ["pkg.stray"]
    # a type-only import counts, and so does a lazy one (inside a function: both the package and its module)
    assert upward_imports(imports, files, SYNTHETIC_LAYERS, "pkg") == [
        "pkg/base/util.py:3: pkg.base.util (base) imports pkg.mid (mid), a higher layer",
        "pkg/mid/core.py:5: pkg.mid.core (mid) imports pkg.top (top), a higher layer",
        "pkg/mid/core.py:5: pkg.mid.core (mid) imports pkg.top.app (top), a higher layer",
    ]
    assert package_cycles(imports, "pkg") == [["pkg.base", "pkg.mid", "pkg.top"]]
    assert heavy_package_inits(imports, files, SYNTHETIC_LAYERS, "pkg") == [
        "pkg/top/__init__.py:1: pkg.top loads pkg.top.app (top) with every module inside it, some of them in "
        "layer mid"]  # the root's import is inside __getattr__: it does not run at load time
    assert broken_contracts(imports, files, [("pkg.top", "kedro", "no orchestration")]) == [
        "pkg/top/app.py:2: pkg.top.app imports kedro (no orchestration)"]


def test_checker_passes_a_clean_graph(synthetic):
    files, imports = synthetic
    upward = {("pkg.base.util", "pkg.mid"), ("pkg.mid.core", "pkg.top"), ("pkg.mid.core", "pkg.top.app")}
    clean = [i for i in imports if (i.importer, i.target) not in upward]
    assert upward_imports(clean, files, SYNTHETIC_LAYERS, "pkg") == [] and package_cycles(clean, "pkg") == []


# ---------------------------------------------------------------------------------------- at runtime, too
CODE = """
import sys, importlib, pkgutil
package, blocked = sys.argv[1], sys.argv[2:]
for m in blocked:
    sys.modules[m] = None
root = importlib.import_module(package)
for m in pkgutil.walk_packages(root.__path__, package + '.'):
    if not m.name.endswith('__main__'):
        importlib.import_module(m.name)
print('ok')
"""


@pytest.mark.parametrize("package,blocked", [
    ("hero", ["kedro", "mlflow", "optuna", "dvc", "pipelines"]),
    ("hero.corpus", ["hero.features"]),
], ids=["hero-without-orchestration", "corpus-without-features"])
def test_package_imports_without(package, blocked):
    out = subprocess.run([sys.executable, "-c", CODE, package, *blocked], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
