"""Session 29, lane progU: chainrule bugs found by the probabilistic-programming, mixed-precision,
torch.func, sparse and tensor-network programs (distributions_vi, amp_gradscaler_accumulation,
func_hessian_newton, sparse_coo_gcn, tensor_network_mps), each checked against torch 2.13."""

import math

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    """What ``call(lib)`` returns, or the class and text of what it raises."""
    try:
        return ("ok", call(lib))
    except Exception as e:  # noqa: BLE001  (the class is what is compared)
        return (type(e), str(e))


# ----------------------------------------------------------------- GradScaler (amp_gradscaler_accumulation)

def _scaled_linear(lib, init_scale=2.0 ** 16, **kwargs):
    """A Linear(3, 2) with SGD and a CPU GradScaler whose scale() has run once on its loss."""
    lib.manual_seed(0)
    model = lib.nn.Linear(3, 2)
    optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
    scaler = lib.amp.GradScaler("cpu", init_scale=init_scale, **kwargs)
    scaler.scale(model(lib.ones(2, 3)).sum()).backward()
    return model, optimizer, scaler


def _unscale_then(lib, *calls):
    _, optimizer, scaler = _scaled_linear(lib)
    for call in calls:
        getattr(scaler, call)(*((optimizer,) if call != "update" else ()))


@pytest.mark.parametrize("call", [
    lambda lib: lib.amp.GradScaler("cpu").unscale_(lib.optim.SGD(lib.nn.Linear(2, 2).parameters(), lr=0.1)),
    lambda lib: lib.amp.GradScaler("cpu").step(lib.optim.SGD(lib.nn.Linear(2, 2).parameters(), lr=0.1)),
    lambda lib: lib.amp.GradScaler("cpu").update(),
    lambda lib: _scaled_linear(lib)[2].scale(3.0),
    lambda lib: _scaled_linear(lib)[2].update(),
    lambda lib: _unscale_then(lib, "step", "step"),
    lambda lib: _unscale_then(lib, "step", "unscale_"),
    lambda lib: _unscale_then(lib, "unscale_", "unscale_"),
    lambda lib: lib.amp.GradScaler("cpu", growth_factor=0.5),
    lambda lib: lib.amp.GradScaler("cpu", backoff_factor=1.5),
    lambda lib: _scaled_linear(lib)[2].update(lib.tensor([2.0, 4.0])),
    lambda lib: _scaled_linear(lib)[2].step(lib.optim.SGD([lib.nn.Parameter(lib.ones(1))], lr=0.1)),
], ids=["unscale-before-scale", "step-before-scale", "update-before-scale", "scale-a-float", "update-before-step",
        "step-twice", "unscale-after-step", "unscale-twice", "growth-factor", "backoff-factor",
        "update-two-element-scale", "step-without-grads"])
def test_grad_scaler_misuse_raises_torchs_error(call):
    # the AMP recipe with its calls out of order (or before any scale()): torch's class and text
    expected = _outcome(torch, call)
    assert expected[0] in (AssertionError, RuntimeError, ValueError)
    assert _outcome(chainrule, call) == expected


@pytest.mark.parametrize("call", [
    lambda lib: lib.amp.GradScaler("cpu", growth_factor=0.5, enabled=False).is_enabled(),
    lambda lib: lib.amp.GradScaler("cpu", backoff_factor=-1.0).get_backoff_factor(),
    lambda lib: lib.amp.GradScaler("cpu", init_scale=1000.3).state_dict(),
    lambda lib: _scaled_linear(lib, init_scale=1000.3)[2].state_dict(),
    lambda lib: [t.item() for t in _scaled_linear(lib)[2].scale(t for t in [lib.ones(1), lib.ones(1) * 2])],
], ids=["disabled-skips-checks", "negative-backoff", "lazy-scale", "float32-scale", "generator"])
def test_grad_scaler_state_matches_torch(call):
    # torch checks the factors only when enabled, keeps init_scale as given until the first scale()
    # and the scale in float32 after it, and scales any iterable of tensors
    assert _outcome(chainrule, call) == _outcome(torch, call)


