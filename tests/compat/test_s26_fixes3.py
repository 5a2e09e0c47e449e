"""Session 26, lane fixes3: last session's known differences from torch 2.13, each against torch."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _first_sentence(message: str) -> str:
    return message.split(". ")[0]


def _sparse_embedding(lib):
    lib.manual_seed(0)
    embedding = lib.nn.Embedding(5, 3, sparse=True)
    embedding(lib.tensor([1, 2, 1])).sum().backward()
    return embedding


_CLIPS = {
    "norm": lambda lib, e, fe: lib.nn.utils.clip_grad_norm_(e.parameters(), 0.1, foreach=fe),
    "norm_inf": lambda lib, e, fe: lib.nn.utils.clip_grad_norm_(e.parameters(), 0.1, norm_type="inf", foreach=fe),
    "value": lambda lib, e, fe: lib.nn.utils.clip_grad_value_(e.parameters(), 0.1, foreach=fe),
    "total": lambda lib, e, fe: lib.nn.utils.get_total_norm([e.weight.grad], foreach=fe),
    "with_norm": lambda lib, e, fe: lib.nn.utils.clip_grads_with_norm_(e.parameters(), 0.1, lib.tensor(1.0),
                                                                       foreach=fe),
}


@pytest.mark.parametrize("foreach", [None, True, False])
@pytest.mark.parametrize("name", sorted(_CLIPS))
def test_clip_grad_of_sparse_gradient_as_torch(name, foreach):
    """torch has no sparse COO norm/clamp kernel: clip_grad_norm_, clip_grad_value_ and
    get_total_norm raise its NotImplementedError; clip_grads_with_norm_ (a mul_) scales."""
    outcomes = []
    for lib in (torch, chainrule):
        embedding = _sparse_embedding(lib)
        try:
            _CLIPS[name](lib, embedding, foreach)
        except NotImplementedError as error:
            outcomes.append(("raised", _first_sentence(str(error))))
        else:
            outcomes.append(("ok", embedding.weight.grad.to_dense().flatten().tolist()))
    assert outcomes[0][0] == outcomes[1][0]
    if outcomes[0][0] == "raised":
        assert outcomes[0] == outcomes[1]
    else:
        assert outcomes[1][1] == pytest.approx(outcomes[0][1])


def test_clip_grad_value_one_by_one_clamps_the_dense_gradients_before_the_sparse_one():
    """foreach=False clamps in order, so a dense gradient before the sparse one is clamped when torch
    raises; the foreach path checks its whole group first and changes nothing."""
    for foreach, changed in ((False, True), (None, False)):
        results = []
        for lib in (torch, chainrule):
            embedding = _sparse_embedding(lib)
            dense = lib.nn.Parameter(lib.ones(2))
            dense.grad = lib.full((2,), 5.0)
            with pytest.raises(NotImplementedError):
                lib.nn.utils.clip_grad_value_([dense, embedding.weight], 1.0, foreach=foreach)
            results.append(dense.grad.tolist())
        assert results[0] == results[1] == ([1.0, 1.0] if changed else [5.0, 5.0])


def _bag_case(lib, mode, padding_idx, form, weighted):
    F = lib.nn.functional
    weight = lib.tensor([[0.5 * r + 0.25 * c - 1.0 for c in range(3)] for r in range(6)], requires_grad=True)
    offsets = None
    if form == "2d":
        input = lib.tensor([[0, 2, 2, 1], [2, 3, 3, 0], [5, 5, 2, 4]])
    else:
        input = lib.tensor([0, 2, 2, 1, 2, 3, 3, 0, 5, 5, 2, 4])
        offsets = lib.tensor([0, 4, 8]) if form == "1d" else lib.tensor([0, 3, 5, 12])
    psw = None
    if weighted:
        psw = lib.linspace(0.5, 2.0, input.numel()).reshape(input.shape).requires_grad_()
    out = F.embedding_bag(input, weight, offsets, mode=mode, padding_idx=padding_idx, scale_grad_by_freq=True,
                          per_sample_weights=psw, include_last_offset=form == "1d_last")
    (out * lib.arange(out.numel(), dtype=lib.float32).reshape(out.shape)).sum().backward()
    grads = [weight.grad.flatten().tolist()]
    if weighted:
        grads.append(psw.grad.flatten().tolist())
    return out.flatten().tolist(), grads


@pytest.mark.parametrize("form", ["1d", "2d", "1d_last"])
@pytest.mark.parametrize("padding_idx", [None, 0, 2, -1])
@pytest.mark.parametrize(("mode", "weighted"), [("sum", False), ("sum", True), ("mean", False)])
def test_embedding_bag_scale_grad_by_freq_dense_gradient_as_torch(mode, weighted, padding_idx, form):
    """torch's CPU kernel divides the i-th distinct index's gradient by the count of the i-th sorted
    lookup (index 2 of [0, 2, 2, 1] by 1): chainrule gave each index its own count."""
    expected = _bag_case(torch, mode, padding_idx, form, weighted)
    got = _bag_case(chainrule, mode, padding_idx, form, weighted)
    assert got[0] == pytest.approx(expected[0], rel=1e-6)
    for mine, theirs in zip(got[1], expected[1]):
        assert mine == pytest.approx(theirs, rel=1e-6, abs=1e-6)


def test_embedding_bag_scale_grad_by_freq_concrete_rule():
    """Lookups [0, 0, 1] in one sum bag: sorted [0, 0, 1], so index 0 (2 lookups) is divided by
    count(sorted[0] = 0) = 2 and index 1 (1 lookup) by count(sorted[1] = 0) = 2, not its own 1."""
    weight = chainrule.ones(3, 2, requires_grad=True)
    chainrule.nn.functional.embedding_bag(chainrule.tensor([[0, 0, 1]]), weight, mode="sum",
                                          scale_grad_by_freq=True).sum().backward()
    assert weight.grad.tolist() == [[1.0, 1.0], [0.5, 0.5], [0.0, 0.0]]


def _resize_outcome(lib, make, *size):
    try:
        resized = make(lib).resize_(*size)
    except RuntimeError as error:
        return "RuntimeError", str(error)
    return tuple(resized.shape), resized.flatten()[:4].tolist()


_SHARED_MEMORY = {
    "from_numpy": lambda lib: lib.from_numpy(np.arange(6, dtype=np.float32)),
    "from_numpy_view": lambda lib: lib.from_numpy(np.arange(6, dtype=np.float32))[:3],
    "from_numpy_empty": lambda lib: lib.from_numpy(np.zeros(0, dtype=np.float32)),
    "as_tensor": lambda lib: lib.as_tensor(np.arange(6, dtype=np.float32)),
    "as_tensor_same_dtype": lambda lib: lib.as_tensor(np.arange(6, dtype=np.float32), dtype=lib.float32),
    "as_tensor_converted": lambda lib: lib.as_tensor(np.arange(6, dtype=np.float32), dtype=lib.float64),
    "asarray": lambda lib: lib.asarray(np.arange(6, dtype=np.float32)),
    "tensor_copy": lambda lib: lib.tensor(np.arange(6, dtype=np.float32)),
    "from_numpy_clone": lambda lib: lib.from_numpy(np.arange(6, dtype=np.float32)).clone(),
    "frombuffer": lambda lib: lib.frombuffer(bytearray(np.arange(6, dtype=np.float32).tobytes()), dtype=lib.float32),
}


@pytest.mark.parametrize("size", [(10,), (3, 3), (7,), (5,), (3,), (2, 3), (0,)])
@pytest.mark.parametrize("name", sorted(_SHARED_MEMORY))
def test_resize_of_memory_shared_with_numpy_as_torch(name, size):
    """torch cannot grow the storage of memory it shares with NumPy or a buffer: resize_ past its
    end raises; shrinking, or growing within it, is allowed. A copy grows freely."""
    assert _resize_outcome(chainrule, _SHARED_MEMORY[name], *size) == _resize_outcome(torch, _SHARED_MEMORY[name],
                                                                                       *size)


def test_resize_of_from_numpy_shrunk_then_grown_back_and_resize_as():
    for lib in (torch, chainrule):
        shared = lib.from_numpy(np.arange(6, dtype=np.float32))
        assert shared.resize_(3).resize_(6).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        with pytest.raises(RuntimeError, match="^Trying to resize storage that is not resizable$"):
            shared.resize_as_(lib.zeros(7))


_TANGENT_OPS = {
    "mul_scalar": lambda lib, d, y: d * 2,
    "mul": lambda lib, d, y: d * y,
    "mul_self": lambda lib, d, y: d * d,
    "add": lambda lib, d, y: d + y,
    "sub": lambda lib, d, y: y - d,
    "div": lambda lib, d, y: d / y,
    "rdiv": lambda lib, d, y: y / d,
    "exp": lambda lib, d, y: lib.exp(d),
    "sin": lambda lib, d, y: lib.sin(d),
    "tanh": lambda lib, d, y: lib.tanh(d),
    "matmul": lambda lib, d, y: lib.tensor([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]], dtype=lib.float64) @ d,
    "sum": lambda lib, d, y: d.sum(),
    "mean": lambda lib, d, y: d.mean(),
    "pow": lambda lib, d, y: d.pow(3),
    "pow_tensor": lambda lib, d, y: lib.pow(d * d + 1, y),
    "chain": lambda lib, d, y: lib.tanh(lib.exp(d) * y + d.sin()).sum(),
}


def _tangent_grads(lib, name):
    forward_ad = lib.autograd.forward_ad
    x = lib.tensor([0.5, 1.5, -0.7], dtype=lib.float64, requires_grad=True)
    t = lib.tensor([0.3, -0.2, 0.9], dtype=lib.float64, requires_grad=True)
    y = lib.tensor([1.2, -0.4, 2.0], dtype=lib.float64)
    with forward_ad.dual_level():
        out = _TANGENT_OPS[name](lib, forward_ad.make_dual(x, t), y)
        tangent = forward_ad.unpack_dual(out).tangent
        (tangent * lib.arange(1, tangent.numel() + 1, dtype=lib.float64).reshape(tangent.shape)).sum().backward()
    return t.grad.tolist()


@pytest.mark.parametrize("name", sorted(_TANGENT_OPS))
def test_forward_ad_tangent_that_requires_grad_gets_torchs_gradient(name):
    """A dual's tangent that requires grad: unpack_dual(f(dual)).tangent is differentiable in it."""
    assert _tangent_grads(chainrule, name) == pytest.approx(_tangent_grads(torch, name), rel=1e-12)


