"""Lane mendDX (session 59): a node post-hook (``y.grad_fn.register_hook(fn)``) sees torch's None for a gradient
that never reached one of the node's outputs (an unused unbind/split/chunk piece, a user Function's unused
output), not the zeros the node's rule is handed."""
import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

_X = np.random.default_rng(59).standard_normal((4, 3)).astype(np.float32)


def _described(grads):
    return [None if g is None else g.detach().numpy().tolist() for g in grads]


def _two_outputs(lib):
    class Two(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * 2, b * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2, None

    return Two


def _hook_run(lib, case):
    x = lib.tensor(_X, requires_grad=True)
    y = lib.tensor(_X[::-1].copy(), requires_grad=True)
    seen = []

    def hook(grad_inputs, grad_outputs):
        seen.append((_described(grad_inputs), _described(grad_outputs)))

    if case == "unbind":
        pieces = lib.unbind(x * 1, 1)
        pieces[0].grad_fn.register_hook(hook)
        loss = pieces[1].sum()
    elif case == "split":
        pieces = lib.split(x * 1, 1, 0)
        pieces[0].grad_fn.register_hook(hook)
        loss = pieces[2].sum()
    elif case == "chunk":
        pieces = lib.chunk(x * 1, 2, 0)
        pieces[0].grad_fn.register_hook(hook)
        loss = pieces[-1].sum()
    else:
        a, b = _two_outputs(lib).apply(x, y)
        a.grad_fn.register_hook(hook)
        loss = a.sum() if case == "function_first" else b.sum()
    loss.backward()
    return seen, x.grad.numpy().tolist(), None if y.grad is None else y.grad.numpy().tolist()


@pytest.mark.parametrize("case", ["unbind", "split", "chunk", "function_first", "function_second"])
def test_node_hook_sees_none_for_an_undefined_gradient(case):
    mine, theirs = _hook_run(chainrule, case), _hook_run(real_torch, case)
    assert mine == theirs
    assert any(g is None for g in mine[0][0][1])  # (the case does leave an output without a gradient)


def _version_error(lib, make, write):
    a = lib.tensor(_X, requires_grad=True)
    x = make(a)
    loss = write(x)
    with pytest.raises(RuntimeError) as caught:
        loss.backward()
    return str(caught.value).split(" Hint:")[0]


_MAKERS = {"exp": lambda a: a.exp(), "sigmoid": lambda a: a.sigmoid(), "double": lambda a: a * 2}
_WRITES = {
    "copy_of_maximum": lambda x: x.copy_(x.maximum(x)).sum(),
    "copy_then_exp_": lambda x: x.copy_(x.pow(3)).exp_().sum(),
    "add_then_use": lambda x: (x.sin().sin() * x.add_(1)).sum(),
}


@pytest.mark.parametrize("write", list(_WRITES))
@pytest.mark.parametrize("make", list(_MAKERS))
def test_version_error_names_the_node_the_walk_meets_first(make, write):
    # several nodes saved a tensor that changed: torch's error is the first one its walk runs, whose
    # saved input is named by its grad_fn now (CopyBackwards), not exp's own saved output
    mine = _version_error(chainrule, _MAKERS[make], _WRITES[write])
    assert mine == _version_error(real_torch, _MAKERS[make], _WRITES[write])