def _scale_history(lib):
    model, optimizer, scaler = _scaled_linear(lib, init_scale=1000.3, growth_factor=1.7, growth_interval=2)
    history = []
    for step in range(6):
        if step == 3:
            model.bias.grad[0] = float("inf")
        scaler.step(optimizer)
        scaler.update()
        history.append(scaler.state_dict())
        optimizer.zero_grad()
        scaler.scale(model(lib.ones(2, 3)).sum()).backward()
    return history, model.weight.detach().tolist()


def test_grad_scaler_grows_and_backs_off_in_float32_as_torch():
    # scale 1000.3 grown by 1.7 every 2 clean steps, one overflow in between: torch keeps the scale
    # in a float32 tensor, so every value is a float32 (1000.2999877929688, 1700.510009765625, ...)
    expected = _scale_history(torch)
    assert _scale_history(chainrule) == expected


# ----------------------------------------------------------------- pygcn's legacy constructors (sparse_coo_gcn)

@pytest.mark.parametrize("data", [range(4), range(0), bytearray(b"ab"), [range(2), range(2)], (1, 2),
                                  iter([1, 2]), {1, 2}, {1: 2}, "ab", b"ab", 2.5, None],
                         ids=["range", "empty-range", "bytearray", "list-of-ranges", "tuple", "iterator", "set",
                              "dict", "str", "bytes", "float", "None"])
@pytest.mark.parametrize("type_name", ["LongTensor", "FloatTensor", "ByteTensor"])
def test_legacy_constructor_takes_any_sequence_as_torch(type_name, data):
    # pygcn's idx_train = torch.LongTensor(range(140)): torch takes any Python sequence and refuses
    # sets, dicts and iterators with its TypeError
    def make(lib):
        if isinstance(data, type(iter([]))):
            return getattr(lib, type_name)(iter([1, 2]))  # a fresh iterator for each library
        return getattr(lib, type_name)(data).tolist()

    expected = _outcome(torch, make)
    assert _outcome(chainrule, make) == expected


@pytest.mark.parametrize("args", [
    lambda lib: (lib.tensor([[0, 1], [1, 0]]), lib.tensor([1.0, 2.0]), lib.Size([2, 2])),
    lambda lib: (lib.tensor([[0, 1], [1, 0]]), lib.tensor([1.0, 2.0])),
    lambda lib: (2, 3),
    lambda lib: (),
], ids=["indices-values-shape", "indices-values", "sizes", "no-arguments"])
def test_legacy_sparse_constructor_warns_torchs_text(args):
    # torch.sparse.FloatTensor(indices, values, shape) as pygcn's utils.py calls it: torch's
    # deprecation names torch.sparse.SparseTensor, one text per signature (TORCH_WARN_ONCE, so asked
    # for again by set_warn_always)
    import warnings

    seen = {}
    for lib in (torch, chainrule):
        lib.set_warn_always(True)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                built = lib.sparse.FloatTensor(*args(lib))
        finally:
            lib.set_warn_always(False)
        seen[lib] = ([(w.category, str(w.message), w.filename) for w in caught], built.to_dense().tolist())
    assert seen[chainrule] == seen[torch]
    assert len(seen[torch][0]) == 1 and seen[torch][0][0][2] == __file__


# ----------------------------------------------------------------- sparse COO ops that stay sparse (sparse_coo_gcn)

def _sparse_summary(result):
    """Layout, coalesced flag, raw indices and values, dtype name and shape: all torch shows of a result."""
    if result.is_sparse:
        return ("sparse", result.is_coalesced(), result._indices().tolist(), result._values().tolist(),
                str(result.dtype).split(".")[-1], tuple(result.shape))
    return ("strided", result.tolist(), str(result.dtype).split(".")[-1])


def _uncoalesced(lib):
    return lib.sparse_coo_tensor(lib.tensor([[0, 1, 1, 0], [1, 0, 2, 1]]), lib.tensor([1.0, 2.0, 3.0, 4.0]), (2, 3))


def _other(lib):
    return lib.sparse_coo_tensor(lib.tensor([[1, 0], [2, 0]]), lib.tensor([10.0, 20.0]), (2, 3))


