"""Session 29, the lead's fixes, each against torch 2.13 on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _logit_grid(dtype):
    return np.concatenate([np.linspace(-200, 200, 4001), [-88.8, -88.7, -17.3, 0.0, 16.6, 88.8, 103.9]]).astype(dtype)


class _Wrapper(chainrule.Tensor):
    """A minimal wrapper subclass: while an instance is alive, ops look for one among their inputs."""

    @staticmethod
    def __new__(cls, elem):
        wrapper = chainrule.Tensor._make_wrapper_subclass(cls, elem.size(), dtype=elem.dtype)
        wrapper.elem = elem
        return wrapper

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return NotImplemented


def _logsigmoid_grad(f, grid, create_graph=False):
    x = chainrule.tensor(grid, requires_grad=True)
    (grad,) = chainrule.autograd.grad(f(x).sum(), x, create_graph=create_graph)
    return grad.detach().numpy()


# F.logsigmoid, and the log σ that the margin losses build on (ops/loss.py's _LogSigmoid)
_LOG_SIGMOIDS = {
    "logsigmoid": chainrule.nn.functional.logsigmoid,
    "soft_margin": lambda x: -chainrule.nn.functional.soft_margin_loss(x, -chainrule.ones_like(x), reduction="none"),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", sorted(_LOG_SIGMOIDS))
def test_logsigmoid_gradient_is_the_same_whichever_way_the_walk_runs(op, dtype):
    """The walk took torch's kernel when plain and grad * sigmoid(-x) when it recorded (create_graph) or
    while any wrapper subclass instance was alive in the process: 0 at x = 88.8 (float32) where torch's
    kernel gives 2.7e-39, so a test's result depended on what an earlier test left alive."""
    f, grid = _LOG_SIGMOIDS[op], _logit_grid(dtype)
    plain = _logsigmoid_grad(f, grid)
    np.testing.assert_array_equal(_logsigmoid_grad(f, grid, create_graph=True), plain)
    alive = _Wrapper(chainrule.zeros(2))
    try:
        np.testing.assert_array_equal(_logsigmoid_grad(f, grid), plain)
    finally:
        del alive
    if op == "logsigmoid":
        x = torch.tensor(grid, requires_grad=True)
        torch.nn.functional.logsigmoid(x).sum().backward()
        at = np.isin(grid, np.array([88.8, -17.3], dtype=dtype))
        np.testing.assert_array_equal(plain[at], x.grad.numpy()[at])


def test_logsigmoid_second_order_records_torchs_node():
    """torch records its first-order gradient as LogSigmoidBackwardBackward0(grad, self); its own
    gradient is (ḡ g)(σ(x) - 1)σ(x) for self and log_sigmoid_backward(ḡ, x) for grad."""
    grid = np.array([-30.0, -2.5, -1.0, 0.0, 0.5, 2.0, 30.0])
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(grid, requires_grad=True)
        g_out = lib.tensor(np.linspace(0.5, 2.0, grid.size), requires_grad=True)
        (grad,) = lib.autograd.grad(lib.nn.functional.logsigmoid(x), x, g_out, create_graph=True)
        node = grad.grad_fn
        names = [type(node).__name__] + [type(n).__name__ if n is not None else None for n, _ in node.next_functions]
        second = lib.autograd.grad((grad * grad).sum(), (x, g_out))
        results.append((names, grad.detach().numpy(), [s.numpy() for s in second]))
    (names_t, grad_t, second_t), (names_c, grad_c, second_c) = results
    assert names_c == names_t == ["LogSigmoidBackwardBackward0", "AccumulateGrad", "AccumulateGrad"]
    np.testing.assert_allclose(grad_c, grad_t, rtol=1e-15)
    for ours, theirs in zip(second_c, second_t):
        np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=1e-300)


def test_logsigmoid_gradgradcheck():
    x = chainrule.tensor([-3.0, -0.5, 0.0, 0.7, 4.0], dtype=chainrule.float64, requires_grad=True)
    assert chainrule.autograd.gradgradcheck(chainrule.nn.functional.logsigmoid, (x,))
    assert chainrule.autograd.gradgradcheck(lambda t: chainrule.nn.functional.soft_margin_loss(t, -chainrule.ones_like(t)), (x,))


