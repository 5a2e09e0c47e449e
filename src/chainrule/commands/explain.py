"""``chainrule explain "(x + y) * max(y, z)" --at x=1 y=2 z=0``: forward values, then the backward trace.

The expression is parsed with :mod:`ast` and evaluated node by node against a whitelist — numbers,
names bound by ``--at``, ``+ - * / ** @``, unary ``-``, and calls to a fixed set of chainrule
functions. Nothing is ever passed to ``eval``. ``--at`` values are numbers, (nested) lists, or
constructor calls: ``randn(3, 4)``, ``rand``, ``zeros``, ``ones``, ``eye``, ``arange``,
``tensor([...])`` (seeded with ``--seed``). Bad input raises :class:`chainrule.cli.CommandError`:
one line naming the offending part and its column.

Any string may arrive here, so every resource is bounded before it is spent: the expression's
length and nesting depth, the size of numeric literals, the elements of every ``--at`` value and
of every intermediate result (checked from the operands' shapes before the op runs), the
Jacobian's size, and the run time. Arithmetic on plain numbers is done in float64, so
``9**9**9`` is ``inf`` at once instead of a Python integer that takes hours.
"""

from __future__ import annotations

import ast
import re
import signal
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from ..cli import CommandError

# expression name -> (chainrule function name, number of tensor arguments or None for any)
FUNCTIONS = {
    "exp": "exp", "log": "log", "tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu",
    "sqrt": "sqrt", "abs": "abs", "sin": "sin", "cos": "cos", "square": "square",
    "sum": "sum", "mean": "mean", "softmax": "softmax", "log_softmax": "log_softmax",
    "matmul": "matmul", "dot": "dot", "norm": "norm", "maximum": "maximum", "minimum": "minimum",
    "pow": "pow", "mv": "mv", "mm": "mm", "outer": "outer", "t": "t",
    # max(a, b) is the elementwise maximum (torch.maximum); max(a) reduces
    "max": "maximum", "min": "minimum",
}
_REDUCING = {"max": "amax", "min": "amin"}
# softmax needs a dim in torch; in expressions it defaults to the last one
_DEFAULT_KWARGS = {"softmax": {"dim": -1}, "log_softmax": {"dim": -1}}
CONSTRUCTORS = ("randn", "rand", "zeros", "ones", "eye", "arange", "tensor")

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}

MAX_EXPRESSION_CHARS = 2000
MAX_VALUE_CHARS = 100_000  # one --at value: a literal list of some thousands of numbers
MAX_DEPTH = 64  # nesting of the expression tree and of --at lists
MAX_ELEMENTS = 10**6  # of any --at value, intermediate result or Jacobian
MAX_SECONDS = 60
MAX_QUOTED = 60  # characters of user input quoted around an error's position


def add_arguments(parser) -> None:
    parser.add_argument("expression", help='e.g. "(x + y) * max(y, z)" or "tanh(W @ x + b)"')
    parser.add_argument("--at", nargs="+", default=[], metavar="NAME=VALUE",
                        help="bind names: x=1 v=[1,2] W=randn(3,4) b=zeros(3) ...")
    parser.add_argument("--seed", type=int, default=0, help="seed for randn/rand in --at (default 0)")
    parser.add_argument("--graph", metavar="PATH", help="also draw the graph: out.svg, out.png or out.dot")
    parser.add_argument("--jacobian", action="store_true",
                        help="print the full Jacobian of a vector output beside the gradient")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="floating dtype of the --at values (default float32)")


