"""Session 47, lane progCL: what the DiT / RepVGG / DLRM corpus programs found, compared with torch."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

# (args, kwargs) for nn.EmbeddingBag and nn.Embedding; NumPy scalars as DLRM passes its table sizes
REPR_CASES = [
    ((np.int64(40), 4), {}),
    ((5, np.int32(3)), {"mode": "max"}),
    ((5, 3), {"max_norm": np.float64(1.0)}),
    ((5, 3), {"max_norm": 2}),
    ((5, 3), {"norm_type": np.float32(3)}),
    ((5, 3), {"norm_type": 1}),
    ((5, 3), {"scale_grad_by_freq": True}),
    ((5, 3), {"scale_grad_by_freq": 0}),
    ((5, 3), {"padding_idx": -1}),
    ((5, 3), {"padding_idx": np.int64(2)}),
    ((5, 3), {"sparse": True, "mode": "sum"}),
    ((5, 3), {"include_last_offset": True}),
]


@pytest.mark.parametrize("args, kwargs", REPR_CASES)
def test_embedding_bag_repr_formats_fields_by_repr_like_torch(args, kwargs):
    assert repr(chainrule.nn.EmbeddingBag(*args, **kwargs)) == repr(torch.nn.EmbeddingBag(*args, **kwargs))


@pytest.mark.parametrize("args, kwargs", REPR_CASES)
def test_embedding_repr_matches_torch(args, kwargs):
    kwargs = {k: v for k, v in kwargs.items() if k not in ("mode", "include_last_offset")}
    assert repr(chainrule.nn.Embedding(*args, **kwargs)) == repr(torch.nn.Embedding(*args, **kwargs))


@pytest.mark.parametrize("name", ["LayerNorm", "RMSNorm"])
@pytest.mark.parametrize("shape", [np.int64(4), np.int32(4), np.uint8(4), (np.int64(3), np.int64(4))],
                         ids=["int64", "int32", "uint8", "tuple-int64"])
def test_norm_takes_a_numpy_integer_size_like_torch(name, shape):
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    ours = getattr(chainrule.nn, name)(shape)
    theirs = getattr(torch.nn, name)(shape)
    assert repr(ours) == repr(theirs)
    assert tuple(ours.weight.shape) == tuple(theirs.weight.shape)
    np.testing.assert_allclose(ours(chainrule.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-6)
