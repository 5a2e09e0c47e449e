"""Session 60, lane mendEB: hfft's steps and layouts as torch's, fft inputs cropped then padded once; an empty
NumPy array's strides kept through copies, permutations, pickling and torch.save; a node's saved None reads None
after backward; the DataLoader iterates its sampler before drawing its base seed; NumPy text indices refused
as torch's."""

import copy
import io
import pickle

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _node_chain(node) -> list:
    names = []
    while node is not None:
        names.append(node.name())
        node = next((edge for edge, _ in node.next_functions if edge is not None), None)
    return names


@pytest.mark.parametrize("op, shape, expand, kwargs", [
    ("hfftn", (3, 2), True, {}),
    ("hfftn", (2, 4, 4), True, {"dim": (0, 1, 2, 3)}),
    ("hfftn", (3, 2, 2), True, {"s": (6, 7, 8, 2)}),
    ("hfft2", (3, 4), True, {"s": (5, 3)}),
    ("hfftn", (4, 2, 4), False, {"s": (3, 4, 4), "norm": "forward"}),
    ("hfft2", (2, 4), False, {"s": (6, 4)}),
    ("hfft", (3, 4), False, {"n": 9, "norm": "ortho"}),
    ("fftn", (3, 5), False, {"s": (6, 2)}),
])
def test_hermitian_transforms_layout_graph_and_gradient_as_torchs(op, shape, expand, kwargs):
    values = np.random.default_rng(0).standard_normal((*shape, 2)).view(np.complex128)[..., 0]
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(values, requires_grad=True)
        source = x.unsqueeze(0).expand(2, *shape) if expand else x
        y = getattr(lib.fft, op)(source, **kwargs)
        weights = lib.arange(y.numel(), dtype=lib.float64).reshape(y.shape).to(y.dtype)
        if weights.is_complex():
            weights = weights * (1 - 2j)
        (y * weights).sum().abs().backward()
        results.append((y, _node_chain(y.grad_fn), x.grad))
    (expected, expected_chain, expected_grad), (got, chain, grad) = results
    assert got.stride() == expected.stride()
    assert chain == expected_chain
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad.numpy(), expected_grad.numpy(), rtol=1e-9, atol=1e-9)


def _save_load(lib, t):
    buffer = io.BytesIO()
    lib.save(t, buffer)
    buffer.seek(0)
    return lib.load(buffer)


_EMPTY_COPIES = {
    "clone": lambda lib, t: t.clone(),
    "tensor": lambda lib, t: lib.tensor(t),
    "T": lambda lib, t: t.T,
    "mT": lambda lib, t: t.mT,
    "transpose": lambda lib, t: t.transpose(0, -1),
    "permute": lambda lib, t: t.permute(*reversed(range(t.dim()))),
    "pickle": lambda lib, t: pickle.loads(pickle.dumps(t)),
    "deepcopy": lambda lib, t: copy.deepcopy(t),
    "save_load": _save_load,
}


@pytest.mark.filterwarnings("ignore:To copy construct")
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 4)])
@pytest.mark.parametrize("make", ["tensor", "from_numpy"])
@pytest.mark.parametrize("how", sorted(_EMPTY_COPIES))
def test_an_empty_numpy_arrays_strides_survive_copies_and_permutations(shape, make, how):
    array = np.zeros(shape, dtype=np.float32)  # NumPy zeroes its strides, and torch keeps them
    if how == "T" and len(shape) != 2:
        pytest.skip("T of a 3-d tensor is deprecated in torch")
    expected, got = (_EMPTY_COPIES[how](lib, getattr(lib, make)(array)) for lib in (torch, chainrule))
    assert got.stride() == expected.stride()
    assert tuple(got.shape) == tuple(expected.shape)


