"""Round 27 (fixes4): the optimisers' float32 arithmetic as torch 2.13's CPU kernels round it, and
small differences in cumsum's gradient, embedding_bag and addbmm, each compared with torch."""

import numpy as np
import pytest

import chainrule as cr
from chainrule._opmath import fused_addcmul, fused_lerp

torch = pytest.importorskip("torch")


def _bits(array) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint32)


def _random(seed: int, *shape) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- the one lerp and addcmul helper
@pytest.mark.parametrize("weight", [0.1, 0.3, 0.49999999, 0.5, 0.7, 0.95, 1.5, -0.2])
def test_fused_lerp_is_torchs_float32_lerp_to_the_bit(weight):
    # 0.49999999 rounds to 0.5 in float32: torch compares the rounded weight, so it lerps from the end
    start, end = _random(0, 10007), _random(1, 10007)
    expected = torch.from_numpy(start).lerp(torch.from_numpy(end), weight).numpy()
    assert (_bits(fused_lerp(start, end, weight)) == _bits(expected)).all()


@pytest.mark.parametrize("value", [1.0, 0.001, -0.3])
def test_fused_addcmul_is_torchs_float32_addcmul_to_the_bit(value):
    start, t1, t2 = _random(2, 10007), _random(3, 10007), _random(4, 10007)
    expected = torch.from_numpy(start).addcmul(torch.from_numpy(t1), torch.from_numpy(t2), value=value).numpy()
    assert (_bits(fused_addcmul(start, t1, t2, value)) == _bits(expected)).all()


# ---------------------------------------------------------------- five float32 steps, bit for bit
def _steps(module, name: str, kwargs: dict, steps: int = 5) -> list:
    """The float32 parameters after ``steps`` steps of ``module.optim.<name>`` on fixed gradients."""
    shapes = [(2003,), (20, 30)]
    params = [module.tensor(_random(10 + i, *shape), requires_grad=True) for i, shape in enumerate(shapes)]
    optimizer = getattr(module.optim, name)(params, **kwargs)
    for step in range(steps):
        for i, (p, shape) in enumerate(zip(params, shapes)):
            p.grad = module.tensor(_random(100 * step + i, *shape))
        optimizer.step()
    return [p.detach().numpy().copy() for p in params]


def _differing(name: str, kwargs: dict, steps: int = 5) -> int:
    ours, theirs = _steps(cr, name, kwargs, steps), _steps(torch, name, kwargs, steps)
    return sum(int((_bits(a) != _bits(b)).sum()) for a, b in zip(ours, theirs))


@pytest.fixture
def torchs_sqrt(monkeypatch):
    """NumPy's float32 sqrt replaced by torch's: torch's CPU sqrt (MKL's vector sqrt) is not correctly
    rounded (about 17% of random inputs a last-bit neighbour away from NumPy's), so an optimizer
    that takes one is compared on the rest of its arithmetic."""
    numpy_sqrt = np.sqrt

    def sqrt(array, *args, **kwargs):
        array = np.asarray(array)
        if array.dtype != np.float32 or array.ndim == 0 or args or kwargs:
            return numpy_sqrt(array, *args, **kwargs)
        return torch.from_numpy(np.ascontiguousarray(array)).sqrt().numpy()

    monkeypatch.setattr(np, "sqrt", sqrt)


_WITH_SQRT = [
    ("Adagrad", {}), ("Adagrad", {"weight_decay": 0.1, "lr_decay": 0.01}),
    ("Adagrad", {"maximize": True, "initial_accumulator_value": 0.1}),
    ("RMSprop", {}), ("RMSprop", {"centered": True}), ("RMSprop", {"momentum": 0.9}),
    ("RMSprop", {"centered": True, "momentum": 0.9, "weight_decay": 0.1, "maximize": True}),
    ("Adadelta", {}), ("Adadelta", {"weight_decay": 0.1, "lr": 0.5, "maximize": True}),
    ("NAdam", {}), ("NAdam", {"weight_decay": 0.1, "maximize": True}),
    ("NAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(("name", "kwargs"), _WITH_SQRT)
def test_optimizer_steps_round_as_torchs_but_for_sqrt(torchs_sqrt, name, kwargs, foreach):
    assert _differing(name, {**kwargs, "foreach": foreach}) == 0


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.1, "maximize": True}])
def test_adamax_steps_are_torchs_to_the_bit(kwargs, foreach):
    assert _differing("Adamax", {**kwargs, "foreach": foreach}) == 0


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.1, "maximize": True}, {"weight_decay": 0.1,
                                                                                   "decoupled_weight_decay": True}])
