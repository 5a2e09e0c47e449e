"""s50 mendBV: what a TorchDispatchMode sees, continued from mendBN. ``x[:, None]`` and ``x[..., None]`` as torch's
one aten.unsqueeze at the new axis's place; ``diagonal(offset=, dim1=, dim2=)`` as torch's positional schema (dims as
given); a comparison, a factory or an in-place op on a conjugated view after torch's Conjugate fallback clone (and the
in-place op's copy_ back); ``torch.where`` of mixed dtypes with its operands as they were. Each logged sequence is
recorded live from torch."""

import contextlib

import numpy as np
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402
from tests.compat._dispatch_checks import PassingMode as _Pass  # noqa: E402
from tests.compat._dispatch_checks import assert_a_handler_edit_reaches, assert_a_passing_mode_keeps  # noqa: E402
from tests.compat.test_s45_mendAI import _logged  # noqa: E402


def _z(lib, a):
    return lib.complex(a["x"], a["y"])


PROGRAMS = {
    # a new axis among whole dims: one unsqueeze at its place
    "none_index": lambda lib, a: a["x"][:, None],
    "none_first": lambda lib, a: a["x"][None],
    "none_int": lambda lib, a: a["x"][0, None],
    "none_slice": lambda lib, a: a["x"][1:, None, :2],
    "none_after_ellipsis": lambda lib, a: a["x3"][..., None],
    "none_before_ellipsis": lambda lib, a: a["x3"][None, ...],
    "none_inside_ellipsis": lambda lib, a: a["x3"][..., None, :],
    "none_last_of_whole": lambda lib, a: a["x3"][:, :, None],
    "none_twice": lambda lib, a: a["x3"][:, None, :, None],
    "none_recorded": lambda lib, a: a["x"].requires_grad_()[:, None],
    # diagonal: torch's positional schema, trailing defaults left out, dims as given
    "diagonal_kwargs": lambda lib, a: a["x3"].diagonal(offset=1, dim1=1, dim2=2),
    "diagonal_fn_kwargs": lambda lib, a: lib.diagonal(a["x3"], 0, dim1=0, dim2=2),
    "diagonal_negative_dims": lambda lib, a: a["x3"].diagonal(0, -2, -1),
    "diagonal_dim2_only": lambda lib, a: a["x3"].diagonal(dim2=-1),
    "diagonal_offset": lambda lib, a: a["x"].diagonal(-1),
    "diagonal_plain": lambda lib, a: a["x"].diagonal(),
    "diagonal_recorded": lambda lib, a: a["x3"].requires_grad_().diagonal(1, 2, 0),
    # the Conjugate fallback's clones before a comparison or factory, and around an in-place op
    "conj_eq": lambda lib, a: _z(lib, a).conj() == _z(lib, a),
    "conj_eq_itself": lambda lib, a: (lambda z: z == z)(_z(lib, a).conj()),
    "conj_ne_number": lambda lib, a: _z(lib, a).conj() != 1,
    "conj_eq_function": lambda lib, a: lib.eq(_z(lib, a).conj(), 1),
    "conj_ones_like": lambda lib, a: lib.ones_like(_z(lib, a).conj()),
    "conj_zeros_like": lambda lib, a: lib.zeros_like(_z(lib, a).conj()),
    "conj_full_like": lambda lib, a: lib.full_like(_z(lib, a).conj(), 2),
    "conj_empty_like": lambda lib, a: lib.empty_like(_z(lib, a).conj()).shape,
    "conj_inplace_add": lambda lib, a: _z(lib, a).conj().add_(1),
    "conj_inplace_mul": lambda lib, a: _z(lib, a).conj().mul_(2),
    "conj_inplace_mul_tensor": lambda lib, a: _z(lib, a).conj().mul_(_z(lib, a)),
    "inplace_by_conj": lambda lib, a: _z(lib, a).mul_(_z(lib, a).conj()),
    "conj_inplace_copy": lambda lib, a: _z(lib, a).conj().copy_(_z(lib, a)),
    # where of mixed dtypes: the operands as they were (TensorIterator casts inside the op)
    "where_mixed": lambda lib, a: lib.where(a["x"] > 0, a["x"], a["y"].double()),
    "where_int_float": lambda lib, a: lib.where(a["x"] > 0, a["idx"].unsqueeze(1), a["x"]),
    "where_mixed_recorded": lambda lib, a: lib.where(a["x"] > 0, a["x"].requires_grad_(), a["y"].double()),
    "where_scalar_tensor": lambda lib, a: lib.where(a["x"] > 0, 2, a["x"]),
    "where_same": lambda lib, a: lib.where(a["x"] > 0, a["x"], a["y"]),
    # matmul of a batch that records nothing: torch's decomposition (fold into mm/mv, else expand/view/bmm)
    "matmul_3d_2d": lambda lib, a: lib.matmul(a["x3"], a["lw"]),
    "matmul_3d_3d": lambda lib, a: a["b1"] @ a["b2"],
    "matmul_2d_3d": lambda lib, a: a["x"] @ a["b2"],
    "matmul_3d_1d": lambda lib, a: a["x3"] @ a["lb"],
    "matmul_transposed_3d_1d": lambda lib, a: a["x3"].transpose(0, 1) @ a["lb"],
    "matmul_1d_3d": lambda lib, a: a["bias"] @ a["b2"],
    "matmul_1d_transposed_3d": lambda lib, a: a["bias"] @ a["b2"].transpose(0, 1).contiguous().transpose(0, 1),
    "matmul_4d_3d": lambda lib, a: a["b1"].unsqueeze(0) @ a["b2"],
    "matmul_3d_4d": lambda lib, a: a["b1"] @ a["b2"].unsqueeze(1).expand(5, 2, 3, 4).transpose(0, 1),
    "matmul_method": lambda lib, a: a["b1"].matmul(a["b2"]),
    "matmul_1d_3d_recorded": lambda lib, a: a["bias"].requires_grad_() @ a["b2"],
    "matmul_2d_3d_recorded": lambda lib, a: a["x"].requires_grad_() @ a["b2"],
    # the backward: the seed's ones_like with torch's kwargs, sum's rule expanding a 0-d gradient
    # as it is (unsqueezing at each reduced dim first), AccumulateGrad's detach of a stolen gradient or
    # new_empty_strided and copy_ of one it clones, and its add_ into a gradient there
    "backward_sum": lambda lib, a: a["x"].requires_grad_().sum().backward(),
    "backward_sin_sum": lambda lib, a: a["x"].requires_grad_().sin().sum().backward(),
    "backward_sum_dims": lambda lib, a: a["x3"].requires_grad_().sum((0, 2)).sum().backward(),
    "backward_sum_keepdim": lambda lib, a: a["x3"].requires_grad_().sum(-1, keepdim=True).sum().backward(),
    "backward_two_leaves": lambda lib, a: (a["x"].requires_grad_() * a["y"].requires_grad_()).sum().backward(),
    "backward_twice": lambda lib, a: [(a["x"].requires_grad_() * 2).sum().backward() for _ in range(2)],
    "backward_twice_stolen": lambda lib, a: [(a["x"].requires_grad_() * a["y"]).sum().backward() for _ in range(2)],
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_a_mode_sees_torchs_aten_sequence(name):
    assert _logged(chainrule, PROGRAMS[name]) == _logged(real_torch, PROGRAMS[name])


@pytest.mark.parametrize("name,shape", [
    ("none", (3, 4)), ("diagonal", (2, 3, 4)), ("where_mixed", (3, 4)), ("where_int", (3, 4)),
])
def test_under_a_passing_mode_the_value_and_gradient_stay(name, shape):
    def program(lib, x):
        if name == "none":
            return (x[:, None] * lib.arange(4.0).reshape(1, 4, 1)).sin().sum() + x[..., None].pow(2).sum()
        if name == "diagonal":
            return (x.diagonal(offset=1, dim1=-1, dim2=0) * 3).sum() + lib.diagonal(x, 0, 1, 2).exp().sum()
        if name == "where_mixed":
            return lib.where(x > 0, x, x.double() * 2).sum().float()
        return lib.where(x > 0, lib.arange(4).reshape(1, 4), x * 3).pow(2).sum()

    assert_a_passing_mode_keeps(program, shape, seed=11)


@pytest.mark.parametrize("op,edit,program", [
    ("aten.unsqueeze.default", lambda args: (args[0], 0), lambda lib, x: x[:, None]),
    ("aten.diagonal.default", lambda args: (args[0], 0, 0, 1), lambda lib, x: x.diagonal(dim1=1, dim2=-1)),
    ("aten.where.self", lambda args: (args[0], args[2], args[1]),
     lambda lib, x: lib.where(x > 0, x, x.double() * 2)),
    ("aten.where.self", lambda args: (args[0], args[1] * 3, args[2]),
     lambda lib, x: lib.where(x > 0, x, x.double() * 2)),
])
def test_a_handler_that_edits_the_args_gets_what_it_asked_for(op, edit, program):
    assert_a_handler_edit_reaches(op, edit, program, (2, 3, 4))


@pytest.mark.parametrize("method,args", [("add_", (1,)), ("mul_", (2,)), ("mul_", ("z",)), ("sub_", ("z",))])
def test_an_in_place_op_on_a_conj_view_under_a_passing_mode_writes_as_torch(method, args):
    def run(lib, mode):
        rng = np.random.default_rng(3)
        z = lib.complex(lib.tensor(rng.standard_normal((2, 3)), dtype=lib.float32),
                        lib.tensor(rng.standard_normal((2, 3)), dtype=lib.float32))
        view = z.conj()
        with mode:
            out = getattr(view, method)(*(z if arg == "z" else arg for arg in args))
        return out.resolve_conj().numpy().copy(), z.numpy().copy(), bool(out.is_conj())

    ours, plain, theirs = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext()), run(
        real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours[:2], plain[:2], theirs[:2]):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert ours[2] == plain[2] == theirs[2]