# ------------------------------------------------------------------ parsing --at
def split_bindings(tokens: list[str]) -> list[tuple[str, str]]:
    """``["W=randn(3,", "4)", "x=1"]`` -> ``[("W", "randn(3, 4)"), ("x", "1")]``: a token that
    starts ``name=`` outside brackets starts a binding; others continue the previous one."""
    bindings: list[list[str]] = []
    depth = 0
    for token in tokens:
        match = re.match(r"^([A-Za-z_]\w*)=(.*)$", token, re.S)
        if depth == 0 and match:
            bindings.append([match.group(1), match.group(2)])
        elif bindings:
            bindings[-1][1] += " " + token
        else:
            raise CommandError(f"--at expects NAME=VALUE, got {_clip(token)!r}")
        depth = sum(bindings[-1][1].count(c) for c in "([") - sum(bindings[-1][1].count(c) for c in ")]")
    names = [name for name, _ in bindings]
    for name in dict.fromkeys(names):  # in the order given, so the first name bound twice is the one named
        if names.count(name) > 1:
            raise CommandError(f"--at binds {_clip(name)!r} twice")
    for name, value in bindings:
        if len(value) > MAX_VALUE_CHARS:
            raise CommandError(f"--at {name}=...: the value is {len(value)} characters long (at most "
                               f"{MAX_VALUE_CHARS})")
    return [(name, value.strip()) for name, value in bindings]


def _parse(text: str, where: str):
    """``ast.parse(text, mode="eval").body``, with the parser's own limits reported as input errors."""
    try:
        with warnings.catch_warnings():  # "invalid decimal literal" and friends: the error line says enough
            warnings.simplefilter("ignore")
            return ast.parse(text, mode="eval").body
    except SyntaxError:
        raise
    except (RecursionError, MemoryError, ValueError) as exc:  # too deep for the parser, or a huge int
        raise CommandError(f"{where} is too deeply nested or holds a number that is too long "
                           f"({_one_line(exc)[:80]})") from None


def _check_depth(node, where: str) -> None:
    """Reject trees deeper than MAX_DEPTH, walking iteratively (the checks after it recurse)."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CommandError(f"{where} nests more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))


def _number(value, where: str):
    """A numeric literal, as a float when it is too large to be an exact integer."""
    if isinstance(value, int) and abs(value) > 2**53:
        try:
            return float(value)
        except OverflowError:
            raise CommandError(f"the number {str(value)[:20]}... in {where} is too large") from None
    return value


def _count(shape: tuple, where: str) -> tuple:
    """``shape`` if its element count is within MAX_ELEMENTS, else CommandError."""
    total = 1
    for n in shape:
        total *= max(int(n), 0)
    if total > MAX_ELEMENTS:
        raise CommandError(f"{where} would have {total:,} elements (at most {MAX_ELEMENTS:,})")
    return shape


def _literal(node, text: str):
    """A number or a (nested) list of numbers from an ast node, else CommandError."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return _number(node.value, text)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, text) for e in node.elts]
    raise CommandError(f"expected a number or a list of numbers at column {node.col_offset + 1} "
                       f"of {_clip(text)!r}, got {_describe(node)}")


def parse_value(name: str, text: str, generator, dtype):
    """One --at value -> a chainrule Tensor of ``dtype`` (requires grad)."""
    import chainrule

    where = f"--at {name}={_clip(text)}"
    try:
        node = _parse(text, repr(where))
    except SyntaxError as exc:
        raise CommandError(f"syntax error in {where!r} at column {exc.offset or 0}: {exc.msg}") from None
    _check_depth(node, repr(where))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in CONSTRUCTORS:
            raise CommandError(f"unknown constructor in {where!r}: {_clip(ast.unparse(node.func))!r}; "
                               f"use one of {', '.join(CONSTRUCTORS)}")
        if node.keywords:
            raise CommandError(f"keyword arguments are not supported in {where!r}")
        args = [_literal(a, where) for a in node.args]
        fn = node.func.id
        try:
            if fn == "tensor":
                if len(args) != 1:
                    raise CommandError(f"tensor() takes one list in {where!r}")
                array = np.asarray(args[0], dtype=np.float64)
            elif fn in ("randn", "rand"):
                shape = _count(tuple(int(a) for a in args), repr(where))
                array = generator.standard_normal(shape) if fn == "randn" else generator.random(shape)
            elif fn in ("zeros", "ones"):
                array = (np.zeros if fn == "zeros" else np.ones)(_count(tuple(int(a) for a in args), repr(where)))
            elif fn == "eye":
                sizes = [int(a) for a in args]
                _count((sizes[0], sizes[-1]) if sizes else (), repr(where))
                array = np.eye(*sizes)
            else:
                if not 1 <= len(args) <= 3 or (len(args) == 3 and args[2] == 0):
                    raise CommandError(f"arange() takes 1 to 3 numbers and a non-zero step in {where!r}")
                start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
                _count((np.ceil((stop - start) / step),), repr(where))
                array = np.arange(*args, dtype=np.float64)
        except (TypeError, ValueError, OverflowError, IndexError) as exc:
            raise CommandError(f"bad arguments in {where!r}: {_one_line(exc)}") from None
    else:
        value = _literal(node, where)
        try:
            array = np.asarray(value, dtype=np.float64)
        except (ValueError, OverflowError) as exc:
            raise CommandError(f"ragged list in {where!r}: {_one_line(exc)}") from None
    t = chainrule.tensor(array, dtype=dtype, requires_grad=True)
    t.name = name
    return t


