"""Session 28, lane progN: what the training-infrastructure programs (custom optimizers, LR finder,
text classification, DataLoader recipes, detection box ops) turned up, each checked against torch 2.13.
"""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- embedding_bag, a short last offset
def _short_last_offset_bag(lib, dtype, mode, padding_idx, weighted):
    """include_last_offset=True with offsets[-1] (5) short of the input's length (8): torch documents
    the two equal, and runs on when they are not."""
    weight = (lib.arange(40.0).reshape(10, 4) / 7 - 2).to(getattr(lib, dtype)).requires_grad_()
    psw = lib.linspace(0.5, 2.0, 8, dtype=getattr(lib, dtype)) if weighted else None
    out = lib.nn.functional.embedding_bag(lib.tensor([1, 2, 4, 5, 4, 3, 2, 9]), weight, lib.tensor([0, 2, 2, 5]),
                                          mode=mode, include_last_offset=True, padding_idx=padding_idx,
                                          per_sample_weights=psw)
    return out, weight


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("padding_idx", [None, 2, 7])
@pytest.mark.parametrize(("mode", "weighted"), [("sum", False), ("sum", True), ("mean", False), ("max", False)])
def test_embedding_bag_last_bag_runs_to_the_end_of_the_input_as_torch(dtype, padding_idx, mode, weighted):
    """torch's last bag takes in every index from its offset to the input's end; only its fbgemm
    sum (float32/float16/bfloat16, no padding_idx, sum or mean) stops at the last offset, and its
    mean still divides by the full count. chainrule stopped at the last offset everywhere: 42 of
    these 48 cases differed in the last bag (float64 sum 1.4286 for torch's 3.4286, max 0.8571 for 3.1429)."""
    expected, _ = _short_last_offset_bag(torch, dtype, mode, padding_idx, weighted)
    got, _ = _short_last_offset_bag(chainrule, dtype, mode, padding_idx, weighted)
    assert got.dtype == getattr(chainrule, dtype)
    np.testing.assert_allclose(got.detach().float().numpy(), expected.detach().float().numpy(),
                               rtol=1e-2 if dtype in ("float16", "bfloat16") else 1e-6, atol=1e-6)


@pytest.mark.parametrize("padding_idx", [None, 2, 7])
@pytest.mark.parametrize(("dtype", "mode"), [("float64", "sum"), ("float64", "mean"), ("float32", "max"),
                                             ("float32", "mean"), ("float64", "max")])
def test_embedding_bag_last_bag_gradient_reaches_the_indices_past_the_last_offset(dtype, mode, padding_idx):
    """torch's gradient reaches the rows past a short last offset, also where its fbgemm forward left
    them out (a float32 mean without padding_idx: 1/6 each, the full count). The fbgemm float32 sum's
    weight gradient there reads uninitialised memory (1e21 at seed-free inputs): not compared."""
    expected, theirs = _short_last_offset_bag(torch, dtype, mode, padding_idx, False)
    got, ours = _short_last_offset_bag(chainrule, dtype, mode, padding_idx, False)
    expected.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize(("dtype", "padding_idx"), [("float64", None), ("float64", 7), ("float32", 7)])
def test_embedding_bag_per_sample_weights_gradient_past_a_short_last_offset(dtype, padding_idx):
    """torch's per_sample_weights gradient past a short last offset is the last bag's: chainrule gave
    0 at the 3 positions. (torch's fbgemm float32 path without padding_idx reads uninitialised memory
    there, denormal garbage: not compared.)"""
    grads = []
    for lib in (torch, chainrule):
        weight = (lib.arange(40.0).reshape(10, 4) / 7 - 2).to(getattr(lib, dtype))
        psw = lib.linspace(0.5, 2.0, 8, dtype=getattr(lib, dtype)).requires_grad_()
        out = lib.nn.functional.embedding_bag(lib.tensor([1, 2, 4, 5, 4, 3, 2, 9]), weight, lib.tensor([0, 2, 2, 5]),
                                              mode="sum", include_last_offset=True, padding_idx=padding_idx,
                                              per_sample_weights=psw)
        (out * lib.arange(12.0).reshape(3, 4).to(out.dtype)).sum().backward()
        grads.append(psw.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)


