"""Lane mendG (s35): graph node names, device wording and module edges, each checked against torch."""

from __future__ import annotations

import math

import pytest

import chainrule
from tests._fresh_process import batched

torch = pytest.importorskip("torch")


def on_both(fn):
    """``fn(lib)`` run with chainrule and with torch: (ours, torch's); an exception is returned as
    (its type's name, its message), so refusals compare as values do."""
    results = []
    for lib in (chainrule, torch):
        try:
            results.append(fn(lib))
        except Exception as error:  # noqa: BLE001 - the refusal is the result being compared
            results.append((type(error).__name__, str(error)))
    return tuple(results)


def _node_names(output) -> tuple:
    """The node's name and its edges' names: what a user walking the graph reads."""
    node = output.grad_fn
    return node.name(), tuple(None if edge is None else edge.name() for edge, _ in node.next_functions)


# ---------------------------------------------------------------- 1. node names
def _leaf(lib, *shape):
    return lib.arange(1.0, 1.0 + math.prod(shape)).reshape(shape).sin().requires_grad_()


_NAMED_CASES = {
    "fmax": lambda lib: lib.fmax(_leaf(lib, 3, 4), _leaf(lib, 1, 4)),
    "fmin": lambda lib: lib.fmin(_leaf(lib, 3, 4), _leaf(lib, 3, 4).detach()),
    "elu_": lambda lib: lib.nn.functional.elu_(_leaf(lib, 3, 4) * 1),
    "elu_inplace": lambda lib: lib.nn.functional.elu(_leaf(lib, 3, 4) * 1, inplace=True),
    "celu_": lambda lib: lib.celu_(_leaf(lib, 3, 4) * 1),
    "selu_": lambda lib: lib.selu_(_leaf(lib, 3, 4) * 1),
    "leaky_relu_": lambda lib: lib.nn.functional.leaky_relu_(_leaf(lib, 3, 4) * 1),
    "threshold_": lambda lib: lib.nn.functional.threshold_(_leaf(lib, 3, 4) * 1, 0.1, 2.0),
    "rrelu_eval_inplace": lambda lib: lib.nn.functional.rrelu(_leaf(lib, 3, 4) * 1, inplace=True),
    "rrelu_train_inplace": lambda lib: lib.nn.functional.rrelu(_leaf(lib, 3, 4) * 1, training=True, inplace=True),
    "elu_into_view": lambda lib: lib.nn.functional.elu_((_leaf(lib, 3, 4) * 1)[1:]),
    "ndtr": lambda lib: lib.special.ndtr(_leaf(lib, 3, 4)),
    "trapezoid": lambda lib: lib.trapezoid(_leaf(lib, 3, 5), dx=0.5),
    "trapezoid_x": lambda lib: lib.trapezoid(_leaf(lib, 3, 5), lib.tensor([0.0, 1.0, 3.0, 4.0, 7.0])),
    "trapz_x": lambda lib: lib.trapz(_leaf(lib, 3, 5), lib.tensor([0.0, 1.0, 3.0, 4.0, 7.0])),
    "cumulative_trapezoid_x": lambda lib: lib.cumulative_trapezoid(_leaf(lib, 3, 5), lib.tensor([0.0, 1.0, 3.0])),
    "pixel_shuffle": lambda lib: lib.nn.functional.pixel_shuffle(_leaf(lib, 2, 8, 3, 2), 2),
    "pixel_unshuffle": lambda lib: lib.nn.functional.pixel_unshuffle(_leaf(lib, 2, 2, 4, 6)[:, :, 1:3], 2),
    "pixel_unshuffle_by_1": lambda lib: lib.nn.functional.pixel_unshuffle(_leaf(lib, 2, 4, 6), 1),
    "channel_shuffle": lambda lib: lib.nn.functional.channel_shuffle(_leaf(lib, 2, 6, 2, 2), 3),
    "channel_shuffle_1d": lambda lib: lib.nn.functional.channel_shuffle(_leaf(lib, 2, 6, 2), 2),
    "stft_batched": lambda lib: lib.stft(_leaf(lib, 2, 30), 8, window=lib.hann_window(8), return_complex=True),
    "stft_one_signal": lambda lib: lib.stft(_leaf(lib, 30), 8, window=lib.hann_window(8), return_complex=True),
}


