"""The recurrent layers' newer parts on 'cuda' (the stand-in): LSTM with a projection (the fused
layer op and its BPTT, packed batches, double backward) gives the CPU's numbers with no host copy in
forward and backward, and the argument checks of RNN/LSTM/GRU and their cells raise on the device
what they raise on the CPU (tests/nn/ checks those against torch)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.nn.utils import rnn as rnn_utils
from tests.nn.test_lstm_proj import CONFIGS
from tests.nn.test_rnn_argument_checks import SAME_MESSAGE

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

I, H, P, T, B = 3, 5, 2, 6, 4


def _lstm(device: str, **kw):
    chainrule.manual_seed(0)
    return chainrule.nn.LSTM(I, H, proj_size=P, **kw).to(device)


def _forward_backward(module, x, hx, device, before_step=lambda: None):
    """Outputs, final states and every gradient (input, initial states, parameters) as NumPy arrays."""
    xt = chainrule.tensor(x, device=device, requires_grad=True)
    states = [chainrule.tensor(s, device=device, requires_grad=True) for s in hx] if hx else []
    weights = [chainrule.tensor(np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape),
                                device=device) for shape in (x.shape[:2] + (2 * P,), (8, B, P), (8, B, H))]
    before_step()
    output, (h_n, c_n) = module(xt, tuple(states) if states else None)
    loss = (output.sin() * weights[0][..., :output.shape[-1]]).sum() + \
        (h_n * weights[1][:h_n.shape[0]]).sum() + (c_n * c_n * weights[2][:c_n.shape[0]]).sum()
    loss.backward()
    grads = [xt.grad] + [s.grad for s in states] + [p.grad for p in module.parameters()]
    return [t.detach().cpu().numpy() for t in (output, h_n, c_n, *grads)]


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("kw", CONFIGS, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "default" for c in CONFIGS])
def test_lstm_with_a_projection_gives_the_cpus_numbers_with_no_host_copy(cuda, kw, with_state):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I) if kw.get("batch_first") else (T, B, I)).astype(np.float32)
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    hx = None
    if with_state:
        hx = (rng.standard_normal((layers, B, P)).astype(np.float32),
              rng.standard_normal((layers, B, H)).astype(np.float32))
    expected = _forward_backward(_lstm("cpu", **kw), x, hx, "cpu")
    got = _forward_backward(_lstm("cuda", **kw), x, hx, "cuda", before_step=cuda.reset_transfers)
    assert cuda.transfers() == len(got)  # the .cpu() of each result, nothing in forward or backward
    for ours, theirs in zip(got, expected):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


PACKED_LAYERS = {
    "LSTM(proj_size)": lambda: chainrule.nn.LSTM(I, H, proj_size=P, num_layers=2, batch_first=True,
                                                 bidirectional=True),
    "GRU": lambda: chainrule.nn.GRU(I, H, num_layers=2, batch_first=True, bidirectional=True),
    "RNN": lambda: chainrule.nn.RNN(I, H, batch_first=True, nonlinearity="relu"),
}


@pytest.mark.parametrize("layer", PACKED_LAYERS)
def test_a_packed_batch_runs_on_the_device_with_the_cpus_numbers(cuda, layer):
    # the ended sequences' rows were picked by a host mask, which a GPU array refuses as an index;
    # the gradient penalty runs the layer's recorded step composition (double backward) as well
    lengths = [3, 5, 1, 4]
    x = np.random.default_rng(2).standard_normal((4, 5, I)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        chainrule.manual_seed(0)
        module = PACKED_LAYERS[layer]().to(device)
        xt = chainrule.tensor(x, device=device, requires_grad=True)
        packed = rnn_utils.pack_padded_sequence(xt, lengths, batch_first=True, enforce_sorted=False)
        output, hidden = module(packed)
        padded, _ = rnn_utils.pad_packed_sequence(output, batch_first=True)
        h_n = hidden[0] if isinstance(hidden, tuple) else hidden
        loss = padded.sin().sum() + (h_n * h_n).sum()
        (grad_x,) = chainrule.autograd.grad(loss, xt, create_graph=True)
        (loss + grad_x.square().sum()).backward()
        assert padded.device.type == h_n.device.type == xt.grad.device.type == device
        results.append([padded, h_n, grad_x, xt.grad] + [p.grad for p in module.parameters()])
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(ours.detach().cpu().numpy(), theirs.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_double_backward_through_the_projected_lstm_on_the_device(cuda):
    x = np.random.default_rng(3).standard_normal((T, B, I)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        module = _lstm(device, num_layers=2)
        xt = chainrule.tensor(x, device=device, requires_grad=True)
        output, _ = module(xt)
        (grad_x,) = chainrule.autograd.grad(output.tanh().sum(), xt, create_graph=True)
        penalty = grad_x.square().sum()
        penalty.backward()
        results.append([grad_x, *(p.grad for p in module.parameters())])
    for ours, theirs in zip(results[1], results[0]):
        assert ours.is_cuda
        np.testing.assert_allclose(ours.detach().cpu().numpy(), theirs.detach().numpy(), rtol=1e-4, atol=1e-6)


def _raised(build):
    try:
        build(chainrule)
    except Exception as error:  # the exception itself is compared
        return error
    raise AssertionError("no exception")


@pytest.mark.parametrize("case", SAME_MESSAGE)
def test_argument_checks_raise_on_the_device_as_on_the_cpu(cuda, case):
    on_cpu = _raised(SAME_MESSAGE[case])
    chainrule.set_default_device("cuda")  # the modules and tensors the case builds live on the device
    on_device = _raised(SAME_MESSAGE[case])
    assert type(on_device) is type(on_cpu) and str(on_device) == str(on_cpu)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_an_input_of_another_dtype_than_the_weights_is_refused_on_the_device(cuda, name):
    def build(lib):
        return getattr(lib.nn, name)(3, 4)(lib.zeros(2, 1, 3, dtype=lib.float64))

    on_cpu = _raised(build)
    chainrule.set_default_device("cuda")
    on_device = _raised(build)
    assert type(on_device) is type(on_cpu) is ValueError and str(on_device) == str(on_cpu)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_an_empty_batch_runs_on_the_device(cuda, name):
    module = getattr(chainrule.nn, name)(3, 4, num_layers=2, bidirectional=True).cuda()
    x = chainrule.zeros(5, 0, 3, device="cuda", requires_grad=True)
    output, hidden = module(x)
    states = hidden if isinstance(hidden, tuple) else (hidden,)
    (output.sum() + sum(s.sum() for s in states)).backward()
    assert tuple(output.shape) == (5, 0, 8) and all(tuple(s.shape) == (4, 0, 4) for s in states)
    assert x.grad.is_cuda and all(p.grad.is_cuda for p in module.parameters())


def test_padding_helpers_keep_device_sequences_on_the_device(cuda):
    # their padding rows were made on the CPU, so cat refused the mix (unpacking inside LSTM too)
    sequences = [chainrule.arange(float(n), device="cuda").reshape(n, 1).requires_grad_(True) for n in (3, 1, 2)]
    padded = rnn_utils.pad_sequence(sequences, batch_first=True, padding_value=-1.0)
    left = rnn_utils.pad_sequence(sequences, padding_side="left")
    packed = rnn_utils.pack_padded_sequence(padded, [3, 1, 2], batch_first=True, enforce_sorted=False)
    unpacked, lengths = rnn_utils.pad_packed_sequence(packed, batch_first=True, padding_value=-2.0, total_length=4)
    assert padded.is_cuda and left.is_cuda and packed.data.is_cuda and unpacked.is_cuda
    assert lengths.tolist() == [3, 1, 2] and lengths.device.type == "cpu"  # torch's lengths live on the CPU
    assert padded.cpu()[:, :, 0].tolist() == [[0, 1, 2], [0, -1, -1], [0, 1, -1]]
    assert left.cpu()[:, :, 0].T.tolist() == [[0, 1, 2], [0, 0, 0], [0, 0, 1]]
    assert unpacked.cpu()[:, :, 0].tolist() == [[0, 1, 2, -2], [0, -2, -2, -2], [0, 1, -2, -2]]
    unpacked.sum().backward()
    assert [s.grad.cpu().flatten().tolist() for s in sequences] == [[1, 1, 1], [1], [1, 1]]
