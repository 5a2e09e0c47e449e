"""Differences from torch closed by the s42 mend lane mendAA, each checked against torch itself."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _node_names(t):
    """The output's node name and its next functions' names (one level of torch's graph)."""
    node = t.grad_fn
    return node.name(), tuple(None if n is None else n.name() for n, _ in node.next_functions)


def _both(fn):
    """fn run on torch and on chainrule with the same float64 input (3 steps, 2 sequences, 4 features)."""
    data = np.random.default_rng(0).standard_normal((3, 2, 4))
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor(data, requires_grad=True)
        results.append((x, fn(lib, x)))
    return results


PACKINGS = {
    "pack sorted": lambda lib, x: lib.nn.utils.rnn.pack_padded_sequence(x, [3, 2]).data,
    "pack batch_first": lambda lib, x: lib.nn.utils.rnn.pack_padded_sequence(x, [2, 1, 1], batch_first=True).data,
    "pack unsorted": lambda lib, x: lib.nn.utils.rnn.pack_padded_sequence(x, [2, 3], enforce_sorted=False).data,
    "pack_sequence": lambda lib, x: lib.nn.utils.rnn.pack_sequence([x[:, 0], x[:2, 1]]).data,
    "pad_packed": lambda lib, x: lib.nn.utils.rnn.pad_packed_sequence(
        lib.nn.utils.rnn.pack_padded_sequence(x, [3, 1]))[0],
    "pad_packed batch_first": lambda lib, x: lib.nn.utils.rnn.pad_packed_sequence(
        lib.nn.utils.rnn.pack_padded_sequence(x, [3, 2]), batch_first=True)[0],
    "pad_packed total_length": lambda lib, x: lib.nn.utils.rnn.pad_packed_sequence(
        lib.nn.utils.rnn.pack_padded_sequence(x, [3, 2]), total_length=5, padding_value=-1.5)[0],
    "pad_packed unsorted": lambda lib, x: lib.nn.utils.rnn.pad_packed_sequence(
        lib.nn.utils.rnn.pack_padded_sequence(x, [1, 3], enforce_sorted=False), batch_first=True)[0],
}


@pytest.mark.parametrize("case", PACKINGS)
def test_packing_records_torchs_nodes_with_its_values_and_gradients(case):
    (tx, t_out), (cx, c_out) = _both(PACKINGS[case])
    assert _node_names(c_out) == _node_names(t_out)
    np.testing.assert_array_equal(c_out.detach().numpy(), t_out.detach().numpy())
    weights = np.arange(t_out.numel(), dtype=np.float64).reshape(tuple(t_out.shape))
    (t_out * torch.tensor(weights)).sum().backward()
    (c_out * chainrule.tensor(weights)).sum().backward()
    np.testing.assert_array_equal(cx.grad.numpy(), tx.grad.numpy())


def test_pack_padded_sequence_saves_torchs_attributes():
    (_, t_out), (_, c_out) = _both(PACKINGS["pack sorted"])
    t_node, c_node = t_out.grad_fn, c_out.grad_fn
    assert c_node._saved_batch_first == t_node._saved_batch_first
    assert tuple(c_node._saved_input_sym_sizes) == tuple(t_node._saved_input_sym_sizes)
    assert c_node._saved_result1.tolist() == t_node._saved_result1.tolist()


def test_a_length_beyond_the_padded_length_packs_as_torchs():
    # torch counts the steps beyond the padded length in batch_sizes; its data stops at the padding
    (_, t_packed), (_, c_packed) = _both(lambda lib, x: lib.nn.utils.rnn.pack_padded_sequence(x, [5, 2]))
    assert c_packed.batch_sizes.tolist() == t_packed.batch_sizes.tolist()
    np.testing.assert_array_equal(c_packed.data.detach().numpy(), t_packed.data.detach().numpy())
    errors = []
    for lib, packed in ((torch, t_packed), (chainrule, c_packed)):
        with pytest.raises(RuntimeError) as caught:
            lib.nn.utils.rnn.pad_packed_sequence(packed)
        errors.append(str(caught.value))
    assert errors[1] == errors[0]


def _sparse_operands(lib):
    values = lib.tensor([1.0, 2.0])
    return {"vector": lib.sparse_coo_tensor(lib.tensor([[0, 2]]), values, (3,)),
            "matrix": lib.sparse_coo_tensor(lib.tensor([[0, 1], [1, 2]]), values, (2, 3)),
            "dense vector": lib.tensor([1.0, 2.0, 3.0]), "dense matrix": lib.ones(2, 3)}


SPARSE_PRODUCTS = {
    "vector @ dense vector": lambda lib, o: o["vector"] @ o["dense vector"],
    "dense vector @ vector": lambda lib, o: o["dense vector"] @ o["vector"],
    "vector @ vector": lambda lib, o: o["vector"] @ o["vector"],
    "matmul(vector, dense vector)": lambda lib, o: lib.matmul(o["vector"], o["dense vector"]),
    "matrix @ vector": lambda lib, o: o["matrix"] @ o["vector"],
    "dot(vector, dense vector)": lambda lib, o: lib.dot(o["vector"], o["dense vector"]),
    "dot(dense vector, vector)": lambda lib, o: lib.dot(o["dense vector"], o["vector"]),
    "dot of mismatched lengths": lambda lib, o: lib.dot(o["vector"], lib.ones(4)),
    "Tensor.dot": lambda lib, o: o["vector"].dot(o["dense vector"]),
    "vdot(vector, dense vector)": lambda lib, o: lib.vdot(o["vector"], o["dense vector"]),
    "inner(vector, dense vector)": lambda lib, o: lib.inner(o["vector"], o["dense vector"]),
    "inner(matrix, dense vector)": lambda lib, o: lib.inner(o["matrix"], o["dense vector"]),
    "inner(dense matrix, vector)": lambda lib, o: lib.inner(o["dense matrix"], o["vector"]),
    "mv(matrix, vector)": lambda lib, o: lib.mv(o["matrix"], o["vector"]),
    "addmv(sparse matrix)": lambda lib, o: lib.addmv(lib.zeros(2), o["matrix"], o["dense vector"]),
    "addmv(sparse vector)": lambda lib, o: lib.addmv(lib.zeros(2), o["dense matrix"], o["vector"]),
    "matrix @ 2": lambda lib, o: o["matrix"] @ 2,
    "2 @ matrix": lambda lib, o: 2 @ o["matrix"],
    "vector @ 2.5": lambda lib, o: o["vector"] @ 2.5,
    "None @ vector": lambda lib, o: None @ o["vector"],
}


def _first_sentences(message: str) -> str:
    # torch's "Could not run" goes on to list its backends: its first sentences are compared
    return message.split(" custom build).")[0]


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's beta warning for sparse construction
@pytest.mark.parametrize("case", SPARSE_PRODUCTS)
def test_sparse_products_torch_refuses_raise_its_error(case):
    errors = []
    for lib in (torch, chainrule):
        with pytest.raises(Exception) as caught:
            SPARSE_PRODUCTS[case](lib, _sparse_operands(lib))
        errors.append((type(caught.value).__name__, _first_sentences(str(caught.value))))
    assert errors[1] == errors[0]


SPARSE_PRODUCTS_COMPUTED = {
    "vector @ dense matrix": lambda lib, o: o["vector"] @ o["dense matrix"].t(),
    "dense matrix @ vector": lambda lib, o: o["dense matrix"] @ o["vector"],
    "mv(dense matrix, vector)": lambda lib, o: lib.mv(o["dense matrix"], o["vector"]),
    "matrix @ dense vector": lambda lib, o: o["matrix"] @ o["dense vector"],
    "matrix @ matrix.t()": lambda lib, o: (o["matrix"] @ o["matrix"].t()).to_dense(),
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("case", SPARSE_PRODUCTS_COMPUTED)
def test_sparse_products_torch_computes_still_compute(case):
    results = [SPARSE_PRODUCTS_COMPUTED[case](lib, _sparse_operands(lib)).tolist() for lib in (torch, chainrule)]
    assert results[1] == results[0]


def test_a_sparse_tensors_type_is_named_tensor_as_torchs():
    assert type(chainrule.ones(2).to_sparse()).__name__ == type(torch.ones(2).to_sparse()).__name__
    assert chainrule.ones(2).to_sparse().__matmul__(2) is NotImplemented


def _signature_or_none(function):
    import inspect

    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a C built-in of torch's with no signature
        return None
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_every_functional_signature_torch_has_is_torchs():
    names = [name for name in dir(torch.nn.functional) if not name.startswith("_")
             and callable(getattr(torch.nn.functional, name)) and hasattr(chainrule.nn.functional, name)]
    compared, differing = 0, []
    for name in names:
        expected = _signature_or_none(getattr(torch.nn.functional, name))
        if expected is None:
            continue
        compared += 1
        if _signature_or_none(getattr(chainrule.nn.functional, name)) != expected:
            differing.append(name)
    assert compared >= 90 and not differing, differing


def test_functional_keywords_torch_names_bind():
    weight = np.arange(12.0).reshape(4, 3)
    indices = [[0, 3], [2, 1]]
    results = [lib.nn.functional.embedding(input=lib.tensor(indices), weight=lib.tensor(weight)).numpy()
               for lib in (torch, chainrule)]
    np.testing.assert_array_equal(results[1], results[0])
    for lib in (torch, chainrule):  # margin's default is torch's int 0, the loss unchanged
        x1, x2, y = lib.tensor([0.5, -1.0]), lib.tensor([0.25, 2.0]), lib.tensor([1.0, -1.0])
        assert lib.nn.functional.margin_ranking_loss(x1, x2, y).item() == 0.0
    # torch's max_pool2d is a boolean_dispatch of (*args, **kwargs); its keywords still bind
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    pooled = [lib.nn.functional.max_pool2d(input=lib.tensor(x), kernel_size=2, return_indices=True)[1].numpy()
              for lib in (torch, chainrule)]
    np.testing.assert_array_equal(pooled[1], pooled[0])


def _raised(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001  (the class is what is compared)
        return type(error), str(error)
    return None


@pytest.mark.parametrize("operator", ["__rmul__", "__radd__", "__mul__", "__add__"])
def test_reflected_operators_called_unbound_name_themselves(operator):
    expected = _raised(lambda: getattr(torch.Tensor, operator)())
    assert expected is not None and operator in expected[1]
    assert _raised(lambda: getattr(chainrule.Tensor, operator)()) == expected


def test_reflected_operators_keep_their_values_and_nodes():
    for lib in (torch, chainrule):
        x = lib.tensor([1.5, -2.0], requires_grad=True)
        product, total = 3 * x, 2.5 + x
        assert (product.grad_fn.name(), total.grad_fn.name()) == ("MulBackward0", "AddBackward0")
        assert product.tolist() == [4.5, -6.0] and total.tolist() == [4.0, 0.5]


SIZES = {
    "a string": "ab", "an empty string": "", "bytes": b"ab", "a float": [1.5], "a string item": ["a"],
    "a bool": [True], "a negative size": [-1], "an integer tensor": "tensor([2, 3])",
    "a 0-d integer tensor": "[tensor(2)]", "a float tensor": "[tensor(2.)]", "a numpy integer": [np.int64(3)],
    "a numpy float": [np.float64(2.0)], "a generator": "generator",
    "a range": range(3), "an int": 3, "None": None,
}


def _size_argument(lib, spec):
    if spec == "tensor([2, 3])":
        return lib.tensor([2, 3])
    if spec == "[tensor(2)]":
        return [lib.tensor(2)]
    if spec == "[tensor(2.)]":
        return [lib.tensor(2.0)]
    if spec == "generator":
        return (n for n in (1, 2))
    return spec


@pytest.mark.parametrize("case", SIZES)
def test_size_takes_what_torchs_takes(case):
    outcomes = []
    for lib in (torch, chainrule):
        try:
            outcomes.append(("made", list(lib.Size(_size_argument(lib, SIZES[case])))))
        except (TypeError, ValueError) as error:
            outcomes.append((type(error), str(error)))
    assert outcomes[1] == outcomes[0]
    if outcomes[0][0] == "made":
        assert all(type(size) is int for size in chainrule.Size(_size_argument(chainrule, SIZES[case])))
