"""Second-order Jacobians — func.hessian, jacfwd(jacrev), jacrev(jacrev), jacfwd(jacfwd),
autograd.functional.hessian, hvp and vhp — against torch on the same float64 inputs (to 1e-10),
against finite differences (gradcheck of the Jacobian, gradgradcheck), and, for graphs of
built-in ops, checked to take the batched path: the inner Jacobian one recorded batched walk,
the outer one batched walk (jacfwd's by columns), neither running any node row by row.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.func as cfunc
from chainrule.autograd import batched_walk, functional

torch = pytest.importorskip("torch")


def _pair(*shape, seed=0, dtype=np.float64):
    value = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return chainrule.tensor(value), torch.tensor(value)


def _close(ours, theirs, rtol=1e-10, atol=1e-10):
    if isinstance(theirs, (tuple, list)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _close(a, b, rtol, atol)
        return
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "chainrule.")
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


def _cube(lib):
    """A user autograd.Function (x³, its rules in Tensor ops): the batched walk has no rule for it,
    so it runs row by row, recorded."""

    class Cube(lib.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return x ** 3

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.save_for_forward(inputs[0])

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x ** 2

        @staticmethod
        def jvp(ctx, tangent):
            (x,) = ctx.saved_tensors
            return tangent * 3 * x ** 2

    return Cube


def _predict(lib):
    F = lib.nn.functional
    w, b = (lib.tensor(np.random.default_rng(seed).standard_normal(shape)) for seed, shape in ((11, (5, 7)), (12, (5,))))
    return lambda x: F.linear(x, w, b).tanh()


def _softmax(lib):
    return lambda x: x.reshape(2, 3).softmax(-1).reshape(-1) * x


def _matmul_chain(lib):
    a, b = (lib.tensor(np.random.default_rng(seed).standard_normal(shape)) for seed, shape in ((13, (4, 3)), (14, (2, 5))))
    return lambda x: (a @ x.reshape(3, 2) @ b).tanh()


def _broadcasting(lib):
    column = lib.tensor(np.linspace(-1.0, 1.0, 4))
    return lambda x: (x.reshape(3, 1) * column + x.sum() / x.reshape(3, 1).exp()).sin()


def _custom_function(lib):
    cube = _cube(lib)
    return lambda x: cube.apply(x).sin() * x


def _in_place(lib):
    def f(x):
        y = x.clone()
        y.mul_(x)
        y.add_(x.sin())
        return y.exp()

    return f


def _norm_layers(lib):
    # layer norm (fused with its affine map) in an MLP, group and training-mode batch norm over the
    # same features seen as (N, C, L), and a cross-entropy loss
    F = lib.nn.functional
    rng = np.random.default_rng(15)
    w1, gain, shift, w2 = (lib.tensor(rng.standard_normal(shape)) for shape in ((8, 3), (8,), (8,), (4, 8)))
    target = lib.tensor([1, 3])

    def f(x):
        h = F.gelu(F.layer_norm(F.linear(x.reshape(2, 3), w1), (8,), gain, shift))
        grouped = F.group_norm(h.reshape(2, 4, 2), 2) + F.batch_norm(h.reshape(2, 4, 2), None, None, training=True)
        return F.cross_entropy(F.linear(grouped.reshape(2, 8).tanh(), w2), target) * x.sum()

    return f


def _cumulative_and_shapes(lib):
    # cumsum, prod, logsumexp, var, a 2-norm, repeat, flip, roll, padding, an embedding lookup
    F = lib.nn.functional
    rows = lib.tensor([[0, 7], [3, 0]])

    def f(x):
        m = x.reshape(2, 3)
        table = F.pad(m.cumsum(1).flip(0).roll(1, 1), (0, 1)).repeat(1, 2)
        picked = F.embedding(rows, table.t().tanh())
        return picked.sum(-1).prod(0).reshape(2, 1) * m.logsumexp(1) + m.var(0).sum() * lib.linalg.vector_norm(m, 2)

    return f


def _conv_pool(lib):
    # a small CNN: convolution, max and average pooling, a transposed convolution
    F = lib.nn.functional
    rng = np.random.default_rng(16)
    w, b, up = (lib.tensor(rng.standard_normal(shape)) for shape in ((3, 1, 3, 3), (3,), (3, 2, 2, 2)))

    def f(x):
        h = F.conv2d(x.reshape(1, 1, 4, 4), w, b, padding=1).tanh()
        pooled = F.max_pool2d(h, 2) + F.avg_pool2d(h, 2)
        return (F.conv_transpose2d(pooled, up, stride=2).sin() * h[:, :2]).sum((1, 2))

    return f


# name -> (function of the library, the input's shape)
FUNCTIONS = {
    "tanh_linear": (_predict, (7,)),
    "softmax": (_softmax, (6,)),
    "matmul_chain": (_matmul_chain, (6,)),
    "broadcasting": (_broadcasting, (3,)),
    "custom_function": (_custom_function, (4,)),
    "in_place": (_in_place, (4,)),
    "norm_layers": (_norm_layers, (6,)),
    "cumulative_and_shapes": (_cumulative_and_shapes, (6,)),
    "conv_pool": (_conv_pool, (16,)),
}
TRANSFORMS = {
    "hessian": lambda f, lib: lib.func.hessian(f),
    "jacfwd_jacrev": lambda f, lib: lib.func.jacfwd(lib.func.jacrev(f)),
    "jacrev_jacrev": lambda f, lib: lib.func.jacrev(lib.func.jacrev(f)),
    "jacfwd_jacfwd": lambda f, lib: lib.func.jacfwd(lib.func.jacfwd(f)),
}
# built of ruled ops: both walks batched, nothing row by row
BATCHED = {"tanh_linear", "softmax", "matmul_chain", "broadcasting", "in_place", "norm_layers", "cumulative_and_shapes",
           "conv_pool"}


def _count_rows(monkeypatch) -> list:
    """The node classes the batched walk runs row by row, and the Jacobians taken one recorded
    backward per element, as they happen."""
    seen = []
    walk_rows, one_by_one = batched_walk._row_by_row, functional._rows_one_by_one

    def row_by_row(node, grads, batch):
        seen.append(type(node).__name__)
        return walk_rows(node, grads, batch)

    def rows_one_by_one(out, xs, create_graph):
        seen.append("_rows_one_by_one")
        return one_by_one(out, xs, create_graph)

    monkeypatch.setattr(batched_walk, "_row_by_row", row_by_row)
    monkeypatch.setattr(functional, "_rows_one_by_one", rows_one_by_one)
    return seen


@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_second_order_jacobians_match_torch(monkeypatch, name, transform):
    make, shape = FUNCTIONS[name]
    x, tx = _pair(*shape, seed=1)
    seen = _count_rows(monkeypatch)
    ours = TRANSFORMS[transform](make(chainrule), chainrule)(x)
    reference = transform
    if name == "custom_function" and transform == "jacfwd_jacfwd":
        # torch's nested jacfwd does not differentiate the Function's jvp through its saved input
        # (its diagonal misses 6x·cos(x³)·x); the exact Hessian is jacrev(jacrev)'s
        reference = "jacrev_jacrev"
    if name == "norm_layers" and transform == "jacfwd_jacfwd":
        # torch's forward-over-forward through layer_norm and batch_norm is not the second
        # derivative (its "Hessian" is not even symmetric); its reverse-over-reverse is
        reference = "jacrev_jacrev"
    theirs = TRANSFORMS[reference](make(torch), torch)(tx)
    _close(ours, theirs)
    assert not ours.requires_grad
    if name in BATCHED:
        assert seen == [], f"ran row by row: {seen}"
    elif transform == "jacrev_jacrev":
        # only the user Function runs row by row, in the one recorded walk
        assert set(seen) == {"CubeBackward"}, seen


def _scans_and_writes(lib):
    # one function of x (6,) per op (scans, writes, reductions, factorizations), between nonlinear maps
    mask = lib.arange(6).reshape(2, 3) % 2 == 0
    rows = lib.tensor([[0, 2, 2], [1, 1, 0]])
    return {
        "logcumsumexp": lambda x: (lib.logcumsumexp(x.reshape(2, 3).sin(), 1) ** 2).sum(0),
        "nanmedian": lambda x: x.nanmedian() * x.sin(),
        "diagonal_scatter": lambda x: (lib.diagonal_scatter(x.reshape(2, 3) * x[:3], x[3:5].exp(), 1) ** 2).sum(1),
        "as_strided_overlapping": lambda x: (x.sin().as_strided((2, 2), (1, 2), 1) ** 3).sum(0),
        "block_diag": lambda x: (lib.block_diag(x[:4].reshape(2, 2), x[4:].tanh()) ** 2).sum(0),
        "masked_scatter": lambda x: (x.reshape(2, 3).masked_scatter(mask, x.reshape(2, 3).cos()) ** 3).sum(0),
        "inf_norms": lambda x: lib.linalg.vector_norm(x.reshape(2, 3).sin(), float("inf"), 0) * x[:3].exp()
        + lib.linalg.vector_norm(x ** 3, -float("inf")),
        "einsum_ellipsis": lambda x: lib.einsum("...ij,...jk->...ik", x.reshape(1, 2, 3).sin(), x.reshape(3, 2))
        .reshape(-1) * lib.einsum("...i,...i->...", x.reshape(2, 3).exp(), x.reshape(2, 3)).sum(),
        "svd_values_and_vectors": lambda x: lib.linalg.svdvals(x.reshape(3, 2)) ** 2
        * lib.linalg.svd(x.reshape(2, 3).sin(), full_matrices=False)[2][:, 0].abs().sum(),
        "qr": lambda x: (lib.linalg.qr(x.reshape(3, 2))[1] ** 2).sum(0),
        "pinv_and_lstsq": lambda x: lib.linalg.pinv(x.reshape(2, 3)).sum(0)
        + lib.linalg.lstsq(x.reshape(3, 2), x[:3].sin().unsqueeze(-1)).solution.sum(),
        "lu_and_lu_solve": lambda x: lib.linalg.lu(x.reshape(3, 2).sin())[2].sum(0) * lib.linalg.lu_solve(
            *lib.linalg.lu_factor(x[:4].reshape(2, 2) + 2 * lib.eye(2, dtype=x.dtype)), x[4:].reshape(2, 1)).sum(),
        "solve_broadcast_rhs": lambda x: lib.linalg.solve(lib.stack([x[:4].reshape(2, 2), x[2:].reshape(2, 2)])
                                                          + 3 * lib.eye(2, dtype=x.dtype), x[:2].sin().unsqueeze(-1))
        .reshape(-1),
        "cumprod_with_zeros": lambda x: (x * lib.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0], dtype=x.dtype)).cumprod(0)
        * x.sin(),
        "rfft_irfft_and_parts": lambda x: lib.fft.irfft(lib.fft.rfft(x.sin()) * x[:4], n=6) ** 2
        + lib.view_as_real(lib.fft.fft(lib.complex(x, x.cos()))).sum(-1) * lib.fft.rfft(x).abs().sum(),
        "matrix_exp": lambda x: lib.linalg.matrix_exp(x[:4].reshape(2, 2) * x[4:].sum()).sum(0),
        "cholesky_solve_and_inverse": lambda x: (lib.cholesky_solve(x[:4].reshape(2, 2).cos(), x[:4].reshape(2, 2)
                                                 .tril() + 3 * lib.eye(2, dtype=x.dtype))
                                                 * lib.cholesky_inverse(x[2:].reshape(2, 2).tril() + 2 * lib.eye(
                                                     2, dtype=x.dtype))).sum(0),
        "scatter_reduce_prod": lambda x: x.reshape(2, 3).scatter_reduce(1, rows, x.reshape(2, 3).sin() + 2,
                                                                          "prod").sum(0),
        "scatter_reduce_amax": lambda x: (x.reshape(2, 3).scatter_reduce(1, rows, x.reshape(2, 3).sin(), "amax")
                                          ** 3).sum(0),
    }


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's vmap falls back for masked_scatter
@pytest.mark.parametrize("name", list(_scans_and_writes(torch)))
def test_hessians_through_scans_and_writes_match_torch_and_stay_batched(monkeypatch, name):
    x, tx = _pair(6, seed=1)
    seen = _count_rows(monkeypatch)
    ours = cfunc.hessian(_scans_and_writes(chainrule)[name])(x)
    assert seen == [], f"ran row by row: {seen}"
    theirs_fn = _scans_and_writes(torch)[name]
    # torch's forward-over-reverse through scatter_reduce's product and through cholesky_solve /
    # cholesky_inverse (L taken as a full matrix) is not their second derivative: finite differences
    # of the gradient agree with its reverse-over-reverse there, and with ours
    reverse_reference = name in ("scatter_reduce_prod", "cholesky_solve_and_inverse")
    reference = torch.func.jacrev(torch.func.jacrev(theirs_fn)) if reverse_reference else torch.func.hessian(theirs_fn)
    _close(ours, reference(tx))
    _close(cfunc.jacrev(cfunc.jacrev(_scans_and_writes(chainrule)[name]))(x), reference(tx))


def test_logcumsumexps_recorded_gradient_is_differentiable_at_zero_cotangents():
    # the log-space backward masks the cotangent's zeros; a recorded one must still carry their
    # derivative. A cotangent that is 0 in places but moves with v shows it: finite differences
    # are the reference (torch's reverse-over-reverse misses those terms too)
    seed = chainrule.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]], dtype=chainrule.float64)
    x, _ = _pair(2, 4, seed=3)

    def recorded_gradient(v):
        _, pullback = chainrule.func.vjp(lambda u: chainrule.logcumsumexp(u, 1), v)
        return pullback(seed + (v - x).sin())[0]  # the seed at x, zeros and all, moving with v

    assert chainrule.autograd.gradcheck(recorded_gradient, (x.requires_grad_(),))


@pytest.mark.parametrize("vectorize", [False, True])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_functional_hessian_hvp_vhp_match_torch(name, vectorize):
    make, shape = FUNCTIONS[name]
    x, tx = _pair(*shape, seed=2)
    v, tv = _pair(*shape, seed=3)

    def scalar(lib):
        f = make(lib)
        return lambda y: (f(y) ** 2).sum()

    # (torch's vmapped double backward through its batch norm gives a Hessian that is not
    # symmetric: its loop of backwards is the reference there)
    _close(chainrule.autograd.functional.hessian(scalar(chainrule), x, vectorize=vectorize),
           torch.autograd.functional.hessian(scalar(torch), tx, vectorize=vectorize and name != "norm_layers"))
    for ours_fn, theirs_fn in ((chainrule.autograd.functional.hvp, torch.autograd.functional.hvp),
                               (chainrule.autograd.functional.vhp, torch.autograd.functional.vhp)):
        _close(ours_fn(scalar(chainrule), x, v), theirs_fn(scalar(torch), tx, tv))


def test_functional_jacobian_with_create_graph_is_one_recorded_walk_as_torch(monkeypatch):
    # create_graph=True: the Jacobian keeps a graph (one batched walk, recorded) that a second
    # jacobian differentiates, as torch's
    seen = _count_rows(monkeypatch)

    def second(lib):
        f = _matmul_chain(lib)
        return lambda y: lib.autograd.functional.jacobian(f, y, create_graph=True)

    x, tx = _pair(6, seed=4)
    inner = chainrule.autograd.functional.jacobian(_matmul_chain(chainrule), x.requires_grad_(), create_graph=True)
    assert inner.requires_grad and inner.grad_fn is not None
    _close(chainrule.autograd.functional.jacobian(second(chainrule), x.detach()),
           torch.autograd.functional.jacobian(second(torch), tx))
    assert seen == []


@pytest.mark.parametrize("name", ["tanh_linear", "softmax", "broadcasting", "custom_function", "in_place"])
def test_jacobians_pass_gradcheck_and_gradgradcheck(name):
    # the Jacobian's own derivative (the recorded batched walk differentiated) against central
    # differences, and f's second derivatives along random directions
    make, shape = FUNCTIONS[name]
    f = make(chainrule)
    x = _pair(*shape, seed=5)[0].requires_grad_()
    assert chainrule.autograd.gradcheck(cfunc.jacrev(f), (x,))
    assert chainrule.autograd.gradcheck(cfunc.jacfwd(f), (x,))
    assert chainrule.autograd.gradcheck(lambda y: chainrule.autograd.functional.jacobian(f, y, create_graph=True),
                                        (x,))
    assert chainrule.autograd.gradgradcheck(f, (x,))


def test_hessian_of_several_arguments_matches_torch():
    # argnums=(0, 1): the blocks of every pair of arguments, the inputs of different sizes
    x, tx = _pair(3, seed=6)
    y, ty = _pair(4, seed=7)

    def fn(lib):
        return lambda a, b: lib.outer(a.tanh(), b).softmax(-1).sum(0) * b

    for transform in ("hessian", "jacrev_jacrev", "jacfwd_jacfwd"):
        ours = getattr(cfunc, transform.split("_")[0])
        theirs = getattr(torch.func, transform.split("_")[0])
        if transform == "hessian":
            got, want = ours(fn(chainrule), (0, 1))(x, y), theirs(fn(torch), (0, 1))(tx, ty)
        else:
            got = ours(ours(fn(chainrule), (0, 1)), (0, 1))(x, y)
            want = theirs(theirs(fn(torch), (0, 1)), (0, 1))(tx, ty)
        _close(got, want)


def test_tutorial_hessians_in_float32_match_torch():
    # the jacobians_hessians tutorial's hessian section (predict, fewer inputs): float32 values
    D_IN, D_OUT = 64, 8
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((D_OUT, D_IN), (D_OUT,), (D_IN,))]

    def run(lib):
        F = lib.nn.functional
        w, b, x = (lib.tensor(a) for a in arrays)

        def predict(weight, bias, x):
            return F.linear(x, weight, bias).tanh()

        f = lib.func
        return [f.hessian(predict, argnums=2)(w, b, x), f.jacfwd(f.jacfwd(predict, argnums=2), argnums=2)(w, b, x),
                f.jacrev(f.jacrev(predict, argnums=2), argnums=2)(w, b, x)]

    ours, theirs = run(chainrule), run(torch)
    for a, b in zip(ours, theirs):
        assert a.dtype == chainrule.float32
        _close(a, b, rtol=1e-4, atol=1e-5)
    # the column-built Jacobian is a view with the input's dims last, as torch's jacfwd returns
    assert ours[0].stride() == theirs[0].stride()


def test_jacfwd_of_a_wide_function_is_taken_by_columns_as_torch(monkeypatch):
    # more outputs than inputs: one batched walk with a cotangent per input element (the
    # double-vjp), its result laid out as torch's jacfwd lays out its vmapped tangents
    seen = _count_rows(monkeypatch)
    x, tx = _pair(3, 4, seed=9)
    c, tc = _pair(5, seed=10)

    def fn(lib, scale):
        return lambda a: (a.reshape(3, 4, 1) * scale).sin() * a.sum()

    ours = cfunc.jacfwd(fn(chainrule, c))(x)
    theirs = torch.func.jacfwd(fn(torch, tc))(tx)
    _close(ours, theirs)
    assert ours.stride() == theirs.stride()
    assert not ours.requires_grad and seen == []


def test_wide_inner_jacobians_and_third_order_match_torch():
    # the inner jacfwd has more outputs than inputs (recorded columns), and a third transform
    # differentiates the Hessian's recorded walks again
    x, tx = _pair(3, seed=11)

    def fn(lib):
        return lambda a: (lib.outer(a, a.exp()).reshape(-1) * a.sum()).tanh()

    for ours, theirs in ((cfunc.jacfwd(cfunc.jacfwd(fn(chainrule))), torch.func.jacfwd(torch.func.jacfwd(fn(torch)))),
                         (cfunc.jacfwd(cfunc.jacfwd(cfunc.jacfwd(fn(chainrule)))),
                          torch.func.jacfwd(torch.func.jacfwd(torch.func.jacfwd(fn(torch))))),
                         (cfunc.jacrev(cfunc.jacfwd(cfunc.jacrev(fn(chainrule)))),
                          torch.func.jacrev(torch.func.jacfwd(torch.func.jacrev(fn(torch)))))):
        got = ours(x)
        _close(got, theirs(tx))
        assert not got.requires_grad


def _user_mlp(lib, cube):
    """A layer through a user Function: the Hessian's columns pass through its backward and jvp."""
    rng = np.random.default_rng(12)
    w1, b1, w2 = (lib.tensor(rng.standard_normal(shape)) for shape in ((6, 5), (6,), (3, 6)))
    F = lib.nn.functional
    return lambda x: F.linear(cube.apply(F.linear(x, w1, b1).tanh()), w2).tanh().sum()


