"""Session 57, lane mendDK: sparse layouts and memory formats (is_contiguous/clone/to refusals on COO,
CSR and CSC; *_like of a compressed tensor keeping its layout)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

_FORMATS = (None, "contiguous_format", "preserve_format", "channels_last", "channels_last_3d")


def _outcome(call):
    """What ``call`` gives, comparable across the two libraries: an exception's class and first line (torch's
    dispatcher list cut off), or the result's layout, dtype, requires_grad and values."""
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return type(error).__name__, str(error).split("\n")[0].split(" If you are a Facebook")[0]
    if not hasattr(result, "layout"):
        return ("value", result)
    layout = str(result.layout).split(".")[-1]
    dense = result if layout == "strided" else result.to_dense()
    return layout, str(result.dtype).split(".")[-1], result.requires_grad, dense.tolist()


def _sparse(lib, layout):
    dense = lib.tensor([[0.0, 1.0, 3.0], [2.0, 0.0, 5.0]])
    return dense.to_sparse() if layout == "coo" else getattr(dense, f"to_sparse_{layout}")()


def _format(lib, name):
    return {} if name is None else {"memory_format": getattr(lib, name)}


_METHODS = {
    "is_contiguous": lambda lib, t, kw: t.is_contiguous(**kw),
    "clone": lambda lib, t, kw: t.clone(**kw),
    "torch.clone": lambda lib, t, kw: lib.clone(t, **kw),
    "contiguous": lambda lib, t, kw: t.contiguous(**kw),
    "to_dtype": lambda lib, t, kw: t.to(lib.float64, **kw),
    "to_same": lambda lib, t, kw: t.to(lib.float32, **kw),
    "double": lambda lib, t, kw: t.double(**kw),
}


@pytest.mark.parametrize("layout", ["coo", "csr", "csc"])
@pytest.mark.parametrize("method", sorted(_METHODS))
def test_memory_format_methods_on_sparse_layouts(layout, method):
    seen = [[_outcome(lambda lib=lib, name=name: _METHODS[method](lib, _sparse(lib, layout), _format(lib, name)))
             for name in _FORMATS] for lib in (torch, chainrule)]
    assert seen[1] == seen[0]


def test_compressed_is_contiguous_refused_in_torchs_words():
    for layout, kind in (("csr", "CSR"), ("csc", "CSC")):
        with pytest.raises(RuntimeError, match=f"^Sparse {kind} tensors do not have is_contiguous$"):
            _sparse(chainrule, layout).is_contiguous()
    with pytest.raises(RuntimeError, match=r"^to\(options\): Csr only supports memory format Preserve, but got "
                                           "Contiguous instead.$"):
        _sparse(chainrule, "csr").to(chainrule.float64, memory_format=chainrule.contiguous_format)


_LIKE = {"zeros_like": (), "ones_like": (), "full_like": (2.5,), "randn_like": (), "rand_like": (), "randint_like": (3,),
         "empty_like": ()}


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("like", sorted(_LIKE))
def test_like_of_a_compressed_tensor_keeps_its_layout(layout, like):
    extras = ({}, {"dtype": "int32"}, {"layout": "strided"}, {"requires_grad": True})
    seen = []
    for lib in (torch, chainrule):
        cases = []
        for name in (None, "preserve_format", "channels_last"):
            for extra in extras:
                kw = {key: getattr(lib, value) if key in ("dtype", "layout") else value for key, value in extra.items()}

                def call(lib=lib, kw=kw, name=name):
                    lib.manual_seed(3)
                    result = getattr(lib, like)(_sparse(lib, layout), *_LIKE[like], **kw, **_format(lib, name))
                    if like == "empty_like":  # (its values are torch's uninitialised memory: only the pattern)
                        return ("pattern", str(result.layout).split(".")[-1], result._nnz(), result.requires_grad)
                    return result

                cases.append(_outcome(call))
        seen.append(cases)
    assert seen[1] == seen[0]
    if like == "randn_like":  # the samples themselves: torch's normal_ on the values, from the same seed
        assert np.array_equal(seen[1][0][3], seen[0][0][3])


def _compressed_parts(seed, layout):
    rng = np.random.default_rng(seed)
    rows, cols = (int(v) for v in rng.integers(0, 5, size=2))
    mask = rng.random((rows, cols)) < 0.5
    lines = mask if layout == "csr" else mask.T
    compressed = np.concatenate([[0], np.cumsum(lines.sum(1))]).astype(np.int64)
    return compressed, np.nonzero(lines)[1].astype(np.int64), rng.standard_normal(int(mask.sum())).astype(np.float32), \
        (rows, cols)


