"""nn.Module semantics, containers, state_dict, hooks and reprs, each compared with torch."""

from collections import OrderedDict

import numpy as np
import pytest

import chainrule
import chainrule.nn as nn

torch = pytest.importorskip("torch")


def copy_from_torch(ours, theirs) -> None:
    """Load torch's state_dict (parameters and buffers) into the chainrule module."""
    state = {k: chainrule.tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)


def assert_close(a, b, rtol=1e-4, atol=1e-5, msg="") -> None:
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, f"{msg}: shape {a.shape} vs {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=msg)


def pair(build):
    """The same architecture built by ``build(lib)`` in both libraries, torch's weights copied in."""
    ours, theirs = build(chainrule), build(torch)
    copy_from_torch(ours, theirs)
    return ours, theirs


class Net:
    """A model with nested submodules, a buffer, a shared module and a non-persistent buffer."""

    @staticmethod
    def build(lib):
        class Model(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.features = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.ReLU(), lib.nn.BatchNorm1d(8))
                self.head = lib.nn.Linear(8, 3, bias=False)
                self.scale = lib.nn.Parameter(lib.ones(3))
                self.register_buffer("offset", lib.zeros(3))
                self.register_buffer("cache", lib.zeros(2), persistent=False)

            def forward(self, x):
                return self.head(self.features(x)) * self.scale + self.offset

        return Model()


def test_registration_names_and_order_match_torch():
    ours, theirs = pair(Net.build)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "cache" not in ours.state_dict()
    assert [n for n, _ in ours.named_parameters(prefix="m", recurse=False)] == ["m.scale"]
    assert len(list(ours.parameters())) == 6 and len(list(ours.modules())) == 6
    # parameters are named for graph drawings
    assert ours.features[0].weight.name == "features.0.weight"


def test_forward_and_gradients_match_torch():
    ours, theirs = pair(Net.build)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y_ours, y_theirs = ours(chainrule.tensor(x)), theirs(torch.tensor(x))
    assert_close(y_ours, y_theirs, msg="forward")
    y_ours.square().sum().backward()
    y_theirs.square().sum().backward()
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-4, msg=name)
    assert_close(ours.features[2].running_mean, theirs.features[2].running_mean, msg="running_mean")


def test_shared_module_is_listed_once():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, shared)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_modules()] == ["", "0"]
    assert len(list(seq.named_modules(remove_duplicate=False))) == 3


