"""Hostile argument values (None, a str, a dict, a ragged list, 2**63, NaN sizes, out-of-range dims,
tensors of the wrong dtype or on 'meta', zero-size or mismatched tensors...) answered with torch's
exception classes, never with an internal error of chainrule's or NumPy's.

``test_sampled_hostile_calls_answer_as_torch`` replays a fixed-seed sample of the cases of
tools/torch_hostile_args_trial.py's hand-written calls (factories, Tensor methods, layers and their
forwards, optimizers, data utilities) on torch and on chainrule. The other tests pin the fixes the
trial led to, one per kind of leak.
"""

from __future__ import annotations

import random

import pytest

import chainrule
from tests.compat.trial_tools import load_tool

torch = pytest.importorskip("torch")

SAMPLE = 300
SEED = 20261202
# what a replayed case must never be: an internal error leaked, or a destination written before raising
NEVER = ("leak", "mutated")
# left out of the replay, each for its cost: 2**31 rows ask torch and NumPy for gigabytes (the trial caps
# the address space, which a test process cannot do for itself); torch's first call on a 'meta' tensor
# imports its meta registrations (a second or more; tests/test_meta_device.py covers chainrule's);
# an RNN of 2**63 layers keeps torch building layers until the trial's time limit
NOT_REPLAYED = ("2**31", "meta_tensor")
NOT_REPLAYED_POSITIONS = ("kwargs['num_layers']",)
# optimizers' first step in torch imports torch._dynamo (seconds); tests/fuzz/test_hostile_constructors_optim.py
# covers their hostile arguments
NOT_REPLAYED_BASES = ("optim.",)


@pytest.fixture(scope="module")
def trial():
    return load_tool("torch_hostile_args_trial")


def test_sampled_hostile_calls_answer_as_torch(trial):
    cases = [(base, position, hostile) for base in trial.hand_written_calls()
             if not base.name.startswith(NOT_REPLAYED_BASES)
             for position, hostile in trial.cases_of(base)
             if hostile not in NOT_REPLAYED and f"{position[0]}[{position[1]!r}]" not in NOT_REPLAYED_POSITIONS]
    assert len(cases) > 1500
    wrong = []
    kinds = set()
    for base, position, hostile in random.Random(SEED).sample(cases, SAMPLE):
        record = trial.run_case(base, position, hostile)
        kinds.add(record["kind"])
        if record["kind"] in NEVER:
            wrong.append(record)
    assert not wrong, "\n".join(map(str, wrong))
    assert {"same", "both_ok"} <= kinds  # the sample reached both outcomes


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.Tensor.view(None, 3, 2),
    lambda lib, x: lib.add(x, None),
    lambda lib, x: x.add(None),
    lambda lib, x: lib.cat([x, None]),
    lambda lib, x: lib.nn.functional.embedding([[1, 2], [3]], x),
    lambda lib, x: lib.sum("abc"),
    lambda lib, x: lib.nn.CrossEntropyLoss()(x, [1, 0]),
    lambda lib, x: lib.utils.data.DataLoader(None, batch_size=2).__iter__().__next__(),
], ids=["unbound-method-self", "add-other", "method-other", "cat-item", "embedding-list", "sum-str",
        "layer-forward-target", "dataloader-none"])
def test_a_non_tensor_where_a_tensor_goes_is_a_type_error(call):
    for lib in (torch, chainrule):
        with pytest.raises(TypeError):
            call(lib, lib.ones(2, 3))


def test_the_type_error_names_the_op_and_the_argument():
    with pytest.raises(TypeError, match=r"^embedding\(\): argument 'input' \(position 1\) must be Tensor, not list$"):
        chainrule.nn.functional.embedding([[1]], chainrule.ones(2, 3))
    with pytest.raises(TypeError, match=r"^descriptor 'view' for 'torch\._C\.TensorBase' objects doesn't apply to a 'list' object$"):
        chainrule.Tensor.view([1.0], 1)
    # the module calls F.cross_entropy, as torch's does (torch names its ATen op, cross_entropy_loss)
    with pytest.raises(TypeError, match=r"^cross_entropy\(\): argument 'target' \(position 2\) must be Tensor, not str$"):
        chainrule.nn.CrossEntropyLoss()(chainrule.ones(2, 3), "labels")


