"""torch.fx.graph_module: ``GraphModule``, an nn.Module whose ``forward`` is generated from a Graph.

Each GraphModule gets its own subclass (as in torch), so that ``recompile()`` can set ``forward``
on the class without touching other GraphModules. It holds only the submodules, parameters and
buffers its graph reads, copied by reference from the root.
"""

from __future__ import annotations

import copy
import linecache
from typing import Any

from ..nn.modules.module import Module
from ..nn.parameter import Parameter
from ..tensor import Tensor
from .graph import Graph

__all__ = ["GraphModule"]


def _holder(destination: Module, path: list[str]) -> Module:
    """The module at ``path`` under ``destination``, made of fresh empty ``Module``s where
    missing, so that a copied attribute's unused siblings are not carried along."""
    for atom in path:
        child = getattr(destination, atom, None)
        if not isinstance(child, Module):
            child = Module()
            setattr(destination, atom, child)
        destination = child
    return destination


def _copy_attribute(source: Module, destination: Module, target: str) -> None:
    """Makes ``destination.<target>`` the very object ``source.<target>`` is."""
    *path, field = target.split(".")
    for atom in path:
        source = getattr(source, atom)
    holder = _holder(destination, path)
    value = getattr(source, field)
    if field in source._buffers:
        holder.register_buffer(field, value, field not in source._non_persistent_buffers_set)
    else:
        _assign_attribute(value, holder, field)


# torchvision's feature extraction imports torch's name for it
_copy_attr = _copy_attribute


def _assign_attribute(value: Any, destination: Module, target: str) -> None:
    *path, field = target.split(".")
    holder = _holder(destination, path)
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        # a plain tensor (a constant, an attribute) is kept as a buffer, so that .to() moves it
        holder.register_buffer(field, value)
    else:
        setattr(holder, field, value)


def _rebuild(body: dict, graph: Graph, class_name: str) -> GraphModule:
    """Unpickles a GraphModule from its module state and a copy of its graph."""
    root = Module()
    root.__dict__.update(body)
    return GraphModule(root, graph, class_name)


