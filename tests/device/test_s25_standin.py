"""Host/device mix-ups the whole programs (tests/programs) found on the stand-in GPU path.

Each mixes a CPU tensor with a CUDA one where torch raises its RuntimeError; CuPy (and the
stand-in, as strict as CuPy 14.2) would raise a TypeError from inside the op instead. torch has no
CUDA here, so the expected words are torch's own, quoted from its CUDA errors. gradcheck on CUDA
tensors, which torch supports, checks against torch's CPU gradcheck of the same function.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as F

MIXED = r"Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("op", ["index_select", "index_add", "index_copy", "index_fill", "gather", "scatter",
                                "scatter_add", "embedding", "masked_fill", "nll_loss", "cross_entropy"])
def test_an_index_mask_or_target_on_the_cpu_for_a_cuda_tensor_is_torchs_runtime_error(cuda, op):
    x = chainrule.randn(4, 3, device="cuda")
    index, row = chainrule.tensor([0, 2]), chainrule.tensor([[0, 1, 0]])
    calls = {
        "index_select": lambda: x.index_select(0, index),
        "index_add": lambda: x.index_add(0, index, chainrule.ones(2, 3, device="cuda")),
        "index_copy": lambda: x.index_copy(0, index, chainrule.ones(2, 3, device="cuda")),
        "index_fill": lambda: x.index_fill(0, index, 1.0),
        "gather": lambda: x.gather(0, row),
        "scatter": lambda: x.scatter(0, row, 1.0),
        "scatter_add": lambda: x.scatter_add(0, row, chainrule.ones(1, 3, device="cuda")),
        "embedding": lambda: F.embedding(index, x),
        "masked_fill": lambda: x.masked_fill(chainrule.ones(4, 3, dtype=chainrule.bool), 0.0),
        "nll_loss": lambda: F.nll_loss(x, chainrule.tensor([0, 1, 2, 0])),
        "cross_entropy": lambda: F.cross_entropy(x, chainrule.tensor([0, 1, 2, 0])),
    }
    with pytest.raises(RuntimeError, match=MIXED):
        calls[op]()


@pytest.mark.parametrize("op", ["index_select", "embedding", "masked_fill", "cross_entropy"])
def test_a_cuda_index_mask_or_target_for_a_cpu_tensor_is_torchs_runtime_error(cuda, op):
    x, index = chainrule.randn(5, 3), chainrule.tensor([0, 2], device="cuda")
    calls = {"index_select": lambda: x.index_select(0, index), "embedding": lambda: F.embedding(index, x),
             "masked_fill": lambda: x.masked_fill(chainrule.ones(5, 3, dtype=chainrule.bool, device="cuda"), 0.0),
             "cross_entropy": lambda: F.cross_entropy(x, chainrule.tensor([0, 1, 2, 0, 1], device="cuda"))}
    with pytest.raises(RuntimeError, match=MIXED):
        calls[op]()


def test_the_same_ops_with_the_index_on_the_device_match_the_cpu(cuda):
    data = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    for device in ("cpu", "cuda"):
        x, index = chainrule.tensor(data, device=device), chainrule.tensor([0, 2], device=device)
        target = chainrule.tensor([0, 1, 2, 0], device=device)
        got = (x.index_select(0, index).sum() + F.embedding(index, x).sum() + F.cross_entropy(x, target)).item()
        if device == "cpu":
            want = got
    assert got == pytest.approx(want, rel=1e-6)


def test_a_cpu_tensor_indexed_by_a_cuda_index_is_torchs_runtime_error(cuda):
    x, index = chainrule.randn(4, 3), chainrule.tensor([0, 2], device="cuda")
    words = r"indices should be either on cpu or on the same device as the indexed tensor \(cpu\)"
    with pytest.raises(RuntimeError, match=words):
        x[index]
    with pytest.raises(RuntimeError, match=words):
        x[index, 1]
    with pytest.raises(RuntimeError, match=words):
        x[index] = 1.0
    assert x[chainrule.tensor(1, device="cuda")].tolist() == x[1].tolist()  # a 0-d index is a number
    assert chainrule.randn(4, 3, device="cuda")[chainrule.tensor([0, 2])].device.type == "cuda"  # copied over


def test_isclose_and_allclose_across_devices_are_torchs_runtime_error(cuda):
    on_gpu, on_cpu = chainrule.ones(2, device="cuda"), chainrule.ones(2)
    with pytest.raises(RuntimeError, match=MIXED):
        chainrule.isclose(on_gpu, on_cpu)
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        chainrule.allclose(on_cpu, on_gpu)
    assert chainrule.isclose(on_gpu, chainrule.tensor(1.0)).tolist() == [True, True]  # a 0-d CPU tensor mixes


def test_grid_sample_with_input_and_grid_on_two_devices_is_torchs_runtime_error(cuda):
    grid = F.affine_grid(chainrule.tensor([[[1.0, 0, 0], [0, 1, 0]]], device="cuda"), (1, 1, 4, 4),
                         align_corners=False)
    with pytest.raises(RuntimeError, match=r"grid_sampler\(\): expected input and grid to be on same device, "
                                           r"but input is on cpu and grid is on cuda:0"):
        F.grid_sample(chainrule.ones(1, 1, 4, 4), grid, align_corners=False)
    image = chainrule.rand(1, 1, 4, 4, device="cuda")
    assert (F.grid_sample(image, grid, align_corners=False) - image).abs().max().item() < 1e-6


def test_pack_padded_sequence_refuses_cuda_lengths_as_torch(cuda):
    padded = chainrule.randn(3, 2, 4, device="cuda")
    with pytest.raises(RuntimeError, match=r"'lengths' argument should be a 1D CPU int64 tensor, but got 1D "
                                           r"cuda:0 Long tensor"):
        chainrule.nn.utils.rnn.pack_padded_sequence(padded, chainrule.tensor([3, 2], device="cuda"))
    packed = chainrule.nn.utils.rnn.pack_padded_sequence(padded, chainrule.tensor([3, 2]))
    assert packed.data.device.type == "cuda" and packed.batch_sizes.tolist() == [2, 2, 1]


def _gradchecks(lib, x):
    def f(t):
        return (t * t).sin()
    return [lib.autograd.gradcheck(lambda t: f(t).sum(0), (x,)),
            lib.autograd.gradcheck(f, (x,), fast_mode=True),
            lib.autograd.gradcheck(f, (x,), check_forward_ad=True),
            lib.autograd.gradgradcheck(f, (x,))]


def test_gradcheck_on_cuda_tensors_gives_torchs_answers(cuda):
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(1).standard_normal((3, 2))
    want = _gradchecks(torch, torch.tensor(data, requires_grad=True))
    got = _gradchecks(chainrule, chainrule.tensor(data, device="cuda", requires_grad=True))
    assert got == want == [True, True, True, True]
    x = chainrule.tensor(data, device="cuda", requires_grad=True)
    with pytest.raises(chainrule.autograd.GradcheckError, match="expected to be zero"):
        chainrule.autograd.gradcheck(lambda t: (t * t).detach().sin(), (x,))


def test_run_py_puts_a_program_on_the_stand_in_gpu(tmp_path):
    sys.path.insert(0, str(REPO / "tests" / "programs"))
    try:
        import run
    finally:
        sys.path.remove(str(REPO / "tests" / "programs"))
    script = tmp_path / "where.py"
    script.write_text("import sys, torch\nprint(torch.cuda.is_available(), torch.get_default_device(), "
                      "torch.zeros(2).device, __name__, sys.argv[0] == __file__)\n")
    env = run.program_environment("chainrule", 0, standin_cuda=True)
    assert env["CHAINRULE_STANDIN_CUDA"] == "1"
    with pytest.raises(ValueError, match="standin_cuda needs the chainrule backend"):
        run.program_environment("torch", 0, standin_cuda=True)
    assert run.program_command(script) == [sys.executable, str(script)]
    completed = subprocess.run(run.program_command(script, "cuda"), env=env, capture_output=True, text=True,
                               timeout=120, cwd=tmp_path)
    assert completed.stdout.split() == ["True", "cuda:0", "cuda:0", "__main__", "True"], completed.stderr


def test_gpu_check_runs_a_whole_program_on_the_stand_in_against_its_calibration(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check_s25", REPO / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.main(["--dry-run", "--standin", "--sections", "programs"]) == 0
    text = capsys.readouterr().out
    assert "1 programs (a dry run: a fixed few) with set_default_device('cuda'), judged against their calibrated bands" in text
    assert "   ok   lbfgs_curve_fit: same," in text and "programs: 1 same of 1" in text
    assert "SECTION FAILED" not in text
    assert '"same": 1' in (tmp_path / "gpu_check.json").read_text()


class _TiedModel(chainrule.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = chainrule.nn.Embedding(5, 3)
        self.rnn = chainrule.nn.LSTM(3, 3)
        self.decoder = chainrule.nn.Linear(3, 5)
        self.decoder.weight = self.encoder.weight  # tied, as word_language_model's tie_weights
        self.register_buffer("scale", chainrule.ones(3))


def test_loading_a_whole_cuda_model_gives_it_back_on_the_device_with_its_ties(cuda, tmp_path):
    # torch.save(model) / torch.load(weights_only=False): torch restores every storage to its device
    model = _TiedModel().to("cuda")
    chainrule.save(model, tmp_path / "model.pt")
    loaded = chainrule.load(tmp_path / "model.pt", weights_only=False)
    assert {str(p.device) for p in loaded.parameters()} == {"cuda:0"} and loaded.scale.device.type == "cuda"
    assert loaded.decoder.weight is loaded.encoder.weight
    assert all(type(p) is chainrule.nn.Parameter and p.is_leaf and p.grad_fn is None for p in loaded.parameters())
    tokens = chainrule.tensor([[1], [4]], device="cuda")
    assert loaded.rnn(loaded.encoder(tokens))[0].tolist() == model.rnn(model.encoder(tokens))[0].tolist()
    on_cpu = chainrule.load(tmp_path / "model.pt", weights_only=False, map_location="cpu")
    assert {str(p.device) for p in on_cpu.parameters()} == {"cpu"}
    chainrule.save(model.encoder.weight, tmp_path / "weight.pt")
    weight = chainrule.load(tmp_path / "weight.pt", weights_only=False)
    assert type(weight) is chainrule.nn.Parameter and weight.is_leaf and weight.device.type == "cuda"


def _default_device_makers(lib, array, cpu_tensor):
    return {"as_tensor(ndarray)": lambda: lib.as_tensor(array), "asarray(ndarray)": lambda: lib.asarray(array),
            "as_tensor(cpu tensor)": lambda: lib.as_tensor(cpu_tensor), "asarray(cpu tensor)": lambda: lib.asarray(cpu_tensor),
            "tensor(ndarray)": lambda: lib.tensor(array), "from_numpy": lambda: lib.from_numpy(array),
            "as_tensor(ndarray, device='cpu')": lambda: lib.as_tensor(array, device="cpu"),
            "zeros_like(cpu tensor)": lambda: lib.zeros_like(cpu_tensor)}


def test_as_tensor_and_asarray_make_tensors_on_the_default_device_as_torch(cuda):
    # torch's set_default_device covers tensor, as_tensor and asarray (torch.utils._device), not
    # from_numpy nor *_like; torch is asked with 'meta' as its default (it has no CUDA here)
    torch = pytest.importorskip("torch")
    array = np.ones(3, np.float32)
    torch.set_default_device("meta")
    try:
        want = {name: make().device.type != "cpu" for name, make in
                _default_device_makers(torch, array, torch.ones(2, device="cpu")).items()}
    finally:
        torch.set_default_device(None)
    chainrule.set_default_device("cuda")
    got = {name: make().device.type != "cpu" for name, make in
           _default_device_makers(chainrule, array, chainrule.ones(2, device="cpu")).items()}
    assert got == want
    assert sum(want.values()) == 5


def test_weighted_random_sampler_keeps_cuda_weights_and_draws_there_as_torch(cuda):
    # torch keeps as_tensor(weights, dtype=double) where it is and draws with torch.multinomial, so a
    # CPU generator for CUDA weights fails at the first draw (distill_data_utils under a CUDA default)
    from chainrule.utils.data import WeightedRandomSampler

    weights = chainrule.tensor([0.0, 1.0, 0.0, 3.0], device="cuda")
    sampler = WeightedRandomSampler(weights, 8)
    assert sampler.weights.device.type == "cuda" and sampler.weights.dtype == chainrule.float64
    drawn = list(sampler)
    assert len(drawn) == 8 and set(drawn) <= {1, 3} and all(type(i) is int for i in drawn)
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        list(WeightedRandomSampler(weights, 8, generator=chainrule.Generator()))
    assert sorted(WeightedRandomSampler(weights, 2, replacement=False)) == [1, 3]
    with pytest.raises(ValueError, match=r"weights should be a 1d sequence but given weights have shape \(2, 2\)"):
        WeightedRandomSampler(chainrule.ones(2, 2, device="cuda"), 2)


def test_gpu_check_tells_a_programs_own_mix_up_from_a_failure(monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check_s25", REPO / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    harness = gpu_check._program_harness()
    mixed = "RuntimeError: Expected all tensors to be on the same device"

    def fake_run(program, backend, seed=0, timeout=0, *, standin_cuda=False, default_device=None, extra_env=None):
        on_device = default_device is not None
        code = 1 if on_device and program in ("capsule_net", "gan") else 0
        stdout = "" if code else "FINAL loss=0.5\n"
        return harness.Result(program, backend, seed, code, stdout, mixed if code else "", 1.0,
                              harness.parse_final(stdout) if not code else None)

    monkeypatch.setattr(harness, "run_program", fake_run)
    monkeypatch.setattr(harness, "calibration_problems", lambda result, expected, on_device=False:
                        [] if result.returncode == 0 else [result.stderr])
    monkeypatch.setattr(gpu_check, "_program_harness", lambda: harness)
    monkeypatch.setattr(gpu_check, "DRY_RUN_PROGRAMS", ("capsule_net", "gan", "vae"))
    gpu_check.main(["--dry-run", "--standin", "--sections", "programs"])
    text = capsys.readouterr().out
    assert "   ok   capsule_net: fails as torch does, 1.0 s: " + mixed in text
    assert "   FAIL gan: fails, 1.0 s: " + mixed in text and "   ok   vae: same" in text
    assert "programs: 1 same, 1 fails, 1 fails as torch does of 3" in text