# the scalar overloads end a composition whose inner nodes (AddBackward0 for torch's AddBackward1)
# and whose edge to the Python number ((None, 0), as torch's Python-level x * 2.0 has) still differ:
# their last node's name is compared
_NAME_ONLY = {"ndtr", "trapezoid", "trapezoid_x", "trapz_x", "cumulative_trapezoid_x"}


@pytest.mark.parametrize("case", list(_NAMED_CASES))
def test_node_name_and_edges_match_torch(case):
    ours, theirs = on_both(lambda lib: _node_names(_NAMED_CASES[case](lib)))
    if case in _NAME_ONLY:
        ours, theirs = ours[0], theirs[0]
    assert ours == theirs


_REARRANGEMENTS = {
    "pixel_shuffle": ((2, 8, 3, 2), lambda F, x: F.pixel_shuffle(x, 2)),
    "pixel_unshuffle": ((1, 2, 4, 6), lambda F, x: F.pixel_unshuffle(x, 2)),
    "channel_shuffle_1d": ((2, 6, 2), lambda F, x: F.channel_shuffle(x, 3)),
}


@pytest.mark.parametrize("case", list(_REARRANGEMENTS))
def test_a_rearrangement_node_saves_and_routes_as_torchs(case):
    shape, rearrange = _REARRANGEMENTS[case]

    def read(lib):
        x = lib.arange(float(math.prod(shape)), dtype=lib.float64).reshape(shape).requires_grad_()
        out = rearrange(lib.nn.functional, x)
        saved = {name: getattr(out.grad_fn, name) for name in dir(out.grad_fn) if name.startswith("_saved_")}
        (grad,) = lib.autograd.grad((out * lib.arange(float(out.numel())).reshape(out.shape)).sum(), x)
        return saved, out.is_contiguous(), out.detach().tolist(), grad.tolist()

    ours, theirs = on_both(read)
    assert ours == theirs


_REAL_FFTS = {
    "fft": lambda lib, x: lib.fft.fft(x),
    "fft_n_pad_ortho": lambda lib, x: lib.fft.fft(x, n=8, norm="ortho"),
    "ifft": lambda lib, x: lib.fft.ifft(x),
    "ifft_n_crop_forward": lambda lib, x: lib.fft.ifft(x, n=4, norm="forward"),
    "ifft_double_ortho": lambda lib, x: lib.fft.ifft(x.double(), norm="ortho"),
    "fft_dim0": lambda lib, x: lib.fft.fft(x.reshape(2, 3), dim=0),
    "fftn_one_dim": lambda lib, x: lib.fft.fftn(x, dim=(0,)),
    "ihfft2": lambda lib, x: lib.fft.ihfft2(x.reshape(2, 3)),
    "ihfftn": lambda lib, x: lib.fft.ihfftn(x.reshape(1, 2, 3)),
    "ihfftn_one_dim": lambda lib, x: lib.fft.ihfftn(x.reshape(2, 3), dim=(0,)),
    "ihfft2_s_ortho": lambda lib, x: lib.fft.ihfft2(x.reshape(2, 3), s=(3, 4), norm="ortho"),
    "ihfftn_forward": lambda lib, x: lib.fft.ihfftn(x.reshape(3, 2), norm="forward"),
}


