"""The module graph of ``platform/msm`` from the code (ast, no imports executed), and the measures docs cite.

    python tools/module_graph.py                  # summary: modules, lines, long functions, import circles
    python tools/module_graph.py --dot FILE.dot   # Graphviz source of the package graph (make architecture)
    python tools/module_graph.py --svg FILE.svg   # the same drawn by matplotlib (no Graphviz binary needed)
    python tools/module_graph.py --json FILE      # every figure as JSON

Hand-written (a few dozen lines of ``ast``) because ``pydeps`` needs Graphviz's ``dot`` binary, which the CI image
lacks, and we also want the cycle list as data for tests/test_architecture.py. Every import counts, module-level or
inside a function: a function-local import still makes the importing module depend on the imported one.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "platform"
PACKAGE = "msm"


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, level: int, current: str, is_package: bool) -> str:
    if level == 0:
        return name
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports(mods: dict[str, Path]) -> dict[str, list[tuple[str, bool, int, list[str]]]]:
    """module -> [(imported module, at module level, line, imported names)] for imports of our own package."""
    out: dict[str, list] = {m: [] for m in mods}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_pkg = path.name == "__init__.py"
        top = set(id(n) for n in tree.body)
        for node in ast.walk(tree):
            found: list[tuple[str, list[str]]] = []
            if isinstance(node, ast.Import):
                found = [(a.name, []) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node.module or "", node.level, mod, is_pkg)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    found.append((sub if sub in mods else base, [a.name]))
            for name, names in found:
                while name and name not in mods and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in mods and name != mod:
                    guarded = isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) in top
                    out[mod].append((name, guarded or _in_type_checking(tree, node), node.lineno, names))
    return out


def _in_type_checking(tree: ast.Module, target: ast.AST) -> bool:
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            if any(n is target for n in ast.walk(node)):
                return True
    return False


def edges(mods: dict[str, Path]) -> set[tuple[str, str]]:
    """Module dependencies, a package's ``__init__`` re-exports excluded as importers of their children."""
    return {(a, b) for a, found in imports(mods).items() for b, *_ in found if not b.startswith(a + ".")}


def cycles(graph: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (each is an import circle)."""
    succ: dict[str, list[str]] = {}
    for a, b in graph:
        succ.setdefault(a, []).append(b)
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted({x for e in graph for x in e}):
        if v not in index:
            visit(v)
    return sorted(out)


def private_imports(mods: dict[str, Path]) -> list[str]:
    """``module:line imports name from other`` for every ``_private`` name taken from another module."""
    out = []
    for mod, found in imports(mods).items():
        for other, _, line, names in found:
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    out.append(f"{mod}:{line} imports {n} from {other}")
    return sorted(out)


def functions(mods: dict[str, Path]) -> Iterator[tuple[str, str, int]]:
    """(module, qualified function name, lines) for every function and method."""
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, str, int]]:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield mod, prefix + child.name, child.end_lineno - child.lineno + 1
                    yield from walk(child, prefix + child.name + ".")
                elif isinstance(child, ast.ClassDef):
                    yield from walk(child, prefix + child.name + ".")
        yield from walk(tree, "")


def measures(root: Path = ROOT) -> dict:
    mods = modules(root)
    graph = edges(mods)
    long = sorted(((m, f, n) for m, f, n in functions(mods) if n > 60), key=lambda x: -x[2])
    local = sum(1 for found in imports(mods).values() for _, top, *_ in found if not top)
    return {"modules": len(mods), "lines": sum(len(p.read_text(encoding="utf-8").splitlines()) for p in mods.values()),
            "functions_over_60_lines": [f"{m}.{f} ({n})" for m, f, n in long],
            "import_circles": cycles(graph), "private_imports": private_imports(mods),
            "function_local_imports_of_msm": local, "edges": sorted(graph)}


def package_graph(graph: set[tuple[str, str]], depth: int = 2) -> set[tuple[str, str]]:
    """The graph folded to ``msm.<package>`` level (``depth`` dotted parts)."""
    fold = lambda m: ".".join(m.split(".")[:depth])  # noqa: E731
    return {(fold(a), fold(b)) for a, b in graph if fold(a) != fold(b)}


def dot(graph: set[tuple[str, str]]) -> str:
    lines = ["digraph msm {", "  rankdir=LR; node [shape=box, fontsize=10];"]
    lines += [f'  "{a}" -> "{b}";' for a, b in sorted(graph)]
    return "\n".join(lines + ["}"]) + "\n"


def draw(graph: set[tuple[str, str]], out: Path) -> None:
    """A layered drawing (longest path from the sources) with matplotlib: left depends on right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = sorted({x for e in graph for x in e})
    succ = {n: sorted(b for a, b in graph if a == n) for n in nodes}
    layer: dict[str, int] = {}

    def depth(n: str, seen: frozenset = frozenset()) -> int:
        if n in layer:
            return layer[n]
        if n in seen:
            return 0
        layer[n] = 1 + max((depth(m, seen | {n}) for m in succ[n]), default=-1)
        return layer[n]

    for n in nodes:
        depth(n)
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(layer[n], []).append(n)
    tallest = max(len(v) for v in columns.values())
    pos = {n: (-x, -(i + (tallest - len(ns)) / 2)) for x, ns in columns.items() for i, n in enumerate(sorted(ns))}
    fig, ax = plt.subplots(figsize=(2.2 * len(columns) + 1, 0.6 * tallest + 1.2))
    ax.set_xlim(-max(columns) - 0.6, 0.6)
    ax.set_ylim(-tallest, 1)
    for a, b in graph:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        ax.annotate("", xy=(x2, y2), xytext=(x1, y1), arrowprops={"arrowstyle": "->", "color": "#999", "lw": 0.6})
    for n, (x, y) in pos.items():
        ax.text(x, y, n, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "fc": "#eef", "ec": "#448"})
    ax.set_axis_off()
    ax.set_title("platform/msm by package: an arrow points from a package to one it imports; everything flows right "
                 "(generated by make architecture)", fontsize=9)
    fig.savefig(out)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(ROOT))
    p.add_argument("--dot", help="write the package-level Graphviz source here")
    p.add_argument("--svg", help="draw the package-level graph here (.svg or .png)")
    p.add_argument("--json", help="write every measure here")
    args = p.parse_args()
    m = measures(Path(args.root))
    folded = package_graph(set(map(tuple, m["edges"])))
    if args.dot:
        Path(args.dot).write_text(dot(folded))
    if args.svg:
        draw(folded, Path(args.svg))
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in m.items() if k != "edges"}, indent=2) + "\n")
    print(f"modules {m['modules']}, lines {m['lines']}, functions over 60 lines {len(m['functions_over_60_lines'])}, "
          f"import circles {len(m['import_circles'])}, private names imported across modules "
          f"{len(m['private_imports'])}, function-local imports of msm modules {m['function_local_imports_of_msm']}")
    for c in m["import_circles"]:
        print("  circle:", " <-> ".join(c))
    for f in m["functions_over_60_lines"]:
        print("  long:", f)
    for x in m["private_imports"]:
        print("  private:", x)
    return 0


if __name__ == "__main__":
    sys.exit(main())