def test_radam_steps_round_as_torchs_but_for_sqrt(torchs_sqrt, kwargs, foreach):
    # twelve steps: with beta2 = 0.999 the step is rectified (adaptive) from the seventh on
    assert _differing("RAdam", {**kwargs, "foreach": foreach}, steps=12) == 0


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"weight_decay": 0.1, "t0": 2, "maximize": True}])
def test_asgd_steps_and_average_are_torchs_to_the_bit(kwargs, foreach):
    # t0=2: the running average ax starts moving at step 3 (mu < 1)
    def run(module):
        p = module.tensor(_random(7, 3001), requires_grad=True)
        optimizer = module.optim.ASGD([p], foreach=foreach, **kwargs)
        for step in range(6):
            p.grad = module.tensor(_random(200 + step, 3001))
            optimizer.step()
        return [p.detach().numpy().copy(), optimizer.state[p]["ax"].numpy().copy()]

    for ours, theirs in zip(run(cr), run(torch)):
        assert (_bits(ours) == _bits(theirs)).all()


@pytest.mark.parametrize("kwargs", [{}, {"maximize": True, "lr": 0.01}])
def test_sparse_adam_steps_round_as_torchs_but_for_sqrt(torchs_sqrt, kwargs):
    weight = _random(20, 50, 16)
    target = _random(21, 20, 16)
    rows = [np.random.default_rng(30 + step).integers(0, 50, size=20) for step in range(5)]

    def run(module):
        embedding = module.nn.Embedding(50, 16, sparse=True)
        with module.no_grad():
            embedding.weight.copy_(module.tensor(weight))
        optimizer = module.optim.SparseAdam(embedding.parameters(), **kwargs)
        for index in rows:  # repeated rows: their gradients are summed, as torch's coalesce
            optimizer.zero_grad()
            ((embedding(module.tensor(index)) - module.tensor(target)) ** 2).sum().backward()
            optimizer.step()
        return embedding.weight.detach().numpy().copy()

    assert (_bits(run(cr)) == _bits(run(torch))).all()


# ---------------------------------------------------------------- cumsum's gradient for a half-precision input
@pytest.mark.parametrize("dtypes", [("float16", "float32"), ("float16", "float64"), ("bfloat16", "float32"),
                                    ("float16", None), ("bfloat16", None)])
def test_cumsum_gradient_of_a_half_precision_input_is_torchs(dtypes):
    # torch's cumsum_backward(grad.to(self.scalar_type()), dim): the reversed running sum in the
    # input's half precision (a float32 total, each value rounded to it)
    input_dtype, dtype = dtypes
    rng = np.random.default_rng(5)
    for _ in range(10):
        shape = tuple(int(n) for n in rng.integers(1, 9, size=3))
        dim = int(rng.integers(0, 3))
        values = (rng.standard_normal(shape) * 3).astype(np.float32)  # float32 -> half rounds as torch's
        upstream = rng.standard_normal(shape)
        grads = []
        for module in (cr, torch):
            x = module.tensor(values).to(getattr(module, input_dtype)).requires_grad_()
            y = module.cumsum(x, dim, **({} if dtype is None else {"dtype": getattr(module, dtype)}))
            y.backward(module.tensor(upstream, dtype=y.dtype))
            grads.append(x.grad.float().numpy())
        assert (_bits(grads[0]) == _bits(grads[1])).all()


# ---------------------------------------------------------------- torch.embedding_bag, ATen's form
def _aten_bag_results(module, call):
    """``call(module)``'s four results as (dtype name, shape, values), or its error's class and message."""
    try:
        results = call(module)
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return type(error).__name__, str(error)
    assert type(results) is tuple and len(results) == 4
    return [(str(r.dtype).split(".")[-1], tuple(r.shape), r.tolist()) for r in results]