def _hybrid(lib):
    # two sparse dims and one dense dim
    return lib.sparse_coo_tensor(lib.tensor([[0, 1, 1], [1, 0, 1]]),
                                 lib.tensor([[1.0, 2.0], [3.0, -3.0], [5.0, 6.0]]), (2, 2, 2))


@pytest.mark.parametrize("call", [
    lambda lib: _uncoalesced(lib) + _other(lib),
    lambda lib: _uncoalesced(lib).coalesce() + _other(lib).coalesce(),
    lambda lib: _other(lib).coalesce() + _uncoalesced(lib),
    lambda lib: _uncoalesced(lib) - _other(lib),
    lambda lib: _uncoalesced(lib).add(_other(lib), alpha=2),
    lambda lib: _uncoalesced(lib).sub(_other(lib), alpha=3),
    lambda lib: lib.eye(2, dtype=lib.long).to_sparse() + lib.eye(2).to_sparse(),
    lambda lib: _hybrid(lib) + _hybrid(lib),
    lambda lib: _uncoalesced(lib) * 2,
    lambda lib: 2 * _uncoalesced(lib).coalesce(),
    lambda lib: lib.eye(2, dtype=lib.long).to_sparse() * 2.5,
    lambda lib: lib.eye(2, dtype=lib.long).to_sparse() / 2,
    lambda lib: -_uncoalesced(lib),
    lambda lib: _uncoalesced(lib).t(),
    lambda lib: _uncoalesced(lib).coalesce().t(),
    lambda lib: lib.eye(3).to_sparse().transpose(-1, 0),
    lambda lib: lib.ones(3).to_sparse().t(),
    lambda lib: lib.ones(3, 3).to_sparse(1).t(),
    lambda lib: lib.eye(3).to_sparse() + lib.ones(2, 3).to_sparse(),
    lambda lib: lib.eye(3).to_sparse() + lib.ones(3, 3).to_sparse(1),
    lambda lib: lib.ones(2, 3) + _uncoalesced(lib),
], ids=["add", "add-coalesced", "add-mixed", "sub", "add-alpha", "sub-alpha", "add-promotes", "add-hybrid",
        "mul", "rmul-coalesced", "mul-float-of-long", "div", "neg", "t", "t-coalesced", "transpose-negative",
        "t-1d", "t-hybrid", "add-size-mismatch", "add-density-mismatch", "dense-plus-sparse"])
def test_sparse_arithmetic_and_transpose_stay_sparse_as_torch(call):
    # pygcn-era code adds sparse adjacencies (A + I), scales and transposes them, then calls
    # .coalesce()/.indices(): torch keeps them sparse, with its merge order and coalesced flag
    def run(lib):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's sparse-invariants notice
            return _sparse_summary(call(lib))

    expected = _outcome(torch, run)
    assert _outcome(chainrule, run) == expected


@pytest.mark.parametrize("args", [
    lambda lib: (_uncoalesced(lib), 1), lambda lib: (_uncoalesced(lib), 0), lambda lib: (lib.eye(3).to_sparse(), -1),
    lambda lib: (_uncoalesced(lib), (0, 1)), lambda lib: (_uncoalesced(lib),),
    lambda lib: (lib.eye(3).to_sparse(), 1, lib.float64), lambda lib: (lib.ones(3, 3).to_sparse(1), 1),
    lambda lib: (_hybrid(lib), 2), lambda lib: (_hybrid(lib), 0), lambda lib: (_hybrid(lib), (0, 2)),
    lambda lib: (_hybrid(lib), (0, 1)),
    lambda lib: (lib.sparse_coo_tensor(lib.tensor([[0, 0], [1, 1]]), lib.tensor([1.0, -1.0]), (2, 2)), 1),
], ids=["dim1", "dim0", "dim-neg", "all-dims", "no-dim", "dtype", "hybrid-1-sparse-dim", "dense-dim",
        "sparse-dim-of-hybrid", "both-kinds", "every-sparse-dim", "sums-to-zero"])
def test_sparse_sum_over_some_sparse_dims_is_sparse_as_torch(args):
    # torch.sparse.sum(adj, dim=1), a GCN's degree vector: sparse and coalesced while a sparse dim is
    # left (an index whose entries cancel keeps an explicit 0), dense once every sparse dim is summed
    def run(lib):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _sparse_summary(lib.sparse.sum(*args(lib)))

    assert _outcome(chainrule, run) == _outcome(torch, run)


