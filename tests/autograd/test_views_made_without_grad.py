"""Views made under no_grad or inference_mode whose base (or another view of it, or the view
itself) is then changed in place: torch refuses to guess their graph, on the in-place op when it
is recorded, and on any later read of the view's grad_fn otherwise (a recorded op using it, is_leaf,
backward). torch 2.13 is the oracle: the same program must raise the same error (type and words),
or give the same values and gradients. Also: a view stays a plain ``Tensor`` (type, pickling)
while its graph waits to be regenerated."""

import pickle

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _start(lib):
    a = lib.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    return a, a * 2


def _mode(lib, inference):
    return lib.inference_mode() if inference else lib.no_grad()


def _case(lib, name):
    """One program; returns what it observes (values, flags, names) or raises."""
    a, h = _start(lib)
    inference = name.startswith("inference")
    with _mode(lib, inference):
        view = h[1]
    if name in ("no_grad", "inference"):  # nothing written: it requires grad, a leaf with no edge
        out = (view * 2).sum()
        out.backward()
        return view.requires_grad, view.is_leaf, view.grad is None, a.grad is None, out.requires_grad
    if name.endswith("base then use"):
        h.mul_(2)
        return (view * 2).sum().item()
    if name.endswith("base then grad_fn"):
        h.mul_(2)
        return view.grad_fn
    if name == "no_grad: base written under no_grad, then is_leaf":
        with lib.no_grad():
            h.mul_(2)
        return view.is_leaf
    if name == "no_grad: sibling then backward":
        h[0].mul_(2)
        (view * view).sum().backward()
        return a.grad.numpy()
    if name == "no_grad: view itself under no_grad, then use":
        with lib.no_grad():
            view.mul_(2)
        return (view + 1).sum().item()
    if name.endswith("view in place"):
        view.mul_(2)
        return view.tolist()
    if name.endswith("view setitem"):
        view[0] = 5.0
        return view.tolist()
    if name.endswith("view setitem by mask"):
        view[lib.tensor([True, False, True])] = 5.0
        return view.tolist()
    if name.endswith("view of it in place"):
        inner = view[0:2]
        inner.mul_(2)
        return inner.tolist()
    if name.endswith("view of it, base then grad_fn"):
        inner = view[0:2]
        h.mul_(2)
        return inner.grad_fn
    if name == "no_grad: base then used under no_grad":
        h.mul_(2)
        with lib.no_grad():
            return (view * 1).sum().item(), view.tolist()
    if name == "no_grad: base then repr":
        h.mul_(2)
        return repr(view).split("grad_fn=")[1]
    if name == "no_grad: view of a buffer, buffer joins the graph":
        buffer = lib.zeros(2, 3, dtype=lib.float64)
        with lib.no_grad():
            row = buffer[0]
        buffer.copy_(h)
        return row.requires_grad, row.grad_fn
    if name == "no_grad: view of a buffer, written with a graph value":
        buffer = lib.zeros(2, 3, dtype=lib.float64)
        with lib.no_grad():
            row = buffer[0]
        row.copy_(h[0])
        return row.grad_fn
    if name == "no_grad: view of a buffer, buffer written":
        buffer = lib.zeros(2, 3, dtype=lib.float64)
        with lib.no_grad():
            row = buffer[0]
        buffer.mul_(2)
        return row.requires_grad, row.grad_fn
    if name == "no_grad: view of a leaf, leaf stepped under no_grad":  # an optimizer's step
        with lib.no_grad():
            row = a[0]
            a.add_(1)
        return row.grad_fn
    if name == "no_grad: view made a leaf":
        with lib.no_grad():
            row = h[0].requires_grad_()
        (row * 2).sum().backward()
        return row.grad.numpy(), a.grad
    raise AssertionError(name)


_CASES = [
    "no_grad", "inference",
    "no_grad: base then use", "inference: base then use",
    "no_grad: base then grad_fn", "inference: base then grad_fn",
    "no_grad: base written under no_grad, then is_leaf",
    "no_grad: sibling then backward",
    "no_grad: view itself under no_grad, then use",
    "no_grad: view in place", "inference: view in place",
    "no_grad: view setitem", "no_grad: view setitem by mask",
    "no_grad: view of it in place", "inference: view of it in place",
    "no_grad: view of it, base then grad_fn", "inference: view of it, base then grad_fn",
    "no_grad: base then used under no_grad",
    "no_grad: base then repr",
    "no_grad: view of a buffer, buffer joins the graph",
    "no_grad: view of a buffer, written with a graph value",
    "no_grad: view of a buffer, buffer written",
    "no_grad: view of a leaf, leaf stepped under no_grad",
    "no_grad: view made a leaf",
]


def _outcome(lib, name):
    try:
        value = _case(lib, name)
    except RuntimeError as e:
        return "raises", str(e)
    return "returns", value


def _comparable(value):
    if isinstance(value, tuple):
        return tuple(_comparable(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, list, str)):
        return value
    return type(value).__name__  # a node: its name


@pytest.mark.parametrize("name", _CASES)
def test_a_view_made_without_grad_is_refused_where_torch_refuses_it(name):
    ours, theirs = _outcome(cr, name), _outcome(torch, name)
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "raises":
        assert ours[1] == theirs[1]
    else:
        assert _comparable(ours[1]) == _comparable(theirs[1])


def test_the_refusals_come_before_anything_is_written():
    a, h = _start(cr)
    with cr.no_grad():
        view = h[1]
    version = h._version
    for write in (lambda: view.mul_(2), lambda: view.__setitem__(0, 5.0), lambda: view[0:2].add_(1)):
        with pytest.raises(RuntimeError, match="created in no_grad mode and is being modified inplace"):
            write()
    assert h._version == version
    np.testing.assert_array_equal(h.detach().numpy(), 2 * np.arange(1.0, 7.0).reshape(2, 3))


@pytest.mark.parametrize("make", ["unbind", "split", "chunk"])
@pytest.mark.parametrize("write", ["piece", "base"])
def test_a_multi_output_view_made_without_grad_is_refused_as_made_without_grad(make, write):
    words = []
    for lib in (torch, cr):
        a, h = _start(lib)
        with lib.no_grad():
            pieces = h.unbind(0) if make == "unbind" else h.split(1, 0) if make == "split" else h.chunk(2, 0)
        with pytest.raises(RuntimeError) as caught:
            if write == "piece":
                pieces[1].mul_(2)
            else:
                h.mul_(2)
                pieces[1].grad_fn  # noqa: B018 - the read raises
        words.append(str(caught.value))
    assert words[0] == words[1]
    assert "A view was created in no_grad mode" in words[1]


def test_a_view_waiting_for_its_graph_is_a_plain_tensor():
    a, h = _start(cr)
    by_index, by_transpose = h[0], h.t()
    h.mul_(2)  # both views' graphs are regenerated when next read: until then nothing shows it
    for view in (by_index, by_transpose):
        assert type(view) is cr.Tensor
        copy = pickle.loads(pickle.dumps(view.detach()))
        assert type(copy) is cr.Tensor and copy.tolist() == view.tolist()
    parameter = cr.nn.Parameter(cr.ones(2, 3, dtype=cr.float64))
    through = parameter * 1
    row = through[1]
    through.add_(1)
    assert type(row) is cr.Tensor and type(parameter[0]) is cr.Tensor
    (row * row).sum().backward()
    np.testing.assert_array_equal(parameter.grad.numpy(), [[0, 0, 0], [4, 4, 4]])
    assert type(row) is cr.Tensor
