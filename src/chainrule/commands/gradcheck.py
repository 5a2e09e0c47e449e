"""``chainrule gradcheck "expr" --at x=1 W=randn(3,4)``: autograd vs finite differences, in float64.

The expression and ``--at`` values are parsed exactly as by ``chainrule explain`` (whitelisted
``ast``, never ``eval``). For each input the full analytical Jacobian (one backward per output
element) is compared with central differences; the verdict uses gradcheck's tolerance
``|analytical - numerical| <= atol + rtol·|numerical|`` and names the worst element.
Exit status 0 when every input passes, 1 when one fails, 2 on bad input.
"""

from __future__ import annotations

import numpy as np

from .explain import Expression, make_inputs


def add_arguments(parser) -> None:
    parser.add_argument("expression", help='e.g. "sum(tanh(W @ x + b))"')
    parser.add_argument("--at", nargs="+", default=[], metavar="NAME=VALUE",
                        help="bind names: x=1 v=[1,2] W=randn(3,4) b=zeros(3) ...")
    parser.add_argument("--seed", type=int, default=0, help="seed for randn/rand in --at (default 0)")
    parser.add_argument("--eps", type=float, default=1e-6, help="finite-difference step (default 1e-6)")
    parser.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    parser.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (default 1e-3)")


def _central_differences(f, inputs: list, index: int, eps: float) -> np.ndarray:
    """(n_out, n_in) Jacobian of f w.r.t. inputs[index] by central differences."""
    from chainrule import no_grad

    x = inputs[index]._data
    columns = []
    with no_grad():
        for position in np.ndindex(x.shape):
            original = x[position]
            x[position] = original + eps
            plus = np.array(f(*inputs)._data, dtype=np.float64)
            x[position] = original - eps
            minus = np.array(f(*inputs)._data, dtype=np.float64)
            x[position] = original
            columns.append(((plus - minus) / (2 * eps)).ravel())
    if not columns:
        return np.zeros((0, 0))
    return np.stack(columns, axis=1)


def run(args) -> int:
    # 1/0 and friends are part of what gradcheck reports, not warnings to print
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _run(args)


def _run(args) -> int:
    import chainrule
    from chainrule.autograd.functional import jacobian
    from chainrule.cli import CommandError
    from chainrule.viz.explain import _scalar

    values = make_inputs(args.at, args.seed, chainrule.float64)
    expression = Expression.parse(args.expression, values)
    output = expression.evaluate(values)
    if not isinstance(output, chainrule.Tensor) or not output.requires_grad:
        raise CommandError(f"{expression.text!r} does not depend on any --at value; nothing to check")
    names = list(values)

    def f(*xs):
        return expression.evaluate(dict(zip(names, xs)))

    analytical = jacobian(f, tuple(values[n].detach() for n in names))
    n_out = max(int(output.numel()), 1)
    print(f"gradcheck of f = {expression.text} in float64 (eps={args.eps:g}, atol={args.atol:g}, "
          f"rtol={args.rtol:g}), f has shape {tuple(output.shape)}")
    inputs = [values[n].detach() for n in names]
    failed = []
    for i, name in enumerate(names):
        a = analytical[i]._data.astype(np.float64).reshape(n_out, -1)
        n = _central_differences(f, inputs, i, args.eps).reshape(n_out, -1)
        if a.size == 0:
            print(f"  {name}: empty, nothing to compare")
            continue
        difference = np.abs(a - n)
        bad = difference > args.atol + args.rtol * np.abs(n)
        bad |= np.isnan(a) != np.isnan(n)
        worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(difference), np.inf, difference))), a.shape)
        out_pos = tuple(int(k) for k in np.unravel_index(worst[0], tuple(output.shape)))
        in_pos = tuple(int(k) for k in np.unravel_index(worst[1], tuple(values[name].shape)))
        verdict = "FAIL" if bad.any() else "ok"
        if bad.any():
            failed.append(name)
        print(f"  {name}: {verdict}  worst |analytical - numerical| = {difference[worst]:.3g} at "
              f"∂f{list(out_pos)}/∂{name}{list(in_pos)}: analytical {_scalar(a[worst])}, "
              f"numerical {_scalar(np.float64(round(float(n[worst]), 10)))}")
    if failed:
        print(f"FAILED: the gradient w.r.t. {', '.join(failed)} disagrees with finite differences")
        return 1
    print("PASSED: autograd agrees with finite differences for every input")
    return 0
