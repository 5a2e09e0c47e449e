"""Lazy modules, run as programs use them, on torch and on chainrule, compared."""

import copy

import numpy as np
import pytest
import torch

import chainrule as cr

LAZY_CASES = [
    # (class name, constructor args, input shape, the class it becomes)
    ("LazyLinear", (5,), (2, 7), "Linear"),
    ("LazyLinear", (5, False), (2, 3, 7), "Linear"),
    ("LazyConv1d", (4, 3), (2, 3, 9), "Conv1d"),
    ("LazyConv1d", (4, 3), (3, 9), "Conv1d"),  # unbatched
    ("LazyConv2d", (6, 3, 2, 1, 1, 3), (2, 6, 7, 7), "Conv2d"),  # stride, padding, dilation, groups
    ("LazyConv3d", (2, 2), (1, 3, 4, 4, 4), "Conv3d"),
    ("LazyConvTranspose1d", (4, 3, 2), (2, 3, 5), "ConvTranspose1d"),
    ("LazyConvTranspose2d", (4, 3), (2, 3, 5, 5), "ConvTranspose2d"),
    ("LazyConvTranspose3d", (2, 2), (1, 3, 3, 3, 3), "ConvTranspose3d"),
    ("LazyBatchNorm1d", (), (4, 3), "BatchNorm1d"),
    ("LazyBatchNorm2d", (1e-3, 0.2), (4, 3, 5, 5), "BatchNorm2d"),
    ("LazyBatchNorm3d", (), (2, 3, 2, 3, 3), "BatchNorm3d"),
    ("LazyInstanceNorm1d", (), (2, 3, 6), "InstanceNorm1d"),
    ("LazyInstanceNorm2d", (1e-5, 0.1, False, False), (2, 3, 4, 4), "InstanceNorm2d"),
    ("LazyInstanceNorm3d", (), (2, 3, 3, 3, 3), "InstanceNorm3d"),
]


def _state_as_numpy(module) -> dict:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def _load_numpy(module, lib, state: dict) -> None:
    module.load_state_dict({k: lib.tensor(v) for k, v in state.items()})


