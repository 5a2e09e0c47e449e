"""Session 45, lane progBZ: gaps found around the corpus programs lstnet_skip_rnn, node_oblivious_trees
and dgi_infomax, each compared with torch."""

import pytest

import chainrule

torch = pytest.importorskip("torch")

F_CR = chainrule.nn.functional
F_T = torch.nn.functional


def _outcome(lib, functional, sizes):
    """F.bilinear on zero-filled tensors of the given sizes: the output shape, or the error's type and text."""
    a, b, w, bias = (None if s is None else lib.zeros(s) for s in sizes)
    try:
        return tuple(functional.bilinear(a, b, w, bias).shape)
    except Exception as error:  # noqa: BLE001  (the error itself is what is compared)
        return type(error).__name__, str(error)


BILINEAR_SIZES = [
    ((2, 4), (2, 3), (1, 4, 4), (1,)),  # input2's features
    ((2, 3), (2, 4), (1, 4, 4), (1,)),  # input1's features
    ((2, 4), (3, 4), (1, 4, 4), (1,)),  # batch
    ((2, 5, 4), (2, 6, 4), (1, 4, 4), None),  # batch, second dim
    ((1, 2, 4), (2, 4), (1, 4, 4), (1,)),  # rank
    ((), (4,), (1, 4, 4), (1,)),
    ((), (), (1, 4, 4), (1,)),  # 0-d inputs have no last dim
    ((4,), (4,), (1, 4, 4), ()),  # 0-d bias
    ((4,), (4,), (), (1,)),  # 0-d weight
    ((2, 4), (2, 4), (1, 4), (1,)),  # 2-d weight
    ((2, 4), (2, 4), (1, 4, 4, 1), (1,)),  # 4-d weight
    ((2, 4), (2, 4), (1, 4, 5), (1,)),
    ((2, 4), (2, 4), (1, 4, 4), (2,)),  # bias size
    ((2, 4), (2, 4), (3, 4, 4), (3, 1)),  # bias passes the check, fails the broadcast
    ((2, 4), (2, 4), (1, 4, 4), (1, 1)),
    ((4,), (4,), (1, 4, 4), (1,)),
    ((2, 3, 4), (2, 3, 5), (2, 4, 5), (2,)),
]


@pytest.mark.parametrize("sizes", BILINEAR_SIZES, ids=str)
def test_bilinear_checks_as_torch(sizes):
    assert _outcome(chainrule, F_CR, sizes) == _outcome(torch, F_T, sizes)


def test_bilinear_refuses_bool_as_torch():
    sizes = ((2, 3), (2, 4), (5, 3, 4), (5,))
    with pytest.raises(NotImplementedError) as theirs:
        F_T.bilinear(*(torch.ones(s, dtype=torch.bool) for s in sizes))
    with pytest.raises(NotImplementedError) as ours:
        F_CR.bilinear(*(chainrule.ones(s, dtype=chainrule.bool) for s in sizes))
    assert str(ours.value) == str(theirs.value)


def test_bilinear_values_and_grads_unchanged():
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(s, generator=g, dtype=torch.float64) for s in ((2, 3, 4), (2, 3, 5), (6, 4, 5), (6,))]
    ours = [chainrule.tensor(t.numpy(), requires_grad=True) for t in tensors]
    theirs = [t.clone().requires_grad_(True) for t in tensors]
    out_c, out_t = F_CR.bilinear(*ours), F_T.bilinear(*theirs)
    out_c.sum().backward()
    out_t.sum().backward()
    assert out_c.detach().numpy() == pytest.approx(out_t.detach().numpy(), abs=1e-12)
    for c, t in zip(ours, theirs):
        assert c.grad.numpy() == pytest.approx(t.grad.numpy(), abs=1e-12)
    assert chainrule.autograd.gradcheck(F_CR.bilinear, tuple(ours))


def test_bilinear_module_in1_features_error_in_torchs_words():
    with pytest.raises(ValueError) as theirs:
        torch.nn.Bilinear(0, 4, 2)
    with pytest.raises(ValueError) as ours:
        chainrule.nn.Bilinear(0, 4, 2)
    assert str(ours.value) == str(theirs.value)


def _sparse(lib):
    return lib.sparse_coo_tensor([[0, 1, 1, 2], [1, 0, 2, 2]], [1.0, 2.0, 3.0, 4.0], (3, 3), check_invariants=True)


SPARSE_SHAPE_METHODS = {
    "view": lambda s: s.view(9),
    "view_same": lambda s: s.view(3, 3),
    "view_dtype": lambda s: s.view(s.dtype),
    "view_as": lambda s: s.view_as(s),
    "unflatten": lambda s: s.unflatten(1, (3, 1)),
    "reshape": lambda s: s.reshape(9),
    "reshape_same": lambda s: s.reshape(3, 3),
    "reshape_as": lambda s: s.reshape_as(s),
    "flatten": lambda s: s.flatten(),
    "flatten_one_dim": lambda s: s.flatten(1, 1),
    "expand": lambda s: s.expand(2, 3, 3),
    "expand_same": lambda s: s.expand(3, 3),
    "expand_as": lambda s: s.expand_as(s),
    "repeat": lambda s: s.repeat(1, 1),
    "flip": lambda s: s.flip(0),
    "roll": lambda s: s.roll(1, 0),
    "T": lambda s: s.T,
    "mT": lambda s: s.mT,
    "T_to_dense": lambda s: s.T.to_dense(),
    "mT_to_dense": lambda s: s.mT.to_dense(),
}


def _sparse_outcome(lib, method):
    s = _sparse(lib)
    try:
        result = method(s)
    except Exception as error:  # noqa: BLE001  (the error itself is what is compared)
        # torch's dispatcher goes on after the sentence to its build notes and the list of backends
        return type(error).__name__, str(error).split(" If you are a Facebook employee")[0]
    return str(result.layout).split(".")[-1], tuple(result.shape), result is s, result.to_dense().tolist()


def test_sparse_coo_T_keeps_the_gradient():
    values_c = chainrule.tensor([1.0, 2.0, 3.0, 4.0], dtype=chainrule.float64, requires_grad=True)
    values_t = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
    weight = [[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]]
    for lib, values in ((chainrule, values_c), (torch, values_t)):
        s = lib.sparse_coo_tensor([[0, 1, 1, 2], [1, 0, 2, 2]], values, (3, 3), check_invariants=True)
        lib.sparse.mm(s.T, lib.tensor(weight, dtype=lib.float64)).pow(2).sum().backward()
    assert values_c.grad.tolist() == pytest.approx(values_t.grad.tolist(), abs=1e-12)


@pytest.mark.parametrize("name", SPARSE_SHAPE_METHODS)
def test_sparse_coo_shape_methods_as_torch(name):
    method = SPARSE_SHAPE_METHODS[name]
    assert _sparse_outcome(chainrule, method) == _sparse_outcome(torch, method)
