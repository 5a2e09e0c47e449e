"""bfloat16 and uint16/32/64 against torch: the op registry run in bfloat16 (forward and gradient),
promotion, finfo, printing, conversion, accumulation in float32, serialization, and chainrule
without ml_dtypes (the optional "bf16" extra)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")
pytest.importorskip("ml_dtypes")

from chainrule.testing import opinfo  # noqa: E402

from .ops.harness import _as_list, _make  # noqa: E402

# torch.testing.assert_close's bfloat16 defaults; atol also scales with the output's magnitude, since
# an op composed of several bfloat16 steps rounds where torch's fused kernel does not
RTOL, ATOL, SCALED_ATOL = 1.6e-2, 1e-5, 1.6e-2

# the families whose entries run in bfloat16 here: one sample per entry (a fixed budget)
FAMILIES = ("elementwise", "reduce", "activation", "loss", "normalization", "conv", "pool", "nn_functional",
            "statistics")

# Ops torch's CPU kernels refuse in bfloat16 ("not implemented for 'BFloat16'", "Low precision dtypes not
# supported"): chainrule raises torch's error for the linalg ones (LAPACK has no such kernels) and for
# quantile/nanquantile (torch refuses every dtype but float32/float64, on every device), and computes
# the others (in float32 where they accumulate, rounded once), a documented difference. The test below
# checks torch still refuses each, so the list stays true.
TORCH_REFUSES_IN_BFLOAT16 = (
    "inverse", "det", "slogdet", "logdet", "solve_", "cdist", "matrix_power_neg", "avg_pool3d", "local_response_norm",
    "pdist", "linalg_cholesky", "cholesky", "solve_triangular", "linalg_qr", "qr", "linalg_eigh", "linalg_eigvalsh",
    "linalg_svd", "svd", "linalg_pinv", "pinverse", "linalg_matrix_rank", "linalg_cond", "linalg_lu", "linalg_lstsq",
    "linalg_vander", "multi_margin_loss", "multilabel_margin_loss", "ctc_loss", "quantile", "nanquantile",
    "histogram", "special.ndtri", "special.log_ndtr", "special.erfcx", "zeta", "special.i1",
)
# Where chainrule's bfloat16 result differs from torch's on purpose
DIFFERENCES = {
    "linalg_matrix_exp": "torch's bfloat16 matrix_exp overflows to inf on these inputs; ours is computed in float32",
    "matrix_exp": "as linalg_matrix_exp",
    "signbit": "a float32 below bfloat16's smallest subnormal rounds to -0 in torch (signbit True), to +0 in ml_dtypes",
}


def _selected_cases():
    cases = []
    for entry in opinfo.op_db:
        if entry.family not in FAMILIES:
            continue
        for case in entry.sample_cases():
            if not any(case.id.startswith(p) for p in TORCH_REFUSES_IN_BFLOAT16 + tuple(DIFFERENCES)):
                cases.append(case)
                break
    return cases


CASES = _selected_cases()


def _in_bfloat16(lib, tensors):
    return [t.detach().to(lib.bfloat16).requires_grad_(t.requires_grad)
            if hasattr(t, "is_floating_point") and t.is_floating_point() else t for t in tensors]


def _float(t) -> np.ndarray:
    return t.detach().float().numpy() if t.is_floating_point() else t.detach().numpy()


def _assert_close(ours, theirs, what):
    a, b = _float(ours), _float(theirs)
    scale = float(np.nanmax(np.abs(b[np.isfinite(b)]))) if np.isfinite(b).any() else 0.0
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=max(ATOL, SCALED_ATOL * scale), equal_nan=True, err_msg=what)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_registry_op_matches_torch_in_bfloat16(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs_in = _in_bfloat16(torch, _make(torch, case, "float32"))
        try:
            theirs = _as_list(case.fn(torch, *theirs_in))
        except (RuntimeError, NotImplementedError, TypeError) as error:
            pytest.skip(f"torch refuses it in bfloat16: {error}")
        ours_in = _in_bfloat16(chainrule, _make(chainrule, case, "float32"))
        ours = _as_list(case.fn(chainrule, *ours_in))
    assert len(ours) == len(theirs)
    for k, (o, t) in enumerate(zip(ours, theirs)):
        if not hasattr(t, "dtype"):
            continue
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], f"{case.id} output {k} dtype"
        _assert_close(o, t, f"{case.id} output {k}")
    pairs = [(o, t) for o, t in zip(ours, theirs) if getattr(t, "requires_grad", False)]
    if not pairs:
        return
    cotangents = [np.random.default_rng(7 + k).standard_normal(tuple(t.shape)).astype(np.float32)
                  for k, (_, t) in enumerate(pairs)]
    chainrule.autograd.backward([o for o, _ in pairs], [chainrule.tensor(c).to(o.dtype) for c, (o, _) in zip(cotangents, pairs)])
    torch.autograd.backward([t for _, t in pairs], [torch.tensor(c).to(t.dtype) for c, (_, t) in zip(cotangents, pairs)])
    for i, (a, b) in enumerate(zip(ours_in, theirs_in)):
        if getattr(b, "requires_grad", False) and b.grad is not None:
            assert a.grad is not None and a.grad.dtype is chainrule.bfloat16, f"{case.id} input {i} gradient"
            _assert_close(a.grad, b.grad, f"{case.id} input {i} gradient")


def test_the_registry_sweep_covers_the_families():
    assert len(CASES) > 150


@pytest.mark.parametrize("case_id", ["inverse", "cdist", "linalg_cholesky", "quantile_all", "histogram", "ctc_loss"])
def test_ops_listed_as_refused_are_still_refused_by_torch(case_id):
    case = next(c for e in opinfo.op_db for c in e.sample_cases() if c.id.startswith(case_id))
    with pytest.raises((RuntimeError, NotImplementedError)) as refusal, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        case.fn(torch, *_in_bfloat16(torch, _make(torch, case, "float32")))
    # linalg, and quantile (torch's kernel takes float32/float64 alone, on every device): torch's error
    if case_id in ("inverse", "linalg_cholesky", "quantile_all"):
        with pytest.raises(refusal.type) as ours:
            case.fn(chainrule, *_in_bfloat16(chainrule, _make(chainrule, case, "float32")))
        assert str(ours.value) == str(refusal.value)
        return
    # chainrule computes it (the documented difference)
    ours = _as_list(case.fn(chainrule, *_in_bfloat16(chainrule, _make(chainrule, case, "float32"))))
    assert all(np.isfinite(_float(o)).all() for o in ours if hasattr(o, "dtype") and o.numel())


NEW_DTYPES = ("bfloat16", "uint16", "uint32", "uint64")
ALL_DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64") + NEW_DTYPES


@pytest.mark.parametrize("a", NEW_DTYPES)
def test_promotion_matches_torch(a):
    for b in ALL_DTYPES:
        try:
            expected = torch.promote_types(getattr(torch, a), getattr(torch, b))
        except RuntimeError as error:
            with pytest.raises(RuntimeError, match=str(error)):
                chainrule.promote_types(getattr(chainrule, a), getattr(chainrule, b))
            continue
        got = chainrule.promote_types(getattr(chainrule, a), getattr(chainrule, b))
        assert got.name == str(expected).split(".")[-1], (a, b)


def test_binary_ops_follow_torch_promotion():
    x = chainrule.tensor([1.5, 2.25], dtype=chainrule.bfloat16)
    assert (x + chainrule.ones(2, dtype=chainrule.float16)).dtype is chainrule.float32
    assert (x + chainrule.ones(2)).dtype is chainrule.float32
    assert (x + chainrule.ones(2, dtype=chainrule.int64)).dtype is chainrule.bfloat16
    assert (x * 2.5).dtype is chainrule.bfloat16 and (x * 2).dtype is chainrule.bfloat16


def test_finfo_iinfo_and_metadata_match_torch():
    ours, theirs = chainrule.finfo(chainrule.bfloat16), torch.finfo(torch.bfloat16)
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, field) == getattr(theirs, field), field
    for name in ("uint16", "uint32", "uint64"):
        assert (chainrule.iinfo(getattr(chainrule, name)).max, chainrule.iinfo(getattr(chainrule, name)).bits) == \
            (torch.iinfo(getattr(torch, name)).max, torch.iinfo(getattr(torch, name)).bits)
    x = chainrule.tensor([1.1, -2.2], dtype=chainrule.bfloat16)
    assert x.element_size() == 2 and x.is_floating_point() and x.is_signed() and x.type() == "torch.BFloat16Tensor"
    assert x[0].item() == torch.tensor(1.1, dtype=torch.bfloat16).item() == 1.1015625
    assert chainrule.bfloat16.is_floating_point and chainrule.bfloat16.itemsize == 2


@pytest.mark.parametrize("values", [[1.1, 2.2, 3.3], [[1e-3, 250.0], [-7.0, 0.5]], [1.0, 2.0], [1e10, -3.0]])
def test_printing_matches_torch(values):
    ours = repr(chainrule.tensor(values, dtype=chainrule.bfloat16)).replace("chainrule.", "torch.")
    assert ours == repr(torch.tensor(values, dtype=torch.bfloat16))


def test_uint_tensors_print_and_convert_like_torch():
    for name in ("uint16", "uint32", "uint64"):
        ours = chainrule.tensor([1, 2, 3], dtype=getattr(chainrule, name))
        theirs = torch.tensor([1, 2, 3], dtype=getattr(torch, name))
        assert repr(ours).replace("chainrule.", "torch.") == repr(theirs) and ours.type() == theirs.type()
        assert ours.to(chainrule.int64).tolist() == [1, 2, 3] and ours.float().dtype is chainrule.float32
    big = chainrule.tensor([2**64 - 1], dtype=chainrule.uint64)
    assert big.item() == 2**64 - 1


def test_conversions_on_tensor_and_module():
    x = chainrule.randn(3, 4)
    for converted in (x.bfloat16(), x.to(chainrule.bfloat16), x.type(chainrule.bfloat16),
                      x.type("torch.BFloat16Tensor")):
        assert converted.dtype is chainrule.bfloat16
    with pytest.raises(RuntimeError, match="Invalid device string: 'bfloat16'"):
        x.to("bfloat16")  # a string is a device to Tensor.to, as in torch
    np.testing.assert_array_equal(x.bfloat16().float().numpy(),
                                  torch.from_numpy(x.numpy()).bfloat16().float().numpy())
    model = chainrule.nn.Sequential(chainrule.nn.Linear(4, 3), chainrule.nn.BatchNorm1d(3))
    assert all(p.dtype is chainrule.bfloat16 for p in model.to(chainrule.bfloat16).parameters())
    assert model.bfloat16().state_dict()["1.num_batches_tracked"].dtype is chainrule.int64
    assert chainrule.nn.Linear(2, 2).bfloat16().weight.dtype is chainrule.bfloat16


def test_reductions_and_matmul_accumulate_in_float32_like_torch():
    thirds = np.full(1000, 1 / 3, dtype=np.float32)
    assert chainrule.tensor(thirds).bfloat16().sum().item() == torch.tensor(thirds).bfloat16().sum().item()
    a = np.random.default_rng(0).standard_normal((32, 512)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((512, 16)).astype(np.float32)
    ours = chainrule.tensor(a).bfloat16() @ chainrule.tensor(b).bfloat16()
    theirs = torch.tensor(a).bfloat16() @ torch.tensor(b).bfloat16()
    assert ours.dtype is chainrule.bfloat16
    # float32 accumulation rounded once: at most one bfloat16 step from torch's
    np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), rtol=2 ** -7, atol=1e-2)
    for op in ("mean", "var", "std", "logsumexp"):
        args = (0,) if op == "logsumexp" else ()
        got = getattr(chainrule.tensor(thirds).bfloat16(), op)(*args)
        want = getattr(torch.tensor(thirds).bfloat16(), op)(*args)
        assert got.dtype is chainrule.bfloat16
        np.testing.assert_allclose(got.float().item(), want.float().item(), rtol=RTOL, atol=ATOL, err_msg=op)


def test_a_training_step_in_bfloat16_matches_torch():
    rng = np.random.default_rng(0)
    x, target = rng.standard_normal((16, 8)).astype(np.float32), rng.integers(0, 4, 16)
    losses, grads = [], []
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        model = lib.nn.Sequential(lib.nn.Linear(8, 32), lib.nn.GELU(), lib.nn.LayerNorm(32), lib.nn.Linear(32, 4))
        model.load_state_dict({k: lib.tensor(v) for k, v in _reference_state().items()})
        model.to(lib.bfloat16)
        loss = lib.nn.functional.cross_entropy(model(lib.tensor(x).bfloat16()), lib.tensor(target))
        loss.backward()
        losses.append(loss.float().item())
        grads.append(model[0].weight.grad)
    assert losses[0] == pytest.approx(losses[1], rel=RTOL)
    assert grads[0].dtype is chainrule.bfloat16
    _assert_close(grads[0], grads[1], "first layer's weight gradient")


def _reference_state() -> dict:
    rng = np.random.default_rng(3)
    shapes = {"0.weight": (32, 8), "0.bias": (32,), "2.weight": (32,), "2.bias": (32,), "3.weight": (4, 32),
              "3.bias": (4,)}
    return {k: (rng.standard_normal(s) * 0.3).astype(np.float32) for k, s in shapes.items()}


def test_serialization_round_trips_with_torch(tmp_path):
    state = {"w": torch.randn(3, 4).bfloat16(), "u16": torch.tensor([1, 65535], dtype=torch.uint16),
             "u64": torch.tensor([2**63 + 5], dtype=torch.uint64),
             "u32": torch.arange(6).to(torch.uint32).reshape(2, 3)[:, 1:]}
    torch.save(state, tmp_path / "torch.pt")
    loaded = chainrule.load(tmp_path / "torch.pt")
    for key, value in state.items():
        assert loaded[key].dtype.name == str(value.dtype).split(".")[-1]
        assert loaded[key].tolist() == value.tolist()
    chainrule.save(loaded, tmp_path / "ours.safetensors")
    from safetensors.torch import load_file, save_file

    back = load_file(tmp_path / "ours.safetensors")
    assert all(torch.equal(back[key], value) for key, value in state.items())
    save_file({"w": state["w"]}, tmp_path / "theirs.safetensors")
    assert chainrule.load(tmp_path / "theirs.safetensors")["w"].tolist() == state["w"].tolist()


def test_hostile_bfloat16_checkpoint_entries_are_refused(tmp_path):
    import json
    import struct

    header = json.dumps({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 5]}}).encode()
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 5)
    with pytest.raises(RuntimeError, match="not a valid checkpoint"):
        chainrule.load(tmp_path / "bad.safetensors")


def test_without_ml_dtypes_bfloat16_still_names_a_dtype():
    # sys.modules[name] = None makes the import fail as if ml_dtypes were not installed
    code = (
        "import sys; sys.modules['ml_dtypes'] = None\n"
        "import chainrule as torch\n"
        "ptdtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}['bfloat16']\n"
        "assert ptdtype is torch.bfloat16 and torch.promote_types(ptdtype, torch.float16) is torch.float32\n"
        "assert torch.cuda.is_bf16_supported() is False\n"
        "try:\n"
        "    torch.ones(2, dtype=torch.bfloat16)\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr
    assert 'pip install "chainrule[bf16]"' in result.stdout


def test_bfloat16_on_the_cuda_stand_in_follows_cupy_14():
    from chainrule import _backend

    with _backend.use_standin_cuda():
        assert chainrule.cuda.is_bf16_supported()
        x = chainrule.randn(4, 8).bfloat16().cuda()
        out = (x @ x.T).sum()
        assert out.dtype is chainrule.bfloat16 and out.device.type == "cuda"
        np.testing.assert_allclose(out.float().item(), (x.cpu() @ x.cpu().T).sum().float().item(), rtol=RTOL)


def test_cuda_autocast_to_bfloat16_on_the_stand_in():
    # nanoGPT's default: dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16', then
    # autocast('cuda', dtype=...): the linear runs in bfloat16 (float32 accumulation, one rounding),
    # softmax/cross-entropy in float32, and the gradients reach the float32 weights
    torch = pytest.importorskip("torch")
    from chainrule import _backend

    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((6, 16), (10, 16), (10,)))
    target = rng.integers(0, 10, 6)
    with _backend.use_standin_cuda():
        assert chainrule.cuda.is_bf16_supported()
        wc = chainrule.tensor(w, device="cuda", requires_grad=True)
        with chainrule.autocast("cuda", dtype=chainrule.bfloat16):
            logits = chainrule.nn.functional.linear(chainrule.tensor(x, device="cuda"), wc,
                                                    chainrule.tensor(b, device="cuda"))
            loss = chainrule.nn.functional.cross_entropy(logits, chainrule.tensor(target, device="cuda"))
        assert logits.dtype is chainrule.bfloat16 and loss.dtype is chainrule.float32
        loss.backward()
        assert wc.grad.dtype is chainrule.float32 and wc.grad.device.type == "cuda"
        ours = (logits.detach().float().cpu().numpy(), loss.item(), wc.grad.cpu().numpy())
    wt = torch.tensor(w, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tlogits = torch.nn.functional.linear(torch.tensor(x), wt, torch.tensor(b))
    tloss = torch.nn.functional.cross_entropy(tlogits.float(), torch.tensor(target))
    tloss.backward()
    np.testing.assert_array_equal(ours[0], tlogits.float().detach().numpy())
    np.testing.assert_allclose(ours[1], tloss.item(), rtol=1e-5)
    np.testing.assert_allclose(ours[2], wt.grad.numpy(), rtol=2e-2, atol=2e-3)
