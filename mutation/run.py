"""Mutation-test the rule-bearing core modules with mutmut, one module at a time (`make mutate`).

Each module listed in mutation/mutation.toml is mutated in a throw-away copy of the repository (the working
tree is never touched: an interrupted run leaves at most a temp folder), against that module's listed unit
tests only. Prints per module: mutants, killed (of which timeouts, each listed too), survived, excluded
(message text), other, score; then each surviving mutant (file:line and its diff). Always exits 0: it is a
report, not a gate.

Message-text rule: a mutant is excluded when every node it changes lies inside a string literal or f-string
that is an argument of the exception in a `raise`, of a logging call (`<...log...>.debug/info/warning/warn/
error/exception/critical/log(...)`) or of `warnings.warn(...)`. Swapping such a string for `None` counts as
message text too; a mutant that changes anything else on those lines (the exception type, the condition)
counts.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path(__file__).resolve().with_name("mutation.toml")
ALSO_COPY = ("quantmm_resources", "quantmm_jobs", "quantmm_serving", "bench")
LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "no tests"}


@dataclass
class Survivor:
    """One surviving mutant: where it is and what it changed."""

    name: str
    status: str
    where: str
    diff: list[str]


@dataclass
class ModuleResult:
    """Counts for one module's mutation run."""

    path: str
    mutants: int = 0
    killed: int = 0
    timeouts: int = 0  # counted in killed (mutmut's rule); many of them can hide survivors: a hung worker
    survived: int = 0
    excluded: int = 0
    other: int = 0
    seconds: float = 0.0
    note: str = ""
    survivors: list[Survivor] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        counted = self.killed + self.survived
        return self.killed / counted if counted else None


