"""Session 19, signatures: keyword forms and defaults torch code relies on, called on torch 2.13
and on chainrule with the same arguments (found by tools/torch_signature_trial.py)."""

import inspect
import warnings

import numpy as np
import pytest

import chainrule
from tests.compat.trial_tools import load_tool

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    """What ``call`` gives on ``lib``: ("ok", values, gradient) or ("raised", type, message)."""
    x = lib.arange(24.0, dtype=lib.float64).reshape(2, 3, 4).requires_grad_(True)
    try:
        y = call(lib, x)
    except Exception as error:
        return "raised", type(error).__name__, str(error)
    y.backward(lib.ones_like(y) * lib.arange(float(y.numel()), dtype=y.dtype).reshape(y.shape))
    return "ok", y.detach().numpy().copy(), x.grad.numpy().copy()


def _assert_same(call):
    expected, actual = _outcome(torch, call), _outcome(chainrule, call)
    assert expected[0] == actual[0], (expected, actual)
    if expected[0] == "raised":  # torch goes on to list its overloads; the first sentence is compared
        assert (expected[1], _message_head(expected[2])) == (actual[1], _message_head(actual[2]))
    else:
        np.testing.assert_array_equal(actual[1], expected[1])
        np.testing.assert_array_equal(actual[2], expected[2])


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.linalg.diagonal(x),
    lambda lib, x: lib.linalg.diagonal(x, offset=1),
    lambda lib, x: lib.linalg.diagonal(A=x, dim1=0, dim2=2),
    lambda lib, x: lib.linalg.diagonal(x, 1),  # offset is keyword-only in torch.linalg
], ids=["defaults", "offset", "keywords", "positional_offset"])
def test_linalg_diagonal_takes_the_last_two_dims_by_default(call):
    # torch.diagonal's dims default to 0 and 1, torch.linalg.diagonal's to -2 and -1
    _assert_same(call)


@pytest.mark.parametrize("call", [
    lambda lib, x: x.reshape(shape=(4, 6)),
    lambda lib, x: lib.reshape(x, shape=[6, -1]),
    lambda lib, x: x.reshape(4, shape=(4, 6)),
    lambda lib, x: x.reshape(shape=24),
    lambda lib, x: x.view(size=(6, 4)),
    lambda lib, x: x.view(3, size=(6, 4)),
    lambda lib, x: x.permute(dims=(2, 0, 1)),
    lambda lib, x: lib.permute(x, dims=[1, 2, 0]),
    lambda lib, x: x.permute(1, dims=(2, 0, 1)),
    lambda lib, x: x[:1].expand(size=(3, 3, 4)),
    lambda lib, x: x.repeat(repeats=(1, 2, 1, 1)),
], ids=["reshape", "torch_reshape", "reshape_twice", "reshape_int", "view", "view_twice", "permute",
        "torch_permute", "permute_twice", "expand", "repeat"])
def test_a_shape_passed_by_its_keyword(call):
    _assert_same(call)


def test_view_takes_its_dtype_by_keyword():
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = torch.from_numpy(values).view(dtype=torch.int32)
    actual = chainrule.from_numpy(values).view(dtype=chainrule.int32)
    assert actual.dtype == chainrule.int32
    np.testing.assert_array_equal(actual.numpy(), expected.numpy())


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.max(x, other=x.flip(0)),
    lambda lib, x: x.min(other=x.flip(2)),
    lambda lib, x: lib.max(input=x, other=x.flip(1)),
    lambda lib, x: lib.max(x, dim=1, other=x),
    lambda lib, x: x.min(keepdim=True, other=x),
], ids=["max_other", "min_other_method", "max_all_keywords", "max_other_and_dim", "min_other_and_keepdim"])
def test_max_and_min_name_their_second_tensor_other(call):
    _assert_same(call)


def _pieces(call):
    def joined(lib, x):
        return lib.cat([piece.reshape(-1) for piece in call(lib, x)])
    return joined


