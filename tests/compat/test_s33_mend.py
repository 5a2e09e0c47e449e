"""Items session 32's review left, each checked against torch 2.13: a case is a function of the
library (``torch`` or ``chainrule``), run on both, and what a user sees of it (its values, or its
error's type and first line) must be the same."""

import collections
import io
import math
import pickle
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(case, lib, whole_message=False):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return case(lib)
    except Exception as error:  # the error is part of what is compared
        return ("error", type(error).__name__, str(error) if whole_message else str(error).split("\n")[0])


def assert_as_torch(case, whole_message=False):
    """``case`` gives on chainrule what it gives on torch (an error's first line, or all of it)."""
    assert _outcome(case, chainrule, whole_message) == _outcome(case, torch, whole_message)


# --- pickling and saving a view keeps its storage, offset and strides -------------------------

def _layout(t):
    """What a view's copy must keep: its class, values, strides, offset and storage size."""
    values = t.tolist() if t.dim() else t.item()
    return (type(t).__name__, values, tuple(t.shape), t.stride(), t.storage_offset(),
            t.untyped_storage().nbytes(), t.requires_grad)


def _pickled(lib, obj):
    return pickle.loads(pickle.dumps(obj))


def _saved(lib, obj):
    buffer = io.BytesIO()
    lib.save(obj, buffer)
    buffer.seek(0)
    return lib.load(buffer)


VIEWS = {
    "every other column": lambda lib: lib.arange(24.0).reshape(4, 6)[:, ::2],
    "a transposed slice": lambda lib: lib.arange(24.0).reshape(4, 6).t()[1:, ::3],
    "expanded": lambda lib: lib.arange(3.0).reshape(3, 1).expand(3, 4),
    "as_strided with an offset": lambda lib: lib.as_strided(lib.arange(30.0), (3, 2), (5, 2), 4),
    "one row": lambda lib: lib.arange(24.0).reshape(4, 6)[1],
    "one element": lambda lib: lib.arange(24.0).reshape(4, 6)[2, 3],
    "a whole tensor": lambda lib: lib.arange(24.0).reshape(4, 6),
    "transposed whole": lambda lib: lib.arange(24.0).reshape(4, 6).t(),
    "int64 columns": lambda lib: lib.arange(12).reshape(3, 4)[:, 1:3],
    "a Parameter over columns": lambda lib: lib.nn.Parameter(lib.arange(24.0).reshape(4, 6)[:, ::2]),
    "empty slice": lambda lib: lib.arange(24.0).reshape(4, 6)[:, 6:],
}


@pytest.mark.parametrize("copy", [_pickled, _saved], ids=["pickle", "save"])
@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_copied_view_keeps_its_storage_offset_and_strides(view, copy):
    assert_as_torch(lambda lib: _layout(copy(lib, view(lib))))


@pytest.mark.parametrize("copy", [_pickled, _saved], ids=["pickle", "save"])
def test_views_copied_together_share_a_storage_as_torch(copy):
    """torch.save keeps views saved together on one storage; pickle gives each tensor its own."""
    def case(lib):
        base = lib.arange(24.0).reshape(4, 6)
        columns, corner = copy(lib, [base[:, ::2], base[1:, 1:]])
        shared = columns.untyped_storage().data_ptr() == corner.untyped_storage().data_ptr()
        return shared, _layout(columns), _layout(corner)
    assert_as_torch(case)


def test_a_copied_expanded_view_refuses_in_place_writes_and_a_gapped_one_takes_them():
    def case(lib):
        expanded = _pickled(lib, lib.arange(3.0).expand(2, 3))
        try:
            expanded.add_(1)
            refused = False
        except RuntimeError:
            refused = True
        columns = _pickled(lib, lib.arange(24.0).reshape(4, 6)[:, ::2]).add_(1)
        return refused, columns.tolist()
    assert_as_torch(case)


# --- weights_only=True and a defaultdict ---------------------------------------------------------

