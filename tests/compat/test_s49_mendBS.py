"""Lane mendBS (session 49): adaptive max pooling through a ``__torch_dispatch__`` wrapper subclass (torch's test
LoggingTensor: unwraps, runs the op, rewraps) gives torch's values, indices and gradient. The op found its
indices on the wrapper's placeholder (zeros) before dispatch, so values, indices and gradient were silently
wrong; now one op (aten.adaptive_max_pool2d/3d, returning (values, indices) as torch's) finds them, and a
handler's run of it finds them on the real values. Plain tensors keep torch's bits."""
import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

from ._dispatch_checks import PassingMode, assert_a_handler_edit_reaches, logging_tensor  # noqa: E402

_LIBS = (real_torch, chainrule)

# (d, input shape, output size)
_CASES = {
    "1d": (1, (2, 3, 7), 3),
    "1d_unbatched": (1, (3, 7), 4),
    "2d": (2, (2, 3, 7, 6), (3, 2)),
    "2d_global": (2, (3, 7, 6), (1, 1)),
    "2d_kept_size": (2, (2, 3, 7, 6), (4, None)),
    "2d_upsampled": (2, (2, 3, 5, 5), (5, 7)),
    "3d": (3, (2, 2, 5, 6, 4), (2, 3, 2)),
    "3d_global": (3, (2, 5, 6, 4), (1, 1, 1)),
}


def _plain(t):
    return np.asarray(getattr(t, "elem", t).detach().tolist())


def _input(shape, seed=0, nan=False):
    x = np.random.default_rng(seed).standard_normal(shape)
    if nan:
        x.flat[::7] = np.nan
    return x


def _pool(lib, source, d, size, return_indices, module):
    if module:
        return getattr(lib.nn, f"AdaptiveMaxPool{d}d")(size, return_indices=return_indices)(source)
    return getattr(lib.nn.functional, f"adaptive_max_pool{d}d")(source, size, return_indices=return_indices)


@pytest.mark.parametrize("module", [False, True], ids=["functional", "module"])
@pytest.mark.parametrize("return_indices", [False, True])
@pytest.mark.parametrize("case", sorted(_CASES))
def test_adaptive_max_pool_through_a_wrapper_gives_torchs_values_indices_and_gradient(case, return_indices, module):
    d, shape, size = _CASES[case]
    x = _input(shape, seed=1)
    found = {}
    for lib, wrap in ((chainrule, False), (chainrule, True), (real_torch, True)):
        leaf = lib.tensor(x, requires_grad=True)
        source = logging_tensor(lib)[0](leaf) if wrap else leaf
        out = _pool(lib, source, d, size, return_indices, module)
        values, indices = out if return_indices else (out, None)
        weight = lib.tensor(np.random.default_rng(2).standard_normal(tuple(values.shape)))
        (grad,) = lib.autograd.grad((values * weight).sum(), [source])
        found[lib, wrap] = (type(values).__name__, None if indices is None else type(indices).__name__,
                            _plain(values), None if indices is None else _plain(indices), _plain(grad),
                            type(grad).__name__)
    plain, ours, theirs = found[chainrule, False], found[chainrule, True], found[real_torch, True]
    assert (ours[0], ours[1], ours[5]) == (theirs[0], theirs[1], theirs[5])
    assert ours[0] == "LoggingTensor"
    for i in (2, 3, 4):
        if theirs[i] is not None:
            np.testing.assert_array_equal(ours[i], theirs[i])
            np.testing.assert_array_equal(plain[i], theirs[i])


@pytest.mark.parametrize("case", sorted(_CASES))
def test_a_wrapper_with_nan_and_no_grad_gives_torchs_indices(case):
    """torch's kernel picks a window's last NaN; through the wrapper that comes from the real values too."""
    d, shape, size = _CASES[case]
    x = _input(shape, seed=3, nan=True)
    found = []
    for lib in _LIBS:
        with lib.no_grad():
            values, indices = _pool(lib, logging_tensor(lib)[0](lib.tensor(x)), d, size, True, False)
        found.append((type(indices).__name__, indices.dtype == lib.int64, _plain(values), _plain(indices)))
    assert found[1][:2] == found[0][:2] == ("LoggingTensor", True)
    np.testing.assert_array_equal(found[1][2], found[0][2])
    np.testing.assert_array_equal(found[1][3], found[0][3])


