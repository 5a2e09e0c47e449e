"""The meta device, ``with torch.device(...)``, device equality and inference tensors, each checked
against torch 2.13 on the CPU (meta and cpu blocks) or, for 'cuda', on the CuPy stand-in."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import chainrule
from chainrule._backend import use_standin_cuda
from chainrule.testing.opinfo import op_db

from .ops.harness import _as_list, _make


def _both(fn):
    """``fn(lib)`` on torch and on chainrule."""
    return fn(torch), fn(chainrule)


def _outcome(fn, lib):
    """What ``fn(lib)`` gives: its result, or its exception's type name and message."""
    try:
        return fn(lib)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return type(error).__name__, str(error)


def _same_error(fn) -> tuple:
    expected, got = _outcome(fn, torch), _outcome(fn, chainrule)
    assert isinstance(expected, tuple) and isinstance(got, tuple), (expected, got)
    assert got[0] == expected[0], (expected, got)
    return expected, got


# ---------------------------------------------------------------- device equality
@pytest.mark.parametrize("a, b", [("cuda", "cuda:0"), ("cpu", "cpu:0"), ("cuda:1", "cuda:1"), ("meta", "meta"),
                                  ("cuda", "cuda"), ("cpu", "meta")])
def test_device_equality_and_hash_follow_torch(a, b):
    expected = torch.device(a) == torch.device(b)
    assert (chainrule.device(a) == chainrule.device(b)) is expected
    assert (chainrule.device(a) == b) is (torch.device(a) == b)  # a string is never equal in torch
    if expected:
        assert hash(chainrule.device(a)) == hash(chainrule.device(b))
    assert len({chainrule.device(a), chainrule.device(b)}) == len({torch.device(a), torch.device(b)})


def test_tensor_to_unindexed_cuda_is_the_same_tensor():
    with use_standin_cuda():
        t = chainrule.ones(2, device="cuda")
        assert t.device == chainrule.device("cuda", 0) and t.device != chainrule.device("cuda")
        assert t.to("cuda") is t and t.cuda() is t
        assert chainrule.as_tensor(t, device="cuda") is t
    cpu = chainrule.ones(2)
    assert cpu.to("cpu:0") is cpu


# ---------------------------------------------------------------- with torch.device(...)
def _made_in_block(lib, kind):
    with lib.device(kind):
        made = [lib.zeros(2), lib.ones(2), lib.empty(2), lib.full((2,), 1.0), lib.tensor([1.0, 2.0]),
                lib.arange(3), lib.linspace(0, 1, 3), lib.eye(2), lib.rand(2), lib.randn(2),
                lib.nn.Linear(4, 5).weight, lib.get_default_device()]
        kept = lib.zeros_like(lib.ones(2, device="cpu"))  # *_like keeps its input's device
        explicit = lib.ones(2, device="cpu")
    return [str(x if isinstance(x, lib.device) else x.device) for x in made] + [
        str(kept.device), str(explicit.device), str(lib.zeros(1).device), str(lib.get_default_device())]


@pytest.mark.parametrize("kind", ["meta", "cpu"])
def test_device_block_places_creations_as_torch_does(kind):
    expected, got = _both(lambda lib: _made_in_block(lib, kind))
    assert got == expected


def test_device_blocks_nest_and_restore():
    def nested(lib):
        with lib.device("meta"):
            with lib.device("cpu"):
                inner = lib.zeros(1).device
            after = lib.zeros(1).device
        return str(inner), str(after), str(lib.zeros(1).device)

    expected, got = _both(nested)
    assert got == expected == ("cpu", "meta", "cpu")


def test_set_default_device_inside_a_block_lasts_until_the_block_ends():
    def inside(lib):
        with lib.device("meta"):
            lib.set_default_device("cpu")
            made = lib.zeros(1).device
        return str(made), str(lib.get_default_device()), str(lib.zeros(1).device)

    # torch 2.13 answers ('cpu', 'cpu', 'cpu') but leaves its device-mode stack inconsistent after
    # this (later blocks leak), so its answer is written here rather than run
    try:
        assert inside(chainrule) == ("cpu", "cpu", "cpu")
    finally:
        chainrule.set_default_device(None)


