"""Two GPUs (the stand-in pretending two): every op runs on its tensors' GPU, whichever is current.

CuPy launches and allocates on its *current* device; torch runs an op where its tensors are. The
stand-in with two devices refuses, as CuPy does between GPUs without peer access, any kernel whose
arrays are not on the current device — so each test here fails if some path forgets to run on
its data's GPU (``_backend.follow_device``), or allocates on the wrong one.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import chainrule
from chainrule import nn
from chainrule._backend import use_standin_cuda
from chainrule.nn import functional as F
from chainrule.testing import standin
from chainrule.testing.opinfo import op_db

from ._registry_run import run_on_both
from .test_training_step import MODELS, _step, train_on_cpu_and_device

CUDA1 = chainrule.device("cuda:1")


@pytest.fixture
def two_gpus():
    with use_standin_cuda(devices=2):
        standin.reset_transfers()
        try:
            yield standin
        finally:
            chainrule.set_default_device(None)


def test_the_stand_in_refuses_a_kernel_on_another_gpu(two_gpus):
    x = two_gpus.module.ones(3)  # made on device 0, the current one
    with two_gpus.module.cuda.Device(1):
        assert x[1:].device.id == 0  # a view stays where its memory is
        with pytest.raises(ValueError, match="different from the current device"):
            x + 1


OPTIMIZERS = {
    "sgd": lambda params: chainrule.optim.SGD(params, lr=0.1, momentum=0.9),
    "adam": lambda params: chainrule.optim.Adam(params, lr=0.01, amsgrad=True),
    "adamw_foreach": lambda params: chainrule.optim.AdamW(params, lr=0.01, foreach=True),
    "rmsprop": lambda params: chainrule.optim.RMSprop(params, lr=0.01, momentum=0.5),
}


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize("make_model", MODELS.values(), ids=MODELS.keys())
def test_training_step_on_the_second_gpu(two_gpus, make_model, make_optimizer):
    # torch's DDP tutorial: model.to(rank) with no set_device, so GPU 0 stays current
    train_on_cpu_and_device(two_gpus, make_model, make_optimizer, CUDA1)
    assert chainrule.cuda.current_device() == 0  # the user's device is untouched


class _Split(nn.Module):
    """torch's model-parallel tutorial: the first half on GPU 0, the second on GPU 1."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh())
        self.second = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        return self.second(self.first(x.to(self.first[0].weight.device)).to(self.second[0].weight.device))


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_a_model_split_over_two_gpus_trains_as_on_the_cpu(two_gpus, make_optimizer):
    chainrule.manual_seed(0)
    model = _Split()
    split = copy.deepcopy(model)
    split.first.to("cuda:0")
    split.second.to("cuda:1")
    rng = np.random.default_rng(1)
    x = chainrule.tensor(rng.standard_normal((5, 6)).astype(np.float32))
    y = chainrule.tensor(rng.integers(0, 3, 5))
    cpu_optimizer, split_optimizer = make_optimizer(model.parameters()), make_optimizer(split.parameters())
    for _ in range(3):
        cpu_loss = _step(model, cpu_optimizer, x, y)
        split_loss = _step(split, split_optimizer, x, y.to("cuda:1"))
        np.testing.assert_allclose(split_loss.item(), cpu_loss.item(), rtol=1e-5)
    for (name, p), q in zip(model.named_parameters(), split.parameters()):
        expected = chainrule.device("cuda:0") if name.startswith("first") else CUDA1
        assert q.device == expected and q.grad.device == expected, name
        np.testing.assert_allclose(q.detach().cpu().resolve_conj().numpy(), p.detach().resolve_conj().numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_creation_lands_on_the_named_or_selected_gpu(two_gpus):
    cuda = chainrule.cuda
    for make in (lambda d: chainrule.zeros(2, device=d), lambda d: chainrule.randn(2, device=d),
                 lambda d: chainrule.arange(3, device=d), lambda d: chainrule.tensor([1.0], device=d),
                 lambda d: chainrule.full((2,), 3.0, device=d), lambda d: chainrule.eye(2, device=d),
                 lambda d: chainrule.randint(0, 5, (3,), device=d), lambda d: chainrule.randperm(4, device=d)):
        assert make("cuda:1").device == CUDA1
        assert make("cuda").device == chainrule.device("cuda:0")
        with cuda.device(1):
            assert make("cuda").device == CUDA1 and cuda.current_device() == 1
        assert cuda.current_device() == 0
    cuda.set_device(1)
    try:
        assert chainrule.ones(2, device="cuda").device == CUDA1
        assert chainrule.ones(2).cuda().device == CUDA1
    finally:
        cuda.set_device(0)
    a = chainrule.ones(3, device="cuda:1")
    for made in (chainrule.zeros_like(a), chainrule.randn_like(a), chainrule.full_like(a, 2.0), a.new_zeros(2),
                 a.new_tensor([1.0]), chainrule.normal(a, 1.0), F.dropout(a, 0.5), nn.init.normal_(a.clone()),
                 chainrule.bernoulli(a * 0.5)):
        assert made.device == CUDA1


def test_tensors_on_two_gpus_do_not_mix(two_gpus):
    a, b = chainrule.ones(2, device="cuda:0"), chainrule.ones(2, device="cuda:1")
    for combine in (lambda: a + b, lambda: a * b, lambda: chainrule.cat([a, b]), lambda: a @ b):
        with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device.*cuda:0 and cuda:1"):
            combine()
    with chainrule.no_grad():  # the unrecorded fast path checks too
        with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
            a + b


# every op of the registry, a strided subset of its cases, on the GPU that is not current
CASES = [case for entry in op_db for case in entry.samples()[:1]][::3]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_on_the_second_gpu_matches_cpu(case):
    run_on_both(case, device="cuda:1", gpus=2)
