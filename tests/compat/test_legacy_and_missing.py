"""PyTorch idioms older and tutorial scripts use on their first lines: the legacy tensor types
(FloatTensor, ..., torch.cuda.*), Tensor.type, autograd.Variable, set_default_tensor_type, and
the utilities (fork_rng, nbytes, nn.attention) — each answered as torch 2.13 answers it."""

import warnings

import numpy as np
import pytest
import torch

import chainrule

LIBS = (chainrule, torch)
TYPE_NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor",
              "CharTensor", "ByteTensor", "BoolTensor"]
NO_GPU = not chainrule.cuda.is_available()


def _plain(value):
    """A comparable form: tensors as (shape, dtype name, values), dtypes by name."""
    if isinstance(value, (chainrule.Tensor, torch.Tensor)):
        return tuple(value.shape), str(value.dtype).split(".")[-1], value.detach().numpy().tolist()
    if isinstance(value, (chainrule.dtype, torch.dtype)):
        return str(value).split(".")[-1]
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    return value


def _both(fn):
    return [_plain(fn(lib)) for lib in LIBS]


LEGACY_CASES = {
    "from list": lambda l: l.FloatTensor([1, 2]),
    "from nested list": lambda l: l.DoubleTensor([[1, 2], [3, 4]]),
    "from tuple": lambda l: l.IntTensor((1, 2)),
    "from ndarray": lambda l: l.FloatTensor(np.array([1, 2])),
    "truncates floats": lambda l: l.LongTensor([1.7, -2.2]),
    "bool": lambda l: l.BoolTensor([0, 1, 2]),
    "byte": lambda l: l.ByteTensor([1, 255]),
    "empty": lambda l: l.FloatTensor(),
    "empty list": lambda l: l.ShortTensor([]),
    "sizes (shape, dtype)": lambda l: (l.FloatTensor(3, 4).shape, l.HalfTensor(2).dtype, l.CharTensor(0).shape),
    "Size": lambda l: l.LongTensor(l.Size([2, 3])).shape,
    "device kwarg": lambda l: l.FloatTensor([1, 2], device="cpu"),
    "isinstance by dtype": lambda l: [isinstance(l.zeros(2, dtype=getattr(l, n).dtype), getattr(l, m))
                                      for n in TYPE_NAMES for m in TYPE_NAMES],
    "isinstance cuda type": lambda l: isinstance(l.zeros(2), l.cuda.FloatTensor),
    "isinstance not a tensor": lambda l: isinstance([1.0], l.FloatTensor),
    "isinstance parameter": lambda l: isinstance(l.nn.Parameter(l.ones(2)), l.FloatTensor),
    "isinstance tuple": lambda l: isinstance(l.ones(2), (l.cuda.FloatTensor, l.FloatTensor)),
    "type attributes": lambda l: [(getattr(l, n).dtype, getattr(l, n).is_cuda, getattr(l, n).is_sparse,
                                   getattr(l.cuda, n).dtype, getattr(l.cuda, n).is_cuda, getattr(l, n).__name__)
                                  for n in TYPE_NAMES],
    "not a Tensor subclass": lambda l: issubclass(l.FloatTensor, l.Tensor),
    "type() names": lambda l: [l.zeros(1, dtype=getattr(l, n).dtype).type() for n in TYPE_NAMES],
    "type(class)": lambda l: l.tensor([1.5, -2.5]).type(l.LongTensor),
    "type(name)": lambda l: l.tensor([1.5, 0.0]).type("torch.BoolTensor"),
    "type(dtype)": lambda l: l.tensor([1, 2]).type(l.float64),
    "type(dtype=name)": lambda l: l.tensor([1, 2]).type(dtype="torch.DoubleTensor"),
    "type non_blocking": lambda l: l.tensor([1, 2]).type(l.HalfTensor, non_blocking=True),
    "type same is self": lambda l: [(lambda x: x.type(t) is x)(l.ones(2)) for t in
                                    (l.FloatTensor, "torch.FloatTensor", l.float32)],
    "alias": lambda l: (lambda a: (l.FloatTensor(a) is a, l.FloatTensor(a).data_ptr() == a.data_ptr()))(
        l.tensor([1.5])),
    "Variable": lambda l: (lambda x: (lambda v: (v is x, v.requires_grad, v.is_leaf, v.grad_fn is None,
                                                 v.data_ptr() == x.data_ptr()))(l.autograd.Variable(x)))(
        l.ones(2, requires_grad=True) * 2),
    "Variable requires_grad": lambda l: (lambda v: (v.requires_grad, v.is_leaf))(
        l.autograd.Variable(l.ones(2), requires_grad=True)),
    "Variable isinstance": lambda l: (isinstance(l.ones(1), l.autograd.Variable), isinstance(1, l.autograd.Variable)),
    "nbytes itemsize is_pinned": lambda l: [(t.nbytes, t.itemsize, t.is_pinned()) for t in
                                            (l.ones(4, 3), l.ones(4, 3)[:, :2], l.ones(3, dtype=l.int16),
                                             l.tensor(1.0, dtype=l.float64))],
}


