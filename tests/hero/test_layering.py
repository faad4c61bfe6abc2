"""Import contracts, each checked in a fresh interpreter where the forbidden packages cannot be imported:
hero/ imports no orchestration package (it runs alone under torchrun), and hero.corpus does not import
hero.features (hero.features reads manifests from hero.corpus; the other way round would be a cycle)."""

import subprocess
import sys

import pytest

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
