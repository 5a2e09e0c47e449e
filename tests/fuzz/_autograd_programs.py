"""Random autograd programs, drawn from a seed and run on torch and on chainrule (the interpreter of
tests/fuzz/test_autograd_programs.py).

A program is a list of ``Step``s over a growing list of values: leaves (float32/float64, 0-d,
empty, transposed and strided), ops and views of them, in-place ops on views and bases, detach,
requires_grad_, retain_grad, hooks (tensor, post-accumulate, node hooks and pre-hooks, removed
again), ``backward`` and ``autograd.grad`` calls with their options, ``.grad`` read (for second-order
programs) and assigned, each step under a grad mode (no_grad, set_grad_enabled(False), enable_grad
inside no_grad, inference_mode). The drawing knows the values' shapes, never what a library does
with them, so one program is the same on both libraries; a step that raises on one raises on the
other or the run differs there.

``run_program`` records after every step: the error (its builtin class and the first clause of its
message), the warnings, the hook calls since the previous step (which hook, with what gradients)
and every value's state (shape, dtype, stride, requires_grad, is_leaf, grad_fn's name, _version,
is_inference, retains_grad, values, and ``.grad`` where it may be read: values, grad_fn's name).
``first_difference`` names the first step where the two records differ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import re
import warnings

import numpy as np

SHAPES = [(), (3,), (2, 3), (3, 1), (0, 3), (2, 1, 2)]
DTYPES = ["float32", "float32", "float64"]
UNARY = ["exp", "sin", "tanh", "sigmoid", "mul2", "square", "neg", "clone", "relu", "sum", "mean", "sum0"]
BINARY = ["add", "mul", "sub"]
VIEWS = ["view_flat", "transpose", "t", "expand", "unsqueeze", "narrow", "select", "unbind", "split", "slice",
         "as_strided"]
INPLACE = ["add_", "mul_", "copy_", "zero_", "clamp_", "relu_", "exp_", "index_put_", "masked_fill_"]
HOOKS = ["tensor_none", "tensor_scale", "post_accumulate", "node_hook", "node_prehook"]
MODES = ["no_grad", "set_grad_enabled", "enable_grad", "inference"]


@dataclasses.dataclass
class Step:
    op: str
    args: tuple
    mode: str = "grad"
    produces: int = 0  # how many values the step appends

    def __repr__(self):
        args = ", ".join(_short(a) for a in self.args)
        mode = "" if self.mode == "grad" else f" [{self.mode}]"
        return f"{self.op}({args}){mode}"


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, Ref):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return repr(value)


@dataclasses.dataclass(frozen=True)
class Ref:
    """The ``index``-th value of the program."""

    index: int

    def __repr__(self):
        return f"v{self.index}"


@dataclasses.dataclass
class Program:
    family: str
    seed: int
    steps: list

    def __repr__(self):
        return f"{self.family}#{self.seed}: " + "; ".join(f"{i}:{s!r}" for i, s in enumerate(self.steps))


# ---------------------------------------------------------------- drawing
class _Drawer:
    def __init__(self, family: str, seed: int):
        self.family, self.seed = family, seed
        self.rng = random.Random(f"{family}:{seed}")
        self.data = np.random.default_rng([seed, len(family)])
        self.shapes: list = []  # each value's shape (None: unknown, e.g. a grad that may be None)
        self.leaves: list[int] = []
        self.steps: list[Step] = []
        self.hooks = 0

    def emit(self, op, args, mode="grad", shapes=()):
        self.steps.append(Step(op, tuple(args), mode, len(shapes)))
        self.shapes.extend(shapes)

    def values(self, ndim_min=0, nonempty=False):
        return [i for i, s in enumerate(self.shapes)
                if s is not None and len(s) >= ndim_min and not (nonempty and (0 in s))]

    def pick(self, candidates):
        # recent values more often: programs chain rather than fan out at random
        if not candidates:
            return None
        weights = [1 + k for k in range(len(candidates))]
        return self.rng.choices(candidates, weights)[0]

    def mode(self, rate):
        return self.rng.choice(MODES) if self.rng.random() < rate else "grad"

    # -- the vocabulary
    def leaf(self, requires_grad=None, mode="grad"):
        shape = self.rng.choice(SHAPES)
        layout = "contiguous"
        if len(shape) == 2 and self.rng.random() < 0.3:
            layout = "transposed"
        elif len(shape) >= 1 and self.rng.random() < 0.2:
            layout = "strided"
        rg = self.rng.random() < 0.75 if requires_grad is None else requires_grad
        array = self.data.uniform(-2, 2, size=shape).round(3)
        self.leaves.append(len(self.shapes))
        self.emit("leaf", (array, self.rng.choice(DTYPES), layout, rg), mode, [shape])

    def unary(self, mode="grad"):
        source = self.pick(self.values())
        kind = self.rng.choice(UNARY)
        shape = self.shapes[source]
        if kind == "sum0" and not shape:
            kind = "sum"
        new = () if kind in ("sum", "mean") else shape[1:] if kind == "sum0" else shape
        self.emit("unary", (kind, Ref(source)), mode, [new])

    def binary(self, mode="grad"):
        a = self.pick(self.values())
        shape = self.shapes[a]
        partners = [i for i in self.values() if self.shapes[i] in (shape, ())]
        b = self.rng.choice(partners)
        self.emit("binary", (self.rng.choice(BINARY), Ref(a), Ref(b)), mode, [shape])

    def view(self, mode="grad"):
        source = self.pick(self.values())
        shape = list(self.shapes[source])
        kinds = [k for k in VIEWS if (k not in ("transpose",) or len(shape) >= 2) and (k != "t" or len(shape) <= 2)
                 and (k not in ("narrow", "select", "unbind", "split", "slice") or (shape and shape[0] > 0))]
        kind = self.rng.choice(kinds)
        extra: tuple = ()
        if kind == "view_flat":
            new = [int(np.prod(shape))]
        elif kind == "transpose":
            new = [shape[-1], *shape[1:-1], shape[0]]
        elif kind == "t":
            new = shape[::-1]
        elif kind == "expand":
            new = [2, *shape]
        elif kind == "unsqueeze":
            dim = self.rng.randint(-len(shape) - 1, len(shape))
            extra = (dim,)
            new = shape.copy()
            new.insert(dim if dim >= 0 else len(shape) + 1 + dim, 1)
        elif kind == "narrow":
            start = self.rng.randrange(shape[0])
            length = self.rng.randint(1, shape[0] - start)
            extra, new = (start, length), [length, *shape[1:]]
        elif kind in ("select", "unbind"):
            extra, new = (self.rng.randrange(-shape[0], shape[0]),), shape[1:]
        elif kind == "split":
            size = self.rng.randint(1, shape[0])
            piece = self.rng.randrange(-(-shape[0] // size))
            extra, new = (size, piece), [min(size, shape[0] - piece * size), *shape[1:]]
        elif kind == "slice":
            extra, new = (2,), [-(-shape[0] // 2), *shape[1:]]
        else:  # as_strided over the value's own sizes and strides
            new = shape
        self.emit("view", (kind, Ref(source), *extra), mode, [tuple(new)])

    def inplace(self, mode="grad"):
        target = self.pick(self.values())
        shape = self.shapes[target]
        kinds = [k for k in INPLACE if k != "index_put_" or (shape and shape[0] > 0)]
        kind = self.rng.choice(kinds)
        extra: tuple = ()
        if kind in ("add_", "mul_", "copy_"):
            partners = [i for i in self.values() if self.shapes[i] in (shape, ())]
            other = Ref(self.rng.choice(partners)) if kind == "copy_" or self.rng.random() < 0.6 else 0.5
            extra = (other,)
        elif kind == "index_put_":
            count = self.rng.randint(1, shape[0])
            index = np.array(self.rng.sample(range(shape[0]), count), dtype=np.int64)
            scalars = [i for i in self.values() if self.shapes[i] == ()]
            source = (Ref(self.rng.choice(scalars)) if scalars and self.rng.random() < 0.4
                      else self.data.uniform(-1, 1, size=(count, *shape[1:])).round(3))
            extra = (index, source, self.rng.random() < 0.5)
        elif kind == "masked_fill_":
            scalars = [i for i in self.values() if self.shapes[i] == ()]
            value = Ref(self.rng.choice(scalars)) if scalars and self.rng.random() < 0.3 else -1.5
            extra = (self.data.random(size=shape) < 0.5, value)
        self.emit("inplace", (kind, Ref(target), *extra), mode)

    def flags(self):
        target = self.pick(self.values())
        kind = self.rng.choice(["detach", "detach_", "requires_grad_", "requires_grad_false", "retain_grad"])
        if kind == "detach":
            self.emit("detach", (Ref(target),), "grad", [self.shapes[target]])
        else:
            self.emit(kind, (Ref(target),))

    def hook(self):
        target = self.pick(self.values())
        kind = self.rng.choice(HOOKS)
        self.hooks += 1
        self.emit("hook", (kind, Ref(target), self.hooks))

    def remove_hook(self):
        if self.hooks:
            self.emit("remove_hook", (self.rng.randint(1, self.hooks),))

    def grad_assign(self):
        if not self.leaves:
            return
        target = self.rng.choice(self.leaves)
        kind = self.rng.choice(["none", "other_shape", "same", "read"])
        if kind == "read":  # the grad as a value of its own: what second-order programs differentiate
            self.emit("grad_of", (Ref(target),), "grad", [self.shapes[target]])
        else:
            shape = self.shapes[target]
            array = self.data.uniform(-1, 1, size=(*shape, 2) if kind == "other_shape" else shape).round(3)
            self.emit("set_grad", (Ref(target), kind, array))

    def _reduced(self):
        """A value to differentiate: a recent one, summed to a scalar now and then."""
        source = self.pick(self.values())
        if source is None:
            return None
        if self.shapes[source] != () and self.rng.random() < 0.6:
            self.emit("unary", ("sum", Ref(source)), "grad", [()])
            source = len(self.shapes) - 1
        return source

    def _inputs(self):
        pool = self.leaves if self.rng.random() < 0.7 else self.values()
        pool = [i for i in pool if self.shapes[i] is not None]
        return [Ref(i) for i in self.rng.sample(pool, self.rng.randint(1, min(3, len(pool))))] if pool else []

    def backward(self):
        source = self._reduced()
        if source is None:
            return
        shape = self.shapes[source]
        gradient = None
        if shape != () or self.rng.random() < 0.2:
            gradient = None if self.rng.random() < 0.1 else self.data.uniform(-1, 1, size=shape).round(3)
        inputs = self._inputs() if self.rng.random() < 0.25 else None
        self.emit("backward", (Ref(source), gradient, self.rng.random() < 0.4, self.rng.random() < 0.25, inputs))

    def grad(self):
        source = self._reduced()
        if source is None:
            return
        inputs = self._inputs()
        if not inputs:
            return
        shape = self.shapes[source]
        grad_outputs = None
        if shape != () or self.rng.random() < 0.2:
            grad_outputs = None if self.rng.random() < 0.1 else self.data.uniform(-1, 1, size=shape).round(3)
        allow_unused = self.rng.choice([None, True, False])
        materialize = self.rng.random() < 0.3
        only_inputs = self.rng.random() < 0.1
        self.emit("grad", (Ref(source), inputs, grad_outputs, self.rng.random() < 0.4, self.rng.random() < 0.3,
                           allow_unused, materialize, only_inputs), "grad",
                  [self.shapes[r.index] for r in inputs])


# family -> (weight of each move): what a family's programs are made of
FAMILIES = {
    "views_inplace": {"unary": 2, "binary": 1, "view": 4, "inplace": 4, "flags": 1, "backward": 1.5, "grad": 0.5},
    "hooks": {"unary": 3, "binary": 1, "view": 1, "inplace": 0.5, "hook": 3, "remove_hook": 1, "flags": 1,
              "backward": 2, "grad": 1},
    "backward_calls": {"unary": 3, "binary": 2, "view": 0.5, "flags": 1, "grad_assign": 2, "backward": 3, "grad": 3},
    "grad_modes": {"unary": 3, "binary": 2, "view": 1, "inplace": 1.5, "flags": 1, "leaf": 1, "backward": 2,
                   "grad": 1},
    "mixed": {"unary": 3, "binary": 2, "view": 2, "inplace": 2, "flags": 1, "hook": 1, "remove_hook": 0.3,
              "grad_assign": 1, "leaf": 0.5, "backward": 2, "grad": 1.5},
}
_MODE_RATE = {"grad_modes": 0.45}


def draw_program(family: str, seed: int) -> Program:
    drawer = _Drawer(family, seed)
    rate = _MODE_RATE.get(family, 0.08)
    for _ in range(drawer.rng.randint(1, 3)):
        drawer.leaf(mode=drawer.mode(rate / 2))
    moves = FAMILIES[family]
    names, weights = list(moves), list(moves.values())
    for _ in range(drawer.rng.randint(3, 10)):
        move = drawer.rng.choices(names, weights)[0]
        if move in ("unary", "binary", "view", "inplace", "leaf"):
            getattr(drawer, move)(mode=drawer.mode(rate))
        else:
            getattr(drawer, move)()
    if drawer.rng.random() < 0.8:
        (drawer.backward if drawer.rng.random() < 0.7 else drawer.grad)()
    if drawer.rng.random() < 0.3:
        drawer.steps.append(dataclasses.replace(drawer.steps[-1]))  # the same call again: freed graph, accumulation
        drawer.shapes.extend(drawer.shapes[len(drawer.shapes) - drawer.steps[-1].produces:])
    return Program(family, seed, drawer.steps)


# ---------------------------------------------------------------- running
def _mode(lib, mode):
    if mode == "no_grad":
        return lib.no_grad()
    if mode == "set_grad_enabled":
        return lib.set_grad_enabled(False)
    if mode == "inference":
        return lib.inference_mode()
    stack = contextlib.ExitStack()
    if mode == "enable_grad":
        stack.enter_context(lib.no_grad())
        stack.enter_context(lib.enable_grad())
    return stack


def _array(t):
    return None if t is None else np.array(t.detach().numpy(), copy=True)


class _Runner:
    def __init__(self, lib):
        self.lib = lib
        self.env: list = []
        self.created: list = []  # each value's _version when the program made it
        self.log: list = []
        self.handles: dict = {}

    def value(self, arg):
        if isinstance(arg, Ref):
            value = self.env[arg.index]
            if value is None:
                raise _Skip
            return value
        return arg

    def constant(self, array, like):
        return self.lib.tensor(array, dtype=like.dtype)

    # -- steps
    def leaf(self, array, dtype, layout, rg):
        lib = self.lib
        dtype = getattr(lib, dtype)

        def made(values):
            # (torch.tensor of an empty NumPy array has zero strides, and its .grad then warns that the
            # layout contract is broken: an empty leaf is made as torch.zeros makes it)
            return lib.tensor(values, dtype=dtype) if values.size else lib.zeros(values.shape, dtype=dtype)

        if layout == "transposed":
            tensor = made(np.ascontiguousarray(array.T)).t()
        elif layout == "strided":
            tensor = made(np.repeat(array, 2, axis=-1))[..., ::2]
        else:
            return [made(array).requires_grad_(rg)]
        return [tensor.detach().requires_grad_(rg)]

    def unary(self, kind, source):
        x = self.value(source)
        results = {"exp": x.exp, "sin": x.sin, "tanh": x.tanh, "sigmoid": x.sigmoid, "mul2": lambda: x * 2,
                   "square": lambda: x ** 2, "neg": x.neg, "clone": x.clone, "relu": x.relu, "sum": x.sum,
                   "mean": x.mean, "sum0": lambda: x.sum(0)}
        return [results[kind]()]

    def binary(self, kind, a, b):
        a, b = self.value(a), self.value(b)
        return [{"add": a.__add__, "mul": a.__mul__, "sub": a.__sub__}[kind](b)]

    def view(self, kind, source, *extra):
        x = self.value(source)
        if kind == "view_flat":
            return [x.view(-1)]
        if kind == "transpose":
            return [x.transpose(0, -1)]
        if kind == "t":
            return [x.t()]
        if kind == "expand":
            return [x.unsqueeze(0).expand(2, *x.shape)]
        if kind == "unsqueeze":
            return [x.unsqueeze(extra[0])]
        if kind == "narrow":
            return [x.narrow(0, *extra)]
        if kind == "select":
            return [x.select(0, extra[0])]
        if kind == "unbind":
            return [x.unbind(0)[extra[0]]]
        if kind == "split":
            return [x.split(extra[0], 0)[extra[1]]]
        if kind == "slice":
            return [x[::extra[0]]]
        return [x.as_strided(tuple(x.shape), x.stride(), x.storage_offset())]

    def inplace(self, kind, target, *extra):
        x = self.value(target)
        if kind in ("add_", "mul_", "copy_"):
            getattr(x, kind)(self.value(extra[0]))
        elif kind == "zero_":
            x.zero_()
        elif kind == "clamp_":
            x.clamp_(-0.5, 0.5)
        elif kind == "relu_":
            x.relu_()
        elif kind == "exp_":
            x.exp_()
        elif kind == "index_put_":
            index, source, accumulate = extra
            values = self.value(source) if isinstance(source, Ref) else self.constant(source, x)
            x.index_put_((self.lib.tensor(index),), values, accumulate=accumulate)
        else:
            mask, value = extra
            x.masked_fill_(self.lib.tensor(mask), self.value(value))
        return []

    def detach(self, target):
        return [self.value(target).detach()]

    def detach_(self, target):
        self.value(target).detach_()
        return []

    def requires_grad_(self, target):
        self.value(target).requires_grad_()
        return []

    def requires_grad_false(self, target):
        self.value(target).requires_grad_(False)
        return []

    def retain_grad(self, target):
        self.value(target).retain_grad()
        return []

    def hook(self, kind, target, hook_id):
        x, log = self.value(target), self.log
        if kind in ("tensor_none", "tensor_scale"):
            def tensor_hook(grad):
                log.append((hook_id, _array(grad)))
                return grad * 2 if kind == "tensor_scale" else None
            handle = x.register_hook(tensor_hook)
        elif kind == "post_accumulate":
            def post_hook(tensor):
                log.append((hook_id, _array(tensor.grad)))
            handle = x.register_post_accumulate_grad_hook(post_hook)
        elif kind == "node_hook":
            def node_hook(grad_inputs, grad_outputs):
                log.append((hook_id, [_array(g) for g in grad_inputs], [_array(g) for g in grad_outputs]))
            handle = x.grad_fn.register_hook(node_hook)
        else:
            def node_prehook(grad_outputs):
                log.append((hook_id, [_array(g) for g in grad_outputs]))
            handle = x.grad_fn.register_prehook(node_prehook)
        self.handles[hook_id] = handle
        return []

    def remove_hook(self, hook_id):
        if hook_id not in self.handles:
            raise _Skip
        self.handles.pop(hook_id).remove()
        return []

    def grad_of(self, target):
        return [self.value(target).grad]

    def set_grad(self, target, kind, array):
        x = self.value(target)
        x.grad = None if kind == "none" else self.constant(array, x)
        return []

    def backward(self, source, gradient, retain_graph, create_graph, inputs):
        y = self.value(source)
        gradient = None if gradient is None else self.constant(gradient, y)
        inputs = None if inputs is None else [self.value(r) for r in inputs]
        y.backward(gradient, retain_graph=retain_graph or None, create_graph=create_graph, inputs=inputs)
        return []

    def grad(self, source, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize, only_inputs):
        y = self.value(source)
        inputs = [self.value(r) for r in inputs]
        options = {"retain_graph": retain_graph or None, "create_graph": create_graph, "allow_unused": allow_unused,
                   "materialize_grads": materialize}
        if only_inputs:
            options["only_inputs"] = True
        if grad_outputs is not None:
            options["grad_outputs"] = [self.constant(grad_outputs, y)]
        return list(self.lib.autograd.grad([y], inputs, **options))


class _Skip(Exception):
    """A step over a value that is None on this library (a .grad never made): nothing to run."""


def _field(get):
    try:
        return get()
    except Exception as error:  # noqa: BLE001 - which error a read raises is compared
        return f"!{_builtin_class(error).__name__}"


def _grad_fn_name(t):
    return None if t.grad_fn is None else t.grad_fn.name()


def _snapshot(t, created_version):
    """``t``'s state; its ``_version`` counted from the value's creation (a new tensor's own count is
    the kernels' business: torch's out= kernels start some at 1)."""
    if t is None:
        return None
    state = {
        "shape": tuple(t.shape), "dtype": str(t.dtype).split(".")[-1],
        # an empty tensor's strides are arbitrary (torch.tensor of an empty array gives zeros)
        "stride": _field(t.stride) if t.numel() else None,
        "requires_grad": _field(lambda: t.requires_grad), "is_leaf": _field(lambda: t.is_leaf), "grad_fn": _field(lambda: _grad_fn_name(t)),
        "_version": _field(lambda: t._version - created_version), "is_inference": t.is_inference(),
        "retains_grad": _field(lambda: t.retains_grad), "values": _field(lambda: _array(t)),
    }
    if state["is_leaf"] is True or state["retains_grad"] is True:
        grad = t.grad
        state["grad"] = _array(grad)
        state["grad.grad_fn"] = None if grad is None else _field(lambda: _grad_fn_name(grad))
    return state


def _builtin_class(error: BaseException) -> type:
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins":
            return cls
    return Exception


def error_key(error) -> str | None:
    """An error as compared: its builtin class and its message's first clause (lower case), where
    torch's user-facing words are and tensors, versions and hints are not."""
    if error is None:
        return None
    message = str(error).strip().split("\n")[0]
    clause = re.split(r"[:;(]|\. ", message)[0].strip().rstrip(".").lower()
    return f"{_builtin_class(error).__name__}: {clause}"