@pytest.mark.parametrize("case", list(_REAL_FFTS))
def test_a_real_inputs_fft_is_torchs_two_sided_r2c(case):
    import numpy as np

    def run(lib):
        x = lib.arange(6.0).requires_grad_()
        y = _REAL_FFTS[case](lib, x)
        weights = lib.arange(float(y.numel())).reshape(y.shape)
        (grad,) = lib.autograd.grad((y.real * weights + y.imag * weights * weights).sum(), x)
        values = lib.view_as_real(y.detach().resolve_conj())
        return _node_names(y), str(y.dtype).split(".")[-1], values.tolist(), grad.tolist()

    ours, theirs = on_both(run)
    assert ours[:2] == theirs[:2]
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", ["stft_batched", "stft_one_signal"])
def test_stfts_in_place_nodes_save_as_torchs(case):
    def saved(lib):
        node = _NAMED_CASES[case](lib).grad_fn
        return {name: getattr(node, name) for name in dir(node) if name.startswith("_saved_")}

    ours, theirs = on_both(saved)
    assert ours == theirs


@pytest.mark.parametrize("op", ["fmax", "fmin"])
@pytest.mark.parametrize("operands", ["complex", "bool", "int_float", "half_float"])
def test_fmax_values_and_refusals_as_torch(op, operands):
    made = {"complex": lambda lib: (lib.tensor([1 + 1j]), lib.tensor([2 + 0j])),
            "bool": lambda lib: (lib.tensor([True, False]), lib.tensor([False, False])),
            "int_float": lambda lib: (lib.tensor([1, 5]), lib.tensor([3.0, float("nan")])),
            "half_float": lambda lib: (lib.tensor([1.0, 3.0]).half(), lib.tensor([2.0]))}[operands]

    def run(lib):
        out = getattr(lib, op)(*made(lib))
        return str(out.dtype).split(".")[-1], out.tolist()

    ours, theirs = on_both(run)
    assert ours == theirs


@pytest.mark.parametrize("op", ["fmax", "fmin"])
def test_fmax_gradient_routes_as_torch(op):
    def grads(lib):
        a = lib.tensor([1.0, float("nan"), 3.0, 2.0, float("nan")], requires_grad=True)
        b = lib.tensor([2.0, 1.0, float("nan"), 2.0, float("nan")], requires_grad=True)
        getattr(lib, op)(a, b).sum().backward()
        return a.grad.tolist(), b.grad.tolist()

    ours, theirs = on_both(grads)
    assert ours == theirs


# ---------------------------------------------------------------- 2. mixed-device errors on the stand-in
# torch here has no GPU; its CUDA error names the op's kernel (wrapper_CUDA_mm for mm and a 2-d
# matmul); chainrule's says "(when checking the arguments of <op>)" with the op the user called
_PRODUCT_SHAPES = {"mm": ((2, 2), (2, 2)), "matmul": ((2, 2), (2, 2)), "outer": ((2,), (3,)), "kron": ((2,), (3,)),
                   "cross": ((3,), (3,)), "inner": ((2, 3), (4, 3)), "true_divide": ((2,), (2,)),
                   "fmax": ((2,), (2,)), "fmin": ((2,), (2,))}
_NAMED_AS = {"matmul": "mm"}


@pytest.mark.filterwarnings("ignore:Using torch.cross without specifying the dim arg")
@pytest.mark.parametrize("op", list(_PRODUCT_SHAPES))
@pytest.mark.parametrize("other_device", ["cpu", "cuda:1"])
@pytest.mark.parametrize("position", [0, 1])
def test_a_product_across_devices_names_the_op(op, other_device, position):
    from chainrule._backend import use_standin_cuda

    with use_standin_cuda(devices=2):
        operands = [chainrule.ones(shape, device="cuda:0") for shape in _PRODUCT_SHAPES[op]]
        operands[position] = operands[position].to(other_device)
        with pytest.raises(RuntimeError) as caught:
            getattr(chainrule, op)(*operands)
    first, second = ("cuda:0", other_device) if position == 1 else (other_device, "cuda:0")
    if other_device == "cpu":
        first, second = "cuda:0", "cpu"
    assert str(caught.value) == (f"Expected all tensors to be on the same device, but found at least two devices, "
                                 f"{first} and {second}! (when checking the arguments of {_NAMED_AS.get(op, op)})")


