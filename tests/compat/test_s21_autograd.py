"""Autograd semantics as users drive them, found different from torch by
tools/torch_autograd_semantics_trial.py (docs/compatibility-trials.md, session 21)."""

import warnings

import chainrule as torch


def test_unbind_of_a_1d_tensor_gives_views_that_see_later_writes():
    x = torch.arange(6.0)
    first, second = x.unbind(0)[:2]
    with torch.no_grad():
        x.add_(10)
    assert second.item() == 11.0 and first.item() == 10.0
    assert second._base is x and second._version == x._version == 1
    second.data.mul_(2)
    assert x[1].item() == 22.0


def _node(t):
    return type(t.grad_fn).__name__


def test_a_write_into_a_view_is_copyslices_on_the_base_and_the_view_regenerated_as_strided():
    x = torch.randn(3, 4, requires_grad=True)
    y = x * 1
    row = y[1]
    row.add_(1)
    assert (_node(y), y.grad_fn.name(), _node(row)) == ("CopySlices", "torch::autograd::CopySlices",
                                                         "AsStridedBackward0")
    z = x * 1
    column = z[:, 0]
    z.mul_(2)  # the base written: its live view is regenerated when next read
    assert (_node(z), _node(column)) == ("MulBackward0", "AsStridedBackward0")
    (y.sum() + column.sum()).backward()
    assert x.grad.tolist() == [[3.0, 1.0, 1.0, 1.0]] * 3


def test_setitem_names_copyslices_where_torch_writes_through_a_view():
    x = torch.randn(3, 4, requires_grad=True)
    expected = [(1, "CopySlices"), ((Ellipsis, slice(None, 1)), "CopySlices"), ((0, [1, 2]), "CopySlices"),
                (None, "CopySlices"), ((slice(1, None), [0]), "CopySlices"), ((slice(None), [0]), "IndexPutBackward0"),
                ((0, 1), "CopySlices")]
    for key, name in expected:
        y = x * 1
        y[key] = 1.0
        assert _node(y) == name, key
    y = x * 1
    y[y > 0] = 1.0
    assert _node(y) == "IndexPutBackward0"


def test_setitem_on_a_leaf_names_the_view_it_writes_into():
    x = torch.randn(3, 4, requires_grad=True)
    for key, what in ((0, "a view of a leaf Variable"), ((slice(None), slice(1, 2)), "a view of a leaf Variable"),
                      (x.detach() > 0, "a leaf Variable")):
        try:
            x[key] = 2.0
        except RuntimeError as error:
            assert str(error) == f"{what} that requires grad is being used in an in-place operation."
        else:
            raise AssertionError("no error")


def test_a_retained_grad_follows_the_tensor_through_in_place_ops_and_view_regeneration():
    x = torch.arange(1.0, 7.0).reshape(2, 3).requires_grad_()
    y = x * 1
    y.retain_grad()
    y.mul_(2)
    row = y[0]
    row.retain_grad()
    row.add_(1)
    ((y * torch.arange(6.0).reshape(2, 3)).sum() + (row * 10).sum()).backward()
    # the gradients with respect to y and row as they are now, not as they were when retained (torch's)
    assert y.grad.tolist() == [[10.0, 11.0, 12.0], [3.0, 4.0, 5.0]]
    assert row.grad.tolist() == [10.0, 10.0, 10.0]
    assert x.grad.tolist() == [[20.0, 22.0, 24.0], [6.0, 8.0, 10.0]]


def test_a_write_under_no_grad_regenerates_the_views_in_the_graph():
    x = torch.randn(3, 4, requires_grad=True)
    y = x * 1
    column = y[:, 1]
    with torch.no_grad():
        y.add_(1)
    assert type(column.grad_fn).__name__ == "AsStridedBackward0"
    pieces = y.unbind(0)
    with torch.no_grad():
        pieces[0].mul_(2)
    try:
        pieces[1].sum()
    except RuntimeError as error:
        assert str(error).startswith("Output 1 of Unbind is a view and its base or another view of its base has been "
                                     "modified inplace. This view is the output of a function that returns multiple views.")
    else:
        raise AssertionError("no error")


def test_a_saved_tensor_changed_in_place_is_named_as_torch_names_it():
    x = torch.randn(3, requires_grad=True)
    y = x * 1
    z = y.sin()
    y.add_(1)
    messages = []
    for make in (lambda: z.sum(), lambda: (lambda e: (e.add_(1), e)[1])(x.exp()).sum()):
        try:
            make().backward()
        except RuntimeError as error:
            messages.append(str(error).splitlines()[0])
    w = torch.randn(2, 2, requires_grad=True)
    product = (w * w.detach()).sum()
    with torch.no_grad():
        w.mul_(2)
    try:
        product.backward()
    except RuntimeError as error:
        messages.append(str(error).splitlines()[0])
    head = "one of the variables needed for gradient computation has been modified by an inplace operation: "
    hint = (" Hint: enable anomaly detection to find the operation that failed to compute its gradient, with "
            "torch.autograd.set_detect_anomaly(True, check_nan=False).")
    assert messages == [
        head + "[torch.FloatTensor [3]], which is output 0 of Add, is at version 1; expected version 0 instead." + hint,
        head + "[torch.FloatTensor [3]], which is output 0 of Exp, is at version 1; expected version 0 instead." + hint,
        head + "[torch.FloatTensor [2, 2]] is at version 1; expected version 0 instead." + hint]


def _raised(run):
    try:
        run()
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        return type(error).__name__, str(error)
    return None