# ----------------------------------------------------------------- linalg.norm's argument checks (tensor_network_mps)

@pytest.mark.parametrize("call", [
    lambda lib: lib.linalg.norm(lib.arange(24.0).reshape(2, 3, 4), ord=2),
    lambda lib: lib.linalg.norm(lib.arange(24.0).reshape(2, 3, 4), ord="fro"),
    lambda lib: lib.linalg.norm(lib.arange(24.0).reshape(2, 3, 4), ord=float("inf"), keepdim=True),
    lambda lib: lib.linalg.norm(lib.tensor(2.0), ord=2),
    lambda lib: lib.linalg.norm(lib.ones(3), ord="nuc"),
    lambda lib: lib.linalg.matrix_norm(lib.ones(3)),
    lambda lib: lib.linalg.norm(lib.arange(24.0).reshape(2, 3, 4), dim=(1,)),
    lambda lib: lib.linalg.norm(lib.arange(24.0).reshape(2, 3, 4), ord=2, dim=(1,)),
    lambda lib: lib.linalg.norm(lib.arange(24.0).reshape(2, 3, 4), dim=(0, 1, 2)),
    lambda lib: lib.linalg.norm(lib.arange(24.0).reshape(2, 3, 4), ord=2, dim=[]),
    lambda lib: lib.linalg.norm(lib.arange(24.0).reshape(2, 3, 4), ord=1, dim=[0, 1]),
    lambda lib: lib.linalg.norm(lib.arange(24.0).reshape(2, 3, 4)),
    lambda lib: lib.linalg.norm(lib.arange(6.0).reshape(2, 3), ord=1),
    lambda lib: lib.linalg.norm(lib.arange(6.0), ord=0),
], ids=["ord-3d", "fro-3d", "inf-3d-keepdim", "ord-0d", "nuc-1d", "matrix_norm-1d", "dim-1-tuple", "ord-dim-1-tuple",
        "dim-3", "dim-empty", "ord-1-two-dims", "no-ord-3d", "ord-1-2d", "ord-0-1d"])
def test_linalg_norm_checks_its_arguments_as_torch(call):
    # torch.linalg.norm(site, ord=2) on a 3-d MPS site tensor: torch refuses an ord without dim on a
    # 3-d input (chainrule took the last two dims), and a dim of other than 1 or 2 entries
    def run(lib):
        return call(lib).tolist()

    assert _outcome(chainrule, run) == _outcome(torch, run)


@pytest.mark.parametrize("sizes", [(2, 3), (4,), (9,), (8, 1)], ids=["short-in-weight", "short-in-bias", "exact-plus-one",
                                                                   "two-dim-vector"])
def test_vector_to_parameters_of_a_wrong_length_as_torch(sizes):
    # func_hessian_newton's vector_to_parameters(theta, model.parameters()) given a vector of the
    # wrong size: torch's view error for the first parameter the vector runs short for
    def run(lib):
        lib.manual_seed(0)
        model = lib.nn.Linear(3, 2)
        lib.nn.utils.vector_to_parameters(lib.arange(float(math.prod(sizes))).reshape(sizes), model.parameters())
        return [p.tolist() for p in model.parameters()]

    expected = _outcome(torch, run)
    assert _outcome(chainrule, run) == expected


# ----------------------------------------------------------------- autocast state (amp_gradscaler_accumulation)

@pytest.mark.parametrize("dtype_name", ["float64", "float32", "int32", "float16", "bfloat16"])
@pytest.mark.parametrize("enabled", [True, False])
def test_autocast_region_sets_its_dtype_even_when_off_as_torch(dtype_name, enabled):
    # torch.autocast("cpu", dtype=torch.float64) warns and runs disabled, yet inside it
    # get_autocast_dtype("cpu") answers float64, as it does for any region entered with enabled=False
    import warnings

    def run(lib):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with lib.autocast("cpu", dtype=getattr(lib, dtype_name), enabled=enabled):
                inside = (str(lib.get_autocast_dtype("cpu")).split(".")[-1], lib.is_autocast_enabled("cpu"),
                          str((lib.ones(2, 2) @ lib.ones(2, 2)).dtype).split(".")[-1])
        after = (str(lib.get_autocast_dtype("cpu")).split(".")[-1], lib.is_autocast_enabled("cpu"))
        return inside, after, [(w.category, str(w.message)) for w in caught]

    assert run(chainrule) == run(torch)