DEFAULTDICTS = {
    "of lists": lambda lib: collections.defaultdict(list, {"a": [lib.ones(2)]}),
    "without a factory": lambda lib: collections.defaultdict(None, {"a": 1}),
    "empty, of ints": lambda lib: collections.defaultdict(int),
    "inside a dict": lambda lib: {"state": collections.defaultdict(dict, {0: {"x": lib.zeros(1)}})},
}
ALLOWED = {"nothing": [], "defaultdict": [collections.defaultdict],
           "defaultdict and list": [collections.defaultdict, list], "list": [list]}


@pytest.mark.parametrize("allowed", ALLOWED.values(), ids=ALLOWED.keys())
@pytest.mark.parametrize("checkpoint", DEFAULTDICTS.values(), ids=DEFAULTDICTS.keys())
def test_a_defaultdict_under_weights_only_is_refused_as_torch_refuses_it(checkpoint, allowed):
    """torch refuses the global unless allowed, and an allowed defaultdict at its first item (its
    unpickler fills only dict, OrderedDict and Counter): the same exception, word for word."""
    def case(lib):
        buffer = io.BytesIO()
        lib.save(checkpoint(lib), buffer)
        buffer.seek(0)
        with lib.serialization.safe_globals(allowed):
            loaded = lib.load(buffer, weights_only=True)
        return type(loaded).__name__, repr(dict(loaded))
    outcome = _outcome(case, chainrule, whole_message=True)
    assert outcome[0] == "error" and outcome == _outcome(case, torch, whole_message=True)


def test_a_list_subclass_the_user_allowed_is_refused_at_its_first_item_as_torch():
    def case(lib):
        buffer = io.BytesIO()
        lib.save({"items": _Items([1, 2])}, buffer)
        buffer.seek(0)
        with lib.serialization.safe_globals([_Items]):
            return lib.load(buffer, weights_only=True)
    assert_as_torch(case, whole_message=True)


class _Items(list):
    """A list subclass a checkpoint may hold."""


# --- gcd and lcm name their kernel by device ------------------------------------------------------

def _on_standin_cuda(case, devices=None):
    """``case(chainrule)`` with the NumPy-backed stand-in for CuPy as the 'cuda' device (``devices``
    GPUs where given)."""
    from chainrule._backend import use_standin_cuda

    def on_cuda(lib):
        with use_standin_cuda(devices):
            return case(lib)
    return on_cuda


OPERAND_PAIRS = {
    "float32": lambda lib, device: (lib.tensor([4.0, 6.0], device=device), lib.tensor([2.0, 4.0], device=device)),
    "float64 and int64": lambda lib, device: (lib.tensor([4.0, 6.0], dtype=lib.float64, device=device),
                                              lib.tensor([2, 4], device=device)),
    "bool": lambda lib, device: (lib.tensor([True, False], device=device), lib.tensor([True, True], device=device)),
    "int64 and a float scalar tensor": lambda lib, device: (lib.tensor([4, 6], device=device),
                                                            lib.tensor(2.5, device=device)),
}


@pytest.mark.parametrize("op", ["gcd", "lcm"])
@pytest.mark.parametrize("operands", OPERAND_PAIRS.values(), ids=OPERAND_PAIRS.keys())
def test_gcd_and_lcm_of_non_integers_name_the_kernel_of_their_device(op, operands):
    """On 'cuda' torch's error names gcd_cuda/lcm_cuda (its GcdLcmKernel.cu dispatch name) where the
    CPU one names gcd_cpu; torch here has no GPU, so its CPU error with the device's kernel name is
    what chainrule on the stand-in must raise, and chainrule's CPU error is torch's as it is."""
    def case(device):
        return lambda lib: getattr(lib, op)(*operands(lib, device))
    on_cpu = _outcome(case("cpu"), torch)
    assert on_cpu[0] == "error" and f'"{op}_cpu"' in on_cpu[2]
    assert _outcome(case("cpu"), chainrule) == on_cpu
    on_cuda = _outcome(_on_standin_cuda(case("cuda")), chainrule)
    assert on_cuda == (on_cpu[0], on_cpu[1], on_cpu[2].replace(f'"{op}_cpu"', f'"{op}_cuda"'))


