"""NumPy's ``axis=``/``keepdims=`` spellings of ``dim=``/``keepdim=`` against torch 2.13's argument
parser: every call in the table gives torch's result, or raises torch's exception type, in both
libraries (functions, Tensor methods, linalg/special/nn.functional)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.ops import numpy_names

torch = pytest.importorskip("torch")

DATA = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)

# name -> call(lib, x, **kwargs); x is a 3x4 float tensor
CALLS = {
    "max": lambda lib, x, **k: lib.max(x, **k), "min": lambda lib, x, **k: lib.min(x, **k),
    "argmax": lambda lib, x, **k: lib.argmax(x, **k), "argmin": lambda lib, x, **k: lib.argmin(x, **k),
    "amax": lambda lib, x, **k: lib.amax(x, **k), "amin": lambda lib, x, **k: lib.amin(x, **k),
    "aminmax": lambda lib, x, **k: lib.aminmax(x, **k), "prod": lambda lib, x, **k: lib.prod(x, **k),
    "any": lambda lib, x, **k: lib.any(x > 0, **k), "all": lambda lib, x, **k: lib.all(x > 0, **k),
    "logsumexp": lambda lib, x, **k: lib.logsumexp(x, **k), "var_mean": lambda lib, x, **k: lib.var_mean(x, **k),
    "std_mean": lambda lib, x, **k: lib.std_mean(x, **k), "std": lambda lib, x, **k: lib.std(x, **k),
    "var": lambda lib, x, **k: lib.var(x, **k), "var_correction": lambda lib, x, **k: lib.var(x, correction=0, **k),
    "softmax": lambda lib, x, **k: lib.softmax(x, **k), "log_softmax": lambda lib, x, **k: lib.log_softmax(x, **k),
    "median": lambda lib, x, **k: lib.median(x, **k), "nanmedian": lambda lib, x, **k: lib.nanmedian(x, **k),
    "mode": lambda lib, x, **k: lib.mode(x, **k), "nansum": lambda lib, x, **k: lib.nansum(x, **k),
    "nanmean": lambda lib, x, **k: lib.nanmean(x, **k), "count_nonzero": lambda lib, x, **k: lib.count_nonzero(x, **k),
    "cumsum": lambda lib, x, **k: lib.cumsum(x, **k), "cummax": lambda lib, x, **k: lib.cummax(x, **k),
    "cummin": lambda lib, x, **k: lib.cummin(x, **k), "logcumsumexp": lambda lib, x, **k: lib.logcumsumexp(x, **k),
    "sort": lambda lib, x, **k: lib.sort(x, **k), "argsort": lambda lib, x, **k: lib.argsort(x, **k),
    "topk": lambda lib, x, **k: lib.topk(x, 2, **k), "kthvalue": lambda lib, x, **k: lib.kthvalue(x, 2, **k),
    "squeeze": lambda lib, x, **k: lib.squeeze(x[:1], **k), "unsqueeze": lambda lib, x, **k: lib.unsqueeze(x, **k),
    "cat": lambda lib, x, **k: lib.cat([x, x], **k), "stack": lambda lib, x, **k: lib.stack([x, x], **k),
    "concat": lambda lib, x, **k: lib.concat([x, x], **k),
    "concatenate": lambda lib, x, **k: lib.concatenate([x, x], **k),
    "chunk": lambda lib, x, **k: lib.chunk(x, 2, **k), "unbind": lambda lib, x, **k: lib.unbind(x, **k),
    "index_select": lambda lib, x, **k: lib.index_select(x, index=lib.tensor([0, 2]), **k),
    "gather": lambda lib, x, **k: lib.gather(x, index=lib.zeros(3, 1, dtype=lib.long), **k),
    "diff": lambda lib, x, **k: lib.diff(x, **k), "narrow": lambda lib, x, **k: lib.narrow(x, start=0, length=1, **k),
    "select": lambda lib, x, **k: lib.select(x, index=0, **k),
    "quantile": lambda lib, x, **k: lib.quantile(x, 0.5, **k),
    "nanquantile": lambda lib, x, **k: lib.nanquantile(x, 0.5, **k),
    "scatter": lambda lib, x, **k: lib.scatter(x, index=lib.zeros(3, 4, dtype=lib.long), src=x, **k),
    "scatter_add": lambda lib, x, **k: lib.scatter_add(x, index=lib.zeros(3, 4, dtype=lib.long), src=x, **k),
    "index_fill": lambda lib, x, **k: lib.index_fill(x, index=lib.tensor([0]), value=1.0, **k),
    "renorm": lambda lib, x, **k: lib.renorm(x, p=2, maxnorm=1, **k),
    "trapezoid": lambda lib, x, **k: lib.trapezoid(x, **k),
    "cumulative_trapezoid": lambda lib, x, **k: lib.cumulative_trapezoid(x, **k),
    "trapz": lambda lib, x, **k: lib.trapz(x, **k),
    "take_along_dim": lambda lib, x, **k: lib.take_along_dim(x, lib.zeros(3, 4, dtype=lib.long), **k),
    "tensor_split": lambda lib, x, **k: lib.tensor_split(x, 2, **k),
    "unflatten": lambda lib, x, **k: lib.unflatten(x, sizes=(2, 2), **k),
    "repeat_interleave": lambda lib, x, **k: lib.repeat_interleave(x, 2, **k),
    "cosine_similarity": lambda lib, x, **k: lib.cosine_similarity(x, x + 1, **k),
    "F.cosine_similarity": lambda lib, x, **k: lib.nn.functional.cosine_similarity(x, x + 1, **k),
    "linalg.norm": lambda lib, x, **k: lib.linalg.norm(x, **k),
    "linalg.vector_norm": lambda lib, x, **k: lib.linalg.vector_norm(x, **k),
    "special.logsumexp": lambda lib, x, **k: lib.special.logsumexp(x, **k),
    "special.softmax": lambda lib, x, **k: lib.special.softmax(x, **k),
    "special.log_softmax": lambda lib, x, **k: lib.special.log_softmax(x, **k),
    "Tensor.max": lambda lib, x, **k: x.max(**k), "Tensor.std": lambda lib, x, **k: x.std(**k),
    "Tensor.argmax": lambda lib, x, **k: x.argmax(**k), "Tensor.softmax": lambda lib, x, **k: x.softmax(**k),
    "Tensor.any": lambda lib, x, **k: (x > 0).any(**k), "Tensor.prod": lambda lib, x, **k: x.prod(**k),
    "Tensor.squeeze": lambda lib, x, **k: x[:1].squeeze(**k), "Tensor.sort": lambda lib, x, **k: x.sort(**k),
    "Tensor.amax": lambda lib, x, **k: x.amax(**k), "Tensor.median": lambda lib, x, **k: x.median(**k),
    "Tensor.logsumexp": lambda lib, x, **k: x.logsumexp(**k), "Tensor.topk": lambda lib, x, **k: x.topk(2, **k),
    "Tensor.sum": lambda lib, x, **k: x.sum(**k), "Tensor.mean": lambda lib, x, **k: x.mean(**k),
    # torch's Python-level functions and differently named parameters take no aliases
    "norm": lambda lib, x, **k: lib.norm(x, **k), "Tensor.norm": lambda lib, x, **k: x.norm(**k),
    "F.softmax": lambda lib, x, **k: lib.nn.functional.softmax(x, **k),
    "F.normalize": lambda lib, x, **k: lib.nn.functional.normalize(x, **k),
    "flip": lambda lib, x, **k: lib.flip(x, **k), "roll": lambda lib, x, **k: lib.roll(x, 1, **k),
    "split": lambda lib, x, **k: lib.split(x, 2, **k),
}
KWARGS = ({"axis": 0}, {"axis": 1, "keepdims": True}, {"dim": 1, "keepdims": True}, {"dim": 0, "axis": 0})


def _outcome(lib, name, kwargs):
    try:
        out = CALLS[name](lib, lib.from_numpy(DATA.copy()), **kwargs)
    except Exception as error:  # the exception's type is what is compared
        return type(error).__name__
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o.detach().double().numpy() if hasattr(o, "detach") else o for o in outs]


@pytest.mark.parametrize("name", sorted(CALLS))
def test_numpy_keyword_names_as_torch(name):
    for kwargs in KWARGS:
        theirs, ours = _outcome(torch, name, kwargs), _outcome(chainrule, name, kwargs)
        if isinstance(theirs, str) or isinstance(ours, str):
            assert ours == theirs, (name, kwargs)
            continue
        assert len(ours) == len(theirs), (name, kwargs)
        for o, t in zip(ours, theirs):
            np.testing.assert_allclose(o, t, rtol=1e-5, atol=1e-6, err_msg=f"{name} {kwargs}")


def test_dim_given_positionally_and_as_axis_is_a_type_error():
    x = chainrule.ones(2, 3)
    with pytest.raises(TypeError, match="axis"):
        x.max(1, axis=1)
    with pytest.raises(TypeError, match="axis"):
        torch.ones(2, 3).max(1, axis=1)


def test_every_listed_name_is_wrapped():
    """The table in numpy_names is what the namespaces carry (a rename would drop a name silently)."""
    for name in numpy_names.PUBLIC_NAMES["torch"]:
        assert getattr(getattr(chainrule, name), "_takes_numpy_names", False), name
    for name in numpy_names.PUBLIC_NAMES["linalg"]:
        assert chainrule.linalg.__dict__[name]._takes_numpy_names, name