# ---------------------------------------------------------------- optimizer.state is a defaultdict(dict)
def _optimizer_state_outcome(lib):
    import collections
    import copy

    weight = lib.nn.Parameter(lib.ones(2))
    optimizer = lib.optim.SGD([weight], lr=0.1, momentum=0.9)
    printed = [repr(optimizer.state)]
    weight.grad = lib.ones(2)
    optimizer.step()
    optimizer.load_state_dict(optimizer.state_dict())
    state = optimizer.state
    return (printed, type(state).__name__, isinstance(state, collections.defaultdict), state.default_factory,
            type(copy.deepcopy(state)).__name__, repr(state).split("{")[0], type(optimizer.state_dict()["state"]))


def test_optimizer_state_is_a_defaultdict_of_dict_as_torch():
    """torch's optimizer.state is a defaultdict(dict), before and after load_state_dict; users print it
    (``defaultdict(<class 'dict'>, {...})``) and Lookahead-style wrappers test or rebuild it as one.
    chainrule's was a dict subclass printing as ``{...}``."""
    assert _optimizer_state_outcome(chainrule) == _optimizer_state_outcome(torch)


# ---------------------------------------------------------------- split's message names the dim as given
@pytest.mark.parametrize(("sizes", "dim"), [([1, 2], -1), ([1, 2], 2), ([1, 1], -2), ([3], 0)])
def test_split_with_sizes_message_names_the_dimension_as_given(sizes, dim):
    """DETR's matcher splits its cost matrix by C.split(sizes, -1); when the sizes do not add up torch
    names dimension -1, chainrule named the wrapped 2."""
    with pytest.raises(RuntimeError) as theirs:
        torch.arange(24.0).view(2, 3, 4).split(sizes, dim)
    with pytest.raises(RuntimeError) as ours:
        chainrule.arange(24.0).view(2, 3, 4).split(sizes, dim)
    assert str(ours.value) == str(theirs.value)


# ---------------------------------------------------------------- cdist's p=inf gradient at ties
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cdist_infinity_norm_gives_every_tied_coordinate_the_whole_gradient(dtype):
    """torch's cdist backward for p=inf is sign(diff) * (|diff| == dist) * grad: each coordinate tied
    at the maximum gets the whole gradient (box distances tie often). chainrule split it among the
    ties as vector_norm's rule does: 8 of 20 gradient entries differed, in float32 and in float64."""
    boxes1 = np.array([[0, 0, 1, 1], [0.5, 0.5, 1.5, 1.5], [0, 0, 1, 1]], dtype=dtype)
    boxes2 = np.array([[0, 0, 1, 1], [2, 2, 3, 3.5]], dtype=dtype)
    results = []
    for lib in (torch, chainrule):
        a = lib.tensor(boxes1, requires_grad=True)
        b = lib.tensor(boxes2, requires_grad=True)
        distance = lib.cdist(a, b, p=float("inf"))
        distance.backward(lib.arange(1.0, 7.0, dtype=distance.dtype).reshape(3, 2))
        results.append((distance.detach().numpy(), a.grad.numpy(), b.grad.numpy()))
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_array_equal(ours, theirs)


def test_cdist_infinity_norm_values_and_zero_distance_gradient_as_torch():
    """Batched inputs, a zero distance (gradient 0) and no columns (distance 0, where chainrule raised
    that the inf norm of an empty dimension has no identity), against torch."""
    values = np.random.default_rng(3).integers(-2, 3, (2, 3, 4)).astype(np.float32)
    outcomes = []
    for lib in (torch, chainrule):
        a = lib.tensor(values, requires_grad=True)
        b = lib.tensor(values[:, :2], requires_grad=True)
        distance = lib.cdist(a, b, p=float("inf"))
        distance.sum().backward()
        empty = lib.cdist(lib.zeros(2, 0), lib.zeros(3, 0), p=float("inf"))
        outcomes.append((distance.detach().numpy(), a.grad.numpy(), b.grad.numpy(), empty.numpy(),
                         type(distance.grad_fn).__name__))
    for ours, theirs in zip(outcomes[1], outcomes[0]):
        np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------- ignored rows' gradient is +0.0
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"weight": [1.0, 2.0, 0.5]}, {"label_smoothing": 0.1},
                                     {"weight": [1.0, 2.0, 0.5], "label_smoothing": 0.1}])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_ignored_targets_get_a_positive_zero_gradient_as_torch(loss, options, reduction):
    """torch's nll_loss backward leaves an ignored row's gradient unwritten (+0.0); chainrule's was
    -0.0 at class 0 (an ignored row's 0 weight times the negated gradient), so a printed x.grad showed
    "-0." where torch's shows "0.": 18 of these 24 cases differed in that sign bit, now none."""
    logits = np.array([[[0.1, 0.2], [0.5, 0.1], [-0.3, 0.0]], [[1.0, 0.3], [-1.0, 0.2], [0.5, -0.4]]], np.float32)
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor(logits, requires_grad=True)
        kwargs = {k: (lib.tensor(v) if k == "weight" else v) for k, v in options.items()}
        if loss == "nll_loss":
            kwargs.pop("label_smoothing", None)
            out = lib.nn.functional.nll_loss(lib.log_softmax(x, 1), lib.tensor([[2, -100], [-100, 0]]),
                                             reduction=reduction, **kwargs)
        else:
            out = lib.nn.functional.cross_entropy(x, lib.tensor([[2, -100], [-100, 0]]), reduction=reduction,
                                                  **kwargs)
        out.sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.signbit(grads[1]), np.signbit(grads[0]))


