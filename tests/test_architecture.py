"""The shape of platform/msm, from its code (tools/module_graph.py, ast only): data flows one way."""

from __future__ import annotations

import importlib.util
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