def test_a_users_own_attribute_error_is_left_alone():
    class Reads(chainrule.nn.Module):
        def forward(self, batch):
            return batch.features

    with pytest.raises(AttributeError, match="features"):
        Reads()({"features": 1})


@pytest.mark.parametrize("call", [
    lambda lib: lib.zeros(2**40, 2**20),
    lambda lib: lib.ones(2**40, 2**20).sum(),
    lambda lib: lib.nn.Linear(2**40, 2**20),
], ids=["zeros", "ones", "layer"])
def test_an_allocation_beyond_memory_is_a_runtime_error(call):
    # exabytes: refused at once by the allocator, nothing is touched
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError):
            call(lib)


@pytest.mark.parametrize("call, error", [
    (lambda lib, x: x.sum(dim=2**63), ValueError),
    (lambda lib, x: x.transpose(0, -2**63 - 1), ValueError),
    (lambda lib, x: lib.zeros(2, 2**63), TypeError),
    (lambda lib, x: x.view(2**63), TypeError),
    (lambda lib, x: lib.mvlgamma(x, 2**63), ValueError),
    (lambda lib, x: lib.fft.fft(x, n=2**63), ValueError),
    (lambda lib, x: lib.nn.functional.unfold(x[None, None], 2, 1, 2**63), TypeError),
    (lambda lib, x: lib.as_strided(x, {"a": 1}, (1,)), TypeError),
])
def test_ints_beyond_int64_and_sizes_of_no_kind_are_refused_as_torch_refuses(call, error):
    for lib in (torch, chainrule):
        with pytest.raises(error):
            call(lib, lib.ones(2, 3) + 5)


def test_an_infinite_scale_draws_without_recursing():
    for lib in (torch, chainrule):
        lib.manual_seed(0)
        drawn = lib.empty(4).cauchy_(0.0, float("inf"))
        assert not drawn.isfinite().any()


def test_a_zero_dim_tensor_in_a_tensor_dataset_is_an_index_error():
    for lib in (torch, chainrule):
        with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
            lib.utils.data.TensorDataset(lib.ones(4), lib.tensor(1.0))


@pytest.mark.parametrize("call, error", [
    (lambda lib, x: lib.div(x, x, rounding_mode=3), TypeError),
    (lambda lib, x: lib.div(x, x, rounding_mode="bad"), RuntimeError),
    (lambda lib, x: lib.meshgrid(x[0], indexing=3), TypeError),
    (lambda lib, x: lib.scatter_reduce(x, 0, lib.tensor([[0]]), x, reduce=3), TypeError),
    (lambda lib, x: lib.index_reduce(x, 0, None, x, "prod"), TypeError),
    (lambda lib, x: x.transpose(True, 0), TypeError),
    (lambda lib, x: lib.where(None, x, x), TypeError),
    (lambda lib, x: lib.linalg.multi_dot("ab"), TypeError),
    (lambda lib, x: lib.nn.functional.cosine_embedding_loss(x, True, lib.ones(2)), TypeError),
    (lambda lib, x: lib.linalg.matrix_rank(x, hermitian=True), RuntimeError),
    (lambda lib, x: lib.linspace(0, 1, 2**45), RuntimeError),
], ids=["rounding-mode-int", "rounding-mode-str", "indexing", "scatter-reduce", "index-reduce-index", "bool-dim",
        "where-condition", "multi-dot-str", "cosine-embedding-bool", "hermitian-rank-not-square",
        "linspace-beyond-memory"])
def test_arguments_of_the_wrong_kind_raise_torchs_class(call, error):
    for lib in (torch, chainrule):
        with pytest.raises(error):
            call(lib, lib.ones(2, 3))


