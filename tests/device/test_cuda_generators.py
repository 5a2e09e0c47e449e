"""CUDA random streams as torch has them, on the stand-in GPU: each device has its own generator;
``torch.manual_seed`` seeds the CPU and every device, ``torch.cuda.manual_seed`` only the current
device (the CPU stream never moves); states are torch's 16-byte (seed, offset); a
``Generator(device='cuda')`` is a stream of its own; ``fork_rng`` puts device streams back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import chainrule
from chainrule._backend import cuda_available


def device_draws():
    """One of every kind of random op on a 'cuda' tensor, as host arrays; all drawn on the device
    (no host copy until the results are read back)."""
    from chainrule.testing import standin

    x = chainrule.ones(6, 5, device="cuda")
    weights = chainrule.tensor([1.0, 2.0, 3.0, 4.0], device="cuda")
    layer = chainrule.nn.Linear(5, 3, device="cuda")  # initialised on the device, by its generator
    before = standin.transfers()
    chainrule.nn.init.kaiming_uniform_(layer.weight)
    draws = [chainrule.rand(3, device="cuda"), chainrule.randn(2, 3, device="cuda"),
             chainrule.randint(0, 100, (5,), device="cuda"), chainrule.randperm(8, device="cuda"),
             chainrule.multinomial(weights, 2), chainrule.bernoulli(x * 0.5),
             chainrule.empty(4, device="cuda").normal_(), chainrule.empty(4, device="cuda").uniform_(-1, 1),
             chainrule.nn.functional.dropout(x, 0.5, training=True), layer.weight.detach()]
    assert all(d.device.type == "cuda" for d in draws) and standin.transfers() == before
    return [d.cpu().numpy() for d in draws]


def cpu_draws():
    return [chainrule.rand(3).numpy(), chainrule.randperm(6).numpy()]


def same(first, second) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_cuda_manual_seed_repeats_device_draws_and_leaves_the_cpu_stream_alone(cuda):
    chainrule.manual_seed(0)
    reference_cpu = cpu_draws() + cpu_draws()
    chainrule.manual_seed(0)
    runs, cpu = [], []
    for _ in range(2):
        cpu.append(cpu_draws())
        chainrule.cuda.manual_seed(42)
        runs.append(device_draws())
    assert same(*runs), "cuda.manual_seed makes the device draws repeat"
    assert same(cpu[0] + cpu[1], reference_cpu), "the CPU stream is the one a run without the CUDA seed draws"
    chainrule.cuda.manual_seed(43)
    assert not same(device_draws()[:4], runs[0][:4])


def test_torch_manual_seed_seeds_the_cpu_and_every_device(cuda):
    chainrule.manual_seed(7)
    device, host = device_draws(), cpu_draws()
    chainrule.cuda.manual_seed(1)
    device_draws()
    chainrule.manual_seed(7)
    assert same(device_draws(), device) and same(cpu_draws(), host)
    chainrule.cuda.manual_seed(7)  # the device generator seeded with 7 alone: the same device stream
    assert same(device_draws(), device)
    chainrule.cuda.manual_seed_all(7)
    assert same(device_draws(), device)
    assert chainrule.cuda.initial_seed() == 7 == chainrule.initial_seed()


def test_seed_and_initial_seed(cuda):
    chainrule.manual_seed(3)
    chainrule.cuda.seed()
    fresh = chainrule.cuda.initial_seed()
    assert fresh != 3 and chainrule.initial_seed() == 3
    chainrule.cuda.seed_all()
    assert chainrule.cuda.initial_seed() != fresh and chainrule.initial_seed() == 3
    both = chainrule.seed()  # torch.seed: the CPU and every device get the same new seed
    assert chainrule.initial_seed() == both == chainrule.cuda.initial_seed()


def test_rng_state_is_torchs_16_bytes_and_replays_the_draws(cuda):
    chainrule.cuda.manual_seed(5)
    device_draws()
    state = chainrule.cuda.get_rng_state()
    assert state.dtype == chainrule.uint8 and state.device.type == "cpu" and tuple(state.shape) == (16,)
    assert state[:8].numpy().view("<u8")[0] == 5  # seed, then offset, as torch's CUDA state
    first = device_draws()
    host = cpu_draws()
    chainrule.cuda.set_rng_state(state)
    assert same(device_draws(), first)
    assert not same(cpu_draws(), host), "set_rng_state did not rewind the CPU stream"
    states = chainrule.cuda.get_rng_state_all()
    assert len(states) == chainrule.cuda.device_count() == 1
    again = device_draws()
    chainrule.cuda.set_rng_state_all(states)
    assert same(device_draws(), again)
    assert chainrule.equal(chainrule.cuda.get_rng_state("cuda:0"), chainrule.cuda.get_rng_state(0))


@pytest.mark.parametrize("bad, error, match", [
    (lambda: chainrule.zeros(16), TypeError, "RNG state must be a torch.ByteTensor"),
    (lambda: chainrule.zeros(16, dtype=chainrule.uint8, device="cuda"), TypeError, "a CPU uint8 tensor"),
    (lambda: b"\x00" * 16, TypeError, "got bytes"),
    (lambda: chainrule.zeros(15, dtype=chainrule.uint8), RuntimeError, "RNG state is wrong size"),
], ids=["float", "on_the_device", "bytes", "short"])
def test_a_bad_state_is_refused_before_anything_changes(cuda, bad, error, match):
    chainrule.cuda.manual_seed(9)
    state = chainrule.cuda.get_rng_state()
    with pytest.raises(error, match=match):
        chainrule.cuda.set_rng_state(bad())
    assert chainrule.equal(chainrule.cuda.get_rng_state(), state)


def test_a_cuda_generator_is_a_stream_of_its_own(cuda):
    generator = chainrule.Generator(device="cuda")
    assert generator.device == chainrule.device("cuda", 0)
    chainrule.cuda.manual_seed(1)
    default_stream = chainrule.rand(5, device="cuda").cpu()
    chainrule.cuda.manual_seed(1)
    generator.manual_seed(1)
    mine = chainrule.rand(5, device="cuda", generator=generator).cpu()
    assert chainrule.equal(mine, default_stream), "seeded alike, a generator draws as the default one"
    assert chainrule.equal(chainrule.rand(5, device="cuda").cpu(), default_stream), "it did not move the default"
    state = generator.get_state()
    draws = [chainrule.randn(4, device="cuda", generator=generator).cpu(),
             chainrule.empty(3, device="cuda").normal_(generator=generator).cpu(),
             chainrule.randperm(6, device="cuda", generator=generator).cpu()]
    generator.set_state(state)
    assert all(chainrule.equal(a, b) for a, b in zip(draws, [
        chainrule.randn(4, device="cuda", generator=generator).cpu(),
        chainrule.empty(3, device="cuda").normal_(generator=generator).cpu(),
        chainrule.randperm(6, device="cuda", generator=generator).cpu()]))
    assert generator.initial_seed() == 1
    assert chainrule.Generator("cuda:0").initial_seed() == torch.Generator().initial_seed()  # torch's default


def test_a_generator_of_the_other_device_type_is_refused_as_torch_refuses_it(cuda):
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        chainrule.randn(3, device="cuda", generator=chainrule.Generator())
    with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but found 'cuda'"):
        chainrule.randn(3, generator=chainrule.Generator(device="cuda"))
    with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
        chainrule.empty(3, device="cuda").uniform_(generator=chainrule.Generator())


def test_fork_rng_puts_the_device_stream_back(cuda):
    def run(fork):
        chainrule.manual_seed(4)
        before = device_draws()
        fork()
        return before, device_draws(), cpu_draws()

    def forked(**kwargs):
        with chainrule.random.fork_rng(**kwargs):
            device_draws()
            cpu_draws()

    plain = run(lambda: None)
    assert same(sum(run(forked), []), sum(plain, []))
    assert same(sum(run(lambda: forked(devices=[0])), []), sum(plain, []))
    only_cpu = run(lambda: forked(devices=[]))  # torch: the CPU stream is forked, no device's
    assert same(only_cpu[2], plain[2]) and not same(only_cpu[1][:3], plain[1][:3])
    with pytest.raises(ZeroDivisionError), chainrule.random.fork_rng():
        chainrule.rand(3, device="cuda")
        raise ZeroDivisionError  # an error in the block still puts the streams back


def test_dropout_training_is_repeatable_under_cuda_manual_seed(cuda):
    """A program: a dropout MLP trained on the GPU; cuda.manual_seed fixes its masks, and the
    DataLoader's CPU shuffling is the same whatever the device seed."""
    def train(device_seed):
        chainrule.manual_seed(0)
        model = chainrule.nn.Sequential(chainrule.nn.Linear(4, 8), chainrule.nn.Dropout(0.5),
                                        chainrule.nn.Linear(8, 1)).cuda()
        chainrule.cuda.manual_seed(device_seed)
        data = chainrule.utils.data.TensorDataset(chainrule.arange(24.0).reshape(6, 4), chainrule.ones(6, 1))
        loader = chainrule.utils.data.DataLoader(data, batch_size=2, shuffle=True)
        optimizer = chainrule.optim.SGD(model.parameters(), lr=0.01)
        order = []
        for x, y in loader:
            order.append(x[:, 0].tolist())
            optimizer.zero_grad()
            chainrule.nn.functional.mse_loss(model(x.cuda()), y.cuda()).backward()
            optimizer.step()
        return order, [p.detach().cpu().numpy() for p in model.parameters()]

    (order, params), (order_again, params_again), (order_other, params_other) = train(1), train(1), train(2)
    assert order == order_again == order_other
    assert same(params, params_again) and not same(params, params_other)