def test_func_jvp_tangent_that_requires_grad_gets_torchs_gradient():
    grads = []
    for lib in (torch, chainrule):
        t = lib.tensor([0.3, -0.2, 0.9], dtype=lib.float64, requires_grad=True)
        _, tangent = lib.func.jvp(lambda a, lib=lib: lib.sin(a) * a,
                                  (lib.tensor([0.5, 1.5, -0.7], dtype=lib.float64),), (t,))
        tangent.sum().backward()
        grads.append(t.grad.tolist())
    assert grads[1] == pytest.approx(grads[0], rel=1e-12)


_ADD_PRODUCT_SHAPES = {
    "addmm": ((2, 4), (2, 3), (3, 4)),
    "addmv": ((2,), (2, 3), (3,)),
    "baddbmm": ((5, 2, 4), (5, 2, 3), (5, 3, 4)),
    "addbmm": ((2, 4), (5, 2, 3), (5, 3, 4)),
    "addr": ((2, 3), (2,), (3,)),
}
_MIXED_DEVICES = [d for d in itertools.product(["cpu", "meta"], repeat=3) if len(set(d)) > 1]


def _add_product_outcome(lib, name, devices, broadcast_input):
    shapes = list(_ADD_PRODUCT_SHAPES[name])
    if broadcast_input:
        shapes[0] = shapes[0][-1:]
    args = [lib.ones(shape, device=device) for shape, device in zip(shapes, devices)]
    try:
        result = getattr(lib, name)(*args)
    except RuntimeError as error:
        return "RuntimeError", str(error)
    return str(result.device), tuple(result.shape)


