"""Whole programs on the stand-in GPU path, session 31 (lane standinA): the chainrule bugs they found.

Each test runs the program's idiom on the CPU and on the stand-in 'cuda' device and compares the two
(and torch's CPU result where torch has the op): torch has no CUDA here.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("family", ["Normal", "Laplace", "Cauchy"])
def test_a_number_parameter_of_a_distribution_joins_its_tensor_parameter_on_the_device(cuda, family):
    # dreamer_rssm: td.Normal(decoder(feat), 1).log_prob(obs) on the device raised the mixed-device
    # error in div: broadcast_all made the number 1 a CPU tensor of loc's shape; torch makes it with
    # the first tensor's dtype and device
    loc, value = _data(4, 3), _data(4, 3, seed=1)
    results = {}
    for device in ("cpu", "cuda"):
        dist = getattr(chainrule.distributions, family)(chainrule.tensor(loc, device=device), 1)
        assert dist.scale.device.type == device
        results[device] = dist.log_prob(chainrule.tensor(value, device=device))
    expected = getattr(torch.distributions, family)(torch.tensor(loc), 1).log_prob(torch.tensor(value))
    assert results["cuda"].device.type == "cuda"
    np.testing.assert_allclose(results["cuda"].cpu().numpy(), results["cpu"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(results["cpu"].numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_a_distribution_of_numbers_only_is_made_on_the_default_device(cuda):
    # torch.distributions.utils.broadcast_all makes numbers with torch.tensor: the default device
    chainrule.set_default_device("cuda")
    dist = chainrule.distributions.Normal(0.0, 2.0)
    assert dist.loc.device.type == "cuda" and dist.scale.device.type == "cuda"
    assert dist.log_prob(chainrule.tensor(0.5)).item() == pytest.approx(
        torch.distributions.Normal(0.0, 2.0).log_prob(torch.tensor(0.5)).item(), rel=1e-6)


def test_a_repr_whose_device_suffix_wraps_a_line_passes_the_device_check(cuda, capsys):
    # d2l_attention_seq2seq on the device: "..., device='cuda:0',\n       grad_fn=<...>)" where torch's
    # CPU run prints ", grad_fn=<...>)" on the line before (the device suffix passes the 80 columns):
    # calibration_problems(on_device=True) counted one line more and failed every line after it
    from tests.programs.run import Result, calibration_problems, line_numbers, line_shape, parse_final

    data = np.arange(8, dtype=np.float32).reshape(2, 1, 4) * 1.5 + 10

    def program(lib, device):
        x = lib.tensor(data, device=device)
        w = lib.ones(2, 4, 1, device=device, requires_grad=True)
        print(lib.bmm(x, w).reshape(2, 1, 1) + x)
        print(x.long())
        print("FINAL total=1.5")
        return capsys.readouterr().out

    on_cpu = program(torch, "cpu")
    expected = {"line_shapes": [line_shape(line) for line in on_cpu.splitlines()],
                "fixed_integers": [[None] * len(line_numbers(line)) for line in on_cpu.splitlines()],
                "final": {"total": {"low": 1.0, "high": 2.0}}}
    on_device = program(chainrule, "cuda")
    assert "device='cuda:0',\n       grad_fn=<AddBackward0>)" in on_device
    assert len(on_device.splitlines()) == len(on_cpu.splitlines()) + 1
    run = Result("wrapped", "chainrule", 0, 0, on_device, "", 0.0, parse_final(on_device))
    assert calibration_problems(run, expected, on_device=True) == []
    other = Result("wrapped", "chainrule", 0, 0, on_device.replace("59.0000", "59.0000, 1.0"), "", 0.0,
                   parse_final(on_device))
    assert calibration_problems(other, expected, on_device=True)  # a line that differs still counts


def test_torch_fails_too_names_programs_in_alphabetical_order():
    import importlib.util
    from pathlib import Path

    from tests.programs.run import program_names

    path = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check_for_s31", path)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    names = list(gpu_check.TORCH_FAILS_TOO)
    assert names == sorted(names)
    assert set(names) <= set(program_names())
    assert {"dreamer_rssm", "d2l_attention_seq2seq"}.isdisjoint(names)  # fixed in chainrule, not the programs'


@pytest.mark.parametrize("moment", ["mean", "variance"])
def test_a_categoricals_nan_mean_and_variance_are_on_its_device(cuda, moment):
    # torch makes them with torch.full(..., nan, device=probs.device); they were CPU tensors
    probs = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], dtype=np.float32)
    results = {device: getattr(chainrule.distributions.Categorical(probs=chainrule.tensor(probs, device=device)), moment)
               for device in ("cpu", "cuda")}
    expected = getattr(torch.distributions.Categorical(probs=torch.tensor(probs)), moment)
    assert results["cuda"].device.type == "cuda"
    assert results["cuda"].dtype == results["cpu"].dtype == chainrule.float32
    assert tuple(results["cuda"].shape) == tuple(expected.shape) == (3,)
    np.testing.assert_array_equal(results["cuda"].cpu().numpy(), expected.numpy())  # all NaN
