"""Lane mendO: undefined (None) gradients reaching nodes, and the nodes none of whose outputs got a
gradient — the engine runs them as torch's does (hooks see None, built-in rules pass None on, a
user's Function gets zeros or None, saved tensors are freed); each program run on torch and on
chainrule, compared."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _functions(lib, calls):
    class NoneForFirst(lib.autograd.Function):
        """Multiplies, and gives its first input no gradient."""

        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, grad):
            return None, grad * 2

    class Recorded(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a.clone()

        @staticmethod
        def backward(ctx, grad):
            calls.append(("Recorded", _value(grad)))
            return grad

    class RecordedUnmaterialized(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.set_materialize_grads(False)
            return a.clone(), a.clone()

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            calls.append(("RecordedUnmaterialized", _value(grad_a), _value(grad_b)))
            return grad_a

    return NoneForFirst, Recorded, RecordedUnmaterialized


def _value(t):
    return None if t is None else t.detach().tolist()


def _leaves(lib):
    return (lib.tensor([1.0, 2.0], requires_grad=True), lib.tensor([3.0, 4.0], requires_grad=True))


def _none_into_exp(lib, calls, fns):
    x, w = _leaves(lib)
    fns[0].apply(x.exp(), w).sum().backward()
    return _value(x.grad), _value(w.grad)


def _hooks_on_a_node_given_none(lib, calls, fns):
    x, w = _leaves(lib)
    y = x.sin()
    u = y.cos()
    for tensor, name in ((y, "y"), (u, "u"), (x, "x")):
        tensor.register_hook(lambda g, name=name: calls.append((name, _value(g))))
    u.grad_fn.register_prehook(lambda grads: calls.append(("pre", [_value(g) for g in grads])))
    u.grad_fn.register_hook(lambda gi, go: calls.append(("post", [_value(g) for g in gi], [_value(g) for g in go])))
    x.register_post_accumulate_grad_hook(lambda t: calls.append(("post_accumulate", _value(t.grad))))
    fns[0].apply(u, w).sum().backward()
    return _value(x.grad), _value(w.grad)


def _user_function_given_none(lib, calls, fns):
    x, w = _leaves(lib)
    fns[0].apply(fns[1].apply(x.exp()), w).sum().backward()  # Recorded's backward sees zeros
    return _value(x.grad), _value(w.grad)


def _user_function_given_none_by_grad(lib, calls, fns):
    x, w = _leaves(lib)
    z = fns[0].apply(fns[1].apply(x.exp()), w)
    return [_value(g) for g in lib.autograd.grad(z.sum(), [x, w], allow_unused=True)]


def _unmaterialized_function_given_none(lib, calls, fns):
    x, w = _leaves(lib)
    a, b = fns[2].apply(x.exp())
    (fns[0].apply(a, w) + fns[0].apply(b, w)).sum().backward()  # its backward sees (None, None)
    return _value(x.grad), _value(w.grad)


def _unused_split_output_hook(lib, calls, fns):
    x = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    a, b = x.split(2)
    b.register_hook(lambda g: calls.append(("b", _value(g))))
    b.retain_grad()
    a.sum().backward()
    return _value(x.grad), _value(b.grad)


def _none_retained_grad(lib, calls, fns):
    x, w = _leaves(lib)
    y = fns[1].apply(x.exp())
    y.retain_grad()
    fns[0].apply(y, w).sum().backward()
    return _value(x.grad), _value(y.grad)


def _accumulate_grad_node_hooks(lib, calls, fns):
    x, w = _leaves(lib)
    z = x * 1
    accumulate = z.grad_fn.next_functions[0][0]
    accumulate.register_prehook(lambda grads: calls.append(("pre", [_value(g) for g in grads])))
    accumulate.register_hook(lambda gi, go: calls.append(("post", list(gi), [_value(g) for g in go])))
    z.sum().backward()  # a defined gradient
    fns[0].apply(x * 1, w).sum().backward()  # an undefined one: hooks run, .grad unchanged
    return _value(x.grad)


def _backward_of_inputs_given_none(lib, calls, fns):
    x, w = _leaves(lib)
    y = x.exp()
    y.register_hook(lambda g: calls.append(("y", _value(g))))
    fns[0].apply(y, w).sum().backward(inputs=[x])
    return _value(x.grad), _value(w.grad)


def _none_through_a_pre_hook(lib, calls, fns):
    x, _ = _leaves(lib)
    z = x.exp() * 2
    z.grad_fn.register_prehook(lambda grads: (None,))
    z.sum().backward()
    return _value(x.grad)


def _none_through_a_post_hook(lib, calls, fns):
    x, w = _leaves(lib)
    z = x.exp() * w
    z.grad_fn.register_hook(lambda gi, go: (None, gi[1]))
    z.sum().backward()
    return _value(x.grad), _value(w.grad)


def _several_roots_one_seed_none(lib, calls, fns):
    x, _ = _leaves(lib)
    lib.autograd.backward([x.exp().sum(), (x * 3).sum()], [None, lib.tensor(2.0)])
    return _value(x.grad)


def _materialized_unused_input(lib, calls, fns):
    x, w = _leaves(lib)
    return [_value(g) for g in lib.autograd.grad(x.exp().sum(), [x, w], materialize_grads=True)]


def _freed_by_a_node_given_none(lib, calls, fns):
    x, w = _leaves(lib)
    y = x.exp()
    fns[0].apply(y, w).sum().backward()
    y.sum().backward()  # ExpBackward0 ran (with None) and freed its result: torch refuses
    return _value(x.grad)


def _implicit_seed_of_a_vector(lib, calls, fns):
    x, _ = _leaves(lib)
    lib.autograd.backward([x.exp(), (x * 3).sum()], [None, lib.tensor(2.0)])


PROGRAMS = [
    _none_into_exp, _hooks_on_a_node_given_none, _user_function_given_none,
    _user_function_given_none_by_grad, _unmaterialized_function_given_none, _unused_split_output_hook,
    _none_retained_grad, _accumulate_grad_node_hooks, _backward_of_inputs_given_none,
    _none_through_a_pre_hook, _none_through_a_post_hook, _several_roots_one_seed_none,
    _materialized_unused_input, _freed_by_a_node_given_none, _implicit_seed_of_a_vector,
]


def _observed(lib, program):
    calls = []
    try:
        result = ("returned", program(lib, calls, _functions(lib, calls)))
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        result = ("raised", type(error).__name__, str(error).split("\n")[0])
    return result, calls


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__.strip("_"))
def test_undefined_gradients_as_torch(program):
    assert _observed(chainrule, program) == _observed(torch, program)


def _replacing_none(lib, where):
    x, w = _leaves(lib)
    y = x.exp()
    z = _functions(lib, [])[0].apply(y, w)
    if where == "tensor hook":
        y.register_hook(lambda g: lib.ones(2))
    elif where == "pre-hook":
        y.grad_fn.register_prehook(lambda grads: (lib.ones(2),))
    elif where == "post-hook":
        y.grad_fn.register_hook(lambda gi, go: (lib.ones(2),))
    else:
        x.register_hook(lambda g: lib.ones(2))
    z.sum().backward()


@pytest.mark.parametrize("where", ["tensor hook", "pre-hook", "post-hook", "leaf hook"])
def test_a_hook_may_not_replace_a_none_gradient(where):
    with pytest.raises(RuntimeError) as expected:
        _replacing_none(torch, where)
    with pytest.raises(RuntimeError) as got:
        _replacing_none(chainrule, where)
    assert str(got.value) == str(expected.value) == "can't replace a None gradient with a non-None value"


def _pre_hook_returning(lib, kind):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    z = x.exp() * 2
    results = {"list": lambda g: [g[0]], "two values": lambda g: (g[0], g[0]), "size": lambda g: (lib.ones(3),),
               "dtype": lambda g: (g[0].double(),), "number": lambda g: (1.0,), "a tensor": lambda g: g[0]}
    z.grad_fn.register_prehook(results[kind])
    z.sum().backward()


@pytest.mark.parametrize("kind", ["list", "two values", "size", "dtype", "number", "a tensor"])
def test_a_node_pre_hooks_result_is_checked_as_torch_checks_it(kind):
    with pytest.raises(Exception) as expected:
        _pre_hook_returning(torch, kind)
    with pytest.raises(Exception) as got:
        _pre_hook_returning(chainrule, kind)
    assert (type(got.value), str(got.value)) == (type(expected.value), str(expected.value))


# -- gradcheck: backward multiplied by grad_output; forward mode with an undefined tangent


def _gradcheck_functions(lib):
    class IgnoresGradOutput(lib.autograd.Function):
        """A sum of squares whose backward forgets to multiply by grad_output."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x * x).sum()

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x

    class UndefinedTangentAsOnes(lib.autograd.Function):
        """Two outputs; its jvp takes an undefined tangent of x for ones instead of zeros."""

        @staticmethod
        def forward(ctx, x, y):
            ctx.set_materialize_grads(False)  # (else jvp is given zeros for the undefined tangent)
            return x * 2, y.clone()

        @staticmethod
        def jvp(ctx, tangent_x, tangent_y):
            return (lib.ones_like(tangent_y) if tangent_x is None else tangent_x * 2), tangent_y

        @staticmethod
        def backward(ctx, grad_a, grad_b):
            return (None if grad_a is None else grad_a * 2), grad_b

    class Sound(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * 2 + y

        @staticmethod
        def jvp(ctx, tangent_x, tangent_y):
            return (0 if tangent_x is None else tangent_x * 2) + (0 if tangent_y is None else tangent_y)

        @staticmethod
        def backward(ctx, grad):
            return grad * 2, grad

    return IgnoresGradOutput, UndefinedTangentAsOnes, Sound


GRADCHECKS = {
    "ignores grad_output": (0, 1, {}),
    "ignores grad_output, returning False": (0, 1, {"raise_exception": False}),
    "ignores grad_output, no undefined-grad check": (0, 1, {"check_undefined_grad": False}),
    "ignores grad_output, masked": (0, 1, {"masked": True}),
    "ignores grad_output, forward mode too": (0, 1, {"check_forward_ad": True}),
    "neither mode": (0, 1, {"check_backward_ad": False}),
    "batched forward without forward mode": (0, 1, {"check_batched_forward_grad": True}),
    "undefined tangent": (1, 2, {"check_forward_ad": True}),
    "undefined tangent, returning False": (1, 2, {"check_forward_ad": True, "raise_exception": False}),
    "undefined tangent, forward mode only": (1, 2, {"check_forward_ad": True, "check_backward_ad": False}),
    "undefined tangent, not checked": (1, 2, {"check_forward_ad": True, "check_undefined_grad": False}),
    "sound": (2, 2, {"check_forward_ad": True}),
}


def _gradcheck(lib, case):
    which, n_inputs, options = GRADCHECKS[case]
    inputs = [lib.tensor(values, dtype=lib.float64, requires_grad=True) for values in ([1.0, 2.0], [3.0, 4.0])]
    try:
        return ("returned", lib.autograd.gradcheck(_gradcheck_functions(lib)[which].apply, inputs[:n_inputs],
                                                   **options))
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        # (the undefined-tangent message prints the input tensor, whose dtype names its library)
        return ("raised", type(error).__name__, str(error).replace("chainrule.", "torch."))


@pytest.mark.parametrize("case", list(GRADCHECKS))
def test_gradcheck_runs_torchs_remaining_checks(case):
    assert _gradcheck(chainrule, case) == _gradcheck(torch, case)


def test_the_cases_reach_the_new_checks():
    # (guards the comparison above: the programs fail where meant, not at an earlier check)
    assert _gradcheck(chainrule, "ignores grad_output") == (
        "raised", "GradcheckError", "backward not multiplied by grad_output")
    raised = _gradcheck(chainrule, "undefined tangent")
    assert raised[:2] == ("raised", "GradcheckError") and "has an undefined tangent value." in raised[2]
    assert _gradcheck(chainrule, "undefined tangent, returning False") == ("returned", False)
    assert _gradcheck(chainrule, "sound") == ("returned", True)