@pytest.mark.parametrize("name, args, shape, becomes", LAZY_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(LAZY_CASES)])
def test_lazy_module_materialises_as_torch(name, args, shape, becomes):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t_mod, c_mod = getattr(torch.nn, name)(*args), getattr(cr.nn, name)(*args)
    assert repr(c_mod) == repr(t_mod)
    assert c_mod.has_uninitialized_params() == t_mod.has_uninitialized_params()
    t_out = t_mod(torch.tensor(x))
    c_x = cr.tensor(x)
    c_mod(c_x)  # the dry run: materialises with chainrule's own random init
    assert type(c_mod).__name__ == type(t_mod).__name__ == becomes
    assert type(c_mod) is getattr(cr.nn, becomes)
    assert not hasattr(c_mod, "_initialize_hook")
    assert repr(c_mod) == repr(t_mod)
    assert {k: tuple(v.shape) for k, v in c_mod.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in t_mod.state_dict().items()}
    assert all(type(p) is cr.nn.Parameter for p in c_mod.parameters())
    # with torch's values loaded, the forward and its gradients are torch's
    t_mod, c_mod = getattr(torch.nn, name)(*args), getattr(cr.nn, name)(*args)
    t_mod(torch.tensor(x))
    c_mod(cr.tensor(x))
    _load_numpy(c_mod, cr, _state_as_numpy(t_mod))
    t_in, c_in = torch.tensor(x, requires_grad=True), cr.tensor(x, requires_grad=True)
    t_out, c_out = t_mod(t_in), c_mod(c_in)
    np.testing.assert_allclose(c_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-5)
    weights = np.random.default_rng(1).standard_normal(tuple(t_out.shape)).astype(np.float32)
    (t_out * torch.tensor(weights)).sum().backward()
    (c_out * cr.tensor(weights)).sum().backward()
    np.testing.assert_allclose(c_in.grad.numpy(), t_in.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (name_c, p_c), (name_t, p_t) in zip(c_mod.named_parameters(), t_mod.named_parameters()):
        assert name_c == name_t
        np.testing.assert_allclose(p_c.grad.numpy(), p_t.grad.numpy(), rtol=1e-4, atol=1e-4)


def _tutorial_model(lib):
    return lib.nn.Sequential(
        lib.nn.LazyConv2d(6, 3, padding=1), lib.nn.LazyBatchNorm2d(), lib.nn.ReLU(), lib.nn.MaxPool2d(2),
        lib.nn.Flatten(), lib.nn.LazyLinear(16), lib.nn.ReLU(), lib.nn.LazyLinear(3),
    )


def test_lazy_training_program_matches_torch():
    # the tutorial pattern: build lazily, dry-run one batch, then make the optimizer and train
    rng = np.random.default_rng(2)
    batches = [(rng.standard_normal((4, 2, 8, 8)).astype(np.float32), rng.integers(0, 3, 4)) for _ in range(3)]
    t_model, c_model = _tutorial_model(torch), _tutorial_model(cr)
    t_model(torch.tensor(batches[0][0]))
    c_model(cr.tensor(batches[0][0]))
    _load_numpy(c_model, cr, _state_as_numpy(t_model))
    # SGD, not Adam: the conv bias before batch norm gets a gradient of rounding noise, which
    # Adam would scale up to full steps of different sign on the two libraries
    t_opt = torch.optim.SGD(t_model.parameters(), lr=0.1, momentum=0.9)
    c_opt = cr.optim.SGD(c_model.parameters(), lr=0.1, momentum=0.9)
    for x, y in batches:
        for lib, model, opt in ((torch, t_model, t_opt), (cr, c_model, c_opt)):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y))
            loss.backward()
            opt.step()
    for key, value in _state_as_numpy(t_model).items():
        np.testing.assert_allclose(c_model.state_dict()[key].numpy(), value, rtol=1e-4, atol=1e-5, err_msg=key)


def test_optimizer_built_before_the_dry_run_trains_the_materialised_parameters():
    model = cr.nn.LazyLinear(2)
    opt = cr.optim.SGD(model.parameters(), lr=0.5)
    params = list(model.parameters())
    out = model(cr.ones(3, 4))
    assert [p is q for p, q in zip(params, model.parameters())] == [True, True]
    before = model.weight.detach().numpy().copy()
    out.sum().backward()
    opt.step()
    np.testing.assert_allclose(model.weight.detach().numpy(), before - 0.5 * 3.0, rtol=1e-6)