@pytest.mark.skipif(cuda_available(), reason="answers of a machine without a GPU")
def test_without_a_gpu_the_cuda_rng_answers_as_cpu_only_torch():
    for lib in (torch, chainrule):
        lib.cuda.manual_seed(1)
        lib.cuda.manual_seed_all(1)
        lib.cuda.seed()
        lib.cuda.seed_all()
        assert lib.cuda.get_rng_state_all() == [] and lib.cuda.default_generators == ()
        assert lib.cuda.set_rng_state(lib.zeros(16, dtype=lib.uint8)) is None
        assert lib.cuda.set_rng_state_all([]) is None
        with pytest.raises(AssertionError):
            lib.cuda.get_rng_state()
        with pytest.raises(AssertionError):
            lib.cuda.initial_seed()
        with pytest.raises(RuntimeError):
            lib.Generator(device="cuda")
        with lib.random.fork_rng():  # the CPU stream only
            lib.rand(2)


@pytest.mark.parametrize("bad, error", [(lambda lib: lib.zeros(3), TypeError),
                                        (lambda lib: lib.zeros(3, dtype=lib.uint8), RuntimeError)],
                         ids=["float", "garbage_bytes"])
def test_a_bad_cpu_state_is_refused_as_torch_refuses_it(bad, error):
    for lib in (torch, chainrule):
        state = lib.get_rng_state()
        with pytest.raises(error):
            lib.set_rng_state(bad(lib))
        assert lib.equal(lib.get_rng_state(), state)


def test_a_cuda_generator_in_a_shuffling_dataloader_gets_torchs_error(cuda):
    from chainrule.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(chainrule.arange(4.0)), shuffle=True, generator=chainrule.Generator("cuda"))
    with pytest.raises(RuntimeError, match="Expected a 'cpu' device type for generator but found 'cuda'"):
        list(loader)
