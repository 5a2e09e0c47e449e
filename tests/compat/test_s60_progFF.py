"""The idioms of the SPADE, lookup-free quantization and SAC-Discrete programs, each against torch:
the ``scatter_`` one-hot of a label map and its range errors (the first out-of-range index in index
order, as torch's loops meet it), LFQ's bit codebook (``int & 2 ** arange``) and index sums, its
``einsum('... i d, j d -> ... i j')`` distances and the equation errors torch words (indices into the
equation as written, spaces included), SPADE's parameter-free norms, and SAC-Discrete's guarded
log-probabilities against ``Categorical.entropy``."""

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

LIBS = (chainrule, torch)


def _error(fn):
    try:
        fn()
    except Exception as error:  # noqa: BLE001  (the type and words are what is compared)
        return type(error).__name__, str(error).split("\n")[0]
    return None


def _same_error(fn):
    ours, theirs = _error(lambda: fn(chainrule)), _error(lambda: fn(torch))
    assert theirs is not None
    assert ours == theirs


# ---------------------------------------------------------------- scatter / gather / take range errors
RANGE_CASES = [
    [[0, 9], [8, 0]],
    [[0, 8], [9, 0]],
    [[-1, 8], [9, 0]],
    [[0, 0], [-5, 8]],
]


@pytest.mark.parametrize("index", RANGE_CASES)
@pytest.mark.parametrize("op", ["scatter", "scatter_add", "scatter_reduce", "gather"])
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_gather_name_the_first_out_of_range_index(index, op, dim):
    def run(lib):
        x, i = lib.zeros(3, 3), lib.tensor(index)
        if op == "scatter":
            return x.scatter(dim, i, 1.0)
        if op == "scatter_add":
            return x.scatter_add(dim, i, lib.ones(2, 2))
        if op == "scatter_reduce":
            return x.scatter_reduce(dim, i, lib.ones(2, 2), "amax")
        return x.gather(dim, i)
    _same_error(run)


@pytest.mark.parametrize("index", [[5, 7, -20], [-20, 5], [1, -13, 20]])
def test_take_names_the_first_out_of_range_index(index):
    _same_error(lambda lib: lib.take(lib.zeros(3, 4), lib.tensor(index)))


def test_label_map_one_hot_scatter_out_of_range_as_torch():
    labels = np.random.default_rng(0).integers(0, 4, (2, 1, 3, 3))
    _same_error(lambda lib: lib.zeros(2, 3, 3, 3).scatter_(1, lib.tensor(labels + 1), 1.0))
    _same_error(lambda lib: lib.zeros(2, 4, 3, 3).scatter_(1, lib.tensor(-labels), 1.0))


def test_label_map_one_hot_by_scatter_equals_one_hot_permuted():
    labels = np.random.default_rng(1).integers(0, 5, (2, 1, 4, 6))
    results = []
    for lib in LIBS:
        image = lib.zeros(2, 3, 4, 6)
        scattered = image.new_zeros(2, 5, 4, 6).scatter_(1, lib.tensor(labels), 1.0)
        one_hot = lib.nn.functional.one_hot(lib.tensor(labels[:, 0]), num_classes=5).permute(0, 3, 1, 2)
        results.append((scattered.numpy(), str(scattered.dtype).split(".")[-1], one_hot.stride(),
                        one_hot.float().numpy()))
    (ours, our_dtype, our_strides, our_hot), (theirs, their_dtype, their_strides, their_hot) = results
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(our_hot, ours)
    np.testing.assert_array_equal(their_hot, theirs)
    assert (our_dtype, our_strides) == (their_dtype, their_strides)


# ---------------------------------------------------------------- einsum equation errors
EQUATIONS = [
    "id,jd->->ij", "i d, j d -> i #", " i d , j% d->ij", "id,jd- >ij", "id,j d->i!j", "i-d,jd->ij",
    "id,jd->....", "id,jd->ij......", "id,jd->i..j", "...id,jd->. ..ij", "i......d,jd->ij",
    "... ...,jd->ij", ". ..id,jd->ij", "i..d,jd->ij",
]