def test_state_dict_of_an_uninitialised_module_loads_as_torch():
    # a materialised checkpoint gives a Lazy module its shapes, and its values
    t_src, c_src = torch.nn.Linear(4, 3), cr.nn.Linear(4, 3)
    _load_numpy(c_src, cr, _state_as_numpy(t_src))
    t_lazy, c_lazy = torch.nn.LazyLinear(3), cr.nn.LazyLinear(3)
    t_lazy.load_state_dict(t_src.state_dict())
    c_lazy.load_state_dict(c_src.state_dict())
    assert tuple(c_lazy.weight.shape) == tuple(t_lazy.weight.shape) == (3, 4)
    assert not c_lazy.has_uninitialized_params()
    np.testing.assert_array_equal(c_lazy.weight.detach().numpy(), t_lazy.weight.detach().numpy())
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(c_lazy(cr.tensor(x)).detach().numpy(), t_lazy(torch.tensor(x)).detach().numpy(),
                               rtol=1e-6)
    assert type(c_lazy) is cr.nn.Linear
    # an uninitialised checkpoint into an uninitialised module: nothing to copy, nothing missing
    fresh = cr.nn.LazyBatchNorm1d()
    result = fresh.load_state_dict(cr.nn.LazyBatchNorm1d().state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert fresh.has_uninitialized_params()
    t_fresh = torch.nn.LazyBatchNorm1d()
    t_result = t_fresh.load_state_dict(torch.nn.LazyBatchNorm1d().state_dict())
    assert t_result.missing_keys == [] and t_fresh.has_uninitialized_params()


def test_lazy_module_converted_before_its_first_forward_keeps_the_dtype():
    model = cr.nn.LazyLinear(2).double()
    assert model(cr.ones(1, 3, dtype=cr.float64)).dtype == cr.float64
    assert model.weight.dtype == cr.float64
    assert cr.nn.LazyConv1d(2, 1, dtype=cr.float64)(cr.ones(1, 3, 4, dtype=cr.float64)).dtype == cr.float64


def test_uninitialised_parameter_as_torch():
    c_param = cr.nn.parameter.UninitializedParameter()
    t_param = torch.nn.parameter.UninitializedParameter()
    assert repr(c_param) == repr(t_param) == "<UninitializedParameter>"
    assert repr(cr.nn.parameter.UninitializedBuffer()) == "<UninitializedBuffer>"
    assert tuple(c_param.size()) == tuple(t_param.size()) == (0,)
    assert isinstance(c_param, cr.nn.Parameter) and c_param.requires_grad
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized parameter"):
        _ = c_param.shape
    copied = copy.deepcopy(cr.nn.LazyLinear(3))
    assert copied.has_uninitialized_params()
    assert copied(cr.ones(2, 5)).shape == (2, 3)
    c_param.materialize((2, 3), dtype=cr.float64)
    assert type(c_param) is cr.nn.Parameter and c_param.shape == (2, 3) and c_param.dtype == cr.float64


def test_lazy_errors_as_torch():
    for lib in (torch, cr):
        with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to LazyConv2d"):
            lib.nn.LazyConv2d(2, 3)(lib.ones(5, 5))
        with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
            lib.nn.LazyConv1d(4, 1, groups=2)(lib.ones(1, 3, 5))
        assert issubclass(lib.nn.LazyLinear, lib.nn.modules.lazy.LazyModuleMixin)

    class Half(cr.nn.modules.lazy.LazyModuleMixin, cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = cr.nn.parameter.UninitializedParameter()
            self.b = cr.nn.parameter.UninitializedParameter()

        def initialize_parameters(self, x):
            self.a.materialize(x.shape)

        def forward(self, x):
            return x

    with pytest.raises(RuntimeError, match="module Half has not been fully initialized"):
        Half()(cr.ones(2))


def test_lazy_modules_moved_before_their_first_forward_keep_uninitialised_buffers():
    from chainrule._backend import use_standin_cuda

    model = cr.nn.Sequential(cr.nn.LazyConv2d(3, 3), cr.nn.LazyBatchNorm2d(), cr.nn.Flatten(), cr.nn.LazyLinear(2))
    model.double()
    assert type(model[1].running_mean) is cr.nn.parameter.UninitializedBuffer
    assert model(cr.ones(2, 1, 5, 5, dtype=cr.float64)).dtype == cr.float64
    assert model[1].running_mean.dtype == cr.float64 and type(model[1].running_mean) is cr.Tensor
    with use_standin_cuda():
        model = cr.nn.Sequential(cr.nn.LazyConv2d(3, 3), cr.nn.LazyBatchNorm2d(), cr.nn.Flatten(),
                                 cr.nn.LazyLinear(2)).to("cuda")
        assert type(model[1].running_var) is cr.nn.parameter.UninitializedBuffer
        out = model(cr.randn(2, 1, 5, 5).to("cuda"))
        out.sum().backward()
        assert out.device.type == "cuda"
        assert all(t.device.type == "cuda" for t in model.state_dict().values())
        assert model[3].weight.shape == (2, 27) and model[3].weight.grad.device.type == "cuda"