def test_a_comparison_of_a_conj_view_under_a_passing_mode_gives_torchs_answer():
    def run(lib, mode):
        rng = np.random.default_rng(4)
        z = lib.complex(lib.tensor(rng.standard_normal((3, 3)), dtype=lib.float32),
                        lib.tensor(rng.standard_normal((3, 3)), dtype=lib.float32))
        with mode:
            return [(z.conj() == z.t()).numpy(), (z.conj() != z.conj()).numpy(), lib.ones_like(z.conj()).numpy()]

    for got, without, expected in zip(run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext()),
                                      run(real_torch, contextlib.nullcontext())):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_array_equal(got, expected)


def test_a_diagonal_and_new_axis_gradcheck_under_a_mode():
    x = chainrule.tensor(np.random.default_rng(8).standard_normal((3, 4, 4)), requires_grad=True)

    def run(x):
        with _Pass():
            return x.diagonal(offset=-1, dim1=-2, dim2=-1)[:, None] * x[..., None][:, :3, 0]

    assert chainrule.autograd.gradcheck(run, (x,))


_PRODUCT_SHAPES = [((2, 3, 4), (4, 3)), ((8, 30, 40), (40, 50)), ((2, 3, 4), (4,)), ((8, 30, 40), (40,)),
                   ((4,), (2, 4, 3)), ((40,), (8, 40, 30)), ((3, 4), (2, 4, 3)), ((30, 40), (8, 40, 50)),
                   ((5, 2, 3), (5, 3, 4)), ((6, 20, 30), (6, 30, 20)), ((2, 1, 3, 4), (5, 4, 2)),
                   ((3, 1, 20, 30), (4, 30, 20)), ((5, 3, 4), (1, 4, 2))]