def test_max_unpool_reads_a_stride_beyond_int64_as_a_python_int():
    # torch reads max_unpool's stride in Python (the default output size, the range output_size must
    # lie in): not its C++ parser's overflow, but the range check's ValueError
    for lib in (torch, chainrule):
        pooled, indices = lib.nn.functional.max_pool1d(lib.arange(8.0)[None, None], 2, return_indices=True)
        with pytest.raises(ValueError, match="invalid output_size"):
            lib.nn.functional.max_unpool1d(pooled, indices, 2, stride=2**63, output_size=[8])


def test_an_integer_running_statistic_is_refused_before_either_is_updated():
    running_mean, running_var = chainrule.zeros(3), chainrule.ones(3, dtype=chainrule.int64)
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Long"):
        chainrule.nn.functional.instance_norm(chainrule.randn(2, 3, 4), running_mean, running_var)
    assert running_mean.tolist() == [0.0, 0.0, 0.0] and running_mean._version == 0
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Long"):
        torch.nn.functional.instance_norm(torch.randn(2, 3, 4), torch.zeros(3), torch.ones(3, dtype=torch.int64))


def test_geometric_draws_on_the_meta_device():
    # (as torch's do; its first meta call imports its meta registrations, seconds, so it is not run here)
    drawn = chainrule.empty(2, 3, device="meta").geometric_(0.5)
    assert drawn.device.type == "meta" and tuple(drawn.shape) == (2, 3) and drawn.dtype == chainrule.float32


@pytest.mark.parametrize("call", [
    lambda lib, x: lib.fft.fft(x, n="a"),
    lambda lib, x: lib.fft.fft(x, n=2.5),
    lambda lib, x: lib.fft.fft(x, norm=3),
    lambda lib, x: lib.fft.fft2(x, dim="ab"),
    lambda lib, x: x.narrow(0, "a", 1),
    lambda lib, x: x.select(0, float("nan")),
    lambda lib, x: lib.randint(0.5, 5, (2,)),
    lambda lib, x: lib.randint(0, 5, "ab"),
    lambda lib, x: lib.randperm("a"),
    lambda lib, x: lib.linspace("a", 1, 3),
    lambda lib, x: lib.clamp_min(x, None),
    lambda lib, x: lib.gradient(x, edge_order="a"),
], ids=["fft-n-str", "fft-n-float", "fft-norm-int", "fft2-dim-str", "narrow-start-str", "select-index-nan",
        "randint-float-low", "randint-size-str", "randperm-str", "linspace-start-str", "clamp-min-none",
        "gradient-edge-order-str"])
def test_a_number_or_size_of_the_wrong_type_is_a_type_error(call):
    for lib in (torch, chainrule):
        with pytest.raises(TypeError):
            call(lib, lib.ones(4, 4))


def test_meta_linalg_solvers_give_shapes_and_import_no_cupyx(monkeypatch):
    # (torch's own meta kernels are not called here: their first call costs seconds; its CPU results'
    # shapes are what meta reports). A None in sys.modules makes any cupyx import an ImportError.
    monkeypatch.setitem(__import__("sys").modules, "cupyx", None)
    A, B = torch.randn(2, 3, 3, dtype=torch.float64), torch.randn(2, 3, 4, dtype=torch.float64)
    LU, pivots = torch.linalg.lu_factor(A)
    meta = {name: chainrule.empty(tuple(t.shape), dtype=chainrule.float64 if t.is_floating_point() else chainrule.int32,
                                  device="meta") for name, t in [("A", A), ("B", B), ("LU", LU), ("pivots", pivots)]}
    expected = [torch.linalg.inv(A), torch.linalg.solve(A, B), torch.linalg.lu_solve(LU, pivots, B)]
    got = [chainrule.linalg.inv(meta["A"]), chainrule.linalg.solve(meta["A"], meta["B"]),
           chainrule.linalg.lu_solve(meta["LU"], meta["pivots"], meta["B"])]
    for want, have in zip(expected, got):
        assert have.device.type == "meta" and tuple(have.shape) == tuple(want.shape)
        assert have.dtype == chainrule.float64