@pytest.mark.parametrize("broadcast_input", [False, True])
@pytest.mark.parametrize("devices", _MIXED_DEVICES)
@pytest.mark.parametrize("name", sorted(_ADD_PRODUCT_SHAPES))
def test_add_product_ops_mixing_meta_and_cpu_as_torch(name, devices, broadcast_input):
    """torch's addmm checks input against mat1, addmv input then vec against mat, addr vec2 against
    vec1 then input; baddbmm and addbmm check nothing and give input's device."""
    assert _add_product_outcome(chainrule, name, devices, broadcast_input) == _add_product_outcome(
        torch, name, devices, broadcast_input)


def _linspace_cases():
    rng = np.random.default_rng(26)
    cases = []
    for k in range(96):
        dtype = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "uint8"][k % 8]
        start, end = (float(v) for v in rng.uniform(-1e3, 1e3, 2) * rng.choice([1e-3, 1.0, 10.0]))
        if dtype == "uint8":
            start, end = abs(start) % 200, abs(end) % 250
        steps = int(rng.choice([1, 2, 3, 7, 16, 17, 33, 50, 100, 129, 1000]))
        cases.append((start, end, steps, dtype))
    for dtype in ("float32", "float64", "float16", "bfloat16"):
        cases += [(0.1, 1.0, 16, dtype), (float("inf"), 0.0, 5, dtype), (0.0, float("-inf"), 9, dtype),
                  (float("inf"), 0.0, 1, dtype), (1e39, 0.0, 1, dtype), (0.0, 1e39, 2, dtype), (0.0, 7e4, 5, dtype)]
    return cases


