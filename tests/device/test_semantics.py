"""torch's device semantics on 'cuda' (the stand-in): placement, moves, printing, conversion
errors, mixing errors, modules, optimizers, saving."""

from __future__ import annotations

import io

import numpy as np
import pytest

import chainrule
from chainrule import nn

MIXED = r"Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"


def test_placement_and_moves(cuda):
    x = chainrule.tensor([1.0, 2.0], device="cuda")
    assert x.device == chainrule.device("cuda:0") == chainrule.device("cuda", 0) and x.is_cuda
    assert str(x.device) == "cuda:0" and repr(x.device) == "device(type='cuda', index=0)"
    assert chainrule.zeros(2, device=chainrule.device("cuda")).is_cuda
    assert chainrule.randn(3, device="cuda:0").is_cuda and chainrule.arange(4, device="cuda").is_cuda
    assert x.cuda() is x and x.to("cuda:0") is x  # already there: no copy
    back = x.cpu()
    assert back.device.type == "cpu" and back.tolist() == [1.0, 2.0]
    assert chainrule.ones(2).cuda().is_cuda and chainrule.ones(2).to("cuda", chainrule.float64).dtype is chainrule.float64
    assert x.new_zeros(3).is_cuda and chainrule.zeros_like(x).is_cuda and chainrule.rand_like(x).is_cuda


def test_moves_are_differentiable(cuda):
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    (x.to("cuda") * 3).sum().backward()
    assert x.grad.device.type == "cpu" and x.grad.tolist() == [3.0, 3.0]


def test_host_conversions(cuda):
    x = chainrule.tensor([[1.5, 2.0]], device="cuda")
    with pytest.raises(TypeError, match=r"can't convert cuda:0 device type tensor to numpy\. Use Tensor\.cpu\(\)"):
        x.numpy()
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
        np.asarray(x)
    assert x[0, 0].item() == 1.5 and float(x.sum()) == 3.5 and x.tolist() == [[1.5, 2.0]]
    assert isinstance(x.cpu().numpy(), np.ndarray)
    assert "device='cuda:0'" in repr(x) and repr(x).startswith("tensor([[1.5000, 2.0000]]")


def test_mixing_devices_raises_torchs_error(cuda):
    a = chainrule.ones(3, device="cuda")
    b = chainrule.ones(3)
    for mix in (lambda: a + b, lambda: b * a, lambda: chainrule.maximum(a, b), lambda: a > b,
                lambda: chainrule.cat([a, b]), lambda: a @ chainrule.ones(3, 2),
                lambda: nn.functional.linear(chainrule.ones(2, 3), chainrule.ones(4, 3, device="cuda"))):
        with pytest.raises(RuntimeError, match=MIXED):
            mix()


def test_python_scalars_and_0d_cpu_tensors_mix_freely(cuda):
    a = chainrule.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    out = (a * 2.0 + 1) * chainrule.tensor(3.0)  # torch allows a 0-d CPU tensor with a CUDA one
    assert out.is_cuda and out.tolist() == [9.0, 15.0]
    out.sum().backward()
    assert a.grad.is_cuda and a.grad.tolist() == [6.0, 6.0]
    assert (a > 1.5).is_cuda and chainrule.where(a > 1.5, a, 0.0).is_cuda


def test_module_to_moves_parameters_buffers_and_grads(cuda):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model(chainrule.randn(5, 3)).sum().backward()
    assert model.to("cuda") is model
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        assert t.is_cuda, name
    assert all(p.grad.is_cuda for p in model.parameters())
    weight = model[0].weight
    model.cpu()
    assert model[0].weight is weight and not weight.is_cuda and not model[1].running_mean.is_cuda
    model.cuda()
    assert isinstance(model[0].weight, nn.Parameter) and model[0].weight.is_cuda


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
                                  "RAdam"])
def test_optimizer_state_lives_on_the_parameters_device(cuda, name):
    layer = nn.Linear(3, 2).to("cuda")
    optimizer = getattr(chainrule.optim, name)(layer.parameters(), lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
    layer(chainrule.ones(4, 3, device="cuda")).sum().backward()
    optimizer.step()
    for state in optimizer.state.values():
        for key, value in state.items():
            # torch keeps the scalars step (and NAdam's mu_product) on the CPU
            if isinstance(value, chainrule.Tensor) and key not in ("step", "mu_product"):
                assert value.is_cuda, (name, key)
    assert layer.weight.is_cuda


def test_state_dict_and_save_of_cuda_tensors(cuda, tmp_path):
    layer = nn.Linear(3, 2).to("cuda")
    state = layer.state_dict()
    assert all(t.is_cuda for t in state.values())
    path = tmp_path / "layer.safetensors"
    chainrule.save(state, path)
    loaded = chainrule.load(path)  # back on the device they were saved from, as torch
    assert all(t.is_cuda for t in loaded.values())
    np.testing.assert_array_equal(loaded["weight"].cpu().numpy(), layer.weight.detach().cpu().numpy())
    fresh = nn.Linear(3, 2).to("cuda")
    fresh.load_state_dict(chainrule.load(path, map_location="cpu"))  # CPU tensors copied into CUDA parameters
    assert fresh.weight.is_cuda and fresh.weight.tolist() == layer.weight.tolist()
    buffer = io.BytesIO()
    chainrule.save({"x": chainrule.arange(3.0, device="cuda")}, buffer)
    buffer.seek(0)
    assert chainrule.load(buffer)["x"].tolist() == [0.0, 1.0, 2.0]


def test_default_device(cuda):
    chainrule.set_default_device("cuda")
    assert chainrule.get_default_device() == chainrule.device("cuda:0")
    assert chainrule.tensor([1, 2]).is_cuda and chainrule.zeros(2).is_cuda and chainrule.randn(2).is_cuda
    assert not chainrule.from_numpy(np.ones(2)).is_cuda  # from_numpy shares host memory, as torch's
    chainrule.set_default_device("cpu")
    assert not chainrule.zeros(2).is_cuda


def test_dataloader_pin_memory_and_device_dataset(cuda):
    from chainrule.utils.data import DataLoader, TensorDataset

    x = chainrule.arange(12.0).reshape(6, 2)
    batches = list(DataLoader(TensorDataset(x, chainrule.arange(6)), batch_size=4, pin_memory=True))
    assert [b[0].shape[0] for b in batches] == [4, 2] and not batches[0][0].is_cuda
    on_device = DataLoader(TensorDataset(x.cuda(), chainrule.arange(6).cuda()), batch_size=4, shuffle=True)
    xb, yb = next(iter(on_device))
    assert xb.is_cuda and yb.is_cuda and (xb[:, 0] == 2 * yb).all()


def test_without_cuda_the_error_names_cupy():
    if chainrule.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(RuntimeError, match="CuPy"):
        chainrule.zeros(2, device="cuda")


def test_random_draws_are_made_on_the_device(cuda):
    mean = chainrule.zeros(1000, device="cuda")
    samples = [chainrule.normal(mean, 1.0), chainrule.bernoulli(chainrule.full((1000,), 0.5, device="cuda")),
               nn.functional.dropout(chainrule.ones(1000, device="cuda"), 0.5), chainrule.rand(1000, device="cuda"),
               chainrule.empty(1000, device="cuda").uniform_()]
    assert cuda.transfers() == 0  # no host draw copied over
    assert all(s.is_cuda for s in samples)
    assert 0.3 < float((samples[2] == 0).float().mean()) < 0.7  # dropout drops about half
