"""hero/ must import with the orchestration stack unavailable: it runs alone under torchrun (STYLE R1)."""

import subprocess
import sys

CODE = """
import sys, importlib, pkgutil
for m in ('kedro', 'mlflow', 'optuna', 'dvc', 'pipelines'):
    sys.modules[m] = None
import hero
for m in pkgutil.walk_packages(hero.__path__, 'hero.'):
    if not m.name.endswith('__main__'):
        importlib.import_module(m.name)
print('ok')
"""


def test_hero_imports_without_orchestration_stack():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


CORPUS_CODE = """
import sys, importlib, pkgutil
sys.modules['hero.features'] = None
import hero.corpus
for m in pkgutil.walk_packages(hero.corpus.__path__, 'hero.corpus.'):
    if not m.name.endswith('__main__'):
        importlib.import_module(m.name)
print('ok')
"""


def test_corpus_does_not_import_features():
    """hero.features reads manifests (hero.corpus); the other way round would be a cycle."""
    out = subprocess.run([sys.executable, "-c", CORPUS_CODE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