# ---------------------------------------------------------------- embedding_bag's index dtypes
_BAG_DTYPE_CASES = {
    "int16 indices, int16 offsets": ("int16", "int16", 1),
    "uint8 indices, int32 offsets": ("uint8", "int32", 1),
    "int64 indices, int16 offsets": ("int64", "int16", 1),
    "bool indices, int64 offsets": ("bool", "int64", 1),
    "float32 indices and offsets": ("float32", "float32", 1),
    "int64 indices, float32 offsets": ("int64", "float32", 1),
    "int64 indices, float16 offsets": ("int64", "float16", 1),
    "float64 indices": ("float64", "int64", 1),
    "2-d int16": ("int16", None, 2),
    "2-d bool": ("bool", None, 2),
    "2-d int32": ("int32", None, 2),
    "short offsets[0], int32": ("int32", "int32", "start"),
    "short offsets[0], int64 and int32": ("int64", "int32", "start"),
}


def _bag_dtype_outcome(lib, indices_dtype, offsets_dtype, form):
    weight = lib.arange(10.0).reshape(5, 2)
    functional = lib.nn.functional
    try:
        if form == 2:
            out = functional.embedding_bag(lib.tensor([[1, 0, 1]]).to(getattr(lib, indices_dtype)), weight)
        else:
            offsets = [1] if form == "start" else [0, 1]
            out = functional.embedding_bag(lib.tensor([1, 0, 1]).to(getattr(lib, indices_dtype)), weight,
                                           lib.tensor(offsets).to(getattr(lib, offsets_dtype)), mode="sum")
        aten = lib.embedding_bag(weight, lib.tensor([1, 0, 1]).to(getattr(lib, indices_dtype)),
                                 lib.tensor([0, 1]).to(getattr(lib, offsets_dtype or indices_dtype)))
        return out.tolist(), [str(t.dtype).split(".")[-1] for t in aten]
    except Exception as error:  # noqa: BLE001  (the outcome compared is the exception itself)
        return type(error).__name__, str(error).replace("chainrule", "torch")


@pytest.mark.parametrize("case", list(_BAG_DTYPE_CASES))
def test_embedding_bag_takes_indices_and_offsets_in_their_common_dtype_as_torch(case):
    """torch promotes the indices and offsets to their common dtype and asks that one to be int64 or
    int32 (naming argument #1, 'indices', as torch.ShortTensor and the like); 2-d input's offsets are an
    arange in the input's dtype. chainrule refused any non-int32/int64 indices through embedding's own
    message, named float dtypes as chainrule.float32, blamed the offsets (argument #2) and left off the
    '[ torch.LongTensor{} ]' of the offsets[0] message: 11 of these 13 cases differed, now 0."""
    indices_dtype, offsets_dtype, form = _BAG_DTYPE_CASES[case]
    assert _bag_dtype_outcome(chainrule, indices_dtype, offsets_dtype, form) == \
        _bag_dtype_outcome(torch, indices_dtype, offsets_dtype, form)


