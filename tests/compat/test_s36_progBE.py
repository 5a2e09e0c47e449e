"""Edges found while writing the gin_graph_classification, temperature_scaling_ece and xlstm_mlstm
programs (session 36, lane progBE), each checked against torch 2.13.

A case is a function of the library (``torch`` or ``chainrule``); what a user sees of it (its value,
or its error's type and message) must be torch's."""

from __future__ import annotations

import pytest

import chainrule

torch = pytest.importorskip("torch")


def outcome(case, lib):
    """("ok", dtype name, values) or ("error", type name, message) for ``case(lib)``."""
    try:
        result = case(lib)
        return "ok", str(result.dtype).split(".")[-1], result.tolist()
    except Exception as error:  # the error is part of what is compared
        return "error", type(error).__name__, str(error)


# --- group_norm's weight and bias must be vectors of the channel count ----------------------------
# torch checks them after the group count and before the dtype; its bias message prints the
# weight's shape ([0] with no weight), and that text is what a user sees.
GROUP_NORM_AFFINE_CASES = {
    "weight too short": lambda m: m.nn.functional.group_norm(m.ones(2, 6), 2, weight=m.ones(5)),
    "weight of C elements but 2-d": lambda m: m.nn.functional.group_norm(m.ones(2, 6), 2, weight=m.ones(2, 3)),
    "0-d weight": lambda m: m.nn.functional.group_norm(m.ones(2, 6), 2, weight=m.ones(())),
    "bias wrong, no weight": lambda m: m.nn.functional.group_norm(m.ones(2, 6), 2, bias=m.ones(5)),
    "bias wrong, weight right": lambda m: m.nn.functional.group_norm(m.ones(2, 6), 2, weight=m.ones(6),
                                                                     bias=m.ones(7)),
    "both wrong": lambda m: m.nn.functional.group_norm(m.ones(2, 6), 2, weight=m.ones(7), bias=m.ones(7)),
    "integer input, wrong weight": lambda m: m.nn.functional.group_norm(m.ones(2, 6, dtype=m.long), 2,
                                                                        weight=m.ones(7)),
    "indivisible groups first": lambda m: m.nn.functional.group_norm(m.ones(2, 6), 4, weight=m.ones(7)),
    "float16 input": lambda m: m.nn.functional.group_norm(m.ones(2, 6, dtype=m.float16), 2, weight=m.ones(5)),
    "bfloat16 input": lambda m: m.nn.functional.group_norm(m.ones(2, 6, dtype=m.bfloat16), 2,
                                                           weight=m.ones(5, dtype=m.bfloat16)),
    "3-d input, weight of the last dim": lambda m: m.nn.functional.group_norm(m.ones(2, 6, 3), 2, weight=m.ones(3)),
    "torch.group_norm positionally": lambda m: m.group_norm(m.ones(2, 6, 3), 2, m.ones(3)),
    "empty batch": lambda m: m.nn.functional.group_norm(m.ones(0, 6, 3), 2, weight=m.ones(3)),
    "nn.GroupNorm given a wrong-width input": lambda m: m.nn.GroupNorm(2, 4)(m.ones(2, 6)),
    "right shapes": lambda m: m.nn.functional.group_norm(m.arange(12.0).view(2, 6), 3, weight=m.full((6,), 2.0),
                                                         bias=m.ones(6)),
}


@pytest.mark.parametrize("name", list(GROUP_NORM_AFFINE_CASES))
def test_group_norm_refuses_an_affine_that_is_not_a_channel_vector_as_torch_does(name):
    case = GROUP_NORM_AFFINE_CASES[name]
    expected, got = outcome(case, torch), outcome(case, chainrule)
    if expected[0] == "ok":
        assert got[:2] == expected[:2]
        assert torch.allclose(torch.tensor(got[2]), torch.tensor(expected[2]), atol=1e-5)
    else:
        assert got == expected


def test_a_refused_group_norm_leaves_its_input_and_parameters_alone():
    module = chainrule.nn.GroupNorm(2, 4)
    before = [p.detach().clone() for p in module.parameters()]
    x = chainrule.ones(2, 6, requires_grad=True)
    with pytest.raises(RuntimeError, match="Expected weight to be a vector"):
        module(x)
    assert x.grad is None and x._version == 0
    assert all(chainrule.equal(p, q) for p, q in zip(module.parameters(), before))