def _message_head(error) -> str:
    """An invalid-combination TypeError's first words (torch orders the keywords as the caller wrote them)."""
    return str(error).split(" - got")[0]


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.tensor_split(x, sections=3, dim=2),
    lambda lib, x: x.tensor_split(indices=[1, 3], dim=2),
    lambda lib, x: lib.tensor_split(x, tensor_indices_or_sections=lib.tensor([1]), dim=1),
    lambda lib, x: lib.hsplit(x, sections=3),
    lambda lib, x: x.hsplit(indices=(2,)),
    lambda lib, x: lib.vsplit(x, sections=2),
    lambda lib, x: x.dsplit(indices=[1]),
], ids=["tensor_split_sections", "tensor_split_indices", "tensor_split_tensor", "hsplit_sections",
        "hsplit_indices", "vsplit", "dsplit"])
def test_the_split_family_names_its_points_by_kind(call):
    _assert_same(_pieces(call))


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.hsplit(x, 3, sections=3),
    lambda lib, x: lib.vsplit(x),
    lambda lib, x: lib.tensor_split(x, sections=2, indices=[1]),
], ids=["positional_and_keyword", "none", "two_keywords"])
def test_a_split_given_no_points_or_two_is_refused(call):
    for lib in (torch, chainrule):
        x = lib.zeros(2, 3, 4)
        with pytest.raises(TypeError) as caught:
            call(lib, x)
        if lib is torch:
            expected = _message_head(caught.value)
    assert _message_head(caught.value) == expected


def test_hardtanh_takes_its_bounds_old_names_with_torchs_warning():
    values = np.linspace(-3.0, 3.0, 7, dtype=np.float32)
    outputs = []
    for lib, x in ((torch, torch.from_numpy(values)), (chainrule, chainrule.from_numpy(values))):
        with pytest.warns(FutureWarning) as caught:
            module = lib.nn.Hardtanh(min_value=-2.0, max_value=2.5)
        assert [str(warning.message) for warning in caught] == [
            "keyword argument `min_value` is deprecated and renamed to `min_val`",
            "keyword argument `max_value` is deprecated and renamed to `max_val`"]
        assert {warning.filename for warning in caught} == {__file__}  # the caller's line
        assert (module.min_val, module.max_val) == (-2.0, 2.5)
        outputs.append(module(x).numpy())
    np.testing.assert_array_equal(outputs[1], outputs[0])


def test_sync_batch_norm_takes_bias_false():
    for lib in (torch, chainrule):
        module = lib.nn.SyncBatchNorm(3, bias=False)
        assert module.bias is None and tuple(module.weight.shape) == (3,)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_take_every_documented_keyword(name):
    # torch's __init__ is (*args, **kwargs): its documented keywords are what callers write
    keywords = dict(input_size=3, hidden_size=4, num_layers=2, bias=False, batch_first=True, dropout=0.0,
                    bidirectional=True, device="cpu", dtype=None)
    keywords.update(dict(nonlinearity="relu") if name == "RNN" else dict(proj_size=2) if name == "LSTM" else {})
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        module = getattr(lib.nn, name)(**keywords)
        shapes = {key: tuple(value.shape) for key, value in module.state_dict().items()}
        if lib is torch:
            expected = shapes
    assert shapes == expected


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.linalg.norm(input=x, dim=(1, 2)),
    lambda lib, x: lib.linalg.norm(input=x[0], ord="fro"),
    lambda lib, x: lib.matrix_exp(input=x[:, :3, :3] / 20),
    lambda lib, x: lib.linalg.matrix_exp(input=x[:, :3, :3] / 20),
], ids=["linalg_norm", "linalg_norm_fro", "matrix_exp", "linalg_matrix_exp"])
def test_linalg_functions_whose_tensor_torch_calls_input(call):
    expected, actual = _outcome(torch, call), _outcome(chainrule, call)
    assert expected[0] == actual[0] == "ok", (expected, actual)
    np.testing.assert_allclose(actual[1], expected[1], rtol=1e-12)
    np.testing.assert_allclose(actual[2], expected[2], rtol=1e-10)


