"""vmap replays on the batch what session 49 left running slice by slice (session 50, mendBU):
layer norm without affine map, cumsum / logcumsumexp, reflect / replicate / circular padding and
linalg.solve, forward and backward; the mapped function called once as torch's vmap calls it, each
op run once on the batch (no per-slice fallback), values torch's and gradients checked by finite
differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from tests._profile import DIRECTIONAL_GRADCHECK

torch = pytest.importorskip("torch")

from ._vmap_checks import Counting, mapped  # noqa: E402

_rng = np.random.default_rng(50)
_X = _rng.standard_normal((4, 5, 6))
_Y = _rng.standard_normal((4, 5, 6))

CASES = {
    "layer_norm": lambda lib: lambda x, y: lib.nn.functional.layer_norm(x, (6,)) * y,
    "layer_norm_2d": lambda lib: lambda x, y: lib.nn.functional.layer_norm(x, (5, 6), eps=1e-3) * y,
    "layer_norm_module": lambda lib: lambda x, y: lib.nn.LayerNorm(6, elementwise_affine=False, dtype=lib.float64)(x)
    * y,
    "cumsum": lambda lib: lambda x, y: lib.cumsum(x, -1) * y,
    "cumsum_dim0": lambda lib: lambda x, y: x.cumsum(0) * y,
    "logcumsumexp": lambda lib: lambda x, y: lib.logcumsumexp(x, 1) * y,
    "flip": lambda lib: lambda x, y: x.flip((0, -1)) * y,
    "pad_reflect": lambda lib: lambda x, y: lib.nn.functional.pad(x, (2, 1), mode="reflect")[..., 1:7] * y,
    "pad_replicate": lambda lib: lambda x, y: lib.nn.functional.pad(x[None], (2, 1, 1, 0), mode="replicate")[0, 1:, 1:7]
    * y,
    "pad_circular": lambda lib: lambda x, y: lib.nn.functional.pad(x[None], (2, 1), mode="circular")[0, :, 1:7] * y,
    "solve": lambda lib: lambda x, y: lib.linalg.solve(x[:, :5] + 5 * lib.eye(5, dtype=x.dtype), y[:, :2]),
    "solve_vector": lambda lib: lambda x, y: lib.linalg.solve(x[:, :5] + 5 * lib.eye(5, dtype=x.dtype), y[:, 0]),
    # an index batched with the inputs (made from y), and one the function makes
    "scatter_add": lambda lib: lambda x, y: lib.zeros(5, 6, dtype=x.dtype).scatter_add(0, (y[:3] > 0).long() * 2 + 1,
                                                                                        x[:3]) * y[0],
    "index_add": lambda lib: lambda x, y: lib.zeros(6, 6, dtype=x.dtype).index_add(0, (y[:, 0] > 0).long() * 3 + 1, x,
                                                                                   alpha=2.0) * y[0],
    "index_add_fixed": lambda lib: lambda x, y: y.index_add(1, lib.tensor([5, 0, 5]), x[:, :3]),
    "index_select": lambda lib: lambda x, y: x.index_select(1, (y[0, :3] > 0).long() * 2 + 1) * y[:, :3],
    "index_select_fixed": lambda lib: lambda x, y: x.index_select(1, lib.tensor([4, 0, 4])) * y[:, :3],
    "embedding_weight": lambda lib: lambda x, y: lib.nn.functional.embedding(lib.tensor([[1, 2], [4, 1]]), x) * y[:2],
    "embedding_both": lambda lib: lambda x, y: lib.nn.functional.embedding((y[:, :2] > 0).long() * 3, x)[:, 0] * y,
    # interpolate in float64 (the float32 no-grad path is torch's kernel's exact copy, still per slice)
    "interpolate_linear": lambda lib: lambda x, y: lib.nn.functional.interpolate((x * y)[None], scale_factor=2,
                                                                                 mode="linear")[0],
    "interpolate_bilinear": lambda lib: lambda x, y: lib.nn.functional.interpolate(
        (x * y)[None, None], size=(7, 9), mode="bilinear", align_corners=True)[0, 0],
    "interpolate_bicubic": lambda lib: lambda x, y: lib.nn.functional.interpolate((x * y)[None, None], scale_factor=1.5,
                                                                                  mode="bicubic")[0, 0],
    "interpolate_nearest": lambda lib: lambda x, y: lib.nn.functional.interpolate((x * y)[None, None], size=(3, 11),
                                                                                  mode="nearest")[0, 0],
    "unfold": lambda lib: lambda x, y: (x * y).unfold(1, 3, 2) ** 3,
}
# the FFTs' rules replay their first derivatives (a second one still runs slice by slice)
FIRST_ORDER = {
    "stft": lambda lib: lambda x, y: lib.stft(x.reshape(-1) * y.reshape(-1), 8, return_complex=True,
                                              window=lib.hann_window(8, dtype=x.dtype)).abs() ** 2,
    "rfft": lambda lib: lambda x, y: lib.fft.rfft(x * y, dim=0).abs() ** 2,
}


@pytest.mark.parametrize("grad", [0, 1], ids=["forward", "grad"])
@pytest.mark.parametrize("name", sorted(FIRST_ORDER))
def test_fft_replays_on_the_batch_with_torchs_values(name, grad, per_slice_ops):
    ours, our_calls = mapped(chainrule, FIRST_ORDER[name], (_X, _Y), grad)
    theirs, their_calls = mapped(torch, FIRST_ORDER[name], (_X, _Y), grad)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("grad", [0, 1, 2], ids=["forward", "grad", "grad_of_grad"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_op_replays_on_the_batch_with_torchs_values(name, grad, per_slice_ops):
    ours, our_calls = mapped(chainrule, CASES[name], (_X, _Y), grad)
    theirs, their_calls = mapped(torch, CASES[name], (_X, _Y), grad)
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["cumsum", "logcumsumexp", "pad_reflect", "pad_replicate"])
def test_op_replays_bitwise_as_torchs_batched_kernel(name, per_slice_ops):
    """Where torch's batching rule runs the same op on the batch, the values are bitwise its."""
    xs, ys = (a.astype(np.float32) for a in (_X, _Y))
    ours, _ = mapped(chainrule, CASES[name], (xs, ys))
    theirs, _ = mapped(torch, CASES[name], (xs, ys))
    assert per_slice_ops == []
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_replayed_op_passes_gradcheck_through_vmap(name, per_slice_ops):
    f = CASES[name](chainrule)
    x = chainrule.tensor(_X[:, :, :], requires_grad=True)
    y = chainrule.tensor(_Y)
    assert chainrule.autograd.gradcheck(lambda x: chainrule.func.vmap(f)(x, y), (x,), fast_mode=DIRECTIONAL_GRADCHECK)
    assert chainrule.autograd.gradgradcheck(lambda x: chainrule.func.vmap(f)(x, y), (x,), fast_mode=DIRECTIONAL_GRADCHECK)
    assert per_slice_ops == []


