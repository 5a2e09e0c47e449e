"""CPU autocast against torch 2.13, for what torch's autocast test lists found (tools/torch_autocast_trial.py):
which functions run in the lower precision, which in float32 and which in their inputs' dtype; inputs of
any floating dtype but float64 cast by a listed op; composed functions (addmm, the losses) rounding as one
kernel; the cache of casted weights; the errors for devices that do not exist. Each program runs on both
libraries and the dtypes, values and gradients are compared."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")
pytest.importorskip("ml_dtypes")

RNG = np.random.default_rng(17)
A = RNG.standard_normal((4, 4)).astype(np.float32)
B = RNG.standard_normal((4, 4)).astype(np.float32)
C = RNG.standard_normal((4, 4)).astype(np.float32)
V = RNG.standard_normal(4).astype(np.float32)
BATCH = RNG.standard_normal((2, 4, 4)).astype(np.float32)
VOLUME = RNG.standard_normal((1, 2, 4, 4, 4)).astype(np.float32)
PROBABILITIES = RNG.uniform(0.1, 0.9, (4, 4)).astype(np.float32)
TOLERANCE = {"bfloat16": 1.6e-2, "float16": 1e-3, "float32": 1.3e-6}


def _name(dtype) -> str:
    return str(dtype).rpartition(".")[2]


def _tensor(lib, array, dtype="float32", requires_grad=False):
    return lib.tensor(array).to(getattr(lib, dtype)).requires_grad_(requires_grad)


def _run_both(program, amp="bfloat16"):
    results = []
    for lib in (chainrule, torch):
        with lib.autocast("cpu", dtype=getattr(lib, amp)):
            results.append(program(lib, lib.nn.functional))
    return results


def _assert_same(ours, theirs, rtol):
    if isinstance(theirs, tuple):
        for o, t in zip(ours, theirs):
            _assert_same(o, t, rtol)
        return
    assert _name(ours.dtype) == _name(theirs.dtype)
    expected = theirs.detach().float().numpy()
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    np.testing.assert_allclose(ours.detach().float().numpy(), expected, rtol=rtol, atol=max(1e-5, rtol * scale))


# the public functions chainrule composes of several ops, by the dtype torch's CPU autocast gives them
# (bfloat16 inputs for the float32 list, float32 inputs for the others)
COMPOSED = {
    "mse_loss": lambda lib, F: F.mse_loss(_tensor(lib, A, "bfloat16"), _tensor(lib, B, "bfloat16")),
    "l1_loss": lambda lib, F: F.l1_loss(_tensor(lib, A, "bfloat16"), _tensor(lib, B, "bfloat16")),
    "smooth_l1_loss": lambda lib, F: F.smooth_l1_loss(_tensor(lib, A, "bfloat16"), _tensor(lib, B, "bfloat16")),
    "huber_loss": lambda lib, F: F.huber_loss(_tensor(lib, A, "bfloat16"), _tensor(lib, B, "bfloat16")),
    "soft_margin_loss": lambda lib, F: F.soft_margin_loss(_tensor(lib, A, "bfloat16"), _tensor(lib, B, "bfloat16")),
    "binary_cross_entropy_with_logits": lambda lib, F: F.binary_cross_entropy_with_logits(
        _tensor(lib, A, "bfloat16"), _tensor(lib, PROBABILITIES, "bfloat16")),
    "kl_div": lambda lib, F: F.kl_div(_tensor(lib, A, "bfloat16"), _tensor(lib, PROBABILITIES, "bfloat16"),
                                      reduction="batchmean"),
    "poisson_nll_loss": lambda lib, F: F.poisson_nll_loss(_tensor(lib, A, "bfloat16"), _tensor(lib, B, "bfloat16")),
    "hinge_embedding_loss": lambda lib, F: F.hinge_embedding_loss(_tensor(lib, A, "bfloat16"),
                                                                  _tensor(lib, np.sign(B), "bfloat16")),
    "triplet_margin_loss": lambda lib, F: F.triplet_margin_loss(*(_tensor(lib, m, "bfloat16") for m in (A, B, C))),
    "cosine_embedding_loss": lambda lib, F: F.cosine_embedding_loss(_tensor(lib, A, "bfloat16"),
                                                                    _tensor(lib, B, "bfloat16"), lib.ones(4)),
    "multi_margin_loss": lambda lib, F: F.multi_margin_loss(_tensor(lib, A, "bfloat16"), lib.tensor([0, 1, 2, 3])),
    "multilabel_margin_loss": lambda lib, F: F.multilabel_margin_loss(
        _tensor(lib, A, "bfloat16"), lib.tensor([[0, 1, -1, 0]] * 4)),
    "max_pool3d": lambda lib, F: F.max_pool3d(_tensor(lib, VOLUME, "bfloat16"), 2),
    "avg_pool3d": lambda lib, F: F.avg_pool3d(_tensor(lib, VOLUME, "bfloat16"), 2),
    "adaptive_avg_pool3d": lambda lib, F: F.adaptive_avg_pool3d(_tensor(lib, VOLUME, "bfloat16"), 2),
    "reflect_pad_1d": lambda lib, F: F.pad(_tensor(lib, BATCH, "bfloat16"), (1, 2), mode="reflect"),
    "reflect_pad_2d": lambda lib, F: F.pad(_tensor(lib, BATCH, "bfloat16"), (1, 2, 2, 1), mode="reflect"),
    "reflect_pad_3d_stays": lambda lib, F: F.pad(_tensor(lib, VOLUME, "bfloat16"), (1,) * 6, mode="reflect"),
    "replicate_pad": lambda lib, F: F.pad(_tensor(lib, BATCH, "bfloat16"), (1, 2), mode="replicate"),
    "circular_pad_stays": lambda lib, F: F.pad(_tensor(lib, BATCH, "bfloat16"), (1, 2), mode="circular"),
    "cdist": lambda lib, F: lib.cdist(_tensor(lib, A, "bfloat16"), _tensor(lib, B, "bfloat16")),
    "quantile": lambda lib, F: lib.quantile(_tensor(lib, V, "bfloat16"), 0.25),
    "grid_sample": lambda lib, F: F.grid_sample(_tensor(lib, BATCH[:1, None], "bfloat16"),
                                                _tensor(lib, BATCH[:, :2].reshape(1, 2, 4, 2) / 4, "bfloat16"),
                                                align_corners=False),
    "householder_product": lambda lib, F: lib.linalg.householder_product(_tensor(lib, A, "bfloat16"),
                                                                         _tensor(lib, V, "bfloat16")),
    "linalg_lstsq": lambda lib, F: lib.linalg.lstsq(_tensor(lib, A, "bfloat16"), _tensor(lib, B, "bfloat16")).solution,
    "linalg_matrix_rank": lambda lib, F: lib.linalg.matrix_rank(_tensor(lib, A, "bfloat16")),
    "linalg_eigvals": lambda lib, F: lib.linalg.eigvals(_tensor(lib, A, "bfloat16")).abs(),
    "fft_rfft_of_float16": lambda lib, F: lib.fft.rfft(_tensor(lib, V, "float16")).abs(),
    "fft_irfft_of_bfloat16": lambda lib, F: lib.fft.irfft(_tensor(lib, V, "bfloat16")),
    "addmm": lambda lib, F: lib.addmm(_tensor(lib, A), _tensor(lib, B), _tensor(lib, C), beta=0.5, alpha=2),
    "baddbmm": lambda lib, F: lib.baddbmm(_tensor(lib, BATCH), _tensor(lib, BATCH), _tensor(lib, BATCH)),
    "addbmm": lambda lib, F: lib.addbmm(_tensor(lib, A), _tensor(lib, BATCH), _tensor(lib, BATCH)),
    "linalg_vecdot": lambda lib, F: lib.linalg.vecdot(_tensor(lib, A), _tensor(lib, B)),
    "mv_unlisted": lambda lib, F: lib.mv(_tensor(lib, A), _tensor(lib, V)),
    "addmv_unlisted": lambda lib, F: lib.addmv(_tensor(lib, V), _tensor(lib, A), _tensor(lib, V)),
    "tensordot_full_contraction_unlisted": lambda lib, F: lib.tensordot(_tensor(lib, A), _tensor(lib, B)),
    "tensordot": lambda lib, F: lib.tensordot(_tensor(lib, A), _tensor(lib, B), dims=1),
    "inner": lambda lib, F: lib.inner(_tensor(lib, A), _tensor(lib, B)),
    "inner_of_vectors_unlisted": lambda lib, F: lib.inner(_tensor(lib, V), _tensor(lib, V)),
    "matmul_of_vectors": lambda lib, F: lib.matmul(_tensor(lib, V), _tensor(lib, V)),
    "matmul_float16_and_float32": lambda lib, F: _tensor(lib, A, "float16") @ _tensor(lib, B),
}


@pytest.mark.parametrize("amp", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", sorted(COMPOSED))
def test_composed_function_follows_torchs_cpu_autocast_list(name, amp):
    ours, theirs = _run_both(COMPOSED[name], amp)
    _assert_same(ours, theirs, TOLERANCE["bfloat16"])


PRODUCTS = {
    "addmm": lambda lib, dtype: lib.addmm(*(_tensor(lib, m, dtype) for m in (A, B, C)), beta=0.5, alpha=2),
    "baddbmm": lambda lib, dtype: lib.baddbmm(*(_tensor(lib, BATCH, dtype) for _ in range(3)), alpha=3),
    "addbmm": lambda lib, dtype: lib.addbmm(_tensor(lib, A, dtype), _tensor(lib, BATCH, dtype),
                                            _tensor(lib, BATCH, dtype)),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_add_a_product_rounds_once_as_the_lowered_op_does(name):
    # torch's own check: the op under autocast equals, bit for bit, the op on inputs cast to bfloat16
    # first (one rounding of beta * input + alpha * product, not a rounded product added again)
    with chainrule.autocast("cpu"):
        lowered = PRODUCTS[name](chainrule, "float32")
    control = PRODUCTS[name](chainrule, "bfloat16")
    assert lowered.dtype == control.dtype == chainrule.bfloat16
    assert chainrule.equal(lowered, control)


def test_loss_gradients_come_back_in_each_inputs_dtype():
    grads = []
    for lib in (chainrule, torch):
        input = _tensor(lib, A, "bfloat16", requires_grad=True)
        target = _tensor(lib, B, "float16", requires_grad=True)
        with lib.autocast("cpu"):
            loss = lib.nn.functional.mse_loss(input, target)
        assert _name(loss.dtype) == "float32"
        loss.backward()
        grads.append((input.grad, target.grad))
    (ours_input, ours_target), (theirs_input, theirs_target) = grads
    _assert_same(ours_input, theirs_input, TOLERANCE["bfloat16"])
    _assert_same(ours_target, theirs_target, TOLERANCE["float16"])


# inputs of any floating dtype but float64 are cast by a listed op, not only float32 or the region's dtype
MIXED = {
    "mm_float16_in_bfloat16_region": lambda lib, F: lib.mm(_tensor(lib, A, "float16"), _tensor(lib, B)),
    "prod_float16_in_bfloat16_region": lambda lib, F: lib.prod(_tensor(lib, V, "float16")),
    "mm_float64_not_cast": lambda lib, F: lib.mm(_tensor(lib, A, "float64"), _tensor(lib, B, "float64")),
    "nll_loss_float16_in_bfloat16_region": lambda lib, F: F.nll_loss(_tensor(lib, A, "float16"),
                                                                     lib.tensor([0, 1, 2, 3])),
}


@pytest.mark.parametrize("name", sorted(MIXED))
def test_listed_op_casts_every_floating_input_but_float64(name):
    ours, theirs = _run_both(MIXED[name])
    _assert_same(ours, theirs, TOLERANCE["bfloat16"])


RECURRENT = {
    "LSTM": lambda lib: lib.nn.LSTM(4, 3),
    "RNN": lambda lib: lib.nn.RNN(4, 3),
    "GRU": lambda lib: lib.nn.GRU(4, 3),
    "LSTMCell": lambda lib: lib.nn.LSTMCell(4, 3),
    "GRUCell": lambda lib: lib.nn.GRUCell(4, 3),
    "RNNCell": lambda lib: lib.nn.RNNCell(4, 3),
}


@pytest.mark.parametrize("name", sorted(RECURRENT))
def test_recurrent_layers_and_cells_run_in_torchs_dtype(name):
    # torch lowers LSTM and RNN (mkldnn_rnn) and RNNCell (its linear); GRU, lstm_cell and gru_cell are
    # on no CPU list and stay float32
    modules = [RECURRENT[name](lib) for lib in (chainrule, torch)]
    modules[0].load_state_dict({k: chainrule.tensor(v.detach().numpy()) for k, v in modules[1].state_dict().items()})
    sequence = BATCH.reshape(2, 4, 4)[:, :2] if "Cell" not in name else A[:2]
    outputs = []
    for lib, module in zip((chainrule, torch), modules):
        with lib.autocast("cpu"):
            try:
                out = module(lib.tensor(sequence))
            except RuntimeError as error:
                # torch's bfloat16 LSTM goes to oneDNN, which has no such primitive on CPUs without
                # AVX-512 (seen on an AMD EPYC with AVX2): the oracle cannot answer there, so the
                # answer it would give is rebuilt from its float32 layer
                if lib is torch and "could not create a primitive descriptor" in str(error):
                    _assert_is_a_float32_run_on_bfloat16_operands(name, outputs[0], modules[1], sequence)
                    return
                raise
        outputs.append(out[0] if isinstance(out, tuple) else out)
    _assert_same(outputs[0], outputs[1], TOLERANCE["bfloat16"])


def _assert_is_a_float32_run_on_bfloat16_operands(name, ours, module, sequence):
    """Where torch's bfloat16 oneDNN RNN cannot run (an LSTM on an AMD EPYC with AVX2, no AVX-512),
    what it would compute: its float32 layer on bfloat16-rounded weights and input, rounded to
    bfloat16 (measured there: chainrule's LSTM output equals that bitwise, 12 of 12 values; asserted
    within a bfloat16 ulp, 2**-8 of the largest), in torch's shape and strides."""
    reference = RECURRENT[name](torch)
    reference.load_state_dict({k: v.detach().bfloat16().float() for k, v in module.state_dict().items()})
    with torch.autocast("cpu", enabled=False), torch.no_grad():
        expected = reference(torch.tensor(sequence).bfloat16().float())
    expected = (expected[0] if isinstance(expected, tuple) else expected).bfloat16()
    assert tuple(ours.shape) == tuple(expected.shape) and ours.stride() == expected.stride()
    _assert_same(ours, expected, 2.0 ** -8)


