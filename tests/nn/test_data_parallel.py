"""nn.DataParallel: the wrapper scripts put around a model, as torch's on a machine without GPUs."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def test_data_parallel_runs_the_module_and_prefixes_its_state_as_torch():
    chainrule.manual_seed(0)
    inner = chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.ReLU(), chainrule.nn.Linear(4, 2))
    ours = chainrule.nn.DataParallel(inner)
    theirs = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)))
    theirs.load_state_dict({key: torch.from_numpy(value.numpy().copy()) for key, value in ours.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["module.0.weight", "module.0.bias",
                                                                    "module.2.weight", "module.2.bias"]
    assert ours.device_ids == theirs.device_ids == []
    assert ours.module is inner
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    out, tout = ours(chainrule.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(inner[0].weight.grad.numpy(), theirs.module[0].weight.grad.numpy(), rtol=1e-6)


def test_data_parallel_is_reachable_where_torch_has_it():
    assert chainrule.nn.DataParallel is chainrule.nn.parallel.DataParallel
    with pytest.raises(TypeError, match="must be an nn.Module"):
        chainrule.nn.DataParallel(lambda x: x)
