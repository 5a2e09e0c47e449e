"""Session 61, lane progFI: what the Vocos / EfficientViT / CrossQ programs' probes found.

The window functions (``torch.hann_window`` and its kin, which the spectral programs build their
STFT windows with): torch's checks in torch's order and words (sparse layout, then a non-float dtype
with the ``TensorOptions`` it was given, then the length; complex dtypes pass the checks, and only
torch's arange refuses them past one point), and float16/bfloat16 windows rounded op by op.
``F.fold``/``F.unfold`` of unbatched inputs (Vocos's overlap-add folds one frame matrix): the
result's node is torch's Col2ImBackward0/Im2ColBackward0, not a squeeze's.
"""

import pytest

import chainrule

torch = pytest.importorskip("torch")

WINDOWS = ("hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window")


def _outcome(module, name, *args, **kwargs):
    try:
        result = getattr(module, name)(*args, **kwargs)
    except Exception as error:  # noqa: BLE001  (the exception is the result compared)
        return type(error).__name__, str(error)
    return str(result.dtype).split(".")[-1], result.tolist()


def _both(name, *args, **kwargs):
    ours_kwargs = {k: getattr(chainrule, str(v).split(".")[-1]) if isinstance(v, (torch.dtype, torch.layout)) else v
                   for k, v in kwargs.items()}
    return _outcome(torch, name, *args, **kwargs), _outcome(chainrule, name, *args, **ours_kwargs)


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("kwargs", [{"dtype": torch.int64}, {"dtype": torch.uint8, "requires_grad": True},
                                    {"dtype": torch.bool, "layout": torch.strided}, {"layout": torch.sparse_coo},
                                    {"dtype": torch.int32, "layout": torch.sparse_coo}])
@pytest.mark.parametrize("length", [-1, 0, 5])
def test_window_checks_match_torch(name, kwargs, length):
    theirs, ours = _both(name, length, **kwargs)
    assert theirs[0] == "RuntimeError"
    assert ours == theirs


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("length", [-1, 0, 1, 4])
def test_complex_windows_pass_the_checks_as_torch(name, dtype, length):
    theirs, ours = _both(name, length, dtype=dtype)
    assert ours == theirs


# float16/bfloat16 windows are built op by op as torch's kernels go: each op's scalar rounded to the
# window's dtype, the op in float32, its result rounded. The cases are cos-free or have cos far from
# a rounding boundary, so their bits do not depend on the CPU's float32 cos.
@pytest.mark.parametrize(("name", "length", "periodic", "dtype"), [
    ("bartlett_window", 5, True, torch.float16),
    ("bartlett_window", 400, False, torch.float16),
    ("bartlett_window", 400, True, torch.bfloat16),
    ("hamming_window", 2, False, torch.float16),
    ("hamming_window", 1, True, torch.float16),
    ("blackman_window", 2, True, torch.bfloat16),
    ("blackman_window", 2, False, torch.float16),
])
def test_half_windows_round_each_op_as_torch(name, length, periodic, dtype):
    theirs, ours = _both(name, length, periodic=periodic, dtype=dtype)
    assert ours == theirs


def test_half_hann_window_values_near_torchs():
    # the float32 cos inside may differ by an ulp between CPUs: compare within one bfloat16 ulp
    theirs = torch.hann_window(3000, periodic=False, dtype=torch.bfloat16).float().numpy()
    ours = chainrule.hann_window(3000, periodic=False, dtype=chainrule.bfloat16).float().numpy()
    assert abs(theirs - ours).max() <= 2.0 ** -8


def test_unbatched_fold_and_unfold_nodes_are_torchs():
    for module in (torch, chainrule):
        functional = module.nn.functional
        columns = module.ones(3 * 4, 5, dtype=module.float64, requires_grad=True)
        folded = functional.fold(columns, output_size=(1, 20), kernel_size=(1, 4), stride=(1, 4))
        frames = module.ones(3, 1, 20, dtype=module.float64, requires_grad=True)
        unfolded = functional.unfold(frames, kernel_size=(1, 4), stride=(1, 4))
        assert folded.grad_fn.name() == "Col2ImBackward0"
        assert unfolded.grad_fn.name() == "Im2ColBackward0"
        assert [type(n).__name__ for n, _ in folded.grad_fn.next_functions] == ["AccumulateGrad"]
        assert (folded.shape, folded.stride()) == ((3, 1, 20), (20, 20, 1))
        assert (unfolded.shape, unfolded.stride()) == ((12, 5), (5, 1))
        # the batched gradient of one unbatched node: the rows are the batch
        weights = module.arange(2 * 12 * 5, dtype=module.float64).reshape(2, 12, 5)
        (grad,) = module.autograd.grad(unfolded, frames, weights, is_grads_batched=True)
        expected = module.stack([module.autograd.grad(unfolded, frames, w, retain_graph=True)[0] for w in weights])
        assert module.equal(grad, expected)
