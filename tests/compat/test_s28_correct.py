"""Session 28, lane correct: gaps other lanes found, each checked against torch 2.13 on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- NLL's saved tensors
_NLL_CASES = [
    ("nll_loss", (4, 3), {}),
    ("nll_loss", (4, 3), {"reduction": "none"}),
    ("nll_loss", (4, 3), {"reduction": "sum", "ignore_index": 2}),
    ("nll_loss", (4, 3), {"weight": True}),
    ("nll_loss", (4, 3), {"weight": True, "reduction": "none"}),
    ("nll_loss", (2, 3, 2, 2), {}),
    ("nll_loss", (2, 3, 2, 2), {"weight": True, "reduction": "sum"}),
    ("cross_entropy", (4, 3), {}),
    ("cross_entropy", (4, 3), {"weight": True, "ignore_index": 1}),
    ("cross_entropy", (2, 3, 2, 2), {"reduction": "sum"}),
    ("nll_loss", (3,), {}),
]


def _nll_inputs(lib, shape, kwargs):
    x = (lib.arange(float(np.prod(shape))).reshape(shape) / 5 - 1).requires_grad_()
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    target = lib.tensor(np.arange(int(np.prod(target_shape))).reshape(target_shape) % classes)
    kwargs = dict(kwargs)
    if kwargs.get("weight"):
        kwargs["weight"] = lib.linspace(0.5, 2.0, classes)
    return x, target, kwargs


def _packed_saved(lib, name, shape, kwargs):
    x, target, kwargs = _nll_inputs(lib, shape, kwargs)
    packed = []

    def pack(tensor):
        packed.append((tuple(tensor.shape), str(tensor.dtype).split(".")[1]))
        return tensor

    with lib.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = getattr(lib.nn.functional, name)(x, target, **kwargs)
    loss.sum().backward()
    return packed, x.grad.numpy()


@pytest.mark.parametrize(("name", "shape", "kwargs"), _NLL_CASES)
def test_nll_node_packs_self_target_weight_and_total_weight_as_torch(name, shape, kwargs):
    """torch's NllLossBackward0 saves self, target, weight (when given) and total_weight, so
    saved_tensors_hooks pack each of them (chainrule packed self alone)."""
    expected, expected_grad = _packed_saved(torch, name, shape, kwargs)
    got, grad = _packed_saved(chainrule, name, shape, kwargs)
    assert got == expected
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "shape", "kwargs"), _NLL_CASES)
def test_nll_saved_attributes_read_as_torchs(name, shape, kwargs):
    """_saved_target is the caller's target, _saved_weight its weight, and _saved_total_weight is
    0 unreduced and the summed row weights for 'sum' and 'mean'."""
    results = []
    for lib in (torch, chainrule):
        x, target, kw = _nll_inputs(lib, shape, kwargs)
        node = getattr(lib.nn.functional, name)(x, target, **kw).grad_fn
        results.append((node.name(), node._saved_target is target,
                        node._saved_weight is kw.get("weight"), float(node._saved_total_weight)))
    assert results[1] == results[0]


@pytest.mark.parametrize("which", ["target", "weight"])
@pytest.mark.parametrize("name", ["nll_loss", "cross_entropy"])
def test_writing_the_target_or_weight_in_place_before_backward_raises_as_torch(name, which):
    messages = []
    for lib in (torch, chainrule):
        x, target, kwargs = _nll_inputs(lib, (4, 3), {"weight": True})
        loss = getattr(lib.nn.functional, name)(x, target, **kwargs)
        (target if which == "target" else kwargs["weight"]).add_(1 if which == "target" else 1.0)
        with pytest.raises(RuntimeError) as error:
            loss.backward()
        messages.append(str(error.value))
    assert messages[1] == messages[0]
    assert "modified by an inplace operation" in messages[0]


# ---------------------------------------------------------------- float16/bfloat16 linalg
_SPD = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]]
_LINALG_CASES = {
    "linalg.cholesky": lambda lib, a, b: lib.linalg.cholesky(a),
    "linalg.cholesky_ex": lambda lib, a, b: lib.linalg.cholesky_ex(a)[0],
    "linalg.inv": lambda lib, a, b: lib.linalg.inv(a),
    "linalg.inv_ex": lambda lib, a, b: lib.linalg.inv_ex(a)[0],
    "linalg.solve": lambda lib, a, b: lib.linalg.solve(a, b),
    "linalg.solve_ex": lambda lib, a, b: lib.linalg.solve_ex(a, b)[0],
    "linalg.det": lambda lib, a, b: lib.linalg.det(a),
    "linalg.slogdet": lambda lib, a, b: lib.linalg.slogdet(a)[1],
    "linalg.eigh": lambda lib, a, b: lib.linalg.eigh(a)[0],
    "linalg.eigvalsh": lambda lib, a, b: lib.linalg.eigvalsh(a),
    "linalg.svd": lambda lib, a, b: lib.linalg.svd(a)[1],
    "linalg.svdvals": lambda lib, a, b: lib.linalg.svdvals(a),
    "linalg.qr": lambda lib, a, b: lib.linalg.qr(a)[0],
    "linalg.lstsq": lambda lib, a, b: lib.linalg.lstsq(a, b)[0],
    "linalg.pinv": lambda lib, a, b: lib.linalg.pinv(a),
    "linalg.matrix_rank": lambda lib, a, b: lib.linalg.matrix_rank(a),
    "linalg.matrix_norm 2": lambda lib, a, b: lib.linalg.matrix_norm(a, 2),
    "linalg.matrix_norm nuc": lambda lib, a, b: lib.linalg.matrix_norm(a, "nuc"),
    "linalg.norm 2": lambda lib, a, b: lib.linalg.norm(a, 2),
    "linalg.cond": lambda lib, a, b: lib.linalg.cond(a),
    "linalg.cond fro": lambda lib, a, b: lib.linalg.cond(a, "fro"),
    "linalg.lu_factor": lambda lib, a, b: lib.linalg.lu_factor(a)[0],
    "linalg.lu_factor_ex": lambda lib, a, b: lib.linalg.lu_factor_ex(a)[0],
    "linalg.lu": lambda lib, a, b: lib.linalg.lu(a)[1],
    "linalg.lu_solve": lambda lib, a, b: lib.linalg.lu_solve(a, lib.tensor([1, 2, 3], dtype=lib.int32), b),
    "linalg.ldl_factor": lambda lib, a, b: lib.linalg.ldl_factor(a)[0],
    "linalg.ldl_factor_ex": lambda lib, a, b: lib.linalg.ldl_factor_ex(a)[0],
    "linalg.ldl_solve": lambda lib, a, b: lib.linalg.ldl_solve(a, lib.tensor([1, 2, 3], dtype=lib.int32), b),
    "linalg.householder_product": lambda lib, a, b: lib.linalg.householder_product(a, a[:, 0]),
    "linalg.matrix_power -1": lambda lib, a, b: lib.linalg.matrix_power(a, -1),
    "linalg.tensorinv": lambda lib, a, b: lib.linalg.tensorinv(a, 1),
    "linalg.tensorsolve": lambda lib, a, b: lib.linalg.tensorsolve(a, b[:, 0]),
    "linalg.solve_triangular": lambda lib, a, b: lib.linalg.solve_triangular(a, b, upper=True),
    "linalg.eig": lambda lib, a, b: lib.linalg.eig(a)[0],
    "linalg.vander": lambda lib, a, b: lib.linalg.vander(a[0]),
    "inverse": lambda lib, a, b: lib.inverse(a),
    "det": lambda lib, a, b: lib.det(a),
    "logdet": lambda lib, a, b: lib.logdet(a),
    "slogdet": lambda lib, a, b: lib.slogdet(a)[1],
    "pinverse": lambda lib, a, b: lib.pinverse(a),
    "svd": lambda lib, a, b: lib.svd(a)[1],
    "qr": lambda lib, a, b: lib.qr(a)[0],
    "cholesky": lambda lib, a, b: lib.cholesky(a),
    "cholesky_inverse": lambda lib, a, b: lib.cholesky_inverse(a),
    "cholesky_solve": lambda lib, a, b: lib.cholesky_solve(b, a),
    "triangular_solve": lambda lib, a, b: lib.triangular_solve(b, a)[0],
    "geqrf": lambda lib, a, b: lib.geqrf(a)[0],
    "ormqr": lambda lib, a, b: lib.ormqr(a, a[:, 0], a),
    # computed by torch in the low precision: chainrule too, in that dtype (never float64)
    "linalg.matrix_norm fro": lambda lib, a, b: lib.linalg.matrix_norm(a),
    "linalg.vector_norm": lambda lib, a, b: lib.linalg.vector_norm(a),
    "linalg.matrix_power 2": lambda lib, a, b: lib.linalg.matrix_power(a, 2),
    "linalg.multi_dot": lambda lib, a, b: lib.linalg.multi_dot([a, a]),
    "linalg.vecdot": lambda lib, a, b: lib.linalg.vecdot(a, a),
}


def _run_linalg(lib, name, dtype, autocast):
    a = lib.tensor(_SPD).to(getattr(lib, dtype))
    b = lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).to(getattr(lib, dtype))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if autocast:
                with lib.autocast("cpu", dtype=getattr(lib, dtype)):
                    return _LINALG_CASES[name](lib, a, b)
            return _LINALG_CASES[name](lib, a, b)
        except Exception as error:  # noqa: BLE001 - the error is the result compared
            return error


@pytest.mark.parametrize("autocast", [False, True], ids=["plain", "cpu_autocast"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", list(_LINALG_CASES))
def test_low_precision_linalg_refuses_or_computes_as_torch(name, dtype, autocast):
    """torch's LAPACK-backed kernels refuse float16/bfloat16 with an error per function (chainrule
    computed them in float64, or raised NumPy's TypeError for float16); CPU autocast's float32 list
    casts first, so there they compute in float32."""
    theirs = _run_linalg(torch, name, dtype, autocast)
    ours = _run_linalg(chainrule, name, dtype, autocast)
    if isinstance(theirs, Exception):
        assert type(ours) is type(theirs), ours
        assert str(ours) == str(theirs)
        return
    assert not isinstance(ours, Exception), ours
    assert str(ours.dtype).split(".")[1] == str(theirs.dtype).split(".")[1]
    if theirs.dtype.is_floating_point or theirs.dtype.is_complex:
        as_array = (lambda t: t.numpy()) if theirs.dtype.is_complex else (lambda t: t.float().numpy())
        np.testing.assert_allclose(as_array(ours), as_array(theirs), rtol=2e-2, atol=2e-2)
    else:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# ---------------------------------------------------------------- sigmoid and logsigmoid at saturation
def _logit_grid(dtype):
    return np.concatenate([np.linspace(-200, 200, 4001), [-1e30, 1e30, -88.8, -88.7, -103.9, 103.9, -745, 745,
                                                          16.6, 36.7, -36.7]]).astype(dtype)


def _within_ulps(ours, theirs, ulps=2, scale=None):
    """Equal up to ``ulps`` units in the last place (torch's SIMD exp and NumPy's round apart by
    that much) of the larger of the values and ``scale`` (the operands of a difference, whose
    ulps it inherits), and zero exactly where torch's is: a saturated value is no rounding matter."""
    assert ((ours == 0) == (theirs == 0)).all()
    magnitude = np.maximum(np.abs(ours), np.abs(theirs))
    if scale is not None:
        magnitude = np.maximum(magnitude, np.abs(scale))
    spacing = np.spacing(magnitude.astype(ours.dtype))
    apart = np.abs(ours.astype(np.float64) - theirs) > ulps * spacing
    assert not apart.any(), f"{apart.sum()} values more than {ulps} ulps from torch's, first at {np.argmax(apart)}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_saturates_to_zero_where_torchs_does(dtype):
    """torch's 1 / (1 + e^-x) is 0 once e^-x overflows (x < -88.72 in float32); chainrule's
    e^x / (1 + e^x) went on into the subnormals (155 of 4011 float32 values, e.g. 1.4e-45 at -103.9)."""
    grid = _logit_grid(dtype)
    _within_ulps(chainrule.sigmoid(chainrule.tensor(grid)).numpy(), torch.sigmoid(torch.tensor(grid)).numpy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsigmoid_gradient_rounds_as_torchs_kernel(dtype):
    """torch's log_sigmoid_backward is (1 - z/(1+z)) g for x < 0 and z/(1+z) g otherwise, z = e^-|x|:
    at x = -17.3 (float32) its gradient is 0.99999994 where σ(-x) rounds to 1."""
    grid = _logit_grid(dtype)
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor(grid, requires_grad=True)
        lib.nn.functional.logsigmoid(x).sum().backward()
        grads.append(x.grad.numpy())
    _within_ulps(grads[1], grads[0])
    np.testing.assert_array_equal(grads[1][grid < -17], grads[0][grid < -17])


@pytest.mark.parametrize("pos_weight", [None, 2.5])
@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_with_logits_gradient_is_torchs_sigmoid_minus_target(dtype, target, reduction, pos_weight):
    """torch's input gradient is (σ(x) - t)·w·g: 3.0e-39 at x = -88.7 for t = 0 (float32), where
    chainrule's composition gave (1 - t) - σ(-x) = 0 (870 of 4011 float32 logits, 1980 float64)."""
    grid = _logit_grid(dtype)
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor(grid, requires_grad=True)
        weight = lib.linspace(0.5, 2.0, grid.size, dtype=x.dtype)
        loss = lib.nn.functional.binary_cross_entropy_with_logits(
            x, lib.full_like(x, target), weight=weight, reduction=reduction,
            pos_weight=None if pos_weight is None else lib.tensor(pos_weight, dtype=x.dtype))
        loss.sum().backward()
        grads.append(x.grad.numpy())
    # σ(x) - t inherits the ulps of σ(x), where torch's SIMD exp and NumPy's differ by one
    factor = 1 if pos_weight is None else pos_weight * target + 1 - target
    sigmoid_scale = torch.sigmoid(torch.tensor(grid)).numpy() * np.linspace(0.5, 2.0, grid.size) * factor
    _within_ulps(grads[1], grads[0], ulps=4, scale=sigmoid_scale / (grid.size if reduction == "mean" else 1))


@pytest.mark.parametrize("argument", ["weight", "pos_weight"])
def test_bce_with_logits_refuses_a_weight_that_requires_grad_as_torch(argument):
    messages = []
    for lib in (torch, chainrule):
        x = lib.zeros(2, 3, requires_grad=True)
        with pytest.raises(RuntimeError) as error:
            lib.nn.functional.binary_cross_entropy_with_logits(x, lib.ones(2, 3),
                                                               **{argument: lib.ones(3, requires_grad=True)})
        messages.append(str(error.value))
    assert messages[1] == messages[0]


def test_bce_with_logits_pos_weight_of_the_wrong_size_raises_torchs_error():
    messages = []
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError) as error:
            lib.nn.functional.binary_cross_entropy_with_logits(lib.zeros(2, 3), lib.ones(2, 3), pos_weight=lib.ones(2))
        messages.append(str(error.value))
    assert messages[1] == messages[0]