# sparse ops that stay sparse (progU's lane) on a sparse tensor built from values that require grad
# (progT's lane): the result is sparse and the gradient reaches the values, as torch's
_SPARSE_OPS = {
    "add": lambda lib, a, b: a + b,
    "sub": lambda lib, a, b: a - b,
    "mul_number": lambda lib, a, b: a * 3.0,
    "mul_dense": lambda lib, a, b: a * lib.arange(12.0, dtype=lib.float64).reshape(3, 4),
    "div": lambda lib, a, b: a / 4.0,
    "neg": lambda lib, a, b: -a,
    "t": lambda lib, a, b: a.t(),
    "clone": lambda lib, a, b: a.clone(),
    "sparse_sum_dim": lambda lib, a, b: lib.sparse.sum(a, 1),
}


@pytest.mark.parametrize("op", sorted(_SPARSE_OPS))
def test_sparse_results_keep_the_values_graph(op):
    results = []
    for lib in (torch, chainrule):
        values = lib.tensor([1.0, -2.0, 3.0, 0.5], dtype=lib.float64, requires_grad=True)
        a = lib.sparse_coo_tensor(lib.tensor([[0, 1, 2, 2], [1, 0, 3, 1]]), values, (3, 4))
        b = lib.sparse_coo_tensor(lib.tensor([[0, 2], [1, 2]]), lib.tensor([5.0, 7.0], dtype=lib.float64), (3, 4))
        out = _SPARSE_OPS[op](lib, a, b)
        dense = out.to_dense()
        weights = lib.arange(1.0, dense.numel() + 1, dtype=lib.float64).reshape(dense.shape)
        (grad,) = lib.autograd.grad((dense * weights).sum(), values)
        results.append((out.layout is lib.sparse_coo, dense.detach().numpy(), grad.numpy()))
    (torch_sparse, torch_dense, torch_grad), (ours_sparse, ours_dense, ours_grad) = results
    assert ours_sparse and torch_sparse
    np.testing.assert_array_equal(ours_dense, torch_dense)
    np.testing.assert_array_equal(ours_grad, torch_grad)


def test_dynamic_quantized_linear_is_a_static_quantized_linear_as_torchs():
    """torch's dynamic Linear subclasses the static one (its packed weight, state_dict layout and
    accessors); chainrule's had its own copies of them."""
    answers = []
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        model = lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(lib.nn.Linear(4, 3)), {lib.nn.Linear},
                                                     dtype=lib.qint8)
        layer = model[0]
        again = lib.ao.quantization.quantize_dynamic(lib.nn.Sequential(lib.nn.Linear(4, 3)), {lib.nn.Linear},
                                                     dtype=lib.qint8)
        again.load_state_dict(model.state_dict())
        answers.append((isinstance(layer, lib.ao.nn.quantized.Linear), list(model.state_dict()),
                        lib.equal(again[0].weight().int_repr(), layer.weight().int_repr())))
    assert answers[1] == answers[0] == (True, ["0.scale", "0.zero_point", "0._packed_params.dtype",
                                                 "0._packed_params._packed_params"], True)


def test_a_device_run_of_a_program_is_compared_with_the_cpu_calibration_line_for_line():
    """scripts/gpu_check.py's programs section: a device run prints "tensor([True], device='cuda:0')"
    and "[torch.cuda.FloatTensor [3]]" where the CPU calibration has "tensor([True])" and
    "[torch.FloatTensor [3]]"; the device lines were dropped while the CPU's stayed, so
    autograd_mechanics on the stand-in read "printed 33 lines, torch printed 41"."""
    from tests.programs.run import Result, calibration_problems, line_numbers, line_shape

    cpu_lines = ["tensor([True, True])", "Using CPU", "modified: [torch.FloatTensor [3]], output 0", "FINAL loss=0.5"]
    device_lines = ["tensor([True, True], device='cuda:0')", "Using device: cuda",
                    "modified: [torch.cuda.FloatTensor [3]], output 0", "FINAL loss=0.5"]
    expected = {"line_shapes": [line_shape(line) for line in cpu_lines],
                "fixed_integers": [[None] * len(line_numbers(line)) for line in cpu_lines],
                "final": {"loss": {"low": 0.4, "high": 0.6}}}
    run = Result("p", "chainrule", 0, 0, "\n".join(device_lines) + "\n", "", 1.0, {"loss": 0.5})
    assert calibration_problems(run, expected, on_device=True) == []
    other = Result("p", "chainrule", 0, 0, "\n".join(device_lines[:1] + ["tensor([1, 2], device='cuda:0')"]
                                                      + device_lines[2:]) + "\n", "", 1.0, {"loss": 0.5})
    assert calibration_problems(other, expected, on_device=True)  # a different line still counts