@pytest.mark.parametrize("case", ["values", "number", "out", "rounding_mode", "node", "name"])
def test_true_divide_is_its_own_function_as_torchs(case):
    cases = {
        "values": lambda lib: lib.true_divide(lib.tensor([3, 4]), lib.tensor([2, 8])).tolist(),
        "number": lambda lib: lib.true_divide(4, 3).item(),
        "out": lambda lib: lib.true_divide(lib.tensor([3.0]), 2, out=lib.empty(1)).tolist(),
        "rounding_mode": lambda lib: lib.true_divide(lib.tensor([3]), lib.tensor([2]), rounding_mode="floor"),
        "node": lambda lib: lib.true_divide(lib.tensor([1.0], requires_grad=True), 2).grad_fn.name(),
        "name": lambda lib: lib.true_divide.__name__,
    }
    ours, theirs = on_both(cases[case])
    assert ours == theirs


# ---------------------------------------------------------------- 3. creation and module edges
_INTEGER_CONVERSIONS = [(-0.5, "uint8"), ([1.0, -0.5], "uint8"), (300.5, "uint8"), (255.7, "uint8"), (256.0, "uint8"),
                        (float("nan"), "uint8"), ([1.5, float("nan")], "int16"), (-128.5, "int8"), (127.5, "int8"),
                        (-0.9, "uint16"), (-0.5, "int8"), (-128.0, "int8"), (-0.0, "uint8"), (-1, "uint8"),
                        (float("inf"), "int32"), (1e300, "bool")]


@pytest.mark.parametrize("data, dtype", _INTEGER_CONVERSIONS, ids=str)
@pytest.mark.parametrize("creator", ["tensor", "as_tensor", "new_tensor"])
def test_a_float_into_an_integer_dtype_overflows_as_torchs(data, dtype, creator):
    def make(lib):
        target = getattr(lib, dtype)
        if creator == "new_tensor":
            return lib.zeros(1).new_tensor(data, dtype=target).tolist()
        return getattr(lib, creator)(data, dtype=target).tolist()

    ours, theirs = on_both(make)
    assert ours == theirs


def _module_list_after_insert(lib, index, probe):
    layers = lib.nn.ModuleList([lib.nn.Linear(1, 1), lib.nn.Linear(1, 2)])
    layers.insert(index, lib.nn.Linear(2, 3))
    return probe(layers)


_MODULE_LIST_PROBES = {
    "keys": lambda m: list(m._modules),
    "len": len,
    "iteration": lambda m: [layer.out_features for layer in m],
    "state_dict": lambda m: list(m.state_dict()),
    "named_modules": lambda m: [name for name, _ in m.named_modules()],
    "index_at_gap": lambda m: m[2].out_features,
    "last": lambda m: m[-1].out_features,
    "slice": lambda m: [layer.out_features for layer in m[1:]],
    "append": lambda m: (m.append(m[0]), list(m._modules), len(m))[1:],
}


@pytest.mark.parametrize("probe", list(_MODULE_LIST_PROBES))
@pytest.mark.parametrize("index", [0, 1, 2, 3, 5, -1])
def test_module_list_insert_keys_the_module_as_torch(index, probe):
    ours, theirs = on_both(lambda lib: _module_list_after_insert(lib, index, _MODULE_LIST_PROBES[probe]))
    assert ours == theirs


_CELL_INPUTS = {
    "tuple_hx": lambda lib, x, h: (x, (h,)),
    "list_input": lambda lib, x, h: ([[1.0, 2.0, 3.0]],),
    "pair_of_none": lambda lib, x, h: (x, (None, None)),
    "int64_input": lambda lib, x, h: (x.long(),),
    "int32_unbatched": lambda lib, x, h: (x[0].int(),),
    "double_input": lambda lib, x, h: (x.double(),),
    "half_input": lambda lib, x, h: (x.half(),),
    "double_hx": lambda lib, x, h: (x, h.double()),
}