# --- isclose checks devices as every binary op does ----------------------------------------------

MIXED_DEVICES = {
    "cuda and cpu": lambda lib: (lib.ones(3, device="cuda"), lib.ones(3)),
    "cpu and cuda": lambda lib: (lib.ones(3), lib.ones(3, device="cuda")),
    "two GPUs": lambda lib: (lib.ones(3, device="cuda:0"), lib.ones(3, device="cuda:1")),
    "cuda and a cpu 0-d tensor": lambda lib: (lib.ones(3, device="cuda"), lib.tensor(1.0)),
    "a cuda 0-d tensor and cpu": lambda lib: (lib.tensor(1.0, device="cuda"), lib.ones(3)),
    "mismatched shapes on two devices": lambda lib: (lib.ones(2, device="cuda"), lib.ones(3)),
    "mismatched shapes the other way": lambda lib: (lib.ones(3), lib.ones(2, device="cuda")),
}


def _device_outcome(op):
    def case(lib):
        result = op(lib)
        return "ok", str(result.device), result.tolist()
    return case


@pytest.mark.parametrize("operands", MIXED_DEVICES.values(), ids=MIXED_DEVICES.keys())
def test_isclose_refuses_mixed_devices_as_the_other_comparisons_do(operands):
    """torch's isclose begins with ``self == other``: on the stand-in its errors (shape first, then
    devices, a CPU 0-d tensor joining) are eq's, naming isclose."""
    closeness = _outcome(_on_standin_cuda(_device_outcome(lambda lib: lib.isclose(*operands(lib))), 2), chainrule)
    equality = _outcome(_on_standin_cuda(_device_outcome(lambda lib: lib.eq(*operands(lib))), 2), chainrule)
    if equality[0] == "error":
        equality = (*equality[:2], equality[2].replace("arguments of eq)", "arguments of isclose)"))
    assert closeness == equality


ARGUMENT_ORDER = {
    "dtype before shape": lambda lib: lib.isclose(lib.ones(2), lib.ones(3, dtype=lib.float64)),
    "rtol before shape": lambda lib: lib.isclose(lib.ones(2), lib.ones(3), rtol=-1.0),
    "atol before shape": lambda lib: lib.isclose(lib.ones(2), lib.ones(3), atol=-1.0),
    "shape": lambda lib: lib.isclose(lib.ones(2), lib.ones(3)),
}


@pytest.mark.parametrize("case", ARGUMENT_ORDER.values(), ids=ARGUMENT_ORDER.keys())
def test_isclose_checks_its_arguments_before_the_comparison_as_torch(case):
    """torch's own checks (dtype, rtol, atol) come before its comparison's (shape, devices): the
    same on 'cuda' with a CPU partner, where the comparison's device check would come next."""
    assert_as_torch(case)
    moved = lambda lib: case(_CudaFirst(lib))  # noqa: E731
    assert _outcome(_on_standin_cuda(moved), chainrule) == _outcome(case, torch)


class _CudaFirst:
    """``lib`` whose ``ones`` puts its first tensor on 'cuda' (the second stays on the CPU)."""

    def __init__(self, lib):
        self.lib, self.made = lib, 0

    def ones(self, *shape, **kwargs):
        self.made += 1
        return self.lib.ones(*shape, device="cuda" if self.made == 1 else "cpu", **kwargs)

    def __getattr__(self, name):
        return getattr(self.lib, name)


# --- batch norm's float32 running statistics, bit for bit ----------------------------------------

def _running_statistics_bits(lib, make_module, shape, channels_last, steps=3, seed=0):
    """The bits of a batch-norm module's float32 running mean and variance after ``steps`` training
    batches, from random running statistics."""
    rng = np.random.default_rng(seed)
    module = make_module(lib)
    with lib.no_grad():
        module.running_mean.copy_(lib.tensor(rng.standard_normal(shape[1]).astype(np.float32)))
        module.running_var.copy_(lib.tensor((rng.random(shape[1]) + 0.5).astype(np.float32)))
    for _ in range(steps):
        x = lib.tensor((rng.standard_normal(shape) * 3 + 1.3).astype(np.float32))
        if channels_last:
            x = x.contiguous(memory_format=lib.channels_last if len(shape) == 4 else lib.channels_last_3d)
        module(x)
    return [module.running_mean.numpy().view(np.uint32).tolist(), module.running_var.numpy().view(np.uint32).tolist()]


