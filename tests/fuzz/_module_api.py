"""Random sequences of nn.Module API moves, drawn from a seed and run on torch.nn and on chainrule.nn (the
interpreter of tests/fuzz/test_module_api.py).

A case is plain data (``Case.steps``): moves that refer to modules by their place in a list the run keeps
(``mods``: the root, a custom ``nn.Module``, first; every module a step makes is appended, or None where
it failed, so both libraries' lists stay aligned). The drawer tracks what it asked for (each module's kind,
the names it used) to draw plausible moves, but a move the library refuses is as good a case as one it
takes: the error is compared. A module is only ever put under a module made before it, so no module
contains itself.

The vocabulary: making modules (Linear, Conv1d, BatchNorm1d, Embedding, LayerNorm, ReLU, a custom module
with and without ``extra_repr``, Sequential of modules or of an OrderedDict, ModuleList, ModuleDict,
ParameterList, ParameterDict), registering (attribute assignment of Parameters, Buffers, tensors, modules,
None and ints, ``register_buffer``/``register_parameter``/``add_module``/``register_module``, ``del``),
the containers' own moves (indexing, slicing, append/insert/extend/pop/del/setitem/+/*, ModuleDict and
ParameterDict update/pop/keys), queries (``named_parameters``/``named_buffers``/``named_modules`` with
their prefix/recurse/remove_duplicate/memo, ``children``, ``get_submodule``/``get_parameter``/``get_buffer``,
``state_dict(prefix, keep_vars)``, ``repr``, ``dir``), changes (``load_state_dict`` of a mutated state dict
with strict/assign, ``requires_grad_``, ``zero_grad``, ``train``/``eval``, ``apply``, dtype conversions,
``share_memory``), hooks (forward pre/post with kwargs/prepend/always_call, full backward hooks, the
state-dict hooks; removed by their handles), ``parameters_to_vector``/``vector_to_parameters``, a forward
and backward, and ``copy.deepcopy``.

``run_case`` records, for each step, its result (normalized: tensors as shape, dtype, requires_grad and
values; modules as their class and children's names; errors as their builtin class and message, library
names and addresses taken out), the hooks called during it, the warnings, and a snapshot of the module it
touched (its parameters', buffers' and submodules' names, shapes, dtypes, requires_grad, grads and training
flags). ``first_difference`` names the first step where two records differ.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import operator
import random
import re
import warnings

import numpy as np

LEAVES = ["Linear", "Linear", "Conv1d", "BatchNorm1d", "Embedding", "LayerNorm", "ReLU"]
CONTAINERS = ["Sequential", "SequentialDict", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]
CUSTOM = ["Custom", "CustomRepr", "Boom"]
NAMES = ["w", "b", "sub", "buf", "stat", "head", "0", "1", "weight", "bias", "x", "training", "a.b", "", "forward"]
COMMON_NAMES = NAMES[:11]
DTYPES = ["float32", "float64", "float16", "int64", "bool"]

FAMILIES = {
    # family -> weights of move groups
    "build": {"make": 3, "register": 6, "query": 3, "container": 1, "change": 1, "hooks": 0, "state": 1},
    "containers": {"make": 2, "register": 1, "query": 2, "container": 7, "change": 1, "hooks": 0, "state": 1},
    "state": {"make": 2, "register": 2, "query": 1, "container": 1, "change": 1, "hooks": 1, "state": 6},
    "hooks": {"make": 2, "register": 1, "query": 1, "container": 1, "change": 2, "hooks": 6, "state": 1},
    "changes": {"make": 2, "register": 2, "query": 2, "container": 1, "change": 6, "hooks": 1, "state": 2},
    "mixed": {"make": 2, "register": 3, "query": 3, "container": 3, "change": 3, "hooks": 2, "state": 3},
}


@dataclasses.dataclass
class Case:
    family: str
    seed: int
    steps: list

    def __repr__(self):
        return f"{self.family}#{self.seed}: " + "; ".join(_step_text(s) for s in self.steps)


def _step_text(step) -> str:
    return f"{step[0]}{step[1:]!r}"


# ---------------------------------------------------------------- drawing
class _Drawer:
    def __init__(self, family: str, seed: int):
        self.family = family
        self.rng = random.Random(f"module_api:{family}:{seed}")
        self.kinds = ["Custom"]  # the kind of each module of ``mods``, as asked for
        self.names: list[list[str]] = [[]]  # names registered on each module (asked for)
        self.steps: list = []
        self.handles = 0

    def pick(self, kinds=None):
        places = [i for i, k in enumerate(self.kinds) if kinds is None or k in kinds]
        return self.rng.choice(places) if places else None

    def later(self, i):
        """A module made after ``i`` (so attaching it keeps the tree free of cycles), or None."""
        places = [j for j in range(i + 1, len(self.kinds)) if self.kinds[j] is not None]
        return self.rng.choice(places) if places and self.rng.random() < 0.8 else None

    def name(self, i=None):
        used = self.names[i] if i is not None else []
        if used and self.rng.random() < 0.4:
            return self.rng.choice(used)
        return self.rng.choice(COMMON_NAMES if self.rng.random() < 0.85 else NAMES)

    def path(self):
        parts = [self.rng.choice(sum(self.names, []) or COMMON_NAMES) for _ in range(self.rng.choice([1, 1, 2, 2, 3]))]
        return ".".join(parts) if self.rng.random() < 0.95 else ""

    def leaf(self):
        return ("leaf", self.rng.choice(LEAVES + ["Custom", "Boom"]), self.rng.randrange(1000))

    def param(self):
        shape = self.rng.choice([(3,), (2, 3), (), (3, 3), (0,)])
        return ("param", shape, self.rng.randrange(1000), self.rng.random() < 0.85,
                self.rng.choice(["float32"] * 4 + ["float64"]))

    def tensor(self):
        return ("tensor", self.rng.choice([(3,), (2, 3), (), (3, 3)]), self.rng.randrange(1000),
                self.rng.choice(DTYPES))

    def value(self, i):
        r = self.rng.random()
        if r < 0.3:
            return self.param()
        if r < 0.5:
            return self.tensor()
        if r < 0.6:
            return ("buffer", self.tensor(), self.rng.random() < 0.7)
        if r < 0.8:
            j = self.later(i)
            return ("module", j) if j is not None else self.leaf()
        if r < 0.86:
            return ("none",)
        if r < 0.93:
            return ("shared", self.pick())
        return ("int", 3)

    def add(self, *step, makes=None):
        self.steps.append(step)
        if makes is not None:
            self.kinds.append(makes)
            self.names.append([])

    # ----- groups of moves
    def make(self):
        kind = self.rng.choice(LEAVES + CONTAINERS + CONTAINERS + CUSTOM)
        count = self.rng.choice([0, 1, 2, 3])
        self.add("new", kind, count, self.rng.randrange(1000), makes=kind)

    def register(self):
        i = self.pick(CUSTOM + LEAVES + ["Sequential", "ModuleList", "ModuleDict"]) or 0
        move = self.rng.choice(["setattr"] * 5 + ["register_buffer"] * 2 + ["register_parameter"] * 2
                               + ["add_module", "register_module", "delattr", "delattr"])
        name = self.name(i)
        if move == "setattr":
            self.add("setattr", i, name, self.value(i))
        elif move == "register_buffer":
            value = self.tensor() if self.rng.random() < 0.8 else self.rng.choice([("none",), self.param(), ("int", 3)])
            self.add("register_buffer", i, self.rng.choice([name] * 12 + [3]), value,
                     self.rng.choice([True, True, False, None]))
        elif move == "register_parameter":
            value = self.param() if self.rng.random() < 0.7 else self.rng.choice([("none",), self.tensor(),
                                                                                  ("shared", self.pick())])
            self.add("register_parameter", i, self.rng.choice([name] * 12 + [3, None]), value)
        elif move in ("add_module", "register_module"):
            j = self.later(i)
            value = ("module", j) if j is not None else self.rng.choice([self.leaf(), ("none",), self.tensor()])
            if self.rng.random() < 0.05:
                name = 3  # not a string
            self.add(move, i, name, value)
        else:
            self.add("delattr", i, name)
        if isinstance(name, str):
            self.names[i].append(name)

    def container(self):
        i = self.pick(["Sequential", "SequentialDict", "ModuleList"])
        d = self.pick(["ModuleDict"])
        p = self.pick(["ParameterList"])
        q = self.pick(["ParameterDict"])
        choices = [c for c, ok in (("list", i), ("mdict", d), ("plist", p), ("pdict", q)) if ok is not None]
        if not choices:
            return self.make()
        choice = self.rng.choice(choices)
        index = self.rng.choice([0, 1, -1, 2, -2, 3, 5, -5])
        if choice == "list":
            move = self.rng.choice(["index", "slice", "append", "insert", "extend", "pop", "del", "del_slice",
                                    "add", "iadd", "mul", "len", "setitem", "names"])
            j = self.later(i)
            other = ("module", j) if j is not None else self.leaf()
            if move == "slice":
                self.add("list_slice", i, self.rng.choice([None, 0, 1, -1]), self.rng.choice([None, 1, 2, -1]),
                         self.rng.choice([None, None, 2, -1]), makes="Sequential" if self.kinds[i] != "ModuleList"
                         else "ModuleList")
            elif move in ("add", "mul"):
                k = self.pick(["Sequential", "SequentialDict", "ModuleList"]) if move == "add" else None
                arg = ("module", k) if move == "add" and k is not None and k > i else ("int", self.rng.choice([2, 0, -1]))
                self.add(f"list_{move}", i, arg, makes=self.kinds[i])
            elif move == "extend":
                self.add("list_extend", i, [other] + [self.leaf() for _ in range(self.rng.choice([0, 1]))])
            elif move == "iadd":
                self.add("list_iadd", i, [self.leaf()], self.rng.random() < 0.5)
            else:
                self.add(f"list_{move}", i, index, other)
        elif choice == "mdict":
            move = self.rng.choice(["set", "update", "update_pairs", "pop", "del", "keys", "contains", "clear",
                                    "getitem", "items"])
            j = self.later(d)
            other = ("module", j) if j is not None else self.leaf()
            key = self.rng.choice(["a", "b", "c", "0", "a.b", "", "training"] + self.names[d])
            pairs = [(self.rng.choice(["a", "b", "c", "d"]), self.leaf()) for _ in range(self.rng.choice([1, 2]))]
            self.add(f"mdict_{move}", d, key, other, pairs)
            self.names[d].append(key)
        elif choice == "plist":
            move = self.rng.choice(["append", "extend", "index", "setitem", "len", "append_tensor", "iadd", "repr",
                                    "slice", "dir"])
            self.add(f"plist_{move}", p, index, self.param(), self.tensor())
        else:
            move = self.rng.choice(["set", "set_tensor", "update", "pop", "get", "keys", "del", "contains",
                                    "setdefault", "fromkeys", "or", "ior", "copy", "popitem", "clear", "reversed",
                                    "repr"])
            key = self.rng.choice(["a", "b", "c", "0", "a.b"] + self.names[q])
            self.add(f"pdict_{move}", q, key, self.param(), self.tensor())
            self.names[q].append(key)

    def query(self):
        i = self.pick()
        move = self.rng.choice(["named_parameters", "named_buffers", "named_modules", "children", "get_submodule",
                                "get_parameter", "get_buffer", "state_dict", "repr", "dir", "parameters",
                                "named_modules_memo", "extra_repr", "set_submodule", "state_dict_positional"])
        prefix = self.rng.choice(["", "", "p", "m."])
        recurse = self.rng.random() < 0.8
        dedupe = self.rng.random() < 0.75
        if move.startswith("get_"):
            self.add(move, i, self.path())
        elif move == "set_submodule":
            # a fresh module: an existing one could land under itself
            self.add(move, i, self.path(), self.leaf(), self.rng.random() < 0.4)
        elif move == "named_modules_memo":
            self.add(move, i, self.later(i), prefix)
        else:
            self.add(move, i, prefix, recurse, dedupe)

    def change(self):
        i = self.pick()
        move = self.rng.choice(["requires_grad_", "zero_grad", "train", "eval", "apply", "to", "convert", "type",
                                "share_memory", "forward", "forward", "deepcopy", "to_vector", "from_vector"])
        if move == "deepcopy":
            self.add("deepcopy", i, makes=self.kinds[i])
        elif move == "forward":
            self.add("forward", i, self.rng.random() < 0.7)
        else:
            self.add(move, i, self.rng.choice([True, False, True, False, "yes", 0]),
                     self.rng.choice(["float64", "float16", "float32", "int64", "bfloat16"]))

    def hooks(self):
        i = self.pick()
        move = self.rng.choice(["forward_pre", "forward_pre", "forward", "forward", "backward", "remove",
                                "forward_run", "forward_run", "state_dict_pre", "state_dict_post", "load_pre",
                                "load_pre_public", "load_post"])
        if move == "remove":
            self.add("remove_hook", self.rng.randrange(self.handles) if self.handles else 0)
            return
        if move == "forward_run":
            self.add("forward", i, self.rng.random() < 0.7)
            return
        self.handles += 1
        self.add(f"hook_{move}", i, self.rng.choice(["log", "log", "change", "single"]), self.rng.random() < 0.4,
                 self.rng.random() < 0.3, self.rng.random() < 0.3)

    def state(self):
        i = self.pick()
        move = self.rng.choice(["load", "load", "load", "load_other", "values", "state_dict"])
        if move == "state_dict":
            self.add("state_dict", i, self.rng.choice(["", "p."]), self.rng.random() < 0.3, True)
            return
        if move == "values":
            self.add("values", i)
            return
        source = i if move == "load" else self.pick()
        mutations = [(self.rng.choice(["drop", "extra", "reshape", "retype", "ones", "param", "none_value"]),
                      self.rng.randrange(8)) for _ in range(self.rng.choice([0, 1, 1, 2, 3]))]
        self.add("load_state_dict", i, source, mutations, self.rng.random() < 0.6, self.rng.random() < 0.25)


def draw_case(family: str, seed: int) -> Case:
    drawer = _Drawer(family, seed)
    weights = FAMILIES[family]
    groups = [g for g in weights for _ in range(weights[g])]
    for _ in range(drawer.rng.choice([1, 2, 3])):
        drawer.make()
        drawer.add("setattr", 0, drawer.rng.choice(["sub", "head", "0", "x"]), ("module", len(drawer.kinds) - 1))
        drawer.names[0].append(drawer.steps[-1][2])
    for _ in range(drawer.rng.randrange(6, 16)):
        getattr(drawer, drawer.rng.choice(groups))()
    drawer.add("values", 0)
    drawer.add("state_dict", 0, "", False, True)
    drawer.add("repr", 0, "", True, True)
    return Case(family, seed, drawer.steps)


# ---------------------------------------------------------------- running
def _library_free(text: str) -> str:
    text = re.sub(r"\b(torch|chainrule)\b", "LIB", text)
    return re.sub(r"0x[0-9a-fA-F]+", "0x?", text)


def _builtin_class(error: BaseException) -> str:
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins":
            return cls.__name__
    return type(error).__name__


def error_key(error: BaseException) -> str:
    """The error's builtin class and its message (library names and addresses out; a KeyError's quotes
    kept, as str() gives them)."""
    message = _library_free(str(error).strip())
    return f"{_builtin_class(error)}: {message[:400]}"


class _Run:
    def __init__(self, case: Case, lib):
        self.case = case
        self.lib = lib
        self.nn = lib.nn
        self.mods: list = [self._custom_class(False)()]
        self.handles: list = []
        self.log: list = []
        self.record: list = []
        self._before = 1

    # ----- making values
    def _custom_class(self, with_repr: bool):
        nn = self.nn

        class Custom(nn.Module):
            def forward(self, x):
                for child in self.children():
                    x = child(x)
                return x

        class CustomRepr(Custom):
            def extra_repr(self):
                return "k=1, name='custom'"

        class Boom(Custom):
            def forward(self, x):
                raise ValueError("boom")

        return {False: Custom, True: CustomRepr, "Boom": Boom}[with_repr]

    def tensor(self, shape, vseed, dtype):
        values = np.random.default_rng(vseed).standard_normal(shape).astype(np.float32)
        t = self.lib.tensor(values)
        if dtype == "bool":
            return t > 0
        return t.to(getattr(self.lib, dtype))

    def param(self, spec):
        _, shape, vseed, requires_grad, dtype = spec
        return self.nn.Parameter(self.tensor(shape, vseed, dtype), requires_grad=requires_grad)

    def leaf(self, kind, vseed):
        nn = self.nn
        rng = random.Random(vseed)
        if kind == "Linear":
            module = nn.Linear(3, 3, bias=rng.random() < 0.8)
        elif kind == "Conv1d":
            module = nn.Conv1d(3, 3, 1, bias=rng.random() < 0.7)
        elif kind == "BatchNorm1d":
            module = nn.BatchNorm1d(3, affine=rng.random() < 0.8, track_running_stats=rng.random() < 0.8)
        elif kind == "Embedding":
            module = nn.Embedding(5, 3)
        elif kind == "LayerNorm":
            module = nn.LayerNorm(3, elementwise_affine=rng.random() < 0.8)
        elif kind == "ReLU":
            module = nn.ReLU()
        else:
            module = self._custom_class("Boom" if kind == "Boom" else kind == "CustomRepr")()
        self._fill(module, vseed)
        return module

    def _fill(self, module, vseed):
        """Same values on both libraries, whatever their initializers drew."""
        with self.lib.no_grad():
            for k, p in enumerate(module.parameters()):
                if p.dtype.is_floating_point:
                    p.copy_(self.tensor(tuple(p.shape), vseed + k, "float32"))

    def new(self, kind, count, vseed):
        nn = self.nn
        leaves = [self.leaf(random.Random(vseed + k).choice(["Linear", "ReLU", "LayerNorm", "BatchNorm1d", "Conv1d"]),
                            vseed + k) for k in range(count)]
        if kind == "Sequential":
            return nn.Sequential(*leaves)
        if kind == "SequentialDict":
            return nn.Sequential(collections.OrderedDict((f"l{k}", m) for k, m in enumerate(leaves)))
        if kind == "ModuleList":
            return nn.ModuleList(leaves)
        if kind == "ModuleDict":
            return nn.ModuleDict({f"m{k}": m for k, m in enumerate(leaves)})
        if kind == "ParameterList":
            return nn.ParameterList([self.param(("param", (3,), vseed + k, True, "float32")) for k in range(count)])
        if kind == "ParameterDict":
            return nn.ParameterDict({f"p{k}": self.param(("param", (2,), vseed + k, True, "float32"))
                                     for k in range(count)})
        return self.leaf(kind, vseed)

    def value(self, spec):
        kind = spec[0]
        if kind == "param":
            return self.param(spec)
        if kind == "tensor":
            return self.tensor(*spec[1:])
        if kind == "buffer":
            return self.nn.Buffer(self.value(spec[1]), persistent=spec[2])
        if kind == "module":
            return self.mods[spec[1]]
        if kind == "leaf":
            return self.leaf(spec[1], spec[2])
        if kind == "none":
            return None
        if kind == "shared":  # a parameter another module holds (tied weights)
            holder = self.mods[spec[1]]
            return None if holder is None else next(iter(holder.parameters()), None)
        return spec[1]

    # ----- normalizing what we see
    def see(self, value, depth=0):
        lib = self.lib
        if depth > 4:
            return "..."
        if isinstance(value, lib.Tensor):
            kind = "Parameter" if isinstance(value, self.nn.Parameter) else "Tensor"
            data = value.detach()
            if data.dtype == lib.bfloat16:
                data = data.float()
            return (kind, tuple(value.shape), str(value.dtype).split(".")[-1], value.requires_grad,
                    data.numpy().copy())
        if isinstance(value, self.nn.Module):
            return ("Module", type(value).__name__, tuple(name for name, _ in value.named_children()))
        if isinstance(value, tuple) and type(value).__name__ == "IncompatibleKeys":
            return ("IncompatibleKeys", _library_free(repr(value)))
        if isinstance(value, dict):
            return (type(value).__name__, tuple((k, self.see(v, depth + 1)) for k, v in value.items()))
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, tuple(self.see(v, depth + 1) for v in value))
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        if hasattr(value, "__iter__") and not isinstance(value, (bytes, str)):
            return ("iter", tuple(self.see(v, depth + 1) for v in value))
        return ("object", _library_free(type(value).__qualname__))

    def meta(self, t):
        if t is None:
            return None
        return (tuple(t.shape), str(t.dtype).split(".")[-1], t.requires_grad,
                None if t.grad is None else tuple(t.grad.shape))

    def snapshot(self, module):
        if not isinstance(module, self.nn.Module):
            return None
        try:
            return (tuple((n, self.meta(p)) for n, p in module.named_parameters()),
                    tuple((n, self.meta(b)) for n, b in module.named_buffers()),
                    tuple((n, type(m).__name__, self.see(m.training)) for n, m in module.named_modules()),
                    tuple(module.state_dict()))
        except Exception as error:  # noqa: BLE001 - a refusal is part of what we compare
            return ("snapshot raises", error_key(error))

    # ----- running
    def run(self):
        for step in self.case.steps:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    outcome = ("ok", self.see(self.do(step)))
                except Exception as error:  # noqa: BLE001 - the error is what we compare
                    outcome = ("raises", error_key(error))
            if step[0] in MAKERS and len(self.mods) == self._before:
                self.mods.append(None)
            touched = self.mods[step[1]] if len(step) > 1 and isinstance(step[1], int) and step[0] != "remove_hook" \
                and step[1] < len(self.mods) else None
            hooks, self.log = self.log, []
            notes = tuple(sorted({_library_free(str(w.message))[:200] for w in caught}))
            self.record.append((_step_text(step), outcome, tuple(hooks), notes, self.snapshot(touched)))
        return self.record

    def do(self, step):
        op, *args = step
        self._before = len(self.mods)
        if op == "new":
            self.mods.append(self.new(*args))
            return self.mods[-1]
        if op == "remove_hook":
            if args[0] < len(self.handles) and self.handles[args[0]] is not None:
                self.handles[args[0]].remove()
            return None
        m = self.mods[args[0]]
        if m is None:
            return "skipped: no module"
        handler = getattr(self, "op_" + op, None)
        if handler is not None:
            return handler(m, *args[1:])
        if op.startswith("hook_"):
            return self.hook(m, op[5:], *args[1:])
        raise AssertionError(f"unknown move {op}")

    # registering
    def op_setattr(self, m, name, spec):
        setattr(m, name, self.value(spec))
        return getattr(m, name, "<not readable>")

    def op_register_buffer(self, m, name, spec, persistent):
        if persistent is None:
            return m.register_buffer(name, self.value(spec))
        return m.register_buffer(name, self.value(spec), persistent=persistent)

    def op_register_parameter(self, m, name, spec):
        return m.register_parameter(name, self.value(spec))

    def op_add_module(self, m, name, spec):
        return m.add_module(name, self.value(spec))

    def op_register_module(self, m, name, spec):
        return m.register_module(name, self.value(spec))

    def op_delattr(self, m, name):
        delattr(m, name)
        return hasattr(m, name)

    # containers
    def _appended(self, result):
        self.mods.append(result if isinstance(result, self.nn.Module) else None)
        return result

    def op_list_index(self, m, index, other):
        return m[index]

    def op_list_slice(self, m, start, stop, step):
        return self._appended(m[start:stop:step])

    def op_list_append(self, m, index, other):
        return m.append(self.value(other))

    def op_list_insert(self, m, index, other):
        return m.insert(index, self.value(other))

    def op_list_extend(self, m, others):
        return m.extend([self.value(o) for o in others])

    def op_list_pop(self, m, index, other):
        return m.pop(index)

    def op_list_del(self, m, index, other):
        del m[index]
        return len(m)

    def op_list_del_slice(self, m, index, other):
        del m[index:]
        return len(m)

    def op_list_add(self, m, arg):
        return self._appended(m + self.value(arg))

    def op_list_mul(self, m, arg):
        return self._appended(m * self.value(arg))

    def op_list_iadd(self, m, others, as_sequential):
        values = [self.value(o) for o in others]
        result = operator.iadd(m, self.nn.Sequential(*values) if as_sequential else values)
        return (result is m, len(m))

    def op_list_len(self, m, index, other):
        return len(m)

    def op_list_setitem(self, m, index, other):
        m[index] = self.value(other)
        return [type(c).__name__ for c in m]

    def op_list_names(self, m, index, other):
        return [name for name, _ in m.named_children()]

    def op_mdict_set(self, m, key, other, pairs):
        m[key] = self.value(other)
        return list(m.keys())

    def op_mdict_update(self, m, key, other, pairs):
        m.update({k: self.value(v) for k, v in pairs})
        return list(m.keys())

    def op_mdict_update_pairs(self, m, key, other, pairs):
        m.update([(k, self.value(v)) for k, v in pairs])
        return list(m.keys())

    def op_mdict_pop(self, m, key, other, pairs):
        return (m.pop(key), list(m.keys()))

    def op_mdict_del(self, m, key, other, pairs):
        del m[key]
        return list(m.keys())

    def op_mdict_keys(self, m, key, other, pairs):
        return (list(m.keys()), [type(v).__name__ for v in m.values()], [k for k, _ in m.items()], len(m))

    def op_mdict_contains(self, m, key, other, pairs):
        return key in m

    def op_mdict_clear(self, m, key, other, pairs):
        m.clear()
        return len(m)

    def op_mdict_getitem(self, m, key, other, pairs):
        return m[key]

    def op_mdict_items(self, m, key, other, pairs):
        return list(m.items())

    def op_plist_append(self, m, index, param, tensor):
        return m.append(self.value(param))

    def op_plist_append_tensor(self, m, index, param, tensor):
        m.append(self.value(tensor))
        return m[-1]

    def op_plist_extend(self, m, index, param, tensor):
        return m.extend([self.value(param), self.value(tensor)])

    def op_plist_iadd(self, m, index, param, tensor):
        m += [self.value(param)]
        return len(m)

    def op_plist_index(self, m, index, param, tensor):
        return m[index]

    def op_plist_setitem(self, m, index, param, tensor):
        m[index] = self.value(param)
        return m[index]

    def op_plist_len(self, m, index, param, tensor):
        return (len(m), repr(m).count("Parameter"))

    def op_pdict_set(self, m, key, param, tensor):
        m[key] = self.value(param)
        return m[key]

    def op_pdict_set_tensor(self, m, key, param, tensor):
        m[key] = self.value(tensor)
        return m[key]

    def op_pdict_update(self, m, key, param, tensor):
        m.update({key: self.value(param), "z": self.value(tensor)})
        return list(m.keys())

    def op_pdict_pop(self, m, key, param, tensor):
        return (m.pop(key), list(m.keys()))

    def op_pdict_get(self, m, key, param, tensor):
        return m.get(key, "default")

    def op_pdict_keys(self, m, key, param, tensor):
        return (list(m.keys()), list(m.values()), len(m))

    def op_pdict_del(self, m, key, param, tensor):
        del m[key]
        return list(m.keys())

    def op_pdict_contains(self, m, key, param, tensor):
        return key in m

    def op_pdict_setdefault(self, m, key, param, tensor):
        return m.setdefault(key, self.value(param))

    def op_pdict_or(self, m, key, param, tensor):
        other = self.nn.ParameterDict({key: self.value(param)})
        return (list((m | other).keys()), list((other | m).keys()), list(m.keys()))

    def op_pdict_ior(self, m, key, param, tensor):
        result = operator.ior(m, self.nn.ParameterDict({key: self.value(param)}))
        return (result is m, list(m.keys()))

    def op_pdict_copy(self, m, key, param, tensor):
        twin = m.copy()
        return (type(twin).__name__, list(twin.keys()), all(twin[k] is m[k] for k in twin.keys()))

    def op_pdict_popitem(self, m, key, param, tensor):
        return (m.popitem(), list(m.keys()))

    def op_pdict_clear(self, m, key, param, tensor):
        m.clear()
        return (len(m), list(m._parameters))

    def op_pdict_reversed(self, m, key, param, tensor):
        return list(reversed(m))

    def op_pdict_repr(self, m, key, param, tensor):
        return _library_free(repr(m))

    def op_plist_repr(self, m, index, param, tensor):
        return _library_free(repr(m))

    def op_plist_slice(self, m, index, param, tensor):
        part = m[index:]
        return (type(part).__name__, list(part))

    def op_plist_dir(self, m, index, param, tensor):
        names = dir(m)
        return [str(k) in names for k in range(-1, 4)]

    def op_pdict_fromkeys(self, m, key, param, tensor):
        made = m.fromkeys([key, "q"], self.value(param))
        return (type(made).__name__, list(made.keys()))

    # queries
    def op_named_parameters(self, m, prefix, recurse, dedupe):
        return list(m.named_parameters(prefix=prefix, recurse=recurse, remove_duplicate=dedupe))

    def op_named_buffers(self, m, prefix, recurse, dedupe):
        return list(m.named_buffers(prefix=prefix, recurse=recurse, remove_duplicate=dedupe))

    def op_named_modules(self, m, prefix, recurse, dedupe):
        return [(n, type(c).__name__) for n, c in m.named_modules(prefix=prefix, remove_duplicate=dedupe)]

    def op_named_modules_memo(self, m, j, prefix):
        memo = set() if j is None or self.mods[j] is None else {self.mods[j]}
        return [(n, type(c).__name__) for n, c in m.named_modules(memo, prefix)]

    def op_children(self, m, prefix, recurse, dedupe):
        return ([type(c).__name__ for c in m.children()], [n for n, _ in m.named_children()])

    def op_parameters(self, m, prefix, recurse, dedupe):
        return (len(list(m.parameters(recurse))), len(list(m.buffers(recurse))), len(list(m.modules())))

    def op_set_submodule(self, m, path, spec, strict):
        m.set_submodule(path, self.value(spec), strict=strict) if strict else m.set_submodule(path, self.value(spec))
        return [(n, type(c).__name__) for n, c in m.named_modules()]

    def op_state_dict_positional(self, m, prefix, recurse, dedupe):
        return list(m.state_dict(None, prefix or "q.", recurse))

    def op_get_submodule(self, m, path):
        return m.get_submodule(path)

    def op_get_parameter(self, m, path):
        return m.get_parameter(path)

    def op_get_buffer(self, m, path):
        return m.get_buffer(path)

    def op_state_dict(self, m, prefix, keep_vars, dedupe):
        state = m.state_dict(prefix=prefix, keep_vars=keep_vars)
        return (type(state).__name__, [(k, type(v).__name__ if keep_vars else None, self.see(v))
                                       for k, v in state.items()])

    def op_repr(self, m, prefix, recurse, dedupe):
        return _library_free(repr(m))

    def op_extra_repr(self, m, prefix, recurse, dedupe):
        return _library_free(m.extra_repr())

    def op_dir(self, m, prefix, recurse, dedupe):
        names = dir(m)
        return [n in names for n in NAMES + ["l0", "m0", "p0", "a", "b", "c"]]

    def op_values(self, m):
        return [(k, self.see(v)) for k, v in m.state_dict().items()]

    # changes
    def op_requires_grad_(self, m, flag, dtype):
        return m.requires_grad_(flag) is m

    def op_zero_grad(self, m, flag, dtype):
        m.zero_grad(set_to_none=flag)
        return [(n, None if p.grad is None else self.see(p.grad)) for n, p in m.named_parameters()]

    def op_train(self, m, flag, dtype):
        return m.train(flag) is m

    def op_eval(self, m, flag, dtype):
        return m.eval() is m

    def op_apply(self, m, flag, dtype):
        seen = []

        def visit(module):
            seen.append(type(module).__name__)
            if flag and isinstance(module, self.nn.Linear):
                with self.lib.no_grad():
                    module.weight.fill_(0.5)

        return (m.apply(visit) is m, seen)

    def op_to(self, m, flag, dtype):
        return m.to(getattr(self.lib, dtype)) is m

    def op_convert(self, m, flag, dtype):
        method = {"float64": "double", "float16": "half", "float32": "float", "bfloat16": "bfloat16"}.get(dtype, "double")
        return getattr(m, method)() is m

    def op_type(self, m, flag, dtype):
        return m.type(getattr(self.lib, dtype)) is m

    def op_share_memory(self, m, flag, dtype):
        return m.share_memory() is m

    def op_deepcopy(self, m):
        twin = copy.deepcopy(m)
        self.mods.append(twin)
        original = {id(p) for p in m.parameters()}
        return (sum(id(p) in original for p in twin.parameters()), self.snapshot(twin))

    def op_to_vector(self, m, flag, dtype):
        return self.nn.utils.parameters_to_vector(m.parameters())

    def op_from_vector(self, m, flag, dtype):
        count = sum(p.numel() for p in m.parameters())
        vector = self.lib.arange(count, dtype=self.lib.float32) / max(count, 1)
        self.nn.utils.vector_to_parameters(vector, m.parameters())
        return [self.see(p) for p in m.parameters()]

    def op_forward(self, m, backward):
        lib = self.lib
        if isinstance(m, self.nn.Embedding):
            x = lib.tensor([[0, 1, 2], [3, 4, 0], [1, 1, 2]])
        else:
            x = self.tensor((3, 3), 7, "float32").requires_grad_(backward)
        out = m(x)
        if backward and isinstance(out, lib.Tensor) and out.requires_grad:
            out.float().sum().backward()
            return (self.see(out), self.see(x.grad))
        return self.see(out)

    # hooks
    def hook(self, m, kind, style, with_kwargs, prepend, always_call):
        log = self.log
        name = f"h{len(self.handles)}"
        see = self.see

        def pre(module, args, kwargs=None):
            log.append((name, "pre", type(module).__name__, see(args)))
            if style == "change":
                changed = tuple(a * 2 if isinstance(a, self.lib.Tensor) and a.is_floating_point() else a for a in args)
                return (changed, kwargs) if with_kwargs else changed
            if style == "single" and args and isinstance(args[0], self.lib.Tensor):
                return args[0] + 1  # not a tuple: torch wraps it (or, with kwargs, refuses it)
            return None

        def post(module, args, *rest):
            log.append((name, "post", type(module).__name__, see(args), see(rest[-1])))
            out = rest[-1]
            if style == "change" and isinstance(out, self.lib.Tensor):
                return out + 1
            return None

        def backward(module, grad_input, grad_output):
            log.append((name, "backward", type(module).__name__, see(grad_input), see(grad_output)))
            if style == "change":
                return tuple(None if g is None else g * 2 for g in grad_input)
            if style == "single":
                return grad_input[:1] + grad_input  # one too many: torch refuses it
            return None

        def state_dict_pre(module, prefix, keep_vars):
            log.append((name, "state_dict_pre", type(module).__name__, prefix, keep_vars))

        def state_dict_post(module, state_dict, prefix, local_metadata):
            log.append((name, "state_dict_post", type(module).__name__, prefix, list(state_dict)))
            if style == "change":
                state_dict[prefix + "hooked"] = self.lib.ones(1)

        def load_pre(*args):
            state_dict, prefix = (args[1], args[2]) if with_kwargs else (args[0], args[1])
            log.append((name, "load_pre", prefix, sorted(state_dict)))

        def load_pre_public(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
            log.append((name, "load_pre_public", type(module).__name__, prefix, strict))

        def load_post(module, incompatible):
            log.append((name, "load_post", type(module).__name__, list(incompatible.missing_keys),
                        list(incompatible.unexpected_keys)))
            if style == "change":
                incompatible.missing_keys.clear()

        if kind == "forward_pre":
            handle = m.register_forward_pre_hook(pre, prepend=prepend, with_kwargs=with_kwargs)
        elif kind == "forward":
            handle = m.register_forward_hook(post, prepend=prepend, with_kwargs=with_kwargs, always_call=always_call)
        elif kind == "backward":
            handle = m.register_full_backward_hook(backward, prepend=prepend)
        elif kind == "state_dict_pre":
            handle = m.register_state_dict_pre_hook(state_dict_pre)
        elif kind == "state_dict_post":
            handle = m.register_state_dict_post_hook(state_dict_post)
        elif kind == "load_pre":
            handle = m._register_load_state_dict_pre_hook(load_pre, with_module=with_kwargs)
        elif kind == "load_pre_public":
            handle = m.register_load_state_dict_pre_hook(load_pre_public)
        else:
            handle = m.register_load_state_dict_post_hook(load_post)
        self.handles.append(handle)
        return type(handle).__name__

    # state
    def op_load_state_dict(self, m, source, mutations, strict, assign):
        lib = self.lib
        src = self.mods[source]
        state = (src if src is not None else m).state_dict()
        for what, position in mutations:
            keys = list(state)
            key = keys[position % len(keys)] if keys else None
            if what == "extra":
                state[f"extra{position}.weight" if position % 2 else f"stray{position}"] = lib.ones(2)
            elif key is None:
                continue
            elif what == "drop":
                del state[key]
            elif what == "reshape":
                state[key] = lib.zeros(tuple(state[key].shape) + (2,))
            elif what == "retype":
                state[key] = state[key].double()
            elif what == "ones":
                state[key] = lib.ones_like(state[key])
            elif what == "param":
                state[key] = self.nn.Parameter(state[key].detach().clone().float() + 1)
            else:
                state[key] = None
        result = m.load_state_dict(state, strict=strict, assign=assign)
        return (result, [(k, self.see(v)) for k, v in m.state_dict(keep_vars=True).items()])


MAKERS = {"new", "list_slice", "list_add", "list_mul", "deepcopy"}


def run_case(case: Case, lib) -> list:
    return _Run(case, lib).run()


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.shape != b.shape:
            return False
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            tolerance = 1e-2 if np.float16 in (a.dtype, b.dtype) else 1e-4
            return bool(np.allclose(a.astype(np.float64), b.astype(np.float64), rtol=tolerance, atol=tolerance,
                                    equal_nan=True))
        return a.dtype == b.dtype and bool(np.array_equal(a, b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _short(value, limit=300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _first_part(mine, torchs, path=""):
    """A path to the first part where two observations differ, with the two parts."""
    if isinstance(mine, (tuple, list)) and isinstance(torchs, (tuple, list)) and len(mine) == len(torchs) \
            and type(mine) is type(torchs):
        for k, (x, y) in enumerate(zip(mine, torchs)):
            if not _same(x, y):
                return _first_part(x, y, f"{path}[{k}]")
    return path, mine, torchs


WHAT = ["outcome", "hooks", "warnings", "snapshot"]


def first_difference(case: Case, ours: list, theirs: list) -> str | None:
    """The first step where chainrule's record (``ours``) differs from torch's (``theirs``), or None."""
    for mine, torchs in zip(ours, theirs):
        for k, what in enumerate(WHAT, start=1):
            if not _same(mine[k], torchs[k]):
                path, x, y = _first_part(mine[k], torchs[k])
                return f"{torchs[0]}: {what}{path}: {_short(x)} vs torch {_short(y)}"
    if len(ours) != len(theirs):
        return f"{len(ours)} steps vs torch {len(theirs)}"
    return None