def _built(lib, constructor, parts, size, **kw):
    try:
        if "layout" in kw:
            kw["layout"] = None if kw["layout"] is None else getattr(lib, kw["layout"])
        args = [lib.tensor(part) for part in parts] + ([] if size is None else [size])
        result = getattr(lib, constructor)(*args, **kw)
    except Exception as error:  # noqa: BLE001 - the exception is what is compared
        return type(error).__name__, str(error)
    names = ("crow_indices", "col_indices") if result.layout is lib.sparse_csr else ("ccol_indices", "row_indices")
    return (str(result.layout).split(".")[-1], tuple(result.shape), getattr(result, names[0])().tolist(),
            getattr(result, names[1])().tolist(), result.values().tolist(), result.to_dense().tolist(),
            repr(result).replace("torch.", "").replace("chainrule.", ""))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_compressed_constructors_match_torch(seed, layout):
    parts, size = _compressed_parts(seed, layout)[:3], _compressed_parts(seed, layout)[3]
    for given in (size, None):
        for constructor, kw in ((f"sparse_{layout}_tensor", {}), ("sparse_compressed_tensor", {"layout": f"sparse_{layout}"})):
            assert _built(chainrule, constructor, parts, given, **dict(kw)) == _built(torch, constructor, parts, given,
                                                                                      **dict(kw))


_CORRUPTIONS = {
    "first compressed index": lambda c, p, v, s: (np.r_[1, c[1:]], p, v, s),
    "last compressed index": lambda c, p, v, s: (np.r_[c[:-1], c[-1] + 1], p, v, s),
    "plain index out of range": lambda c, p, v, s: (c, np.r_[p[:-1], 7], v, s),
    "negative plain index": lambda c, p, v, s: (c, np.r_[-1, p[1:]], v, s),
    "unsorted plain indices": lambda c, p, v, s: (c, p[::-1].copy(), v, s),
    "values short": lambda c, p, v, s: (c, p, v[:-1], s),
    "size of another count": lambda c, p, v, s: (c, p, v, (s[0] + 1, s[1] + 1)),
    "size of three dims": lambda c, p, v, s: (c, p, v, (*s, 2)),
    "index dtypes differ": lambda c, p, v, s: (c.astype(np.int32), p, v, s),
    "float indices": lambda c, p, v, s: (c.astype(np.float32), p.astype(np.float32), v, s),
    "line longer than the plain dim": lambda c, p, v, s: (np.r_[0, 4, 4, 4], np.r_[0, 1, 1, 1], np.ones(4, np.float32),
                                                          (3, 3)),
}


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("corruption", sorted(_CORRUPTIONS))
def test_invalid_parts_refused_in_torchs_words(layout, corruption):
    compressed, plain, values, size = _CORRUPTIONS[corruption](*_compressed_parts(5, layout))
    outcomes = [_built(lib, f"sparse_{layout}_tensor", (compressed, plain, values), size, check_invariants=True)
                for lib in (torch, chainrule)]
    assert outcomes[0][0] == "RuntimeError"
    assert outcomes[1] == outcomes[0]


def test_compressed_tensor_layout_refusals():
    parts = (np.array([0, 1, 2]), np.array([1, 0]), np.array([1.0, 2.0], np.float32))
    for layout in (None, "strided", "sparse_coo"):
        assert _built(chainrule, "sparse_compressed_tensor", parts, None, layout=layout) == \
            _built(torch, "sparse_compressed_tensor", parts, None, layout=layout)


@pytest.mark.parametrize("with_size", [True, False])
def test_csc_from_values_records_torchs_node(with_size):
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    seen = []
    for lib in (torch, chainrule):
        values = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        args = (lib.tensor([0, 1, 2, 3]), lib.tensor([1, 0, 1]), values) + (((2, 3),) if with_size else ())
        matrix = lib.sparse_csc_tensor(*args)
        node = type(matrix.grad_fn).__name__
        if with_size:
            (matrix.to_dense() * lib.tensor(weight)).sum().backward()
            seen.append((node, values.grad.tolist()))
        else:
            seen.append((node, [type(f).__name__ for f, _ in matrix.grad_fn.next_functions]))
    assert seen[1] == seen[0]


