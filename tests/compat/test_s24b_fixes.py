"""Small behaviours found wrong in round 24, each compared with torch: the same call on both."""

import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def _outcome(module, call):
    """``call(module)``'s value as a list, or its exception's class name and message."""
    try:
        result = call(module)
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return type(error).__name__, str(error)
    if isinstance(result, (tuple, list)):
        return [part.tolist() for part in result]
    return result.tolist() if hasattr(result, "tolist") else result


def _same(call):
    assert _outcome(cr, call) == _outcome(torch, call)


# ---------------------------------------------------------------- bernoulli_ with a tensor of probabilities
@pytest.mark.parametrize("p_dtype", ["float32", "float64"])
@pytest.mark.parametrize("x_dtype", ["float32", "int64", "bool"])
def test_bernoulli_inplace_tensor_probabilities_draws_torchs_values(p_dtype, x_dtype):
    def call(m):
        m.manual_seed(0)
        p = m.rand(4, 5, dtype=getattr(m, p_dtype))
        return m.zeros(4, 5, dtype=getattr(m, x_dtype)).bernoulli_(p)
    _same(call)


@pytest.mark.parametrize("call", [
    lambda m: m.zeros(5, 4).t().bernoulli_(m.full((5,), 0.5)),          # broadcast into a transposed self
    lambda m: m.zeros(6).bernoulli_(m.full((6,), 0.5), generator=m.Generator().manual_seed(3)),
    lambda m: m.zeros(3).bernoulli_(p=m.tensor([0.0, 1.0, 1.0])),
    lambda m: m.zeros(3).bernoulli_(m.tensor(1.0)),
    lambda m: m.zeros(2, 3).bernoulli_(m.tensor([0.0, 1.0])),            # does not broadcast
    lambda m: m.zeros(3).bernoulli_(m.tensor([0.2, 1.5, 0.3])),          # out of [0, 1]
    lambda m: m.zeros(3).bernoulli_(m.tensor([0, 1, 1])),                # integer probabilities
    lambda m: m.zeros(3).bernoulli_(-0.1),
    lambda m: m.zeros(3).bernoulli_(float("nan")),
    lambda m: m.zeros(3).bernoulli_("a"),
    lambda m: m.bernoulli(m.zeros(3), p=1.5),
    lambda m: m.bernoulli(m.tensor([float("nan")])),
    lambda m: m.bernoulli(m.tensor([0, 1])),
], ids=["transposed", "generator", "keyword", "0-d", "shape", "range", "int", "neg", "nan", "str",
        "functional-p", "functional-nan", "functional-int"])
def test_bernoulli_overloads_and_refusals_as_torch(call):
    _same(lambda m: (m.manual_seed(0), call(m))[1])


def test_bernoulli_float_generator_and_out_as_torch():
    def call(m):
        g = m.Generator().manual_seed(5)
        p = m.full((2, 3), 0.5)
        out = m.empty(2, 3)
        return [m.bernoulli(p, generator=g), m.bernoulli(p, 0.3, generator=g), m.bernoulli(p, out=out),
                m.zeros(2, 3).bernoulli_(0.3, generator=g)]
    _same(lambda m: (m.manual_seed(1), call(m))[1])


# ---------------------------------------------------------------- sizes given as one-element tensors
@pytest.mark.parametrize("call", [
    lambda m, a: a.split(m.tensor(4)),
    lambda m, a: a.split(m.tensor(2.5)),
    lambda m, a: a.split(m.tensor([4])),
    lambda m, a: a.split(m.tensor([4, 6])),                  # torch's split_with_sizes TypeError
    lambda m, a: a.split(m.tensor(-1)),
    lambda m, a: a.split(split_size=m.tensor(3)),
    lambda m, a: m.split(a, split_size_or_sections=m.tensor(3)),
    lambda m, a: a.view(2, 5).split(m.tensor(2), m.tensor(1)),
    lambda m, a: a.unsafe_split(m.tensor(4)),
    lambda m, a: a.chunk(m.tensor(3)),
    lambda m, a: a.narrow(0, m.tensor(2), 3),
    lambda m, a: a.narrow(m.tensor(0), 2, m.tensor(3)),
    lambda m, a: a.tensor_split(m.tensor(3)),
    lambda m, a: a.tensor_split(m.tensor([2, 5])),
    lambda m, a: a.view(2, 5).tensor_split(m.tensor(2), m.tensor(1)),
], ids=["split", "split-float", "split-1el", "split-2el", "split-neg", "split-kw", "torch-split-kw", "split-dim",
        "unsafe_split", "chunk", "narrow-start", "narrow-dim-length", "tensor_split", "tensor_split-1d",
        "tensor_split-dim"])
def test_zero_dim_tensor_sizes_as_torch(call):
    _same(lambda m: call(m, m.arange(10)))


# ---------------------------------------------------------------- arange's nan step and int64 overflow
@pytest.mark.parametrize("call", [
    lambda m: m.arange(0, 1, float("nan")),
    lambda m: m.arange(0, 1, float("nan"), dtype=m.int64),
    lambda m: m.arange(0, 1, float("nan"), dtype=m.int32),
    lambda m: m.arange(float("nan"), 1, float("nan")),
    lambda m: m.arange(0, 1, m.tensor(float("nan"))),
    lambda m: m.arange(0, 1, float("nan"), out=m.empty(0)),
    lambda m: m.arange(0, 1, float("inf")),
    lambda m: m.arange(0, 1, float("inf"), dtype=m.int64),
    lambda m: m.arange(0, 1e30, 1e29, dtype=m.int32),
    lambda m: m.arange(-1e30, 0, 1e29, dtype=m.uint8),
    lambda m: m.arange(float("nan"), 1),
    lambda m: m.arange(0, float("inf")),
    lambda m: m.arange(0, 1, 0),
], ids=["nan", "nan-int64", "nan-int32", "nan-nan", "nan-tensor", "nan-out", "inf", "inf-int64", "big-int32",
        "big-uint8", "nan-start", "inf-end", "zero"])
