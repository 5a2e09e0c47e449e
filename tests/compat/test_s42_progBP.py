"""Differences found by running the Informer, SchNet and Sketch-RNN corpus programs and probing the
APIs around them on torch and chainrule; each test runs the same call on both libraries."""

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import chainrule  # noqa: E402


def _raised(lib, build):
    with pytest.raises(Exception) as info:
        build(lib)
    return info.type, str(info.value)


def _set_sorted(message):
    """A message with each ``{'a', 'b'}`` set display in sorted order: a set literal's order in a
    message follows the hash seed of the process that compiled it, in torch's source and in ours."""
    return re.sub(r"\{[^{}]*\}", lambda m: "{" + ", ".join(sorted(m.group(0)[1:-1].split(", "))) + "}", message)


CONV_CONSTRUCTOR_REFUSALS = [
    ("Conv1d", (4, 4, 3), {"groups": 0}),
    ("Conv2d", (4, 4, 3), {"groups": -1}),
    ("Conv2d", (4, 4, 3), {"groups": 3}),
    ("Conv3d", (4, 6, 3), {"groups": 4}),
    ("Conv1d", (3, 4, 3), {"padding": 1, "padding_mode": "circ"}),
    ("Conv2d", (4, 4, 3), {"padding": "full"}),
    ("Conv1d", (4, 4, 3), {"padding": "same", "stride": 2}),
    ("ConvTranspose2d", (4, 4, 3), {"groups": 0}),
    ("ConvTranspose1d", (4, 4, 3), {"groups": 3}),
    ("LazyConv1d", (4, 3), {"padding_mode": "wrap"}),
]


@pytest.mark.parametrize("name, args, kwargs", CONV_CONSTRUCTOR_REFUSALS,
                         ids=[f"{name}-{kwargs}" for name, _, kwargs in CONV_CONSTRUCTOR_REFUSALS])
def test_conv_constructor_refusals_are_torchs_bare_words(name, args, kwargs):
    # torch's _ConvNd raises these without naming the class: the message already says which argument
    expected_type, expected = _raised(torch, lambda lib: getattr(lib.nn, name)(*args, **kwargs))
    got_type, got = _raised(chainrule, lambda lib: getattr(lib.nn, name)(*args, **kwargs))
    assert got_type is expected_type
    assert _set_sorted(got) == _set_sorted(expected)


def test_conv_with_a_deep_error_raises_torchs_bare_words():
    # an error from inside the build (the weight's empty() on a float size) is torch's TypeError, bare as
    # torch's _ConvNd raises it (test_s42_mendAB compares it with torch's)
    with pytest.raises(TypeError, match=r"^empty\(\): argument 'size' failed to unpack"):
        chainrule.nn.Conv2d(4, 4, 3, groups=2.0)


def _node_chain(output):
    """Node names from ``output`` down its first edges to the leaf."""
    names, node = [], output.grad_fn
    while node is not None and node.name() != "torch::autograd::AccumulateGrad":
        names.append(node.name())
        node = next((edge for edge, _ in node.next_functions if edge is not None), None)
    return names


