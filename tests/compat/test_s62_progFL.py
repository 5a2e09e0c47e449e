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


def test_pointpillars_scatter_columns_and_gradient_once_per_pillar():
    # PointPillarScatter: spatial_feature[:, indices] = pillars.t(), then stack + view to the BEV canvas
    rng = np.random.RandomState(62)
    pillars = rng.randn(7, 4).astype(np.float32)
    indices = rng.choice(30, 7, replace=False)
    weights = rng.randn(2, 4, 5, 6).astype(np.float32)

    def run(lib):
        p = lib.tensor(pillars, requires_grad=True)
        canvas = lib.zeros(4, 30)
        canvas[:, lib.tensor(indices).type(lib.long)] = p.t()
        bev = lib.stack([canvas, canvas * 2], 0).view(2, 4, 5, 6)
        (bev * lib.tensor(weights)).sum().backward()
        return bev.detach().numpy(), p.grad.numpy(), canvas.grad_fn.name(), bev.stride()

    ours, theirs = _both(run)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    assert ours[2:] == theirs[2:]


def test_draw_gaussian_max_into_a_heatmap_view():
    # OpenPCDet's draw_gaussian_to_heatmap: torch.max(masked_heatmap, masked_gaussian * k, out=masked_heatmap)
    gaussian = np.exp(-np.add.outer(np.arange(-2, 3) ** 2, np.arange(-2, 3) ** 2) / 2.0).astype(np.float32)

    def run(lib):
        heatmap = lib.zeros(6, 7)
        for y, x in [(1, 1), (2, 3), (5, 6)]:
            top, left = min(y, 2), min(x, 2)
            bottom, right = min(6 - y, 3), min(7 - x, 3)
            masked = heatmap[y - top:y + bottom, x - left:x + right]
            g = lib.tensor(gaussian[2 - top:2 + bottom, 2 - left:2 + right])
            returned = lib.max(masked, g * 1, out=masked)
            assert returned.data_ptr() == masked.data_ptr()
        return heatmap.numpy()

    ours, theirs = _both(run)
    np.testing.assert_array_equal(ours, theirs)


def test_proteinmpnn_order_mask_einsum_with_spaces():
    # torch.einsum('ij, biq, bjp->bqp', 1 - triu(ones), P, P): spaces inside the equation
    order = np.array([[3, 0, 4, 1, 2], [0, 1, 2, 3, 4]])

    def run(lib):
        P = lib.nn.functional.one_hot(lib.tensor(order), num_classes=5).float().requires_grad_()
        mask = lib.einsum('ij, biq, bjp->bqp', (1 - lib.triu(lib.ones(5, 5))), P, P)
        mask.sum().backward()
        return mask.detach().numpy(), P.grad.numpy(), mask.grad_fn.name()

    ours, theirs = _both(run)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    assert ours[2] == theirs[2]


@pytest.mark.parametrize("largest", [False, True])
def test_topk_rows_tied_only_outside_their_k_best_keep_torchs_indices(largest):
    # ProteinMPNN's D_adjust: real rows tie only among padded columns (all D_max), padded rows are all 0;
    # the rows whose k best are distinct skip the replay of torch's partial sort, the rest replay it
    rng = np.random.RandomState(5)
    d = rng.permutation(np.arange(96, dtype=np.float32)).reshape(6, 16)
    d[:, 11:] = 200.0 if not largest else -1.0
    d[4:] = 0.0
    d[3, 2] = d[3, 5]  # a tie among the k best

    def run(lib):
        values, indices = lib.topk(lib.tensor(d), 6, dim=-1, largest=largest)
        return values.numpy(), indices.numpy()

    (ours, our_idx), (theirs, their_idx) = _both(run)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_idx, their_idx)


@pytest.mark.parametrize("make_k", [lambda lib: lib.tensor([3]), lambda lib: lib.tensor([[3]], dtype=lib.int32),
                                    lambda lib: lib.tensor(3, dtype=lib.uint8)])
@pytest.mark.parametrize("op", ["topk", "kthvalue", "tril", "eye", "select", "narrow_copy", "multinomial"])
def test_symint_arguments_take_one_element_integral_tensors(make_k, op):
    # torch's parser takes any one-element integral tensor for a SymInt (is_int_or_symint), not only a 0-d one
    def run(lib):
        k, x = make_k(lib), lib.arange(24.).reshape(4, 6)
        out = {"topk": lambda: lib.topk(x, k)[1], "kthvalue": lambda: lib.kthvalue(x, k)[1], "tril": lambda: lib.tril(x, k),
               "eye": lambda: lib.eye(k), "select": lambda: x.select(0, k), "narrow_copy": lambda: x.narrow_copy(0, k, 1),
               "multinomial": lambda: lib.multinomial(lib.ones(5), k, generator=lib.Generator().manual_seed(0))}[op]()
        return out.numpy()

    ours, theirs = _both(run)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("bad", [lambda lib: lib.tensor([3.0]), lambda lib: lib.tensor([1, 2])])
def test_symint_arguments_refuse_float_and_many_element_tensors(bad):
    for lib in (chainrule, torch):
        with pytest.raises(TypeError, match=r"topk\(\): argument 'k' \(position 2\) must be int, not Tensor"):
            lib.topk(lib.arange(6.), bad(lib))