def test_cuda_block_on_the_standin_creates_on_that_gpu():
    with use_standin_cuda(devices=2):
        with chainrule.device("cuda:1"):
            t = chainrule.zeros(3)
            layer = chainrule.nn.Linear(2, 3)
            assert chainrule.get_default_device() == chainrule.device("cuda", 1)
        assert t.device == chainrule.device("cuda", 1) and layer.weight.device == chainrule.device("cuda", 1)
        assert chainrule.zeros(1).device == chainrule.device("cpu")
        with chainrule.device("cuda"):  # no index: the selected GPU, as torch reports it
            assert chainrule.get_default_device() == chainrule.device("cuda", 0)
            assert chainrule.ones(1).device == chainrule.device("cuda", 0)


@pytest.mark.skipif(chainrule.cuda.is_available(), reason="a GPU (or the stand-in) is there")
def test_cuda_block_without_a_gpu_raises_at_creation_as_torch():
    def in_block(lib):
        with lib.device("cuda:1"):  # torch enters without a check, and fails at the first creation
            return lib.zeros(1)

    for lib in (torch, chainrule):
        with pytest.raises(AssertionError):  # chainrule's CudaUnavailableError is one (and a RuntimeError)
            in_block(lib)
        assert lib.zeros(1).device == lib.device("cpu")


# ---------------------------------------------------------------- meta tensors
def test_meta_repr_matches_torch():
    cases = [lambda lib: lib.empty(3, 4, device="meta"), lambda lib: lib.empty((), device="meta"),
             lambda lib: lib.zeros(0, 3, device="meta"),
             lambda lib: lib.zeros(2, device="meta", requires_grad=True),
             lambda lib: lib.zeros(2, device="meta", requires_grad=True) * 2,
             lambda lib: lib.zeros(2, dtype=lib.int64, device="meta")]
    for make in cases:
        expected, got = _both(lambda lib, make=make: repr(make(lib)))
        assert got == expected.replace("torch.", "chainrule.")


@pytest.mark.parametrize("read", ["item", "float", "bool", "numpy", "cpu", "to_cpu", "tolist"])
def test_reading_a_meta_tensor_raises_torchs_error(read):
    calls = {"item": lambda t: t.item(), "float": float, "bool": bool, "numpy": lambda t: t.numpy(),
             "cpu": lambda t: t.cpu(), "to_cpu": lambda t: t.to("cpu"), "tolist": lambda t: t.tolist()}
    expected, got = _same_error(lambda lib: calls[read](lib.empty(1, device="meta").sum()))
    assert got[1] == expected[1]


def test_meta_mixed_with_cpu_raises_but_a_cpu_scalar_joins():
    expected, got = _same_error(lambda lib: lib.empty(3, device="meta") + lib.ones(3))
    assert got[1].startswith(expected[1])
    joined = chainrule.empty(3, device="meta") * chainrule.tensor(2.0)
    assert joined.is_meta and joined.shape == (3,)


def test_data_dependent_ops_raise_not_implemented_on_meta():
    for fn in (lambda lib: lib.empty(3, device="meta").nonzero(),
               lambda lib: (lambda t: t[t > 0])(lib.empty(3, device="meta"))):
        _same_error(fn)


def test_meta_shapes_dtypes_and_strides_of_common_ops_match_torch():
    def ops(lib):
        a = lib.empty(2, 3, 4, device="meta", requires_grad=True)
        b = lib.empty(4, 5, device="meta")
        i = lib.empty(2, 3, dtype=lib.int32, device="meta")
        fresh = [a.exp() * 2 + 1, a @ b, a.sum(1), a.mean((0, 2), keepdim=True), a.amax(-1),
                 a.transpose(0, 2).reshape(-1), lib.cat([a, a], 1), lib.stack([b, b]), lib.softmax(a, -1), i + 1.5,
                 i * 2, lib.where(a > 0, a, 0.0), lib.nn.functional.linear(a, lib.empty(7, 4, device="meta")),
                 lib.argmax(a, 1), b.t().contiguous(),
                 lib.nn.functional.conv2d(lib.empty(1, 3, 8, 8, device="meta"), lib.empty(4, 3, 3, 3, device="meta"),
                                          padding=1),
                 lib.empty_like(a), lib.zeros_like(i), lib.rand_like(b), a.double(), a.to(lib.float16)]
        views = [a.view(6, 4), a[:, 1:, None], a.unsqueeze(0).expand(3, 2, 3, 4), b.t()]  # strides not kept
        return [(r.device.type, tuple(r.shape), str(r.dtype).split(".")[-1], r.requires_grad) for r in fresh + views
                ] + [r.stride() for r in fresh]

    expected, got = _both(ops)
    assert got == expected