def _linspace_bits(lib, start, end, steps, dtype):
    try:
        values = lib.linspace(start, end, steps, dtype=getattr(lib, dtype))
    except RuntimeError as error:
        return str(error)
    if dtype in ("float16", "bfloat16"):
        values = values.view(lib.int16)
    elif dtype == "float32":
        values = values.view(lib.int32)
    elif dtype == "float64":
        values = values.view(lib.int64)
    return values.tolist()


def test_linspace_bit_for_bit_as_torch():
    """torch's CPU kernel: start + step·i for the first half, end - step·(steps - 1 - i) for the
    rest, each a fused multiply-add in the dtype (c10::Half/BFloat16 arithmetic for those), start
    and end checked for overflow; chainrule rounded np.linspace's float64 values."""
    differ = [case for case in _linspace_cases()
              if _linspace_bits(chainrule, *case) != _linspace_bits(torch, *case)]
    assert differ == []


def test_linspace_concrete_float32_value():
    # torch.linspace(0.1, 1, 16)[6] is fma(0.06, 6, 0.1) in float32: 0.45999998, not 0.46
    assert chainrule.linspace(0.1, 1.0, 16)[6].item() == np.float32(0.45999998).item()


def _overlapping_views(lib):
    base = lib.arange(8, dtype=lib.float32)
    yield "as_strided", base, base.as_strided((3, 4), (2, 1))
    base = lib.arange(8, dtype=lib.float32)
    yield "unfold", base, base.unfold(0, 4, 2)
    base = lib.arange(4, dtype=lib.float32)
    yield "expand", base, base.expand(3, 4)
    base = lib.arange(8, dtype=lib.float32)
    yield "as_strided_zero_stride", base, base.as_strided((3, 4), (0, 1))


_SELECTIVE_WRITES = {
    "index_fill_": lambda lib, v: v.index_fill_(1, lib.tensor([0, 2]), -1.0),
    "index_fill_rows": lambda lib, v: v.index_fill_(0, lib.tensor([1]), -1.0),
    "index_fill_tensor": lambda lib, v: v.index_fill_(1, lib.tensor([0]), lib.tensor(-1.0)),
    "scatter_": lambda lib, v: v.scatter_(1, lib.tensor([[0], [1], [3]]), -1.0),
    "scatter_src": lambda lib, v: v.scatter_(1, lib.tensor([[0], [1], [3]]), lib.full((3, 1), -1.0)),
    "scatter_add_": lambda lib, v: v.scatter_add_(1, lib.tensor([[0], [1], [3]]), lib.full((3, 1), 10.0)),
    "tril_": lambda lib, v: v.tril_(),
    "triu_": lambda lib, v: v.triu_(),
    "tril_1": lambda lib, v: v.tril_(1),
    "triu_-1": lambda lib, v: v.triu_(-1),
    "index_copy_": lambda lib, v: v.index_copy_(1, lib.tensor([0]), lib.full((3, 1), -1.0)),
    "index_add_": lambda lib, v: v.index_add_(1, lib.tensor([0]), lib.full((3, 1), 10.0)),
    "masked_fill_": lambda lib, v: v.masked_fill_(v > 2, -1.0),
    "index_put_": lambda lib, v: v.index_put_((lib.tensor([0, 2]), lib.tensor([1, 3])), lib.tensor(-1.0)),
    "index_put_accumulate": lambda lib, v: v.index_put_((lib.tensor([0, 2]), lib.tensor([1, 3])), lib.tensor(5.0),
                                                        accumulate=True),
    "put_": lambda lib, v: v.put_(lib.tensor([1]), lib.tensor([-1.0])),
    "masked_scatter_": lambda lib, v: v.masked_scatter_(v > 4, lib.full((12,), -1.0)),
    "scatter_reduce_": lambda lib, v: v.scatter_reduce_(1, lib.tensor([[0], [1], [3]]), lib.full((3, 1), 10.0), "sum"),
    "mul_": lambda lib, v: v.mul_(2),
    "add_": lambda lib, v: v.add_(1),
    "setitem": lambda lib, v: v.__setitem__((0, 1), -1.0),
    "setitem_row": lambda lib, v: v.__setitem__(0, lib.tensor([9.0, 8.0, 7.0, 6.0])),
    "setitem_column": lambda lib, v: v.__setitem__((slice(None), 0), 5.0),
    "setitem_index": lambda lib, v: v.__setitem__(lib.tensor([0, 1]), 3.0),
    "setitem_pairs": lambda lib, v: v.__setitem__((lib.tensor([0, 1]), lib.tensor([2, 3])), lib.tensor([7.0, 8.0])),
    "setitem_mask": lambda lib, v: v.__setitem__(v > 1, 3.0),
    "setitem_mask_tensor": lambda lib, v: v.__setitem__(v > 1, lib.tensor(3.0)),
    "fill_diagonal_": lambda lib, v: v.fill_diagonal_(-1.0),
    "index_reduce_": lambda lib, v: v.index_reduce_(1, lib.tensor([0]), lib.full((3, 1), 10.0), "prod"),
    "uniform_": lambda lib, v: (lib.manual_seed(0), v.uniform_()),
    "normal_": lambda lib, v: (lib.manual_seed(0), v.normal_()),
    "random_": lambda lib, v: (lib.manual_seed(0), v.random_(0, 10)),
}


