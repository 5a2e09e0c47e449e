"""Pooling ops vs torch: kernel × stride × padding × dilation × ceil_mode (max), count_include_pad and
divisor_override (avg), adaptive pools, indices equal to torch's, unpool; gradcheck; errors.

The sample-table cases (torch agreement, gradcheck, gradgradcheck) are registry entries in
``chainrule/testing/opinfo/pool.py``, run by ``test_op_db.py``; the tests here are the hand-written ones.
"""


import numpy as np
import pytest

import chainrule

from .harness import distinct, requires_torch

try:
    import torch
except ImportError:
    torch = None


def F(lib):
    # nn.functional on both sides: torch's top-level pools take no return_indices, and these tests
    # mean the functional ops
    return lib.nn.functional



def test_max_pool_routes_gradient_to_first_maximum():
    # ties: torch sends the whole gradient to the first maximum of each window
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 1.0, 5.0]]]])
    results = []
    for lib in (chainrule, torch) if torch is not None else (chainrule,):
        t = lib.tensor(x, requires_grad=True)
        y, indices = F(lib).max_pool2d(t, 2, stride=1, return_indices=True)
        y.sum().backward()
        results.append((t.grad.numpy(), indices.numpy()))
    expected = np.array([[[[0, 2, 1, 0], [0, 0, 0, 0], [2, 2, 2, 0], [0, 0, 0, 0]]]], dtype=float)
    np.testing.assert_array_equal(results[0][0], expected)
    for grad, indices in results[1:]:
        np.testing.assert_array_equal(results[0][0], grad)
        np.testing.assert_array_equal(results[0][1], indices)


def test_max_pool_nan_propagates():
    x = chainrule.tensor([[[1.0, float("nan"), 2.0, 3.0]]])
    y = chainrule.max_pool1d(x, 2)
    assert np.isnan(y.numpy()[0, 0, 0]) and y.numpy()[0, 0, 1] == 3.0


def test_indices_dtype_and_no_grad():
    x = chainrule.randn(1, 2, 4, 4, requires_grad=True)
    y, indices = chainrule.nn.functional.max_pool2d(x, 2, return_indices=True)  # (torch's top level has none)
    assert indices.dtype == chainrule.int64 and not indices.requires_grad
    assert y.grad_fn is not None and y.dtype == chainrule.float32


def test_fast_gradcheck_bigger_pools():
    x = chainrule.tensor(distinct(4, 6, 14, 13), dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: chainrule.max_pool2d(t, 3, 2, 1, ceil_mode=True), (x,),
                                        fast_mode=True)
    assert chainrule.autograd.gradgradcheck(lambda t: chainrule.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
                                            (x,), fast_mode=True)


def test_pool_functions_are_not_methods():
    for name in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_unpool2d"):
        assert not hasattr(chainrule.Tensor, name), name


ERRORS = [
    ("pad_too_big", lambda lib: F(lib).max_pool2d(lib.randn(1, 1, 4, 4), 3, padding=2),
     "pad should be at most half of effective kernel size"),
    ("output_too_small", lambda lib: F(lib).max_pool2d(lib.randn(1, 2, 2), 3),
     r"Given input size: \(1x2x2\). Calculated output size: \(1x0x0\). Output size is too small"),
    ("avg_output_too_small", lambda lib: F(lib).avg_pool2d(lib.randn(1, 2, 2), 3), "Output size is too small"),
    ("stride_zero", lambda lib: F(lib).max_pool2d(lib.randn(1, 1, 4, 4), 2, stride=0), "stride should not be zero"),
    ("divisor_zero", lambda lib: F(lib).avg_pool2d(lib.randn(1, 1, 4, 4), 2, divisor_override=0),
     "divisor must be not zero"),
]


@pytest.mark.parametrize("name,fn,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_pool_errors(name, fn, message):
    with pytest.raises(RuntimeError, match=message):
        fn(chainrule)
    if torch is not None:
        with pytest.raises(RuntimeError, match=message):
            fn(torch)


@pytest.mark.parametrize("op,x,error", [("max_pool2d", (4, 4), RuntimeError), ("max_pool1d", (4,), RuntimeError),
                                        ("adaptive_avg_pool2d", (4,), RuntimeError),
                                        # torch's avg_pool2d reads input.size(-3) before checking the rank
                                        ("avg_pool2d", (4, 4), IndexError)])
def test_pool_wrong_rank(op, x, error):
    kwargs = {"output_size": 2} if op.startswith("adaptive") else {"kernel_size": 2}
    with pytest.raises(error):
        getattr(chainrule.nn.functional, op)(chainrule.randn(*x), **kwargs)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=(3, 2), stride=1, dilation=(1, 2), ceil_mode=True)])
