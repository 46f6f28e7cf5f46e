"""The house rules of docs/ARCHITECTURE.md, checked on the source: every import between digitdet's modules
(function-level ones too: a deferred import that closes a circle is still a circle) forms no cycle and
points down the rank table, the ground floor stays small, and no file grows past 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "digitdet"

# A sub-package may import only from lower ranks (and from itself). Equal ranks do not import each other.
RANKS = {
    "": 0,  # the ground floor: digitdet/__init__, config, errors, io, metrics, viz
    "data": 1,  # data.synth lives inside data
    "model": 2,
    "reading": 3,
    "training": 4,  # above reading: validation reads numbers the way the reader does
    "studies": 5,
    "serve": 5,
    "cli": 6,
}
MAX_GROUND_FLOOR = 8  # .py files directly in src/digitdet, __init__.py included
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The digitdet modules `path` (module `name`) imports anywhere in its body. `from X import y` counts as
    an import of module X.y when that is a module, else of X."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known and "." in t:  # `import digitdet.x.y` of an attribute: its module
                t = t.rpartition(".")[0]
            if t in known and t != name:
                out.add(t)
    return out


def graph(mods: dict[str, Path] | None = None) -> dict[str, set[str]]:
    mods = modules() if mods is None else mods
    return {name: imported(path, name, set(mods)) for name, path in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (found := visit(m)):
            return found
    return None


def room(module: str) -> str:
    """The sub-package a module lives in ('' for the ground floor)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else ""


def upward(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, deps in g.items():
        for d in deps:
            a, b = room(m), room(d)
            if a != b and RANKS[b] >= RANKS[a]:
                bad.append(f"{m} ({a or 'ground floor'}, rank {RANKS[a]}) imports {d} "
                           f"({b or 'ground floor'}, rank {RANKS[b]})")
    return sorted(bad)


def long_files(roots=("src", "tests", "benchmarks", "scripts")) -> list[str]:
    out = []
    for r in roots:
        for p in sorted((ROOT / r).rglob("*.py")):
            n = len(p.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                out.append(f"{p.relative_to(ROOT)}: {n} lines")
    return out


def test_the_graph_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "digitdet"
    (pkg / "model").mkdir(parents=True)
    (pkg / "reading").mkdir()
    for f in ("__init__.py", "model/__init__.py", "reading/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "model" / "checkpoint.py").write_text("def f():\n    from digitdet.reading.reader import g\n")
    (pkg / "reading" / "reader.py").write_text("from ..model import checkpoint\n")
    monkeypatch.setitem(globals(), "SRC", tmp_path)
    g = graph({module_name(p): p for p in pkg.rglob("*.py")})
    assert g["digitdet.model.checkpoint"] == {"digitdet.reading.reader"}
    assert g["digitdet.reading.reader"] == {"digitdet.model.checkpoint"}
    assert find_cycle(g) == ["digitdet.model.checkpoint", "digitdet.reading.reader", "digitdet.model.checkpoint"]


def test_no_import_cycle_between_modules():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_point_down_the_rank_table():
    g = graph()
    unranked = sorted({room(m) for m in g} - set(RANKS))
    assert not unranked, f"sub-packages without a rank in tests/test_layout.py RANKS: {unranked}"
    assert upward(g) == []


@pytest.mark.parametrize("package", sorted(r for r in RANKS if r))
def test_every_sub_package_says_what_it_owns(package):
    init = PACKAGE / package / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "import" in doc, f"{init.relative_to(ROOT)}: the docstring says what it owns and what it may import"


def test_the_ground_floor_stays_small():
    ground = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(ground) <= MAX_GROUND_FLOOR, f"{len(ground)} modules on the ground floor: {ground}"


def test_no_file_over_400_lines():
    assert long_files() == []
