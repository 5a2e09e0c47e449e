"""Session 49, lane progDI (corpus program mla_latent_attention), found by probing the ops it uses:

- half-precision softmax along a dim that is not the last, and log_softmax along the last, were
  computed in float32 and rounded once; torch's CPU kernels round an intermediate to the input's
  dtype (softmax: the exps of its scalar columns, ``_vec_softmax``; log_softmax: the row's sum and
  its log, ``_vec_log_softmax_lastdim``), so results and gradients were an ulp off in 10-40 % of
  elements. Compared here bit for bit.
- ``F.rms_norm`` took a single int (or a 0-d tensor, a NumPy int) as ``normalized_shape`` and a
  string ``eps``; torch's raises its parser's TypeErrors, naming the positions. ``int_list``'s
  element message now names the position too (``F.pad(x, [1.0])``), with the parser's type names.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(not chainrule._dtype.has_bfloat16(), reason="needs ml_dtypes for bfloat16")


@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"threads{n}")
def threads(request, monkeypatch):
    """torch's intra-op thread count (which splits the softmax's columns) and chainrule's reading
    of it set alike, both restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    monkeypatch.setattr(chainrule._config, "torch_intra_op_threads", lambda: request.param)
    yield request.param
    torch.set_num_threads(before)


def _data(shape, seed):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np.float32)


def _same_bits(form, data, dtype):
    want = form(torch, torch.tensor(data).to(getattr(torch, dtype)))
    got = form(chainrule, chainrule.tensor(data).to(getattr(chainrule, dtype)))
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1] == dtype
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())


# rows of inner columns chosen around torch's vector width (32 half-precision values on AVX512,
# 16 on AVX2) and its split of the columns between threads
_SHAPES_NOT_LAST = [((2, 3, 4, 5), 1), ((2, 3, 4, 5), 0), ((3, 48), 0), ((3, 64), 0), ((3, 100), 0),
                    ((5, 130), 0), ((3, 4, 70), 1), ((7, 5, 33), 0), ((16, 9, 3), 1), ((3, 1), 0)]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape,dim", _SHAPES_NOT_LAST)
def test_half_softmax_along_a_dim_that_is_not_the_last(shape, dim, dtype, threads):
    data = _data(shape, sum(shape))
    _same_bits(lambda lib, x: lib.softmax(x, dim), data, dtype)
    _same_bits(lambda lib, x: lib.nn.Softmax(dim=dim)(x), data, dtype)
    _same_bits(lambda lib, x: lib.nn.functional.softmax(x.float(), dim, dtype=getattr(lib, dtype)), data, dtype)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7, 33), (5, 130), (3, 8), (4, 17), (64, 10), (1, 1000)])
def test_half_log_softmax_along_the_last_dim(shape, dtype):
    data = _data(shape, sum(shape))
    _same_bits(lambda lib, x: lib.log_softmax(x, -1), data, dtype)
    _same_bits(lambda lib, x: x.log_softmax(len(shape) - 1), data, dtype)
    _same_bits(lambda lib, x: lib.nn.LogSoftmax(dim=-1)(x), data, dtype)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (7, 33), (16, 9, 3), (2, 40, 6)])
def test_half_log_softmax_gradient_takes_exp_of_the_rounded_output(shape, dtype):
    def form(lib, x):
        x = x.clone().requires_grad_()
        y = lib.log_softmax(x, -1)
        (y * lib.linspace(-1, 1, y.numel()).view(y.shape).to(y.dtype)).sum().backward()
        return x.grad

    _same_bits(form, _data(shape, sum(shape)), dtype)


def test_half_softmax_keeps_float32_and_float64_results_and_the_last_dim():
    data = _data((2, 3, 40), 1)
    for lib_dtype in ("float32", "float64"):
        def form(lib, x, lib_dtype=lib_dtype):
            return lib.softmax(x, 1, dtype=getattr(lib, lib_dtype)).to(x.dtype)
        _same_bits(form, data, "float16")
    # after a half-precision softmax without a grad, an explicit dtype still gives that dtype
    x = chainrule.tensor(data).half()
    chainrule.softmax(x, 1)
    assert chainrule.softmax(x, 1, dtype=chainrule.float64).dtype == chainrule.float64
    _same_bits(lambda lib, x: lib.softmax(x, -1), data, "bfloat16")


def _raised(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the type and text are what is compared
        return type(error).__name__, str(error)
    return None


@pytest.mark.parametrize("value", [5, np.int64(5), "tensor", 5.0, "ab", None, [5.0], [np.float64(5.0)], "ok"])
def test_functional_rms_norm_normalized_shape_is_parsed_as_torchs(value):
    def call(lib):
        shape = lib.tensor(5) if value == "tensor" else ([5] if value == "ok" else value)
        return lambda: lib.nn.functional.rms_norm(lib.ones(2, 5), shape)

    want = _raised(call(torch))
    assert _raised(call(chainrule)) == want
    assert (want is None) == (value == "ok")


def test_functional_rms_norm_eps_must_be_a_float():
    for eps in ("a", [1e-5]):
        def call(lib, eps=eps):
            return lambda: lib.nn.functional.rms_norm(lib.ones(2, 5), (5,), None, eps)

        want = _raised(call(torch))
        assert want is not None
        assert _raised(call(chainrule)) == want
    np.testing.assert_allclose(chainrule.nn.functional.rms_norm(chainrule.ones(2, 5) * 3, (5,), None, 0).numpy(),
                               torch.nn.functional.rms_norm(torch.ones(2, 5) * 3, (5,), None, 0).numpy())


@pytest.mark.parametrize("value", [[1.0], [np.float32(1)], [np.float64(1)], "tensor", np.float64(2.0), "ab"])
def test_int_list_element_messages_name_the_position(value):
    for op in ("pad", "roll"):
        def call(lib, op=op):
            v = [lib.tensor(1.5)] if value == "tensor" else value
            x = lib.ones(3, 3)
            return (lambda: lib.nn.functional.pad(x, v)) if op == "pad" else (lambda: lib.roll(x, v, 0))

        want = _raised(call(torch))
        assert want is not None
        assert _raised(call(chainrule)) == want
