"""The shape of platform/msm, from its code (tools/module_graph.py, ast only): data flows one way."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def graph_tool():
    spec = importlib.util.spec_from_file_location("module_graph", REPO / "tools" / "module_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_circles():
    tool = graph_tool()
    circles = tool.cycles(tool.edges(tool.modules()))
    assert circles == [], f"import circles (move the shared piece into a module both can import): {circles}"


def test_no_private_name_is_imported_from_another_module():
    tool = graph_tool()
    assert tool.private_imports(tool.modules()) == []


def test_the_tool_finds_a_circle_and_a_private_import(tmp_path):
    """The checks above would fail on a new circle or private import (a throw-away package in tmp_path)."""
    tool = graph_tool()
    pkg = tmp_path / "msm"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from msm.a.y import _hidden\n")
    (pkg / "a" / "y.py").write_text("def f():\n    from msm.a import x\n_hidden = 1\n")
    mods = tool.modules(tmp_path)
    assert tool.cycles(tool.edges(mods)) == [["msm.a.x", "msm.a.y"]]
    assert tool.private_imports(mods) == ["msm.a.x:1 imports _hidden from msm.a.y"]


def test_the_library_does_not_import_its_drivers():
    """Experiments, the demo and the CLI sit on top: nothing below imports them."""
    tool = graph_tool()
    top = ("msm.experiments", "msm.demo", "msm.cli", "msm.commands")
    below = [(a, b) for a, b in tool.edges(tool.modules()) if b.startswith(top) and not a.startswith(top)]
    assert below == []


def test_packages_depend_one_way():
    """Folded to packages (msm.data, msm.model, ...), the graph has no circle either: data flows one way."""
    tool = graph_tool()
    circles = tool.cycles(tool.package_graph(tool.edges(tool.modules())))
    assert circles == [], circles


def test_function_local_imports_only_keep_a_heavy_package_out():
    """An import inside a function is there to keep a heavy package (torch, ray, pyarrow, ...) out of a module's
    import, and says which with ``# lazy: <packages>``; anything else belongs at the module's top."""
    tool = graph_tool()
    assert tool.measures()["function_local_imports_without_reason"] == []


def test_the_tool_tells_a_needed_local_import_from_a_needless_one(tmp_path):
    tool = graph_tool()
    pkg = tmp_path / "msm"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "light.py").write_text("import json\n")
    (pkg / "heavy.py").write_text("import torch\n")
    (pkg / "user.py").write_text(
        "def a():\n    from msm import heavy  # lazy: torch\n"       # needed, and says so
        "def b():\n    from msm import light\n"                      # nothing heavy: belongs at the top
        "def c():\n    import numpy\n"                               # heavy, but no note
        "def d():\n    try:\n        import pycld2\n    except ImportError:\n        pass\n")  # an optional package
    found = {x["where"]: x for x in tool.local_imports(tool.modules(tmp_path))}
    assert found["msm.user:2"]["brings"] == ["torch"] and found["msm.user:2"]["says_lazy"]
    assert found["msm.user:4"]["brings"] == []
    assert found["msm.user:6"]["brings"] == ["numpy"] and not found["msm.user:6"]["says_lazy"]
    assert found["msm.user:9"]["optional"]
    assert tool.measures(tmp_path)["function_local_imports_without_reason"] == [
        "msm.user:4 from msm import light", "msm.user:6 import numpy"]


def test_the_cli_starts_without_heavy_packages():
    """``msm --help`` (every command module imported) loads none of them: the lazy imports above are what keeps it so."""
    tool = graph_tool()
    code = ("import sys, msm.cli; print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:]))))")
    out = subprocess.run([sys.executable, "-c", code, *sorted(tool.HEAVY)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_test_files_have_unique_names():
    """pytest imports test files without packages by their base name: two ``test_x.py`` in different folders fail
    collection ("import file mismatch") on a clean clone, where no cache hides it."""
    names = [p.name for p in Path(__file__).resolve().parent.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
