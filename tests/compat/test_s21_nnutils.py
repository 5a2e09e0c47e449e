"""Session 21's nn.utils and nn.Module API fixes, each against torch (tools/torch_nn_utils_trial.py
found them): the same seeded code run on both libraries gives the same values, names and errors."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")
pytest.importorskip("torch.nn.utils.prune")  # a submodule torch.nn.utils does not import itself


def _both(build):
    """``build(lib)`` on chainrule and on torch, each seeded alike."""
    results = []
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        results.append(build(lib))
    return results


def _close(mine, theirs, atol=1e-5):
    np.testing.assert_allclose(mine.detach().numpy(), theirs.detach().numpy(), rtol=1e-4, atol=atol)


@pytest.mark.parametrize(("shape", "orthogonal_map"), [((4, 4), None), ((3, 5), "cayley"), ((5, 3), None),
                                                       ((5, 3), "matrix_exp")])
def test_orthogonal_parametrization_matches_torch(shape, orthogonal_map):
    def build(lib):
        layer = lib.nn.Linear(shape[1], shape[0])
        lib.nn.utils.parametrizations.orthogonal(layer, orthogonal_map=orthogonal_map)
        x = lib.randn(2, shape[1])
        out = layer(x)
        (out * out).sum().backward()
        return layer, out

    (mine, mine_out), (theirs, theirs_out) = _both(build)
    assert list(mine.state_dict()) == list(theirs.state_dict()) == [
        "bias", "parametrizations.weight.original", "parametrizations.weight.0.base"]
    _close(mine.weight, theirs.weight)
    _close(mine_out, theirs_out)
    _close(mine.parametrizations.weight.original.grad, theirs.parametrizations.weight.original.grad)
    w = mine.weight.detach().numpy()
    gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-5)


def test_orthogonal_householder_without_trivialization_and_errors():
    def build(lib):
        layer = lib.nn.utils.parametrizations.orthogonal(lib.nn.Linear(3, 5), orthogonal_map="householder",
                                                         use_trivialization=False)
        with lib.no_grad():
            layer.weight = lib.linalg.qr(lib.randn(5, 3))[0]
        return layer

    mine, theirs = _both(build)
    assert [n for n, _ in mine.named_buffers()] == [n for n, _ in theirs.named_buffers()] == []
    _close(mine.weight, theirs.weight)
    orthogonal = chainrule.nn.utils.parametrizations.orthogonal
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices. Got a tensor of 1 dimensions"):
        orthogonal(chainrule.nn.Linear(2, 2), "bias")
    with pytest.raises(ValueError, match='orthogonal_map has to be one of "matrix_exp", "cayley", "householder"'):
        orthogonal(chainrule.nn.Linear(2, 2), orthogonal_map="qr")
    # torch registers it (its ParametrizationList takes right_inverse's NotImplementedError for the
    # identity) and refuses only an assignment to the weight
    layer = orthogonal(chainrule.nn.Linear(2, 2), use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"), chainrule.no_grad():
        layer.weight = chainrule.eye(2)


@pytest.mark.parametrize(("method", "kwargs"), [("random_unstructured", {"amount": 0.3}),
                                                ("random_unstructured", {"amount": 7}),
                                                ("random_structured", {"amount": 0.5, "dim": 0}),
                                                ("random_structured", {"amount": 2, "dim": 1})])
def test_seeded_random_pruning_chooses_torchs_entries(method, kwargs):
    def build(lib):
        layer = lib.nn.Linear(5, 4)
        lib.manual_seed(3)
        getattr(lib.nn.utils.prune, method)(layer, "weight", **kwargs)
        # pruning again chooses among what is left: the container's draw is seeded alike too
        lib.nn.utils.prune.random_unstructured(layer, "weight", amount=2)
        return layer.weight_mask

    mine, theirs = _both(build)
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_packed_sequence_conversions_and_constructor_match_torch():
    def build(lib):
        rnn = lib.nn.utils.rnn
        packed = rnn.pack_sequence([lib.randn(1, 2), lib.randn(3, 2)], enforce_sorted=False)
        as_double = packed.to(lib.float64)
        inferred = rnn.PackedSequence(lib.arange(6.0), lib.tensor([3, 2, 1]), lib.tensor([2, 0, 1]))
        pair = rnn.PackedSequence((lib.arange(3.0), lib.tensor([2, 1])))
        return {"type": type(as_double).__name__, "same": packed.to(lib.float32) is packed,
                "dtypes": [str(p.data.dtype).rpartition(".")[2] for p in (as_double, packed.double(), packed.half(),
                                                                          packed.float(), packed.long(), packed.cpu())],
                "double_data": as_double.data.tolist(), "indices": as_double.sorted_indices.tolist(),
                "is_cuda": packed.is_cuda, "is_pinned": packed.is_pinned(),
                "inferred": inferred.unsorted_indices.tolist(), "pair": [pair.data.tolist(), pair.batch_sizes.tolist()]}

    mine, theirs = _both(build)
    assert mine == theirs
    assert mine["inferred"] == [1, 2, 0] and mine["dtypes"][0] == "float64"


def _net(lib):
    net = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.BatchNorm1d(2))
    net.register_buffer("steps", lib.tensor(0))
    return net


def _raised(call):
    try:
        call()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return None


def test_get_and_set_submodule_errors_match_torch():
    def build(lib):
        net, tanh = _net(lib), lib.nn.Tanh()
        calls = [lambda: net.get_submodule("0.weight"), lambda: net.get_submodule("7"),
                 lambda: net.get_parameter("0.nope"), lambda: net.get_parameter("steps"),
                 lambda: net.get_buffer("0.weight"), lambda: net.set_submodule("", tanh),
                 lambda: net.set_submodule("0", 3), lambda: net.set_submodule("x.y", tanh),
                 lambda: net.set_submodule("0.weight", tanh), lambda: net.set_submodule("2", tanh, strict=True)]
        raised = [_raised(call) for call in calls]
        net.set_submodule("1", tanh)
        net.set_submodule("extra", lib.nn.ReLU())
        return raised + [[name for name, _ in net.named_children()], type(net[1]).__name__]

    mine, theirs = _both(build)
    assert mine == theirs
    assert mine[0] == ("AttributeError", "`weight` is not an nn.Module")
    assert mine[-2:] == [["0", "1", "extra"], "Tanh"]


def test_sequential_multiplication_matches_torch():
    def build(lib):
        seq = lib.nn.Sequential(lib.nn.ReLU(), lib.nn.Tanh())
        doubled, tripled = seq * 2, 3 * seq
        shares = doubled[2] is seq[0]
        errors = [_raised(lambda: seq * "a"), _raised(lambda: seq * 0), _raised(lambda: seq * 2.0)]
        seq *= 2
        return [repr(doubled), len(tripled), shares, repr(seq), errors]

    mine, theirs = _both(build)
    assert mine == theirs
    assert mine[1] == 6 and mine[-1][1] == (
        "ValueError", "Non-positive multiplication factor 0 for <class 'torch.nn.modules.container.Sequential'>")


def test_pad_sequence_refuses_zero_dim_sequences_as_torch():
    for lib in (chainrule, torch):
        with pytest.raises(RuntimeError):
            lib.nn.utils.rnn.pad_sequence([lib.tensor(1.0)])
    for lib in (chainrule, torch):  # a later one: torch's size(0) of it raises (test_s40_progBN)
        with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
            lib.nn.utils.rnn.pad_sequence([lib.ones(2), lib.tensor(1.0)])


def test_reprs_of_rnn_bias_and_triplet_distance_default_match_torch():
    def build(lib):
        loss = lib.nn.TripletMarginWithDistanceLoss()
        anchor, positive, negative = lib.randn(3, 4), lib.randn(3, 4), lib.randn(3, 4)
        return [repr(loss), repr(lib.nn.RNNCellBase(4, 4, 3, 3)), repr(lib.nn.GRU(2, 3, bias=False)),
                [name for name, _ in loss.named_children()], loss(anchor, positive, negative).item()]

    mine, theirs = _both(build)
    assert mine[:4] == theirs[:4]
    assert mine[0] == "TripletMarginWithDistanceLoss(\n  (distance_function): PairwiseDistance()\n)"
    assert mine[4] == pytest.approx(theirs[4], rel=1e-5)


def test_older_weight_norm_warns_future_warning_as_torch():
    for lib in (chainrule, torch):
        with pytest.warns(FutureWarning, match=r"`torch.nn.utils.weight_norm` is deprecated in favor of "
                                               r"`torch.nn.utils.parametrizations.weight_norm`") as record:
            lib.nn.utils.weight_norm(lib.nn.Linear(2, 2))
        # both name weight_norm's own line (torch deprecates WeightNorm.apply, which it calls), so the
        # warning shows once per process, not once per call site (test_s44_progBS)
        assert record[0].filename.endswith("weight_norm.py")


def test_weight_norm_parametrization_loads_an_older_weight_norm_state_dict():
    def build(lib):
        old = lib.nn.Linear(4, 3)
        with pytest.warns(FutureWarning):
            lib.nn.utils.weight_norm(old)
        new = lib.nn.utils.parametrizations.weight_norm(lib.nn.Linear(4, 3))
        result = new.load_state_dict(old.state_dict())
        return new, old, result

    (mine, mine_old, result), (theirs, _, _) = _both(build)
    assert list(result.missing_keys) == list(result.unexpected_keys) == []
    assert list(mine.state_dict()) == list(theirs.state_dict())
    _close(mine.weight, theirs.weight)
    _close(mine.weight, mine_old.weight)


def test_functional_call_refuses_two_values_for_one_tied_weight():
    def build(lib):
        model = lib.nn.Sequential(lib.nn.Linear(3, 3), lib.nn.Linear(3, 3))
        model[1].weight = model[0].weight
        eye, x = lib.eye(3), lib.ones(1, 3)
        same_object = lib.func.functional_call(model, {"0.weight": eye, "1.weight": eye}, x)
        untied = lib.func.functional_call(model, {"0.weight": eye, "1.weight": eye.clone()}, x, tie_weights=False)
        return same_object, untied, _raised(lambda: lib.func.functional_call(
            model, {"1.weight": eye, "0.weight": lib.ones(3, 3)}, x))

    (mine, mine_untied, mine_error), (theirs, theirs_untied, theirs_error) = _both(build)
    _close(mine, theirs)
    _close(mine_untied, theirs_untied)
    assert mine_error == theirs_error == ("ValueError", "functional_call got multiple values for keys "
                                          "['0.weight', '1.weight'], which are tied. Consider using tie_weights=False")


def test_vector_to_parameters_refuses_a_short_vector_before_writing():
    # torch's error is the view of the second slice failing (after the first parameter was written);
    # chainrule raises the same text before writing anything
    params = [chainrule.ones(2), chainrule.ones(3)]
    with pytest.raises(RuntimeError) as mine:
        chainrule.nn.utils.vector_to_parameters(chainrule.zeros(3), params)
    assert params[0].tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.utils.vector_to_parameters(torch.zeros(3), [torch.ones(2), torch.ones(3)])
    assert str(mine.value) == str(theirs.value) == "shape '[3]' is invalid for input of size 1"


def test_rnn_utils_invert_permutation_empty_pack_and_pad_dtype_match_torch():
    def build(lib):
        rnn = lib.nn.utils.rnn
        mixed = rnn.pad_sequence([lib.ones(2, dtype=lib.int64), lib.full((3,), 2.5)], padding_value=-1.5)
        return [rnn.invert_permutation(lib.tensor([2, 0, 1])).tolist(), rnn.invert_permutation(None),
                _raised(lambda: rnn.pack_padded_sequence(lib.ones(3, 0, 1), [])),
                str(mixed.dtype).rpartition(".")[2], mixed.tolist()]

    mine, theirs = _both(build)
    assert mine == theirs
    assert mine[2] == ("RuntimeError", "Cannot pack empty tensors.") and mine[3] == "int64"


def test_module_to_positional_non_blocking_and_deprecation_warnings_match_torch():
    def build(lib):
        with pytest.warns(UserWarning, match="Complex modules are a new feature") as record:
            complex_dtype = lib.nn.Linear(2, 2).to(lib.complex64).weight.dtype
        with pytest.warns(FutureWarning, match="Positional args are being deprecated"):
            keys = list(lib.nn.Linear(2, 2).state_dict(None, "a."))
        double = lib.nn.Linear(2, 2).to("cpu", lib.float64, True).weight.dtype
        return [str(dtype).rpartition(".")[2] for dtype in (complex_dtype, double)] + [keys, len(record)]

    mine, theirs = _both(build)
    assert mine == theirs == ["complex64", "float64", ["a.weight", "a.bias"], 1]


def test_pruning_a_none_parameter_raises_type_error_and_changes_nothing():
    layer = chainrule.nn.Linear(3, 2, bias=False)
    for lib, module in ((chainrule, layer), (torch, torch.nn.Linear(3, 2, bias=False))):
        with pytest.raises(TypeError):
            lib.nn.utils.prune.l1_unstructured(module, "bias", amount=1)
    assert [name for name, _ in layer.named_parameters()] == ["weight"] and not layer._forward_pre_hooks
