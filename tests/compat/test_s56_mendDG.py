"""Layout and dispatch leftovers (session 56, lane mendDG): the strides of a unary op's gradient
computed on the arrays where a size-1 dim exists, erf's rule in torch's order."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _leaf_and_view(lib, data, view):
    leaf = lib.tensor(data, requires_grad=True)
    if view == "transposed":
        return leaf, leaf.transpose(0, -1)
    return leaf, leaf


def _seeded_backward(lib, y, seed):
    if seed == "sum":  # an expanded gradient, every stride 0
        y.sum().backward()
    else:  # a gradient laid out in reversed dim order
        w = np.linspace(0.5, 1.5, y.numel(), dtype=np.float32).reshape(tuple(reversed(y.shape)))
        y.backward(lib.tensor(w).permute(*reversed(range(y.dim()))))


# (an arithmetic rule reading the saved input as it is or with a number: log; through a same-shape
# op's fresh result: atan's x * x + 1, square's 2 * x.pow(1); or the saved output: the rest)
UNARY_GRADIENT_OPS = ["exp", "tanh", "sigmoid", "sqrt", "log", "log1p", "log2", "atan", "square", "reciprocal"]
UNARY_GRADIENT_CASES = [((3, 1, 2), "transposed", "sum"), ((4, 1), "transposed", "sum"),
                        ((1, 2, 1, 3), "transposed", "sum"), ((1, 2, 1, 3), "transposed", "reversed")]


@pytest.mark.parametrize("op", UNARY_GRADIENT_OPS)
def test_a_unary_gradient_on_the_arrays_has_torchs_strides(op):
    # the plain backward's array rule kept NumPy's stride on a size-1 dim, where the recorded rule's
    # Tensor ops (and torch) sort it among the others: 115 of 5,400 leaf gradients of 15 arithmetic
    # unary ops differed in strides -> 0
    rng = np.random.default_rng(0)
    for shape, view, seed in UNARY_GRADIENT_CASES:
        data = (rng.random(shape) * 0.8 + 0.1).astype(np.float32)
        results = []
        for lib in (torch, chainrule):
            leaf, x = _leaf_and_view(lib, data, view)
            _seeded_backward(lib, getattr(lib, op)(x), seed)
            results.append((leaf.grad.stride(), leaf.grad.numpy()))
        (want_strides, want), (strides, got) = results
        assert strides == want_strides, (shape, view, seed)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_erfs_gradient_is_multiplied_in_torchs_order():
    # torch's rule is 2/sqrt(pi) * exp(-x^2) * grad; grad * 2/sqrt(pi) * exp(-x^2) rounded otherwise:
    # 7,146 of 20,000 float32 gradients differed from torch's bits -> 177
    rng = np.random.default_rng(0)
    data = rng.standard_normal(2000).astype(np.float32)
    weights = rng.standard_normal(2000).astype(np.float32)
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor(data, requires_grad=True)
        lib.erf(x).backward(lib.tensor(weights))
        grads.append(x.grad.numpy())
    assert np.count_nonzero(grads[0] != grads[1]) <= 40
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-7)


def test_pow_1s_gradient_is_a_new_tensor():
    # PowScalar's e == 1 rule handed the upstream gradient back itself: autograd.grad returned the
    # caller's grad_outputs tensor, and a leaf hook's in-place edit reached it (2 of 8 aliasing probes
    # differed from torch -> 0)
    for lib in (torch, chainrule):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        seed = lib.tensor([1.0, 2.0, 3.0])
        (grad,) = lib.autograd.grad(x ** 1, x, seed)
        assert grad is not seed
        grad.mul_(5)
        assert seed.tolist() == [1.0, 2.0, 3.0]
        x.register_hook(lambda g: g.mul_(2))
        (x ** 1).backward(seed)
        assert seed.tolist() == [1.0, 2.0, 3.0]
        assert x.grad.tolist() == [2.0, 4.0, 6.0]


@pytest.mark.parametrize("shape", [(4, 1), (1, 5), (2, 1, 3)])
def test_pow_1s_gradient_has_torchs_strides(shape):
    # torch's grad * (1 * x.pow(0)) is laid out by TensorIterator; the handed-back gradient kept the
    # upstream one's strides (6 of 15 layouts differed -> 0)
    perm = tuple(reversed(range(len(shape))))
    results = []
    for lib in (torch, chainrule):
        data = np.linspace(-1, 2, int(np.prod(shape)), dtype=np.float32).reshape(shape)
        x = lib.tensor(data).permute(*perm).detach().requires_grad_()
        y = x ** 1
        y.backward(lib.ones_like(y))
        results.append((x.grad.stride(), x.grad.tolist()))
    assert results[1] == results[0]


def test_a_hooks_kept_result_is_copied_into_the_leafs_grad():
    # the engine took over a hook's returned gradient that the hook still held, so the next backward
    # added into the user's tensor in place; torch's AccumulateGrad copies a shared gradient
    # (hook probe: 12 of 70 differing -> 0; the other 18: layouts and a view of a kept tensor)
    for lib in (torch, chainrule):
        kept = []

        def hook(g, kept=kept):
            kept.append(g * 3)
            return kept[-1]

        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        x.register_hook(hook)
        (x + 1).sum().backward()
        (x + 1).sum().backward()
        assert kept[0].tolist() == [[3.0, 3.0], [3.0, 3.0]]
        assert x.grad.tolist() == [[6.0, 6.0], [6.0, 6.0]]


@pytest.mark.parametrize("shape", [(4, 1), (3, 1, 2)])
def test_a_hooks_relaid_result_keeps_its_layout_as_the_leafs_grad(shape):
    # a result TensorIterator lays out unlike NumPy was a view over an as_strided stand-in, which the
    # engine would not take over: it copied it into the leaf's strides, where torch keeps the hook's
    # (its size-1 dims' strides obey the leaf's layout contract); 8 of 70 differing -> 0
    perm = tuple(reversed(range(len(shape))))
    results = []
    for lib in (torch, chainrule):
        x = lib.zeros(shape, requires_grad=True)

        def hook(g, lib=lib):
            weights = lib.tensor(np.full(tuple(g.shape[d] for d in perm), 2.0, np.float32)).permute(*perm)
            return weights * g

        x.register_hook(hook)
        for _ in range(2):
            x.sum().backward()
        results.append((x.grad.stride(), x.grad.tolist()))
    assert results[1] == results[0]


CAST_VIEWS = {
    "expanded": lambda lib, t: t[:, :, :1, :1, :1].expand(2, 3, 4, 5, 6),
    "expanded_channels": lambda lib, t: t[:1, :, :1, :1, :1].expand(2, 3, 1, 1, 1),
    "channels_last_3d": lambda lib, t: t.contiguous(memory_format=lib.channels_last_3d),
    "unsqueezed_transposed": lambda lib, t: t[0, 0, 0].unsqueeze(1).transpose(1, -1),
}


@pytest.mark.parametrize("view", list(CAST_VIEWS))
def test_a_cast_keeps_torchs_preserve_format(view):
    # .to(dtype) kept NumPy's cast layout: an expanded tensor's stride-0 dim innermost, a size-1 dim's
    # stride NumPy's; a channels_last_3d operand cast inside a binary op (a + b.to(int32)) showed it
    # (binary ops over channels_last_3d, contiguous, expanded and size-1 operands: 47 of 6,693 output
    # strides differing -> 0; casts of 10 views x 5 shapes x 4 dtypes: 40 of 200 -> 0)
    results = []
    for lib in (torch, chainrule):
        t = CAST_VIEWS[view](lib, lib.arange(720, dtype=lib.float32).reshape(2, 3, 4, 5, 6))
        cast = t.to(lib.int32)
        results.append((cast.stride(), t.double().stride(), cast.tolist()))
        if t.dim() == 5:
            mixed = lib.ones(2, 1, 4, 5, 6).contiguous(memory_format=lib.channels_last_3d) + t.double()
            results[-1] += (mixed.stride(),)
    assert results[1] == results[0]


def _logged_out_calls(lib, call):
    dispatch = __import__(f"{lib.__name__}.utils._python_dispatch", fromlist=["TorchDispatchMode"])
    logged = []

    class Log(dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if "out" in kwargs:
                shown = {key: str(value).rsplit(".", 1)[-1] for key, value in kwargs.items() if key != "out"}
                logged.append((str(func), len(args), shown))
            return func(*args, **kwargs)

    x = lib.arange(12, dtype=lib.float32).reshape(3, 4)
    with Log():
        call(lib, x)
    return logged


OUT_DTYPE_CALLS = {
    "sum_float64": lambda lib, x: lib.sum(x, dim=0, dtype=lib.float64, out=lib.empty(4, dtype=lib.float64)),
    "sum_float32": lambda lib, x: lib.sum(x, dim=0, dtype=lib.float32, out=lib.empty(4)),
    "sum_no_dtype": lambda lib, x: lib.sum(x, dim=0, out=lib.empty(4, dtype=lib.float64)),
    "cumsum_float64": lambda lib, x: lib.cumsum(x, 0, dtype=lib.float64, out=lib.empty(3, 4, dtype=lib.float64)),
    "cumsum_no_dtype": lambda lib, x: lib.cumsum(x, 0, out=lib.empty(3, 4, dtype=lib.float64)),
    "cumprod_float64": lambda lib, x: lib.cumprod(x, 1, dtype=lib.float64, out=lib.empty(3, 4, dtype=lib.float64)),
}


@pytest.mark.parametrize("call", list(OUT_DTYPE_CALLS))
def test_a_modes_out_call_shows_an_explicit_dtype(call):
    # _out_form hid any dtype equal to out's, the caller's too; torch hides only the one it never had
    # (a dtype the out= front takes from out). 25 out= calls of reductions and scans probed: 20 -> 12
    # differing, the rest for other reasons (mean's cast first, prod's overload, nansum's and
    # vector_norm's decompositions, logcumsumexp's dim as a keyword, a wrong out dtype not refused)
    assert _logged_out_calls(chainrule, OUT_DTYPE_CALLS[call]) == _logged_out_calls(torch, OUT_DTYPE_CALLS[call])


def test_a_complex_unary_gradient_on_the_arrays_has_torchs_strides():
    # a complex gradient runs the rule between two internal conjugations, whose NumPy copies set the
    # size-1 dims' strides their own way: 14 of 5,040 complex64 leaf gradients differed -> 0
    data = (np.linspace(0.1, 0.9, 6) + 0.3j).astype(np.complex64).reshape(1, 2, 1, 3)
    results = []
    for lib in (torch, chainrule):
        leaf = lib.tensor(data, requires_grad=True)
        y = lib.exp(leaf.transpose(0, -1))
        y.backward(lib.ones_like(y))
        results.append((leaf.grad.stride(), leaf.grad.numpy()))
    assert results[1][0] == results[0][0]
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6)