def test_meta_backward_gives_meta_gradients():
    def grads(lib):
        x = lib.empty(2, 3, device="meta", requires_grad=True)
        w = lib.empty(4, 3, device="meta", requires_grad=True)
        lib.nn.functional.linear(x, w).relu().sum().backward()
        return [(g.device.type, tuple(g.shape)) for g in (x.grad, w.grad)]

    expected, got = _both(grads)
    assert got == expected


def test_in_place_init_on_meta_is_shape_only_and_leaves_the_cpu_generator():
    chainrule.manual_seed(0)
    before = chainrule.rand(3)
    chainrule.manual_seed(0)
    layer = chainrule.nn.Linear(30, 40, device="meta")
    layer.reset_parameters()
    chainrule.nn.init.normal_(layer.weight)
    layer.weight.data.add_(1)
    assert layer.weight.is_meta and layer.weight.shape == (40, 30)
    np.testing.assert_array_equal(chainrule.rand(3).numpy(), before.numpy())


def test_meta_arrays_take_no_memory():
    huge = chainrule.empty(1 << 20, 1 << 20, device="meta")  # 4 TiB if it were allocated
    out = (huge * 2).exp() @ chainrule.empty(1 << 20, 8, device="meta")
    assert out.shape == (1 << 20, 8) and out.is_meta and huge.nbytes == 4 << 40


def test_module_to_meta_to_empty_and_load_state_dict():
    def build(lib):
        net = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.Linear(4, 2))
        source = {name: lib.tensor(np.random.default_rng(k).uniform(0.5, 1.5, tuple(t.shape)), dtype=t.dtype)
                  for k, (name, t) in enumerate(net.state_dict().items())}
        net = copy.deepcopy(net).to("meta")
        on_meta = [(name, t.device.type, tuple(t.shape)) for name, t in net.state_dict().items()]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            net.load_state_dict(source)  # a no-op onto meta, with torch's warning
        still_meta = net[0].weight.is_meta
        net.to_empty(device="cpu")
        shapes = [(name, t.device.type, tuple(t.shape)) for name, t in net.state_dict().items()]
        net.load_state_dict(source)
        net.eval()
        out = net(lib.tensor([[1.0, 2.0, 3.0]])).detach().numpy().tolist()
        meta_again = copy.deepcopy(net).to("meta")
        meta_again.load_state_dict(source, assign=True)
        assigned = (meta_again[0].weight.device.type, type(meta_again[0].weight).__name__,
                    meta_again[0].weight.requires_grad)
        return on_meta, len(caught), still_meta, shapes, out, assigned

    expected, got = _both(build)
    assert got[:4] == expected[:4] and got[5] == expected[5]
    np.testing.assert_allclose(got[4], expected[4], rtol=1e-5)


def test_skip_init_builds_on_meta_then_allocates():
    expected, got = _both(lambda lib: [str(lib.nn.utils.skip_init(lib.nn.Linear, 3, 4, **kw).weight.device)
                                       for kw in ({}, {"device": "meta"})])
    assert got == expected
    _same_error(lambda lib: lib.nn.utils.skip_init(lib.nn.ReLU))


# ---------------------------------------------------------------- the ensembling tutorial's idiom
def test_ensemble_with_a_meta_base_model_matches_torch():
    """pytorch/tutorials' model ensembling, in our words: stack the weights of several models,
    keep one copy on 'meta' as the structure, and vmap a functional call over the stack."""

    def ensemble(lib):
        class MLP(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = lib.nn.Linear(12, 16)
                self.fc2 = lib.nn.Linear(16, 3)

            def forward(self, x):
                return self.fc2(lib.nn.functional.relu(self.fc1(x.flatten(1))))

        models = []
        for k in range(4):
            model = MLP()
            with lib.no_grad():
                for n, p in enumerate(model.parameters()):
                    p.copy_(lib.tensor(np.random.default_rng(10 * k + n).standard_normal(tuple(p.shape)),
                                       dtype=lib.float32))
            models.append(model)
        params, buffers = lib.func.stack_module_state(models)
        base = copy.deepcopy(models[0]).to("meta")

        def fmodel(params, buffers, x):
            return lib.func.functional_call(base, (params, buffers), (x,))

        data = lib.tensor(np.random.default_rng(99).standard_normal((4, 5, 3, 4)), dtype=lib.float32)
        each = lib.func.vmap(fmodel)(params, buffers, data)
        shared = lib.func.vmap(fmodel, in_dims=(0, 0, None))(params, buffers, data[0])
        loop = lib.stack([model(data[0]) for model in models])
        return (base.fc1.weight.device.type, each.detach().numpy(), shared.detach().numpy(),
                loop.detach().numpy())

    expected, got = _both(ensemble)
    assert got[0] == expected[0] == "meta"
    for g, e in zip(got[1:], expected[1:]):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[2], got[3], rtol=1e-6)