@pytest.mark.parametrize("name", list(LEGACY_CASES))
def test_legacy_types_match_torch(name):
    ours, theirs = _both(LEGACY_CASES[name])
    assert ours == theirs


LEGACY_ERRORS = {
    "str data": lambda l: l.FloatTensor("a"),
    "scalar data": lambda l: l.FloatTensor(2.5),
    "bool data": lambda l: l.FloatTensor(True),
    "mixed sizes": lambda l: l.FloatTensor(2, 3.0),
    "negative size": lambda l: l.FloatTensor(-1),
    "dtype mismatch": lambda l: l.LongTensor(l.ones(1)),
    "bad type name": lambda l: l.ones(2).type("torch.foo"),
    "dtype name is not a type name": lambda l: l.ones(2).type("float64"),
    "Variable of a list": lambda l: l.autograd.Variable([1.0]),
    "Variable of ints requiring grad": lambda l: l.autograd.Variable(l.ones(2, dtype=l.long), requires_grad=True),
    "integer default type": lambda l: l.set_default_tensor_type(l.LongTensor),
    "integer default type by name": lambda l: l.set_default_tensor_type("torch.IntTensor"),
}


@pytest.mark.parametrize("name", list(LEGACY_ERRORS))
def test_legacy_type_errors_match_torch(name):
    kinds = []
    for lib in LIBS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(Exception) as info:
                LEGACY_ERRORS[name](lib)
        kinds.append(info.type)
    assert kinds[0] is kinds[1], kinds


@pytest.mark.skipif(not NO_GPU, reason="torch here is a CPU build: compared where chainrule has no GPU either")
@pytest.mark.parametrize("name", ["FloatTensor", "LongTensor"])
def test_cuda_types_raise_torch_type_error_without_a_gpu(name):
    for lib in LIBS:
        with pytest.raises(TypeError, match=f"cuda.{name}"):
            getattr(lib.cuda, name)([1])
        with pytest.raises(TypeError):
            getattr(lib.cuda, name)(2, 3)


def test_set_default_tensor_type_sets_the_default_dtype_and_warns():
    results = []
    for lib in LIBS:
        try:
            # torch warns once per process, so only ours is required to warn on every call
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                lib.set_default_tensor_type(lib.DoubleTensor)
            assert lib is torch or any("deprecated" in str(w.message) for w in caught)
            first = _plain((lib.get_default_dtype(), lib.tensor([1.0]).dtype, lib.FloatTensor([1]).dtype,
                            lib.Tensor([1]).dtype, lib.ones(2).type()))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lib.set_default_tensor_type("torch.FloatTensor")
            results.append((first, _plain(lib.get_default_dtype())))
        finally:
            lib.set_default_dtype(lib.float32)
    assert results[0] == results[1] == ((("float64", "float64", "float32", "float64", "torch.DoubleTensor"),
                                          "float32"))