@pytest.mark.parametrize("call", [
    lambda lib, x: x.tile(2, 1),
    lambda lib, x: x.tile(dims=(1, 2, 1, 1)),
    lambda lib, x: x.tile(3),
    lambda lib, x: lib.tile(x, dims=2),
    lambda lib, x: x[:1, :, :1].squeeze(0, 2),
    lambda lib, x: x[:1, :, :1].squeeze(dim=(0, 2)),
    lambda lib, x: x[:1].broadcast_to(3, 3, 4),
    lambda lib, x: x[:1].broadcast_to(size=(3, 3, 4)),
], ids=["tile_spread", "tile_keyword", "tile_one", "torch_tile_int", "squeeze_spread", "squeeze_tuple",
        "broadcast_to_spread", "broadcast_to_keyword"])
def test_methods_that_take_their_dims_spread(call):
    _assert_same(call)


def test_squeeze_of_spread_dims_is_torchs_tuple_overload():
    for lib in (torch, chainrule):
        y = lib.zeros(1, 3, 1, requires_grad=True).squeeze(0, 2)
        assert type(y.grad_fn).__name__ == "SqueezeBackward2"


def test_count_nonzero_takes_its_dims_spread():
    values = np.array([[[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]]])
    expected = torch.from_numpy(values).count_nonzero(0, 2)
    actual = chainrule.from_numpy(values).count_nonzero(0, 2)
    assert actual.dtype == chainrule.int64
    np.testing.assert_array_equal(actual.numpy(), expected.numpy())


def test_cpu_and_cuda_take_torchs_keywords():
    for lib in (torch, chainrule):
        x = lib.ones(2, 3)
        assert x.cpu(memory_format=lib.contiguous_format) is x  # already there: the same tensor
        # no GPU here: both refuse for the missing device, not for the keyword
        with pytest.raises(AssertionError):
            x.cuda(non_blocking=True, memory_format=lib.preserve_format)


def test_the_signature_trial_finds_a_renamed_keyword_and_a_changed_default():
    trial = load_tool("torch_signature_trial")
    torch_side = [inspect.signature(lambda input, dim=-1, *, eps=1e-5, out=None: None)]

    def same(input, dim=-1, *, eps=1e-5, out=None, chainrule_only=False):
        ...

    def renamed(x, dim=-1, *, eps=1e-5, out=None):
        ...

    def changed(input, dim=0, *, eps=1e-5):
        ...

    assert trial.compare(torch_side, inspect.signature(same)) == []  # an extension keyword with a default is fine
    assert trial.compare(torch_side, inspect.signature(renamed)) == [
        "input: positional #0 in torch, chainrule's is 'x'", "input: keyword missing in chainrule",
        "x: required in chainrule, torch has no such parameter"]
    assert trial.compare(torch_side, inspect.signature(changed)) == [
        "dim: default torch -1, chainrule 0", "out: keyword missing in chainrule"]


def _asarray_facts(lib):
    """What torch.asarray's keywords do, observed: sharing, copying, graphs, flags and refusals."""
    facts = []
    array = np.ones(3, dtype=np.float32)
    shared, copied = lib.asarray(array, requires_grad=True), lib.asarray(array, copy=True)
    facts += [(shared.requires_grad, shared.is_leaf, np.shares_memory(array, shared.detach().numpy())),
              np.shares_memory(array, copied.numpy())]
    x = lib.ones(3, requires_grad=True)
    for keywords in (dict(copy=True, requires_grad=True), dict(copy=True, requires_grad=False),
                     dict(dtype=lib.float64, requires_grad=True)):
        y = lib.asarray(x, **keywords)
        facts.append((y is x, y.requires_grad, y.is_leaf, type(y.grad_fn).__name__))
    y = lib.asarray(x * 2, requires_grad=False)
    facts.append((y.requires_grad, y.is_leaf))
    for source in (array, x):
        with pytest.raises(ValueError) as refused, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's once-a-process "unspecified requires_grad" comes first
            lib.asarray(source, dtype=lib.float64, copy=False)
        facts.append(str(refused.value))
    with warnings.catch_warnings():  # torch's "unspecified requires_grad" warning comes once a process
        warnings.simplefilter("ignore")
        facts.append(lib.asarray(x) is x)
    y = lib.asarray(x, requires_grad=False)  # torch clears the flag of the very tensor passed
    facts.append((y is x, x.requires_grad))
    return facts