def _weight(module, dtype="float32", requires_grad=False):
    return module.tensor(_random(40, 6, 3), dtype=getattr(module, dtype)).requires_grad_(requires_grad)


_INDICES = [1, 2, 4, 5, 4, 3, 2, 0]
_OFFSETS = [0, 2, 2, 5]


@pytest.mark.parametrize("call", [
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor(_OFFSETS)),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor(_OFFSETS), False, 1),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor(_OFFSETS), False, 2),
    lambda m: m.embedding_bag(_weight(m, requires_grad=True), m.tensor(_INDICES), m.tensor(_OFFSETS), False, 0),
    lambda m: m.embedding_bag(_weight(m, "float64"), m.tensor(_INDICES), m.tensor(_OFFSETS), False, 0),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor([0, 2, 2, 8]), False, 0, False, None, True),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor([0, 2, 2, 8]), False, 2, False, None, True),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor(_OFFSETS), False, 1, False, None, False, 4),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor(_OFFSETS), False, 0, False, None, False, -2),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor(_OFFSETS), False, 2, False, None, False, 4),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor(_OFFSETS), False, 0, False, m.ones(8)),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES, dtype=m.int32), m.tensor(_OFFSETS, dtype=m.int32),
                              False, 1),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES, dtype=m.int32), m.tensor(_OFFSETS), False, 1),
    lambda m: m.embedding_bag(_weight(m), m.tensor([], dtype=m.int64), m.tensor([0, 0]), False, 1),
    lambda m: m.embedding_bag(weight=_weight(m), indices=m.tensor(_INDICES), offsets=m.tensor(_OFFSETS), mode=1),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), None),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor(_OFFSETS), mode="sum"),
    lambda m: m.embedding_bag(_weight(m), m.tensor(_INDICES), m.tensor(_OFFSETS), False, 3),
    lambda m: m.embedding_bag(m.tensor(_INDICES), _weight(m), m.tensor(_OFFSETS)),
])
def test_top_level_embedding_bag_takes_atens_arguments_and_returns_its_four_results(call):
    assert _aten_bag_results(cr, call) == _aten_bag_results(torch, call)


def test_top_level_embedding_bag_records_only_its_bags():
    for module in (cr, torch):
        weight = _weight(module, requires_grad=True)
        results = module.embedding_bag(weight, module.tensor(_INDICES), module.tensor(_OFFSETS), False, 1)
        assert [r.requires_grad for r in results] == [True, False, False, False]
        assert type(results[0].grad_fn).__name__ == "EmbeddingBagBackward0"
    assert cr.embedding_bag is not cr.nn.functional.embedding_bag


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_embedding_bag_sums_row_after_row_and_divides_the_sum(mode, dtype):
    # torch adds a bag's rows one after another and divides a mean's sum once; chainrule summed
    # more than eight rows blockwise and scaled each row by 1/size before summing
    rng = np.random.default_rng(8)
    for _ in range(10):
        indices = rng.integers(0, 12, size=40)
        offsets = np.sort(rng.integers(0, 41, size=4))
        offsets[0] = 0
        weight = rng.standard_normal((12, 5)).astype(dtype)
        results = [module.nn.functional.embedding_bag(module.tensor(indices), module.tensor(weight),
                                                      module.tensor(offsets), mode=mode).numpy()
                   for module in (cr, torch)]
        assert np.array_equal(results[0], results[1])


# ---------------------------------------------------------------- addbmm(..., out=) across meta and the CPU
def _addbmm_outcome(module, devices, out_dtype="float32"):
    """addbmm's result device, shape and out-identity (values only on the CPU with CPU operands: torch
    reads a meta operand's missing memory), or its error's class and message."""
    input_device, batch1_device, batch2_device, out_device = devices
    out = module.ones(3, 5, dtype=getattr(module, out_dtype), device=out_device)
    try:
        result = module.addbmm(module.ones(3, 5, device=input_device), module.ones(2, 3, 4, device=batch1_device),
                               module.ones(2, 4, 5, device=batch2_device), beta=0.5, alpha=2, out=out)
    except Exception as error:  # noqa: BLE001 - the class is what is compared
        return type(error).__name__, str(error)
    values = result.tolist() if set(devices) == {"cpu"} else None
    return result.device.type, tuple(result.shape), result is out, values