def test_legacy_script_runs_unchanged():
    """The opening of a 2017-era script: Variable-wrapped legacy tensors, a type check, a cast."""

    def script(torch):
        x = torch.autograd.Variable(torch.FloatTensor([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
        w = torch.autograd.Variable(torch.randn(2, 2).type(torch.FloatTensor).fill_(0.5), requires_grad=True)
        assert isinstance(x.data, torch.FloatTensor) and x.type() == "torch.FloatTensor"
        labels = torch.LongTensor([1, 0])
        loss = torch.nn.functional.cross_entropy(x.mm(w), labels)
        loss.backward()
        return loss, x.grad, w.grad, labels.type(torch.DoubleTensor)

    ours, theirs = _plain(script(chainrule)), _plain(script(torch))
    assert ours[0][:2] == theirs[0][:2] and ours[3] == theirs[3]
    for a, b in zip(ours[:3], theirs[:3]):
        np.testing.assert_allclose(a[2], b[2], rtol=1e-6)


DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def test_can_cast_matches_torch_on_every_pair():
    for lib in LIBS:
        with pytest.raises(TypeError):
            lib.can_cast(1.0, lib.int64)
    ours = [chainrule.can_cast(getattr(chainrule, a), getattr(chainrule, b)) for a in DTYPES for b in DTYPES]
    assert ours == [torch.can_cast(getattr(torch, a), getattr(torch, b)) for a in DTYPES for b in DTYPES]


BUCKETING_ERRORS = {
    "side and right opposite": lambda l: l.searchsorted(l.tensor([1.0, 2.0]), l.tensor([1.5]), right=True, side="left"),
    "bad side": lambda l: l.searchsorted(l.tensor([1.0, 2.0]), l.tensor([1.5]), side="middle"),
    "0-d boundaries": lambda l: l.searchsorted(l.tensor(1.0), l.tensor([1.5])),
    "leading dims differ": lambda l: l.searchsorted(l.zeros(2, 2), l.zeros(3, 1)),
    "bucketize 2-d boundaries": lambda l: l.bucketize(l.zeros(3), l.zeros(2, 2)),
    "bincount negative": lambda l: l.bincount(l.tensor([-1, 1])),
    "bincount float": lambda l: l.bincount(l.tensor([1.0])),
    "bincount bool": lambda l: l.bincount(l.tensor([True])),
    "bincount 2-d": lambda l: l.bincount(l.tensor([[1, 1]])),
    "bincount minlength": lambda l: l.bincount(l.tensor([1]), minlength=-1),
    "bincount weights length": lambda l: l.bincount(l.tensor([1, 1]), weights=l.tensor([1.0])),
    "histc integer": lambda l: l.histc(l.tensor([1, 2]), bins=3),
    "histc no bins": lambda l: l.histc(l.tensor([1.0, 2.0]), bins=0),
    "histc max below min": lambda l: l.histc(l.tensor([1.0, 2.0]), bins=3, min=3, max=1),
    "histc nan range": lambda l: l.histc(l.tensor([1.0, float("nan")]), bins=3),
    "histc infinite range": lambda l: l.histc(l.tensor([1.0, float("inf")]), bins=3),
}


@pytest.mark.parametrize("name", list(BUCKETING_ERRORS))
def test_bucketing_errors_match_torch(name):
    kinds = []
    for lib in LIBS:
        with pytest.raises(Exception) as info:
            BUCKETING_ERRORS[name](lib)
        kinds.append(info.type)
    assert kinds[0] is kinds[1], kinds


def test_searchsorted_batched_matches_torch_on_many_ties():
    """The batched path (one stable merge per row) against torch on rows full of repeats."""
    generator = np.random.default_rng(0)
    seq = np.sort(generator.integers(0, 6, (4, 3, 40)), axis=-1).astype(np.float64)
    values = generator.integers(-1, 7, (4, 3, 25)).astype(np.float64)
    for side in ("left", "right"):
        ours = chainrule.searchsorted(chainrule.tensor(seq), chainrule.tensor(values), side=side)
        theirs = torch.searchsorted(torch.tensor(seq), torch.tensor(values), side=side)
        assert ours.tolist() == theirs.tolist()


def test_histc_output_needs_no_grad_and_out_is_written():
    x = chainrule.randn(20, requires_grad=True)
    assert not chainrule.histc(x, bins=4).requires_grad
    out = chainrule.empty(0, dtype=chainrule.int64)
    chainrule.searchsorted(chainrule.tensor([1.0, 2.0]), chainrule.tensor([1.5, 3.0]), out=out)
    assert out.tolist() == [1, 2]
