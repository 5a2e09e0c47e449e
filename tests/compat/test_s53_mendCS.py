"""s53 mendCS: pools and reductions at their edges, against torch computed live. max_unpool1d/2d/3d keep
torch's graph on every input: one MaxUnpool{2,3}DBackward0 node for batched and unbatched input alike
(1-d as torch's 2-d kernel on a unit width, between Unsqueeze and Squeeze), recorded on a zero batch too,
and torch's kernel checks (indices' dtype before their shape, no empty non-batch dim) in torch's order."""

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _chain(out):
    """The node names from ``out``'s grad_fn along first edges, to the leaf."""
    names, node = [], out.grad_fn
    while node is not None:
        names.append(type(node).__name__)
        node = next((n for n, _ in node.next_functions if n is not None), None)
    return names


def _unpooled(lib, d, shape, channels_last=False, **kwargs):
    x = lib.ones(shape)
    if channels_last:
        x = x.to(memory_format=lib.channels_last)
    x.requires_grad_()
    indices = lib.zeros(shape, dtype=lib.int64)
    out = getattr(lib.nn.functional, f"max_unpool{d}d")(x, indices, 2, **kwargs)
    out.sum().backward()
    return (tuple(out.shape), out.stride(), out.requires_grad, _chain(out), tuple(x.grad.shape),
            x.grad.tolist())


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("batch", [None, 0, 2])
def test_max_unpool_graph_is_torchs_batched_unbatched_and_on_a_zero_batch(d, batch):
    shape = (3,) + (2,) * d if batch is None else (batch, 3) + (2,) * d
    assert _unpooled(chainrule, d, shape) == _unpooled(real_torch, d, shape)


def test_max_unpool2d_on_an_empty_channels_last_batch_writes_contiguous_as_torch():
    # (the leaf's gradient strides are left out: see the report on AccumulateGrad of an empty leaf)
    ours, torch_s = (_unpooled(lib, 2, (0, 3, 2, 2), channels_last=True) for lib in (chainrule, real_torch))
    assert ours[:4] == torch_s[:4]


def test_max_unpool2d_with_an_empty_output_plane_records_its_node():
    for lib in (chainrule, real_torch):
        x = lib.ones(2, 3, 1, 1, requires_grad=True)
        out = lib.nn.functional.max_unpool2d(x, lib.zeros(2, 3, 1, 1, dtype=lib.int64), 2, 2, 1)
        assert (tuple(out.shape), out.stride(), _chain(out)) == ((2, 3, 0, 0), (3, 1, 1, 1),
                                                                ["MaxUnpool2DBackward0", "AccumulateGrad"])


def _outcome(lib, program):
    try:
        out = program(lib)
    except Exception as error:  # noqa: BLE001 - the type and message are compared
        return type(error).__name__, str(error).replace("torch.", "").replace("chainrule.", "")
    return tuple(out.shape), str(out.dtype).split(".")[-1], out.requires_grad


_UNPOOL_EDGES = [
    (1, (2, 0, 4), "int64"), (1, (3, 0), "int64"), (1, (0, 4), "int64"),
    (2, (2, 0, 4, 4), "int64"), (2, (2, 3, 0, 4), "int64"), (2, (4, 0, 4), "int64"), (2, (0, 4, 4), "int64"),
    (3, (2, 3, 0, 4, 4), "int64"), (3, (3, 2, 2, 0), "int64"), (3, (0, 2, 2, 2, 2), "int64"),
    (2, (2, 0, 4, 4), "int32"),  # the indices' dtype is checked first
    (2, (0, 3, 2, 2), "int32"),
]


@pytest.mark.parametrize("d, shape, index_dtype", _UNPOOL_EDGES)
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_max_unpool_checks_empty_dims_and_dtypes_as_torch(d, shape, index_dtype, dtype):
    def program(lib):
        x = lib.ones(shape, dtype=getattr(lib, dtype), requires_grad=dtype == "float32")
        indices = lib.zeros(shape[:-1] + (shape[-1] + (index_dtype == "int32"),), dtype=getattr(lib, index_dtype))
        return getattr(lib.nn.functional, f"max_unpool{d}d")(x, indices, 2)

    assert _outcome(chainrule, program) == _outcome(real_torch, program)


def test_max_unpool_values_and_gradients_unchanged_on_random_indices():
    rng = np.random.default_rng(0)
    for d in (1, 2, 3):
        for shape in [(2, 3) + (3,) * d, (3,) + (3,) * d]:
            data = rng.standard_normal(shape).astype(np.float32)
            grad = rng.standard_normal(shape[:-d] + (6,) * d).astype(np.float32)
            planes = int(np.prod(shape[:-d]))  # distinct indices per plane: torch's writes race on repeats
            indices = np.stack([rng.permutation(6 ** d)[:3 ** d] for _ in range(planes)]).reshape(shape)
            results = []
            for lib in (chainrule, real_torch):
                x = lib.tensor(data, requires_grad=True)
                out = getattr(lib.nn.functional, f"max_unpool{d}d")(x, lib.tensor(indices), 2)
                out.backward(lib.tensor(grad))
                results.append((out.detach().numpy(), x.grad.numpy()))
            np.testing.assert_array_equal(results[0][0], results[1][0])
            np.testing.assert_array_equal(results[0][1], results[1][1])