def test_asarray_takes_copy_and_requires_grad():
    assert _asarray_facts(chainrule) == _asarray_facts(torch)


def test_compile_takes_torchs_newer_keywords():
    def double(x):
        return x * 2

    keywords = dict(name="double", recompile_limit=4, isolate_recompiles=False, shapes_spec=None, backend=None)
    inspect.signature(torch.compile).bind(double, **keywords)  # torch's (compiling would import dynamo: seconds)
    assert inspect.signature(torch.compile).parameters["backend"].default is None
    compiled = chainrule.compile(double, **keywords)
    assert compiled(chainrule.ones(2)).tolist() == [2.0, 2.0]


@pytest.mark.parametrize("call", [
    lambda lib, x: x.sum_to_size(size=(1, 3, 1)),
    lambda lib, x: x.sum_to_size(2, size=(1, 3, 1)),
], ids=["sum_to_size", "sum_to_size_twice"])
def test_sum_to_size_takes_size_by_keyword(call):
    _assert_same(call)


def test_resize_takes_size_by_keyword():
    shapes = [tuple(lib.zeros(2, 3).resize_(size=(4,)).shape) for lib in (torch, chainrule)]
    assert shapes[0] == shapes[1] == (4,)


def _factory_outcome(lib, make):
    x = lib.arange(6.0).reshape(2, 3)
    made = make(lib, x)
    return str(made.dtype).split(".")[-1], tuple(made.shape), made.layout is lib.strided


_ALLOCATION_KEYWORDS = [  # every factory torch gives layout= and pin_memory=, with the values a CPU run accepts
    lambda lib, x, **k: lib.zeros_like(x, **k), lambda lib, x, **k: lib.ones_like(x, **k),
    lambda lib, x, **k: lib.empty_like(x, **k), lambda lib, x, **k: lib.full_like(x, 2.0, **k),
    lambda lib, x, **k: lib.rand_like(x, **k), lambda lib, x, **k: lib.randn_like(x, **k),
    lambda lib, x, **k: lib.randint_like(x, 5, **k), lambda lib, x, **k: lib.arange(5, **k),
    lambda lib, x, **k: lib.linspace(0, 1, 5, **k), lambda lib, x, **k: lib.logspace(0, 1, 5, **k),
    lambda lib, x, **k: lib.eye(3, **k), lambda lib, x, **k: lib.randint(0, 5, (4,), **k),
    lambda lib, x, **k: lib.randperm(4, **k), lambda lib, x, **k: lib.scalar_tensor(s=2.5, **k),
    lambda lib, x, **k: lib.tril_indices(3, 3, **k), lambda lib, x, **k: lib.triu_indices(3, 3, **k),
    lambda lib, x, **k: lib.hann_window(4, **k), lambda lib, x, **k: lib.hamming_window(4, **k),
    lambda lib, x, **k: lib.blackman_window(4, **k), lambda lib, x, **k: lib.bartlett_window(4, **k),
    lambda lib, x, **k: lib.kaiser_window(4, **k), lambda lib, x, **k: lib.fft.fftfreq(4, **k),
    lambda lib, x, **k: lib.fft.rfftfreq(4, **k), lambda lib, x, **k: x.new_zeros((2,), **k),
    lambda lib, x, **k: x.new_ones(2, **k), lambda lib, x, **k: x.new_empty((2,), **k),
    lambda lib, x, **k: x.new_full((2,), 3.0, **k),
]


@pytest.mark.parametrize("factory", _ALLOCATION_KEYWORDS, ids=lambda f: str(_ALLOCATION_KEYWORDS.index(f)))
def test_factories_take_layout_and_pin_memory(factory):
    def make(lib, x):
        return factory(lib, x, layout=lib.strided, pin_memory=False)
    assert _factory_outcome(chainrule, make) == _factory_outcome(torch, make)