@dataclasses.dataclass
class Record:
    error: BaseException | None
    warnings: list
    hook_calls: list
    values: list


# torch's warnings given once a process (TORCH_WARN_ONCE): whether a program sees one depends on the
# programs before it (tests/compat/test_s58_fuzzCC.py checks them one by one)
_ONCE_A_PROCESS = ("Using backward() with create_graph=True", "grad and param do not obey the gradient layout")


def run_program(program: Program, lib) -> list[Record]:
    runner = _Runner(lib)
    records = []
    for step in program.steps:
        calls_before = len(runner.log)
        error = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with _mode(lib, step.mode):
                    produced = getattr(runner, step.op)(*step.args)
            except _Skip:
                produced = [None] * step.produces
            except Exception as raised:  # noqa: BLE001 - the error is what is compared
                error, produced = raised, [None] * step.produces
        runner.env.extend(produced)
        runner.created.extend(None if t is None else _field(lambda t=t: t._version) for t in produced)
        warned = sorted({str(w.message).split("\n")[0][:60] for w in caught
                         if not issubclass(w.category, (DeprecationWarning, FutureWarning))
                         and not str(w.message).startswith(_ONCE_A_PROCESS)})
        states = [_snapshot(t, version) for t, version in zip(runner.env, runner.created)]
        records.append(Record(error, warned, runner.log[calls_before:], states))
    return records


