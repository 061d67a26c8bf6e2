"""The rooms of the house and what may enter them (docs/architecture.md): read from the source, not the runtime."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("quantmm_assets", "quantmm_resources", "quantmm_jobs", "quantmm_serving")
LAKE_MODULE = ROOT / "quantmm_resources" / "lake.py"
SETTINGS_MODULE = ROOT / "quantmm_resources" / "settings.py"


def _sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any level (a function-level import is still a dependency)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # `from a.b import c`: module a.b.c, or an attribute of a.b (resolved against our modules in _graph)
            found |= {f"{base}.{a.name}" for a in node.names}
    return found


# A path joined onto the lake root in code, e.g. `lake / "x"`, `settings.lake_dir / "x"`, `lake.path / name` (code is
# formatted with spaces around `/`; prose such as ``lake/backbone_report/`` in a docstring is not a path built).
LAKE_PATH = re.compile(r"""\blake(?:_dir|\.path|\.root)?\s+/\s+""")


def test_no_module_but_the_lake_api_builds_a_lake_path() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in _sources(*PRODUCT, "bench")
        if p != LAKE_MODULE
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if LAKE_PATH.search(line)
    ]
    assert not offenders, "lake paths outside quantmm_resources/lake.py:\n" + "\n".join(offenders)


def test_the_lake_path_pattern_catches_what_it_is_for() -> None:
    for line in ('lake / "backbone_report"', "settings.lake_dir / 'x'", "lake.path / asset", 'lake_dir / f"{a}"'):
        assert LAKE_PATH.search(line), line
    for line in ("lake.partition_file(asset, key)", "lakes = 3 / 4", "datalake / 2", "into ``lake/backbone_report/``"):
        assert not LAKE_PATH.search(line), line


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _sources(*PRODUCT)}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for imp in _imports(path):
            # the nearest module of ours: `a.b.c` where c is an attribute of module a.b resolves to a.b
            while imp and imp not in modules:
                imp = imp.rpartition(".")[0]
            if imp and imp != name:
                deps.add(imp)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_the_product_modules() -> None:
    graph = _graph()
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]  # the detector sees a cycle


def test_the_rooms_import_only_what_they_may() -> None:
    graph = _graph()
    rules = {
        # pure compute and the models: no framework, no I/O layer
        "quantmm_assets.core": ("quantmm_assets.defs", "quantmm_resources", "quantmm_jobs", "quantmm_serving"),
        "quantmm_assets.models": ("quantmm_assets.defs", "quantmm_resources", "quantmm_jobs", "quantmm_serving"),
        # resources touch the outside world; they never reach into the Dagster layer or the jobs
        "quantmm_resources": ("quantmm_assets.defs", "quantmm_jobs", "quantmm_serving"),
        # serving builds on core, models and resources, never on the Dagster definitions
        "quantmm_serving": ("quantmm_assets.defs", "quantmm_jobs"),
        "quantmm_assets.defs": ("quantmm_jobs", "quantmm_serving"),
    }
    offenders = [
        f"{mod} imports {dep}"
        for mod, deps in graph.items()
        for room, banned in rules.items()
        if mod.startswith(room)
        for dep in deps
        if dep.startswith(banned)
    ]
    assert not offenders, "\n".join(offenders)
    product_imports_bench = [
        str(p.relative_to(ROOT)) for p in _sources(*PRODUCT) if any(i.split(".")[0] == "bench" for i in _imports(p))
    ]
    assert not product_imports_bench


def test_bench_is_not_an_installed_package() -> None:
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(ROOT), include=find["include"], exclude=find.get("exclude", ()))
    assert "quantmm_jobs.cli" in packages and not [p for p in packages if p.split(".")[0] == "bench"]
    assert not list((ROOT / "quantmm_jobs").glob("bench*"))


# -- no QUANTMM_* / DAGSTER_* writes into os.environ: settings are passed as objects -----------------------------------


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


def test_the_product_and_benches_pass_settings_instead_of_writing_the_environment() -> None:
    assert settings_writes(ROOT / "tests" / "conftest.py") == []  # monkeypatch is how tests do it
    planted = ROOT / "tests" / "fixtures" / "planted_env_writes.py"
    assert len(settings_writes(planted)) == 4  # the scanner finds each form it looks for
    scanned = [p for p in _sources(*PRODUCT, "bench") if p != SETTINGS_MODULE]
    assert {str(p.relative_to(ROOT)): settings_writes(p) for p in scanned} == {
        str(p.relative_to(ROOT)): [] for p in scanned
    }