@pytest.mark.parametrize("call", [
    lambda lib: lib.is_autocast_cpu_enabled(),
    lambda lib: lib.set_autocast_cpu_enabled(False),
    lambda lib: str(lib.get_autocast_cpu_dtype()).split(".")[-1],
    lambda lib: lib.set_autocast_cpu_dtype(lib.bfloat16),
    lambda lib: str(lib.get_autocast_gpu_dtype()).split(".")[-1],
    lambda lib: lib.set_autocast_gpu_dtype(lib.float16),
], ids=["is_autocast_cpu_enabled", "set_autocast_cpu_enabled", "get_autocast_cpu_dtype", "set_autocast_cpu_dtype",
        "get_autocast_gpu_dtype", "set_autocast_gpu_dtype"])
def test_deprecated_autocast_spellings_warn_torchs_text(call):
    # torch's DeprecationWarning for the per-device spellings, its "(Triggered internally at ...)" included,
    # on every call and pointing at the caller
    import warnings

    seen = {}
    for lib in (torch, chainrule):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = call(lib)
            call(lib)
        seen[lib] = (result, [(w.category, str(w.message), w.filename) for w in caught])
    assert seen[chainrule] == seen[torch]
    assert len(seen[torch][1]) == 2 and seen[torch][1][0][2] == __file__


@pytest.mark.parametrize("call", [
    lambda lib: _uncoalesced(lib).clone(),
    lambda lib: _uncoalesced(lib).coalesce().clone(),
    lambda lib: _uncoalesced(lib).detach(),
    lambda lib: _uncoalesced(lib) * lib.tensor([1.0, 2.0, 3.0]),
    lambda lib: _uncoalesced(lib).coalesce() * lib.full((2, 3), 2.0),
    lambda lib: lib.ones(2, 3) * _uncoalesced(lib),
    lambda lib: _uncoalesced(lib).mul(lib.tensor(2.0)),
    lambda lib: _uncoalesced(lib) * lib.ones(2, 3, dtype=lib.float64),
    lambda lib: lib.sparse.mm(lib.eye(3).to_sparse() * 2,
                              lib.sparse_coo_tensor([[0, 1, 2], [2, 0, 1]], [1.0, 2.0, 3.0], (3, 3))),
    lambda lib: lib.sparse_coo_tensor([[0, 0], [0, 1]], [1.0, -1.0], (3, 3)) @ lib.sparse_coo_tensor(
        [[0, 1], [0, 0]], [1.0, 1.0], (3, 3)),
    lambda lib: lib.sparse.mm(lib.eye(2).to_sparse(), lib.ones(3, 2).to_sparse()),
    lambda lib: lib.sparse_coo_tensor([[0, 1]], lib.ones(2, 3), (2, 3)).transpose(0, 1),
    lambda lib: _uncoalesced(lib).clone().mul_(2),
    lambda lib: _uncoalesced(lib).clone().div_(2),
    lambda lib: _uncoalesced(lib).clone().mul_(lib.full((2, 3), 3.0)),
    lambda lib: _uncoalesced(lib).clone().add_(_other(lib)),
    lambda lib: _uncoalesced(lib).clone().sub_(_other(lib), alpha=2),
    lambda lib: _uncoalesced(lib).clone().t_(),
    lambda lib: _uncoalesced(lib).clone().transpose_(1, 0),
], ids=["clone", "clone-coalesced", "detach", "mul-broadcast-row", "mul-dense-coalesced", "dense-times-sparse",
        "mul-0d", "mul-promotes", "sparse-mm-sparse", "matmul-cancelling", "mm-shape-mismatch",
        "transpose-dense-dim", "mul_", "div_", "mul_-dense", "add_", "sub_-alpha", "t_", "transpose_"])
