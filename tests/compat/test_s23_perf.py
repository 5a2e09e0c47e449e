"""Session 23's op-overhead work: the steps it inlined in apply and in the engine's walk keep what
the general paths gave — the output's graph fields, freeing saved tensors, the pre-walk checks for
a freed graph and for saved tensors changed in place (compared with torch where it is importable)."""

import pytest

import chainrule


def _both(fn):
    """``fn(lib)`` for chainrule and for torch (skipping when torch is not importable)."""
    torch = pytest.importorskip("torch")
    return fn(chainrule), fn(torch)


def _error(fn):
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - the class and message are what is compared
        return type(error), str(error).split("\n")[0]
    return None


# ---- apply's inline output ---------------------------------------------------------------------
def test_output_fields_recorded_and_unrecorded():
    def fields(lib):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        c = lib.tensor([1.0, 2.0, 3.0])
        recorded = (x * 0.9 + 0.1).tanh()
        with lib.no_grad():
            plain = (x * 0.9 + 0.1).tanh()
        constant = c * 2.0 + c
        return ([(t.requires_grad, t.is_leaf, t.grad_fn is None, t._version) for t in (recorded, plain, constant)],
                [t.tolist() for t in (recorded, plain, constant)], type(recorded.grad_fn).__name__)

    ours, theirs = _both(fields)
    assert ours[0] == theirs[0] and ours[2] == theirs[2] == "TanhBackward0"
    for mine, reference in zip(ours[1], theirs[1]):
        assert mine == pytest.approx(reference)


def test_an_output_is_its_own_tensor_with_its_own_version():
    x = chainrule.ones(3, requires_grad=True)
    y = x * 2.0
    z = x * 2.0
    assert y is not z and y._data is not z._data and y.grad_fn is not z.grad_fn
    assert y.grad_fn.next_functions[0][0] is z.grad_fn.next_functions[0][0]  # one AccumulateGrad
    with chainrule.no_grad():
        y.add_(1.0)
    assert (y._version, z._version, x._version) == (1, 0, 0)


def test_create_graph_none_leaves_outputs_of_the_backward_unrecorded():
    # (the walk sets grad mode to create_graph as given: a None must still read as False)
    seen = []
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 3.0).tanh()
    y.register_hook(lambda g: seen.append((g * 2.0).requires_grad))
    y.sum().backward(create_graph=None)
    assert seen == [False] and x.grad.requires_grad is False


