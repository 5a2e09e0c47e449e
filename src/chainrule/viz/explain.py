"""The backward-pass explainer: the chain rule, one node at a time, with the numbers.

``explain(f)`` runs the engine on ``f``'s graph through ``autograd.grad`` (so no ``.grad`` of
the user's tensors changes and the graph is retained) with a pre-hook and a post-hook on every
node. The pre-hook sees the gradient arriving at a node — already summed over its consumers —
and the post-hook the gradients the node's rule sends to each input. Contributions are recorded
per receiving slot, so a value used twice shows how its gradient adds up ("y receives 2.0 + 3.0
= 5.0"). The steps come out in the engine's order: reverse topological.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["explain", "Trace", "Step", "RULES", "format_value"]


class _RuleTable(Mapping):
    """Node name -> (label, rule, formula) for chainrule's built-in ops, read from their Function
    classes (the text lives beside each op's forward and backward); a read-only view."""

    def _entries(self) -> dict:
        from ..autograd.function import Function

        entries: dict[str, tuple] = {}
        pending = list(Function.__subclasses__())
        while pending:
            cls = pending.pop()
            pending.extend(cls.__subclasses__())
            node = cls._node_cls
            if cls.__module__.startswith("chainrule.") and node.rule is not None:
                entries.setdefault(node.__name__, (node.label, node.rule, node.formula))
        return entries

    def __getitem__(self, node_name: str) -> tuple:
        return self._entries()[node_name]

    def __iter__(self):
        return iter(self._entries())

    def __len__(self) -> int:
        return len(self._entries())


RULES: Mapping[str, tuple[str, str, str | None]] = _RuleTable()

_MAX_INLINE = 12
_MAX_LABEL = 32


def format_value(value) -> str:
    """Scalars exactly (repr-like: ``2.0``); small tensors as shape and values; large ones as
    shape, norm, min and max."""
    if value is None:
        return "None"
    array = value._data if hasattr(value, "_data") else np.asarray(value)
    if array.size == 1 and array.ndim == 0:
        return _scalar(array.reshape(()).item() if array.dtype.kind not in "fV" else array.reshape(())[()])
    shape = "(" + ", ".join(str(s) for s in array.shape) + ("," if array.ndim == 1 else "") + ")"
    if array.size <= _MAX_INLINE:
        body = np.array2string(array, separator=", ", formatter={"all": _scalar})
        return f"{shape} {' '.join(body.split())}"
    # the norm is accumulated in float64, then shown at the tensor's own precision
    if array.dtype.kind == "c":  # complex numbers have no order: the norm of the moduli only
        return f"{shape} norm={_scalar(np.linalg.norm(array.astype(np.complex128).ravel()))}"
    norm = np.linalg.norm(array.astype(np.float64).ravel())
    if array.dtype.kind in "fV":
        norm = array.dtype.type(norm)
    return f"{shape} norm={_scalar(norm)} min={_scalar(array.min())} max={_scalar(array.max())}"


def _scalar(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        v = np.float64(v)
    if isinstance(v, (np.floating,)):
        if not np.isfinite(v):
            return str(float(v))
        if v != 0 and (abs(v) >= 1e16 or abs(v) < 1e-4):
            return np.format_float_scientific(v, trim="0", unique=True)
        return np.format_float_positional(v, trim="0", unique=True)
    return repr(v)


@dataclass
class Step:
    """One node of the backward walk.

    ``kind`` is ``"op"`` or ``"leaf"``; ``incoming`` holds (from whom, gradient) pairs and ``grad``
    their sum; ``outgoing`` holds (to whom, gradient) pairs, one per input of an op.
    """

    index: int
    kind: str
    label: str
    node_name: str
    expression: str | None = None
    incoming: list = field(default_factory=list)
    grad: object = None
    rule: str | None = None
    outgoing: list = field(default_factory=list)

    def render(self, output_label: str) -> str:
        lines = []
        if self.kind == "leaf":
            lines.append(f"[{self.index}] {self.label}  (leaf)")
        else:
            same = self.expression is None or _bare(self.expression) == _bare(self.label)
            head = self.label if same else f"{self.label} = {self.expression}"
            lines.append(f"[{self.index}] {head}  {self.node_name}")
        if len(self.incoming) > 1:
            terms = " + ".join(format_value(g) for _, g in self.incoming)
            sources = ", ".join(src for src, _ in self.incoming)
            lines.append(f"    {self.label} receives {terms} = {format_value(self.grad)}"
                         f"   (fan-out: from {sources})")
        elif self.incoming and self.incoming[0][0] is not None:
            lines.append(f"    gradient from {self.incoming[0][0]}: {format_value(self.grad)}")
        else:
            lines.append(f"    gradient from above: ∂{output_label}/∂{output_label} = "
                         f"{format_value(self.grad)}")
        if self.kind == "leaf":
            lines.append(f"    ∂{output_label}/∂{self.label} = {format_value(self.grad)}")
            return "\n".join(lines)
        if self.rule:
            lines.append(f"    local rule: {self.rule}")
        for target, g in self.outgoing:
            if target is not None:
                lines.append(f"    sends to {target}: {format_value(g)}")
        return "\n".join(lines)


class Trace(list):
    """The steps of one backward pass (a list of :class:`Step`); ``str()`` renders them.

    ``grads`` maps each input's label to its gradient (a Tensor); ``output_label`` and
    ``output_value`` name the differentiated output and hold its value.
    """

    def __init__(self, steps, output_label: str, grads: dict, output_value) -> None:
        super().__init__(steps)
        self.output_label = output_label
        self.grads = grads
        self.output_value = output_value

    def __str__(self) -> str:
        out = self.output_label
        lines = [f"backward pass of {out} = {format_value(self.output_value)}, "
                 "in reverse topological order:"]
        lines += [step.render(out) for step in self]
        lines.append("gradients: " + ", ".join(
            f"∂{out}/∂{name} = {format_value(g)}" for name, g in self.grads.items()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Trace of {len(self)} steps: {', '.join(s.label for s in self)}>"


def _bare(text: str) -> str:
    return "".join(ch for ch in text if ch not in "() ")


def _wrap(label: str) -> str:
    """Parenthesise ``label`` when it has a space outside any brackets (``x + y``, not ``max(y, z)``)."""
    depth = 0
    for ch in label:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == " " and depth == 0:
            return f"({label})"
    return label


def explain(output, inputs=None, print_trace: bool = True, *, names=None) -> Trace:
    """Run backward from ``output`` and explain every step of the chain rule.

    ``inputs``: the tensors to differentiate with respect to (a tensor, a list, or a ``{name:
    tensor}`` dict); by default every leaf that requires grad. ``names``: ``{label: tensor}`` for
    any tensor of the graph (leaves, intermediates, the output); otherwise ``Tensor.name``, an
    expression built from each node's ``formula``, or ``t<k>``. Each step's local rule is its
    node's ``label`` and ``rule``, which the op's Function class carries. No ``.grad`` is touched
    and the graph is retained. Returns the :class:`Trace` (printed first when ``print_trace``).
    """
    from ..autograd.engine import _topological_order
    from ..autograd.engine import grad as autograd_grad
    from ..autograd.function import AccumulateGrad
    from ..tensor import Tensor

    if not isinstance(output, Tensor):
        raise TypeError(f"explain: output is a {type(output).__name__}, expected a Tensor")
    if not output.requires_grad:
        raise RuntimeError("explain: the output does not require grad and has no grad_fn; "
                           "create its inputs with requires_grad=True")
    if output._data.size != 1:
        raise RuntimeError(f"explain: the output must be a single value, got shape {tuple(output.shape)}; "
                           "reduce it first (e.g. .sum())")

    label_of: dict[tuple[int, int], str] = {}  # (id(node), output_nr) -> label
    if names:
        for name, t in names.items():
            label_of[_slot(t)] = name
    input_items: list[tuple[str | None, Tensor]] = []
    if isinstance(inputs, dict):
        input_items = list(inputs.items())
    elif isinstance(inputs, Tensor):
        input_items = [(None, inputs)]
    elif inputs is not None:
        input_items = [(None, t) for t in inputs]
    for name, t in input_items:
        if name is not None:
            label_of[_slot(t)] = name

    # every node, each consumer before its inputs (the engine's own order); reversed, it is a
    # forward order: inputs first, the output last
    root = output.grad_fn if output.grad_fn is not None else output._get_accumulator()
    nodes = _topological_order([root])
    forward_position = {id(fn): k for k, fn in enumerate(reversed(nodes))}
    if not input_items:
        input_items = [(None, fn.variable) for fn in reversed(nodes) if type(fn) is AccumulateGrad]

    out_label = label_of.get(_slot(output)) or output.name or "f"
    label_of[_slot(output)] = out_label
    counter: dict[str, int] = {}
    expr_of: dict[int, str] = {}

    def label(fn, nr: int) -> str:
        key = (id(fn), nr)
        if key in label_of:
            return label_of[key]
        if type(fn) is AccumulateGrad:
            text = fn.variable.name or _fresh(counter, "x")
        else:
            text = expression(fn)
            if len(text) > _MAX_LABEL:
                text = _fresh(counter, "t")
            elif fn._num_outputs > 1:
                text = f"{text}[{nr}]"
        label_of[key] = text
        return text

    def expression(fn) -> str:
        if id(fn) in expr_of:
            return expr_of[id(fn)]
        template = type(fn).formula
        infix = template is not None and template[0] in "{-1"
        args = []
        for child, nr in fn.next_functions:
            text = "c" if child is None else label(child, nr)
            args.append(_wrap(text) if infix else text)
        try:
            attributes = {k: _scalar(v) for k, v in fn.__dict__.items() if isinstance(v, (int, float))}
            text = template.format(*args, **attributes) if template else None
        except (IndexError, KeyError):
            text = None
        if text is None:
            base = type(fn).label or fn.name().replace("Backward0", "").replace("Backward1", "").lower()
            text = f"{base}({', '.join(args)})"
        expr_of[id(fn)] = text
        return text

    # label in forward order, so a node's inputs are labelled before it (no deep recursion)
    for fn in reversed(nodes):
        for nr in range(fn._num_outputs):
            label(fn, nr)

    contributions: dict[tuple[int, int], list] = {}
    steps: list[Step] = []
    step_of: dict[int, Step] = {}

    def prehook(fn):
        def hook(grads):
            for nr, g in enumerate(grads):
                if g is None:
                    continue
                kind = "leaf" if type(fn) is AccumulateGrad else "op"
                is_root = fn is root and nr == output._output_nr
                incoming = [(src, g) for src, g, _ in contributions.get((id(fn), nr), [])]
                if is_root:
                    incoming.insert(0, (None, g))
                step = Step(len(steps) + 1, kind, label(fn, nr), fn.name(),
                            None if kind == "leaf" else expression(fn), incoming, g,
                            _rule_text(fn) if kind == "op" else None)
                steps.append(step)
                step_of[id(fn)] = step
            return None
        return hook

    def posthook(fn):
        def hook(grad_inputs, grad_outputs):
            step = step_of.get(id(fn))
            src = label(fn, 0)
            for (child, nr), g in zip(fn.next_functions, grad_inputs):
                if child is None or g is None:
                    continue
                received = contributions.setdefault((id(child), nr), [])
                received.append((src, g, forward_position.get(id(fn), 0)))
                received.sort(key=lambda item: item[2])
                if step is not None:
                    step.outgoing.append((label(child, nr), g))
        return hook

    handles = []
    retained = []
    for fn in nodes:
        if type(fn) is AccumulateGrad:
            # autograd.grad captures a leaf's gradient without running its accumulator (as torch's
            # does, so the node's pre-hooks stay silent); the leaf's own tensor hooks see it
            leaf_step = prehook(fn)
            handles.append(fn.variable.register_hook(lambda g, leaf_step=leaf_step: leaf_step((g,))))
            continue
        handles.append(fn.register_prehook(prehook(fn)))
        handles.append(fn.register_hook(posthook(fn)))
        for ref in (fn._retained or {}).values():
            t = ref()
            if t is not None:
                retained.append((t, t._grad))
    tensors = [t for _, t in input_items]
    try:
        grads = autograd_grad(output, tensors, retain_graph=True, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        for t, g in retained:
            t._grad = g
    result = {}
    for (name, t), g in zip(input_items, grads):
        key = name or label_of.get(_slot(t)) or t.name or "input"
        result[key] = g if g is not None else Tensor._make(np.zeros_like(t._data))
    trace = Trace(steps, out_label, result, output.detach())
    if print_trace:
        print(trace)
    return trace


def _slot(t) -> tuple[int, int]:
    if t.grad_fn is not None:
        return (id(t.grad_fn), t._output_nr)
    return (id(t._get_accumulator()), 0)


def _fresh(counter: dict, prefix: str) -> str:
    counter[prefix] = counter.get(prefix, 0) + 1
    return f"{prefix}{counter[prefix]}"


def _rule_text(fn) -> str:
    """The node's own words (its Function's ``label`` and ``rule``), or say that it has none."""
    node = type(fn)
    if node.rule is None:
        return f"{fn.name()} (no description; its backward rule runs as written)"
    return f"{node.label or fn.name()}: {node.rule}"
