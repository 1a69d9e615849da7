"""The package's layers: the library below (data, views, losses, heads, backbones, eval, index, methods,
finetuning) never imports the application above it (train, cli, report), at module level or inside a function."""

import ast
import sys
from pathlib import Path

import contrastkit

PACKAGE = Path(contrastkit.__file__).parent
LOWER = ("data", "views", "losses", "heads", "backbones", "eval", "index", "methods", "optim", "outputs", "finetuning",
         "registry")  # fmt: skip
UPPER = ("train", "cli", "report")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``import contrastkit...`` / ``from contrastkit... import`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module == "contrastkit":  # from contrastkit import train
                found += [(node.lineno, f"contrastkit.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "contrastkit"]


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if layer not in LOWER:
            continue
        for line, name in imported_modules(path):
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in UPPER:
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {name}")
    return bad


def test_no_upward_imports():
    assert upward_imports() == []


def test_the_walk_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from contrastkit.train.fit import train\n    import contrastkit.cli.main\n")
    assert imported_modules(source) == [(2, "contrastkit.train.fit"), (3, "contrastkit.cli.main")]


def test_every_layer_named_exists():
    present = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()}
    assert set(LOWER) | set(UPPER) <= present


def root_imports() -> list[str]:
    """Modules inside the package that import the package root (``import contrastkit``, ``from contrastkit import
    x``): the root only re-exports, so a module that needs ``load_encoder`` imports it from where it is defined."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        bad += [f"{path.relative_to(PACKAGE)}:{line}" for line, name in imported_modules(path) if name == "contrastkit"]
    return bad


def test_nothing_inside_the_package_imports_its_root():
    assert root_imports() == []


def test_the_root_import_walk_sees_both_forms(tmp_path, monkeypatch):
    package = tmp_path / "contrastkit"
    (package / "eval").mkdir(parents=True)
    (package / "__init__.py").write_text("from contrastkit.eval import x\n")
    source = "def f():\n    import contrastkit\n    from contrastkit import load_encoder\n"
    (package / "eval" / "a.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert root_imports() == ["eval/a.py:2", "eval/a.py:3"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at module level or inside functions): ``from contrastkit.a
    import b`` counts ``contrastkit.a.b`` when ``b`` is a module, else ``contrastkit.a``."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                            for a in node.names}  # fmt: skip
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
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
                circles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle_anywhere_in_the_package():
    assert import_circles(import_graph()) == []


def test_the_circle_finder_finds_a_circle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set()}) == []