@pytest.mark.parametrize("equation", EQUATIONS)
def test_einsum_equation_errors_worded_as_torch(equation):
    _same_error(lambda lib: lib.einsum(equation, lib.ones(3, 4), lib.ones(5, 4)))


@pytest.mark.parametrize("equation", ["... i d, j d -> ... i j", " ...id , jd->...ij ", "b n d,j d->b n j"])
def test_lfq_einsum_distances_as_torch(equation):
    rng = np.random.default_rng(2)
    x, codes = rng.standard_normal((2, 5, 3)).astype(np.float32), rng.choice([-1.0, 1.0], (8, 3)).astype(np.float32)
    results = []
    for lib in LIBS:
        xt = lib.tensor(x, requires_grad=True)
        distance = -2 * lib.einsum(equation, xt, lib.tensor(codes))
        prob = (-distance * 10.0).softmax(dim=-1)
        entropy = (-prob * prob.clamp(min=1e-5).log()).sum(dim=-1).mean()
        entropy.backward()
        cdist = lib.cdist(xt.detach(), lib.tensor(codes)[None].expand(2, -1, -1)) ** 2
        rescaled = cdist - xt.detach().pow(2).sum(-1, keepdim=True) - 3
        results.append((distance.detach().numpy(), rescaled.numpy(), xt.grad.numpy(), distance.grad_fn.name()))
    (d, r, g, node), (d_t, r_t, g_t, node_t) = results
    assert node == node_t
    np.testing.assert_allclose(d, d_t, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d, r, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g, g_t, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- LFQ bits and indices
@pytest.mark.parametrize("cast", ["int", "long", "bool", "short", "float"])
def test_lfq_bit_codebook_and_index_sum_dtypes(cast):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    results = []
    for lib in LIBS:
        mask = 2 ** lib.arange(5, -1, -1)
        bits = ((lib.arange(64)[..., None].int() & mask) != 0).float() * 2 - 1
        indices = (getattr(lib.tensor(x) > 0, cast)() * mask.int()).sum(dim=-1)
        back = ((indices[..., None].int() & mask) != 0).float() * 2 - 1 if cast != "bool" else bits
        results.append((bits.numpy(), indices.numpy(), str(indices.dtype).split(".")[-1],
                        str(mask.dtype).split(".")[-1], back.numpy()))
    for ours, theirs in zip(*results):
        if isinstance(ours, np.ndarray):
            np.testing.assert_array_equal(ours, theirs)
        else:
            assert ours == theirs


# ---------------------------------------------------------------- SPADE's parameter-free norms
@pytest.mark.parametrize("kind", ["InstanceNorm2d", "BatchNorm2d"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_param_free_norms_as_torch(kind, mode):
    x = (np.random.default_rng(4).standard_normal((3, 4, 5, 6)) * 2 + 1).astype(np.float32)
    results = []
    for lib in LIBS:
        norm = getattr(lib.nn, kind)(4, affine=False)
        getattr(norm, mode)()
        xt = lib.tensor(x, requires_grad=True)
        out = norm(xt)
        (out * lib.tensor(x[::-1].copy())).sum().backward()
        results.append((out.detach().numpy(), xt.grad.numpy(), out.grad_fn.name(), sorted(norm.state_dict())))
    (o, g, node, keys), (o_t, g_t, node_t, keys_t) = results
    assert (node, keys) == (node_t, keys_t)
    np.testing.assert_allclose(o, o_t, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g, g_t, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- SAC-Discrete's guarded log-probabilities
def test_guarded_log_probs_entropy_equals_categorical_entropy():
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]], np.float32)
    results = []
    for lib in LIBS:
        p = lib.tensor(probs, requires_grad=True)
        log_probs = lib.log(p + (p == 0.0).float() * 1e-8)
        by_hand = -(p * log_probs).sum(1)
        by_hand.sum().backward()
        entropy = lib.distributions.Categorical(lib.tensor(probs)).entropy()
        results.append((by_hand.detach().numpy(), entropy.numpy(), p.grad.numpy()))
    (h, e, g), (h_t, e_t, g_t) = results
    np.testing.assert_allclose(h, h_t, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(e, e_t, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, e, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g, g_t, rtol=1e-6, atol=1e-6)