@pytest.mark.parametrize("devices", [(a, b, c, d) for a in ("cpu", "meta") for b in ("cpu", "meta")
                                     for c in ("cpu", "meta") for d in ("cpu", "meta")])
def test_addbmm_out_across_meta_and_cpu_as_torch(devices):
    # torch copies input into out first: across meta and the CPU that copy is refused, whatever the batches
    assert _addbmm_outcome(cr, devices) == _addbmm_outcome(torch, devices)


@pytest.mark.parametrize("out_dtype", ["float64", "int64", "float16"])
def test_addbmm_out_of_another_dtype_as_torch(out_dtype):
    assert _addbmm_outcome(cr, ("cpu",) * 4, out_dtype) == _addbmm_outcome(torch, ("cpu",) * 4, out_dtype)


def test_addbmm_resizes_out_silently_and_takes_input_in_outs_dtype():
    import warnings

    results = []
    for module in (cr, torch):
        out = module.ones(7)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch's addbmm resizes out without the deprecation warning
            module.addbmm(module.ones(3, 5, dtype=module.float64), module.ones(2, 3, 4), module.ones(2, 4, 5), out=out)
        results.append((tuple(out.shape), str(out.dtype).split(".")[-1], out.tolist()))
    assert results[0] == results[1]


# ---------------------------------------------------------------- complex parameters, as real pairs
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(("name", "kwargs"), [("ASGD", {"t0": 2}), ("Adam", {}), ("RMSprop", {"centered": True}),
                                              ("NAdam", {}), ("Adagrad", {"weight_decay": 0.1}), ("RMSprop", {"weight_decay": 0.1}), ("Adadelta", {"weight_decay": 0.1}), ("Adamax", {"weight_decay": 0.1})])
def test_complex_parameter_steps_round_as_torchs_but_for_sqrt(torchs_sqrt, name, kwargs, foreach):
    rng = np.random.default_rng(9)
    start = (rng.standard_normal(300) + 1j * rng.standard_normal(300)).astype(np.complex64)
    grads = [(rng.standard_normal(300) + 1j * rng.standard_normal(300)).astype(np.complex64) for _ in range(5)]
    results = []
    for module in (cr, torch):
        p = module.tensor(start.copy(), requires_grad=True)
        optimizer = getattr(module.optim, name)([p], foreach=foreach, **kwargs)
        for grad in grads:
            p.grad = module.tensor(grad.copy())
            optimizer.step()
        results.append(p.detach().numpy().view(np.uint32).copy())
    assert (results[0] == results[1]).all()


# ---------------------------------------------------------------- float16 / bfloat16 parameters
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize(("name", "kwargs"), [("Adagrad", {}), ("RMSprop", {"centered": True}),
                                              ("RMSprop", {"weight_decay": 0.1}),
                                              ("Adadelta", {}), ("Adamax", {}), ("Adam", {"amsgrad": True}),
                                              ("Adam", {"weight_decay": 0.1}), ("AdamW", {}), ("NAdam", {}),
                                              ("NAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
                                              ("RAdam", {}), ("RAdam", {"weight_decay": 0.1})])
def test_half_precision_steps_are_torchs_to_the_bit(name, kwargs, dtype):
    # torch computes each fused op (lerp, addcmul, addcdiv, mul by a number) in float32 and rounds once;
    # chainrule rounded the numbers (beta2 = 0.999 is 1.0 in bfloat16) and each step in the low precision
    rng = np.random.default_rng(11)
    start, grads = rng.standard_normal(2000), [rng.standard_normal(2000) for _ in range(5)]
    results = []
    for module in (cr, torch):
        low = getattr(module, dtype)
        p = module.tensor(start, dtype=module.float32).to(low).requires_grad_()
        optimizer = getattr(module.optim, name)([p], **kwargs)
        for grad in grads:
            p.grad = module.tensor(grad, dtype=module.float32).to(low)
            optimizer.step()
        results.append(p.detach().float().numpy())
    assert (_bits(results[0]) == _bits(results[1])).all()