def _selective_write_outcomes(lib, name):
    outcomes = []
    for view_name, base, view in _overlapping_views(lib):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                _SELECTIVE_WRITES[name](lib, view)
            except RuntimeError as error:
                outcomes.append((view_name, "RuntimeError", str(error)))
                continue
        said = sorted(str(w.message).split(" (Triggered internally")[0] for w in caught
                      if "expanded tensors" in str(w.message))
        outcomes.append((view_name, base.tolist(), said))
    return outcomes


@pytest.mark.parametrize("name", sorted(_SELECTIVE_WRITES))
def test_selective_in_place_writes_into_overlapping_views_as_torch(name):
    """Into unfold/as_strided windows (MemOverlap::TooHard) torch writes the elements an index, a mask
    or a triangle picks and only those; into an expanded view index_fill_/masked_fill_ write with a
    deprecation warning and tril_/triu_ silently, the others refuse. chainrule refused the windows,
    and over a writable as_strided view wrote the whole result back (undoing writes)."""
    assert _selective_write_outcomes(chainrule, name) == _selective_write_outcomes(torch, name)


_NUMPY_SHARES = {
    "numpy": lambda t: t.numpy(),
    "asarray": lambda t: np.asarray(t),
    "ufunc": lambda t: np.exp(t),
    "array_copy": lambda t: np.array(t),
    "tolist": lambda t: t.tolist(),
}


@pytest.mark.parametrize("name", sorted(_NUMPY_SHARES))
def test_resize_after_sharing_with_numpy_as_torch(name):
    """t.numpy() (and NumPy's own __array__ calls) make torch's storage non-resizable; tolist() does not."""
    outcomes = []
    for lib in (torch, chainrule):
        t = lib.zeros(6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            _NUMPY_SHARES[name](t)
        try:
            outcomes.append(tuple(t.resize_(10).shape))
        except RuntimeError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]


def _add_product_in_place_or_out(lib, name, devices, form):
    args = [lib.ones(shape, device=device) for shape, device in zip(_ADD_PRODUCT_SHAPES[name], devices)]
    try:
        if form == "in_place":
            result = getattr(args[0], name + "_")(*args[1:])
        else:
            result = getattr(lib, name)(*args, out=lib.empty(_ADD_PRODUCT_SHAPES[name][0], device=form[4:]))
    except RuntimeError as error:
        return "RuntimeError", str(error)
    return str(result.device), tuple(result.shape)


@pytest.mark.parametrize("form", ["in_place", "out_cpu", "out_meta"])
@pytest.mark.parametrize("devices", _MIXED_DEVICES)
@pytest.mark.parametrize("name", ["addmm", "addmv", "baddbmm"])
def test_add_product_in_place_and_out_mixing_meta_and_cpu_as_torch(name, devices, form):
    """An out= on another device than input: torch's copy of input into it is refused first."""
    assert _add_product_in_place_or_out(chainrule, name, devices, form) == _add_product_in_place_or_out(
        torch, name, devices, form)


def test_selective_write_into_an_overlapping_view_of_a_base_in_the_graph_still_backpropagates():
    """A writable as_strided view of a base in the graph keeps the write through its base (recorded):
    the new overlapping-write path is for writes outside the graph, and does not refuse this one."""
    grads = []
    for lib in (torch, chainrule):
        leaf = lib.arange(8.0).requires_grad_()
        view = leaf.clone().as_strided((3, 4), (2, 1))
        view.tril_()
        view.sum().backward()
        grads.append(leaf.grad.tolist())
    assert grads[0] == grads[1] == [1.0, 0.0, 2.0, 2.0, 2.0, 2.0, 1.0, 0.0]