def test_arange_refusals_as_torch(call):
    _same(call)


def test_range_nan_step_as_torch():
    with pytest.warns(UserWarning):
        _same(lambda m: m.range(0, 1, float("nan")))


# ---------------------------------------------------------------- cumsum_/cumprod_ keep self's dtype
@pytest.mark.parametrize("call", [
    lambda m: m.ones(3, dtype=m.bool).cumsum_(0),
    lambda m: m.ones(3, dtype=m.bool).cumprod_(0),
    lambda m: m.ones(3, dtype=m.bool).cumsum_(0, dtype=m.long),
    lambda m: m.ones(3, dtype=m.bool).cumprod_(0, dtype=m.long),
    lambda m: m.ones(3).cumsum_(0, dtype=m.float64),
    lambda m: m.ones(3, dtype=m.int64).cumsum_(0, dtype=m.bool),
    lambda m: m.ones(3, dtype=m.int8).cumsum_(0),
    lambda m: m.ones(3).cumprod_(dim=0, dtype=m.float32),
    lambda m: m.tensor(True).cumsum_(0),
    lambda m: m.ones(0, dtype=m.bool).cumsum_(0),
    lambda m: m.cumsum(m.ones(3, dtype=m.bool), 0, out=m.empty(3, dtype=m.bool)),
], ids=["bool-cumsum_", "bool-cumprod_", "bool-dtype", "bool-cumprod-dtype", "float-double", "long-bool", "int8",
        "same-dtype", "bool-0d", "bool-empty", "bool-out"])
def test_cumulative_inplace_as_torch(call):
    _same(call)


# ---------------------------------------------------------------- softmax's dim refusal names torch's position
@pytest.mark.parametrize("call", [
    lambda m, x: x.softmax(1.0),
    lambda m, x: m.softmax(x, 1.0),
    lambda m, x: m.nn.functional.softmax(x, 1.0),
    lambda m, x: x.log_softmax(1.0),
    lambda m, x: m.log_softmax(x, 1.0),
    lambda m, x: m.nn.functional.log_softmax(x, dim=1.0),
    lambda m, x: m.softmax(x, dim=1.0),
    lambda m, x: x.softmax(dim=1.0),
    lambda m, x: m.softmax(x, True),
    lambda m, x: m.softmax(x),
    lambda m, x: x.softmax(1, "a"),
    lambda m, x: m.log_softmax(x, 1, 2, 3),
    lambda m, x: m.nn.functional.softmin(x, 1.0),
    lambda m, x: x.softmax(m.tensor(1)),
    lambda m, x: m.nn.functional.softmax(x, m.tensor(1.0)),
    lambda m, x: m.softmax(x, 1, m.float64).dtype is m.float64,
], ids=["method", "torch", "F", "log-method", "log-torch", "F-log-keyword", "torch-keyword", "method-keyword", "bool",
        "no-dim", "dtype-str", "four", "softmin", "tensor-dim", "F-float-tensor", "dtype-positional"])
def test_softmax_dim_refusals_as_torch(call):
    _same(lambda m: call(m, m.ones(2, 3)))


# ---------------------------------------------------------------- WorkerInfo is frozen and slotted
class _WorkerInfoProbe:
    """A dataset whose one item is what a worker sees of its WorkerInfo (vars, assignment, fields)."""

    def __init__(self, module_name: str) -> None:
        self.module_name = module_name

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int):
        import importlib

        info = importlib.import_module(self.module_name).utils.data.get_worker_info()
        seen = []
        for attempt in (lambda: vars(info), lambda: setattr(info, "id", 3), lambda: delattr(info, "seed")):
            try:
                attempt()
                seen.append("no error")
            except Exception as error:  # noqa: BLE001 - the class and message are what is compared
                seen.append(f"{type(error).__name__}: {error}")
        seen.append(f"{info.id} {info.num_workers} {info.rng} {info.worker_method} {type(info).__slots__}")
        return tuple(seen)


def test_worker_info_is_frozen_and_slotted_as_torchs():
    def seen(m):
        loader = m.utils.data.DataLoader(_WorkerInfoProbe(m.__name__), batch_size=None, num_workers=1)
        return list(loader)
    assert seen(cr) == seen(torch)
    assert seen(cr)[0][0] == "TypeError: vars() argument must have __dict__ attribute"


# ---------------------------------------------------------------- meta and cpu tensors in one op
@pytest.mark.parametrize("call", [
    lambda m: m.nn.Linear(3, 2, device="meta")(m.ones(4, 3)),
    lambda m: m.nn.Linear(3, 2)(m.ones(4, 3, device="meta")),
    lambda m: m.nn.functional.linear(m.ones(4, 3), m.ones(2, 3), m.ones(2, device="meta")),
    lambda m: m.ones(3) + m.ones(3, device="meta"),
    lambda m: m.ones(3, device="meta") + m.ones(3),
    lambda m: m.ones(3, device="meta") * m.ones(3),
    lambda m: (m.ones(3, device="meta") + m.tensor(1.0)).numel(),  # a 0-d cpu tensor joins
], ids=["Linear-meta", "Linear-cpu", "F.linear-bias", "add-cpu-first", "add-meta-first", "mul", "0-d"])
def test_meta_cpu_mix_names_the_first_tensors_device_as_torch(call):
    _same(call)