def test_deterministic_factories_give_torchs_values_under_the_allocation_keywords():
    keywords = {"layout": "strided", "pin_memory": False}
    for make in (lambda lib, **k: lib.scalar_tensor(s=2.5, **k), lambda lib, **k: lib.logspace(0, 2, 3, **k),
                 lambda lib, **k: lib.arange(1, 4, **k), lambda lib, **k: lib.ones(2, 2).new_full((2,), 3.0, **k)):
        values = [make(lib, **{**keywords, "layout": lib.strided}).numpy() for lib in (torch, chainrule)]
        np.testing.assert_array_equal(values[1], values[0])


def test_a_sparse_layout_is_refused_by_a_dense_only_factory():
    # torch refuses a sparse randperm with NotImplementedError too; its new_zeros builds a sparse
    # tensor, which chainrule leaves to sparse_coo_tensor / to_sparse and refuses by name
    with pytest.raises(NotImplementedError):
        torch.randperm(4, layout=torch.sparse_coo)
    with pytest.raises(NotImplementedError, match="randperm: only layout=chainrule.strided"):
        chainrule.randperm(4, layout=chainrule.sparse_coo)
    with pytest.raises(NotImplementedError, match="new_zeros: only layout=chainrule.strided"):
        chainrule.ones(2).new_zeros(2, layout=chainrule.sparse_coo)


@pytest.mark.parametrize("name, out_dtype", [("fft", "complex64"), ("ifft2", "complex64"), ("rfftn", "complex64"),
                                             ("irfft", "float32"), ("hfft", "float32"), ("ihfftn", "complex64")])
def test_fft_writes_into_out(name, out_dtype):
    signal = np.linspace(-1.0, 2.0, 12, dtype=np.float32).reshape(3, 4)
    results = []
    for lib in (torch, chainrule):
        out = lib.empty(0, dtype=getattr(lib, out_dtype))
        returned = getattr(lib.fft, name)(lib.tensor(signal), norm="ortho", out=out)
        assert returned is out
        results.append(out.numpy())
    assert results[1].dtype == results[0].dtype and results[1].shape == results[0].shape
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5, atol=1e-6)


def test_fft_out_is_refused_under_autograd_and_for_a_real_tensor_of_a_complex_result():
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError, match="out="):
            lib.fft.fft(lib.ones(4, requires_grad=True), out=lib.empty(0, dtype=lib.complex64))
        with pytest.raises(RuntimeError):
            lib.fft.fft(lib.ones(4), out=lib.empty(0))


_GRID = np.linspace(-2.0, 3.0, 12, dtype=np.float32).reshape(3, 4)
_POSITIVE = np.linspace(1.0, 2.0, 12, dtype=np.float32).reshape(3, 4)
_PICKS = np.array([[0, 2], [1, 0], [3, 3]])