# ---------------------------------------------------------------- Python ints beyond int64
_BIG_INT_CASES = {
    "tensor of 2**64": lambda lib: lib.tensor(2**64),
    "tensor of a list": lambda lib: lib.tensor([1, 2**63]),
    "below int64": lambda lib: lib.tensor([-2**63 - 1]),
    "nested": lambda lib: lib.tensor([[1], [2**63]]),
    "as_tensor": lambda lib: lib.as_tensor([2**63]),
    "int64 asked": lambda lib: lib.tensor([2**63], dtype=lib.int64),
    "int32 asked, fits int64": lambda lib: lib.tensor([2**40], dtype=lib.int32),
    "uint8 asked": lambda lib: lib.tensor([300], dtype=lib.uint8),
    "uint64 asked": lambda lib: lib.tensor([2**63], dtype=lib.uint64).tolist(),
    "float32 asked": lambda lib: lib.tensor([2**64], dtype=lib.float32).tolist(),
    "LongTensor": lambda lib: lib.LongTensor([2**63]),
    "bool and int": lambda lib: lib.tensor([True, 2**63]),
    "default_collate": lambda lib: lib.utils.data.default_collate([2**63 + 5, 1]),
    "default_collate at the edge": lambda lib: lib.utils.data.default_collate([2**63 - 1, -2**63]).tolist(),
}


def _big_int_outcome(lib, case):
    try:
        return _BIG_INT_CASES[case](lib)
    except Exception as error:  # noqa: BLE001  (the outcome compared is the exception itself)
        return type(error).__name__, str(error)


@pytest.mark.parametrize("case", list(_BIG_INT_CASES))
def test_python_ints_beyond_int64_raise_torchs_value_error(case):
    """torch reads a Python int as a C long long before any dtype applies: one beyond int64 raises
    ValueError('Overflow when unpacking long long') (a worker's torch.initial_seed() above 2**63
    returned from a Dataset and collated does this). chainrule raised RuntimeError (value cannot be
    converted to type int64 without overflow), and default_collate NumPy's OverflowError: 9 of these
    14 cases differed, now 0."""
    assert _big_int_outcome(chainrule, case) == _big_int_outcome(torch, case)


# ---------------------------------------------------------------- NumPy's stream in DataLoader workers
class _NumpyDrawingDataset:
    """A map-style dataset drawing from NumPy's global stream, as augmentation code does."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        import random

        return index, int(np.random.randint(0, 10**6)), random.randint(0, 10**6)


def _worker_draws(lib):
    generator = lib.Generator()
    generator.manual_seed(123)
    loader = lib.utils.data.DataLoader(_NumpyDrawingDataset(), batch_size=2, num_workers=2, generator=generator,
                                       shuffle=True, collate_fn=lambda batch: batch)
    return [sample for batch in loader for sample in batch]


def test_dataloader_workers_seed_numpy_as_torch():
    """torch seeds each worker's NumPy stream with _generate_state(base_seed, worker_id), NumPy's
    SeedSequence hash over [worker_id, base_seed's low and high 32 bits, 0]; chainrule hashed
    SeedSequence(base_seed, spawn_key=(worker_id,)), so np.random draws in a Dataset (random crops,
    noise) differed from torch's in every worker: 8 of 8 here, now 0 (random and torch's own draws
    already agreed)."""
    assert _worker_draws(chainrule) == _worker_draws(torch)


# ---------------------------------------------------------------- kl_div's 'mean' warning
@pytest.mark.parametrize("options", [{}, {"reduction": "mean"}, {"reduction": "batchmean"}, {"reduction": "sum"},
                                     {"size_average": True}, {"reduce": False}, {"size_average": False}])
def test_kl_div_warns_about_mean_as_torch(options):
    """torch warns that kl_div's default reduction='mean' is not the KL divergence (use 'batchmean')
    whenever 'mean' is asked or defaulted and no legacy flag is given, F.kl_div and nn.KLDivLoss alike;
    chainrule never did: 3 of these 7 cases differed in their warnings, now 0."""
    import warnings

    outcomes = []
    for lib in (torch, chainrule):
        log_p = lib.tensor([[0.2, 0.5, 0.3]]).log()
        q = lib.tensor([[0.1, 0.6, 0.3]])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = [lib.nn.functional.kl_div(log_p, q, **options).tolist(), lib.nn.KLDivLoss(**options)(log_p, q).tolist()]
        outcomes.append((values, [(w.category.__name__, str(w.message)) for w in caught]))
    assert outcomes[1][1] == outcomes[0][1]
    np.testing.assert_allclose(np.array(outcomes[1][0]), np.array(outcomes[0][0]), rtol=1e-6)
