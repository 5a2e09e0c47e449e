"""Session 30, lane progAB (whole programs of linear algebra and classical ML): fixes found while
writing them, each checked against torch on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# multinomial without replacement asked for more samples than there are non-zero weights: torch
# takes the top keys of weights / exponential draws by topk, and the zero weights, all tied at key
# 0, come out in the order its topk (nth_element or partial_sort) leaves them, not index order
@pytest.mark.parametrize("weights", [
    [0.1, 0.0, 0.3, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 2.0],
    [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.5] + [0.0] * 199,
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multinomial_without_replacement_past_the_non_zero_weights_matches_torch(weights, dtype):
    n = len(weights)
    for seed in range(6):
        for num_samples in sorted({2, 3, n // 2, n}):
            torch.manual_seed(seed)
            expected = torch.multinomial(torch.tensor(weights, dtype=getattr(torch, dtype)), num_samples)
            chainrule.manual_seed(seed)
            got = chainrule.multinomial(chainrule.tensor(weights, dtype=getattr(chainrule, dtype)), num_samples)
            assert got.tolist() == expected.tolist(), (seed, num_samples)


def test_multinomial_without_replacement_rows_with_zero_weights_match_torch():
    weights = np.zeros((4, 9), dtype=np.float32)
    weights[0, [1, 4]] = [0.2, 0.8]
    weights[1, :] = 1.0
    weights[2, 8] = 3.0
    weights[3, [0, 2, 3]] = [1.0, 1.0, 2.0]
    for seed in range(5):
        torch.manual_seed(seed)
        expected = torch.multinomial(torch.from_numpy(weights), 6)
        chainrule.manual_seed(seed)
        got = chainrule.multinomial(chainrule.tensor(weights), 6)
        assert got.tolist() == expected.tolist(), seed


def _outcome(module, make, *args, **kwargs):
    try:
        result = make(module)(*args, **kwargs)
    except Exception as error:  # noqa: BLE001  (the error is what is compared)
        return type(error).__name__, str(error)
    return "value", result.detach().numpy().tolist(), str(result.dtype).rsplit(".", 1)[-1]


_SINGULAR = [[1.0, 1.0], [1.0, 1.0]]
_REGULAR = [[2.0, 1.0], [1.0, 3.0]]


# linalg.cond of a singular matrix is inf for the orders computed through the inverse (torch fills a
# failed inv_ex with inf); chainrule raised linalg.inv's LinAlgError. 'nuc' is torch's sum(S) * sum(1/S)
@pytest.mark.parametrize("ord", [1, -1, float("inf"), float("-inf"), "fro", "nuc", 2, -2, None, True, -1.0])
@pytest.mark.parametrize("matrix", [_SINGULAR, _REGULAR, [_REGULAR, _SINGULAR], [[0.0, 0.0], [0.0, 0.0]]])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linalg_cond_of_singular_and_regular_matrices_matches_torch(ord, matrix, dtype):
    if dtype == "float32" and matrix in (_SINGULAR, [_REGULAR, _SINGULAR]) and ord in ("nuc", 2, -2, None):
        pytest.skip("through the smallest singular value of a singular matrix: LAPACK's rounding (1e-8 or 1e-17)")
    results = [_outcome(m, lambda m: lambda: m.linalg.cond(m.tensor(matrix, dtype=getattr(m, dtype)), ord))
               for m in (torch, chainrule)]
    expected, got = results
    assert got[0] == expected[0] == "value", results
    np.testing.assert_allclose(got[1], expected[1], rtol=2e-6)
    assert got[2] == expected[2]


@pytest.mark.parametrize("shape, ord", [
    ((3, 2), "fro"), ((3, 2), "nuc"), ((3, 2), 1), ((3, 2), 1.0), ((3, 2), -1.0), ((3, 2), float("inf")),
    ((3, 2), float("-inf")), ((3, 2), True), ((3, 2), 3), ((3, 2), 3.5), ((3, 2), 1e20), ((3, 2), False),
    ((3, 2), "bad"), ((2, 2), "bad"), ((2, 2), 0), ((2, 2), float("nan")), ((0, 3), 1), ((3, 0), "fro"),
    ((0, 0), "nuc"), ((2, 0, 0), 1), ((0, 2, 2), "bad"), ((0, 0), 3), ((0, 3), "bad"), ((3,), 1),
])
def test_linalg_cond_errors_and_empty_matrices_match_torch(shape, ord):
    results = [_outcome(m, lambda m: lambda: m.linalg.cond(m.ones(shape), ord)) for m in (torch, chainrule)]
    assert results[1] == results[0]


# torch names the nodes so; its backward through the inverse orders fails (its own in-place masked_fill_
# on inv_ex's output), so those gradients are checked against the formula ||A|| ||A^-1|| by torch
@pytest.mark.parametrize("ord", [1, -1, float("inf"), "fro", "nuc", None, -2])
def test_linalg_cond_gradients_and_nodes_match_torch(ord):
    values = np.array([[2.0, 1.0, 0.5], [1.0, 3.0, -1.0], [0.3, 0.2, 1.5]])
    a = torch.tensor(values, requires_grad=True)
    cond = torch.linalg.cond(a, ord)
    node = type(cond.grad_fn).__name__
    if node == "NanToNumBackward0":
        cond = torch.linalg.matrix_norm(a, ord) * torch.linalg.matrix_norm(torch.linalg.inv(a), ord)
    cond.backward()
    ours = chainrule.tensor(values, requires_grad=True)
    our_cond = chainrule.linalg.cond(ours, ord)
    our_cond.backward()
    assert our_cond.item() == pytest.approx(cond.item(), rel=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), a.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert type(our_cond.grad_fn).__name__ == node


# linalg.lstsq reads other as torch does: a vector right-hand side only when other is 1-d or has
# input's shape without the last dim; other may have at most one dim fewer than input, and one that
# is not a vector has all its dims but the last as its batch (torch's broadcast error or its result)
@pytest.mark.parametrize("a_shape, b_shape", [
    ((2, 6, 4), (6, 3)), ((2, 6, 4), (2, 6)), ((2, 6, 4), (6,)), ((6, 4), (6,)), ((2, 6, 4), (3, 6)),
    ((2, 6, 4), (1, 6)), ((2, 6, 4), (5,)), ((6, 4), (5,)), ((2, 6, 4), (2, 5)), ((3, 2, 6, 4), (2, 6, 3)),
    ((3, 2, 6, 4), (6, 3)), ((1, 6, 4), (3, 6, 2)), ((6, 4), (2, 6, 3)), ((6, 4), (3, 6)), ((1, 6, 4), (6, 6)),
    ((1, 6, 4), (1, 6)), ((6, 6, 4), (6, 6)), ((1, 1, 6, 4), (1, 6, 6)), ((2, 1, 6, 4), (3, 6, 5)), ((6, 4), ()),
    ((4, 6), (4,)), ((2, 4, 6), (2, 4)),
])
def test_linalg_lstsq_right_hand_side_shapes_match_torch(a_shape, b_shape):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    results = []
    for m in (torch, chainrule):
        A, B = m.tensor(a, requires_grad=True), m.tensor(b, requires_grad=True)
        try:
            solution = m.linalg.lstsq(A, B).solution
        except Exception as error:  # noqa: BLE001  (the error is what is compared)
            results.append((type(error).__name__, str(error)))
            continue
        solution.sum().backward()
        results.append((solution.detach().numpy(), A.grad.numpy(), B.grad.numpy()))
    expected, got = results
    if isinstance(expected[0], str):
        assert got == expected
        return
    for ours, theirs in zip(got, expected):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-10)


# torch 2.13's Wishart.rsample tests its first Bartlett draw with support.check not negated, so a
# valid draw (nearly every one) warns "Singular sample detected." and is replaced by a second draw:
# torch's numbers are the second draw's, and chainrule returned the first
@pytest.mark.parametrize("df, sample_shape", [
    (4.0, ()), (4.0, (3,)), ([4.0, 5.0], ()), ([4.0, 5.0], (3,)), ([[3.0], [6.0]], (2,)),
])
def test_wishart_samples_match_torch(df, sample_shape):
    import warnings

    results = []
    for m in (torch, chainrule):
        covariance = m.tensor([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 1.5]], requires_grad=True)
        wishart = m.distributions.Wishart(df=m.tensor(df), covariance_matrix=covariance)
        m.manual_seed(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            drawn = wishart.sample(sample_shape)
            redrawn = wishart.rsample(sample_shape)
        try:
            redrawn.sum().backward()
            grad = covariance.grad.numpy()
        except RuntimeError as error:  # torch's redraw writes into the mask its index_put saved
            grad = str(error)
            assert m is torch
        results.append((drawn.numpy(), redrawn.detach().numpy(), grad, [str(w.message) for w in caught]))
    (drawn, redrawn, grad, caught), (our_drawn, our_redrawn, our_grad, our_caught) = results
    np.testing.assert_allclose(our_drawn, drawn, rtol=1e-5)
    np.testing.assert_allclose(our_redrawn, redrawn, rtol=1e-5)
    if isinstance(grad, str):  # torch's own failure; chainrule's redraw keeps the gradient
        assert np.isfinite(our_grad).all() and our_grad.shape == (3, 3)
    else:
        np.testing.assert_allclose(our_grad, grad, rtol=1e-4)
    assert our_caught == caught


_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64", "float16", "bfloat16",
           "float32", "float64", "complex64", "complex128", "float8_e4m3fn", "float8_e5m2"]


@pytest.mark.parametrize("dtype", _DTYPES)
def test_tensor_type_names_match_torch(dtype):
    assert chainrule.ones(1, dtype=getattr(chainrule, dtype)).type() == \
        torch.ones(1, dtype=getattr(torch, dtype)).type()


# the in-place error names a saved tensor as torch's C++ toString() does: its legacy Python name for
# eight dtypes, 'CPUBoolType', 'CPUBFloat16Type', 'CPUComplexFloatType' ... for the others
@pytest.mark.parametrize("dtype", _DTYPES)
def test_modified_in_place_error_names_the_saved_type_as_torch(dtype):
    messages = []
    for m in (torch, chainrule):
        class Scale(m.autograd.Function):
            @staticmethod
            def forward(ctx, x, w):
                ctx.save_for_backward(w)
                return x * 2

            @staticmethod
            def backward(ctx, grad):
                ctx.saved_tensors  # noqa: B018  (the access that refuses)
                return grad, None

        x = m.zeros(3, requires_grad=True)
        w = m.zeros(3, dtype=getattr(m, dtype))
        y = Scale.apply(x, w)
        w.fill_(1)
        with pytest.raises(RuntimeError) as caught:
            y.sum().backward()
        messages.append(str(caught.value))
    assert messages[1] == messages[0]


# index_put saves its index tensors: one written in place before backward refuses, as in torch, where
# chainrule read the changed index and routed the gradient to other places (or failed on its shape)
@pytest.mark.parametrize("index", [[0, 2], [True, False, True, False], 1, True])
def test_index_put_refuses_an_index_written_in_place_before_backward(index):
    messages = []
    for m in (torch, chainrule):
        x = m.zeros(4, requires_grad=True)
        y = x * 1
        i = m.tensor(index)
        y[i] = m.tensor(5.0)
        if i.dim():
            i[1] = i[0]
        else:  # a 0-d index is read as a number: torch saves no tensor of the user's, nothing refuses
            i.fill_(0)
        try:
            y.sum().backward()
            messages.append(x.grad.tolist())
        except RuntimeError as error:
            messages.append(str(error))
    assert messages[1] == messages[0]
