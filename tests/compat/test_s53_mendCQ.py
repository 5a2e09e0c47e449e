"""s53 mendCQ: what a TorchDispatchMode sees, continued from mendCJ. A linear of a column-major (transposed) input
or of a sliced weight runs its backward as torch's t/mm formulas (mm_mat1_backward, mm_mat2_backward) in torch's
operand order, which the fused rule now takes too, so the mode's replay gives the rule's bits. Each logged
sequence is recorded live from torch."""

import contextlib
import itertools

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from tests._profile import in_ci  # noqa: E402
from tests.compat._dispatch_checks import PassingMode  # noqa: E402
from tests.compat.test_s45_mendAI import _line_logger  # noqa: E402

LAYOUTS = {  # the input (rows or a transposed copy) and the weight (contiguous, sliced, a transposed copy)
    "x_t": ("t", "c"), "x_t_w_sliced": ("t", "s"), "w_sliced": ("c", "s"), "w_t": ("c", "T"), "x_t_w_t": ("t", "T"),
    "plain": ("c", "c")}


def _linear_run(lib, mode, layout, shape, requires, bias: bool, create_graph: bool = False):
    """(the lines a logging mode wrote, the gradients) of a linear of ``layout`` and (rows, in, out) ``shape``."""
    rows, inner, out = shape
    rng = np.random.default_rng(rows * 7 + inner + out)
    x_data, w_data, b_data = rng.standard_normal((rows, inner)), rng.standard_normal((out, inner + 2)), \
        rng.standard_normal(out)
    x = lib.tensor(x_data.T.copy() if layout[0] == "t" else x_data, requires_grad=requires[0])
    w = lib.tensor(w_data, requires_grad=requires[1])
    b = lib.tensor(b_data, requires_grad=bias)
    weight = {"s": lambda: w[:, :inner], "c": lambda: w[:, 2:].contiguous(),
              "T": lambda: w[:, :inner].t().contiguous().t()}[layout[1]]()
    leaves = [t for t in (x, w, b) if t.requires_grad]
    seed = lib.tensor(rng.standard_normal((rows, out)))
    lines = []
    with _line_logger(lib, lines) if mode == "log" else mode:
        y = lib.nn.functional.linear(x.t() if layout[0] == "t" else x, weight, b if bias else None)
        grads = lib.autograd.grad(y, leaves, seed, create_graph=create_graph)
        if create_graph:
            sum(g.pow(2).sum() for g in grads).backward()
    return lines, [g.detach().numpy() for g in grads] + [t.grad.numpy() for t in leaves if t.grad is not None]


LINEAR_CASES = in_ci(list(itertools.product(sorted(LAYOUTS), [(1, 1, 1), (1, 3, 4), (5, 1, 3), (6, 5, 7)],
                                             [(True, True), (True, False), (False, True)], [True, False])),
                     48, seed=53, kinds=lambda case: [("layout", case[0]), ("shape", case[1]),
                                                      ("requires", case[2], case[3]), (case[0], case[2])])


@pytest.mark.parametrize("layout, shape, requires, bias", LINEAR_CASES)
def test_a_linears_backward_reaches_a_mode_as_torchs_t_and_mm_in_torchs_order(layout, shape, requires, bias):
    case = (LAYOUTS[layout], shape, requires, bias)
    ours, our_grads = _linear_run(chainrule, "log", *case)
    theirs, their_grads = _linear_run(real_torch, "log", *case)
    assert ours == theirs
    _, plain = _linear_run(chainrule, contextlib.nullcontext(), *case)
    _, passed = _linear_run(chainrule, PassingMode(), *case)
    for got, without, through, expected in zip(our_grads, plain, passed, their_grads):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_array_equal(through, without)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_linears_gradients_in_torchs_operand_order_keep_their_values_and_second_order(layout, dtype):
    def run(lib, create_graph):
        with (chainrule if lib is chainrule else real_torch).autograd.set_grad_enabled(True):
            lib.set_default_dtype(getattr(lib, dtype))
            try:
                return _linear_run(lib, contextlib.nullcontext(), LAYOUTS[layout], (17, 33, 9), (True, True), True,
                                   create_graph)[1]
            finally:
                lib.set_default_dtype(lib.float32)

    for create_graph in (False, True):
        for got, expected in zip(run(chainrule, create_graph), run(real_torch, create_graph)):
            assert got.dtype == expected.dtype
            np.testing.assert_allclose(got, expected, rtol=1e-4 if dtype == "float32" else 1e-10, atol=1e-4)