def test_setattr_rules():
    m = nn.Module()
    m.w = nn.Parameter(chainrule.ones(2))
    assert "w" in m._parameters
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' as parameter 'w'"):
        m.w = chainrule.ones(2)
    m.w = None
    assert m.w is None and list(m.parameters()) == []
    m.sub = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'sub'"):
        m.sub = 3
    m.register_buffer("b", chainrule.zeros(1))
    m.b = chainrule.ones(1)
    assert m._buffers["b"].item() == 1.0
    with pytest.raises(TypeError, match="cannot assign 'int' as buffer"):
        m.b = 1
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("sub", chainrule.zeros(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' object to parameter 'p'"):
        m.register_parameter("p", chainrule.ones(1))
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'missing'"):
        getattr(m, "missing")  # noqa: B009
    del m.sub
    assert "sub" not in m._modules
    m.buf = nn.Buffer(chainrule.ones(2), persistent=False)
    assert "buf" in m._buffers and "buf" not in m.state_dict()
    with pytest.raises(AttributeError, match="before Module.__init__"):
        class Bad(nn.Module):
            def __init__(self):
                self.w = nn.Parameter(chainrule.ones(1))
        Bad()


def test_module_without_forward():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(1)


def test_parameter_semantics():
    t = chainrule.ones(3)
    p = nn.Parameter(t)
    assert p.requires_grad and p.is_leaf and isinstance(p, chainrule.Tensor)
    p.data[0] = 5  # shares memory with t, as torch's does
    assert t[0].item() == 5
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert repr(nn.Parameter(chainrule.tensor([1.0, 2.0]))) == repr(
        torch.nn.Parameter(torch.tensor([1.0, 2.0]))).replace("torch", "chainrule")
    assert nn.Parameter().shape == (0,)
    y = (p * 2).sum()
    assert type(p * 2) is chainrule.Tensor
    y.backward()
    assert p.grad.tolist() == [2.0, 2.0, 2.0]
    import copy
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.requires_grad and q._data is not p._data


def test_state_dict_shares_memory_and_detaches():
    m = nn.Linear(3, 2)
    sd = m.state_dict()
    assert isinstance(sd, OrderedDict)
    assert not sd["weight"].requires_grad and sd["weight"].grad_fn is None
    sd["weight"][0, 0] = 42.0
    assert m.weight[0, 0].item() == 42.0
    assert m.state_dict(keep_vars=True)["weight"] is m.weight
    assert list(m.state_dict(prefix="fc.")) == ["fc.weight", "fc.bias"]


def test_load_state_dict_round_trip():
    a, b = Net.build(chainrule), Net.build(chainrule)
    a.features[2].running_mean.fill_(0.5)
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert np.array_equal(p.numpy(), q.numpy()), n
        assert p._data is not q._data  # copied, not aliased
    assert b.features[0].weight.requires_grad


def _torch_error(fn):
    with pytest.raises(RuntimeError) as info:
        fn()
    return str(info.value).replace("torch", "chainrule")


def test_load_state_dict_errors_match_torch():
    ours, theirs = Net.build(chainrule), Net.build(torch)
    sd_t = theirs.state_dict()
    sd_o = ours.state_dict()
    del sd_t["head.weight"], sd_o["head.weight"]
    sd_t["extra.weight"] = torch.zeros(1)
    sd_o["extra.weight"] = chainrule.zeros(1)
    sd_t["features.0.bias"] = torch.zeros(5)
    sd_o["features.0.bias"] = chainrule.zeros(5)
    expected = _torch_error(lambda: theirs.load_state_dict(sd_t))
    with pytest.raises(RuntimeError) as info:
        ours.load_state_dict(sd_o)
    assert str(info.value) == expected
    assert "size mismatch for features.0.bias: copying a param with shape" in expected
    # strict=False: no error, keys reported; the mismatching shape still raises
    del sd_o["features.0.bias"]
    missing, unexpected = ours.load_state_dict(sd_o, strict=False)
    assert missing == ["features.0.bias", "head.weight"] and unexpected == ["extra.weight"]
    t_missing, t_unexpected = theirs.load_state_dict(
        {k: v for k, v in sd_t.items() if k != "features.0.bias"}, strict=False)
    assert (missing, unexpected) == (t_missing, t_unexpected)
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        ours.load_state_dict([1, 2])


def test_load_state_dict_assign():
    m = nn.Linear(2, 2)
    w = chainrule.ones(2, 2)
    m.load_state_dict({"weight": w, "bias": chainrule.zeros(2)}, assign=True)
    assert isinstance(m.weight, nn.Parameter) and m.weight._data is w._data


def test_train_eval_zero_grad_requires_grad_apply():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm1d(2)))
    assert m.training and m[2][0].training
    m.eval()
    assert not m.training and not m[1].training and not m[2][0].training
    m.train()
    assert all(sub.training for sub in m.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train(1)
    m(chainrule.randn(4, 2)).sum().backward()
    m.zero_grad(set_to_none=False)
    assert m[0].weight.grad is not None and not m[0].weight.grad.numpy().any()
    m.zero_grad()
    assert m[0].weight.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Dropout", "BatchNorm1d", "Sequential", "Sequential"]


def test_to_double_float_keeps_parameter_identity():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    w = m[0].weight
    m.double()
    assert m[0].weight is w and w.dtype is chainrule.float64 and isinstance(w, nn.Parameter)
    assert m[1].running_mean.dtype is chainrule.float64
    assert m[1].num_batches_tracked.dtype is chainrule.int64
    out = m(chainrule.randn(4, 2, dtype=chainrule.float64))
    assert out.dtype is chainrule.float64
    m.to(chainrule.float32)
    assert w.dtype is chainrule.float32
    m.to("cpu")
    m.float()
    with pytest.raises(TypeError, match="floating point"):
        m.to(chainrule.int64)


def test_to_memory_format_channels_last_keeps_the_model_working_and_rejects_other_types():
    # UNet/ResNet training scripts call model.to(memory_format=torch.channels_last)
    x = np.random.RandomState(0).randn(2, 3, 5, 5).astype(np.float32)
    outputs = []
    for lib in (chainrule, torch):
        lib.manual_seed(0)
        m = lib.nn.Conv2d(3, 4, 3)
        m.weight.data = lib.ones(4, 3, 3, 3) / 27
        m.bias.data = lib.arange(4.0)
        w = m.weight
        assert m.to(memory_format=lib.channels_last) is m and m.weight is w
        outputs.append(m(lib.from_numpy(x)).detach().numpy())
        with pytest.raises(TypeError, match="memory_format"):
            m.to(memory_format="channels_last")
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)


