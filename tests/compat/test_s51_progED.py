"""Lane progED (session 51): gaps the corpus programs medusa_heads_tree_decoding, orpo_odds_ratio_preference
and bart_text_infilling found, each checked against torch.

Views of inference tensors: Medusa runs its frozen base under ``torch.inference_mode()`` and reads the returned
logits (``logits[:, -1]``) under ``torch.no_grad()``; a view of an inference tensor made outside inference mode
raised torch's "Inplace update to inference tensor" error, as it read the tensor's version counter. torch makes
such a view an inference tensor that is no view to autograd (``_is_view()`` False, no grad_fn, not requiring
grad), writable inside inference mode only."""
import pytest

real_torch = pytest.importorskip("torch")

import chainrule  # noqa: E402

_VIEWS = {
    "getitem": lambda t: t[:, -1],
    "getitem_int": lambda t: t[1],
    "view": lambda t: t.view(12),
    "t": lambda t: t.t(),
    "narrow": lambda t: t.narrow(1, 0, 2),
    "unsqueeze": lambda t: t.unsqueeze(0),
    "select": lambda t: t.select(0, 1),
    "diagonal": lambda t: t.diagonal(),
    "unbind": lambda t: t.unbind(0)[0],
    "split": lambda t: t.split(2, 1)[1],
    "reshape": lambda t: t.reshape(4, 3),
    "permute": lambda t: t.permute(1, 0),
    "as_strided": lambda t: t.as_strided((2, 2), (4, 1), 1),
    "chunk_of_view": lambda t: t.reshape(4, 3).chunk(2, 1)[0],
}
_MODES = ("no_grad", "enable_grad", "inference_mode")


def _view_of_inference_tensor(torch, view, mode):
    with torch.inference_mode():
        x = torch.arange(12.0).reshape(3, 4)  # itself a view made in inference mode
    with getattr(torch, mode)():
        v = view(x)
    flags = (v.is_inference(), v.requires_grad, v._is_view(), v.grad_fn is None, tuple(v.shape))
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        v.add_(1)
    with torch.inference_mode():
        v.mul_(2)  # allowed inside inference mode, and written through to x
    return flags, v.tolist(), x.tolist()


@pytest.mark.parametrize("mode", _MODES)
@pytest.mark.parametrize("name", sorted(_VIEWS))
def test_view_of_inference_tensor_matches_torch(name, mode):
    ours = _view_of_inference_tensor(chainrule, _VIEWS[name], mode)
    theirs = _view_of_inference_tensor(real_torch, _VIEWS[name], mode)
    assert ours[0] == theirs[0]
    # torch writes before it refuses the out-of-mode add_, chainrule refuses first (nothing changed):
    # the in-mode write doubled the view's original values, in the view and in x
    original = _VIEWS[name](real_torch.arange(12.0).reshape(3, 4))
    assert ours[1] == (2 * original).tolist()
    assert real_torch.equal(_VIEWS[name](real_torch.tensor(ours[2])), 2 * original)


@pytest.mark.parametrize("mode", _MODES)
def test_view_of_requires_grad_inference_leaf_matches_torch(mode):
    def flags(torch):
        with torch.inference_mode():
            w = torch.ones(3, requires_grad=True)
        with getattr(torch, mode)():
            v = w[1:]
        return v.is_inference(), v.requires_grad, v.grad_fn is None, v._is_view()

    assert flags(chainrule) == flags(real_torch)


def test_inference_mode_base_then_no_grad_reads_as_medusa_does():
    """Medusa's forward: the base under inference_mode, its hidden state cloned to a normal tensor,
    the logits sliced under no_grad."""
    def run(torch):
        torch.manual_seed(0)
        lm_head = torch.nn.Linear(4, 5, bias=False)
        head = torch.nn.Linear(4, 5)
        x = torch.randn(1, 3, 4)
        with torch.inference_mode():
            hidden = torch.tanh(x)
            logits = lm_head(hidden)
        out = head(hidden.clone())
        out.sum().backward()
        with torch.no_grad():
            token = torch.argmax(logits[:, -1]).unsqueeze(0)
            top = torch.topk(logits[0, -1], 2).indices
        return token.tolist(), top.tolist(), head.weight.grad.tolist(), logits[:, -1].is_inference()

    ours, theirs = run(chainrule), run(real_torch)
    assert ours[:2] == theirs[:2] and ours[3] == theirs[3]
    assert chainrule.allclose(chainrule.tensor(ours[2]), chainrule.tensor(theirs[2]), atol=1e-6)


_OPS_ON_VIEWS = {
    "matmul": lambda t: t @ t.t(),
    "t_contiguous": lambda t: t.t().contiguous(),
    "expand": lambda t: t[None].expand(2, 3, 4),
    "reshape_copy": lambda t: t.t().reshape(12),
    "index_select": lambda t: t.index_select(0, t.new_tensor([0, 2]).long()),
    "masked_fill": lambda t: t.masked_fill(t > 3, 0),
    "softmax": lambda t: t.softmax(-1),
}


@pytest.mark.parametrize("mode", ("no_grad", "enable_grad"))
@pytest.mark.parametrize("name", sorted(_OPS_ON_VIEWS))
def test_ops_through_views_of_inference_tensors_match_torch(name, mode):
    """Ops that view an inference tensor on the way (``t()``, ``expand``) ran into the same refusal."""
    def run(torch):
        with torch.inference_mode():
            x = torch.arange(12.0).reshape(3, 4)
        with getattr(torch, mode)():
            y = _OPS_ON_VIEWS[name](x)
        return (y.is_inference(), y.requires_grad, y.grad_fn is None), y.tolist()

    (ours_flags, ours), (theirs_flags, theirs) = run(chainrule), run(real_torch)
    assert ours_flags == theirs_flags
    assert real_torch.allclose(real_torch.tensor(ours), real_torch.tensor(theirs))


@pytest.mark.parametrize("case", ("base_view", "view_of_view", "slice", "transpose"))
def test_saving_a_view_of_an_inference_tensor_raises_torchs_error(case):
    """A view of an inference tensor (``arange(...).reshape(...)`` made in inference mode is one) saved for backward
    raised the in-place error's words; torch's are the "cannot be saved for backward" ones, and its version reads
    raise as the base's do."""
    def run(torch):
        with torch.inference_mode():
            x = torch.arange(12.0).reshape(3, 4)
        n = torch.ones(4, 3, requires_grad=True)
        use = {"base_view": lambda: n @ x, "view_of_view": lambda: n @ x.t().t(),
               "slice": lambda: n[:, :1] * x[:1, :1], "transpose": lambda: n * x.t()}[case]
        with pytest.raises(RuntimeError) as saved:
            use()
        with pytest.raises(RuntimeError) as version:
            x.t()._version  # noqa: B018
        return str(saved.value), str(version.value)

    assert run(chainrule) == run(real_torch)