def make_inputs(tokens: list[str], seed: int, dtype) -> dict:
    if seed < 0:
        raise CommandError(f"--seed must be a non-negative integer, got {seed}")
    generator = np.random.default_rng(seed)
    return {name: parse_value(name, text, generator, dtype) for name, text in split_bindings(tokens)}


# ------------------------------------------------------------------ the expression
@dataclass
class Expression:
    """A parsed, whitelisted expression; ``evaluate(values)`` computes it with chainrule."""

    text: str
    tree: ast.expr

    @classmethod
    def parse(cls, text: str, names) -> Expression:
        if len(text) > MAX_EXPRESSION_CHARS:
            raise CommandError(f"the expression is {len(text)} characters long (at most {MAX_EXPRESSION_CHARS})")
        try:
            tree = _parse(text.strip(), "the expression")
        except SyntaxError as exc:
            # Python gives no offset when the input ends too early: point past its end
            column = exc.offset or len(text.strip()) + 1
            raise CommandError(f"syntax error at column {column}: {exc.msg}: {_pointed(text.strip(), column - 1, column)}") from None
        _check_depth(tree, "the expression")
        expression = cls(text.strip(), tree)
        expression._check(tree, set(names))
        return expression

    def segment(self, node) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def _fail(self, node, message: str):
        start = node.col_offset
        end = node.end_col_offset if node.end_col_offset is not None else start + 1
        raise CommandError(f"{message} at column {start + 1}: {_pointed(self.text, start, end)}")

    def _fail_size(self, node, count: int):
        self._fail(node, f"{_clip(self.segment(node))!r} would have {count:,} elements (at most {MAX_ELEMENTS:,})")

    def _check(self, node, names: set) -> None:
        """Reject anything outside the whitelist before evaluating anything."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                self._fail(node, f"only numbers are allowed as constants, not {_clip(repr(node.value))}")
            if isinstance(node.value, int) and abs(node.value) > 2**53:
                try:
                    float(node.value)
                except OverflowError:
                    self._fail(node, "this number is too large")
        elif isinstance(node, ast.Name):
            if node.id not in names:
                bound = _clip(", ".join(sorted(names)) or "nothing")
                name = _clip(node.id)
                self._fail(node, f"unknown name {name!r} (bind it with --at {name}=...; bound: {bound})")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                self._fail(node, f"operator {type(node.op).__name__} is not allowed (use + - * / ** @)")
            self._check(node.left, names)
            self._check(node.right, names)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                self._fail(node, f"unary operator {type(node.op).__name__} is not allowed")
            self._check(node.operand, names)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                self._fail(node.func, f"only plain function calls are allowed, not {_describe(node.func)}")
            if node.func.id not in FUNCTIONS:
                self._fail(node.func, f"function {_clip(node.func.id)!r} is not allowed (allowed: "
                           f"{', '.join(sorted(FUNCTIONS))})")
            if not node.args:
                self._fail(node, f"{node.func.id}() needs at least one argument")
            for arg in node.args:
                self._check(arg, names)
            for kw in node.keywords:
                if kw.arg is None or not isinstance(kw.value, ast.Constant) or not isinstance(
                        kw.value.value, (int, float, bool)):
                    self._fail(kw.value, "keyword arguments must be numbers or True/False")
        else:
            self._fail(node, f"{_describe(node)} is not allowed")

    def evaluate(self, values: dict, record=None, node=None, replace=None):
        """The value of the expression (or of its sub-expression ``node``); ``record(node, tensor)``
        sees every intermediate result; ``replace=(sub_node, value)`` substitutes a sub-expression."""
        self._replace = replace
        try:
            return self._eval(self.tree if node is None else node, values, record)
        finally:
            self._replace = None

    _replace = None

    def _eval(self, node, values, record):
        import chainrule

        if self._replace is not None and node is self._replace[0]:
            return self._replace[1]
        if isinstance(node, ast.Constant):
            return _number(node.value, "the expression")
        if isinstance(node, ast.Name):
            return values[node.id]
        try:
            if isinstance(node, ast.BinOp):
                a = self._eval(node.left, values, record)
                b = self._eval(node.right, values, record)
                if not isinstance(a, chainrule.Tensor) and not isinstance(b, chainrule.Tensor):
                    # plain numbers in float64: 9**9**9 and 1e308**2 are inf, not hours or OverflowError
                    result = float(_apply_binary(type(node.op), np.float64(a), np.float64(b)))
                else:
                    _check_size(node, type(node.op), (a, b), self)
                    result = _apply_binary(type(node.op), a, b)
            elif isinstance(node, ast.UnaryOp):
                a = self._eval(node.operand, values, record)
                result = -a if isinstance(node.op, ast.USub) else a
            else:
                args = [self._eval(arg, values, record) for arg in node.args]
                name = node.func.id
                kwargs = dict(_DEFAULT_KWARGS.get(name, {}))
                kwargs.update({kw.arg: kw.value.value for kw in node.keywords})
                if name in _REDUCING and len(args) == 1:
                    target = _REDUCING[name]
                else:
                    target = FUNCTIONS[name]
                fn = getattr(chainrule, target, None)
                if fn is None:
                    self._fail(node.func, f"function {name!r} is not available in this build")
                args = [a if isinstance(a, chainrule.Tensor) else chainrule.tensor(a) for a in args]
                _check_size(node, target, args, self)
                result = fn(*args, **kwargs)
        except (CommandError, _OutOfTime):
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of an op on user input is that input's error
            self._fail(node, f"cannot compute {_clip(self.segment(node))!r}: {_one_line(exc)[:200]}")
        if record is not None:
            record(node, result)
        return result


def _shape(value) -> tuple:
    return tuple(value.shape) if hasattr(value, "shape") else ()


def _check_size(node, op, args, expression: Expression) -> None:
    """Refuse an op whose result would exceed MAX_ELEMENTS, from its operands' shapes, before it
    allocates anything (outer(x, x) of a 10**5-vector would ask for 40 GB)."""
    shapes = [_shape(a) for a in args]
    count = None
    if op in ("outer",) and len(shapes) == 2:
        count = int(np.prod(shapes[0])) * int(np.prod(shapes[1]))
    elif op in (ast.MatMult, "matmul", "mm", "mv", "dot") and len(shapes) == 2:
        a, b = shapes
        rows = int(np.prod(a[:-1])) if len(a) > 1 else 1
        cols = b[-1] if len(b) > 1 else 1
        batch = int(np.prod(b[:-2])) if len(b) > 2 else 1
        count = rows * cols * batch
    elif len(shapes) >= 2:
        try:
            count = int(np.prod(np.broadcast_shapes(*shapes), dtype=object))
        except ValueError:
            return  # incompatible shapes: the op itself reports them
    if count is not None and count > MAX_ELEMENTS:
        expression._fail_size(node, count)


def _apply_binary(op, a, b):
    if op is ast.Add:
        return a + b
    if op is ast.Sub:
        return a - b
    if op is ast.Mult:
        return a * b
    if op is ast.Div:
        return a / b
    if op is ast.Pow:
        return a ** b
    return a @ b


def _describe(node) -> str:
    kinds = {"Attribute": "attribute access", "Lambda": "a lambda", "Subscript": "indexing",
             "Compare": "a comparison", "BoolOp": "and/or", "IfExp": "a conditional expression",
             "ListComp": "a comprehension", "GeneratorExp": "a generator", "Dict": "a dict",
             "Set": "a set", "JoinedStr": "an f-string", "NamedExpr": "an assignment",
             "Starred": "unpacking", "Await": "await", "Yield": "yield", "List": "a list",
             "Tuple": "a tuple", "Call": "a call"}
    return kinds.get(type(node).__name__, type(node).__name__)


def _pointed(text: str, start: int, end: int) -> str:
    """``text`` with the offending part marked: ``(x + »q«) * y``; a long text is cut to a window
    around the mark so an error never repeats a whole pasted input."""
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    before, part, after = text[:start], text[start:end], text[end:]
    if len(before) > MAX_QUOTED:
        before = "..." + before[-MAX_QUOTED:]
    if len(part) > MAX_QUOTED:
        part = part[:MAX_QUOTED // 2] + "..." + part[-MAX_QUOTED // 2:]
    if len(after) > MAX_QUOTED:
        after = after[:MAX_QUOTED] + "..."
    return f"{before}»{part}«{after}" if part else f"{before}»«{after}"


def _clip(text: str) -> str:
    return text if len(text) <= 2 * MAX_QUOTED else text[:MAX_QUOTED] + "..." + text[-MAX_QUOTED // 2:]


def _one_line(exc) -> str:
    return " ".join(str(exc).split())


def evaluate_with_intermediates(expression: Expression, values: dict):
    """(output, [(source text, tensor)] in evaluation order, excluding names and constants)."""
    import chainrule

    steps = []

    def record(node, result):
        if isinstance(result, chainrule.Tensor):
            steps.append((expression.segment(node), result))

    return expression.evaluate(values, record), steps


# ------------------------------------------------------------------ the command
class _OutOfTime(Exception):
    pass


def _out_of_time(signum, frame):
    raise _OutOfTime


def time_limit(function, *args):
    """``function(*args)``, stopped with a CommandError after MAX_SECONDS (main thread, POSIX)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        return function(*args)
    previous = signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(MAX_SECONDS)
    try:
        return function(*args)
    except _OutOfTime:
        raise CommandError(f"gave up after {MAX_SECONDS} s: the expression is too expensive") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(args) -> int:
    # inf/nan values are shown in the trace; numpy's warnings about them would only add noise
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return time_limit(_run, args)


