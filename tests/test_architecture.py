"""The house rules of src/intuitor, read from the code itself (no import of intuitor: `ast` only, every import
statement, function-level ones included): a room (a package, or a top-level module) imports only the rooms below
it, no modules import each other in a circle, no source file is over 600 lines, and no re-export shim stands in for
a moved module. docs/architecture.md draws the same table.

What cannot hold yet, because another change is moving those files, is listed in the tables right below, each with
its reason; nothing is skipped. An entry that is no longer needed fails too ("remove it"), so the tables only
shrink, and each rule is enforced in full once they are empty.
"""

from __future__ import annotations

import ast
from pathlib import Path


SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "intuitor"
MAX_LINES = 600

# Each room and the rooms it may import (besides itself and the root package `intuitor`, which holds the version
# checks and imports no room). The room of `intuitor.x.y` is `x`; the root's is "".
ROOMS: dict[str, set[str]] = {
    "": set(),
    "certainty": set(),  # pure tensor math of self-certainty; no TRL
    "models": set(),  # loading models and tokenizers
    "layout": set(),  # where a run's files live
    "sandbox": set(),  # running model-written code
    "generation": {"certainty"},  # backends (hf, vllm); the recorder's statistics
    "tasks": {"sandbox"},  # one file per data set: load, prompt, extract, score
    "rewards": {"certainty", "generation", "tasks"},  # one file per reward, a registry; never training
    "training": {"certainty", "generation", "layout", "models", "rewards", "tasks"},  # config, trainer, guard
    "evaluation": {"certainty", "generation", "layout", "models", "sandbox", "tasks"},  # the harness
    "analysis": {"certainty", "evaluation", "layout", "models", "tasks"},  # reads files; never the trainer
    "demo": {"analysis", "certainty", "evaluation", "generation", "layout", "models", "rewards", "tasks", "training"},
    "cli": {
        "analysis",
        "certainty",
        "demo",
        "evaluation",
        "generation",
        "layout",
        "models",
        "rewards",
        "sandbox",
        "tasks",
        "training",
    },
}

# Pending moves: remove an entry when its move lands (the test says when one is no longer needed).
PENDING_IMPORTS: dict[tuple[str, str], str] = {}  # (importer, imported) -> reason
PENDING_CIRCLES: dict[frozenset[str], str] = {}  # modules of one circle -> reason
PENDING_SIZES: dict[str, str] = {}  # file (relative to src/) -> reason
PENDING_SHIMS: dict[str, str] = {}  # file (relative to src/) -> reason
SHIMS = ["intuitor/sandbox.py"]  # re-export modules the redesign removes: none may exist


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(module: str) -> list[tuple[str, int]]:
    """(imported intuitor module, line) of every import statement in `module`, at any depth. `from P import x`
    counts as importing P.x when that is a module, else P."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, `level - 1` steps up
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in MODULES else base, node.lineno))
    out = []
    for name, line in found:
        while name not in MODULES and "." in name:  # `import intuitor.x.y.Name` style: the module part
            name = name.rpartition(".")[0]
        if name in MODULES and name != module:
            out.append((name, line))
    return list(dict.fromkeys(out))  # `from m import a, b`: one import


GRAPH = {m: imports_of(m) for m in MODULES}


def where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(SRC.parent)}:{line}"


def test_the_import_reader_sees_function_level_and_submodule_imports():
    # harness imports intuitor.certainty only inside `_run`: the reader must see it, or circles could hide there.
    assert "intuitor.certainty" in {m for m, _ in GRAPH["intuitor.evaluation.harness"]}
    # `from intuitor.training import metrics` is an import of the module training.metrics, not of the package.
    trainer = {m for m, _ in GRAPH["intuitor.training.trainer"]}
    assert "intuitor.training.metrics" in trainer and "intuitor.training" not in trainer


def test_every_room_is_known():
    unknown = sorted({f"{room(m)} ({MODULES[m].relative_to(SRC.parent)})" for m in MODULES if room(m) not in ROOMS})
    assert not unknown, f"rooms missing from ROOMS in {__file__} (say what each may import): {', '.join(unknown)}"


def test_rooms_import_only_rooms_below_them():
    wrong, used = [], set()
    for module, imported in GRAPH.items():
        mine = room(module)
        for target, line in imported:
            theirs = room(target)
            if theirs == mine or theirs == "" and mine != "" or theirs in ROOMS.get(mine, set()):
                continue
            if (module, target) in PENDING_IMPORTS:
                used.add((module, target))
                continue
            may = ", ".join(sorted(ROOMS.get(mine, set()))) or "no other room"
            wrong.append(f"{where(module, line)} imports {target}: `{mine or 'intuitor'}` may import only {may}")
    assert not wrong, "imports running up or sideways:\n" + "\n".join(wrong)
    stale = sorted(set(PENDING_IMPORTS) - used)
    assert not stale, f"PENDING_IMPORTS entries no longer needed, remove them: {stale}"


def circles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w, _ in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    wrong, used = [], set()
    for comp in circles():
        if frozenset(comp) in PENDING_CIRCLES:
            used.add(frozenset(comp))
            continue
        links = [f"{where(m, line)} imports {t}" for m in comp for t, line in GRAPH[m] if t in comp]
        wrong.append(f"circle {' <-> '.join(comp)}: " + "; ".join(links))
    assert not wrong, "import circles:\n" + "\n".join(wrong)
    stale = sorted(sorted(c) for c in set(PENDING_CIRCLES) - used)
    assert not stale, f"PENDING_CIRCLES entries no longer needed, remove them: {stale}"


def test_a_circle_is_found_and_named(monkeypatch):
    # The checker itself: a made-up circle between two real modules is found, each link named.
    a, b = "intuitor.certainty", "intuitor.models"
    monkeypatch.setitem(GRAPH, a, [*GRAPH[a], (b, 1)])
    monkeypatch.setitem(GRAPH, b, [*GRAPH[b], (a, 2)])
    assert [a, b] in circles()


def test_no_source_file_over_600_lines():
    wrong, used = [], set()
    for path in MODULES.values():
        n = len(path.read_text(encoding="utf-8").splitlines())
        rel = str(path.relative_to(SRC))
        if n <= MAX_LINES:
            continue
        if rel in PENDING_SIZES:
            used.add(rel)
            continue
        wrong.append(f"src/{rel}: {n} lines (at most {MAX_LINES}: split it by concern)")
    assert not wrong, "\n".join(wrong)
    stale = sorted(set(PENDING_SIZES) - used)
    assert not stale, f"PENDING_SIZES entries no longer needed (the file is short now), remove them: {stale}"


def test_no_shim_modules():
    present = [s for s in SHIMS if (SRC / s).exists()]
    wrong = [
        f"src/{s} still exists: import the module from its new home instead" for s in present if s not in PENDING_SHIMS
    ]
    assert not wrong, "\n".join(wrong)
    stale = sorted(set(PENDING_SHIMS) - set(present))
    assert not stale, f"PENDING_SHIMS entries no longer needed (the file is gone), remove them: {stale}"


def test_the_issue_s_layering_rules():
    # Named explicitly (ROOMS says more): tasks import nothing from evaluation, rewards nothing from training.
    assert "evaluation" not in ROOMS["tasks"] and "training" not in ROOMS["tasks"]
    assert "training" not in ROOMS["rewards"] and "evaluation" not in ROOMS["rewards"]
    assert "training" not in ROOMS["analysis"]