@pytest.fixture
def torch_thread_count(monkeypatch):
    """chainrule reproduces torch's channels-last reduction for torch's thread count: this process's."""
    monkeypatch.setattr(chainrule._config, "_requested_threads", torch.get_num_threads())


BATCH_NORMS = {
    f"BatchNorm{dims}d {shape}{' channels-last' if cl else ''}{'' if affine else ' affine=False'} momentum={momentum}":
        (dims, shape, cl, affine, momentum)
    for dims, shape, cl in [(1, (16, 5), False), (1, (7, 3, 9), False), (1, (40, 11), False),
                            (2, (4, 3, 5, 5), False), (2, (2, 6, 7, 3), True), (2, (3, 9, 1, 1), False),
                            (3, (2, 3, 3, 4, 5), False), (3, (3, 2, 2, 2, 7), True)]
    for affine in (True, False)
    for momentum in (0.1, 0.3, None)
}


def _assert_bits_as_torch(case, shape):
    """``case`` (lists of float32 bit patterns) as on torch: bit for bit, or, for one value per
    (sample, channel), within 2e-6 of torch's values (the last bits of a float32 sum of up to 40
    rows, carried through three updates: up to 5 units in the last place seen). BatchNorm1d on (N, C) keeps its forward's sums rather than replay
    torch's channels-last reduction, which cost 1.7 to 3 times the layer's forward
    (_torch_running_statistics)."""
    ours, theirs = case(chainrule), case(torch)
    if math.prod(shape) != shape[0] * shape[1]:
        assert ours == theirs
        return
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(np.array(a, np.uint32).view(np.float32), np.array(b, np.uint32).view(np.float32),
                                   rtol=2e-6)


@pytest.mark.parametrize("config", BATCH_NORMS.values(), ids=BATCH_NORMS.keys())
def test_batch_norm_running_statistics_have_torchs_float32_bits(config, torch_thread_count):
    dims, shape, channels_last, affine, momentum = config

    def make(lib):
        return getattr(lib.nn, f"BatchNorm{dims}d")(shape[1], momentum=momentum, affine=affine)
    _assert_bits_as_torch(lambda lib: _running_statistics_bits(lib, make, shape, channels_last), shape)


@pytest.mark.parametrize("weighted", [True, False], ids=["weight and bias", "no affine"])
@pytest.mark.parametrize("shape", [(4, 3), (16, 5, 6), (3, 4, 5, 5)], ids=str)
def test_functional_batch_norm_updates_running_statistics_as_torch(shape, weighted, torch_thread_count):
    def case(lib):
        rng = np.random.default_rng(7)
        running_mean = lib.tensor(rng.standard_normal(shape[1]).astype(np.float32))
        running_var = lib.tensor((rng.random(shape[1]) + 0.5).astype(np.float32))
        weight, bias = ((lib.tensor(rng.standard_normal(shape[1]).astype(np.float32)) for _ in range(2))
                        if weighted else (None, None))
        for momentum in (0.05, 0.9):
            x = lib.tensor((rng.standard_normal(shape) * 2 - 0.7).astype(np.float32))
            lib.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum=momentum)
        return running_mean.numpy().view(np.uint32).tolist(), running_var.numpy().view(np.uint32).tolist()
    _assert_bits_as_torch(case, shape)


def test_torchs_thread_count_is_the_one_chainrule_reproduces():
    """Without a set_num_threads call, chainrule's count of torch's intra-op threads is torch's default."""
    if chainrule._config._requested_threads is not None:
        pytest.skip("this process set a thread count")
    assert chainrule._config.torch_intra_op_threads() == torch.get_num_threads()