def _run(args) -> int:
    import chainrule
    from chainrule.viz import explain, format_value, graph
    from chainrule.viz.graph import check_renderer, format_from_path

    dtype = getattr(chainrule, args.dtype)
    values = make_inputs(args.at, args.seed, dtype)
    expression = Expression.parse(args.expression, values)
    if args.graph:
        try:
            check_renderer(format_from_path(args.graph))
        except ImportError as exc:
            raise CommandError(f"--graph {args.graph}: {_one_line(exc)}") from None
    output, steps = evaluate_with_intermediates(expression, values)
    if not isinstance(output, chainrule.Tensor) or not output.requires_grad:
        raise CommandError(f"{_clip(expression.text)!r} does not depend on any --at value; nothing to differentiate")
    if args.jacobian:
        entries = int(output.numel()) * sum(int(v.numel()) for v in values.values())
        if entries > MAX_ELEMENTS:
            raise CommandError(f"--jacobian would have {entries:,} entries (at most {MAX_ELEMENTS:,})")

    print("forward:")
    for name, t in values.items():
        print(f"  {name} = {format_value(t)}")
    names = dict(values)
    for text, t in steps[:-1]:
        print(f"  {text} = {format_value(t)}")
        names.setdefault(text, t)
    print(f"  f = {expression.text} = {format_value(output)}")
    print()

    target, target_name = output, "f"
    if output.numel() != 1:
        target = output.sum()
        target_name = "sum(f)"
        names["f"] = output
        print(f"f has shape {tuple(output.shape)}: explaining the shape-convention gradient of "
              "sum(f), i.e. 1ᵀJ (use --jacobian for the full Jacobian)")
    names[target_name] = target
    trace = explain(target, inputs=values, print_trace=False, names=names)
    for step in trace:
        if step.label == "f" and step.kind == "op":
            step.expression = expression.text  # the user's spelling, constants included
    print(trace)

    if args.jacobian:
        print()
        _print_jacobians(expression, values, output, trace)
    if args.graph:
        try:
            path = graph(output, params={**values, "f": output}).render(args.graph)
        except (ImportError, OSError) as exc:
            raise CommandError(f"--graph {args.graph}: {_one_line(exc)}") from None
        except Exception as exc:  # graphviz.ExecutableNotFound and friends
            raise CommandError(f"could not draw {args.graph}: {_one_line(exc)}") from None
        print(f"\ngraph written to {path}")
    return 0


