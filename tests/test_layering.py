"""Layers only point down: the import rules of docs/DESIGN's layer order, read from the source.

The graph comes from tools/import_graph.py (``python tools/import_graph.py --verbose`` lists the
arrows and circles); every module's imports are parsed with ``ast``, nothing is imported.
Layer order, lowest first: base (_dtype, _backend, _config) -> autograd -> tensor -> ops -> nn ->
libraries (optim, utils, data, ...) -> tools (viz, commands, cli); chainrule/__init__.py wires them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def edges(graph):
    return graph.build_graph(ROOT / "src")


def _from(edges, package: str) -> list:
    return [e for e in edges if e.source == package or e.source.startswith(package + ".")]


def _into(edges, *packages: str) -> list:
    return [e for e in edges if any(e.target == p or e.target.startswith(p + ".") for p in packages)]


def _show(found) -> list[str]:
    return [f"{e.source}:{e.line} imports {e.target}{' (its package __init__)' if e.implicit else ''}"
            f"{' (in a function)' if e.local else ''}" for e in found]


def test_every_module_has_a_layer(graph, edges):
    unplaced = []
    for module in graph.module_files(ROOT / "src"):
        try:
            graph.layer_of(module)
        except ValueError:
            unplaced.append(module)
    assert not unplaced, f"modules in no layer (add them to LAYERS in tools/import_graph.py): {unplaced}"


def test_autograd_imports_no_ops_nn_viz_or_optim(edges):
    found = _into(_from(edges, "chainrule.autograd"), "chainrule.ops", "chainrule.nn", "chainrule.viz",
                  "chainrule.optim")
    assert not found, _show(found)


def test_autograd_reaches_tensor_only_through_the_seam(edges):
    # chainrule._methods hands autograd the Tensor class; importing tensor.py would close a circle
    found = _into(_from(edges, "chainrule.autograd"), "chainrule.tensor")
    assert not found, _show(found)


def test_ops_never_import_nn_optim_viz_or_commands(edges):
    found = _into(_from(edges, "chainrule.ops"), "chainrule.nn", "chainrule.optim", "chainrule.viz",
                  "chainrule.commands", "chainrule.cli")
    assert not found, _show(found)


def test_tensor_imports_no_ops(edges):
    # not at module level (the brief's rule) and not inside methods either: the methods that
    # need an op call what chainrule._methods binds
    found = _into(_from(edges, "chainrule.tensor"), "chainrule.ops")
    assert not found, _show(found)


def test_no_module_level_import_points_up(graph, edges):
    found = graph.upward([e for e in edges if not e.local and not e.implicit])
    assert not found, _show(found)


def test_no_module_level_import_cycle(graph, edges):
    circles = graph.cycles([e for e in edges if not e.local])
    assert not circles, f"module-level import circles: {circles}"


def test_autograd_and_tensor_are_in_no_circle_even_through_function_local_imports(graph, edges):
    circles = [c for c in graph.cycles(edges)
               if any(m == "chainrule.tensor" or m.startswith("chainrule.autograd") for m in c)]
    assert not circles, f"import circles through autograd or tensor.py: {circles}"


def test_the_graph_sees_imports_in_functions_and_skips_type_checking_blocks(graph, tmp_path):
    package = tmp_path / "chainrule"
    (package / "ops").mkdir(parents=True)
    (package / "autograd").mkdir()
    for init in (package, package / "ops", package / "autograd"):
        (init / "__init__.py").write_text("")
    (package / "ops" / "shape.py").write_text("def stack():\n    pass\n")
    (package / "autograd" / "engine.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..ops.shape import stack\n"
        "def backward():\n    from ..ops import shape\n")
    found = graph.build_graph(tmp_path)
    explicit = [(e.source, e.target, e.local) for e in found if not e.implicit]
    assert explicit == [("chainrule.autograd.engine", "chainrule.ops.shape", True)]
    assert [e.target for e in graph.upward(found)] == ["chainrule.ops.shape", "chainrule.ops"]
