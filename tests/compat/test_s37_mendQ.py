"""Speed-ups of lane mendQ that keep chainrule's bits, each compared with torch 2.13 itself.

* ``torch.einsum`` of one operand (``'ij->i'``, ``'ii->'``) applies its diagonal, permute and sum
  nodes directly from a plan cached per equation and shape, instead of through the public
  functions: the same values, views, nodes and saved attributes as before, which are torch's.
* ``torch.renorm``'s 2-norm backward divides by the norms directly when none is zero and widens
  the gradient once: the same bits, which are torch's for float32.
* The gradient of a read by one integer vector after whole dims (``x[:, :, rows]``, each of
  interpolate's taps) adds each row's repeats in index order in one pass per repeat, where
  np.add.at added them one element at a time (gradients of 16,384 elements or more, rows
  repeated at most 16 times): the same bits as np.add.at.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule._sum_order import sum_dims

torch = pytest.importorskip("torch")


def _walk(fn) -> list:
    """Each node down the first inputs to the leaf: its name and the saved attributes torch names."""
    steps = []
    while fn is not None:
        saved = {}
        for attribute in ("_saved_dims", "_saved_dim", "_saved_keepdim", "_saved_dim1", "_saved_dim2",
                          "_saved_offset", "_saved_self_sym_sizes"):
            if hasattr(fn, attribute):
                value = getattr(fn, attribute)
                saved[attribute] = tuple(value) if isinstance(value, (tuple, list)) else value
        steps.append((fn.name(), saved))
        inputs = [node for node, _ in fn.next_functions if node is not None]
        fn = inputs[0] if inputs else None
    return steps


def _operand(shape, dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * 10
    if dtype == "bool":
        return values > 0
    if dtype == "int64":
        return values.astype(np.int64)
    if dtype == "complex64":
        return (values + 1j * rng.standard_normal(shape)).astype(np.complex64)
    return values.astype(dtype)


def _reference_sum(array: np.ndarray, equation: str) -> np.ndarray:
    """What chainrule's steps compute, in NumPy: each repeated label's diagonal, the output's dims
    then the summed ones, summed by add.reduce over the trailing dims (int64 for integers, float32
    for float16, rounded back)."""
    labels, output = equation.split("->")
    seen = []
    for label in labels:
        if label in seen:
            first = seen.index(label)
            array = np.moveaxis(np.diagonal(array, 0, first, len(seen)), -1, first)
        else:
            seen.append(label)
    summed = [label for label in seen if label not in output]
    array = array.transpose([seen.index(label) for label in list(output) + summed])
    dims = tuple(range(len(output), array.ndim))
    if not dims:
        return array
    if array.dtype == np.float16:
        return np.add.reduce(array, dims, np.float32).astype(np.float16)
    if array.dtype in (np.float32, np.float64):  # chainrule's sum: torch's order where it is replayed (_sum_order)
        replayed = sum_dims(array, dims, False)
        if replayed is not None:
            return replayed
    return np.add.reduce(array, dims, np.int64 if array.dtype.kind in "biu" else None)


# the summing cases measured (16x32x64, 32x64x64, 256x256) and smaller ones of each kind
SUMS = [("ij->i", (256, 256)), ("ijk->ik", (16, 32, 64)), ("bij->b", (32, 64, 64)), ("ii->", (256, 256)),
        ("ij->", (5, 7)), ("ij->j", (5, 7)), ("ijk->ki", (2, 3, 4)), ("iij->j", (3, 3, 2)), ("iijj->ij", (2, 2, 3, 3)),
        ("iijj->", (2, 2, 3, 3)), ("bii->bi", (2, 3, 3)), ("ijkl->lj", (2, 3, 4, 5)), ("ij->i", (257, 129)),
        ("ij->ji", (3, 4)), ("i->", (9,))]
DTYPES = ["float32", "float64", "float16", "complex64", "int64", "bool"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("equation,shape", SUMS, ids=[f"{e}-{'x'.join(map(str, s))}" for e, s in SUMS])
def test_one_operand_einsum_keeps_its_bits_views_and_torchs_graph(equation, shape, dtype):
    array = _operand(shape, dtype)
    differentiable = dtype in ("float32", "float64", "complex64")
    t = torch.tensor(array, requires_grad=differentiable)
    c = chainrule.tensor(array, requires_grad=differentiable)
    expected, got = torch.einsum(equation, t), chainrule.einsum(equation, c)

    reference = _reference_sum(array, equation)
    assert got.detach().numpy().tobytes() == np.ascontiguousarray(reference).tobytes()
    assert str(got.dtype) == str(expected.dtype).replace("torch", "chainrule")
    assert tuple(got.shape) == tuple(expected.shape)
    assert got.stride() == expected.stride()
    assert (got._base is c) == (expected._base is t)
    if dtype in ("int64", "bool"):
        assert np.array_equal(got.numpy(), expected.numpy())
    else:
        # torch's sums add in another order: the same values to a few ulps
        tolerance = {"float16": 1e-2, "float32": 1e-5, "complex64": 1e-5, "float64": 1e-12}[dtype]
        np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=tolerance,
                                   atol=tolerance * np.abs(array).sum(dtype=np.float64))
    if not differentiable:
        assert got.grad_fn is None and expected.grad_fn is None
        return
    assert _walk(got.grad_fn) == _walk(expected.grad_fn)
    upstream = _operand(tuple(expected.shape), dtype, seed=1)
    expected.backward(torch.tensor(upstream))
    got.backward(chainrule.tensor(upstream))
    # the gradient is the upstream copied out (and onto diagonals): the same bits as torch's
    assert c.grad.numpy().tobytes() == t.grad.numpy().tobytes()
    assert c.grad.stride() == t.grad.stride()


def test_one_operand_einsum_permutation_is_a_view_a_write_reaches():
    array = _operand((2, 3, 4), "float32")
    t, c = torch.tensor(array), chainrule.tensor(array)
    expected, got = torch.einsum("ijk->kij", t), chainrule.einsum("ijk->kij", c)
    assert got._base is c and expected._base is t
    expected[1, 0, 2] = 5.0
    got[1, 0, 2] = 5.0
    assert c.numpy().tobytes() == t.numpy().tobytes()
    assert c._version == t._version


@pytest.mark.parametrize("equation,shape", [("ij->k", (2, 3)), ("i->i", (2, 3)), ("ij->ii", (2, 3)),
                                            ("i.j", (2, 3)), ("ii->i", (2, 3))])
def test_one_operand_einsum_refuses_each_time_as_torch(equation, shape):
    # the cached plan caches no refusal: a second call is refused again, in torch's words
    array = _operand(shape, "float32")
    with pytest.raises(RuntimeError) as expected:
        torch.einsum(equation, torch.tensor(array))
    for _ in range(2):
        with pytest.raises(RuntimeError) as got:
            chainrule.einsum(equation, chainrule.tensor(array))
        assert str(got.value) == str(expected.value)


def _einsum_arguments(library):
    x, y = library.ones(2, 3), library.ones(3, 4)
    return [(5, x, y), (b"ij,jk->ik", x, y), (None, [x, y]), (5, 3), (b"ij", x), ("ij", 3), (1.5, x),
            (b"ij,jk", [x, y]), (["ij->i"], x), ("ij,jk", x, "a"), ("ij,jk", [x, None])]


@pytest.mark.parametrize("case", range(len(_einsum_arguments(chainrule))))
def test_einsum_reads_the_equation_and_operands_as_torchs_parser(case):
    # torch's parser takes bytes for the str and refuses any other equation, before the operands
    expected_arguments, got_arguments = _einsum_arguments(torch)[case], _einsum_arguments(chainrule)[case]
    try:
        expected = torch.einsum(*expected_arguments)
    except TypeError as error:
        with pytest.raises(TypeError) as got:
            chainrule.einsum(*got_arguments)
        assert str(got.value) == str(error)
        return
    got = chainrule.einsum(*got_arguments)
    assert got.numpy().tobytes() == expected.numpy().tobytes()
    assert tuple(got.shape) == tuple(expected.shape)


RENORM_SHAPES = [((64, 32), 0), ((64, 32), 1), ((256, 256), 0), ((3, 5), 1), ((32, 16, 8), 1), ((600, 40), 0),
                 ((5, 4000), 1)]


@pytest.mark.parametrize("maxnorm", [0.5, 1.0, 5.0, 1e9])
@pytest.mark.parametrize("shape,dim", RENORM_SHAPES, ids=[f"{'x'.join(map(str, s))}-dim{d}" for s, d in RENORM_SHAPES])
@pytest.mark.parametrize("zero_slice", [False, True])
def test_renorm_two_norm_gradient_keeps_torchs_float32_bits(shape, dim, maxnorm, zero_slice):
    rng = np.random.default_rng(7)
    a = rng.standard_normal(shape).astype(np.float32)
    index = [slice(None)] * len(shape)
    index[dim] = 2 % shape[dim]
    a[tuple(index)] *= 1e-3  # a slice under any maxnorm here: its gradient passes unscaled
    if zero_slice:
        index[dim] = 1
        a[tuple(index)] = 0.0  # a zero norm: no gradient through the norm
    g = rng.standard_normal(shape).astype(np.float32)
    t, c = torch.tensor(a, requires_grad=True), chainrule.tensor(a, requires_grad=True)
    expected, got = torch.renorm(t, 2, dim, maxnorm), chainrule.renorm(c, 2, dim, maxnorm)
    assert got.grad_fn.name() == expected.grad_fn.name()
    expected.backward(torch.tensor(g))
    got.backward(chainrule.tensor(g))
    assert got.detach().numpy().tobytes() == expected.detach().numpy().tobytes()
    assert c.grad.numpy().tobytes() == t.grad.numpy().tobytes()
    assert c.grad.dtype == chainrule.float32


@pytest.mark.parametrize("shape,dim", RENORM_SHAPES[:4], ids=[f"{'x'.join(map(str, s))}-dim{d}" for s, d in RENORM_SHAPES[:4]])
def test_renorm_two_norm_gradient_in_float64_is_torchs_to_an_ulp(shape, dim):
    # torch adds float64 norms in its own order: the same gradient within an ulp or two
    rng = np.random.default_rng(8)
    a, g = rng.standard_normal(shape), rng.standard_normal(shape)
    index = [slice(None)] * len(shape)
    index[dim] = 1
    a[tuple(index)] = 0.0
    t, c = torch.tensor(a, requires_grad=True), chainrule.tensor(a, requires_grad=True)
    torch.renorm(t, 2, dim, 1.0).backward(torch.tensor(g))
    chainrule.renorm(c, 2, dim, 1.0).backward(chainrule.tensor(g))
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-14, atol=1e-15)


LATER_ROWS = [((3, 4, 5), 2, [0, 0, 1, 4, 4, 4, -1, 2]), ((3, 4, 5), 1, [3, 3, 0, -4, 1]), ((2, 3, 6, 5), 3, [4] * 16),
              ((2, 3, 6, 5), 2, [5] * 17 + [0]), ((2, 3, 6, 5), 2, list(range(6))), ((4, 7), 1, [6, 0, 6, 1, 6]),
              ((2, 3, 6, 5), 3, []),
              # 16,384 gradient elements and more: added in passes, one per repeat
              ((4, 8, 64, 64), 3, [min(max(j // 2 - (j % 2 == 0), 0), 63) for j in range(128)]),
              ((64, 64, 10), 2, [0, 0, 1, 9, 9, 9, -1, 2] * 2), ((16, 64, 6), 2, [5] * 16 + [0, -6]),
              ((16, 64, 6), 2, [5] * 17 + [0])]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("shape,axis,rows", LATER_ROWS, ids=[f"{'x'.join(map(str, s))}-dim{a}-{len(r)}" for s, a, r in LATER_ROWS])
def test_read_by_rows_after_whole_dims_adds_its_gradient_as_add_at(shape, axis, rows, dtype):
    rng = np.random.default_rng(9)
    a = rng.standard_normal(shape).astype(dtype)
    lead = (slice(None),) * axis
    t, c = torch.tensor(a, requires_grad=True), chainrule.tensor(a, requires_grad=True)
    expected = t[lead + (torch.tensor(rows, dtype=torch.int64),)]
    got = c[lead + (chainrule.tensor(rows, dtype=chainrule.int64),)]
    assert got.grad_fn.name() == expected.grad_fn.name()
    g = rng.standard_normal(tuple(expected.shape)).astype(dtype)
    expected.backward(torch.tensor(g))
    got.backward(chainrule.tensor(g))
    reference = np.zeros(shape, dtype)
    np.add.at(reference, lead + (np.array(rows, dtype=np.int64),), g)
    assert c.grad.numpy().tobytes() == reference.tobytes()
    tolerance = 1e-2 if dtype == "float16" else 1e-5
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=tolerance, atol=tolerance)


INTERPOLATIONS = [("bilinear", (2, 3, 8, 8), (16, 16)), ("bilinear", (2, 3, 8, 8), (5, 7)), ("bilinear", (1, 2, 3, 70), (200, 2)),
                  ("linear", (2, 3, 10), (20,)), ("trilinear", (1, 2, 4, 5, 6), (8, 10, 12)), ("bicubic", (1, 2, 6, 7), (12, 14)),
                  ("nearest", (2, 2, 5, 6), (10, 12)), ("nearest-exact", (2, 2, 5, 6), (11, 13))]


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("mode,shape,size", INTERPOLATIONS, ids=[f"{m}-{'x'.join(map(str, z))}" for m, _, z in INTERPOLATIONS])
def test_interpolate_gradient_is_torchs(mode, shape, size, align_corners):
    if mode.startswith("nearest"):
        align_corners = None
    rng = np.random.default_rng(10)
    a = rng.standard_normal(shape).astype(np.float32)
    t, c = torch.tensor(a, requires_grad=True), chainrule.tensor(a, requires_grad=True)
    expected = torch.nn.functional.interpolate(t, size=size, mode=mode, align_corners=align_corners)
    got = chainrule.nn.functional.interpolate(c, size=size, mode=mode, align_corners=align_corners)
    assert got.grad_fn.name() == expected.grad_fn.name()
    g = rng.standard_normal(tuple(expected.shape)).astype(np.float32)
    expected.backward(torch.tensor(g))
    got.backward(chainrule.tensor(g))
    # torch's kernels add the taps in another order: the same gradient to a few float32 ulps
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-5)