def _weights(lib):
    return lib.tensor(A), lib.nn.Parameter(lib.tensor(B))


def _bump(lib, weight):
    with lib.no_grad():
        weight.add_(0.5)


def _cache_story(lib):
    x, w = _weights(lib)
    seen = []
    with lib.autocast("cpu"):
        first = lib.mm(x, w)
        _bump(lib, w)
        seen.append(bool(lib.equal(first, lib.mm(x, w))))  # the weight's cast is reused: stale values
        lib.clear_autocast_cache()
        fresh = lib.mm(x, w)
        seen.append(bool(lib.equal(first, fresh)))
        with lib.autocast("cpu"):
            pass
        _bump(lib, w)
        seen.append(bool(lib.equal(fresh, lib.mm(x, w))))  # an inner region's exit keeps the cache
    _bump(lib, w)
    with lib.autocast("cpu"):
        seen.append(bool(lib.equal(fresh, lib.mm(x, w))))  # the outermost exit cleared it
    with lib.autocast("cpu", cache_enabled=False):
        before = lib.mm(x, w)
        _bump(lib, w)
        seen.append(bool(lib.equal(before, lib.mm(x, w))))
    plain = w.detach().clone()
    with lib.autocast("cpu"):
        before = lib.mm(x, plain)
        plain.add_(0.5)
        seen.append(bool(lib.equal(before, lib.mm(x, plain))))  # only leaves that require grad are cached
        before = lib.mm(x, w.t())
        _bump(lib, w)
        seen.append(bool(lib.equal(before, lib.mm(x, w.t()))))  # views are not cached
    return seen