def test_a_tensor_hook_returning_another_size_type_or_no_tensor_is_refused():
    def backward_with(hook, leaf):
        x = torch.ones(3, 4, requires_grad=True)
        hooked = x if leaf else x * 1
        hooked.register_hook(hook)
        (hooked * 2).sum().backward()

    def shrink(grad):
        return grad.sum(0)

    for leaf in (True, False):
        assert _raised(lambda leaf=leaf: backward_with(shrink, leaf)) == (
            "RuntimeError", "hook 'shrink' has changed the size of value")
        assert _raised(lambda leaf=leaf: backward_with(lambda g: g.double(), leaf)) == (
            "RuntimeError", "hook '<lambda>' has changed the type of value (was torch.FloatTensor got "
                            "torch.DoubleTensor)")
        assert _raised(lambda leaf=leaf: backward_with(lambda g: 3, leaf)) == (
            "TypeError", "expected Variable, but hook returned 'int'")
    x = torch.ones(2, requires_grad=True)
    handle = x.register_hook(lambda g: g * 3)
    (x * 2).sum().backward()
    handle.remove()
    (x * 2).sum().backward()
    assert x.grad.tolist() == [8.0, 8.0]


def test_arithmetic_operators_inside_inference_mode_make_inference_tensors():
    x = torch.ones(3, requires_grad=True)
    with torch.inference_mode():
        base = torch.ones(3)
        made = [base * 2, 2 - base, base / 3, base + base, base.sin()]
    assert [t.is_inference() for t in made] == [True] * 5
    assert not (x * 2).is_inference()
    assert _raised(lambda: (x * made[0]).sum().backward())[1].startswith(
        "Inference tensors cannot be saved for backward.")
    assert _raised(lambda: made[0].add_(1))[1].startswith(
        "Inplace update to inference tensor outside InferenceMode is not allowed.")


def test_messages_users_meet_around_grad_read_as_torchs():
    x = torch.randn(3, 4, requires_grad=True)

    def assign(dtype):
        x.grad = torch.ones(3, 4, dtype=dtype)

    tail = (" The gradient must match the tensor's grad_dtype (defaults to the tensor's dtype). You can set the "
            "tensor's grad_dtype attribute with a specific dtype, or None to allow any dtype. Set grad_dtype with "
            "caution. Diverging the dtypes of a tensor and its gradient may break downstream systems that assume "
            "they match.")
    assert _raised(lambda: assign(torch.float64)) == (
        "RuntimeError", "attempting to assign a gradient with dtype 'double' to a tensor with grad_dtype 'Float'." + tail)
    assert _raised(lambda: assign(torch.int64))[1].startswith(
        "attempting to assign a gradient with dtype 'long int' to a tensor with grad_dtype 'Float'.")
    assert _raised(lambda: torch.ones(2, dtype=torch.int64).requires_grad_()) == (
        "RuntimeError", "only Tensors of floating point dtype can require gradients")
    assert _raised(lambda: x.t().view(-1))[1].splitlines()[0] == (
        "view size is not compatible with input tensor's size and stride (at least one dimension spans across two "
        "contiguous subspaces). Use .reshape(...) instead.")


def test_a_reentrant_checkpoint_is_torchs_checkpoint_function():
    from chainrule.utils.checkpoint import checkpoint

    layer = torch.nn.Linear(3, 3)
    x = torch.randn(2, 3, requires_grad=True)
    out = checkpoint(lambda t: layer(t).tanh(), x, use_reentrant=True)
    assert type(out.grad_fn).__name__ == "CheckpointFunctionBackward"
    out.sum().backward()
    expected = torch.autograd.grad(layer(x).tanh().sum(), x)[0]
    assert torch.allclose(x.grad, expected)
    frozen = torch.randn(2, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet = checkpoint(layer, frozen, use_reentrant=True)
    assert not quiet.requires_grad
    assert [str(w.message) for w in caught] == ["None of the inputs have requires_grad=True. Gradients will be None"]
    assert _raised(lambda: checkpoint(layer, x, use_reentrant=True, scale=2)) == (
        "ValueError", "Unexpected keyword arguments: scale")


def test_a_second_backward_through_freed_saved_tensors_says_what_torch_says():
    x = torch.randn(3, requires_grad=True)
    loss = (x.sin() * x).sum()
    loss.backward()
    first, second = _raised(loss.backward)[1].splitlines()
    assert first == ("Trying to backward through the graph a second time (or directly access saved tensors after they "
                     "have already been freed). Saved intermediate values of the graph are freed when you call "
                     ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
                     "graph a second time or if you need to access saved tensors after calling backward.")
    assert second == "(chainrule: the saved tensors of MulBackward0)"


def test_views_of_an_unbind_or_split_output_are_refused_in_place_as_torch_refuses_them():
    why = ("is a view and is being modified inplace. This view is the output of a function that returns multiple "
           "views. Such functions do not allow the output views to be modified inplace. You should replace the "
           "inplace operation by an out-of-place one.")
    x = torch.randn(4, 3, requires_grad=True)
    y = x * 1
    assert _raised(lambda: y.unbind(0)[0].t().add_(1)) == ("RuntimeError", "Output 0 of T " + why)
    assert _raised(lambda: y.unbind(1)[1][1:].mul_(2)) == ("RuntimeError", "Output 0 of Slice " + why)
    assert _raised(lambda: y.split(2)[1].t().add_(1)) == ("RuntimeError", "Output 0 of T " + why)
    assert _raised(lambda: x.split(2)[0][::2].div_(2)) == ("RuntimeError", "Output 0 of Slice " + why)

    def write_slice():
        y.chunk(2, 1)[0][..., :1] = -2.0

    assert _raised(write_slice) == ("RuntimeError", "Output 0 of Slice " + why)
    piece = y.chunk(2)[0][0]
    with torch.no_grad():
        piece.relu_()
    assert _raised(lambda: piece * 2)[1].startswith(
        "Output 0 of Select is a view and its base or another view of its base has been modified inplace.")