def repository_files() -> list[str]:
    """List the tracked and untracked-but-not-ignored files of the working tree."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file()]


def copy_tree(files: list[str], dest: Path) -> None:
    """Copy the listed repository files under dest."""
    for f in files:
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, target)


def mutmut_config(module: str, tests: list[str]) -> str:
    """Render the setup.cfg [mutmut] section that scopes one run to one module and its tests."""
    lines = ["[mutmut]", "source_paths=quantmm_assets", f"only_mutate={module}", "also_copy="]
    lines += [f"    {p}" for p in ALSO_COPY]
    # forkserver: a worker forked from a process that ran polars code can deadlock in polars' thread pool.
    lines += ["process_isolation=forkserver", "pytest_add_cli_args=-p no:cacheprovider -q"]
    lines += ["pytest_add_cli_args_test_selection="] + [f"    {t}" for t in tests]
    return "\n".join(lines) + "\n"


def message_nodes(fn: ast.AST) -> set[int]:
    """Ids of the string and f-string nodes (and their descendants) passed to a raise or a logging call."""

    def is_log_call(call: ast.Call) -> bool:
        f = call.func
        if not (isinstance(f, ast.Attribute) and f.attr in LOG_METHODS):
            return False
        base = f.value
        name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
        return "log" in name.lower() or (name == "warnings" and f.attr == "warn")

    calls: list[ast.Call] = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            calls.append(node.exc)
        elif isinstance(node, ast.Call) and is_log_call(node):
            calls.append(node)
    ids: set[int] = set()
    for call in calls:
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            for sub in ast.walk(arg):
                if isinstance(sub, ast.JoinedStr) or (isinstance(sub, ast.Constant) and isinstance(sub.value, str)):
                    ids.update(id(n) for n in ast.walk(sub))
    return ids


def changed_nodes(a: object, b: object) -> list[ast.AST]:
    """The smallest nodes of tree a that differ from tree b (a structural diff)."""
    if type(a) is not type(b):
        return [a] if isinstance(a, ast.AST) else []
    if isinstance(a, ast.AST):
        out: list[ast.AST] = []
        for name in a._fields:
            va, vb = getattr(a, name, None), getattr(b, name, None)
            if isinstance(va, list) and isinstance(vb, list) and len(va) != len(vb):
                return [a]
            if not isinstance(va, (ast.AST, list)) and va != vb:
                return [a]
            out += changed_nodes(va, vb)
        return out
    if isinstance(a, list):
        return [n for x, y in zip(a, b, strict=True) for n in changed_nodes(x, y)]
    return []


def is_message_text(orig: ast.FunctionDef, mutant: ast.FunctionDef) -> bool:
    """Say whether every change of the mutant lies in message text (see the module docstring)."""
    changed = changed_nodes(orig.body, mutant.body) + changed_nodes(orig.args, mutant.args)
    allowed = message_nodes(orig)
    return bool(changed) and all(id(n) in allowed for n in changed)


def original_line(source_tree: ast.Module, mangled: str) -> int:
    """The def line, in the original file, of a function named the mutmut way (x_f or xǁClassǁmethod)."""
    parts = mangled.split("ǁ")[1:] if mangled.startswith("xǁ") else [mangled[2:]]
    body: list[ast.stmt] = source_tree.body
    node: ast.AST | None = None
    for part in parts:
        node = next((n for n in body if getattr(n, "name", None) == part), None)
        if node is None:
            return 0
        body = getattr(node, "body", [])
    return getattr(node, "lineno", 0)


def collect(result: ModuleResult, copy: Path, status_by_exit_code: dict) -> None:
    """Read one module's mutmut results from its copy and fill in the counts and survivors."""
    meta = json.loads((copy / "mutants" / f"{result.path}.meta").read_text())["exit_code_by_key"]
    mutated_src = (copy / "mutants" / result.path).read_text()
    fns = {n.name: n for n in ast.walk(ast.parse(mutated_src)) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    original_tree = ast.parse((ROOT / result.path).read_text())

    def order(item: tuple[str, int]) -> tuple[str, int]:
        stem, _, n = item[0].rpartition("__mutmut_")
        return stem, int(n) if n.isdigit() else 0

    for key, code in sorted(meta.items(), key=order):
        name = key.rsplit(".", 1)[1]
        stem = name.rsplit("__mutmut_", 1)[0]
        orig, mutant = fns.get(f"{stem}__mutmut_orig"), fns.get(name)
        result.mutants += 1
        if orig is not None and mutant is not None and is_message_text(orig, mutant):
            result.excluded += 1
            continue
        status = status_by_exit_code[code]
        if status in KILLED:
            result.killed += 1
            result.timeouts += status == "timeout"
        if status in SURVIVED or status == "timeout":
            result.survived += status in SURVIVED
            a = ast.get_source_segment(mutated_src, orig).splitlines() if orig else []
            b = ast.get_source_segment(mutated_src, mutant).splitlines() if mutant else []
            diff = [d for d in difflib.unified_diff(a[1:], b[1:], lineterm="", n=0) if d[:1] in "+-"]
            diff = [d for d in diff if d[:3] not in ("+++", "---")]
            first = next((i for i, (x, y) in enumerate(zip(a[1:], b[1:], strict=False)) if x != y), 0)
            line = original_line(original_tree, stem) + 1 + first
            result.survivors.append(Survivor(name, status, f"{result.path}:{line}", diff))
        elif status not in KILLED:
            result.other += 1


def run_module(path: str, tests: list[str], files: list[str], work: Path, children: int) -> ModuleResult:
    """Mutate one module in a fresh copy of the repository and collect its results."""
    from mutmut.stats import status_by_exit_code

    result = ModuleResult(path)
    present = [t for t in tests if (ROOT / t.split("::")[0]).is_file()]
    for t in tests:
        if t not in present:
            print(f"  {path}: listed test {t} does not exist: skipped")
    if not present:
        result.note = "no listed test exists: not run"
        return result
    copy = work / path.replace("/", "_")
    copy_tree(files, copy)
    (copy / "setup.cfg").write_text(mutmut_config(path, present))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    log = copy / "mutmut.log"
    start = time.monotonic()
    with log.open("w") as fh:
        rc = subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
            cwd=copy,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    result.seconds = time.monotonic() - start
    meta = copy / "mutants" / f"{path}.meta"
    if not meta.is_file():
        result.note = f"mutmut exited {rc} without results; log tail:\n" + log.read_text()[-2000:]
        return result
    collect(result, copy, status_by_exit_code)
    if rc != 0:
        result.note = f"mutmut exited {rc}"
    return result


ROW = "{:46} {:>7} {:>6} {:>8} {:>8} {:>8} {:>5} {:>6} {:>6}"


def report(results: list[ModuleResult], target: float) -> None:
    """Print the score table, the survivors and whether the target is met."""
    head = ROW.format("module", "mutants", "killed", "timeouts", "survived", "excluded", "other", "score", "time")
    print("\n" + head + "\n" + "-" * len(head))
    for r in results:
        score = f"{r.score:.1%}" if r.score is not None else "-"
        cells = (r.mutants, r.killed, r.timeouts, r.survived, r.excluded, r.other)
        print(ROW.format(r.path, *cells, score, f"{r.seconds:.0f}s"))
    killed, survived = sum(r.killed for r in results), sum(r.survived for r in results)
    total = killed / (killed + survived) if killed + survived else 0.0
    keys = ("mutants", "killed", "timeouts", "survived", "excluded", "other")
    sums = [sum(getattr(r, k) for r in results) for k in keys]
    print(ROW.format("all", *sums, f"{total:.1%}", f"{sum(r.seconds for r in results):.0f}s"))
    for r in results:
        if r.note:
            print(f"\nNOTE {r.path}: {r.note}")
    for r in results:
        for s in r.survivors:
            timed_out = "TIMED OUT (counted killed; a hung worker can hide a survivor)"
            kind = timed_out if s.status == "timeout" else "SURVIVED"
            print(f"\n{kind} ({s.status}) {s.where}  {s.name}")
            print("\n".join(f"    {d}" for d in s.diff))
    met = "MET" if total >= target and all(r.score is not None for r in results) else "NOT MET"
    print(f"\nTarget {target:.0%} killed (message-text mutants excluded): {met} ({total:.1%} overall)")


def main(argv: list[str] | None = None) -> int:
    """Run the configured modules (or those named) and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="only these module paths (default: all in mutation.toml)")
    args = parser.parse_args(argv)
    config = tomllib.loads(CONFIG.read_text())
    modules = [m for m in config["module"] if not args.modules or m["path"] in args.modules]
    files = repository_files()
    start = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="quantmm-mutate-") as tmp:
        for m in modules:
            print(f"mutating {m['path']} ...", flush=True)
            results.append(run_module(m["path"], m["tests"], files, Path(tmp), config["settings"]["max_children"]))
    report(results, config["settings"]["target"])
    print(f"wall time {time.monotonic() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
