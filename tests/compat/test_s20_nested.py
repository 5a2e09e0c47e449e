"""torch.nested ops widened in session 20 (from torch's njt_op_db trial), against torch 2.13's NJT.

Each case builds the same jagged tensor on both libraries from one ``values`` leaf and its offsets,
runs the op, and compares every component; gradients of the values are compared with torch's
where its NJT can take them, and checked by float64 gradcheck for the new differentiable paths.
"""

import warnings

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as CF
from chainrule.autograd.gradcheck import gradcheck

torch = pytest.importorskip("torch")
torch_F = torch.nn.functional

LENGTHS = (2, 4, 3)
FEATURES = 3


def _jagged(lib, width=FEATURES, seed=0, lengths=LENGTHS, holes=False):
    """A (3, j, width) jagged tensor over one values leaf (its last row of each component a gap
    when ``holes``); returns (nested, values leaf)."""
    values = np.random.default_rng(seed).standard_normal((sum(lengths), width)).astype(np.float32)
    leaf = lib.tensor(values, requires_grad=True)
    offsets = lib.tensor(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    if holes:
        gaps = lib.tensor(np.array(lengths, dtype=np.int64) - 1)
        return lib.nested.nested_tensor_from_jagged(leaf, offsets, gaps), leaf
    return lib.nested.nested_tensor_from_jagged(leaf, offsets), leaf


def _components(result):
    """Each output's components (a nested one) or itself (dense), as arrays."""
    if isinstance(result, (tuple, list)):
        return [_components(item) for item in result]
    if result.is_nested:
        return [component.detach().numpy() for component in result.unbind()]
    return result.detach().numpy()


def _floating(result):
    if isinstance(result, (tuple, list)):
        return [part for item in result for part in _floating(item)]
    parts = result.unbind() if result.is_nested else [result]
    return [part for part in parts if part.is_floating_point() and part.requires_grad]


def _assert_same(ours, theirs):
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs)
        for mine, other in zip(ours, theirs):
            _assert_same(mine, other)
    else:
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def _values_gradient(lib, result, leaf):
    parts = _floating(result)
    rng = np.random.default_rng(11)
    loss = sum((part * lib.tensor(rng.standard_normal(tuple(part.shape)).astype(np.float32))).sum()
               for part in parts)
    return lib.autograd.grad(loss, leaf)[0].numpy()


BATCH_MATRICES = np.random.default_rng(3).standard_normal((3, FEATURES, 2)).astype(np.float32)
LEFT_MATRICES = np.random.default_rng(4).standard_normal((3, 2, FEATURES)).astype(np.float32)
PER_COMPONENT = np.random.default_rng(5).standard_normal((3, FEATURES, 1)).astype(np.float32)