def test_max_pool_split_over_threads_is_bit_identical(kwargs, monkeypatch):
    # max pool and its backward run over the batch in pieces on the thread budget (CPU): one
    # piece or three must give the same values, indices and gradients, ties and NaN included
    from chainrule import _config, _parallel

    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(5, 3, 11, 10)).astype(np.float32)  # many ties
    x[1, 2, 3, 4] = np.nan
    out_shape = tuple(F(chainrule).max_pool2d(chainrule.tensor(x), **kwargs).shape)
    grad = rng.standard_normal(out_shape).astype(np.float32)
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS_PER_PIECE", 1)
    results = []
    for budget in (1, 3):
        monkeypatch.setattr(_config, "thread_budget", lambda budget=budget: budget)
        t = chainrule.tensor(x, requires_grad=True)
        y, indices = F(chainrule).max_pool2d(t, return_indices=True, **kwargs)
        y.backward(chainrule.tensor(grad))
        results.append((y.detach().numpy(), indices.numpy(), t.grad.numpy()))
    for one_piece, three_pieces in zip(*results):
        np.testing.assert_array_equal(one_piece, three_pieces)
    if torch is not None:
        t = torch.tensor(x, requires_grad=True)
        y, indices = torch.nn.functional.max_pool2d(t, return_indices=True, **kwargs)
        y.backward(torch.tensor(grad))
        np.testing.assert_array_equal(results[1][0], y.detach().numpy())
        np.testing.assert_array_equal(results[1][1], indices.numpy())
        # overlapping windows add in another order than torch's
        np.testing.assert_allclose(results[1][2], t.grad.numpy(), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- hostile values vs torch
# Without indices the backward compares the saved input with each window's max; with indices it
# scatters through the offsets the forward kept. Both must agree with torch on what real programs
# feed them: ReLU zeros (whole windows tied), repeated values, NaN (torch's index is the window's
# LAST NaN), ±inf, -0.0, and inf/NaN gradients.
HOSTILE_GEOMETRIES = [
    ("max_pool2d", dict(kernel_size=2), (3, 4, 8, 10)),
    ("max_pool2d", dict(kernel_size=2), (2, 3, 7, 9)),  # floor mode drops the odd last row/column
    ("max_pool2d", dict(kernel_size=(2, 2), stride=2), (3, 6, 5)),  # unbatched
    ("max_pool1d", dict(kernel_size=2), (2, 3, 11)),
    ("max_pool2d", dict(kernel_size=2, ceil_mode=True), (2, 3, 7, 9)),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 9, 8)),
    ("max_pool2d", dict(kernel_size=2, stride=1), (2, 3, 6, 7)),
    ("max_pool2d", dict(kernel_size=2, padding=1), (2, 3, 6, 7)),
    ("max_pool1d", dict(kernel_size=3, stride=3, dilation=2, padding=1), (2, 3, 13)),
    ("max_pool3d", dict(kernel_size=2), (1, 2, 4, 5, 6)),
]
HOSTILE_VALUES = np.array([-np.inf, -1.0, -0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, np.inf, np.nan], dtype=np.float32)


def _hostile(shape, seed, values=HOSTILE_VALUES):
    return np.random.default_rng(seed).choice(values, size=shape)


@requires_torch
@pytest.mark.parametrize("op,kwargs,shape", HOSTILE_GEOMETRIES,
                         ids=[f"{op}-{'-'.join(f'{k}{v}' for k, v in kw.items())}-{len(s)}d" for op, kw, s in
                              HOSTILE_GEOMETRIES])
@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool_matches_torch_on_ties_nan_and_inf(op, kwargs, shape, return_indices):
    for seed in range(4):
        x = _hostile(shape, seed)
        if seed == 3:  # after a ReLU: most windows all zero
            x = np.maximum(np.random.default_rng(seed).standard_normal(shape), 0).astype(np.float32)
        results = []
        for lib in (chainrule, torch):
            t = lib.tensor(x, requires_grad=True)
            out = getattr(F(lib), op)(t, return_indices=return_indices, **kwargs)
            y, indices = out if return_indices else (out, None)
            grad = _hostile(tuple(y.shape), seed + 10,
                            np.array([-2.0, 0.5, 1.0, 3.0, np.inf, -np.inf, np.nan], dtype=np.float32))
            y.backward(lib.tensor(grad))
            results.append((y.detach().numpy(), None if indices is None else indices.numpy(), t.grad.numpy()))
        (y, indices, grad), (torch_y, torch_indices, torch_grad) = results
        np.testing.assert_array_equal(y, torch_y)
        if return_indices:
            np.testing.assert_array_equal(indices, torch_indices)
        # windows that overlap sum several gradients (inf - inf is NaN on both sides): same positions
        np.testing.assert_array_equal(grad, torch_grad, err_msg=f"seed {seed}")


