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