def test_forward_hooks_match_torch():
    for lib in (chainrule, torch):
        m = lib.nn.Linear(3, 2)
        calls: list = []
        h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
        h2 = m.register_forward_hook(lambda mod, args, out, calls=calls: calls.append(tuple(args[0].shape)) or out + 1)
        x = lib.ones(1, 3)
        out = m(x)
        expected = m.weight.sum(1) * 2 + m.bias + 1
        assert np.allclose(out.detach().numpy(), expected.detach().numpy())
        assert calls == [(1, 3)]
        h1.remove()
        h2.remove()
        assert np.allclose(m(x).detach().numpy(), (m.weight.sum(1) + m.bias).detach().numpy())
        kw = m.register_forward_pre_hook(lambda mod, args, kwargs: ((args[0] * 0,), kwargs), with_kwargs=True)
        assert np.allclose(m(x).detach().numpy(), m.bias.detach().numpy())
        kw.remove()


def _backward_hook_record(lib, model, x_requires_grad):
    records = []

    def hook(module, grad_input, grad_output):
        records.append(([None if g is None else g.detach().numpy().copy() for g in grad_input],
                        [None if g is None else g.detach().numpy().copy() for g in grad_output]))

    model[1].register_full_backward_hook(hook)
    x = lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), requires_grad=x_requires_grad)
    model(x).pow(2).sum().backward()
    return records


@pytest.mark.parametrize("x_requires_grad", [True, False])
def test_full_backward_hook_matches_torch(x_requires_grad):
    ours, theirs = pair(lambda lib: lib.nn.Sequential(lib.nn.Linear(4, 5), lib.nn.Tanh(), lib.nn.Linear(5, 2)))
    a = _backward_hook_record(chainrule, ours, x_requires_grad)
    b = _backward_hook_record(torch, theirs, x_requires_grad)
    assert len(a) == len(b) == 1
    for ga, gb in zip(a[0][0] + a[0][1], b[0][0] + b[0][1]):
        assert (ga is None) == (gb is None)
        if ga is not None:
            np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-6)


def test_full_backward_hook_on_first_layer_without_input_grad_and_replacement():
    for lib in (chainrule, torch):
        m = lib.nn.Linear(3, 2)
        got = []
        m.register_full_backward_hook(lambda mod, gi, go, got=got: got.append((gi, go)))
        m(lib.ones(2, 3)).sum().backward()
        assert got[0][0] == (None,) and tuple(got[0][1][0].shape) == (2, 2)
    # a hook may replace grad_input
    ours = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    ours[1].register_full_backward_hook(lambda mod, gi, go: (gi[0] * 0,))
    ours(chainrule.ones(1, 2)).sum().backward()
    assert not ours[0].weight.grad.numpy().any()


def test_nested_repr_matches_torch():
    def build(lib):
        n = lib.nn
        return n.Sequential(OrderedDict([
            ("conv", n.Conv2d(1, 4, 3, padding=1)), ("bn", n.BatchNorm2d(4)), ("act", n.ReLU()),
            ("pool", n.MaxPool2d(2)), ("flat", n.Flatten()),
            ("blocks", n.ModuleList([n.Linear(4, 4) for _ in range(3)] + [n.GELU()])),
            ("heads", n.ModuleDict({"a": n.Linear(4, 2, bias=False), "b": n.Dropout(0.1)})),
            ("ln", n.LayerNorm(4)), ("emb", n.Embedding(10, 3, padding_idx=0)), ("id", n.Identity()),
            ("empty", n.Sequential()),
        ]))

    assert repr(build(chainrule)) == repr(build(torch))


