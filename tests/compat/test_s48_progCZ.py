"""Session 48, lane progCZ: what the federated-averaging and multi-task CTR programs found,
each compared with torch on the same inputs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _batchnorm_net(lib):
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4))


def _load(lib, edit):
    net = _batchnorm_net(lib)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    edit(lib, state)
    try:
        result = net.load_state_dict(state)
    except Exception as error:  # noqa: BLE001 - the type and text are what is compared
        return type(error).__name__, str(error).replace("chainrule.", "torch."), None
    return "ok", (list(result.missing_keys), list(result.unexpected_keys)), net.state_dict()


@pytest.mark.parametrize("entry", [
    # torch's backward compatibility: a 0-d entry saved with shape (1,) loads as its one element
    lambda lib: lib.tensor([3]),
    lambda lib: lib.tensor([2.9]),
    # other shapes stay a size mismatch
    lambda lib: lib.tensor([3, 4]),
    lambda lib: lib.tensor([], dtype=lib.int64),
    lambda lib: lib.tensor([[3]]),
    # not a tensor: reported by type, a NumPy array included (torch does not convert it)
    lambda lib: np.array(3),
    lambda lib: np.array([3]),
    lambda lib: 3,
], ids=["1-elem-long", "1-elem-float", "2-elem", "empty", "1x1", "ndarray-0d", "ndarray-1d", "int"])
def test_load_state_dict_zero_dim_buffer_entries_match_torch(entry):
    def edit(lib, state):
        state["1.num_batches_tracked"] = entry(lib)

    expected = _load(torch, edit)
    got = _load(chainrule, edit)
    assert got[0] == expected[0]
    assert got[1] == expected[1]
    if expected[2] is not None:
        for key, value in expected[2].items():
            assert str(got[2][key].dtype).split(".")[-1] == str(value.dtype).split(".")[-1], key
            np.testing.assert_array_equal(got[2][key].numpy(), value.numpy())


def test_load_state_dict_rejects_a_numpy_parameter_like_torch():
    def edit(lib, state):
        state["0.bias"] = np.zeros(4, np.float32)

    expected = _load(torch, edit)
    got = _load(chainrule, edit)
    assert got[:2] == expected[:2]
    assert "expected torch.Tensor or Tensor-like object" in got[1]


def test_averaged_float_counter_loads_back_as_int64_like_torch():
    # FedAvg: torch.div(sum of num_batches_tracked, n) is float; load_state_dict casts it back
    values = {}
    for lib in (torch, chainrule):
        nets = [_batchnorm_net(lib) for _ in range(3)]
        states = [net.state_dict() for net in nets]
        for i, state in enumerate(states):
            state["1.num_batches_tracked"] += i + 1
        averaged = {k: lib.div(sum(s[k] for s in states[1:]) + states[0][k], 3) for k in states[0]}
        target = _batchnorm_net(lib)
        target.load_state_dict(averaged)
        values[lib] = (str(averaged["1.num_batches_tracked"].dtype).split(".")[-1],
                       str(target[1].num_batches_tracked.dtype).split(".")[-1],
                       target[1].num_batches_tracked.item())
    assert values[chainrule] == values[torch]
