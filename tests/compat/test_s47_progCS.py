"""Lane progCS (session 47): what the corpus programs nafnet_simple_gate, biggan_conditional_bn and
lovasz_dice_losses found, each compared with torch."""

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _square_function(lib):
    """A user Function that saves its input and reads it back by the deprecated ``saved_variables``
    (NAFNet's LayerNormFunction), recording what the backward saw."""
    seen = {}

    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            return x * x * scale

        @staticmethod
        def backward(ctx, grad_output):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                (x,) = ctx.saved_variables
            seen["warnings"] = [(w.category, str(w.message), w.filename) for w in caught]
            seen["same_as_saved_tensors"] = bool(lib.equal(x, ctx.saved_tensors[0]))
            return 2 * x * grad_output, None

    return Square, seen


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saved_variables_is_saved_tensors_with_torch_deprecation_warning(dtype):
    results = {}
    for name, lib in (("torch", torch), ("chainrule", chainrule)):
        square, seen = _square_function(lib)
        x = lib.tensor([1.5, -2.0, 0.25], dtype=getattr(lib, dtype), requires_grad=True)
        square.apply(x, 3.0).sum().backward()
        results[name] = (x.grad.tolist(), seen)
    assert results["chainrule"][0] == results["torch"][0]
    got, want = results["chainrule"][1], results["torch"][1]
    assert got["same_as_saved_tensors"] and want["same_as_saved_tensors"]
    assert [(c, m) for c, m, _ in got["warnings"]] == [(c, m) for c, m, _ in want["warnings"]]
    assert got["warnings"][0][2] == __file__  # the warning names the user's backward


def test_saved_variables_on_a_node_outside_backward():
    for lib in (torch, chainrule):
        square, _ = _square_function(lib)
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = square.apply(x, 2.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            assert lib.equal(y.grad_fn.saved_variables[0], x)
            y.sum().backward()
            with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
                y.grad_fn.saved_variables  # noqa: B018


def test_builtin_node_has_no_saved_variables():
    for lib in (torch, chainrule):
        x = lib.ones(2, requires_grad=True)
        node = (x * x).grad_fn
        assert not hasattr(node, "saved_variables")
        with pytest.raises(AttributeError, match="object has no attribute 'saved_variables'"):
            node.saved_variables  # noqa: B018


@pytest.mark.parametrize("name", ["torch.FooTensor", "FloatTensor", "foo.FloatTensor", "torch.float32", ""])
def test_type_with_an_unknown_name_raises_torchs_message(name):
    """smp's focal loss converts by ``target.type(output.type())``; a name torch does not know is
    refused in torch's exact words."""
    with pytest.raises(ValueError) as expected:
        torch.ones(2).type(name)
    with pytest.raises(ValueError) as got:
        chainrule.ones(2).type(name)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("name", ["torch.FloatTensor", "torch.DoubleTensor", "torch.LongTensor", "torch.BoolTensor",
                                  "torch.Tensor"])
def test_type_by_name_converts_as_torch(name):
    values = [1.5, -2.0, 0.0]
    want = torch.tensor(values).type(name)
    got = chainrule.tensor(values).type(name)
    assert got.type() == want.type() and got.tolist() == want.tolist()


def _scale_function(lib):
    """A user Function recording the ctx.needs_input_grad its forward sees."""
    seen = []

    class Scale(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, k):
            seen.append(tuple(ctx.needs_input_grad))
            return x * w * k

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output, grad_output, None

    return Scale, seen


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode", "grad"])
def test_needs_input_grad_in_an_unrecorded_forward_is_each_inputs_requires_grad(mode):
    """torch fills ctx.needs_input_grad from the inputs' requires_grad even when grad mode is off
    and no node is recorded."""
    results = {}
    for name, lib in (("torch", torch), ("chainrule", chainrule)):
        scale, seen = _scale_function(lib)
        x = lib.ones(2, requires_grad=True)
        w = lib.ones(2)
        context = {"no_grad": lib.no_grad, "inference_mode": lib.inference_mode,
                   "grad": lib.enable_grad}[mode]()
        with context:
            scale.apply(x, w, 2.0)
            scale.apply(w, w, 2.0)
        results[name] = seen
    assert results["chainrule"] == results["torch"]