@pytest.mark.parametrize("call, out_dtype", [
    (lambda lib, x, y: (lib.hstack, [x, y]), "float32"), (lambda lib, x, y: (lib.vstack, [x, y]), "float32"),
    (lambda lib, x, y: (lib.dstack, [x, y]), "float32"), (lambda lib, x, y: (lib.column_stack, [x, y]), "float32"),
    (lambda lib, x, y: (lib.row_stack, [x, y]), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.diff(*a, dim=0, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.tensordot(*a, y.T, dims=1, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.inner(*a, y, **k), x), "float32"),
    (lambda lib, x, y: (lib.msort, x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.addcmul(*a, x, y, value=2, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.addcdiv(*a, x, y, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.fmin(*a, y, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.xlogy(*a, y, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.floor_divide(*a, y, **k), x), "float32"),
    (lambda lib, x, y: (lib.nan_to_num, x), "float32"), (lambda lib, x, y: (lib.angle, x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.logcumsumexp(*a, 1, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.quantile(*a, 0.3, dim=1, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.renorm(*a, 2, 0, 1.0, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.matrix_power(*a, 2, **k), x[:, :3]), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.addbmm(*a, x.reshape(1, 3, 4), y.reshape(1, 4, 3), **k),
                        lib.zeros(3, 3)), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.polar(*a, x, **k), y), "complex64"),
    (lambda lib, x, y: (lambda *a, **k: lib.take_along_dim(*a, lib.tensor(_PICKS), dim=1, **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.index_add(*a, 0, lib.tensor([2, 0]), y[:2], **k), x), "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.scatter_reduce(*a, 1, lib.tensor(_PICKS), y, "amax", **k), x),
     "float32"),
    (lambda lib, x, y: (lambda *a, **k: lib.isin(*a, y, **k), x), "bool"),
    (lambda lib, x, y: (lib.signbit, x), "bool"),
    (lambda lib, x, y: (lambda *a, **k: lib.bitwise_xor(*a, y.long(), **k), x.long()), "int64"),
    (lambda lib, x, y: (lambda *a, **k: lib.bitwise_left_shift(*a, y.long(), **k), x.long()), "int64"),
], ids=["hstack", "vstack", "dstack", "column_stack", "row_stack", "diff", "tensordot", "inner", "msort", "addcmul",
        "addcdiv", "fmin", "xlogy", "floor_divide", "nan_to_num", "angle", "logcumsumexp", "quantile", "renorm",
        "matrix_power", "addbmm", "polar", "take_along_dim", "index_add", "scatter_reduce", "isin", "signbit",
        "bitwise_xor", "bitwise_left_shift"])
def test_used_functions_write_into_out(call, out_dtype):
    written = []
    for lib in (torch, chainrule):
        function, first = call(lib, lib.tensor(_GRID), lib.tensor(_POSITIVE))
        out = lib.empty(0, dtype=getattr(lib, out_dtype))
        assert function(first, out=out) is out
        written.append(out.numpy())
    assert (written[1].dtype, written[1].shape) == (written[0].dtype, written[0].shape)
    np.testing.assert_allclose(written[1], written[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name, args", [("cummax", (1,)), ("cummin", (0,)), ("mode", (1,)), ("nanmedian", (1,))])
def test_values_and_indices_write_into_a_pair_of_outs(name, args):
    written = []
    for lib in (torch, chainrule):
        out = (lib.empty(0), lib.empty(0, dtype=lib.int64))
        values, indices = getattr(lib, name)(lib.tensor(_GRID), *args, out=out)
        assert values is out[0] and indices is out[1]
        written.append((values.numpy(), indices.numpy()))
    np.testing.assert_array_equal(written[1][0], written[0][0])
    np.testing.assert_array_equal(written[1][1], written[0][1])


def test_a_stable_argsort_writes_into_out():
    orders = []
    for lib in (torch, chainrule):
        out = lib.empty(0, dtype=lib.int64)
        assert lib.argsort(lib.tensor([[2.0, 1.0, 2.0, 0.0]]), stable=True, dim=1, out=out) is out
        orders.append(out.tolist())
    assert orders[0] == orders[1] == [[3, 1, 0, 2]]


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.swapaxes(x, axis0=0, axis1=2), lambda lib, x: x.swapaxes(axis0=1, axis1=-1),
    lambda lib, x: lib.swapdims(x, dim0=2, dim1=1), lambda lib, x: x.swapdims(dim0=0, dim1=1),
], ids=["swapaxes", "swapaxes_method", "swapdims", "swapdims_method"])
def test_swapaxes_and_swapdims_take_their_own_keywords(call):
    _assert_same(call)


def test_swapaxes_refuses_swapdims_keywords():
    for lib in (torch, chainrule):  # torch's message names the keyword, chainrule's the missing axes
        with pytest.raises(TypeError, match="swapaxes()"):
            lib.swapaxes(lib.ones(2, 3), dim0=0, dim1=1)


@pytest.mark.parametrize("name, points", [("hsplit", (1, 2)), ("vsplit", (1,)), ("dsplit", (1, 3))])
def test_split_methods_take_their_indices_spread(name, points):
    shapes = [[tuple(piece.shape) for piece in getattr(lib.arange(24.0).reshape(2, 3, 4), name)(*points)]
              for lib in (torch, chainrule)]
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize("name", ["mm", "bmm", "addmm", "baddbmm"])
def test_a_matrix_product_refuses_out_dtype_on_the_cpu_as_torch(name):
    for lib in (torch, chainrule):
        batch = (1,) if name in ("bmm", "baddbmm") else ()
        left, right = lib.ones(*batch, 2, 3, dtype=lib.bfloat16), lib.ones(*batch, 3, 2, dtype=lib.bfloat16)
        args = (left, right) if name in ("mm", "bmm") else (lib.zeros(*batch, 2, 2, dtype=lib.bfloat16), left, right)
        with pytest.raises(NotImplementedError, match=rf"Could not run 'aten::{name}.dtype' .*'CPU' backend"):
            getattr(lib, name)(*args, out_dtype=lib.float32)


def test_rrelu_draws_its_slopes_from_the_generator_given():
    x = np.linspace(-3.0, 1.0, 10, dtype=np.float32)
    drawn = [lib.rrelu(lib.tensor(x), training=True, generator=lib.Generator().manual_seed(7)).numpy()
             for lib in (torch, chainrule)]
    np.testing.assert_array_equal(drawn[1], drawn[0])
    in_place = [lib.rrelu_(lib.tensor(x), 0.1, 0.3, True, lib.Generator().manual_seed(2)).numpy()
                for lib in (torch, chainrule)]
    np.testing.assert_array_equal(in_place[1], in_place[0])


def test_scalar_tensor_names_its_value_s():
    values = [lib.scalar_tensor(s=-3, dtype=lib.int16) for lib in (torch, chainrule)]
    assert values[1].item() == values[0].item() == -3 and str(values[1].dtype)[-5:] == str(values[0].dtype)[-5:]


def test_uniform_and_random_take_from_and_to():
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        drawn = lib.empty(400).uniform_(**{"from": 2.0, "to": 3.0})
        assert 2.0 <= drawn.min().item() and drawn.max().item() < 3.0
        integers = lib.empty(400, dtype=lib.int8).random_(**{"from": -2, "to": 3})
        assert set(integers.tolist()) == {-2, -1, 0, 1, 2}
        assert set(lib.empty(400, dtype=lib.int8).random_(to=2).tolist()) == {0, 1}
        assert lib.empty(400, dtype=lib.int8).random_(**{"from": 100, "to": None}).min().item() >= 100
        with pytest.raises(TypeError):
            lib.empty(2).uniform_(lower=0.0)
    same_draws = []
    for lib in (torch, chainrule):
        lib.manual_seed(3)
        same_draws.append(lib.empty(5, dtype=lib.float64).uniform_(**{"from": -1.0, "to": 1.0}).numpy())
    np.testing.assert_array_equal(same_draws[1], same_draws[0])


def test_torch_ctc_loss_returns_the_unreduced_loss_by_default():
    # torch's stub says reduction=1 (mean), its binding does not reduce unless told: chainrule's default 0
    losses = []
    for lib in (torch, chainrule):
        log_probs = lib.tensor(np.linspace(-2.0, -0.5, 40, dtype=np.float32).reshape(5, 2, 4)).log_softmax(2)
        targets = lib.tensor([[1, 2], [1, 1]])
        losses.append((lib.ctc_loss(log_probs, targets, [5, 5], [2, 2]).numpy(),
                       lib.ctc_loss(log_probs, targets, [5, 5], [2, 2], 0, 1).numpy()))
    np.testing.assert_allclose(losses[1][0], losses[0][0], rtol=1e-5)
    np.testing.assert_allclose(losses[1][1], losses[0][1], rtol=1e-5)
    assert losses[0][0].shape == (2,)


def test_random_takes_from_positionally_and_to_by_keyword():
    for lib in (torch, chainrule):
        assert set(lib.empty(300, dtype=lib.int8).random_(2, to=4).tolist()) == {2, 3}