def _sampled_addmm_run(lib, case, weight):
    dense, mat1, mat2, beta, alpha, needs = case
    input = lib.tensor(dense).to_sparse_csr()
    input.requires_grad_(needs[0])
    mat1, mat2 = lib.tensor(mat1, requires_grad=needs[1]), lib.tensor(mat2, requires_grad=needs[2])
    result = lib.sparse.sampled_addmm(input, mat1, mat2, beta=beta, alpha=alpha)
    seen = [str(result.layout).split(".")[-1], result.crow_indices().tolist(), result.col_indices().tolist(),
            result.values().detach().numpy()]
    if any(needs):
        seen.append(type(result.grad_fn).__name__)
        seen.append([None if f is None else type(f).__name__ for f, _ in result.grad_fn.next_functions])
        (result.to_dense() * lib.tensor(weight)).sum().backward()
        for t in (input, mat1, mat2):
            grad = t.grad
            seen.append(None if grad is None else (str(grad.layout).split(".")[-1],
                                                   (grad if grad.layout is lib.strided else grad.to_dense()).numpy()))
    return seen


def _same(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if isinstance(b, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        elif isinstance(b, tuple):
            assert a[0] == b[0]
            np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-5)
        else:
            assert a == b


@pytest.mark.parametrize("seed", range(8))
def test_sampled_addmm_values_and_gradients(seed):
    rng = np.random.default_rng(seed)
    m, k, n = (int(v) for v in rng.integers(1, 5, size=3))
    dtype = (np.float32, np.float64)[seed % 2]
    dense = (rng.standard_normal((m, n)) * (rng.random((m, n)) < 0.6)).astype(dtype)
    beta, alpha = ((1.0, 1.0), (0.5, 2.0), (0.0, -1.5), (2, 1))[seed % 4]
    needs = ((True, True, True), (False, True, False), (True, False, True), (False, False, False))[seed // 2 % 4]
    case = (dense, rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype), beta, alpha,
            needs)
    weight = rng.standard_normal((m, n)).astype(dtype)
    _same(_sampled_addmm_run(chainrule, case, weight), _sampled_addmm_run(torch, case, weight))


def test_sampled_addmm_refusals_in_torchs_order():
    def cases(lib):
        a = lib.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse_csr()
        m1, m2 = lib.ones(2, 3), lib.ones(3, 2)
        return [(a.to_dense(), m1, m2), (a.to_sparse(), m1, m2), (a.to_sparse_csc(), m1, m2.double()),
                (a, m1, m2.double()), (a.double(), m1, m2), (a.int(), m1.int(), m2.int()), (a, m1[0].double(), m2),
                (a, m1, lib.tensor(1.0)), (a, lib.ones(2, 2, 3), m2), (a, lib.ones(3, 2), lib.ones(3, 2)),
                (a, lib.ones(3, 3), lib.ones(3, 2)), (a, m1, lib.ones(3, 3))]

    def outcome(lib, args):
        try:
            lib.sparse.sampled_addmm(*args)
        except Exception as error:  # noqa: BLE001 - the exception is what is compared
            return type(error).__name__, str(error).split("\n")[0].split(" If you are a Facebook")[0]
        return None

    assert [outcome(chainrule, args) for args in cases(chainrule)] == [outcome(torch, args) for args in cases(torch)]


def _graph(fn, depth=5):
    if fn is None or depth == 0:
        return None
    return type(fn).__name__, tuple(_graph(f, depth - 1) for f, _ in fn.next_functions)


def _sparse_origin(lib, dense, origin):
    if origin == "leaf":
        leaf = lib.tensor(dense).to_sparse().requires_grad_()
        return leaf, leaf
    if origin == "to_sparse":
        leaf = lib.tensor(dense, requires_grad=True)
        return leaf, leaf.to_sparse()
    if origin == "hybrid":
        leaf = lib.tensor(dense).to_sparse(1).requires_grad_()
        return leaf, leaf
    leaf = lib.sparse_coo_tensor(lib.tensor([[0, 0, 1], [0, 0, 2]]), lib.tensor([1.0, 2.0, 3.0]), (2, 3)).requires_grad_()
    return leaf, leaf


_SPARSE_CALLS = {
    "sum": lambda lib, x: lib.sparse.sum(x),
    "sum dtype": lambda lib, x: lib.sparse.sum(x, dtype=lib.float64),
    "sum 0": lambda lib, x: lib.sparse.sum(x, 0),
    "sum 1 dtype": lambda lib, x: lib.sparse.sum(x, 1, dtype=lib.float64),
    "sum (0, 1)": lambda lib, x: lib.sparse.sum(x, (0, 1)),
    "softmax 1": lambda lib, x: lib.sparse.softmax(x, 1),
    "softmax 0 dtype": lambda lib, x: lib.sparse.softmax(x, 0, dtype=lib.float64),
    "log_softmax 1": lambda lib, x: lib.sparse.log_softmax(x, 1),
    "to dtype": lambda lib, x: x.to(lib.float64),
}


@pytest.mark.parametrize("origin", ["leaf", "to_sparse", "hybrid", "uncoalesced"])
def test_sparse_sum_and_softmax_record_torchs_graph_and_gradient(origin):
    dense = np.array([[1.0, 0.0, 2.0], [0.5, 0.0, -1.5]], np.float32)
    weight = np.array([[-1.0, 0.5, 2.0], [1.0, 3.0, -2.0]])
    seen = []
    for lib in (torch, chainrule):
        cases = []
        for name in sorted(_SPARSE_CALLS):
            leaf, x = _sparse_origin(lib, dense, origin)
            result = _SPARSE_CALLS[name](lib, x)
            graph = _graph(result.grad_fn)
            out = result.to_dense() if result.layout is not lib.strided else result
            (out * lib.tensor(weight[tuple(slice(0, n) for n in out.shape)] if out.dim() == 2 else weight[0, :out.numel()]
                              .reshape(tuple(out.shape)), dtype=out.dtype)).sum().backward()
            grad = leaf.grad
            flag = grad.is_coalesced() if grad.layout is lib.sparse_coo else None
            values = (grad.to_dense() if grad.layout is not lib.strided else grad).numpy().astype(np.float64)
            cases.append((name, graph, str(result.layout).split(".")[-1], flag, values))
        seen.append(cases)
    for ours, theirs in zip(*reversed(seen)):
        assert ours[:4] == theirs[:4]
        np.testing.assert_allclose(ours[4], theirs[4], rtol=1e-5, atol=1e-6)


def test_sparse_softmax_gradient_over_a_negative_dim_is_the_dims():
    # torch 2.13's sparse softmax backward disagrees with its own forward for a negative dim (its gradient over
    # dim=-1 is not the one over dim=1, nor the dense masked softmax's); chainrule's is the same for both
    grads = []
    for dim in (1, -1):
        leaf = chainrule.tensor([[1.0, 0.0, 2.0], [0.5, 0.0, 0.0]]).to_sparse().requires_grad_()
        (chainrule.sparse.softmax(leaf, dim).to_dense() * chainrule.tensor([[-1.0, 0.0, 1.0]])).sum().backward()
        grads.append(leaf.grad.to_dense().numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
    p = np.exp(1.0) / (np.exp(1.0) + np.exp(2.0))
    np.testing.assert_allclose(grads[0][0], [-2 * p * (1 - p), 0.0, 2 * p * (1 - p)], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float16", "int64", "complex64"])
def test_sparse_to_records_one_to_copy_node(dtype):
    seen = []
    for lib in (torch, chainrule):
        leaf = lib.tensor([[1.0, 0.0, 2.0], [0.5, 0.0, 0.0]]).to_sparse().requires_grad_()
        result = leaf.to(getattr(lib, dtype))
        graph = _graph(result.grad_fn)
        if result.requires_grad:
            dense = result.to_dense()
            (dense.real if dense.dtype.is_complex else dense).double().sum().backward()
        grad = leaf.grad
        seen.append((graph, result.requires_grad, None if grad is None else (grad.is_coalesced(), grad.to_dense().tolist())))
    assert seen[1] == seen[0]


@pytest.mark.parametrize("origin", ["leaf", "to_sparse", "hybrid"])
def test_tensor_sum_over_dims_of_a_sparse_tensor_records_sum_backward1(origin):
    dense = np.array([[1.0, 0.0, 2.0], [0.5, 0.0, -3.0]], np.float32)
    seen = []
    for lib in (torch, chainrule):
        cases = []
        for dim in (0, (0, 1), -1):
            leaf = lib.tensor(dense, requires_grad=origin == "to_sparse")
            x = leaf.to_sparse() if origin == "to_sparse" else leaf.to_sparse(1 if origin == "hybrid" else 2)
            if origin != "to_sparse":
                leaf = x.requires_grad_()
            result = x.sum(dim)
            names = type(result.grad_fn).__name__, [type(f).__name__ for f, _ in result.grad_fn.next_functions]
            try:
                (result.to_dense() if result.layout is not lib.strided else result).sum().backward()
            except RuntimeError as error:
                cases.append((names, str(error)))
                continue
            grad = leaf.grad
            cases.append((names, str(grad.layout).split(".")[-1], (grad.to_dense() if grad.is_sparse else grad).tolist()))
        seen.append(cases)
    assert seen[1] == seen[0]