CASES = {
    "logaddexp": lambda lib, F, nt: lib.logaddexp(nt, nt * 0.5),
    "xlog1py": lambda lib, F, nt: lib.special.xlog1py(nt, nt.abs()),
    "i0e": lambda lib, F, nt: lib.special.i0e(nt),
    "sinc": lambda lib, F, nt: lib.sinc(nt),
    "polygamma": lambda lib, F, nt: lib.polygamma(1, nt.abs() + 1),
    "heaviside": lambda lib, F, nt: lib.heaviside(nt, nt * 0 + 0.5),
    "isclose": lambda lib, F, nt: lib.isclose(nt, nt + 1e-9),
    "eq": lambda lib, F, nt: lib.eq(nt, nt.round()),
    "frexp": lambda lib, F, nt: tuple(lib.frexp(nt)),
    "operand_per_component_transposed": lambda lib, F, nt: nt.transpose(1, 2) * lib.tensor(PER_COMPONENT),
    "max_normal_dim": lambda lib, F, nt: tuple(nt.max(dim=-1)),
    "argmax_ragged_dim": lambda lib, F, nt: nt.argmax(dim=1),
    "argmin_normal_dim": lambda lib, F, nt: nt.argmin(dim=2, keepdim=True),
    "select_component": lambda lib, F, nt: nt.select(0, 1),
    "select_normal_dim": lambda lib, F, nt: nt.select(2, 1),
    "narrow_normal_dim": lambda lib, F, nt: nt.narrow(2, 1, 2),
    "chunk_batch_dim": lambda lib, F, nt: tuple(nt.chunk(2, 0)),
    "split_with_sizes": lambda lib, F, nt: tuple(nt.split([1, 2], dim=2)),
    "matmul_batched": lambda lib, F, nt: nt @ lib.tensor(BATCH_MATRICES),
    "bmm": lambda lib, F, nt: lib.bmm(nt, lib.tensor(BATCH_MATRICES)),
    "dense_matmul_transposed": lambda lib, F, nt: lib.matmul(lib.tensor(LEFT_MATRICES), nt.transpose(1, 2)),
    "rms_norm": lambda lib, F, nt: F.rms_norm(nt, (FEATURES,), lib.linspace(0.5, 1.5, FEATURES)),
    "index_put_batch_and_ragged": lambda lib, F, nt: lib.index_put(
        nt, (lib.tensor([0, 1, 2]), lib.tensor([1, 3, 0])), lib.tensor(7.0)),
    "index_put_batch_only": lambda lib, F, nt: lib.index_put(nt, (lib.tensor([2, 0]),), lib.tensor(-1.0)),
    "permute": lambda lib, F, nt: nt.unflatten(-1, (1, FEATURES)).permute(0, 3, 1, 2),
    "expand_size_one_dim": lambda lib, F, nt: nt.sum(-1, keepdim=True).expand(3, nt.shape[1], 5),
    "expand_as_itself": lambda lib, F, nt: (nt * 2).expand_as(nt),
    "cat": lambda lib, F, nt: lib.cat([nt, nt * 2], dim=-1),
    "stack": lambda lib, F, nt: lib.stack([nt, nt.exp()], dim=-1),
}
# torch 2.13's NJT has no gradient for these (a missing backward kernel or a crash): its values are
# compared, chainrule's gradient is checked by gradcheck below
TORCH_HAS_NO_GRADIENT = {"i0e", "sinc", "polygamma", "split_with_sizes", "frexp", "max_normal_dim",
                         "heaviside", "narrow_normal_dim", "select_normal_dim", "expand_size_one_dim"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_widened_op_matches_torch_nested(name):
    results, gradients = [], []
    for lib, F in ((chainrule, CF), (torch, torch_F)):
        nested, leaf = _jagged(lib)
        result = CASES[name](lib, F, nested)
        results.append(_components(result))
        if name not in TORCH_HAS_NO_GRADIENT and _floating(result):
            gradients.append(_values_gradient(lib, result, leaf))
    _assert_same(*results)
    if gradients:
        np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-4, atol=1e-5)


def test_new_differentiable_paths_pass_gradcheck_in_float64():
    rng = np.random.default_rng(9)
    values = chainrule.tensor(rng.standard_normal((sum(LENGTHS), FEATURES)) + 2.0, requires_grad=True)
    offsets = chainrule.tensor(np.concatenate([[0], np.cumsum(LENGTHS)]))
    matrices = chainrule.tensor(rng.standard_normal((3, FEATURES, 2)))
    per_component = chainrule.tensor(rng.standard_normal((3, FEATURES, 1)))

    def paths(values):
        nt = chainrule.nested.nested_tensor_from_jagged(values, offsets)
        first, second = nt.chunk(2, 0)
        outputs = [first.values(), second.values(), nt.select(2, 1).values(), (nt @ matrices).values(),
                   (nt.transpose(1, 2) * per_component).values(), chainrule.cat([nt, nt.sin()], -1).values(),
                   nt.nanmean(dim=1), chainrule.special.i0e(nt).values(), chainrule.polygamma(1, nt).values(),
                   CF.rms_norm(nt, (FEATURES,)).values(), nt.split([1, 2], dim=2)[1].values(),
                   nt.sum(-1, keepdim=True).expand(3, nt.shape[1], 2).values()]
        return tuple(outputs)

    assert gradcheck(paths, (values,))


def test_nanmean_over_the_ragged_dim_matches_torch_per_component():
    # torch 2.13's NJT has no nanmean over the ragged dim (no nansum kernel): torch on each component
    nested, leaf = _jagged(chainrule)
    nested = chainrule.where(nested > 1.0, chainrule.full_like(nested, float("nan")), nested)
    ours = nested.nanmean(dim=1).detach().numpy()
    dense = torch.tensor(leaf.detach().numpy())
    dense = torch.where(dense > 1.0, torch.nan, dense)
    theirs = torch.stack([part.nanmean(0) for part in dense.split(LENGTHS)]).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_chunk_of_the_batch_dim_gives_torch_offsets():
    ours = _jagged(chainrule)[0].chunk(2, 0)
    theirs = _jagged(torch)[0].chunk(2, 0)
    assert [chunk.offsets().tolist() for chunk in ours] == [chunk.offsets().tolist() for chunk in theirs]