ONE_D_POOLS = [
    ("max_pool1d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("max_pool1d", {"kernel_size": 2}),
    ("max_pool1d", {"kernel_size": 3, "dilation": 2, "ceil_mode": True}),
    ("max_pool1d", {"kernel_size": 3, "return_indices": True}),
    ("avg_pool1d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg_pool1d", {"kernel_size": 3, "padding": 1, "count_include_pad": False, "ceil_mode": True}),
    ("adaptive_max_pool1d", {"output_size": 4}),
    ("adaptive_max_pool1d", {"output_size": 4, "return_indices": True}),
    ("lp_pool1d", {"norm_type": 2, "kernel_size": 3}),
]


def _pool_run(lib, name, kwargs, values, permuted):
    leaf = lib.tensor(values).requires_grad_()
    x = leaf.permute(0, 2, 1) if permuted else leaf
    out = getattr(lib.nn.functional, name)(x, **kwargs)
    pooled = out[0] if isinstance(out, tuple) else out
    (pooled * lib.arange(pooled.numel()).reshape(pooled.shape)).sum().backward()
    indices = out[1].tolist() if isinstance(out, tuple) else None
    return (_node_chain(pooled), pooled.detach().numpy(), pooled.stride(), indices, leaf.grad.numpy(),
            leaf.grad.stride())


@pytest.mark.parametrize("permuted", [False, True], ids=["contiguous", "permuted"])
@pytest.mark.parametrize("name, kwargs", ONE_D_POOLS, ids=[f"{name}-{kwargs}" for name, kwargs in ONE_D_POOLS])
def test_batched_1d_pools_run_as_torchs_unit_height_2d_pools(name, kwargs, permuted):
    # torch pools (N, C, L) as (N, C, 1, L): Unsqueeze -> MaxPool2DWithIndices/AvgPool2D/AdaptiveMaxPool2D
    # -> Squeeze nodes, and the 2-d kernel's output layout for a permuted input
    values = torch.randn(2, 9, 3).numpy() if permuted else torch.randn(2, 3, 9).numpy()
    expected = _pool_run(torch, name, kwargs, values, permuted)
    got = _pool_run(chainrule, name, kwargs, values, permuted)
    assert got[0] == expected[0]
    if name == "lp_pool1d":  # (x^p summed, then ^(1/p): its last bit follows the order torch sums in)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-6)
    else:
        assert got[1].tobytes() == expected[1].tobytes()
    assert got[2] == expected[2]
    assert got[3] == expected[3]
    np.testing.assert_allclose(got[4], expected[4], rtol=1e-6, atol=1e-6)
    assert got[5] == expected[5]


def test_max_pool1d_node_saves_torchs_2d_geometry():
    def saved(lib):
        x = lib.ones(1, 2, 8, requires_grad=True)
        pool_node = lib.nn.MaxPool1d(3, padding=1)(x).grad_fn.next_functions[0][0]
        return (pool_node.name(), tuple(pool_node._saved_kernel_size), tuple(pool_node._saved_stride),
                tuple(pool_node._saved_padding), tuple(pool_node._saved_dilation), pool_node._saved_ceil_mode)

    assert saved(chainrule) == saved(torch)


def test_max_pool1d_without_grad_keeps_its_own_kernel():
    # no gradient and no indices: torch's max_pool1d_impl, one contiguous output and no graph
    def run(lib):
        out = lib.nn.functional.max_pool1d(lib.arange(24.0).reshape(2, 12, 1).permute(0, 2, 1), 2)
        return out.tolist(), out.stride(), out.grad_fn
    assert run(chainrule) == run(torch)


_BOTH = {"probs": [0.3, 0.7], "logits": [0.1, 0.2]}
DISTRIBUTION_REFUSALS = [
    *[(name, args, kwargs) for name, args in (("Categorical", ()), ("Bernoulli", ()), ("Binomial", ()),
                                               ("Geometric", ()), ("NegativeBinomial", (3.0,)),
                                               ("ContinuousBernoulli", ()), ("OneHotCategorical", ()),
                                               ("Multinomial", ()), ("RelaxedBernoulli", (1.0,)),
                                               ("RelaxedOneHotCategorical", (1.0,)))
      for kwargs in ({}, _BOTH)],
    ("MultivariateNormal", ([0.0, 0.0],), {}),
    ("MultivariateNormal", ([0.0, 0.0],), {"covariance_matrix": [[1.0, 0.0], [0.0, 1.0]],
                                           "scale_tril": [[1.0, 0.0], [0.0, 1.0]]}),
    ("MultivariateNormal", (0.0,), {"covariance_matrix": [[1.0, 0.0], [0.0, 1.0]]}),
    ("MultivariateNormal", ([0.0, 0.0],), {"covariance_matrix": [1.0, 1.0]}),
    ("MultivariateNormal", ([0.0, 0.0],), {"scale_tril": [1.0, 1.0]}),
    ("MultivariateNormal", ([0.0, 0.0],), {"precision_matrix": [1.0, 1.0]}),
    ("LowRankMultivariateNormal", ([0.0, 0.0], [[1.0], [1.0], [1.0]], [1.0, 1.0]), {}),
    ("LowRankMultivariateNormal", (0.0, [[1.0], [1.0]], [1.0, 1.0]), {}),
    ("LowRankMultivariateNormal", ([0.0, 0.0], [1.0, 1.0], [1.0, 1.0]), {}),
    ("LowRankMultivariateNormal", ([0.0, 0.0], [[1.0], [1.0]], [1.0, 1.0, 1.0]), {}),
    ("Wishart", (3.0,), {}),
    ("Wishart", (3.0,), {"covariance_matrix": [[1.0, 0.0], [0.0, 1.0]], "scale_tril": [[1.0, 0.0], [0.0, 1.0]]}),
]


@pytest.mark.parametrize("name, args, kwargs", DISTRIBUTION_REFUSALS,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(DISTRIBUTION_REFUSALS)])
def test_distribution_argument_refusals_are_torchs_bare_words(name, args, kwargs):
    # torch's constructors raise these bare: the words already name the argument to fix
    def build(lib):
        return getattr(lib.distributions, name)(*(lib.tensor(a) for a in args),
                                                **{k: lib.tensor(v) for k, v in kwargs.items()})

    expected_type, expected = _raised(torch, build)
    got_type, got = _raised(chainrule, build)
    assert got_type is expected_type
    # (a Size in the words reads torch.Size where chainrule answers ``import torch``)
    assert got.replace("chainrule.Size", "torch.Size") == expected
