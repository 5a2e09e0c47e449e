"""Autograd engine and torch.func corners against torch: which hooks run where autograd.grad
captures a non-leaf input's gradient (and what it captures), backward(inputs=) of a non-leaf,
materialize_grads, non-Tensor seeds, backward() inside a transform, mixed-dtype jvp tangents."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _hook_trace(lib, requested, accumulate=False, retain=True):
    """m = 2x with a tensor hook (x10), a node pre-hook (x100) and a post-hook on m.grad_fn; the
    hooks that ran, the gradients grad() returned, m.grad, x.grad and m.retains_grad."""
    log = []
    x = lib.ones(3, requires_grad=True)
    m = x * 2
    if retain:
        m.retain_grad()
    m.register_hook(lambda g: (log.append("tensor"), g * 10)[1])
    m.grad_fn.register_prehook(lambda gs: (log.append("pre"), (gs[0] * 100,))[1])
    m.grad_fn.register_hook(lambda gi, go: log.append("post"))
    out = (m * 1).sum()
    inputs = [{"m": m, "x": x}[name] for name in requested]
    grads = None
    if accumulate:
        out.backward(inputs=inputs)
    else:
        grads = [g.tolist() for g in lib.autograd.grad(out, inputs)]

    def listed(t):
        return None if t is None else t.tolist()

    return log, grads, listed(m.grad if m.retains_grad else None), listed(x.grad), m.retains_grad


@pytest.mark.parametrize("requested", [("m",), ("m", "x"), ("x",), ("x", "m")])
@pytest.mark.parametrize("accumulate", [False, True], ids=["grad", "backward"])
@pytest.mark.parametrize("retain", [True, False], ids=["retained", "plain"])
def test_hooks_at_a_requested_non_leaf_input_run_as_torchs(requested, accumulate, retain):
    # grad(out, m): m's tensor hooks and retain_grad run and their result is captured; m.grad_fn's
    # pre-hooks and rule do not run. With x requested as well, m.grad_fn runs on and the gradient
    # is captured as it arrived. backward(inputs=[m]) runs m.grad_fn and makes m retain its grad.
    assert _hook_trace(chainrule, requested, accumulate, retain) == _hook_trace(torch, requested, accumulate, retain)


def test_a_gradient_edge_capture_does_not_run_the_nodes_pre_hooks():
    def trace(lib):
        log = []
        x = lib.ones(3, requires_grad=True)
        m = x * 2
        m.grad_fn.register_prehook(lambda gs: log.append("pre"))
        m.register_hook(lambda g: log.append("tensor"))
        (g,) = lib.autograd.grad((m * 3).sum(), lib.autograd.graph.get_gradient_edge(m))
        return log, g.tolist()

    assert trace(chainrule) == trace(torch) == (["tensor"], [3.0, 3.0, 3.0])


def _outcome(call):
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the class and message are what is compared
        return type(error).__name__, str(error)
    return "ok", [None if g is None else g.tolist() for g in (result or ())]


MATERIALIZE = {
    "unused input is zeros": lambda lib, x, y: lib.autograd.grad((x * 2).sum(), [x, y], materialize_grads=True),
    "allow_unused=True": lambda lib, x, y: lib.autograd.grad((x * 2).sum(), [x, y], materialize_grads=True,
                                                             allow_unused=True),
    "allow_unused=False raises": lambda lib, x, y: lib.autograd.grad((x * 2).sum(), [x, y], materialize_grads=True,
                                                                     allow_unused=False),
    "float64 unused": lambda lib, x, y: lib.autograd.grad((x * 2).sum(), [y.double()], materialize_grads=True),
}


@pytest.mark.parametrize("case", MATERIALIZE)
def test_materialize_grads_as_torchs(case):
    def run(lib):
        x = lib.ones(3, requires_grad=True)
        y = lib.ones(2, requires_grad=True)
        return _outcome(lambda: MATERIALIZE[case](lib, x, y))

    assert run(chainrule) == run(torch)


SEEDS = {
    "grad, grad_outputs=1.0": lambda lib, x: lib.autograd.grad((x * 2).sum(), x, grad_outputs=1.0),
    "grad, grad_outputs=3": lambda lib, x: lib.autograd.grad((x * 2).sum(), x, grad_outputs=3),
    "grad, grad_outputs=[1.0]": lambda lib, x: lib.autograd.grad([(x * 2).sum()], x, grad_outputs=[1.0]),
    "grad, grad_outputs=[None]": lambda lib, x: lib.autograd.grad([(x * 2).sum()], x, grad_outputs=[None]),
    "backward(gradient=3)": lambda lib, x: (x * 2).sum().backward(gradient=3),
    "autograd.backward(grad_tensors=2.0)": lambda lib, x: lib.autograd.backward((x * 2).sum(), grad_tensors=2.0),
    "autograd.backward(grad_tensors=[2.0])": lambda lib, x: lib.autograd.backward([(x * 2).sum()],
                                                                                  grad_tensors=[2.0]),
    "is_grads_batched, grad_outputs=2.0": lambda lib, x: lib.autograd.grad((x * 2).sum(), x, grad_outputs=2.0,
                                                                           is_grads_batched=True),
}


@pytest.mark.parametrize("case", SEEDS)
def test_a_python_number_as_the_seed_raises_torchs_type_error(case):
    def run(lib):
        return _outcome(lambda: SEEDS[case](lib, lib.ones(3, requires_grad=True)))

    assert run(chainrule) == run(torch)


def _backward_inside(lib, transform):
    w = lib.ones(3, requires_grad=True)

    def f(x):
        y = (x * x).sum()
        y.backward()
        return y

    def f_weights(x):
        y = (x * w).sum()
        y.backward()
        return y

    x = lib.ones(3)
    calls = {
        "grad": lambda: lib.func.grad(f)(x),
        "grad, closed-over weights": lambda: lib.func.grad(f_weights)(x),
        "vjp": lambda: lib.func.vjp(f, x),
        "jacrev": lambda: lib.func.jacrev(f)(x),
        "vmap": lambda: lib.func.vmap(f)(lib.ones(2, 3)),
        "jvp": lambda: lib.func.jvp(f_weights, (x,), (x,)),
    }
    return _outcome(calls[transform]), None if w.grad is None else w.grad.tolist()


@pytest.mark.parametrize("transform", ["grad", "grad, closed-over weights", "vjp", "jacrev", "vmap", "jvp"])
def test_backward_inside_a_func_transform_raises_torchs_error(transform):
    assert _backward_inside(chainrule, transform) == _backward_inside(torch, transform)


def _sin_functions(lib):
    """User Functions jacfwd must run column by column (their jvp is the derivative torch's jacfwd
    uses): one whose backward agrees with its jvp, one whose jvp is twice its backward, and one
    without a usable backward."""

    class Sin(lib.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return x.sin()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.save_for_forward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.cos()

        @staticmethod
        def jvp(ctx, t):
            (x,) = ctx.saved_tensors
            return t * x.cos()

    class SinDisagree(Sin):
        @staticmethod
        def jvp(ctx, t):
            (x,) = ctx.saved_tensors
            return 2 * t * x.cos()

    class SinJvpOnly(Sin):
        @staticmethod
        def backward(ctx, g):
            raise RuntimeError("no backward")

    return {"Sin": Sin, "SinDisagree": SinDisagree, "SinJvpOnly": SinJvpOnly}


def _penalty_through_jacfwd(lib, name, grad_mode):
    function = _sin_functions(lib)[name]
    w = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
    x = lib.tensor([0.3, 0.2, -0.4])
    with lib.set_grad_enabled(grad_mode):
        jacobian = lib.func.jacfwd(lambda x: function.apply(x * w))(x)
    values = [round(v, 5) for v in jacobian.diagonal().tolist()]
    if not jacobian.requires_grad:
        return values, False, None
    (g,) = lib.autograd.grad(jacobian.pow(2).sum(), w)
    return values, True, [round(v, 5) for v in g.tolist()]


@pytest.mark.parametrize("grad_mode", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("name", ["Sin", "SinDisagree", "SinJvpOnly"])
def test_a_gradient_penalty_through_jacfwds_columns_reaches_the_weights(name, grad_mode):
    # d/dw sum((cos(x w) w)^2): the columns keep their graph to the closed-over w, as torch's do
    assert _penalty_through_jacfwd(chainrule, name, grad_mode) == _penalty_through_jacfwd(torch, name, grad_mode)


@pytest.mark.parametrize("name", ["SinDisagree", "SinJvpOnly"])
def test_jacfwds_columns_without_a_closed_over_weight_carry_no_graph(name):
    def run(lib):
        function = _sin_functions(lib)[name]
        jacobian = lib.func.jacfwd(function.apply)(lib.tensor([0.3, 0.2, -0.4]))
        return jacobian.requires_grad, [round(v, 5) for v in jacobian.diagonal().tolist()]

    assert run(chainrule) == run(torch)


MIXED_TANGENT = {
    "sin": lambda lib, a: a.sin(),
    "times two": lambda lib, a: a * 2,
    "identity": lambda lib, a: a,
    "a + a": lambda lib, a: a + a,
    "sum": lambda lib, a: a.sum(),
    "relu": lambda lib, a: lib.relu(a),
    "exp then view": lambda lib, a: a.exp().view(3, 1),
    "softmax": lambda lib, a: a.softmax(0),
    "double()": lambda lib, a: a.double(),
}


@pytest.mark.parametrize("case", MIXED_TANGENT)
def test_jvp_of_a_tangent_wider_than_its_primal_keeps_torchs_dtypes(case):
    # torch's forward formulas compute with the tangent: a float64 tangent of a float32 primal
    # gives a float64 output tangent (the primal output stays float32)
    def run(lib):
        x = lib.tensor([0.3, -0.2, 0.5], dtype=lib.float32)
        t = lib.tensor([1.0, 2.0, -1.0], dtype=lib.float64)
        output, tangent = lib.func.jvp(lambda a: MIXED_TANGENT[case](lib, a), (x,), (t,))
        return str(output.dtype).split(".")[-1], str(tangent.dtype).split(".")[-1], \
            [round(v, 5) for v in tangent.reshape(-1).tolist()]

    assert run(chainrule) == run(torch)
