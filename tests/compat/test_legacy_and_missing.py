"""PyTorch idioms older and tutorial scripts use on their first lines: the legacy tensor types
(FloatTensor, ..., torch.cuda.*), Tensor.type, autograd.Variable, set_default_tensor_type, and
the utilities (fork_rng, nbytes, nn.attention) — each answered as torch 2.13 answers it."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.attention as torch_attention

import chainrule
import chainrule.nn.attention as attention

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
    "alias keeps history": lambda l: (lambda b: (b.requires_grad, b.is_leaf))(
        l.FloatTensor(l.ones(2, requires_grad=True))),
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
        with pytest.raises(TypeError, match=f"cuda.{name}"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lib.set_default_tensor_type(getattr(lib.cuda, name))
        with pytest.raises(TypeError):
            getattr(lib.cuda, name)(2, 3)


def test_set_default_tensor_type_sets_the_default_dtype_and_warns():
    results = []
    for lib in LIBS:
        try:
            # both warn once a process (TORCH_WARN_ONCE), and on every call under set_warn_always(True)
            lib.set_warn_always(True)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                lib.set_default_tensor_type(lib.DoubleTensor)
            lib.set_warn_always(False)
            assert any("deprecated" in str(w.message) for w in caught)
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
    "unique dim out of range": lambda l: l.unique(l.tensor([1, 2]), dim=3),
    "unique of a list": lambda l: l.unique([1, 2, 2]),
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


def test_unique_keeps_nans_apart_and_inverse_rebuilds_the_input_like_torch():
    # class-weight and label-remapping code: classes, inverse, counts = labels.unique(...)
    x = [[3.0, float("nan"), 1.0], [3.0, float("nan"), -0.0]]
    for lib in LIBS:
        values, inverse, counts = lib.unique(lib.tensor(x), return_inverse=True, return_counts=True)
        assert inverse.shape == (2, 3) and inverse.dtype == lib.int64
        np.testing.assert_array_equal(values[inverse].numpy(), np.array(x))
        assert counts.tolist() == [1, 1, 2, 1, 1]
    assert not chainrule.unique(chainrule.randn(4, requires_grad=True)).requires_grad


SAMPLING_ERRORS = {
    "bad mode": lambda l: l.nn.functional.grid_sample(l.zeros(1, 1, 2, 2), l.zeros(1, 2, 2, 2), mode="area",
                                                      align_corners=False),
    "bad padding": lambda l: l.nn.functional.grid_sample(l.zeros(1, 1, 2, 2), l.zeros(1, 2, 2, 2),
                                                         padding_mode="wrap", align_corners=False),
    "grid last dim": lambda l: l.nn.functional.grid_sample(l.zeros(1, 1, 2, 2), l.zeros(1, 2, 2, 3),
                                                           align_corners=False),
    "grid batch": lambda l: l.nn.functional.grid_sample(l.zeros(2, 1, 2, 2), l.zeros(1, 2, 2, 2),
                                                        align_corners=False),
    "grid rank": lambda l: l.nn.functional.grid_sample(l.zeros(1, 1, 2, 2), l.zeros(1, 2, 2, 2, 2),
                                                       align_corners=False),
    "bicubic 5-d": lambda l: l.nn.functional.grid_sample(l.zeros(1, 1, 2, 2, 2), l.zeros(1, 1, 1, 1, 3),
                                                         mode="bicubic", align_corners=False),
    "3-d input": lambda l: l.nn.functional.grid_sample(l.zeros(1, 2, 2), l.zeros(1, 2, 2), align_corners=False),
    "dtype mismatch": lambda l: l.nn.functional.grid_sample(l.zeros(1, 1, 2, 2), l.zeros(1, 2, 2, 2,
                                                                                         dtype=l.float64),
                                                            align_corners=False),
    "theta shape": lambda l: l.nn.functional.affine_grid(l.zeros(1, 3, 3), (1, 1, 2, 2), align_corners=False),
    "theta 3-d for 2-d size": lambda l: l.nn.functional.affine_grid(l.zeros(1, 3, 4), (1, 1, 2, 2),
                                                                    align_corners=False),
    "integer theta": lambda l: l.nn.functional.affine_grid(l.zeros(1, 2, 3, dtype=l.long), (1, 1, 2, 2),
                                                           align_corners=False),
    "size rank": lambda l: l.nn.functional.affine_grid(l.zeros(1, 2, 3), (1, 1, 2), align_corners=False),
    "zero size": lambda l: l.nn.functional.affine_grid(l.zeros(1, 2, 3), (1, 1, 0, 2), align_corners=False),
    "triplet ranks": lambda l: l.nn.functional.triplet_margin_loss(l.zeros(2, 3), l.zeros(3), l.zeros(2, 3)),
    "triplet distance margin": lambda l: l.nn.functional.triplet_margin_with_distance_loss(
        l.zeros(2, 3), l.zeros(2, 3), l.zeros(2, 3), margin=0.0),
    "triplet module margin": lambda l: l.nn.TripletMarginLoss(margin=-1.0),
    "triplet reduction": lambda l: l.nn.functional.triplet_margin_loss(l.zeros(2, 3), l.zeros(2, 3), l.zeros(2, 3),
                                                                       reduction="avg"),
    "sdpa_kernel string": lambda l: l.nn.attention.sdpa_kernel("math").__enter__(),
    "sdpa_kernel tuple": lambda l: l.nn.attention.sdpa_kernel((l.nn.attention.SDPBackend.MATH,)).__enter__(),
}


@pytest.mark.parametrize("name", list(SAMPLING_ERRORS))
def test_sampling_loss_and_attention_errors_match_torch(name):
    kinds = []
    for lib in LIBS:
        with pytest.raises(Exception) as info:
            SAMPLING_ERRORS[name](lib)
        kinds.append(info.type)
    assert kinds[0] is kinds[1], kinds


def test_align_corners_default_warns_as_torch():
    for lib in LIBS:
        with pytest.warns(UserWarning, match="align_corners=False"):
            grid = lib.nn.functional.affine_grid(lib.eye(2, 3).unsqueeze(0), (1, 1, 2, 2))
        with pytest.warns(UserWarning, match="align_corners=False"):
            lib.nn.functional.grid_sample(lib.ones(1, 1, 2, 2), grid)


def test_spatial_transformer_step_matches_torch():
    """The spatial-transformer tutorial's sampling step: theta from a linear layer, affine_grid, then
    grid_sample; the output and the gradients of the image, theta's layer and the grid match torch."""
    generator = np.random.default_rng(0)
    image = generator.standard_normal((3, 2, 7, 6)).astype(np.float32)
    weight = (generator.standard_normal((6, 5)) * 0.1).astype(np.float32)
    features = generator.standard_normal((3, 5)).astype(np.float32)
    bias = np.array([1, 0, 0, 0, 1, 0], np.float32)
    results = []
    for lib in LIBS:
        x = lib.tensor(image, requires_grad=True)
        w = lib.tensor(weight, requires_grad=True)
        theta = lib.nn.functional.linear(lib.tensor(features), w, lib.tensor(bias)).view(-1, 2, 3)
        grid = lib.nn.functional.affine_grid(theta, list(x.size()), align_corners=False)
        grid.retain_grad()
        out = lib.nn.functional.grid_sample(x, grid, align_corners=False)
        (out * out).sum().backward()
        results.append([t.detach().numpy() for t in (out, x.grad, w.grad, grid.grad)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_nearest_grid_gets_a_zero_gradient_like_torch():
    grads = []
    for lib in LIBS:
        grid = lib.tensor(np.random.default_rng(1).uniform(-1, 1, (1, 2, 3, 2)).astype(np.float32), requires_grad=True)
        lib.nn.functional.grid_sample(lib.ones(1, 1, 3, 3), grid, mode="nearest", align_corners=True).sum().backward()
        grads.append(grid.grad.numpy())
    assert np.array_equal(grads[0], grads[1]) and not grads[0].any()


def test_gumbel_softmax_is_softmax_of_perturbed_logits_and_hard_is_straight_through():
    F = chainrule.nn.functional
    logits = chainrule.tensor(np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    chainrule.manual_seed(7)
    soft = F.gumbel_softmax(logits, tau=0.5, dim=0)
    chainrule.manual_seed(7)
    gumbels = -chainrule.empty(4, 5).exponential_().log()
    np.testing.assert_allclose(soft.detach().numpy(), ((logits + gumbels) / 0.5).softmax(0).detach().numpy(),
                               rtol=1e-6)
    assert np.allclose(soft.detach().sum(0).numpy(), 1.0)
    chainrule.manual_seed(7)
    hard = F.gumbel_softmax(logits, tau=0.5, hard=True, dim=0)
    assert sorted(hard.detach().numpy().ravel().tolist()) == [0.0] * 15 + [1.0] * 5
    assert hard.detach().argmax(0).tolist() == soft.detach().argmax(0).tolist()
    weights = chainrule.tensor(np.arange(20, dtype=np.float32).reshape(4, 5))
    soft_grad = chainrule.autograd.grad((soft * weights).sum(), logits)[0]
    hard_grad = chainrule.autograd.grad((hard * weights).sum(), logits)[0]
    np.testing.assert_allclose(hard_grad.numpy(), soft_grad.numpy(), rtol=1e-6)  # straight-through
    with pytest.warns(UserWarning, match="eps"):
        F.gumbel_softmax(logits, eps=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"margin": 0.5, "p": 1.0, "swap": True, "reduction": "sum"},
                                    {"reduction": "none", "eps": 1e-3}, {"size_average": False}])
def test_triplet_margin_loss_module_matches_torch(kwargs):
    arrays = [np.random.default_rng(s).standard_normal((5, 3)).astype(np.float32) for s in range(3)]
    results = []
    for lib in LIBS:
        inputs = [lib.tensor(a, requires_grad=True) for a in arrays]
        loss = lib.nn.TripletMarginLoss(**kwargs)(*inputs)
        loss.sum().backward()
        results.append([loss.detach().numpy()] + [t.grad.numpy() for t in inputs])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_triplet_margin_with_distance_loss_module_matches_torch():
    arrays = [np.random.default_rng(s).standard_normal((4, 3)).astype(np.float32) for s in range(3)]
    results = []
    for lib in LIBS:
        inputs = [lib.tensor(a, requires_grad=True) for a in arrays]
        module = lib.nn.TripletMarginWithDistanceLoss(
            distance_function=lambda a, b: (a - b).abs().sum(-1), margin=2.0, swap=True)
        loss = module(*inputs)
        loss.backward()
        results.append([loss.detach().numpy()] + [t.grad.numpy() for t in inputs])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_fork_rng_restores_the_streams():
    for lib in LIBS:
        lib.manual_seed(3)
        before = lib.rand(3)
        with lib.random.fork_rng():
            inside = lib.rand(3)
        after = lib.rand(3)
        lib.manual_seed(3)
        assert lib.equal(lib.rand(3), before) and lib.equal(after, inside)
        with lib.random.fork_rng(enabled=False):
            lib.rand(2)
        assert not lib.equal(lib.rand(3), after)
        state = lib.get_rng_state()
        with pytest.raises(ZeroDivisionError), lib.random.fork_rng(devices=[]):
            lib.rand(5)
            raise ZeroDivisionError  # an error in the block still restores the stream
        assert lib.equal(lib.get_rng_state(), state)


def test_fork_rng_restores_the_stand_in_device_stream():
    from chainrule import _backend

    runs = []
    with _backend.use_standin_cuda():
        for fork in (False, True):
            chainrule.manual_seed(4)
            first = chainrule.rand(4, device="cuda")
            if fork:
                with chainrule.random.fork_rng():
                    chainrule.rand(4, device="cuda")
            runs.append((first.cpu(), chainrule.rand(4, device="cuda").cpu()))
    # the draws after the block are those of a run without it
    assert all(chainrule.equal(a, b) for a, b in zip(*runs))


def test_sdpa_kernel_accepts_torch_arguments_and_changes_nothing():
    assert {m.name: m.value for m in attention.SDPBackend} == {
        m.name: m.value for m in torch_attention.SDPBackend.__members__.values()}
    q = chainrule.tensor(np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32))
    plain = chainrule.nn.functional.scaled_dot_product_attention(q, q, q)
    for backends in (attention.SDPBackend.MATH, [attention.SDPBackend.FLASH_ATTENTION, attention.SDPBackend.MATH],
                     []):
        with attention.sdpa_kernel(backends, set_priority=True) as answer:
            assert answer == {}
            assert chainrule.equal(chainrule.nn.functional.scaled_dot_product_attention(q, q, q), plain)


def test_legacy_cuda_types_on_the_stand_in_device():
    from chainrule import _backend

    with _backend.use_standin_cuda():
        x = chainrule.ones(2, device="cuda")
        assert x.type() == "torch.cuda.FloatTensor"
        assert isinstance(x, chainrule.cuda.FloatTensor) and not isinstance(x, chainrule.FloatTensor)
        moved = chainrule.tensor([1.5, 2.5]).type("torch.cuda.LongTensor")
        assert (moved.device.type, moved.dtype, moved.cpu().tolist()) == ("cuda", chainrule.int64, [1, 2])
        assert x.type(chainrule.DoubleTensor).device.type == "cpu"
        made = chainrule.cuda.FloatTensor([1, 2])
        assert made.device.type == "cuda" and made.type() == "torch.cuda.FloatTensor"
        assert chainrule.cuda.LongTensor(2, 3).shape == (2, 3)