@pytest.mark.parametrize("shapes", _PRODUCT_SHAPES)
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_batched_matmul_under_a_passing_mode_keeps_its_bits(shapes, layout, dtype):
    """The decomposition a mode sees computes what matmul computes without one (and torch's within rounding)."""
    def run(lib, mode):
        rng = np.random.default_rng(sum(shapes[0]) * 7 + sum(shapes[1]))
        a = lib.tensor(rng.standard_normal(shapes[0]), dtype=getattr(lib, dtype))
        b = lib.tensor(rng.standard_normal(shapes[1]), dtype=getattr(lib, dtype))
        if layout == "transposed":  # rows that do not view, and a batch whose matrices are apart
            a = a.mT.contiguous().mT if a.dim() >= 2 else a
            b = b.transpose(0, 1).contiguous().transpose(0, 1) if b.dim() >= 3 else b
        with mode:
            return (a @ b).numpy()

    ours, plain, theirs = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext()), run(
        real_torch, contextlib.nullcontext())
    np.testing.assert_array_equal(ours, plain)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)


@pytest.mark.parametrize("name,shape", [("matmul_batch", (2, 3, 4)), ("matmul_vector", (4,)),
                                        ("matmul_transposed", (2, 3, 4))])
def test_a_batched_matmul_gradient_under_a_passing_mode_stays(name, shape):
    def program(lib, x):
        w = lib.arange(12.0).reshape(4, 3) / 7
        if name == "matmul_batch":
            return (x @ w).sin().sum() + (x @ lib.arange(4.0)).sum()
        if name == "matmul_vector":
            return (x @ lib.arange(24.0).reshape(2, 4, 3)).pow(2).sum()
        return (x.transpose(0, 1) @ w).exp().sum()

    assert_a_passing_mode_keeps(program, shape, seed=2)


@pytest.mark.parametrize("op,edit,program", [
    ("aten.mm.default", lambda args: (args[0] * 2, args[1]), lambda lib, x: x @ lib.ones(4, 2)),
    ("aten.bmm.default", lambda args: (args[0], args[1] + 1), lambda lib, x: x @ lib.ones(2, 4, 3)),
    ("aten.mv.default", lambda args: (args[0], args[1] * 3), lambda lib, x: x @ lib.arange(4.0)),
])
def test_a_handler_that_edits_a_matmul_part_gets_what_it_asked_for(op, edit, program):
    assert_a_handler_edit_reaches(op, edit, program, (2, 3, 4))


@pytest.mark.parametrize("steal", [True, False])
def test_gradients_accumulated_twice_under_a_passing_mode_are_torchs(steal):
    def run(lib, mode):
        x = lib.tensor(np.random.default_rng(6).standard_normal((3, 4)), dtype=lib.float32, requires_grad=True)
        with mode:
            for scale in (2.0, 3.0):
                ((x * scale).sin() if steal else x * scale).sum().backward()
                with lib.no_grad():  # (an optimizer's read of the gradient between steps)
                    seen = x.grad.clone()
        return x.grad.numpy(), seen.numpy(), x.grad._version if lib is chainrule else None

    ours, plain, theirs = run(chainrule, _Pass()), run(chainrule, contextlib.nullcontext()), run(
        real_torch, contextlib.nullcontext())
    for got, without, expected in zip(ours[:2], plain[:2], theirs[:2]):
        np.testing.assert_array_equal(got, without)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert ours[2] == plain[2]