def _without_vmap_declaration(cube):
    class Undeclared(cube):
        generate_vmap_rule = False

    return Undeclared


def test_hessian_through_a_declared_user_function_takes_the_reverse_walk(monkeypatch):
    # generate_vmap_rule, a backward and a jvp: torch's jacfwd vmaps the jvp; ours differentiates
    # the recorded backward in one batched walk, no forward run per input element
    x, tx = _pair(5, seed=13)
    theirs = torch.func.hessian(_user_mlp(torch, _cube(torch)))(tx)
    monkeypatch.setattr(cfunc, "_jvp_with_aux", lambda *a: pytest.fail("a per-element forward run"))
    seen = _count_rows(monkeypatch)
    ours = cfunc.hessian(_user_mlp(chainrule, _cube(chainrule)))(x)
    _close(ours, theirs)
    assert not ours.requires_grad
    assert set(seen) <= {"CubeBackward"}, seen


def test_an_undeclared_user_function_is_refused_by_jacfwd_as_torch_refuses_it():
    # without generate_vmap_rule or a vmap staticmethod torch's jacfwd (a vmap of jvps) refuses
    # the Function, naming it; jacrev, which only vmaps the backward, takes it
    x, tx = _pair(5, seed=14)
    messages = []
    for lib, value in ((chainrule, x), (torch, tx)):
        with pytest.raises(RuntimeError, match="generate_vmap_rule=True") as caught:
            lib.func.hessian(_user_mlp(lib, _without_vmap_declaration(_cube(lib))))(value)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "Undeclared" in messages[0]
    _close(cfunc.jacrev(cfunc.jacrev(_user_mlp(chainrule, _without_vmap_declaration(_cube(chainrule)))))(x),
           torch.func.jacrev(torch.func.jacrev(_user_mlp(torch, _cube(torch))))(tx))


def test_a_user_function_without_a_jvp_refuses_jacfwd_as_torch():
    # (the reverse walk could answer; torch's jacfwd needs the Function's forward-mode rule)
    def without_jvp(cube):
        class NoJvp(cube):
            jvp = staticmethod(cube.__mro__[1].jvp)

        return NoJvp

    caught = []
    for lib, x in zip((chainrule, torch), _pair(5, seed=15)):
        with pytest.raises(NotImplementedError) as info:
            lib.func.hessian(_user_mlp(lib, without_jvp(_cube(lib))))(x)
        caught.append(str(info.value))
    assert caught[0] == caught[1]