def test_unbatched_matrix_solved_against_batched_right_hand_sides(per_slice_ops):
    a = _X[0, :5, :5] + 5 * np.eye(5)

    def build(lib):
        A = lib.tensor(a)
        return lambda y: lib.linalg.solve(A, y[:, :3])

    ours, our_calls = mapped(chainrule, build, (_Y,))
    theirs, their_calls = mapped(torch, build, (_Y,))
    assert our_calls == their_calls == 1 and per_slice_ops == []
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- user autograd.Function


def _cube(lib):
    """A functorch-style Function with generate_vmap_rule (two outputs, a number argument)."""

    class Cube(lib.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x, k):
            return x ** 3 * k, x.sum()

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.k = inputs[1]

        @staticmethod
        def backward(ctx, grad, grad_sum):
            (x,) = ctx.saved_tensors
            return 3 * x ** 2 * grad * ctx.k + grad_sum, None

    return Cube


@pytest.mark.parametrize("grad", [0, 1, 2], ids=["forward", "grad", "grad_of_grad"])
def test_generate_vmap_rule_function_runs_f_once(grad, per_slice_ops):
    def build(lib):
        cube = _cube(lib)

        def f(x, y):
            a, s = cube.apply(x, 2.0)
            return a.sin() * s * y

        return f

    ours, our_calls = mapped(chainrule, build, (_X, _Y), grad)
    theirs, their_calls = mapped(torch, build, (_X, _Y), grad)
    assert our_calls == their_calls == 1
    # (the Function's forward runs once per slice inside the replay, as each slice's own run would call it)
    assert set(per_slice_ops) <= {"Cube"} and "replay failed" not in per_slice_ops
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_generate_vmap_rule_function_differentiated_outside_the_vmap(per_slice_ops):
    """The replay's result carries each slice's node of the Function: its backward is the user's."""
    grads, calls = [], []
    for lib in (chainrule, torch):
        cube = _cube(lib)
        x = lib.tensor(_X, requires_grad=True)
        counted = Counting(lambda x, cube=cube: cube.apply(x, 0.5)[0].cos() * cube.apply(x, 1.5)[1])
        out = lib.func.vmap(counted)(x)
        out.sum().backward()
        grads.append((out.detach().numpy(), x.grad.numpy()))
        calls.append(counted.calls)
    assert calls == [1, 1] and "replay failed" not in per_slice_ops
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- random ops under randomness


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("randomness", ["different", "same"])
@pytest.mark.parametrize("grad", [0, 1], ids=["forward", "grad"])
def test_alpha_dropout_draws_torchs_numbers_and_runs_f_once(randomness, dtype, grad, per_slice_ops):
    def build(lib):
        return lambda x, y: lib.nn.functional.alpha_dropout(x, 0.3, True) * y

    found = []
    for lib in (chainrule, torch):
        lib.manual_seed(7)
        counted = Counting(build(lib))
        f = counted if not grad else lib.func.grad(lambda x, y, counted=counted: counted(x, y).sum())
        xs, ys = (lib.tensor(a.astype(dtype)) for a in (_X, _Y))
        found.append((lib.func.vmap(f, randomness=randomness)(xs, ys).numpy(), counted.calls))
    (ours, our_calls), (theirs, their_calls) = found
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_array_equal(ours, theirs)  # (the mask one draw for the batch, or one shared, as torch's)