# ---- pools on size-1 dims: the output's strides are torch's, size-1 dims' included (channels-last
# and contiguous outputs alike were NumPy's, whose contiguity ignores size-1 dims' strides)
def _pool_cases():
    for d, layout in ((2, "channels_last"), (3, "channels_last_3d"), (3, None), (2, None), (1, None)):
        for shape in [(1, 1) + (1,) * (d - 1) + (2,), (2, 3) + (1,) * d, (1, 3) + (1,) * (d - 1) + (2,),
                      (2, 1) + (2,) * d, (2, 3, 2) + (1,) * (d - 1)]:
            for pool in ("max_pool", "avg_pool", "adaptive_max_pool", "adaptive_avg_pool"):
                yield d, layout, shape, pool


@pytest.mark.parametrize("d, layout, shape, pool", list(_pool_cases()))
def test_pool_output_strides_on_size_one_dims_are_torchs(d, layout, shape, pool):
    def strides(lib):
        x = lib.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
        if layout is not None:
            x = x.to(memory_format=getattr(lib, layout))
        fn = getattr(lib.nn.functional, f"{pool}{d}d")
        try:
            out = fn(x, 2) if pool.startswith("adaptive") else fn(x, 2, 1, 1)
        except RuntimeError as error:  # (avg_pool3d refuses a plane smaller than its kernel, padded or not)
            return str(error)
        return tuple(out.shape), out.stride(), out.is_contiguous(), out.tolist()

    assert strides(chainrule) == strides(real_torch)


@pytest.mark.parametrize("shape, output_size, kernel", [
    ((1, 1, 1, 2, 2), (1, 1, 1), 1), ((1, 1, 2, 1, 2), (1, 1, 1), 1), ((1, 1, 2, 2, 1), (1, 1, 1), 1),
    ((1, 1, 4, 4, 4), (2, 2, 2), 3), ((1, 1, 5, 3, 3), (2, 1, 2), 3), ((1, 1, 5, 3, 5), (2, 1, 2), 3),
    ((2, 5, 5, 4), (2, 2, 2), 3), ((1, 1, 5, 5, 5), (2, 2, 2), 3),
    ((1, 1, 3, 3), (2, 2), 3), ((1, 1, 3, 3), (1, 2), 3), ((1, 1, 3, 3), (1, 1), (4, 1)), ((1, 1, 1, 2), (1, 1), 1),
    ((1, 1, 3, 3), (1, 1), 3),
])
def test_fractional_max_pool_refuses_a_window_past_the_input_as_torch(shape, output_size, kernel):
    def program(lib):
        fn = getattr(lib.nn.functional, f"fractional_max_pool{len(output_size)}d")
        x = lib.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
        samples = lib.full((1 if len(shape) == len(output_size) + 1 else shape[0], shape[-len(output_size) - 1],
                            len(output_size)), 0.5)
        return fn(x, kernel, output_size=output_size, _random_samples=samples)

    assert _outcome(chainrule, program) == _outcome(real_torch, program)


def test_softmax_rows_of_8_to_15_round_nearer_torchs():
    # torch's last-dim kernel adds a row in its vector lanes and multiplies by the sum's reciprocal:
    # replayed, 62 % of elements an ulp from torch's became 38 % (the rest is its exp_u20, NumPy's exp here)
    rng = np.random.default_rng(0)
    differing = total = 0
    for _ in range(60):
        x = (rng.standard_normal((int(rng.integers(1, 100)), int(rng.integers(8, 16)))) * 2).astype(np.float32)
        ours = chainrule.softmax(chainrule.from_numpy(x), -1).numpy()
        theirs = real_torch.softmax(real_torch.from_numpy(x), -1).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0)
        differing += int(np.count_nonzero(ours != theirs))
        total += x.size
    assert differing < 0.5 * total


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_backward_on_many_narrow_rows_keeps_numpys_row_sums_bits(dtype):
    # the narrow-row sums are taken down the transpose's columns in NumPy's pairwise order: the same bits
    from chainrule.ops.reduce import _backward_by_row_blocks, _log_softmax_backward_block

    rng = np.random.default_rng(1)
    for cols in range(1, 17):
        grad = (rng.standard_normal((3000, cols)) * 100).astype(dtype)
        softmax = rng.random((3000, cols)).astype(dtype)
        expected = grad - softmax * np.add.reduce(grad, axis=1, keepdims=True)
        np.testing.assert_array_equal(_backward_by_row_blocks(_log_softmax_backward_block, grad, softmax), expected)


def test_log_softmax_gradient_on_many_narrow_rows_is_torchs():
    rng = np.random.default_rng(2)
    for cols in (3, 7, 10, 15):
        x = rng.standard_normal((2048, cols)).astype(np.float32)
        upstream = rng.standard_normal((2048, cols)).astype(np.float32)
        grads = []
        for lib in (chainrule, real_torch):
            t = lib.tensor(x, requires_grad=True)
            lib.log_softmax(t, -1).backward(lib.tensor(upstream))
            grads.append(t.grad.numpy())
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)