@requires_torch
def test_max_pool_last_nan_and_padded_minus_inf_windows_as_torch():
    # torch's kernel takes every NaN it meets (val > max || isnan(val)): the LAST NaN is the index;
    # and a window of -inf over padding points at its first input element, never at the padding
    nan, inf = float("nan"), float("inf")
    cases = [
        (np.array([[[[1.0, nan], [nan, 2.0]]]]), dict(kernel_size=2)),
        (np.array([[[1.0, nan, nan, 2.0, nan, nan]]]), dict(kernel_size=2)),
        (np.array([[[1.0, nan, nan, 2.0, nan, nan]]]), dict(kernel_size=3)),
        (np.array([[[[-inf, -inf, 1.0], [-inf, -inf, 1.0], [1.0, 1.0, 1.0]]]]), dict(kernel_size=2, padding=1)),
        (np.full((1, 1, 5, 5), -inf), dict(kernel_size=2, ceil_mode=True)),
        (np.full((1, 1, 5, 5), -inf), dict(kernel_size=3, stride=2, padding=1, dilation=1)),
    ]
    cases += [(np.array([[[[1.0, nan, 3.0], [nan, 2.0, 0.0], [nan, 0.0, 0.0]]]]), dict(output_size=1)),
              (np.array([[[1.0, nan, 3.0, nan, 2.0, 0.0, nan]]]), dict(output_size=3))]
    for x, kwargs in cases:
        op = ("adaptive_" if "output_size" in kwargs else "") + ("max_pool1d" if x.ndim == 3 else "max_pool2d")
        for return_indices in (False, True):
            results = []
            for lib in (chainrule, torch):
                t = lib.tensor(x, requires_grad=True)
                out = getattr(F(lib), op)(t, return_indices=return_indices, **kwargs)
                y = out[0] if return_indices else out
                y.sum().backward()
                results.append([o.detach().numpy() for o in (out if return_indices else (out,))] + [t.grad.numpy()])
            for ours, theirs in zip(*results):
                np.testing.assert_array_equal(ours, theirs, err_msg=f"{op} {kwargs} {x.tolist()}")