_NONE_SAVING_OPS = {
    "mul": lambda lib, a, c: a * c,
    "mm": lambda lib, a, c: a @ c.T,
    "addmm": lambda lib, a, c: lib.addmm(a[:, :1], a, c.T),
    "linear_bias": lambda lib, a, c: lib.nn.functional.linear(a, c, c[:, 0]),
    "addcmul": lambda lib, a, c: lib.addcmul(a, a, c),
    "hypot": lambda lib, a, c: lib.hypot(a, c),
    "nll_loss": lambda lib, a, c: lib.nn.functional.nll_loss(a * c, lib.tensor([0, 1, 2, 3])),
    "binary_cross_entropy": lambda lib, a, c: lib.nn.functional.binary_cross_entropy(a.sigmoid(), c.sigmoid()),
    "bce_with_logits": lambda lib, a, c: lib.nn.functional.binary_cross_entropy_with_logits(a, c.sigmoid()),
    "clamp_tensor_min": lambda lib, a, c: a.clamp(min=c),
    "batch_norm_no_stats": lambda lib, a, c: lib.nn.functional.batch_norm(a * c, None, None, training=True),
}


def _saved_reads(node) -> dict:
    reads = {}
    for name in dir(node):
        if name.startswith("_saved_") and not name.endswith("_sym_strides"):
            try:
                value = getattr(node, name)
            except RuntimeError as error:
                value = "freed" if "freed" in str(error) else str(error)
            reads[name] = tuple(value.shape) if hasattr(value, "shape") else value if value is None else type(value)
    return reads


@pytest.mark.parametrize("needs", [(True, False), (False, True)])
@pytest.mark.parametrize("op", sorted(_NONE_SAVING_OPS))
def test_a_saved_none_reads_none_after_backward_as_torchs(op, needs):
    values = np.random.default_rng(1).standard_normal((2, 4, 6))
    reads = []
    for lib in (torch, chainrule):
        a, c = (lib.tensor(v, requires_grad=need) for v, need in zip(values, needs))
        out = _NONE_SAVING_OPS[op](lib, a, c)
        node = out.grad_fn
        before = _saved_reads(node)
        out.sum().backward()
        reads.append((node.name(), before, _saved_reads(node)))
    assert reads[1] == reads[0]


def _loader_draws(lib, batch_size):
    class DrawingSampler(lib.utils.data.Sampler):  # draws its order when iter() is called
        def __iter__(self):
            return iter(lib.randperm(6).tolist())

        def __len__(self):
            return 6

    lib.manual_seed(0)
    loader = lib.utils.data.DataLoader(list(range(6)), batch_size=batch_size, sampler=DrawingSampler())
    return [lib.as_tensor(batch).tolist() for batch in loader], lib.rand(2).tolist()


@pytest.mark.parametrize("batch_size", [None, 2])
def test_the_loader_iterates_its_sampler_before_drawing_the_base_seed_as_torchs(batch_size):
    assert _loader_draws(chainrule, batch_size) == _loader_draws(torch, batch_size)


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")
@pytest.mark.parametrize("key", [np.bytes_(b"a"), (0, np.bytes_(b"a")), [np.bytes_(b"a")], np.array([b"a"]),
                                 np.array(["a"]), (slice(None), np.str_("x")), np.str_("a"), b"a"],
                         ids=repr)
def test_numpy_text_indices_refused_as_torchs(key):
    errors = []
    for lib in (torch, chainrule):
        with pytest.raises(TypeError) as caught:
            lib.zeros(2, 3)[key]
        errors.append(str(caught.value))
    assert errors[1] == errors[0]


@pytest.mark.parametrize("given", [(False, False), (True, True), (False, True)], ids=["none", "affine", "bias_only"])
def test_batch_norms_saved_weight_before_and_after_backward_as_torchs(given):
    reads = []
    for lib in (torch, chainrule):
        x = lib.tensor(np.random.default_rng(2).standard_normal((4, 6, 5)), dtype=lib.float32, requires_grad=True)
        weight, bias = (lib.ones(6, requires_grad=True) if one else None for one in given)
        out = lib.nn.functional.batch_norm(x, None, None, weight, bias, training=True)
        node = out.grad_fn
        seen = [sorted(name for name in dir(node) if name.startswith("_raw_saved_"))]
        out.sum().backward()
        for name in ("_saved_weight", "_raw_saved_weight"):
            try:
                value = getattr(node, name)
                value = value.unpack() if name.startswith("_raw") else value
                seen.append(None if value is None else "tensor")
            except RuntimeError as error:
                seen.append("freed" if "freed" in str(error) else str(error))
        reads.append(seen)
    assert reads[1] == reads[0]