@pytest.mark.parametrize("call, error", [
    (lambda lib, x: x.unfold(0, 1.5, 1), TypeError),
    (lambda lib, x: x.unfold(0, 2, 2**63), ValueError),
    (lambda lib, x: lib.movedim(x, "ab", [0, 1]), TypeError),
    (lambda lib, x: lib.movedim(x, [0], 2**63), TypeError),
    (lambda lib, x: lib.polygamma(-2**63 - 1, x), ValueError),
    (lambda lib, x: lib.empty_strided("ab", (1,)), TypeError),
    (lambda lib, x: lib.empty_strided(3, 1), TypeError),
    (lambda lib, x: x.sum_to_size(None), TypeError),
    (lambda lib, x: lib.split(lib.tensor(1.0), 1), RuntimeError),
    (lambda lib, x: lib.split(x, "ab"), TypeError),
    (lambda lib, x: lib.split(x, -2**63 - 1), ValueError),
    (lambda lib, x: lib.nn.functional.layer_norm(x, "ab"), TypeError),
    (lambda lib, x: lib.nn.functional.layer_norm(x, 4), TypeError),
    (lambda lib, x: lib.native_layer_norm(x, None, None, None, 1e-5), TypeError),
    (lambda lib, x: lib.baddbmm(lib.ones(2, 3, 3), lib.ones(2, 3, 3), lib.tensor(1.0)), IndexError),
    (lambda lib, x: lib.nn.functional.grid_sample(lib.tensor(1.0), lib.ones(1, 2, 2, 2), align_corners=False),
     IndexError),
    (lambda lib, x: lib.grid_sampler_2d(lib.ones(1, 1, 2, 2), lib.tensor(1.0), 0, 0, False), IndexError),
    (lambda lib, x: lib.nn.functional.ctc_loss(x.log_softmax(1), lib.ones(3, dtype=lib.long), 4, [3]), TypeError),
    (lambda lib, x: lib.nn.functional.ctc_loss(x.log_softmax(1), lib.ones(3, dtype=lib.long), [4], [2**63]),
     TypeError),
    (lambda lib, x: lib.normal(0.0, 1.0, "ab"), TypeError),
    (lambda lib, x: lib.normal(0.0, 1.0, [-1, 3]), RuntimeError),
    (lambda lib, x: x.log_normal_("ab"), TypeError),
    (lambda lib, x: x.normal_(["a", "b"]), TypeError),
    (lambda lib, x: lib.normal([[1.0], [1.0, 2.0]], lib.ones(2)), TypeError),
    (lambda lib, x: lib.split_with_sizes(x, ["a"]), TypeError),
    (lambda lib, x: lib.grid_sampler_2d(lib.ones(1, 1, 2, 2), lib.zeros(1, 2, 2, 2), 2**63, 0, False), ValueError),
], ids=["unfold-size-float", "unfold-step-2**63", "movedim-source-str", "movedim-destination-2**63",
        "polygamma-n-below-int64", "empty_strided-size-str", "empty_strided-size-int", "sum_to_size-none",
        "split-0d", "split-str", "split-below-int64", "layer_norm-str", "layer_norm-int", "native_layer_norm-none",
        "baddbmm-0d-batch2", "grid_sample-0d-input", "grid_sampler_2d-0d-grid", "ctc_loss-int-lengths",
        "ctc_loss-lengths-2**63", "normal-size-str", "normal-size-negative",
        "log_normal_-mean-str", "normal_-mean-list", "normal-ragged-mean",
        "split_with_sizes-list-of-str", "grid_sampler_2d-mode-2**63"])
def test_sizes_and_dims_are_parsed_before_any_work_as_by_torch(call, error):
    for lib in (torch, chainrule):
        with pytest.raises(error):
            call(lib, lib.ones(4, 4))


def test_normal_fill_takes_a_zero_dim_tensor_as_its_mean():
    for lib in (torch, chainrule):
        lib.manual_seed(0)
    drawn = [lib.ones(4).normal_(lib.tensor(2.0), 3.0) for lib in (torch, chainrule)]
    assert drawn[1].tolist() == drawn[0].tolist()
