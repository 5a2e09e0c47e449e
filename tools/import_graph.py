"""Measure chainrule's import graph: which imports point up the layer order, and which circles exist.

Run ``python tools/import_graph.py`` (``--verbose`` lists every upward arrow and every circle).
Imports are read with ``ast`` (nothing is imported), split into module-level ones (run when the
module is imported, class bodies included, ``if TYPE_CHECKING:`` blocks excluded) and
function-local ones (run when the function is first called). ``tests/test_layering.py`` asserts
the rules on the same graph.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "chainrule"

# lowest first; a module may import from its own layer and the layers below it. The first
# matching prefix decides (so "chainrule.tensor" is matched before the catch-all ones)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("chainrule._dtype", "chainrule._backend", "chainrule._meta", "chainrule._standin", "chainrule._cupy_surface",
              "chainrule._config", "chainrule._parallel", "chainrule._shared", "chainrule._layout",
              "chainrule.return_types", "chainrule._opmath", "chainrule._naming",
              "chainrule._torch_function", "chainrule._symbolic_sizes", "chainrule._vmap_frames",
              "chainrule._sum_order", "chainrule._malloc_tuning",
              # torch.utils.hooks.RemovableHandle, plain Python: autograd's hooks return it too
              "chainrule._hook_handle",
              # plain Python, no chainrule imports: distributed's Work.get_future builds on it
              "chainrule.futures")),
    ("autograd", ("chainrule.autograd",)),
    ("tensor", ("chainrule.tensor", "chainrule._format", "chainrule.storage", "chainrule.types",
                "chainrule._tensor_str", "chainrule._subclass_copy")),
    ("ops", ("chainrule.ops", "chainrule._methods", "chainrule.linalg", "chainrule.fft", "chainrule.special",
             "chainrule.sparse", "chainrule.random")),
    # DistributedDataParallel (nn.parallel) all-reduces through chainrule.distributed
    ("nn", ("chainrule.nn", "chainrule.distributed", "chainrule.distributions", "chainrule.amp",
            "chainrule.cuda", "chainrule.backends", "chainrule.accelerator", "chainrule._legacy_types",
            "chainrule.cpu", "chainrule.mps", "chainrule.xpu")),
    ("libraries", ("chainrule.optim", "chainrule.utils", "chainrule.datasets",
                   "chainrule.serialization", "chainrule._utils", "chainrule._safetensors", "chainrule._torch_zip", "chainrule._torch_file",
                   "chainrule.testing", "chainrule.onnx", "chainrule.hub", "chainrule.jit",
                   "chainrule.compiler", "chainrule._dynamo", "chainrule.fx", "chainrule._C",
                   "chainrule.models", "chainrule.func", "chainrule._vmap_batched", "chainrule.multiprocessing", "chainrule._spawn_child",
                   "chainrule.version", "chainrule.torch_version", "chainrule.__config__", "chainrule._subclasses",
                   "chainrule.profiler", "chainrule.quasirandom", "chainrule.signal", "chainrule.overrides",
                   "chainrule.library", "chainrule._custom_ops", "chainrule._custom_op", "chainrule.ao", "chainrule.quantization", "chainrule.nested",
                   "chainrule.masked", "chainrule.functional",
                   "chainrule._higher_order_ops", "chainrule._export")),
    ("tools", ("chainrule.viz", "chainrule.commands", "chainrule.cli", "chainrule.benchmark",
               "chainrule.benchmark_distributed", "chainrule.benchmark_cuda", "chainrule.__main__")),
    # the package itself wires the layers together (binds methods, attaches namespaces)
    ("wiring", ("chainrule",)),
]


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported chainrule module
    line: int
    local: bool  # inside a function body: runs at the first call, not at import
    implicit: bool = False  # a parent package run by importing one of its submodules


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            # the package itself is the wiring layer; its modules must each be placed
            if module == prefix or (prefix != PACKAGE and module.startswith(prefix + ".")):
                return rank
    raise ValueError(f"{module} is in no layer: add it to LAYERS in tools/import_graph.py")


def layer_name(module: str) -> str:
    return LAYERS[layer_of(module)][0]


def module_files(src: Path = SRC) -> dict[str, Path]:
    files = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        files[".".join(parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.Module):
    """(node, local) for every import statement, skipping ``if TYPE_CHECKING:`` bodies.

    Only statement lists are walked (bodies, else/finally branches, except handlers, match cases):
    an import is a statement, so no expression can hold one, and skipping expressions makes the
    walk of the whole source tree about ten times shorter."""
    stack = [(child, False) for child in reversed(tree.body)]
    while stack:
        node, local = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, local
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            children = node.orelse
        else:
            children = [child for field in _STATEMENT_LISTS for child in getattr(node, field, ())]
        inner = local or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        stack.extend((child, inner) for child in reversed(children))


_STATEMENT_LISTS = ("body", "handlers", "orelse", "finalbody", "cases")


def imports_of(module: str, path: Path, modules: set[str]) -> list[Import]:
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node, local in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # `from pkg import sub` imports the submodule; `from pkg import name` reads pkg
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                       for alias in node.names]
        for target in dict.fromkeys(targets):
            while target and target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]  # `import chainrule.ops.shape.x` style names
            if target in modules and target != module:
                found.append(Import(module, target, node.lineno, local))
                found.extend(_parents(module, target, node.lineno, local))
    return found


def _parents(source: str, target: str, line: int, local: bool) -> list[Import]:
    """Importing a.b.c runs a.b's ``__init__`` first; that matters when a.b is not source's own
    package (its own package is already running). The root package is left out: it is the
    wiring layer and is always imported first."""
    parents = []
    parts = target.split(".")
    for i in range(2, len(parts)):
        parent = ".".join(parts[:i])
        if not (source == parent or source.startswith(parent + ".")):
            parents.append(Import(source, parent, line, local, implicit=True))
    return parents


def build_graph(src: Path = SRC) -> list[Import]:
    files = module_files(src)
    modules = set(files)
    edges = []
    for module, path in files.items():
        edges.extend(imports_of(module, path, modules))
    return edges


def upward(edges: list[Import]) -> list[Import]:
    """Imports from a lower layer into a higher one (the wiring package is never a target)."""
    return [e for e in edges if e.target != PACKAGE and layer_of(e.target) > layer_of(e.source)]


def cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.target != PACKAGE:
            graph.setdefault(e.source, set()).add(e.target)
            graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components, key=lambda c: (-len(c), c))


def summary(edges: list[Import]) -> dict[str, int]:
    explicit = [e for e in edges if not e.implicit]
    module_level = [e for e in edges if not e.local]
    every_cycle = cycles(edges)
    in_cycle = {m: i for i, c in enumerate(every_cycle) for m in c}
    return {
        "modules": len({e.source for e in edges} | {e.target for e in edges}),
        "module-level imports": sum(not e.local for e in explicit),
        "function-local imports": sum(e.local for e in explicit),
        "upward, module-level": sum(not e.local for e in upward(explicit)),
        "upward, function-local": sum(e.local for e in upward(explicit)),
        "circles, module-level imports only": len(cycles(module_level)),
        "circles, counting function-local imports": len(every_cycle),
        "modules in those circles": len(in_cycle),
        "function-local imports holding them open": sum(
            e.local and e.source in in_cycle and in_cycle[e.source] == in_cycle.get(e.target)
            for e in explicit),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="list every upward arrow and circle")
    parser.add_argument("--src", type=Path, default=SRC, help="the src/ folder holding chainrule")
    args = parser.parse_args(argv)
    edges = build_graph(args.src)
    for name, value in summary(edges).items():
        print(f"{name:45s} {value}")
    if args.verbose:
        print("\nupward imports (source:line [layer] -> target [layer]):")
        for e in sorted(upward([e for e in edges if not e.implicit]), key=lambda e: (e.local, e.source, e.line)):
            kind = "local " if e.local else "module"
            print(f"  {kind} {e.source}:{e.line} [{layer_name(e.source)}] -> {e.target} [{layer_name(e.target)}]")
        for label, chosen in (("module-level", [e for e in edges if not e.local]), ("with function-local", edges)):
            for component in cycles(chosen):
                print(f"\ncircle ({label}, {len(component)} modules): {', '.join(component)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
