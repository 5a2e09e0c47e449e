"""torch.autocast('cpu'): the same programs run under torch's and chainrule's CPU autocast give the
same dtypes, and losses and gradients within bfloat16 tolerance; the set_/is_/get_autocast_* names."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")
pytest.importorskip("ml_dtypes")

RTOL = 1.6e-2  # torch.testing's bfloat16 rtol
RNG = np.random.default_rng(0)
X = RNG.standard_normal((6, 8)).astype(np.float32)
W = RNG.standard_normal((8, 8)).astype(np.float32)
SEQ = RNG.standard_normal((2, 5, 8)).astype(np.float32)
TARGET = np.array([1, 0, 3, 2, 1, 0])

# each program: (name, fn(lib, F, x, w, seq)) — run under autocast on both libraries, dtypes compared
PROGRAMS = [
    ("linear", lambda lib, F, x, w, s: F.linear(x, w)),
    ("matmul", lambda lib, F, x, w, s: x @ w),
    ("bmm", lambda lib, F, x, w, s: lib.bmm(s, s.transpose(1, 2))),
    ("baddbmm", lambda lib, F, x, w, s: lib.baddbmm(s[:, :, :5], s, s.transpose(1, 2))),
    ("addmm", lambda lib, F, x, w, s: lib.addmm(x, x, w)),
    ("einsum", lambda lib, F, x, w, s: lib.einsum("ij,jk->ik", x, w)),
    ("conv1d", lambda lib, F, x, w, s: F.conv1d(s.transpose(1, 2), w[:, :, None])),
    ("sdpa", lambda lib, F, x, w, s: F.scaled_dot_product_attention(s, s, s)),
    ("softmax_of_linear", lambda lib, F, x, w, s: F.softmax(F.linear(x, w), -1)),
    ("layer_norm_of_linear", lambda lib, F, x, w, s: F.layer_norm(F.linear(x, w), (8,))),
    ("gelu_of_linear", lambda lib, F, x, w, s: F.gelu(F.linear(x, w))),
    ("sum_of_linear", lambda lib, F, x, w, s: F.linear(x, w).sum()),
    ("mixed_add", lambda lib, F, x, w, s: F.linear(x, w) + x),
    ("cross_entropy", lambda lib, F, x, w, s: F.cross_entropy(F.linear(x, w), lib.tensor([1, 0, 3, 2, 1, 0]))),
    ("nll_loss", lambda lib, F, x, w, s: F.nll_loss(F.log_softmax(F.linear(x, w), -1), lib.tensor([1, 0, 3, 2, 1, 0]))),
    ("prod", lambda lib, F, x, w, s: F.linear(x, w)[0, :3].prod()),
    ("elementwise_stays_float32", lambda lib, F, x, w, s: (x * 2).exp()),
]


def _inputs(lib):
    return lib.tensor(X), lib.tensor(W), lib.tensor(SEQ)


# every program in bfloat16 (torch's CPU default), a few in float16 (the same lists)
CASES = [(name, program, "bfloat16") for name, program in PROGRAMS] + [
    (name, program, "float16") for name, program in PROGRAMS if name in ("linear", "addmm", "cross_entropy", "mixed_add")]


@pytest.mark.parametrize("name,program,dtype", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_op_under_cpu_autocast_matches_torch(name, program, dtype):
    results = []
    for lib in (chainrule, torch):
        with lib.autocast("cpu", dtype=getattr(lib, dtype)):
            results.append(program(lib, lib.nn.functional, *_inputs(lib)))
    ours, theirs = results
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    scale = float(theirs.detach().float().abs().max())
    np.testing.assert_allclose(ours.detach().float().numpy(), theirs.detach().float().numpy(),
                               rtol=RTOL, atol=max(1e-5, RTOL * scale))


class _Block:
    """A small transformer block written once against both libraries."""

    @staticmethod
    def build(lib, state):
        nn = lib.nn

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.qkv = nn.Linear(8, 24)
                self.proj = nn.Linear(8, 8)
                self.norm = nn.LayerNorm(8)
                self.mlp = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
                self.head = nn.Linear(8, 4)

            def forward(self, x):
                q, k, v = self.qkv(self.norm(x)).split(8, dim=-1)
                x = x + self.proj(nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
                x = x + self.mlp(self.norm(x))
                return self.head(x).mean(1)

        block = Block()
        block.load_state_dict({k: lib.tensor(v) for k, v in state.items()})
        return block


BLOCK_SHAPES = {"qkv.weight": (24, 8), "qkv.bias": (24,), "proj.weight": (8, 8), "proj.bias": (8,),
                "norm.weight": (8,), "norm.bias": (8,), "mlp.0.weight": (16, 8), "mlp.0.bias": (16,),
                "mlp.2.weight": (8, 16), "mlp.2.bias": (8,), "head.weight": (4, 8), "head.bias": (4,)}


def test_a_transformer_training_step_under_cpu_autocast_matches_torch():
    rng = np.random.default_rng(5)
    state = {k: (rng.standard_normal(shape) * 0.3).astype(np.float32) for k, shape in BLOCK_SHAPES.items()}
    target = np.array([1, 3])
    losses, grads, grad_dtypes = [], [], []
    for lib in (chainrule, torch):
        model = _Block.build(lib, state)
        optimizer = lib.optim.SGD(model.parameters(), lr=0.1)
        step_losses = []
        for _ in range(3):
            optimizer.zero_grad()
            with lib.autocast("cpu", dtype=lib.bfloat16):
                logits = model(lib.tensor(SEQ))
                loss = lib.nn.functional.cross_entropy(logits, lib.tensor(target))
            loss.backward()
            optimizer.step()
            step_losses.append(loss.item())
        losses.append(step_losses)
        grads.append(model.qkv.weight.grad.detach().float().numpy())
        grad_dtypes.append(str(model.qkv.weight.grad.dtype).split(".")[-1])
        assert str(logits.dtype).split(".")[-1] == "bfloat16" and str(loss.dtype).split(".")[-1] == "float32"
    np.testing.assert_allclose(losses[0], losses[1], rtol=RTOL)
    assert grad_dtypes == ["float32", "float32"]  # leaves keep their own dtype, as in torch
    np.testing.assert_allclose(grads[0], grads[1], rtol=RTOL, atol=RTOL * float(np.abs(grads[1]).max()))


def test_an_mlp_step_under_cpu_autocast_matches_torch():
    losses = []
    for lib in (chainrule, torch):
        rng = np.random.default_rng(1)
        model = lib.nn.Sequential(lib.nn.Linear(8, 16), lib.nn.ReLU(), lib.nn.Linear(16, 4))
        model.load_state_dict({k: lib.tensor((rng.standard_normal(tuple(v.shape)) * 0.3).astype(np.float32))
                               for k, v in model.state_dict().items()})
        with lib.autocast("cpu"):
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(X)), lib.tensor(TARGET))
        loss.backward()
        losses.append((loss.item(), model[0].weight.grad.float().numpy()))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=RTOL)
    np.testing.assert_allclose(losses[0][1], losses[1][1], rtol=RTOL, atol=RTOL * float(np.abs(losses[1][1]).max()))


def test_autocast_state_functions_match_torch():
    for lib in (chainrule, torch):
        assert lib.is_autocast_enabled("cpu") is False and lib.get_autocast_dtype("cpu") == lib.bfloat16
        assert lib.get_autocast_dtype("cuda") == lib.float16
        with lib.autocast("cpu"):
            assert lib.is_autocast_enabled("cpu") and not lib.is_autocast_enabled()
            with lib.autocast("cpu", enabled=False):
                assert not lib.is_autocast_enabled("cpu")
                assert (lib.ones(2, 2) @ lib.ones(2, 2)).dtype == lib.float32
            assert (lib.ones(2, 2) @ lib.ones(2, 2)).dtype == lib.bfloat16
        lib.set_autocast_enabled("cpu", True)
        lib.set_autocast_dtype("cpu", lib.float16)
        try:
            assert (lib.ones(2, 2) @ lib.ones(2, 2)).dtype == lib.float16
        finally:
            lib.set_autocast_enabled("cpu", False)
            lib.set_autocast_dtype("cpu", lib.bfloat16)
        assert (lib.ones(2, 2) @ lib.ones(2, 2)).dtype == lib.float32
        assert lib.is_autocast_cache_enabled() is True
        lib.clear_autocast_cache()


@pytest.mark.parametrize("name", ["get_autocast_cpu_dtype", "get_autocast_gpu_dtype", "is_autocast_cpu_enabled"])
def test_deprecated_spellings_warn_like_torch(name):
    results = []
    for lib in (chainrule, torch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results.append(str(getattr(lib, name)()).split(".")[-1])
        assert any(issubclass(w.category, DeprecationWarning) and "is deprecated" in str(w.message) for w in caught)
    assert results[0] == results[1]


def test_unsupported_cpu_dtype_warns_and_disables_like_torch():
    for lib in (chainrule, torch):
        with pytest.warns(UserWarning, match="CPU Autocast only supports dtypes of torch.bfloat16, torch.float16"):
            with lib.autocast("cpu", dtype=lib.float64):
                assert (lib.ones(2, 2) @ lib.ones(2, 2)).dtype == lib.float32
