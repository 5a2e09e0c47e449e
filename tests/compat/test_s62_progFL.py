"""The idioms of the BiT weight-standardisation, ProteinMPNN k-NN feature and PointPillars BEV-scatter
programs, each against torch: ``topk`` with a NumPy integer ``k`` on rows full of ties (the masked,
padded distance rows of ProteinMPNN's ``_dist``)."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _both(fn):
    return [fn(lib) for lib in (chainrule, torch)]


@pytest.mark.parametrize("k", [np.int64(3), np.int32(5), "tensor"])
@pytest.mark.parametrize("largest,sorted_", [(False, True), (True, True), (True, False)])
def test_topk_takes_any_index_as_k_on_tied_rows(k, largest, sorted_):
    # ProteinMPNN: torch.topk(D_adjust, np.minimum(self.top_k, X.shape[1]), dim=-1, largest=False),
    # whose padded rows are all zero (every value tied)
    d = np.tile(np.array([1., 1., 1., 2., 0., 0.], dtype=np.float32), (4, 3))
    d[2:] = 0.0

    def run(lib):
        kk = lib.tensor(4) if isinstance(k, str) else k
        values, indices = lib.topk(lib.tensor(d), kk, dim=-1, largest=largest, sorted=sorted_)
        return values.numpy(), indices.numpy()

    (ours, our_idx), (theirs, their_idx) = _both(run)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_idx, their_idx)


def test_topk_method_with_numpy_k_and_gradient():
    d = np.repeat(np.arange(5, dtype=np.float32), 3)[None].repeat(2, 0)

    def run(lib):
        x = lib.tensor(d, requires_grad=True)
        values, indices = x.topk(np.int64(4), largest=False)
        (values * lib.arange(4.)).sum().backward()
        return values.detach().numpy(), indices.numpy(), x.grad.numpy(), values.grad_fn.name()

    ours, theirs = _both(run)
    for a, b in zip(ours[:3], theirs[:3]):
        np.testing.assert_array_equal(a, b)
    assert ours[3] == theirs[3]
