"""Session 26, progG lane: bugs the published-program corpus (sac_continuous, deq_implicit,
tabular_embeddings, ncf_bpr, transe_kg) exposed, each checked against torch 2.13."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    try:
        result = call(lib)
    except Exception as error:  # compared by class and first line
        return "raised", type(error).__name__, str(error).splitlines()[0]
    return "ok", str(result.dtype).rpartition(".")[2], result.numpy().tolist()


# TransE-PyTorch's evaluation: torch.arange(end=entities_count, device=device), the (Number end)
# signature called by keyword, which chainrule refused for want of ``start``
@pytest.mark.parametrize("call", [
    lambda lib: lib.arange(end=5),
    lambda lib: lib.arange(end=5.5),
    lambda lib: lib.arange(end=4, dtype=lib.float64),
    lambda lib: lib.arange(end=3, out=lib.empty(3)),
    lambda lib: lib.arange(start=2, end=5),
    lambda lib: lib.arange(1, end=5, step=2),
    lambda lib: lib.arange(start=5),
    lambda lib: lib.arange(),
])
def test_arange_end_by_keyword(call):
    assert _outcome(chainrule, call) == _outcome(torch, call)


# TransE-PyTorch's corruption: torch.randint(high=2, size=heads.size(), device=device), the
# (high, size) signature by keyword, which chainrule refused for want of ``low``; the draws are
# torch's for a seed
@pytest.mark.parametrize("call", [
    lambda lib: lib.randint(high=2, size=(6,)),
    lambda lib: lib.randint(high=7, size=lib.Size([2, 3]), dtype=lib.int32),
    lambda lib: lib.randint(low=3, high=9, size=(5,)),
    lambda lib: lib.randint(3, high=9, size=(5,)),
    lambda lib: lib.randint(9, size=(5,)),
    lambda lib: lib.randint(high=2),
    lambda lib: lib.randint(low=2, size=(3,)),
])
def test_randint_high_by_keyword(call):
    def seeded(lib):
        lib.manual_seed(0)
        return call(lib)
    assert _outcome(chainrule, seeded) == _outcome(torch, seeded)


# fast.ai-style tabular code run with torch.set_default_device('cuda'): torch.bucketize of a
# from_numpy (CPU) column against torch.tensor boundaries (CUDA) is refused by torch's
# searchsorted_pre_check in these words (aten/src/ATen/native/BucketizationUtils.h); chainrule
# leaked a TypeError from the stand-in array module instead
def test_bucketize_and_searchsorted_refuse_mixed_devices_in_torch_words():
    from chainrule import _backend

    with _backend.use_standin_cuda():
        boundaries = chainrule.tensor([25.0, 35.0, 45.0], device="cuda")
        values = chainrule.tensor([30.0, 50.0])
        mixed = ("torch.searchsorted(): boundaries and input value tensors should have same device type, but got "
                 "boundaries tensor device type cuda:0 and input value tensor device type cpu")
        for call in (lambda: chainrule.bucketize(values, boundaries),
                     lambda: chainrule.searchsorted(boundaries, values)):
            with pytest.raises(RuntimeError) as raised:
                call()
            assert str(raised.value) == mixed
        with pytest.raises(RuntimeError) as raised:
            chainrule.searchsorted(boundaries.cpu(), values, sorter=chainrule.tensor([0, 1, 2], device="cuda"))
        assert str(raised.value) == (
            "torch.searchsorted(): sorter and boundary tensors should have same device type, but got sorter tensor "
            "device type cuda:0 and input value tensor device type cpu")
        # a Python number goes to the boundaries' device; tensors on one device are served
        assert chainrule.bucketize(40.0, boundaries).cpu().item() == 2
        assert chainrule.bucketize(values.cuda(), boundaries).cpu().tolist() == [1, 3]


@pytest.mark.parametrize("call", [
    lambda lib: lib.bucketize(lib.tensor([30.0, 50.0, 25.0]), lib.tensor([25.0, 35.0, 45.0])),
    lambda lib: lib.bucketize(40.0, lib.tensor([25.0, 35.0, 45.0]), right=True),
    lambda lib: lib.searchsorted(lib.tensor([1.0, 3.0]), lib.tensor([2.0]), sorter=lib.tensor([0, 1])),
])
def test_bucketize_on_one_device_unchanged(call):
    assert _outcome(chainrule, call) == _outcome(torch, call)


def _message(lib, call):
    try:
        call(lib)
    except TypeError as error:
        return str(error).replace("chainrule", "torch")
    return None


# torch lists the keywords of a refused call in the order of the std::unordered_map it copies them
# into (libstdc++'s hash and buckets), not the call's: arange(end=5, step=2) says
# "got (step=int, end=int, )"
@pytest.mark.parametrize("call", [
    lambda lib: lib.arange(end=5, step=2),
    lambda lib: lib.arange(step=2, end=5),
    lambda lib: lib.arange(end=5, step=2, dtype=lib.float32),
    lambda lib: lib.arange(1, aaa=1, bbb=2, ccc=3),
    lambda lib: lib.ones(1, 2).view(1, 2, foo=3, bar=4),
    # torch pairs each keyword with its signature word by name, and keeps the ", " before ")"
    # of a call without positional arguments in the per-signature line too
    lambda lib: lib.narrow(length=1, start="x", dim=0, input=lib.ones(3)),
    lambda lib: lib.arange(end="a", start=1, step=2),
])
def test_refused_keywords_listed_in_torch_order(call):
    assert _message(chainrule, call) == _message(torch, call)


def test_refused_keyword_order_matches_torch_on_random_names():
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz_")
    for _ in range(40):
        names = []
        while len(names) < rng.integers(2, 17):
            name = "".join(rng.choice(letters, size=rng.integers(1, 12)))
            if name not in names and name not in ("start", "end", "step", "out", "dtype", "device", "layout"):
                names.append(name)

        def call(lib, names=names):
            return lib.arange(**dict.fromkeys(names, 1))

        expected = _message(torch, call)
        if expected is not None and "got (" in expected:
            assert _message(chainrule, call).splitlines()[0] == expected.splitlines()[0]


def _full_outcome(lib, call):
    try:
        result = call(lib)
    except Exception as error:
        return "raised", type(error).__name__, str(error).replace("chainrule", "torch")
    return "ok", str(result.dtype).rpartition(".")[2], result.tolist()


# torch's three repeat_interleave overloads, (repeats) alone among them: repeat_interleave(repeats=counts)
# is the index pattern of the positional call, where chainrule asked for ``input``; refusals in
# torch's words, function and method
@pytest.mark.parametrize("call", [
    lambda lib: lib.repeat_interleave(repeats=lib.tensor([1, 2])),
    lambda lib: lib.repeat_interleave(repeats=lib.tensor([2, 0, 1]), output_size=3),
    lambda lib: lib.repeat_interleave(lib.tensor([1, 2])),
    lambda lib: lib.repeat_interleave(input=lib.tensor([1, 2]), repeats=2, dim=0),
    lambda lib: lib.repeat_interleave(lib.tensor([1, 2]), lib.tensor([1, 2]), 0),
    lambda lib: lib.repeat_interleave(lib.ones(2, 2), 2, -1),
    lambda lib: lib.tensor([1, 2]).repeat_interleave(repeats=lib.tensor([1, 2])),
    lambda lib: lib.tensor([1, 2]).repeat_interleave(2, dim=0, output_size=4),
    lambda lib: lib.repeat_interleave(repeats=2),
    lambda lib: lib.repeat_interleave(),
    lambda lib: lib.repeat_interleave(lib.tensor([1, 2]), 2.5),
    lambda lib: lib.repeat_interleave(lib.tensor([1, 2]), [1, 2]),
    lambda lib: lib.repeat_interleave(lib.tensor([1, 2]), 2, foo=1),
    lambda lib: lib.tensor([1, 2]).repeat_interleave(2.5),
    lambda lib: lib.tensor([1, 2]).repeat_interleave(),
])
def test_repeat_interleave_overloads(call):
    assert _full_outcome(chainrule, call) == _full_outcome(torch, call)


# the deprecated out-of-place resize/resize_as are Python methods of torch.Tensor: a wrong call's
# TypeError names Tensor.resize(), where chainrule named its own helper
@pytest.mark.parametrize("call", [
    lambda lib: lib.ones(2, 3).resize(size=(3, 2)),
    lambda lib: lib.ones(2, 3).resize(3, 2, foo=1),
    lambda lib: lib.ones(2, 3).resize_as(the_template=lib.ones(3, 2)),
    lambda lib: lib.ones(2, 3).resize_as(),
])
def test_resize_refusals_name_the_tensor_method(call):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _full_outcome(chainrule, call) == _full_outcome(torch, call)


# torch's Python-defined Tensor methods bound from chainrule helpers or lambdas: the names a
# __torch_function__ handler reads and a wrong call's TypeError prints are torch's
@pytest.mark.parametrize("name", ["to_sparse_coo", "storage", "storage_type", "resize", "resize_as"])
def test_python_defined_tensor_methods_carry_torch_names(name):
    import warnings

    ours, theirs = getattr(chainrule.Tensor, name), getattr(torch.Tensor, name)
    assert (ours.__name__, ours.__qualname__) == (theirs.__name__, theirs.__qualname__)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _full_outcome(chainrule, lambda lib: getattr(lib.ones(2), name)(zzz=1)) == _full_outcome(
            torch, lambda lib: getattr(lib.ones(2), name)(zzz=1))