@pytest.mark.parametrize("case", sorted(_CASES))
def test_the_handler_sees_torchs_ops_for_adaptive_max_pool(case):
    """aten.adaptive_max_pool3d for a 3-d pool (was adaptive_max_pool2d), and a 1-d pool's indices squeezed."""
    d, shape, size = _CASES[case]
    logs = []
    for lib in _LIBS:
        wrapper, log = logging_tensor(lib)
        x = wrapper(lib.tensor(_input(shape), requires_grad=True))
        del log[:]
        _pool(lib, x, d, size, True, False)
        logs.append(list(log))
    assert logs[1] == logs[0]
    assert f"aten.adaptive_max_pool{max(d, 2)}d.default" in logs[1]


@pytest.mark.parametrize("d", [2, 3])
def test_a_mode_gets_torchs_values_and_indices_from_the_overload(d):
    _, shape, size = _CASES[f"{d}d"]
    x = _input(shape, seed=4)
    seen, outs = [], []
    for lib in _LIBS:
        returned = []

        class Recording(lib.utils._python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None, returned=returned):
                out = func(*args, **(kwargs or {}))
                if "adaptive_max" in str(func):
                    returned.append((str(func), type(out).__name__, [_plain(o).tolist() for o in out]))
                return out

        with Recording():
            out = _pool(lib, lib.tensor(x, requires_grad=True), d, size, True, False)
        seen.append(returned)
        outs.append([_plain(o) for o in out])
    assert seen[1] == seen[0]
    assert len(seen[1]) == 1 and seen[1][0][1] == "tuple"
    for ours, theirs in zip(outs[1], outs[0]):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("d", [2, 3])
def test_a_handler_that_changes_the_output_size_gets_torchs_pair(d):
    _, shape, size = _CASES[f"{d}d"]
    smaller = [1] * d
    assert_a_handler_edit_reaches(
        f"aten.adaptive_max_pool{d}d.default", lambda args: (args[0], smaller),
        lambda lib, x: getattr(lib.nn.functional, f"adaptive_max_pool{d}d")(x, size, return_indices=True)[1],
        shape)


@pytest.mark.parametrize("case", sorted(_CASES))
def test_a_passing_mode_keeps_adaptive_max_pool_and_its_gradient(case):
    d, shape, size = _CASES[case]
    results = []
    for mode in (PassingMode(), None):
        x = chainrule.tensor(_input(shape, seed=5), requires_grad=True)
        if mode is None:
            values, indices = _pool(chainrule, x, d, size, True, False)
        else:
            with mode:
                values, indices = _pool(chainrule, x, d, size, True, False)
        (values ** 2).sum().backward()
        results.append((values.detach().numpy(), indices.numpy(), x.grad.numpy(), values.grad_fn.name()))
    for ours, plain in zip(*results):
        np.testing.assert_array_equal(ours, plain)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", sorted(_CASES))
def test_plain_adaptive_max_pool_is_torchs_bits_layout_and_nodes(case, channels_last):
    # (the input gradient's strides for channels-last input are not torch's, before this lane as after)
    d, shape, size = _CASES[case]
    x = _input(shape, seed=6, nan=True)
    found = []
    for lib in _LIBS:
        t = lib.tensor(x, dtype=lib.float32)
        if channels_last and t.dim() in (4, 5):
            t = t.contiguous(memory_format=lib.channels_last if t.dim() == 4 else lib.channels_last_3d)
        t.requires_grad_()
        values, indices = _pool(lib, t, d, size, True, False)
        weight = lib.tensor(np.random.default_rng(7).standard_normal(tuple(values.shape)), dtype=lib.float32)
        (grad,) = lib.autograd.grad(values, t, weight)
        node = values.grad_fn
        names = []
        while node is not None:
            names.append(node.name())
            node = node.next_functions[0][0] if node.next_functions else None
        found.append((values.detach().numpy().tobytes(), values.stride(), indices.numpy().tobytes(), indices.stride(),
                      indices.requires_grad, indices.grad_fn, names, grad.numpy()))
    assert found[1][:-1] == found[0][:-1]
    # (bitwise but where windows overlap: a float32 sum of several cells' gradients in another order than torch's)
    np.testing.assert_allclose(found[1][-1], found[0][-1], rtol=1e-6, atol=1e-6)
    if case != "2d_upsampled":
        np.testing.assert_array_equal(found[1][-1], found[0][-1])


@pytest.mark.parametrize("case", ["1d", "2d", "3d_global"])
def test_adaptive_max_pool_gradcheck(case):
    d, shape, size = _CASES[case]
    x = chainrule.tensor(_input(shape, seed=8), requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: _pool(chainrule, t, d, size, False, False), (x,))
    assert chainrule.autograd.gradgradcheck(lambda t: _pool(chainrule, t, d, size, False, False), (x,))