# --- scatter_reduce / index_reduce amax, amin with include_self=False: torch's tie count ----------
# A GNN's max readout is torch.zeros(G, F).scatter_reduce(0, index, h, "amax", include_self=False).
# torch's rule counts the base's own value among the ties even though include_self=False (and then
# zeroes the base's gradient where src was written), so where a group's maximum equals the base
# (0 after a ReLU) each of its n tied sources gets 1/(n + 1) of the gradient.
def scatter_max_readout_gradients(lib, reduce, include_self, via_index_reduce=False):
    source = lib.tensor([[0.0, 2.0], [0.0, 2.0], [-1.0, 1.0], [0.0, -3.0], [3.0, -3.0]], requires_grad=True)
    base = lib.tensor([[0.0, 0.0], [5.0, -3.0], [0.0, 1.0]], requires_grad=True)
    groups = lib.tensor([0, 0, 1, 2, 2])
    if via_index_reduce:
        out = base.index_reduce(0, groups, source, reduce, include_self=include_self)
    else:
        out = base.scatter_reduce(0, groups.unsqueeze(-1).expand(5, 2), source, reduce, include_self=include_self)
    weights = lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    (out * weights).sum().backward()
    return out.tolist(), source.grad.tolist(), base.grad.tolist()


@pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta")
@pytest.mark.parametrize("via_index_reduce", [False, True], ids=["scatter_reduce", "index_reduce"])
@pytest.mark.parametrize("include_self", [False, True])
@pytest.mark.parametrize("reduce", ["amax", "amin"])
def test_extreme_reductions_share_ties_with_the_base_as_torch_does(reduce, include_self, via_index_reduce):
    expected = scatter_max_readout_gradients(torch, reduce, include_self, via_index_reduce)
    got = scatter_max_readout_gradients(chainrule, reduce, include_self, via_index_reduce)
    for mine, theirs in zip(got, expected):
        assert torch.allclose(torch.tensor(mine), torch.tensor(theirs), atol=1e-6), (got, expected)


def test_a_graph_readout_whose_maximum_is_the_zeros_base_gets_torchs_gradient():
    def readout_gradient(lib):
        lib.manual_seed(3)
        h = lib.randn(7, 4)
        h[:3, 0] = 0.0  # graph 0's first channel: three nodes tie at 0, the zeros base's value
        h.requires_grad_(True)
        batch = lib.tensor([0, 0, 0, 1, 1, 2, 2])
        hidden = 2.0 * h
        pooled = lib.zeros(3, 4).scatter_reduce(0, batch.unsqueeze(-1).expand_as(hidden), hidden,
                                                reduce="amax", include_self=False)
        pooled.pow(2).add(pooled).sum().backward()
        return h.grad

    expected = readout_gradient(torch)
    assert expected[:3, 0].tolist() == [0.5, 0.5, 0.5]  # 2 * (2 * 0 + 1) / (3 ties + the base)
    assert torch.allclose(torch.tensor(readout_gradient(chainrule).tolist()), expected, atol=1e-6)


# --- bucketize / searchsorted out=: only the index dtype out_int32 names ------------------------
# The vectorised ECE's bucketize(confidences, edges, out=bins) must get torch's refusal of a float
# (or mismatched integer) out, not a cast into it.
def bucket_cases():
    def case(function, out_dtype, out_int32, scalar=False):
        def run(lib):
            values = lib.tensor([0.1, 0.5, 0.9]) if not scalar else 0.3
            edges = lib.tensor([0.2, 0.6])
            out = lib.empty(() if scalar else 3, dtype=getattr(lib, out_dtype))
            if function == "bucketize":
                return lib.bucketize(values, edges, out_int32=out_int32, out=out)
            return lib.searchsorted(edges, values, out_int32=out_int32, out=out)
        return run

    return {f"{function} {'0-d ' if scalar else ''}out {out_dtype} out_int32={out_int32}":
            case(function, out_dtype, out_int32, scalar)
            for function in ("bucketize", "searchsorted")
            for out_dtype in ("float32", "int32", "int64", "int16")
            for out_int32 in (False, True)
            for scalar in ((False, True) if function == "searchsorted" else (False,))}


BUCKET_CASES = bucket_cases()


@pytest.mark.parametrize("name", list(BUCKET_CASES))
def test_bucket_index_out_must_have_the_index_dtype_as_torch_requires(name):
    assert outcome(BUCKET_CASES[name], chainrule) == outcome(BUCKET_CASES[name], torch)


