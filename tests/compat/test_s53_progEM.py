"""Session 53, lane progEM: the idioms of the dinov2_koleo_ibot, graph_wavenet_adaptive_adjacency and
timesformer_divided_attention programs, each against torch (values, gradients, strides)."""
import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(fn, seed=0):
    """Run ``fn(module, rng)`` on torch and chainrule from the same NumPy draws."""
    return fn(torch, np.random.RandomState(seed)), fn(chainrule, np.random.RandomState(seed))


def _close(expected, actual, atol=1e-5):
    for e, a in zip(expected, actual, strict=True):
        if isinstance(e, torch.Tensor):
            assert str(e.dtype).split(".")[-1] == str(a.dtype).split(".")[-1]
            assert tuple(e.shape) == tuple(a.shape)
            np.testing.assert_allclose(a.detach().numpy(), e.detach().numpy(), rtol=1e-5, atol=atol)
        else:
            assert e == a


def _tensor(T, rng, *shape, grad=True):
    return T.tensor(rng.randn(*shape).astype(np.float32), requires_grad=grad)


@pytest.mark.parametrize("n, d", [(8, 4), (5, 7), (16, 3)])
def test_koleo_diagonal_fill_through_a_strided_view_of_a_graph_tensor(n, d):
    # DINOv2's KoLeo writes -1 on the diagonal through dots.view(-1)[::n + 1] while dots is in the graph
    def koleo(T, rng):
        F = T.nn.functional
        x = _tensor(T, rng, n, d)
        xn = F.normalize(x, eps=1e-8, p=2, dim=-1)
        dots = T.mm(xn, xn.t())
        dots.view(-1)[:: (n + 1)].fill_(-1)
        _, nearest = T.max(dots, dim=1)
        distances = T.nn.PairwiseDistance(2, eps=1e-8)(xn, xn[nearest])
        loss = -T.log(distances + 1e-8).mean()
        loss.backward()
        return [dots, nearest, distances, loss, x.grad, dots.stride()]

    _close(*_both(koleo))


def test_sinkhorn_knopp_in_place_normalisation_and_its_marginals():
    def sinkhorn(T, rng):
        teacher = T.tensor(rng.randn(12, 6).astype(np.float32))
        Q = T.exp(teacher / 0.1).t()
        B, K = Q.shape[1], Q.shape[0]
        Q /= T.sum(Q)
        for _ in range(3):
            Q /= T.sum(Q, dim=1, keepdim=True)
            Q /= K
            Q /= T.sum(Q, dim=0, keepdim=True)
            Q /= B
        Q *= B
        return [Q.t(), Q.t().stride(), Q.t().is_contiguous()]

    expected, actual = _both(sinkhorn)
    _close(expected, actual)
    np.testing.assert_allclose(actual[0].sum(1).numpy(), np.ones(12), atol=1e-5)


@pytest.mark.parametrize("offset, antialias", [(0.1, False), (0.0, False), (0.1, True)])
def test_bicubic_position_embedding_interpolation(offset, antialias):
    # DINOv2's interpolate_pos_encoding: a 4x4 grid to 2x3 by scale factors (w0 + 0.1) / M or by size
    def interpolate(T, rng):
        pos = _tensor(T, rng, 1, 16, 8)
        kwargs = {"scale_factor": ((2 + offset) / 4, (3 + offset) / 4)} if offset else {"size": (2, 3)}
        out = T.nn.functional.interpolate(pos.reshape(1, 4, 4, 8).permute(0, 3, 1, 2), mode="bicubic",
                                          antialias=antialias, **kwargs)
        flat = out.permute(0, 2, 3, 1).reshape(1, -1, 8)
        (flat * T.tensor(rng.randn(*flat.shape).astype(np.float32))).sum().backward()
        return [out, pos.grad]

    _close(*_both(interpolate))


def test_foreach_teacher_ema_and_ibot_mask_weights():
    def ema(T, rng):
        teacher = [T.tensor(rng.randn(*s).astype(np.float32)) for s in [(3, 4), (5,)]]
        student = [T.tensor(rng.randn(*s).astype(np.float32)) for s in [(3, 4), (5,)]]
        T._foreach_mul_(teacher, 0.99)
        T._foreach_add_(teacher, student, alpha=1 - 0.99)
        masks = T.tensor(rng.rand(4, 9) < 0.3)
        weights = (1 / masks.sum(-1).clamp(min=1.0)).unsqueeze(-1).expand_as(masks)[masks]
        return [*teacher, weights, masks.flatten().nonzero().flatten()]

    _close(*_both(ema))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 4), (1, 2, 6, 1, 3)])
def test_graph_wavenet_nconv_einsum_and_adaptive_adjacency(shape):
    n, c, v, length, w = shape

    def nconv(T, rng):
        F = T.nn.functional
        x, A = _tensor(T, rng, n, c, v, length), _tensor(T, rng, v, w)
        e1, e2 = _tensor(T, rng, v, 3), _tensor(T, rng, 3, v)
        y = T.einsum("ncvl,vw->ncwl", (x, A)).contiguous()
        adp = F.softmax(F.relu(T.mm(e1, e2)), dim=1)
        (y * T.tensor(rng.randn(*y.shape).astype(np.float32))).sum().backward()
        (adp * T.tensor(rng.randn(v, v).astype(np.float32))).sum().backward()
        matmul = T.matmul(x.transpose(2, 3), A).transpose(2, 3)
        return [y, y.stride(), matmul, adp, x.grad, A.grad, e1.grad, e2.grad]

    _close(*_both(nconv))


def test_timesformer_rearranges_cls_repeat_and_frame_mean():
    # b (h w t) m -> (b t) (h w) m and back, the cls token repeated per frame and averaged back
    def rearrange(T, rng):
        B, HW, F_, m = 2, 4, 3, 5
        x = _tensor(T, rng, B, HW * F_, m)
        spatial = x.view(B, HW, F_, m).permute(0, 2, 1, 3).reshape(B * F_, HW, m)
        back = spatial.reshape(B, F_, HW, m).permute(0, 2, 1, 3).reshape(B, HW * F_, m)
        cls = x[:, 0, :].unsqueeze(1).repeat(1, F_, 1).reshape(B * F_, m).unsqueeze(1)
        mean = T.mean(cls.view(B, F_, m), 1, True)
        (spatial.sum() + (back * back).sum() + 3 * mean.sum()).backward()
        return [spatial, spatial.stride(), back.stride(), bool(T.equal(back, x)), mean, mean.stride(), x.grad]

    _close(*_both(rearrange))


def test_timesformer_zeroes_temporal_fc_through_str_of_modules():
    # the repo finds blocks by 'Block' in str(m) over self.blocks.modules(), skipping the ModuleList itself
    def zeroed(T, rng):
        class Block(T.nn.Module):
            def __init__(self):
                super().__init__()
                self.temporal_fc = T.nn.Linear(3, 3)

        blocks = T.nn.ModuleList([Block(), Block()])
        hits = ["Block" in str(m) for m in blocks.modules()]
        i = 0
        for m in blocks.modules():
            if "Block" in str(m):
                if i > 0:
                    T.nn.init.constant_(m.temporal_fc.weight, 0)
                i += 1
        return [hits, [float(b.temporal_fc.weight.abs().sum().item()) for b in blocks]]

    expected, actual = _both(zeroed)
    assert expected == actual == [[True, True, False, True, False], [0.0, 0.0]]