@pytest.mark.parametrize("d", [2, 3])
def test_batched_gradient_of_adaptive_max_pool_is_torchs(d):
    _, shape, size = _CASES[f"{d}d"]
    x = _input(shape, seed=9)
    grads = []
    for lib in _LIBS:
        t = lib.tensor(x, requires_grad=True)
        values = _pool(lib, t, d, size, False, False)
        batch = lib.tensor(np.random.default_rng(10).standard_normal((3, *values.shape)))
        (grad,) = lib.autograd.grad(values, t, batch, is_grads_batched=True)
        grads.append(grad.detach().numpy())
    np.testing.assert_array_equal(grads[1], grads[0])


# ---- fractional max pooling: the same, through aten.fractional_max_pool2d/3d(self, kernel, output_size, samples)
_FRACTIONAL = {
    "2d": (2, (2, 3, 7, 6), 2, (3, 2)),
    "2d_unbatched": (2, (3, 7, 6), (2, 3), (4, 3)),
    "3d": (3, (2, 2, 5, 6, 4), 2, (2, 3, 2)),
    "3d_unbatched": (3, (2, 5, 6, 4), (2, 2, 1), (3, 3, 3)),
}


def _fractional(lib, source, case, return_indices, nan=False):
    d, shape, kernel, size = _FRACTIONAL[case]
    count = shape[0] if len(shape) == d + 2 else 1
    samples = lib.tensor(np.random.default_rng(11).random((count, shape[-d - 1], d)))
    return getattr(lib.nn.functional, f"fractional_max_pool{d}d")(source, kernel, output_size=size,
                                                                  return_indices=return_indices, _random_samples=samples)


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("return_indices", [False, True])
@pytest.mark.parametrize("case", sorted(_FRACTIONAL))
def test_fractional_max_pool_through_a_wrapper_gives_torchs_values_indices_gradient_and_ops(case, return_indices, nan):
    x = _input(_FRACTIONAL[case][1], seed=12, nan=nan)
    found = {}
    for lib, wrap in ((chainrule, False), (chainrule, True), (real_torch, True)):
        wrapper, log = logging_tensor(lib)
        source = lib.tensor(x, requires_grad=True)
        source = wrapper(source) if wrap else source
        out = _fractional(lib, source, case, return_indices)
        values, indices = out if return_indices else (out, None)
        weight = lib.tensor(np.random.default_rng(13).standard_normal(tuple(values.shape)))
        (grad,) = lib.autograd.grad((values * weight).sum(), [source])
        found[lib, wrap] = ([type(o).__name__ for o in (values, indices, grad) if o is not None],
                            [_plain(o) for o in (values, indices, grad) if o is not None],
                            # (the pooling op the handler sees; an unbatched input is unsqueezed first, torch's not)
                            [op for op in log if op.startswith("aten.fractional_max_pool") and "backward" not in op])
    plain, ours, theirs = found[chainrule, False], found[chainrule, True], found[real_torch, True]
    assert ours[0] == theirs[0] == ["LoggingTensor"] * len(theirs[0])
    assert ours[2] == theirs[2] == [f"aten.fractional_max_pool{_FRACTIONAL[case][0]}d.default"]
    for mine, wrapped, torch_wrapped in zip(plain[1], ours[1], theirs[1]):
        np.testing.assert_array_equal(wrapped, torch_wrapped)
        np.testing.assert_array_equal(mine, torch_wrapped)


@pytest.mark.parametrize("d", [2, 3])
def test_a_mode_gets_torchs_pair_from_fractional_max_pool(d):
    case = f"{d}d"
    seen = []
    for lib in _LIBS:
        returned = []

        class Recording(lib.utils._python_dispatch.TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None, returned=returned):
                out = func(*args, **(kwargs or {}))
                if "fractional" in str(func):
                    returned.append((str(func), type(out).__name__, [_plain(o).tolist() for o in out]))
                return out

        x = lib.tensor(_input(_FRACTIONAL[case][1], seed=14), requires_grad=True)
        with Recording():
            _fractional(lib, x, case, True)
        seen.append(returned)
    assert seen[1] == seen[0]
    assert len(seen[1]) == 1 and seen[1][0][1] == "tuple"


@pytest.mark.parametrize("case", ["1d", "2d", "3d"])
def test_adaptive_max_pool_of_an_empty_batch_is_torchs(case):
    """A batch of 0: the flat gather's reshape to (planes, -1) could not infer -1 with no planes (ValueError)."""
    d, shape, size = _CASES[case]
    found = []
    for lib in _LIBS:
        x = lib.zeros(0, *shape[1:], requires_grad=True)
        values, indices = _pool(lib, x, d, size, True, False)
        values.sum().backward()
        found.append((tuple(values.shape), tuple(indices.shape), indices.dtype == lib.int64, tuple(x.grad.shape)))
    assert found[1] == found[0]
