"""Whole programs on the stand-in GPU path, session 31 (lane standinB): the bugs they found.

Each test runs the same code on the CPU and on the stand-in 'cuda' device and compares the two,
and with torch's CPU result where torch has the same call. torch has no CUDA here.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule._backend import array_module


def test_a_diagonal_view_on_the_device_writes_through_as_cupys_does(cuda):
    # NumPy's diagonal is a read-only view; CuPy's (and torch's) writes into its base.
    # parametrizations_orthogonal on the default device raised 'assignment destination is read-only'
    # from orthogonal's right_inverse (zeros_like(weight).diagonal().fill_(-1))
    torch = pytest.importorskip("torch")
    results = {}
    for device in ("cpu", "cuda"):
        x = chainrule.zeros(3, 4, device=device)
        x.diagonal().fill_(-1.0)
        x.diagonal(offset=1).add_(2.0)
        results[device] = x.cpu().numpy()
    expected = torch.zeros(3, 4)
    expected.diagonal().fill_(-1.0)
    expected.diagonal(offset=1).add_(2.0)
    np.testing.assert_array_equal(results["cuda"], results["cpu"])
    np.testing.assert_array_equal(results["cuda"], expected.numpy())


def test_the_standins_diagonal_function_and_method_give_writable_views(cuda):
    x = chainrule.zeros(2, 3, 3, device="cuda")._data
    xp = array_module(x)
    xp.diagonal(x, 0, 1, 2).fill(5.0)
    x.diagonal(0, 1, 2)[...] = x.diagonal(0, 1, 2) + 1.0
    np.testing.assert_array_equal(xp.asnumpy(x), np.broadcast_to(np.eye(3, dtype=np.float32) * 6.0, (2, 3, 3)))
    assert cuda.transfers() == 1  # the one asnumpy above


def test_orthogonal_parametrization_on_the_device_equals_the_cpu(cuda):
    results = {}
    for device in ("cpu", "cuda"):
        chainrule.manual_seed(0)
        layer = chainrule.nn.Linear(5, 4).to(device)
        chainrule.nn.utils.parametrizations.orthogonal(layer)
        weight = layer.weight
        results[device] = (weight.detach().cpu().numpy(), (weight @ weight.T).detach().cpu().numpy())
    np.testing.assert_allclose(results["cuda"][0], results["cpu"][0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(results["cuda"][1], np.eye(4, dtype=np.float32), atol=1e-5)


def _sparse(module, device=None):
    indices = module.tensor([[0, 2, 1, 2], [1, 0, 1, 0]])
    values = module.tensor([1.0, 2.0, 3.0, 4.0])
    if device is not None:
        indices, values = indices.to(device), values.to(device)
    return module.sparse_coo_tensor(indices, values, (3, 2))


def test_sparse_plus_sparse_on_the_device_equals_the_cpu_and_torch(cuda):
    torch = pytest.importorskip("torch")
    results = {}
    for device in ("cpu", "cuda"):
        a, b = _sparse(chainrule, device), _sparse(chainrule, device).coalesce()
        total = (a + b).coalesce()
        results[device] = (total.indices().cpu().numpy(), total.values().cpu().numpy(), (a - b).to_dense().cpu().numpy())
    expected = (_sparse(torch) + _sparse(torch).coalesce()).coalesce()
    np.testing.assert_array_equal(results["cuda"][0], results["cpu"][0])
    np.testing.assert_array_equal(results["cuda"][1], results["cpu"][1])
    np.testing.assert_array_equal(results["cuda"][2], results["cpu"][2])
    np.testing.assert_array_equal(results["cuda"][0], expected.indices().numpy())
    np.testing.assert_array_equal(results["cuda"][1], expected.values().numpy())


def test_a_cpu_sparse_tensor_plus_a_cuda_one_is_torchs_runtime_error(cuda):
    # sparse_coo_gcn under --default-device cuda adds its CPU adjacency (from_numpy) to a sparse
    # identity made on the default device: the stand-in raised CuPy's TypeError 'Unsupported type
    # numpy.ndarray' from inside the add; torch's CUDA kernel (add_out_sparse_cuda) checks first
    host, device = _sparse(chainrule), _sparse(chainrule, "cuda")
    with pytest.raises(RuntimeError, match=r"^add: expected 'self' to be CUDA, but got CPU$"):
        host + device
    with pytest.raises(RuntimeError, match=r"^add: expected 'other' to be CUDA, but got CPU$"):
        device + host
    with pytest.raises(RuntimeError, match=r"^add: expected 'other' to be CUDA, but got CPU$"):
        device.sub(host)


def test_sparse_times_sparse_on_the_device_equals_the_cpu_and_across_devices_is_torchs_error(cuda):
    torch = pytest.importorskip("torch")
    results = {}
    for device in ("cpu", "cuda"):
        product = (_sparse(chainrule, device).coalesce() * _sparse(chainrule, device).coalesce()).coalesce()
        results[device] = (product.indices().cpu().numpy(), product.values().cpu().numpy())
    expected = (_sparse(torch).coalesce() * _sparse(torch).coalesce()).coalesce()
    np.testing.assert_array_equal(results["cuda"][0], results["cpu"][0])
    np.testing.assert_array_equal(results["cuda"][1], results["cpu"][1])
    np.testing.assert_array_equal(results["cuda"][1], expected.values().numpy())
    # the stand-in raised CuPy's TypeError 'Unsupported type numpy.ndarray'; torch's mul_out_sparse_cuda
    # makes its out on self's device and checks it first
    host, device = _sparse(chainrule), _sparse(chainrule, "cuda")
    with pytest.raises(RuntimeError, match=r"^mul: expected 'out' to be CUDA, but got CPU$"):
        host * device
    with pytest.raises(RuntimeError, match=r"^mul: expected 'other' to be CUDA, but got CPU$"):
        device * host


def test_torch_equal_on_the_device_and_across_devices(cuda):
    # torch.equal(cuda, cpu) raised the stand-in's TypeError 'Unsupported type numpy.ndarray' from
    # array_equal; torch's cuda_equal checks the devices first, before the shapes
    torch = pytest.importorskip("torch")
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    changed = data.copy()
    changed[1, 2] = -1.0
    for device in ("cpu", "cuda"):
        x = chainrule.tensor(data, device=device)
        assert chainrule.equal(x, chainrule.tensor(data, device=device)) is torch.equal(torch.tensor(data), torch.tensor(data))
        assert chainrule.equal(x, chainrule.tensor(changed, device=device)) is torch.equal(torch.tensor(data), torch.tensor(changed))
        assert chainrule.equal(x, x.view(3, 2)) is torch.equal(torch.tensor(data), torch.tensor(data).view(3, 2))
    host, device = chainrule.tensor(data), chainrule.tensor(data, device="cuda")
    with pytest.raises(RuntimeError, match=r"^Cannot compare two tensors on different devices\. Got: cuda:0 and cpu$"):
        chainrule.equal(device, host)
    with pytest.raises(RuntimeError, match=r"^Cannot compare two tensors on different devices\. Got: cpu and cuda:0$"):
        host.equal(device.view(3, 2))


INTEGER_OPS = {
    "gcd": lambda m, x, y: m.gcd(x, y), "lcm": lambda m, x, y: m.lcm(x, y),
    "floor_divide": lambda m, x, y: x // y, "div_trunc": lambda m, x, y: m.div(x, y, rounding_mode="trunc"),
    "remainder": lambda m, x, y: x % y, "fmod": lambda m, x, y: m.fmod(x, y),
    "left_shift": lambda m, x, y: x << y, "right_shift": lambda m, x, y: x >> y,
}


@pytest.mark.parametrize("op", sorted(INTEGER_OPS))
def test_integer_binary_ops_on_the_device_equal_the_cpu_and_refuse_a_cpu_operand(cuda, op):
    # the integer kernels skip Function.apply's device check: a CPU operand with a CUDA one raised
    # the stand-in's TypeError (x // y and x % y: "unsupported operand type(s)"), not torch's error
    torch = pytest.importorskip("torch")
    call = INTEGER_OPS[op]
    left, right = np.array([12, -7, 9, 30, 5], dtype=np.int64), np.array([8, 3, -4, 4, 1], dtype=np.int64)
    results = {device: call(chainrule, chainrule.tensor(left, device=device), chainrule.tensor(right, device=device))
               for device in ("cpu", "cuda")}
    assert results["cuda"].device.type == "cuda"
    np.testing.assert_array_equal(results["cuda"].cpu().numpy(), results["cpu"].numpy())
    np.testing.assert_array_equal(results["cpu"].numpy(), call(torch, torch.tensor(left), torch.tensor(right)).numpy())
    if op in ("gcd", "lcm"):
        # their generated CUDA wrapper checks devices, naming the argument, and no 0-dim CPU tensor
        # joins (torch 2.11 on CUDA; tests/compat/test_s32_mend.py)
        for other in (chainrule.tensor(3), chainrule.tensor(right)):
            with pytest.raises(RuntimeError, match=r"^Expected all tensors to be on the same device, but got other is "
                                                   rf"on cpu, different from other tensors on cuda:0 \(when checking "
                                                   rf"argument in method wrapper_CUDA_{op}\)$"):
                call(chainrule, chainrule.tensor(left, device="cuda"), other)
        return
    scalar = call(chainrule, chainrule.tensor(left, device="cuda"), chainrule.tensor(3))  # a 0-dim CPU tensor joins
    np.testing.assert_array_equal(scalar.cpu().numpy(), call(torch, torch.tensor(left), torch.tensor(3)).numpy())
    with pytest.raises(RuntimeError, match=r"^Expected all tensors to be on the same device, but found at least two "
                                           r"devices, cuda:0 and cpu!"):
        call(chainrule, chainrule.tensor(left, device="cuda"), chainrule.tensor(right))