def _differs(path: str, mine, theirs) -> str | None:
    if isinstance(theirs, np.ndarray) or isinstance(mine, np.ndarray):
        if not (isinstance(theirs, np.ndarray) and isinstance(mine, np.ndarray)):
            return f"{path}: {_short(mine)} vs torch {_short(theirs)}"
        if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
            return f"{path}: {mine.dtype}{mine.shape} vs torch {theirs.dtype}{theirs.shape}"
        if not np.allclose(mine, theirs, rtol=1e-5, atol=1e-5, equal_nan=True):
            return f"{path}: {mine.ravel()[:4]} vs torch {theirs.ravel()[:4]}"
        return None
    if isinstance(theirs, dict) and isinstance(mine, dict):
        common = next((p for k in theirs if k in mine and (p := _differs(f"{path}.{k}", mine[k], theirs[k]))), None)
        return common or (f"{path}: keys {list(mine)} vs torch {list(theirs)}" if list(mine) != list(theirs) else None)
    if isinstance(theirs, (list, tuple)) and isinstance(mine, (list, tuple)):
        if len(mine) != len(theirs):
            return f"{path}: {len(mine)} items vs torch {len(theirs)}"
        return next((p for i, (m, t) in enumerate(zip(mine, theirs)) if (p := _differs(f"{path}[{i}]", m, t))), None)
    if mine != theirs:
        return f"{path}: {mine!r} vs torch {theirs!r}"
    return None


def first_difference(program: Program, ours: list[Record], theirs: list[Record]) -> str | None:
    """How chainrule's run of ``program`` first differs from torch's, or None."""
    for index, (mine, their) in enumerate(zip(ours, theirs)):
        where = f"step {index} {program.steps[index]!r}"
        if error_key(mine.error) != error_key(their.error):
            if their.error is None:
                return f"{where}: raises: chainrule raised {error_key(mine.error)} ({str(mine.error)[:150]})"
            if mine.error is None:
                return f"{where}: raises: torch raised {error_key(their.error)}, chainrule did not"
            if _builtin_class(mine.error) is not _builtin_class(their.error):
                return f"{where}: raises: {error_key(mine.error)} vs torch {error_key(their.error)}"
            return f"{where}: message: {str(mine.error)[:150]!r} vs torch {str(their.error)[:150]!r}"
        problem = (_differs("warnings", mine.warnings, their.warnings)
                   or _differs("hooks", mine.hook_calls, their.hook_calls)
                   or next((f"v{i}{p}" for i, (m, t) in enumerate(zip(mine.values, their.values))
                            if (p := _differs("", m, t))), None))
        if problem:
            return f"{where}: {problem}"
    return None