def test_embedding_embedding_bag_and_masked_select_of_nested_tensors_match_torch():
    weight = np.random.default_rng(2).standard_normal((10, 4)).astype(np.float32)
    picked, bagged, selected = [], [], []
    for lib, F in ((chainrule, CF), (torch, torch_F)):
        indices = lib.nested.nested_tensor_from_jagged(lib.tensor([1, 4, 4, 9, 0, 2]), lib.tensor([0, 2, 6]))
        picked.append(_components(F.embedding(indices, lib.tensor(weight))))
        bagged.append(F.embedding_bag(indices, lib.tensor(weight), mode="max").numpy())
        nested = _jagged(lib, width=1)[0].squeeze(-1)
        selected.append(_components(lib.masked_select(nested, nested > 0)))
    _assert_same(*picked)
    _assert_same(*bagged)
    _assert_same(*selected)


REFUSALS = {
    "select_ragged_dim": lambda lib, nt, holey: nt.select(1, 0),
    "select_normal_dim_with_holes": lambda lib, nt, holey: holey.select(2, 0),
    "chunk_with_holes": lambda lib, nt, holey: holey.chunk(2, -1),
    "narrow_transposed": lambda lib, nt, holey: nt.transpose(1, 2).narrow(1, 0, 1),
    "narrow_batch_dim": lambda lib, nt, holey: nt.narrow(0, 0, 1),
    "split_ragged_dim": lambda lib, nt, holey: nt.split(1, dim=1),
    "cat_ragged_dim": lambda lib, nt, holey: lib.cat([nt, nt], dim=1),
    "stack_batch_dim": lambda lib, nt, holey: lib.stack([nt, nt], dim=0),
    "bmm_not_3d": lambda lib, nt, holey: lib.bmm(nt, lib.ones(FEATURES, 2)),
    "rms_norm_over_ragged_dim": lambda lib, nt, holey: lib.nn.functional.rms_norm(nt, (4, FEATURES)),
    "masked_select_3d": lambda lib, nt, holey: lib.masked_select(nt, nt > 0),
    "matmul_ragged_last": lambda lib, nt, holey: nt.transpose(1, 2) @ lib.ones(4, 2),
    "argmax_batch_dim": lambda lib, nt, holey: nt.argmax(dim=0),
    "permute_batch_dim": lambda lib, nt, holey: nt.permute(1, 0, 2),
    "squeeze_every_dim": lambda lib, nt, holey: nt.squeeze(),
    "permute_with_holes": lambda lib, nt, holey: holey.permute(0, 2, 1),
    "expand_other_raggedness": lambda lib, nt, holey: nt.expand(3, 7, FEATURES),
    "squeeze_ragged_dim": lambda lib, nt, holey: nt.squeeze(1),
    "unbind_normal_dim": lambda lib, nt, holey: nt.unbind(2),
    "linear_ragged_last": lambda lib, nt, holey: lib.nn.functional.linear(nt.transpose(1, 2), lib.ones(2, 4)),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_jagged_refusals_raise_torch_type_and_message(name):
    errors = []
    for lib in (chainrule, torch):
        nested, holey = _jagged(lib)[0], _jagged(lib, holes=True)[0]
        with pytest.raises((RuntimeError, ValueError)) as caught:  # NotImplementedError is a RuntimeError
            REFUSALS[name](lib, nested, holey)
        errors.append(caught.value)
    assert type(errors[0]) is type(errors[1])
    # matmul's and expand's messages print each library's Size type or nested int: compare up to the shapes
    if name not in ("matmul_ragged_last", "expand_other_raggedness"):
        assert str(errors[0]) == str(errors[1])


def test_comparisons_are_named_as_torch_names_them():
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        assert getattr(chainrule, name).__name__ == getattr(torch, name).__name__ == name


@pytest.mark.parametrize("call", ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "operator_and",
                                  "operator_invert", "complex_xor"])
