"""s52 mendCN: max pools' edge cases against torch. A window wholly in the padding (a dilated window over a
tiny input, ceil_mode) returns the lowest value with torch's index: per dim the first position at or past 0
stepping by the dilation, even where that lies past the input (found by progEH). The max pools' dtype refusal
is the kernel's dispatch, after every check of the geometry; a 3-d pool's empty plane is named as torch's
pool3d_shape_check names it. Each expectation is computed live by torch."""

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _outcome(lib, program):
    try:
        out = program(lib)
    except Exception as error:  # noqa: BLE001 - the type and message are compared
        return type(error).__name__, str(error).replace("torch.", "").replace("chainrule.", "")
    out = out if isinstance(out, tuple) else (out,)
    return [(tuple(t.shape), str(t.dtype).split(".")[-1], repr(np.asarray(t.detach().tolist()).tolist()))
            for t in out]


def _same(program):
    expected = _outcome(real_torch, program)
    assert _outcome(chainrule, program) == expected


_EMPTY_WINDOW_CASES = [
    # (plane shape, kernel, stride, padding, dilation, ceil_mode)
    ((2, 1), 2, 1, 1, 2, True),  # progEH's: torch's indices 2 and 1
    ((1, 1), 2, 1, 1, 2, True),
    ((2, 1), 2, 2, 1, 2, True),
    ((1, 4), 2, 2, 1, 2, False),
    ((4, 1), 2, 2, 1, 2, False),
    ((3, 1), 3, 3, 1, 2, True),
    ((1,), 2, 3, 1, 2, False),
    ((2,), 2, 1, 1, 2, True),
    ((2, 2, 3), 2, 3, 1, 3, False),
    ((1, 3, 1), 2, 3, 1, 2, True),
    ((2, 1, 2), 2, 1, 1, 2, False),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32"])
@pytest.mark.parametrize("case", _EMPTY_WINDOW_CASES)
def test_a_window_wholly_in_the_padding_takes_torchs_index(case, dtype):
    plane, k, s, p, dl, ceil = case
    d = len(plane)
    x = np.arange(2 * 3 * int(np.prod(plane))).reshape((2, 3) + plane).astype(dtype) - 5

    def program(lib):
        pool = getattr(lib.nn.functional, f"max_pool{d}d")
        return pool(lib.tensor(x), k, s, p, dl, ceil_mode=ceil, return_indices=True)
    _same(program)


@pytest.mark.parametrize("case", _EMPTY_WINDOW_CASES[:5])
def test_empty_window_indices_channels_last_and_unbatched(case):
    plane, k, s, p, dl, ceil = case
    x = np.random.default_rng(0).standard_normal((2, 3) + plane).astype("float32")

    def channels_last(lib):
        t = lib.tensor(x).to(memory_format=lib.channels_last)
        values, indices = lib.nn.functional.max_pool2d(t, k, s, p, dl, ceil_mode=ceil, return_indices=True)
        # (the layout, not the strides: of a 1x1 plane's output torch's strides are (3, 1, 3, 3), chainrule's
        # (3, 1, 1, 1), both channels-last)
        return values, indices, lib.tensor([indices.is_contiguous(memory_format=lib.channels_last)])

    def unbatched(lib):
        return lib.nn.functional.max_pool2d(lib.tensor(x[0]), k, s, p, dl, ceil_mode=ceil, return_indices=True)
    _same(channels_last)
    _same(unbatched)


def test_empty_window_indices_under_a_module_and_for_a_gradient():
    """nn.MaxPool2d(return_indices=True) on input that requires grad: the forward's indices as torch's. (torch's
    backward sends an empty window's gradient to that index, across planes or past the tensor, which corrupts
    memory: chainrule drops it, as the -inf output depends on no input; no backward is compared here.)"""
    x = np.arange(4.0).reshape(1, 2, 2, 1)

    def program(lib):
        pool = lib.nn.MaxPool2d(2, 1, 1, 2, return_indices=True, ceil_mode=True)
        values, indices = pool(lib.tensor(x, requires_grad=True))
        return values, indices
    _same(program)


def test_windows_with_input_keep_their_gradient_next_to_an_empty_one():
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 1))

    def program(lib):
        t = lib.tensor(x, requires_grad=True)
        values = lib.nn.functional.max_pool2d(t, 2, 1, 1, 2, ceil_mode=False)
        finite = values.isfinite()
        lib.where(finite, values, lib.zeros_like(values)).sum().backward()
        return values, t.grad
    _same(program)