@requires_torch
@pytest.mark.parametrize("op,kwargs,shape", [("max_pool2d", dict(kernel_size=2), (2, 3, 6, 7)),
                                             ("max_pool1d", dict(kernel_size=2), (2, 3, 9)),
                                             ("max_pool2d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 7, 6))])
def test_max_pool_without_indices_double_backward_as_torch(op, kwargs, shape):
    # the gradient of the gradient reads the cotangent back at each window's first maximum
    x = np.maximum(np.random.default_rng(0).standard_normal(shape), 0)  # ties at 0
    v = np.random.default_rng(1).standard_normal(tuple(getattr(F(torch), op)(torch.tensor(x), **kwargs).shape))
    w = np.random.default_rng(2).standard_normal(shape)
    results = []
    for lib in (chainrule, torch):
        t, cotangent = lib.tensor(x, requires_grad=True), lib.tensor(v, requires_grad=True)
        (grad,) = lib.autograd.grad(getattr(F(lib), op)(t, **kwargs), t, cotangent, create_graph=True)
        (grad * lib.tensor(w)).sum().backward()
        results.append((grad.detach().numpy(), cotangent.grad.numpy()))
    for ours, theirs in zip(*results):
        # overlapping windows add in another order than torch's: within a rounding of float64
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    t = chainrule.tensor(distinct(*shape), dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradgradcheck(lambda a: getattr(chainrule, op)(a, **kwargs), (t,))


@requires_torch
def test_max_pool_without_indices_catches_an_in_place_change_of_its_input():
    # without indices the pool keeps its input for the backward, as torch does: changing it in place is an error
    for lib in (chainrule, torch):
        a = lib.randn(2, 3, 4, 4, requires_grad=True)
        h = a * 1
        y = F(lib).max_pool2d(h, 2)
        h.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


@requires_torch
@pytest.mark.parametrize("write", ["add_", "relu_", "view_add_"])
def test_max_pool_output_changed_in_place_keeps_torch_gradient(write):
    # torch saves no output of max_pool: `y = pool(x); y += pos` (a tokenizer's output) or a
    # relu_ after the pool is allowed, and the gradient still goes to the input's maxima
    x_data = distinct(2, 3, 6, 6)
    results = []
    for lib in (chainrule, torch):
        a = lib.tensor(x_data, requires_grad=True)
        y = F(lib).max_pool2d(a * 1, 3, stride=2, padding=1)
        if write == "add_":
            y += 1.5
        elif write == "relu_":
            y.sub_(0.5).relu_()
        else:
            y.flatten(2).transpose(1, 2).add_(lib.ones(3))  # a view of y, written through
        (y * y).sum().backward()
        results.append((y.detach().numpy(), a.grad.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op,shape,kwargs", [("max_pool2d", (5, 3, 11, 10), dict(kernel_size=2)),
                                             ("max_pool1d", (5, 3, 11), dict(kernel_size=2)),
                                             ("max_pool2d", (5, 3, 11, 10), dict(kernel_size=3, stride=2, padding=1))])
def test_max_pool_without_indices_split_over_threads_is_bit_identical(op, shape, kwargs, monkeypatch):
    from chainrule import _config, _parallel

    x = _hostile(shape, 0)
    grad = np.random.default_rng(1).standard_normal(tuple(getattr(chainrule, op)(chainrule.tensor(x), **kwargs).shape))
    monkeypatch.setattr(_parallel, "MIN_ELEMENTS_PER_PIECE", 1)
    results = []
    for budget in (1, 3):
        monkeypatch.setattr(_config, "thread_budget", lambda budget=budget: budget)
        t = chainrule.tensor(x, requires_grad=True)
        y = getattr(chainrule, op)(t, **kwargs)
        y.backward(chainrule.tensor(grad, dtype=chainrule.float32))
        results.append((y.detach().numpy(), t.grad.numpy()))
    for one_piece, three_pieces in zip(*results):
        np.testing.assert_array_equal(one_piece, three_pieces)


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_max_pool_without_indices_other_float_widths(dtype):
    # the backward masks the gradient bitwise at its own width
    x = _hostile((2, 3, 6, 8), 5).astype(dtype)
    grad = np.random.default_rng(6).standard_normal((2, 3, 3, 4)).astype(dtype)
    fast, general = [], []
    for return_indices, into in ((False, fast), (True, general)):
        t = chainrule.tensor(x, requires_grad=True)
        out = chainrule.nn.functional.max_pool2d(t, 2, return_indices=return_indices)
        y = out[0] if return_indices else out
        y.backward(chainrule.tensor(grad))
        into += [y.detach().numpy(), t.grad.numpy()]
        assert t.grad.dtype == getattr(chainrule, dtype)
    for a, b in zip(fast, general):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)])
@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool_on_the_standin_device(kwargs, return_indices):
    # ties, NaN and ±inf on the CuPy stand-in: the NaN rule runs unconditionally there
    from chainrule._backend import use_standin_cuda

    x = _hostile((2, 3, 6, 7), 7)
    results = []
    for device in ("cpu", "cuda"):
        with use_standin_cuda():
            t = chainrule.tensor(x, device=device, requires_grad=True)
            out = chainrule.nn.functional.max_pool2d(t, return_indices=return_indices, **kwargs)
            y = out[0] if return_indices else out
            grad = np.random.default_rng(8).standard_normal(tuple(y.shape)).astype(np.float32)
            y.backward(chainrule.tensor(grad, device=device))
            assert y.device.type == device and t.grad.device.type == device
            outputs = list(out) if return_indices else [out]
            results.append([o.detach().cpu().numpy() for o in outputs] + [t.grad.cpu().numpy()])
    for on_cpu, on_device in zip(*results):
        np.testing.assert_array_equal(on_device, on_cpu)


@requires_torch
def test_relu_cnn_training_matches_torch():
    # a whole program: conv → ReLU → MaxPool2d(2) twice, trained by SGD, on both libraries; ReLU
    # zeros tie whole windows, so every step exercises the first-maximum rule
    def train(lib):
        lib.manual_seed(0)
        nn = lib.nn
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(4, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 2 * 2, 3))
        with lib.no_grad():
            for i, p in enumerate(model.parameters()):
                p.copy_(lib.tensor(np.random.default_rng(i).standard_normal(tuple(p.shape)) * 0.3, dtype=lib.float32))
        optimizer = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        data = np.random.default_rng(99)
        losses = []
        for _ in range(4):
            images = lib.tensor(data.standard_normal((16, 1, 13, 13)), dtype=lib.float32)
            labels = lib.tensor(data.integers(0, 3, 16))
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses, [p.detach().numpy() for p in model.parameters()]

    ours, theirs = train(chainrule), train(torch)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