def test_alpha_dropout_under_randomness_error_refuses_in_torchs_words():
    messages = []
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError) as info:
            lib.func.vmap(lambda x, lib=lib: lib.nn.functional.alpha_dropout(x, 0.3, True))(lib.tensor(_X))
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("op", ["dropout", "alpha_dropout"])
@pytest.mark.parametrize("randomness", ["different", "same"])
@pytest.mark.parametrize("in_dims", [1, 2])
def test_dropout_over_a_batch_dim_not_first_runs_f_once(op, randomness, in_dims, per_slice_ops):
    """A slice cut along dim 1 or 2 is no C-contiguous array: its mask is still the slice's part of
    one draw for the batch (torch draws the batch's, batch dim first)."""
    found = []
    for lib in (chainrule, torch):
        lib.manual_seed(11)
        counted = Counting(lambda x, lib=lib: getattr(lib.nn.functional, op)(x, 0.4, True) * 2)
        out = lib.func.vmap(counted, in_dims=in_dims, randomness=randomness)(lib.tensor(_X.astype(np.float32)))
        found.append((out.numpy(), counted.calls))
    (ours, our_calls), (theirs, their_calls) = found
    assert our_calls == their_calls == 1
    assert per_slice_ops == []
    np.testing.assert_array_equal(ours, theirs)