def test_sequential_behaviour():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == [a, b]
    assert head(chainrule.ones(1, 2)).shape == (1, 3)
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and list(seq._modules) == ["0", "1", "2", "3"]
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and seq[1] is c
    seq.insert(1, b)
    assert seq[1] is b
    named = nn.Sequential(OrderedDict([("fc", a), ("act", b)]))
    assert named.fc is a and list(named._modules) == ["fc", "act"]
    with pytest.raises(IndexError, match="out of range"):
        seq[10]
    seq[0] = nn.Linear(2, 3)
    assert seq[0] is not a


def test_module_list_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh()])
    layers.insert(0, nn.Identity())
    assert len(layers) == 5 and isinstance(layers[0], nn.Identity)
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    assert len(list(layers.parameters())) == 4
    with pytest.raises(TypeError, match="iterable"):
        layers.extend(nn.Linear(1, 1))
    d = nn.ModuleDict({"a": nn.Linear(1, 1)})
    d["b"] = nn.ReLU()
    d.update([("c", nn.Tanh())])
    assert list(d.keys()) == ["a", "b", "c"] and "b" in d and len(d) == 3
    assert d.pop("b").__class__ is nn.ReLU and len(d) == 2
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias"]


def test_parameter_list_dict_match_torch():
    for lib in (chainrule, torch):
        plist = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2)), lib.zeros(3)])
        plist.append(lib.ones(1, 2))
        assert len(plist) == 3 and all(isinstance(p, lib.nn.Parameter) for p in plist)
        assert [n for n, _ in plist.named_parameters()] == ["0", "1", "2"]
        pdict = lib.nn.ParameterDict({"a": lib.nn.Parameter(lib.ones(2))})
        pdict["b"] = lib.zeros(2, 2)
        assert list(pdict.keys()) == ["a", "b"] and isinstance(pdict["b"], lib.nn.Parameter)
        assert [n for n, _ in pdict.named_parameters()] == ["a", "b"]
    c = nn.ParameterList([nn.Parameter(chainrule.ones(2, 3))])
    t = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2, 3))])
    assert repr(c) == repr(t).replace("torch", "chainrule")
    c = nn.ParameterDict({"w": nn.Parameter(chainrule.ones(2))})
    t = torch.nn.ParameterDict({"w": torch.nn.Parameter(torch.ones(2))})
    assert repr(c) == repr(t).replace("torch", "chainrule")


def test_get_submodule_parameter_buffer():
    m = Net.build(chainrule)
    assert m.get_submodule("features.0") is m.features[0]
    assert m.get_parameter("features.0.bias") is m.features[0].bias
    assert m.get_buffer("offset") is m.offset
    with pytest.raises(AttributeError, match="has no attribute `nope`"):
        m.get_submodule("nope")


def test_deepcopy_and_pickle_round_trip():
    import copy
    import pickle

    m = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU())
    m(chainrule.randn(5, 4))
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert type(clone) is nn.Sequential
        for (n, p), (_, q) in zip(m.state_dict().items(), clone.state_dict().items()):
            assert np.array_equal(p.numpy(), q.numpy()) and p._data is not q._data, n
        assert isinstance(clone[0].weight, nn.Parameter) and clone[0].weight.requires_grad
        m.eval()
        clone.eval()
        x = chainrule.randn(3, 4)
        assert np.allclose(clone(x).detach().numpy(), m(x).detach().numpy())


def test_batchnorm_checkpoint_without_num_batches_tracked_loads():
    for lib in (chainrule, torch):
        bn = lib.nn.BatchNorm1d(3)
        old = {k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
        result = bn.load_state_dict(dict(old))
        assert result.missing_keys == [] and result.unexpected_keys == []