def test_bitwise_ops_on_floating_tensors_raise_torch_errors(call):
    calls = {
        "bitwise_and": lambda lib, x: lib.bitwise_and(x, x),
        "bitwise_or": lambda lib, x: lib.bitwise_or(x.double(), 1),
        "bitwise_xor": lambda lib, x: lib.bitwise_xor(x.half(), x.half()),
        "bitwise_not": lambda lib, x: lib.bitwise_not(x),
        "operator_and": lambda lib, x: lib.ones(2, dtype=lib.int64) & x,
        "operator_invert": lambda lib, x: ~x,
        "complex_xor": lambda lib, x: x.to(lib.complex64) ^ x.to(lib.complex64),
    }
    errors = []
    for lib in (chainrule, torch):
        with pytest.raises((NotImplementedError, TypeError)) as caught:
            calls[call](lib, lib.ones(2))
        errors.append(caught.value)
    assert type(errors[0]) is type(errors[1]) and str(errors[0]) == str(errors[1])


def test_gradients_stay_out_of_the_holes_of_a_narrowed_tensor():
    # the gaps hold negative numbers: pow there has a NaN derivative, which must reach neither the
    # dense tensor the components were narrowed from nor the exponent (torch: zeros, per component)
    base = np.array([[1.5, 2.0, -1.0], [0.5, -2.0, -3.0]], dtype=np.float32)
    grads = []
    for lib in (chainrule, torch):
        dense = lib.tensor(base, requires_grad=True)
        exponent = lib.tensor(0.5, requires_grad=True)
        if lib is chainrule:
            nested = lib.nested.narrow(dense, 1, 0, lib.tensor([2, 1]), layout=lib.jagged)
            parts = lib.pow(nested, exponent).unbind()
        else:  # torch's NJT pow with holes has no backward: the same op on each component
            parts = [lib.pow(dense[0, :2], exponent), lib.pow(dense[1, :1], exponent)]
        sum(part.sum() for part in parts).backward()
        grads.append((dense.grad.numpy(), exponent.grad.numpy()))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


ENCODER_CASES = {
    "inference_bool_mask": (True, [[False] * 5, [False, False, False, True, True]]),
    "inference_float_mask": (True, [[0.0] * 5, [0.0, 0.0, 0.0, float("-inf"), float("-inf")]]),
    "inference_mask_not_left_aligned": (True, [[False] * 5, [True, False, False, False, False]]),
    "with_gradients": (False, [[False] * 5, [False, False, False, True, True]]),
}


@pytest.mark.parametrize("case", sorted(ENCODER_CASES))
def test_transformer_encoder_inference_packs_padded_rows_as_torch(case):
    # torch's inference fast path runs the layers on a nested tensor of the unpadded rows and pads
    # the result with zeros; with gradients wanted, or a mask it cannot pack, it does not
    no_grad, mask_rows = ENCODER_CASES[case]
    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(
        8, 2, dim_feedforward=16, dropout=0.0, batch_first=True), num_layers=1, norm=torch.nn.LayerNorm(8)).eval()
    ours = chainrule.nn.TransformerEncoder(chainrule.nn.TransformerEncoderLayer(
        8, 2, dim_feedforward=16, dropout=0.0, batch_first=True), num_layers=1, norm=chainrule.nn.LayerNorm(8)).eval()
    ours.load_state_dict({key: chainrule.tensor(value.detach().numpy()) for key, value in theirs.state_dict().items()})
    source = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    outputs = []
    for lib, model in ((chainrule, ours), (torch, theirs)):
        with lib.no_grad() if no_grad else lib.enable_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's once-per-process prototype warning for the packing
            outputs.append(model(lib.tensor(source), src_key_padding_mask=lib.tensor(mask_rows)).detach().numpy())
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)


def test_masked_reductions_refuse_a_nested_input_with_torchs_value_error():
    (ours, _), (theirs, _) = _jagged(chainrule), _jagged(torch)
    for name in ("sum", "amax", "mean", "var", "softmax"):
        with pytest.raises(ValueError) as expected:
            getattr(torch.masked, name)(theirs, 1 if name != "softmax" else -1)
        with pytest.raises(ValueError) as got:
            getattr(chainrule.masked, name)(ours, 1 if name != "softmax" else -1)
        assert str(got.value).replace("chainrule.", "torch.") == str(expected.value)