@pytest.mark.parametrize("case", list(_CELL_INPUTS))
@pytest.mark.parametrize("cell", ["RNNCell", "GRUCell", "LSTMCell"])
def test_a_cell_refuses_bad_inputs_as_torch(cell, case):
    def run(lib):
        lib.manual_seed(0)
        module = getattr(lib.nn, cell)(3, 4)
        x, h = lib.randn(2, 3), lib.randn(2, 4)
        args = _CELL_INPUTS[case](lib, x, h)
        if cell == "LSTMCell" and case == "double_hx":
            args = (x, (h.double(), h.double()))
        out = module(*args)
        return [o.shape for o in out] if isinstance(out, tuple) else out.shape

    ours, theirs = on_both(run)
    assert ours == theirs


@pytest.mark.parametrize("build", [
    lambda nn: nn.MultiheadAttention(5, 2), lambda nn: nn.MultiheadAttention(0, 2),
    lambda nn: nn.MultiheadAttention(5, -1), lambda nn: nn.TransformerEncoderLayer(5, 2),
], ids=["not_divisible", "zero_embed_dim", "negative_heads", "in_an_encoder_layer"])
def test_multihead_attention_refuses_in_torchs_words(build):
    ours, theirs = on_both(lambda lib: build(lib.nn))
    assert ours == theirs


# ---------------------------------------------------------------- 4. sparse warnings
# torch warns once a process, so each library runs in a fresh one. (Its "Sparse invariant checks
# are implicitly disabled" warning is left out on purpose: chainrule always checks the indices, see
# check_sparse_tensor_invariants' docstring.)
_COMPRESSED_WARNINGS_SCRIPT = """
import warnings
import {lib} as lib
if {always}:
    lib.set_warn_always(True)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    lib.eye(2).to_sparse_csc()
    lib.sparse_csr_tensor(lib.tensor([0, 1, 2]), lib.tensor([0, 1]), lib.tensor([1.0, 2.0]), (2, 2))
    lib.eye(2).to_sparse(layout=lib.sparse_csr)
print([(w.category.__name__, str(w.message), w.lineno) for w in caught if "beta state" in str(w.message)])
"""
_compressed_warnings = batched(lambda lib: {mode: _COMPRESSED_WARNINGS_SCRIPT.format(lib=lib, always=mode == "always")
                                            for mode in ("once", "always")})


@pytest.mark.parametrize("mode", ["once", "always"])
def test_compressed_sparse_tensors_warn_beta_as_torch(mode):
    shown = [_compressed_warnings(lib)[mode].output() for lib in ("chainrule", "torch")]
    assert shown[0] == shown[1]
    assert "Sparse CSC tensor support is in beta state" in shown[0]


# ---------------------------------------------------------------- 5. spectral_norm's old checkpoints
def _old_spectral_checkpoint(lib, keys=("weight_orig", "bias", "weight_u", "weight")):
    """A checkpoint of torch's version-None spectral norm (saved after a training forward): the
    computed weight stored, no weight_v, no version in the metadata."""
    import collections

    import numpy as np

    rng = np.random.default_rng(7)
    weight_orig = rng.standard_normal((5, 3))
    v0 = rng.standard_normal(3)
    u = weight_orig @ v0 / np.linalg.norm(weight_orig @ v0)
    sigma = u @ weight_orig @ v0
    values = {"weight_orig": weight_orig, "bias": rng.standard_normal(5), "weight_u": u, "weight": weight_orig / sigma,
              "weight_v": v0 / np.linalg.norm(v0)}
    state = collections.OrderedDict((key, lib.tensor(values[key], dtype=lib.float32)) for key in keys)
    state._metadata = collections.OrderedDict({"": {"version": 1}})
    return state


def _load_into_spectral_linear(lib, state, strict=True):
    layer = lib.nn.utils.spectral_norm(lib.nn.Linear(3, 5))
    result = layer.load_state_dict(state, strict=strict)
    layer.eval()
    out = layer(lib.ones(2, 3))
    return (sorted(result.missing_keys), sorted(result.unexpected_keys), layer.weight_v.tolist(), out.tolist())