_GEOMETRY_ERRORS = [dict(kernel_size=0), dict(kernel_size=3), dict(kernel_size=3, return_indices=True),
                    dict(kernel_size=0, return_indices=True), dict(kernel_size=1, padding=1),
                    dict(kernel_size=2, stride=0), dict(kernel_size=2, dilation=0), dict(kernel_size=1)]


@pytest.mark.parametrize("dtype", ["bool", "complex64", "int32", "int64", "uint8"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("kwargs", _GEOMETRY_ERRORS)
def test_geometry_errors_come_before_the_dtype_refusal(d, dtype, kwargs):
    def program(lib):
        x = lib.zeros((2, 2) + (2,) * d, dtype=getattr(lib, dtype))
        return getattr(lib.nn.functional, f"max_pool{d}d")(x, **kwargs)
    _same(program)


@pytest.mark.parametrize("shape", [(2, 2, 0, 0, 0), (2, 0, 1, 1, 1), (2, 1, 0, 1), (0, 1, 0, 1, 1), (2, 2, 1, 1, 0),
                                   (0, 1, 49)])
@pytest.mark.parametrize("name", ["max_pool3d", "avg_pool3d"])
def test_3d_pools_name_an_empty_dim_as_torch(name, shape):
    def program(lib):
        return getattr(lib.nn.functional, name)(lib.zeros(shape), 1)
    _same(program)


def _random_pool_case(rng, d):
    plane = tuple(int(v) for v in rng.integers(1, 5, d))
    k, s, dl = (int(v) for v in rng.integers(1, 4, 3))
    p = int(rng.integers(0, k // 2 + 1))
    dtype = ["float32", "float64", "int64", "int32"][int(rng.integers(4))]
    if dtype.startswith("float"):
        x = rng.standard_normal((2, 2) + plane).astype(dtype)
        u = rng.random(x.shape)
        x[u < 0.1], x[(u > 0.1) & (u < 0.25)], x[(u > 0.25) & (u < 0.3)] = np.nan, -np.inf, np.inf
    else:
        x = rng.integers(-3, 3, (2, 2) + plane).astype(dtype)
    return x, dict(kernel_size=k, stride=s, padding=p, dilation=dl, ceil_mode=bool(rng.integers(2)),
                   return_indices=bool(rng.integers(2)))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_random_max_pools_with_nonfinite_and_integer_input(d):
    """Random tiny and odd sizes, dilation, padding, ceil_mode, NaN/±inf and integer input: values, indices and
    errors as torch's."""
    rng = np.random.default_rng(52 + d)
    for _ in range(60):
        x, kwargs = _random_pool_case(rng, d)
        _same(lambda lib, x=x, kwargs=kwargs: getattr(lib.nn.functional, f"max_pool{d}d")(lib.tensor(x), **kwargs))


# ---------------------------------------------------------------- what a TorchDispatchMode sees
from tests.compat._dispatch_checks import assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402


def _with_grad(program):
    def run(lib, a):
        a = dict(a, x3=a["x3"].detach().requires_grad_(True), img=a["img"].detach().requires_grad_(True))
        out = program(lib, a)
        (out[0] if isinstance(out, tuple) else out).sum().backward()
    return run


def _pool(d, **kwargs):
    def program(lib, a):
        return getattr(lib.nn.functional, f"max_pool{d}d")(a["x3" if d == 1 else "img"], 2, **kwargs)
    return program


# max_pool1d is torch's max_pool1d_with_indices under a mode (unsqueeze, the 2-d pool with the stride filled
# in, both outputs squeezed) and its backward unsqueeze(grad, 2); a stride given equal to the kernel is shown;
# a pool with indices, and a 3-d pool, go backward as torch's max_pool2d/3d_with_indices_backward
MODE_CASES = {
    "max_pool1d": _pool(1), "max_pool1d_stride": _pool(1, stride=1), "max_pool1d_indices": _pool(1, return_indices=True),
    "max_pool1d_module": lambda lib, a: lib.nn.MaxPool1d(2)(a["x3"]),
    "max_pool1d_with_indices": lambda lib, a: lib.max_pool1d_with_indices(a["x3"], 2),
    "max_pool2d_stride_given": _pool(2, stride=2), "max_pool2d_module": lambda lib, a: lib.nn.MaxPool2d(2)(a["img"]),
    "max_pool1d_backward": _with_grad(_pool(1)), "max_pool1d_indices_backward": _with_grad(_pool(1, return_indices=True)),
    "max_pool2d_indices_backward": _with_grad(_pool(2, return_indices=True)),
    "max_pool2d_padded_backward": _with_grad(_pool(2, padding=1, dilation=2, ceil_mode=True)),
    "max_pool3d_backward": _with_grad(_pool(3)), "max_pool3d_indices_backward": _with_grad(_pool(3, return_indices=True)),
    "max_pool3d_strided_backward": _with_grad(_pool(3, stride=1)),
}


@pytest.mark.parametrize("name", sorted(MODE_CASES))
def test_a_mode_sees_torchs_max_pool_ops(name):
    assert _logged(chainrule, MODE_CASES[name]) == _logged(real_torch, MODE_CASES[name])


@pytest.mark.parametrize("case", [
    (1, (2, 3, 7), dict()), (1, (2, 3, 7), dict(return_indices=True)), (1, (3, 7), dict(stride=1, padding=1)),
    (2, (2, 3, 5, 5), dict(return_indices=True)), (2, (2, 3, 5, 5), dict(padding=1, dilation=2, ceil_mode=True)),
    (3, (1, 2, 4, 5, 5), dict()), (3, (1, 2, 4, 5, 5), dict(return_indices=True, stride=1)),
])
def test_a_passing_mode_keeps_max_pool_values_and_gradients(case):
    d, shape, kwargs = case

    def program(lib, x):
        out = getattr(lib.nn.functional, f"max_pool{d}d")(x, 2, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        return (out * lib.arange(out.numel(), dtype=out.dtype).reshape(out.shape)).sum()
    assert_a_passing_mode_keeps(program, shape, seed=d)


# ---------------------------------------------------------------- max_unpool with those indices
@pytest.fixture
def one_torch_thread():
    """torch's unpool kernel names the last invalid index it meets: over several threads which one varies."""
    threads = real_torch.get_num_threads()
    real_torch.set_num_threads(1)
    yield
    real_torch.set_num_threads(threads)


_UNPOOL_CASES = [
    # (unpool d, input shape, indices, kernel, stride, padding, output_size, channels_last)
    (1, (1, 2, 2), [[[0, 9], [7, 1]]], 2, None, 0, None, False),
    (1, (1, 2, 2), [[[0, -9], [7, 1]]], 2, None, 0, None, False),
    (1, (2, 2), [[0, -9], [7, 1]], 2, None, 0, None, False),
    (1, (1, 1, 2), [[[9, 7]]], 2, None, 0, None, False),
    (2, (1, 2, 2, 2), [[[[99, 1], [1, 1]], [[1, 1], [1, 17]]]], 2, None, 0, None, False),
    (2, (1, 2, 2, 2), [[[[99, 1], [1, 1]], [[1, 1], [1, 17]]]], 2, None, 0, None, True),
    (2, (1, 2, 2, 2), [[[[1, 99], [1, 1]], [[17, 1], [1, 1]]]], 2, None, 0, None, True),
    (2, (1, 2, 2, 2), [[[[1, 1], [1, 99]], [[17, 1], [1, 1]]]], 2, None, 0, None, True),
    (3, (1, 2, 1, 2, 2), [[[[[-3, 1], [1, 40]]], [[[1, 1], [1, 1]]]]], 2, None, 0, None, False),
    (2, (2, 2, 1, 1), [[[[5]], [[5]]], [[[5]], [[5]]]], 3, 2, 1, (0, 1), False),  # an empty output: no check
    (2, (2, 2, 1, 1), [[[[5]], [[5]]], [[[5]], [[5]]]], 3, 2, 1, [2, 2, 0, 1], False),
    (1, (2, 2, 1), [[[5], [5]], [[5], [5]]], 3, 2, 1, (0,), False),
    (2, (2, 2, 1, 1), [[[[5]], [[5]]], [[[5]], [[5]]]], 2, 1, 0, (0, 0), False),  # shown as given
    (2, (2, 2, 1, 1), [[[[5]], [[5]]], [[[5]], [[5]]]], 2, 1, 0, [1, 0], False),
    (2, (2, 2, 1, 1), [[[[5]], [[5]]], [[[5]], [[5]]]], 2, 1, 0, (5, 2, 1, 0), False),
    (2, (2, 2, 1, 1), [[[[5]], [[5]]], [[[5]], [[5]]]], 2, 1, 0, (5, 1, 0), False),
]


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
@pytest.mark.parametrize("case", range(len(_UNPOOL_CASES)))
def test_max_unpool_errors_and_empty_outputs_as_torch(case, dtype, one_torch_thread):
    d, shape, indices, k, s, p, output_size, channels_last = _UNPOOL_CASES[case]
    x = np.random.default_rng(case).standard_normal(shape).astype(dtype)

    def program(lib):
        values, where = lib.tensor(x), lib.tensor(indices)
        if channels_last:
            values, where = (t.to(memory_format=lib.channels_last) for t in (values, where))
        return getattr(lib.nn.functional, f"max_unpool{d}d")(values, where, k, s, p, output_size=output_size)
    _same(program)


def test_max_unpool_names_a_wrong_indices_dtype_as_torch():
    def program(lib):
        return lib.nn.functional.max_unpool2d(lib.ones(1, 1, 2, 2), lib.zeros(1, 1, 2, 2, dtype=lib.int32), 2)
    _same(program)


@pytest.mark.parametrize("d", [1, 2])
def test_random_max_pool_then_unpool_and_adaptive_max_pool(d, one_torch_thread):
    """max_unpool of random max pools' values and indices (dilated ones give invalid or colliding indices),
    adaptive max pools' values and indices: as torch's, NaN/±inf and integer input included."""
    rng = np.random.default_rng(7 + d)
    for _ in range(80):
        x, kwargs = _random_pool_case(rng, d)
        kwargs["dilation"] = min(kwargs["dilation"], 2)
        k, s, p = kwargs["kernel_size"], kwargs["stride"], kwargs["padding"]
        sizes = tuple(int(v) for v in rng.integers(1, 6, d))

        def unpool(lib, x=x, kwargs=kwargs, k=k, s=s, p=p):
            F = lib.nn.functional
            values, where = getattr(F, f"max_pool{d}d")(lib.tensor(x), **dict(kwargs, return_indices=True))
            return getattr(F, f"max_unpool{d}d")(values, where, k, s, p)

        def adaptive(lib, x=x, sizes=sizes):
            return getattr(lib.nn.functional, f"adaptive_max_pool{d}d")(lib.tensor(x), sizes, return_indices=True)
        _same(unpool)
        _same(adaptive)


def _adaptive(d, size=2):
    def program(lib, a):
        return getattr(lib.nn.functional, f"adaptive_max_pool{d}d")(a["x3" if d == 1 else "img"], size,
                                                                     return_indices=True)
    return program


# adaptive max pools go backward as torch's adaptive_max_pool2d/3d_backward(grad, self, indices), not as
# chainrule's scatter; the 1-d one squeezes its indices before its values
ADAPTIVE_MODE_CASES = {
    "adaptive_max_pool1d": _adaptive(1), "adaptive_max_pool1d_backward": _with_grad(_adaptive(1)),
    "adaptive_max_pool2d_backward": _with_grad(_adaptive(2)),
    "adaptive_max_pool2d_odd_backward": _with_grad(_adaptive(2, (3, 2))),
    "adaptive_max_pool3d_backward": _with_grad(_adaptive(3)),
}


@pytest.mark.parametrize("name", sorted(ADAPTIVE_MODE_CASES))
def test_a_mode_sees_torchs_adaptive_max_pool_ops(name):
    assert _logged(chainrule, ADAPTIVE_MODE_CASES[name]) == _logged(real_torch, ADAPTIVE_MODE_CASES[name])


@pytest.mark.parametrize("case", [(1, (2, 3, 7), 3), (2, (2, 3, 5, 5), (3, 2)), (3, (1, 2, 4, 5, 5), 2)])
def test_a_passing_mode_keeps_adaptive_max_pool_values_and_gradients(case):
    d, shape, size = case

    def program(lib, x):
        out = getattr(lib.nn.functional, f"adaptive_max_pool{d}d")(x, size)
        return (out * lib.arange(out.numel(), dtype=out.dtype).reshape(out.shape)).sum()
    assert_a_passing_mode_keeps(program, shape, seed=d)