def test_more_sparse_ops_stay_sparse_as_torch(call):
    # adj.clone(), adj * edge_weights, adj @ adj (two hops) and in-place updates of a sparse
    # adjacency: torch keeps them sparse; in place, chainrule's parts and dense backing must agree
    def run(lib):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call(lib)
            return _sparse_summary(result), result.to_dense().tolist() if result.is_sparse else None

    expected = _outcome(torch, run)
    assert _outcome(chainrule, run) == expected


# ----------------------------------------------------------------- broadcasting errors (distributions_vi)

@pytest.mark.parametrize("call", [
    lambda lib: lib.broadcast_shapes((2,), (3,)),
    lambda lib: lib.broadcast_shapes((2, 1), (3,), (4,)),
    lambda lib: lib.broadcast_shapes(),
    lambda lib: lib.broadcast_shapes(3, (1, 3)),
    lambda lib: lib.broadcast_shapes((2,), None),
    lambda lib: lib.broadcast_shapes((4, 2), (3, 1)),
    lambda lib: lib.broadcast_shapes((1,), (-1,)),
    lambda lib: lib.broadcast_shapes((2,), (0,)),
    lambda lib: lib.broadcast_shapes(2.5),
    lambda lib: lib.broadcast_tensors(lib.zeros(2), lib.ones(3)),
    lambda lib: lib.broadcast_tensors(lib.zeros(2, 1), lib.ones(3), lib.ones(4)),
    lambda lib: lib.broadcast_tensors(lib.zeros(2, 3), lib.ones(3, 2)),
    lambda lib: lib.broadcast_tensors(lib.zeros(2, 1), lib.ones(1, 3)),
    lambda lib: lib.distributions.utils.broadcast_all(lib.zeros(2), lib.ones(3)),
], ids=["shapes-1d", "shapes-three", "shapes-none-given", "shapes-int", "shapes-None", "shapes-2d", "shapes-negative",
        "shapes-zero", "shapes-float", "tensors-1d", "tensors-three", "tensors-2d", "tensors-ok", "broadcast_all"])
def test_broadcast_shapes_and_tensors_fail_with_torchs_text(call):
    # Normal(torch.zeros(2), torch.ones(3)) and friends: torch's broadcast_tensors names the two sizes and
    # the dim (infer_size), broadcast_shapes the argument (torch._refs._broadcast_shapes)
    def run(lib):
        result = call(lib)
        return ("size", tuple(result)) if isinstance(result, lib.Size) else [tuple(t.shape) for t in result]

    expected = _outcome(torch, run)
    assert _outcome(chainrule, run) == expected


@pytest.mark.parametrize("keyword", ["covariance_matrix", "precision_matrix", "scale_tril"])
def test_multivariate_normal_refuses_a_1d_matrix_with_torchs_text(keyword):
    def run(lib):
        return lib.distributions.MultivariateNormal(lib.zeros(2), **{keyword: lib.ones(2)})

    expected = _outcome(torch, run)
    outcome = _outcome(chainrule, run)
    # torch's bare text: it names the argument already (chainrule._naming.in_torchs_words)
    assert outcome[0] is expected[0] is ValueError and outcome[1] == expected[1]


def test_multivariate_normal_matrix_of_the_wrong_size_fails_validation_as_torch():
    # torch expands the matrix by (-1, -1): a 3x3 scale_tril beside a 2-vector loc reaches the
    # constraint check (ValueError), where chainrule's expand to (2, 2) raised a RuntimeError
    def run(lib):
        return lib.distributions.MultivariateNormal(lib.zeros(2), scale_tril=lib.ones(3, 3), validate_args=True)

    expected = _outcome(torch, run)
    outcome = _outcome(chainrule, run)
    assert outcome[0] is expected[0] is ValueError
    assert outcome[1].split("to satisfy the constraint")[1] == expected[1].split("to satisfy the constraint")[1]


def test_masked_select_of_unbroadcastable_shapes_names_mask_first_as_torch():
    # torch expands (mask, self) in that order: tensor a is the mask
    def run(lib):
        return lib.masked_select(lib.ones(2, 3), lib.ones(3, 2, dtype=lib.bool))

    expected = _outcome(torch, run)
    assert expected[0] is RuntimeError and _outcome(chainrule, run) == expected