def _close(ours, theirs):
    import numpy as np

    assert ours[:2] == theirs[:2]
    for a, b in zip(ours[2:], theirs[2:]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_spectral_norm_converts_an_old_checkpoint_as_torch():
    ours, theirs = on_both(lambda lib: _load_into_spectral_linear(lib, _old_spectral_checkpoint(lib)))
    _close(ours, theirs)


def test_spectral_norm_loads_the_current_format_without_its_metadata_as_is():
    keys = ("weight_orig", "bias", "weight_u", "weight_v")
    ours, theirs = on_both(lambda lib: _load_into_spectral_linear(lib, _old_spectral_checkpoint(lib, keys)))
    _close(ours, theirs)


@pytest.mark.parametrize("strict", [True, False])
def test_spectral_norm_old_checkpoint_missing_a_part_as_torch(strict):
    keys = ("weight_orig", "bias", "weight")
    ours, theirs = on_both(lambda lib: _load_into_spectral_linear(lib, _old_spectral_checkpoint(lib, keys), strict)[:2])
    assert ours == theirs


def test_remove_spectral_norm_drops_the_load_hook():
    """torch keeps its pre-hook after remove_spectral_norm (it looks for it by type while it is stored
    wrapped), so its plain module refuses its own state dict; chainrule's loads it."""
    layer = chainrule.nn.utils.remove_spectral_norm(chainrule.nn.utils.spectral_norm(chainrule.nn.Linear(3, 5)))
    assert not layer._load_state_dict_pre_hooks
    assert layer.load_state_dict(layer.state_dict()).missing_keys == []


# ---------------------------------------------------------------- 6. float8 on the device, dot's out=
_FLOAT8_SOURCE = [1.0, 2.5, -3.0, 500.0, float("nan"), float("inf"), -1e-9, 0.0, 3e38, -0.0]


@pytest.mark.parametrize("source", ["float32", "bfloat16", "float8_e5m2"])
@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"])
def test_a_device_tensor_casts_to_float8_as_torch_on_the_cpu(dtype, source):
    """torch's CUDA cast rounds as its CPU one; the stand-in's bytes must be torch's CPU bytes."""
    from chainrule._backend import use_standin_cuda
    from chainrule.testing import standin

    def source_tensor(lib):
        # (torch writes a float32 NaN as the bfloat16 0xFFFF, chainrule as 0x7FC0, on the CPU too: a
        # difference of its own, left out here)
        values = [v for v in _FLOAT8_SOURCE if v == v] if source == "bfloat16" else _FLOAT8_SOURCE
        return lib.tensor(values).to(getattr(lib, source))

    with use_standin_cuda():
        x = source_tensor(chainrule).to("cuda")
        standin.reset_transfers()
        on_device = x.to(getattr(chainrule, dtype))
        assert standin.transfers() == 0 and on_device.device.type == "cuda"  # cast where it lies
        ours = on_device.view(chainrule.uint8).cpu().tolist()
    assert ours == source_tensor(torch).to(getattr(torch, dtype)).view(torch.uint8).tolist()


def _out_case(op, out_shape, out_dtype, other_shape=(2,)):
    def case(lib):
        out = lib.empty(out_shape, dtype=getattr(lib, out_dtype))
        with lib.no_grad():
            try:
                return getattr(lib, op)(lib.tensor([1.0, 2.0]), lib.ones(other_shape), out=out).tolist(), out.shape
            except RuntimeError as error:
                # (torch has resized out by then; chainrule refuses before changing anything)
                return str(error)
    return case


@pytest.mark.parametrize("op", ["dot", "vdot", "matmul"])
@pytest.mark.parametrize("out_shape, out_dtype, other_shape", [
    ((3,), "int64", (2,)), ((), "int64", (2,)), ((3,), "float32", (2,)), ((0,), "int64", (2,)),
    ((3,), "int64", (3,)), ((3,), "int64", (2, 2)),
], ids=str)
def test_a_vector_product_resizes_out_before_its_dtype_check_as_torch(op, out_shape, out_dtype, other_shape):
    import warnings

    def warned(lib):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _out_case(op, out_shape, out_dtype, other_shape)(lib)
        return result, [str(w.message) for w in caught]

    ours, theirs = on_both(warned)
    assert ours == theirs
