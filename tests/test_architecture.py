"""The rooms of the house and what may enter them (docs/architecture.md): read from the source, not the runtime."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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


ENV_WRITE = re.compile(
    r"""os\.environ(?:\[\s*["'](?:QUANTMM|DAGSTER)_|\.(?:update|setdefault|pop)\(\s*["'{]\s*["']?(?:QUANTMM|DAGSTER)_)"""
)


def test_only_settings_read_the_environment_into_quantmm_and_dagster_variables() -> None:
    """No `QUANTMM_*` / `DAGSTER_*` writes into os.environ in the product or the benches: settings are passed."""
    offenders = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in _sources(*PRODUCT, "bench")
        if p != SETTINGS_MODULE
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if ENV_WRITE.search(line) and "get(" not in line
    ]
    assert not offenders, "\n".join(offenders)
    assert ENV_WRITE.search('os.environ["QUANTMM_HOME"] = home')
    assert ENV_WRITE.search('os.environ.pop("DAGSTER_HOME", None)')
    assert not ENV_WRITE.search('os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")')


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
