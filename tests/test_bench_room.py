"""The benches live beside the product: never imported by it, never installed, and no bench or operator command
writes QUANTMM_* / DAGSTER_* settings into the environment (they pass settings objects)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("quantmm_assets", "quantmm_resources", "quantmm_jobs", "quantmm_serving")


def python_files(*dirs: str) -> list[Path]:
    return [p for d in dirs if (ROOT / d).is_dir() for p in sorted((ROOT / d).rglob("*.py"))]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _ours(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and str(node.value).startswith(("QUANTMM_", "DAGSTER_"))


def _environ_calls(node: ast.AST) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and _is_environ(n.func.value)
        and n.func.attr in ("pop", "setdefault", "update")
    ]


def settings_writes(path: Path) -> list[int]:
    """Lines that write a QUANTMM_* / DAGSTER_* name into ``os.environ``: item assignment or deletion, and
    ``pop`` / ``setdefault`` / ``update`` with the name, a dict holding it, or a loop variable over such names."""
    tree = ast.parse(path.read_text())
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.Delete):
            subscripts = [t for t in node.targets if isinstance(t, ast.Subscript)]
            lines |= {node.lineno for t in subscripts if _is_environ(t.value) and _ours(t.slice)}
        elif isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple) and any(map(_ours, node.iter.elts)):
            lines |= {call.lineno for call in _environ_calls(node)}
    for call in _environ_calls(tree):
        keys = [k for a in call.args if isinstance(a, ast.Dict) for k in a.keys]
        if any(map(_ours, [*call.args, *keys])):
            lines.add(call.lineno)
    return sorted(lines)


def test_the_product_never_imports_bench():
    offenders = [
        str(p.relative_to(ROOT))
        for p in python_files(*PRODUCT)
        if any(m == "bench" or m.startswith("bench.") for m in imported_modules(p))
    ]
    assert offenders == []


def test_bench_is_not_an_installed_package():
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=find["include"], exclude=find.get("exclude", ()))
    assert "quantmm_jobs.cli" in packages and not [p for p in packages if p.split(".")[0] == "bench"]
    assert not list((ROOT / "quantmm_jobs").glob("bench*"))


def test_benches_and_commands_pass_settings_instead_of_writing_the_environment():
    assert settings_writes(ROOT / "tests" / "conftest.py") == []  # monkeypatch is how tests do it
    planted = ROOT / "tests" / "fixtures" / "planted_env_writes.py"
    assert len(settings_writes(planted)) == 4  # the scanner finds each form it looks for
    assert {str(p.relative_to(ROOT)): settings_writes(p) for p in python_files("bench", "quantmm_jobs")} == {
        str(p.relative_to(ROOT)): [] for p in python_files("bench", "quantmm_jobs")
    }