# ---- the walk's inline release of saved tensors ---------------------------------------------------
def test_second_backward_through_a_freed_graph_raises_as_torch():
    def second(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        y = (x * 0.9 + 0.1).tanh().sum()
        y.backward()
        first = x.grad.clone()
        return first.tolist(), _error(y.backward), x.grad.tolist()

    ours, theirs = _both(second)
    assert ours[0] == pytest.approx(theirs[0]) and ours[2] == pytest.approx(theirs[2])
    assert ours[1][0] is theirs[1][0] is RuntimeError
    assert ours[1][1] == theirs[1][1]


def test_retain_graph_keeps_saved_tensors_and_accumulates():
    def twice(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        t = (x * x).tanh()
        y = t.sum()
        y.backward(retain_graph=True)
        kept = t.grad_fn._saved_result.tolist()
        y.backward()
        return x.grad.tolist(), _error(lambda: t.grad_fn._saved_result), kept

    ours, theirs = _both(twice)
    assert ours[0] == pytest.approx(theirs[0]) and ours[2] == pytest.approx(theirs[2])
    assert ours[1][0] is theirs[1][0] is RuntimeError


def test_a_graph_without_saved_tensors_runs_backward_twice_as_torch():
    def adds(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x + 1.0 + x).sum()
        y.backward()
        y.backward()  # add saves nothing: torch frees nothing and raises nothing
        return x.grad.tolist()

    ours, theirs = _both(adds)
    assert ours == theirs == [4.0, 4.0]


def test_a_composites_kept_tensors_are_still_released():
    # (reflect padding keeps its input for torch's _saved_self: the walk's general release step)
    def kept(lib):
        x = lib.randn(2, 3, 4, requires_grad=True)
        out = lib.nn.functional.pad(x, (1, 1), mode="reflect")
        before = tuple(out.grad_fn._saved_self.shape)
        out.sum().backward()
        return before, _error(lambda: out.grad_fn._saved_self), out.grad_fn._saved_padding

    ours, theirs = _both(kept)
    assert ours[0] == theirs[0] == (2, 3, 4) and ours[2] == theirs[2] == (1, 1)
    assert ours[1][0] is theirs[1][0] is RuntimeError
    assert ours[1][1] == theirs[1][1]


# ---- the walk's inline pre-check of saved versions ------------------------------------------------
def test_in_place_change_of_a_saved_tensor_raises_before_any_grad_changes():
    def changed(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        w = lib.tensor([2.0, 3.0], requires_grad=True)
        a = x * 1.0
        y = (a * w).sum() + x.sum()
        with lib.no_grad():
            a.mul_(2.0)
        return _error(y.backward), x.grad, w.grad

    ours, theirs = _both(changed)
    assert ours[0][0] is theirs[0][0] is RuntimeError
    assert "modified by an inplace operation" in ours[0][1]
    assert ours[1:] == theirs[1:] == (None, None)


def test_a_changed_saved_tensor_off_the_requested_path_does_not_raise():
    def grad_of_w(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        w = lib.tensor([2.0, 3.0], requires_grad=True)
        a = x.tanh()  # saves its output, changed below; only w's gradient is asked for
        y = (w * 2.0).sum() + (a * 1.0).sum()
        with lib.no_grad():
            a.add_(1.0)
        return lib.autograd.grad(y, [w])[0].tolist()

    ours, theirs = _both(grad_of_w)
    assert ours == pytest.approx(theirs)


def test_a_saved_output_changed_in_place_raises_as_torch():
    def changed(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        y = (x * 2.0).tanh()
        z = y.sum()
        with lib.no_grad():
            y.add_(1.0)
        return _error(z.backward), x.grad

    ours, theirs = _both(changed)
    assert ours[0][0] is theirs[0][0] is RuntimeError and ours[1] is theirs[1] is None


def test_fan_out_into_a_leaf_accumulates_in_torchs_order_with_hooks():
    def fan_out(lib):
        order = []
        x = lib.tensor([0.5, -1.5, 2.0], requires_grad=True)
        x.register_hook(lambda g: order.append(("leaf", g.tolist())))
        a = x * 2.0
        b = x.tanh()
        a.register_hook(lambda g: order.append(("a", g.tolist())))
        b.register_hook(lambda g: order.append(("b", g.tolist())))
        (a * b + x).sum().backward()
        return order, x.grad.tolist()

    ours, theirs = _both(fan_out)
    assert [name for name, _ in ours[0]] == [name for name, _ in theirs[0]]
    for (_, mine), (_, reference) in zip(ours[0], theirs[0]):
        assert mine == pytest.approx(reference)
    assert ours[1] == pytest.approx(theirs[1])


# ---- 0-d outputs (NumPy's scalars) through apply's inline output -----------------------------------
def test_a_zero_dim_chain_matches_torch():
    def chain(lib):
        x = lib.tensor(1.5, requires_grad=True)
        y = x
        for _ in range(50):
            y = y * 0.999 + 0.001
        y.backward()
        return y.dim(), y.dtype == lib.float32, y.item(), x.grad.item()

    ours, theirs = _both(chain)
    assert ours[:2] == theirs[:2] == (0, True)
    assert ours[2:] == pytest.approx(theirs[2:], rel=1e-6)
    x = chainrule.tensor(0.5, requires_grad=True)
    assert type((x * 2.0)._data).__name__ == "ndarray"


def test_a_zero_dim_saved_output_changed_in_place_raises_as_torch():
    def changed(lib):
        x = lib.tensor(0.5, requires_grad=True)
        y = (x * 2.0).tanh()  # tanh keeps its 0-d output, tied to y's version counter
        z = y * 1.0
        with lib.no_grad():
            y.add_(1.0)
        return _error(z.backward), x.grad

    ours, theirs = _both(changed)
    assert ours[0][0] is theirs[0][0] is RuntimeError and ours[1] is theirs[1] is None


# ---- tanh's plain backward on arrays: the 1 as a 0-d array of the dtype --------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tanh_array_backward_is_the_recorded_rules_numbers(dtype):
    torch = pytest.importorskip("torch")
    values = [-3.0, -0.75, 0.0, 0.3, 1.25, 2.5, 9.0]
    grads = [0.5, -1.0, 2.0, 3.0, -0.25, 1.0, 4.0]
    x = chainrule.tensor(values, dtype=getattr(chainrule, dtype), requires_grad=True)
    g = chainrule.tensor(grads, dtype=getattr(chainrule, dtype))
    (plain,) = chainrule.autograd.grad(x.tanh(), x, g)
    (recorded,) = chainrule.autograd.grad(x.tanh(), x, g, create_graph=True)
    assert plain.dtype == x.dtype and plain.tolist() == recorded.tolist()
    reference = torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=True)
    (expected,) = torch.autograd.grad(reference.tanh(), reference, torch.tensor(grads, dtype=getattr(torch, dtype)))
    assert plain.tolist() == pytest.approx(expected.tolist(), rel=1e-5)  # (the forwards' tanh differ by an ulp)


# ---- a node stores _saved_outputs only when forward saved an output ------------------------------
def test_saved_outputs_are_recorded_only_where_there_are_some():
    x = chainrule.tensor([0.5, 1.5], requires_grad=True)
    assert vars((x * 2.0).grad_fn) == {} and vars((x * x).grad_fn) == {}
    assert (x * 2.0).tanh().grad_fn._saved_outputs == (0,)


@pytest.mark.parametrize("op", ["tanh", "sigmoid", "exp"])
def test_double_backward_through_a_saved_output_matches_torch(op):
    def second(lib):
        x = lib.tensor([0.5, -1.5, 2.0], requires_grad=True)
        y = getattr(x * 1.5, op)()
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        return g.tolist(), gg.tolist()

    ours, theirs = _both(second)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-5) and ours[1] == pytest.approx(theirs[1], rel=1e-5)


# ---- the walk hands a chain link's gradient to the next node without the buffer ------------------
def _hooked_graph(lib, build, hooked=True):
    order = []
    x = lib.tensor([0.5, -1.5, 2.0, 0.25], requires_grad=True)
    def hook(name, t):
        if hooked:  # (a hooked node takes the walk's general path, an unhooked one the inline one)
            t.register_hook(lambda g: order.append((name, g.tolist())))
        return t

    out = build(lib, x, hook)
    out.sum().backward()
    return order, x.grad.tolist()


def _chain_with_branches(lib, x, hook):
    a = hook("a", x * 2.0)
    b = hook("b", a.tanh())  # a fans out to b and c: a waits until both have run
    c = hook("c", a * 3.0)
    d = hook("d", (b + c) * b)  # b is used twice; the mul saves both
    e, f = (hook(name, t) for name, t in zip("ef", d.chunk(2)))  # a two-output node mid-chain
    return hook("g", (e * e).sum() + (f * 0.5).tanh().sum())


def _same_input_twice(lib, x, hook):
    y = x
    for i in range(4):
        y = hook(f"y{i}", y * y * 0.5 + y)
    return y


@pytest.mark.parametrize("hooked", [True, False])
@pytest.mark.parametrize("build", [_chain_with_branches, _same_input_twice])
def test_hook_order_and_gradients_through_chains_match_torch(build, hooked):
    ours, theirs = _both(lambda lib: _hooked_graph(lib, build, hooked))
    assert [name for name, _ in ours[0]] == [name for name, _ in theirs[0]]
    for (_, mine), (_, reference) in zip(ours[0], theirs[0]):
        assert mine == pytest.approx(reference, rel=1e-5)
    assert ours[1] == pytest.approx(theirs[1], rel=1e-5)


def test_a_chain_under_grad_for_some_inputs_matches_torch():
    def partial(lib):
        x = lib.tensor([0.5, 1.5], requires_grad=True)
        w = lib.tensor([2.0, -1.0], requires_grad=True)
        y = x
        for _ in range(5):
            y = (y * w + 0.1).tanh()
        return [g.tolist() for g in lib.autograd.grad(y.sum(), [w, x])], x.grad, w.grad

    ours, theirs = _both(partial)
    assert ours[1:] == theirs[1:] == (None, None)
    for mine, reference in zip(ours[0], theirs[0]):
        assert mine == pytest.approx(reference, rel=1e-5)