# ---------------------------------------------------------------- inference tensors
def test_is_inference_follows_torch():
    def flags(lib):
        with lib.inference_mode():
            x = lib.ones(2)
            p = lib.nn.Parameter(lib.ones(2))
            made_inside = lib.zeros(2).exp()
        with lib.inference_mode(False):
            off = lib.ones(2)
        return [x.is_inference(), p.is_inference(), made_inside.is_inference(), off.is_inference(),
                lib.ones(2).is_inference(), x.view(2).is_inference(), x.detach().is_inference(),
                x.clone().is_inference(), (x + 1).is_inference()]

    expected, got = _both(flags)
    assert got == expected


@pytest.mark.parametrize("use", ["saved", "inplace", "inplace_no_grad", "requires_grad"])
def test_inference_tensor_misuse_raises_torchs_error(use):
    def misuse(lib):
        with lib.inference_mode():
            x = lib.ones(2)
        w = lib.ones(2, requires_grad=True)
        if use == "saved":
            return (x * w).sum()  # mul saves x for w's gradient
        if use == "inplace":
            return x.add_(1)
        if use == "inplace_no_grad":
            with lib.no_grad():
                return x.mul_(2)
        return x.requires_grad_()

    expected, got = _same_error(misuse)
    assert got[1] == expected[1]


def test_inference_tensors_work_inside_inference_mode_and_unsaved_outside():
    def uses(lib):
        with lib.inference_mode():
            x = lib.ones(2)
            x.add_(1)  # in place inside the mode: fine
        w = lib.ones(2, requires_grad=True)
        total = (x + w).sum()  # add saves nothing: fine outside
        total.backward()
        return x.numpy().tolist(), w.grad.numpy().tolist()

    expected, got = _both(uses)
    assert got == expected


# ---------------------------------------------------------------- the op registry on meta
# Every STRIDE-th case of the registry (the same subset on every run) on meta tensors: an op either
# gives its CPU result's shape, dtype and a meta device, or raises (a data-dependent check or
# result: torch raises for those too); a wrong shape is never returned. Most cases run.
STRIDE = 2
META_CASES = [case for entry in op_db for case in entry.samples()][::STRIDE]


def test_registry_ops_on_meta_give_the_cpu_shapes_or_raise():
    ran, raised = 0, []
    for case in META_CASES:
        cpu_in = _make(chainrule, case, "float32")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cpu_out = _as_list(case.fn(chainrule, *cpu_in))
            except Exception:  # noqa: BLE001 - a case that raises on the CPU (its error is the sample)
                continue
            meta_in = [t.detach().to("meta").requires_grad_(t.requires_grad) if isinstance(t, chainrule.Tensor)
                       else t for t in cpu_in]
            chainrule.set_default_device("meta")  # tensors the case makes inside fn are meta too
            try:
                meta_out = _as_list(case.fn(chainrule, *meta_in))
            except Exception as error:  # noqa: BLE001 - counted, and the share that runs is checked below
                raised.append(f"{case.id}: {type(error).__name__}")
                continue
            finally:
                chainrule.set_default_device(None)
        ran += 1
        assert len(meta_out) == len(cpu_out), case.id
        for c, m in zip(cpu_out, meta_out):
            if isinstance(c, chainrule.Tensor):
                assert (m.device.type, tuple(m.shape), m.dtype) == ("meta", tuple(c.shape), c.dtype), case.id
    assert ran >= 0.75 * (ran + len(raised)), raised