class GraphModule(Module):
    """torch.fx.GraphModule(root, graph, class_name): runs ``graph`` as its forward. ``root`` is
    the module (or a dict of name -> object) whose attributes the graph's get_attr and
    call_module nodes name."""

    def __new__(cls, *args, **kwargs):
        # one subclass per instance, so that recompile() sets forward for this instance alone
        # (type(gm)(...) derives from gm's class, and so still runs __init__, with its own forward)
        return super().__new__(type("GraphModuleImpl", (cls,), {}))

    def __init__(self, root: Module | dict[str, Any], graph: Graph, class_name: str = "GraphModule") -> None:
        super().__init__()
        self.__class__.__name__ = class_name
        self.meta: dict[str, Any] = {}
        if isinstance(root, Module):
            self.training = getattr(root, "training", True)
            for node in graph.nodes:
                if node.op in ("get_attr", "call_module"):
                    _copy_attribute(root, self, node.target)
        elif isinstance(root, dict):
            for node in graph.nodes:
                if node.op in ("get_attr", "call_module"):
                    if node.target not in root:
                        raise RuntimeError(f"Node {node} referenced target {node.target} but that target "
                                           "was not provided in ``root``!")
                    _assign_attribute(root[node.target], self, node.target)
        else:
            raise RuntimeError("Unsupported type " + str(root) + " passed for root!")
        self.graph = graph

    @property
    def graph(self) -> Graph:
        return self._graph

    @graph.setter
    def graph(self, g: Graph) -> None:
        if not isinstance(g, Graph):
            raise AssertionError(f"Expected a Graph instance, but got {type(g)}")
        self.__dict__["_graph"] = g
        g.owning_module = self
        self.recompile()

    @property
    def code(self) -> str:
        """The Python source of the generated forward."""
        return self._code

    def recompile(self):
        """Regenerates ``forward`` from the graph; call it after editing ``self.graph``."""
        python_code = self._graph.python_code(root_module="self")
        self.__dict__["_code"] = python_code.src
        namespace: dict[str, Any] = {}
        filename = f"<eval_with_key>.{id(self)}"
        # registered with linecache, so that a traceback through forward shows the generated line
        linecache.cache[filename] = (len(python_code.src), None, python_code.src.splitlines(True), filename)
        exec(compile(python_code.src, filename, "exec"), python_code.globals, namespace)
        type(self).forward = namespace["forward"]
        return python_code

    def print_readable(self, print_output: bool = True, include_stride: bool = False,
                       include_device: bool = False, colored: bool = False, **_ignored) -> str:
        """The generated code as a class, with GraphModule children nested; printed unless
        ``print_output=False``."""
        text = self._readable(type(self).__name__)
        if print_output:
            print(text)
        return text

    def _readable(self, name: str) -> str:
        body = self._graph.python_code(root_module="self", verbose=True).src.strip("\n").rstrip()
        lines = [f"class {name}(torch.nn.Module):"]
        lines += ["    " + line if line.strip() else "" for line in body.split("\n")]
        for child_name, child in self.named_children():
            if isinstance(child, GraphModule):
                lines += [""] + ["    " + line if line else "" for line in child._readable(child_name).split("\n")]
        return "\n".join(lines).rstrip("\n") + "\n"

    def __str__(self) -> str:
        return "\n".join([super().__repr__(), self._code,
                          "# To see more debug info, please use `graph_module.print_readable()`"])

    # ------------------------------------------------------------------ submodule surgery
    def add_submodule(self, target: str, m: Module) -> bool:
        """Installs ``m`` at the dotted path ``target``, making empty Modules along the way;
        False when a non-Module attribute is in the way."""
        *path, field = target.split(".")
        owner: Module = self
        for atom in path:
            child = getattr(owner, atom, None)
            if child is None:
                child = Module()
                owner.add_module(atom, child)
            if not isinstance(child, Module):
                return False
            owner = child
        owner.add_module(field, m)
        return True

    def delete_submodule(self, target: str) -> bool:
        """Removes the submodule at ``target``; False when there is none."""
        *path, field = target.split(".")
        owner: Module = self
        for atom in path:
            owner = getattr(owner, atom, None)
            if not isinstance(owner, Module):
                return False
        if not isinstance(owner._modules.get(field), Module):
            return False
        del owner._modules[field]
        return True

    def delete_all_unused_submodules(self) -> None:
        """Removes every submodule no call_module or get_attr node reaches."""
        used: set[str] = set()
        for node in self._graph.nodes:
            if node.op in ("call_module", "get_attr"):
                atoms = node.target.split(".")
                used.update(".".join(atoms[:i]) for i in range(1, len(atoms) + 1))
                if node.op == "call_module":
                    # a called module uses all of its own children
                    used.update(f"{node.target}.{name}" for name, _ in self.get_submodule(node.target).named_modules())
        for name, _ in reversed(list(self.named_modules())):
            if name and name not in used:
                self.delete_submodule(name)

    def __reduce__(self):
        body = {key: value for key, value in self.__dict__.items() if key not in ("_graph", "_code")}
        # the copy drops the graph's link back to this module, which pickle could not rebuild
        return (_rebuild, (body, copy.deepcopy(self._graph), type(self).__name__))

    def __deepcopy__(self, memo):
        fake = Module()
        memo[id(self)] = fake
        fake.__dict__ = copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in ("_graph", "_code")}, memo)
        result = GraphModule(fake, copy.deepcopy(self._graph), type(self).__name__)
        result.meta = copy.deepcopy(self.meta, memo)
        return result

    def __copy__(self):
        result = GraphModule(self, self._graph, type(self).__name__)
        result.meta = dict(self.meta)
        return result
