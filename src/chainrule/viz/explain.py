"""The backward-pass explainer: the chain rule, one node at a time, with the numbers.

``explain(f)`` runs the engine on ``f``'s graph through ``autograd.grad`` (so no ``.grad`` of
the user's tensors changes and the graph is retained) with a pre-hook and a post-hook on every
node. The pre-hook sees the gradient arriving at a node — already summed over its consumers —
and the post-hook the gradients the node's rule sends to each input. Contributions are recorded
per receiving slot, so a value used twice shows how its gradient adds up ("y receives 2.0 + 3.0
= 5.0"). The steps come out in the engine's order: reverse topological.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["explain", "Trace", "Step", "RULES", "format_value"]

# node name -> (short op name, the local rule in words and symbols, expression template)
# Templates use {0}, {1}, ... for the inputs' labels and {name} for attributes the op kept on
# its node (``ctx.exponent``); ops without a template print as name(a, b).
RULES: dict[str, tuple[str, str, str | None]] = {
    # arithmetic
    "AddBackward0": ("+", "copies the gradient to both inputs (∂/∂a = 1, ∂/∂b = 1)", "{0} + {1}"),
    "SubBackward0": ("-", "copies the gradient to a and its negative to b (∂/∂a = 1, ∂/∂b = -1)",
                     "{0} - {1}"),
    "MulBackward0": ("mul", "∂/∂a = b, ∂/∂b = a (each input gets the gradient times the other)",
                     "{0} * {1}"),
    "DivBackward0": ("div", "∂/∂a = 1/b, ∂/∂b = -a/b²", "{0} / {1}"),
    "NegBackward0": ("neg", "flips the sign of the gradient (∂/∂a = -1)", "-{0}"),
    "PowBackward0": ("pow", "∂/∂a = c·a^(c-1) for the constant exponent c", "{0} ** {exponent}"),
    "PowBackward1": ("pow", "∂/∂a = b·a^(b-1), ∂/∂b = a^b·log a", None),
    "RemainderBackward0": ("remainder", "∂/∂a = 1, ∂/∂b = -floor(a/b)", "{0} % {1}"),
    "FmodBackward0": ("fmod", "∂/∂a = 1, ∂/∂b = -trunc(a/b)", None),
    "Atan2Backward0": ("atan2", "∂/∂a = b/(a² + b²), ∂/∂b = -a/(a² + b²)", None),
    # elementwise functions: each output depends on its own input only (diagonal Jacobian)
    "ExpBackward0": ("exp", "∂/∂a = exp(a) (the saved output itself)", "exp({0})"),
    "Exp2Backward0": ("exp2", "∂/∂a = 2^a·log 2", "exp2({0})"),
    "Expm1Backward0": ("expm1", "∂/∂a = exp(a)", "expm1({0})"),
    "LogBackward0": ("log", "∂/∂a = 1/a", "log({0})"),
    "Log1PBackward0": ("log1p", "∂/∂a = 1/(1 + a)", "log1p({0})"),
    "Log2Backward0": ("log2", "∂/∂a = 1/(a·log 2)", "log2({0})"),
    "Log10Backward0": ("log10", "∂/∂a = 1/(a·log 10)", "log10({0})"),
    "SqrtBackward0": ("sqrt", "∂/∂a = 1/(2·sqrt(a))", "sqrt({0})"),
    "RsqrtBackward0": ("rsqrt", "∂/∂a = -a^(-3/2)/2", "rsqrt({0})"),
    "ReciprocalBackward0": ("reciprocal", "∂/∂a = -1/a²", "1 / {0}"),
    "AbsBackward0": ("abs", "∂/∂a = sign(a) (0 at a = 0)", "abs({0})"),
    "SinBackward0": ("sin", "∂/∂a = cos(a)", "sin({0})"),
    "CosBackward0": ("cos", "∂/∂a = -sin(a)", "cos({0})"),
    "TanBackward0": ("tan", "∂/∂a = 1 + tan²(a)", "tan({0})"),
    "AsinBackward0": ("asin", "∂/∂a = 1/sqrt(1 - a²)", "asin({0})"),
    "AcosBackward0": ("acos", "∂/∂a = -1/sqrt(1 - a²)", "acos({0})"),
    "AtanBackward0": ("atan", "∂/∂a = 1/(1 + a²)", "atan({0})"),
    "SinhBackward0": ("sinh", "∂/∂a = cosh(a)", "sinh({0})"),
    "CoshBackward0": ("cosh", "∂/∂a = sinh(a)", "cosh({0})"),
    "TanhBackward0": ("tanh", "∂/∂a = 1 - tanh(a)² (from the saved output)", "tanh({0})"),
    "SigmoidBackward0": ("sigmoid", "∂/∂a = σ(a)·(1 - σ(a)) (from the saved output)", "sigmoid({0})"),
    "LogSigmoidBackward0": ("logsigmoid", "∂/∂a = 1 - σ(a)", "logsigmoid({0})"),
    "ErfBackward0": ("erf", "∂/∂a = 2/sqrt(π)·exp(-a²)", "erf({0})"),
    "SignBackward0": ("sign", "zero gradient (piecewise constant)", "sign({0})"),
    "FloorBackward0": ("floor", "zero gradient (piecewise constant)", "floor({0})"),
    "CeilBackward0": ("ceil", "zero gradient (piecewise constant)", "ceil({0})"),
    "RoundBackward0": ("round", "zero gradient (piecewise constant)", "round({0})"),
    "TruncBackward0": ("trunc", "zero gradient (piecewise constant)", "trunc({0})"),
    "FracBackward0": ("frac", "passes the gradient through (∂/∂a = 1)", "frac({0})"),
    # activations
    "ReluBackward0": ("relu", "passes the gradient where a > 0, blocks it elsewhere (relu'(0) = 0)",
                      "relu({0})"),
    "LeakyReluBackward0": ("leaky_relu", "passes the gradient where a > 0, scales it by the slope "
                           "elsewhere", "leaky_relu({0})"),
    "ThresholdBackward0": ("threshold", "passes the gradient where a > threshold, 0 elsewhere", None),
    "HardtanhBackward0": ("hardtanh", "passes the gradient inside (min, max), 0 outside", None),
    "EluBackward0": ("elu", "∂/∂a = 1 for a > 0, α·exp(a) otherwise", None),
    "GeluBackward0": ("gelu", "∂/∂a = Φ(a) + a·φ(a)", "gelu({0})"),
    "SiluBackward0": ("silu", "∂/∂a = σ(a)·(1 + a·(1 - σ(a)))", "silu({0})"),
    "SoftplusBackward0": ("softplus", "∂/∂a = σ(β·a)", None),
    "MishBackward0": ("mish", "∂/∂a = tanh(softplus(a)) + a·σ(a)·(1 - tanh²(softplus(a)))", None),
    "HardsigmoidBackward0": ("hardsigmoid", "∂/∂a = 1/6 inside (-3, 3), 0 outside", None),
    "HardswishBackward0": ("hardswish", "∂/∂a = (2a + 3)/6 inside (-3, 3); 0 below, 1 above", None),
    "PreluKernelBackward0": ("prelu", "∂/∂a = 1 or the slope w; ∂/∂w = a where a < 0", None),
    # routing: the gradient goes to the input that won
    "MaximumBackward0": ("max", "routes the gradient to the larger input (split evenly on a tie)",
                         "max({0}, {1})"),
    "MinimumBackward0": ("min", "routes the gradient to the smaller input (split evenly on a tie)",
                         "min({0}, {1})"),
    "ClampBackward1": ("clamp", "passes the gradient where a is inside the bounds, 0 outside",
                       "clamp({0})"),
    "WhereBackward0": ("where", "routes the gradient to the branch the condition chose", None),
    "MaxBackward0": ("max", "routes the gradient to the largest element (split evenly among ties)",
                     "max({0})"),
    "MaxBackward1": ("max", "routes the gradient to the largest element along the dim", "max({0})"),
    "MinBackward0": ("min", "routes the gradient to the smallest element (split evenly among ties)",
                     "min({0})"),
    "MinBackward1": ("min", "routes the gradient to the smallest element along the dim", "min({0})"),
    "AmaxBackward0": ("amax", "routes the gradient to the largest elements (split evenly among ties)",
                      "amax({0})"),
    "AminBackward0": ("amin", "routes the gradient to the smallest elements (split evenly among ties)",
                      "amin({0})"),
    "SortBackward0": ("sort", "scatters the gradient back to the elements' original positions", None),
    "TopkBackward0": ("topk", "scatters the gradient to the k chosen positions, 0 elsewhere", None),
    "KthvalueBackward0": ("kthvalue", "routes the gradient to the k-th smallest element", None),
    "MedianBackward0": ("median", "routes the gradient to the median element", None),
    "MedianBackward1": ("median", "routes the gradient to the median element along the dim", None),
    "ModeBackward0": ("mode", "routes the gradient to the chosen element", None),
    # reductions
    "SumBackward0": ("sum", "copies the gradient to every element (∂/∂aᵢ = 1)", "sum({0})"),
    "SumToSizeBackward0": ("sum_to_size", "expands the gradient back over the summed dims", None),
    "MeanBackward0": ("mean", "shares the gradient equally: ∂/∂aᵢ = 1/n", "mean({0})"),
    "ProdBackward0": ("prod", "∂/∂aᵢ = the product of the other elements", "prod({0})"),
    "VarBackward0": ("var", "∂/∂aᵢ = 2(aᵢ - mean)/(n - correction)", "var({0})"),
    "LogsumexpBackward0": ("logsumexp", "∂/∂a = softmax(a)", "logsumexp({0})"),
    "CumsumBackward0": ("cumsum", "reverse cumulative sum of the gradient", "cumsum({0})"),
    "CumprodBackward0": ("cumprod", "∂/∂aᵢ = Σ_{j≥i} g_j·prod_j/aᵢ", "cumprod({0})"),
    "LinalgVectorNormBackward0": ("norm", "∂/∂a = a / ‖a‖ (for the 2-norm)", "norm({0})"),
    "TraceBackward0": ("trace", "puts the gradient on the diagonal", "trace({0})"),
    # linear algebra
    "MmBackward0": ("matmul", "∂/∂A = G Bᵀ, ∂/∂B = Aᵀ G", "{0} @ {1}"),
    "MvBackward0": ("matmul", "∂/∂A = g xᵀ (outer product), ∂/∂x = Aᵀ g", "{0} @ {1}"),
    "DotBackward0": ("dot", "∂/∂a = g·b, ∂/∂b = g·a", "{0} @ {1}"),
    "MatmulBackward0": ("matmul", "∂/∂A = G Bᵀ, ∂/∂B = Aᵀ G (summed over broadcast batch dims)",
                        "{0} @ {1}"),
    "BmmBackward0": ("bmm", "per batch: ∂/∂A = G Bᵀ, ∂/∂B = Aᵀ G", "bmm({0}, {1})"),
    "AddmmBackward0": ("linear", "y = x Wᵀ + b: ∂/∂x = G W, ∂/∂W = Gᵀ x, ∂/∂b = G summed over the batch",
                       "linear({0}, {1}, {2})"),
    "EinsumBackward0": ("einsum", "each operand gets an einsum of the gradient with the others", None),
    "DiagonalBackward0": ("diagonal", "puts the gradient back on the diagonal, zeros elsewhere", None),
    "TrilBackward0": ("tril", "keeps the gradient's lower triangle", None),
    # shapes: the gradient is moved back, never changed
    "ViewBackward0": ("view", "reshapes the gradient back to the input's shape", None),
    "UnsafeViewBackward0": ("view", "reshapes the gradient back to the input's shape", None),
    "ExpandBackward0": ("expand", "sums the gradient over the broadcast dims", None),
    "TransposeBackward0": ("transpose", "transposes the gradient back", "{0}ᵀ"),
    "PermuteBackward0": ("permute", "applies the inverse permutation to the gradient", None),
    "CloneBackward0": ("clone", "passes the gradient through unchanged", None),
    "ToCopyBackward0": ("to", "passes the gradient through, cast to the input's dtype", None),
    "CatBackward0": ("cat", "slices the gradient back into the pieces", None),
    "FlipBackward0": ("flip", "flips the gradient back", None),
    "RollBackward0": ("roll", "rolls the gradient back", None),
    "RepeatBackward0": ("repeat", "sums the gradient over the repeated copies", None),
    "ConstantPadNdBackward0": ("pad", "crops the padding off the gradient", None),
    # indexing
    "IndexBackward0": ("index", "scatters the gradient into zeros at the indexed positions", None),
    "SelectBackward0": ("select", "places the gradient at the picked index, zeros elsewhere", None),
    "SliceBackward0": ("slice", "places the gradient in the sliced window, zeros elsewhere", None),
    "UnsqueezeBackward0": ("unsqueeze", "drops the inserted size-1 axes from the gradient", None),
    "IndexPutBackward0": ("index_put", "the overwritten positions get no gradient; the values get "
                          "the gradient there", None),
    "IndexSelectBackward0": ("index_select", "adds the gradient into zeros at the selected indices", None),
    "GatherBackward0": ("gather", "scatter-adds the gradient back to the gathered positions", None),
    "ScatterBackward0": ("scatter", "the overwritten positions get no gradient", None),
    "ScatterAddBackward0": ("scatter_add", "∂/∂self = G, ∂/∂src = G gathered at the index", None),
    "EmbeddingBackward0": ("embedding", "adds each row's gradient into the rows that were looked up", None),
    # convolution, pooling, normalisation, losses
    "ConvolutionBackward0": ("conv", "∂L/∂X = full convolution of G with the 180°-rotated filter, "
                             "∂L/∂F = X ⋆ G (cross-correlation), ∂L/∂b = Σ G", None),
    "MaxPool2DWithIndicesBackward0": ("max_pool", "routes each window's gradient to its maximum "
                                    "(the first one on a tie)", None),
    "AvgPool2DBackward0": ("avg_pool", "spreads each window's gradient evenly: 1/(window size) each", None),
    "AdaptiveAvgPool2DBackward0": ("adaptive_avg_pool", "spreads each cell's gradient evenly over "
                                   "its window", None),
    "AdaptiveMaxPool2DBackward0": ("adaptive_max_pool", "routes each cell's gradient to its maximum", None),
    "Im2ColBackward0": ("unfold", "adds the columns' gradients back into the overlapping patches", None),
    "Col2ImBackward0": ("fold", "cuts the gradient back into patches", None),
    "NativeBatchNormBackward0": ("batch_norm", "∂/∂x = (γ/σ)·(g - mean(g) - x̂·mean(g·x̂)); "
                                 "∂/∂γ = Σ g·x̂, ∂/∂β = Σ g", None),
    "NativeDropoutBackward0": ("dropout", "passes the gradient through the kept units, scaled by "
                               "1/(1 - p)", None),
    "SoftmaxBackward0": ("softmax", "∂/∂a = s ∘ (g - ⟨g, s⟩) with s the saved output", "softmax({0})"),
    "LogSoftmaxBackward0": ("log_softmax", "∂/∂a = g - softmax(a)·Σg", "log_softmax({0})"),
    "NllLossBackward0": ("nll_loss", "-1/N at each target's position, 0 elsewhere", None),
}

_MAX_INLINE = 12
_MAX_LABEL = 32


def format_value(value) -> str:
    """Scalars exactly (repr-like: ``2.0``); small tensors as shape and values; large ones as
    shape, norm, min and max."""
    if value is None:
        return "None"
    array = value._data if hasattr(value, "_data") else np.asarray(value)
    if array.size == 1 and array.ndim == 0:
        return _scalar(array.reshape(()).item() if array.dtype.kind != "f" else array.reshape(())[()])
    shape = "(" + ", ".join(str(s) for s in array.shape) + ("," if array.ndim == 1 else "") + ")"
    if array.size <= _MAX_INLINE:
        body = np.array2string(array, separator=", ", formatter={"all": _scalar})
        return f"{shape} {' '.join(body.split())}"
    # the norm is accumulated in float64, then shown at the tensor's own precision
    norm = np.linalg.norm(array.astype(np.float64).ravel())
    if array.dtype.kind == "f":
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
    expression built from the op table, or ``t<k>``. No ``.grad`` is touched and the graph is
    retained. Returns the :class:`Trace` (printed first when ``print_trace``).
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
        template = RULES.get(fn.name(), (None, None, None))[2]
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
            base = fn.name().replace("Backward0", "").replace("Backward1", "").lower()
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
                            _rule_text(fn.name()) if kind == "op" else None)
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
        handles.append(fn.register_prehook(prehook(fn)))
        if type(fn) is not AccumulateGrad:
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


def _rule_text(node_name: str) -> str:
    entry = RULES.get(node_name)
    if entry is None:
        return f"{node_name} (no description; its backward rule runs as written)"
    return f"{entry[0]}: {entry[1]}"