def test_cast_cache_of_leaf_weights_behaves_as_torchs():
    assert _cache_story(chainrule) == _cache_story(torch) == [True, False, True, False, False, False, False]


def test_cached_cast_carries_gradients_and_none_is_kept_from_no_grad():
    grads = []
    for lib in (chainrule, torch):
        x, w = _weights(lib)
        with lib.autocast("cpu"):
            with lib.no_grad():
                lib.mm(x, w)
            out = lib.mm(x, w)
            assert out.requires_grad
            out.float().sum().backward()
            lib.mm(x, w).float().pow(2).sum().backward()  # through the same cached cast again
        assert _name(w.grad.dtype) == "float32"
        grads.append(w.grad)
    _assert_same(grads[0], grads[1], TOLERANCE["bfloat16"])


@pytest.mark.parametrize("call", [
    lambda lib: lib.autocast(device_type="not a real device"),
    lambda lib: lib.amp.is_autocast_available(device_type="not a real device"),
    lambda lib: lib.autocast("tpu"),
    lambda lib: lib.is_autocast_enabled("foo"),
])
def test_device_type_that_names_no_device_raises_torchs_error(call):
    messages = []
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError) as caught:
            call(lib)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("expression", [
    lambda x: x * 0.0, lambda x: x + 0.0, lambda x: x - 0.0, lambda x: 0.0 - x, lambda x: 0.0 + x,
    lambda x: x * -0.0, lambda x: x / 1.0,
])
def test_bfloat16_tensor_with_a_python_zero_stays_bfloat16(expression, requires_grad):
    # found through cosine_embedding_loss (cos - margin with margin 0.0 gave float32): a zero took
    # the general path, where ml_dtypes' bfloat16 meets a Python float as float32
    results = [expression(_tensor(lib, V, "bfloat16", requires_grad)) for lib in (chainrule, torch)]
    _assert_same(*results, rtol=0)
    np.testing.assert_array_equal(np.signbit(results[0].detach().float().numpy()),
                                  np.signbit(results[1].detach().float().numpy()))