def test_a_refused_bucket_out_is_left_unwritten():
    out = chainrule.full((3,), 7.0)
    with pytest.raises(RuntimeError, match="output tensor's dtype is wrong"):
        chainrule.bucketize(chainrule.tensor([0.1, 0.5, 0.9]), chainrule.tensor([0.2, 0.6]), out=out)
    assert out.tolist() == [7.0, 7.0, 7.0] and out._version == 0


# --- repeat_interleave's output_size: torch's checks and words for each overload ----------------
# A batch vector is torch.repeat_interleave(torch.arange(G), nodes_per_graph, output_size=N); a
# wrong N must fail as torch's does (the counts-only overload ignored it).
REPEAT_INTERLEAVE_CASES = {
    "tensor counts, too few": lambda m: m.repeat_interleave(m.arange(3), m.tensor([2, 0, 3]), output_size=4),
    "tensor counts, too many": lambda m: m.repeat_interleave(m.arange(3), m.tensor([2, 0, 3]), output_size=6),
    "tensor counts, right": lambda m: m.repeat_interleave(m.arange(3), m.tensor([2, 0, 3]), output_size=5),
    "counts only, wrong": lambda m: m.repeat_interleave(m.tensor([2, 0, 3]), output_size=4),
    "counts only, right": lambda m: m.repeat_interleave(m.tensor([2, 0, 3]), output_size=5),
    "counts only, negative": lambda m: m.repeat_interleave(m.tensor([2, 0, 3]), output_size=-2),
    "int repeats, too few": lambda m: m.repeat_interleave(m.arange(3), 2, output_size=5),
    "int repeats, too many": lambda m: m.repeat_interleave(m.arange(3), 2, output_size=7),
    "int repeats, negative": lambda m: m.repeat_interleave(m.arange(3), 2, output_size=-1),
    "int repeats along a dim": lambda m: m.repeat_interleave(m.arange(6).view(2, 3), 2, dim=1, output_size=5),
    "tensor counts along a dim": lambda m: m.repeat_interleave(m.arange(6).view(2, 3), m.tensor([1, 2]), dim=0,
                                                               output_size=2),
    "one count broadcast": lambda m: m.repeat_interleave(m.arange(6).view(2, 3), m.tensor([1]), dim=0, output_size=2),
    "0-d count": lambda m: m.repeat_interleave(m.arange(3), m.tensor(2), output_size=5),
    "the method": lambda m: m.arange(3).repeat_interleave(m.tensor([2, 0, 3]), output_size=4),
    "tensor counts, negative": lambda m: m.repeat_interleave(m.arange(3), m.tensor([2, 0, 3]), output_size=-1),
    "negative counts first": lambda m: m.repeat_interleave(m.arange(3), m.tensor([2, -1, 3]), output_size=4),
    "zero repeats, one asked": lambda m: m.repeat_interleave(m.arange(3), 0, output_size=1),
}


@pytest.mark.parametrize("name", list(REPEAT_INTERLEAVE_CASES))
def test_repeat_interleave_output_size_is_checked_as_torch_checks_it(name):
    case = REPEAT_INTERLEAVE_CASES[name]
    assert outcome(case, chainrule) == outcome(case, torch)


# --- scatter(reduce='add' | 'multiply'): torch's deprecation warning and no derivative -------------
# A hand-written sum readout by x.scatter(0, index, h, reduce='add') must warn as torch's does and
# refuse backward ("derivative for aten::scatter is not implemented"), not give scatter_add's gradient.
def legacy_scatter(lib, src_is_tensor, reduce):
    import warnings

    lib.set_warn_always(True)  # torch's TORCH_WARN_ONCE, shown on every call while this is set
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            x = lib.ones(3, requires_grad=True)
            src = lib.tensor([1.0, 2.0], requires_grad=True) if src_is_tensor else 2.0
            y = x.scatter(0, lib.tensor([0, 0]), src, reduce=reduce)
            shown = [type(y.grad_fn).__name__, y.requires_grad, y.tolist()]
            try:
                y.sum().backward()
                shown.append(("ok", x.grad.tolist()))
            except RuntimeError as error:
                shown.append(("error", str(error)))
    finally:
        lib.set_warn_always(False)
    return shown, [(w.category.__name__, str(w.message)) for w in caught]


@pytest.mark.parametrize("reduce", ["add", "multiply"])
@pytest.mark.parametrize("src_is_tensor", [True, False], ids=["tensor src", "value"])
def test_legacy_scatter_reduce_warns_and_has_no_derivative_as_in_torch(src_is_tensor, reduce):
    assert legacy_scatter(chainrule, src_is_tensor, reduce) == legacy_scatter(torch, src_is_tensor, reduce)