def _print_jacobians(expression: Expression, values: dict, output, trace) -> None:
    import chainrule
    from chainrule.autograd.functional import jacobian
    from chainrule.viz import format_value

    names = list(values)

    def f(*xs):
        return expression.evaluate(dict(zip(names, xs)))

    jacobians = jacobian(f, tuple(values[n].detach() for n in names))
    out_shape = tuple(output.shape)
    print(f"Jacobian, rows = elements of f (shape {out_shape}), columns = elements of the input:")
    for name, J in zip(names, jacobians):
        print(f"  ∂f/∂{name}: shape {tuple(J.shape)}")
        print(_indent(_matrix_text(J, max(int(output.numel()), 1)), 4))
        grad = trace.grads.get(name)
        if grad is not None:
            convention = "∂f/∂" if output.numel() == 1 else "1ᵀJ = ∂sum(f)/∂"
            print(f"  shape-convention gradient {convention}{name} (shape {tuple(grad.shape)}): "
                  f"{format_value(grad)}")
    # the local Jacobians of one-argument functions: elementwise ones are diagonal
    local = []

    def record(node, result):
        if isinstance(node, ast.Call) and len(node.args) == 1 and isinstance(result, chainrule.Tensor):
            local.append(node)

    expression.evaluate(values, record)
    for node in local:
        arg_node = node.args[0]
        arg_value = expression.evaluate(values, node=arg_node)
        if not isinstance(arg_value, chainrule.Tensor):
            continue
        result = expression.evaluate(values, node=node)
        entries = int(result.numel()) * int(arg_value.numel())
        if entries > MAX_ELEMENTS:
            print(f"local Jacobian of {_clip(expression.segment(node))} w.r.t. {_clip(expression.segment(arg_node))}: "
                  f"{entries:,} entries, too many to compute (at most {MAX_ELEMENTS:,})")
            continue

        def g(a, node=node, arg_node=arg_node):
            return expression.evaluate(values, node=node, replace=(arg_node, a))

        J = jacobian(g, arg_value.detach())
        n_in = max(int(arg_value.numel()), 1)
        J2 = J._data.reshape(-1, n_in)
        diagonal = J2.shape[0] == J2.shape[1] and np.array_equal(J2, np.diag(np.diag(J2)))
        kind = "diagonal (an elementwise op)" if diagonal else "full"
        print(f"local Jacobian of {expression.segment(node)} w.r.t. {expression.segment(arg_node)}: "
              f"{tuple(J.shape)}, {kind}")
        if diagonal and J2.shape[0] > 1:
            print(f"    diag = {format_value(chainrule.tensor(np.diag(J2)))}")
        else:
            print(_indent(_matrix_text(J, J2.shape[0]), 4))


def _matrix_text(t, rows: int | None = None) -> str:
    """A Jacobian as a (outputs × inputs) matrix; summarised when it is large."""
    from chainrule.viz import format_value
    from chainrule.viz.explain import _scalar

    array = t._data + 0.0  # no -0.0 in print-outs
    if array.ndim == 0:
        return _scalar(array[()])
    if rows is not None and array.ndim != 2:
        array = array.reshape(rows, -1)
    if array.size > 400:
        return format_value(t)
    return np.array2string(array, separator=", ", formatter={"all": _scalar}, max_line_width=100)


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())
