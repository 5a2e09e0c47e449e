"""Session 45, lane perfZ: a Generator (and a sampler's per-epoch stream) takes the MT19937 engine
of a collected one instead of building a new one; its draws and state bytes stay torch's."""

import gc
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import mt19937_stream
from tests._heap import frozen_heap

torch = pytest.importorskip("torch")


def _same(ours, theirs) -> bool:
    return torch.equal(torch.from_numpy(np.array(ours.numpy())), theirs)


def _draws(lib, generator) -> list:
    return [lib.rand(5, generator=generator), lib.randn(20, generator=generator),
            lib.randn(3, dtype=lib.float64, generator=generator),
            lib.randint(0, 1000, (7,), generator=generator), lib.randperm(50, generator=generator)]


def _recycle_some_engines() -> None:
    """Generators made, drawn from (a normal lookahead too) and dropped, so that their engines
    wait for the next streams, in some state other than a fresh seed's. Reference counting frees a
    dropped generator at once (no collection: a full one took seconds a call in a worker that had
    imported torch)."""
    for seed in range(3):
        generator = cr.Generator().manual_seed(seed)
        _draws(cr, generator)
        cr.randn(40, generator=generator)
        del generator
    assert mt19937_stream._SPARE_ENGINES  # the last one's engine waits for the next stream


@pytest.mark.parametrize("seed", [None, 0, 7, 2**32 + 7, 2**64 - 1])
def test_a_generator_on_a_recycled_engine_draws_torchs_numbers(seed):
    _recycle_some_engines()
    ours, theirs = cr.Generator(), torch.Generator()
    if seed is not None:
        ours.manual_seed(seed)
        theirs.manual_seed(seed)
    for mine, torchs in zip(_draws(cr, ours), _draws(torch, theirs)):
        assert _same(mine, torchs)
    assert _same(ours.get_state(), theirs.get_state())


def test_state_bytes_are_torchs_fresh_after_draws_and_after_a_whole_twist():
    _recycle_some_engines()
    ours, theirs = cr.Generator(), torch.Generator()
    assert _same(ours.get_state(), theirs.get_state())  # fresh: torch's next == 0
    assert ours.initial_seed() == theirs.initial_seed()
    ours.manual_seed(3)
    theirs.manual_seed(3)
    assert _same(ours.get_state(), theirs.get_state())
    # 624 words: the position is 624 again, on a twisted key (no longer "fresh")
    cr.randint(0, 2**31, (624,), generator=ours)
    torch.randint(0, 2**31, (624,), generator=theirs)
    assert _same(ours.get_state(), theirs.get_state())
    cr.randn(3, dtype=cr.float64, generator=ours)  # a cached second normal in the state
    torch.randn(3, dtype=torch.float64, generator=theirs)
    assert _same(ours.get_state(), theirs.get_state())
    cr.randn(1, generator=ours)  # and a cached float one
    torch.randn(1, generator=theirs)
    assert _same(ours.get_state(), theirs.get_state())


def test_a_state_from_torch_loads_onto_a_recycled_engine():
    theirs = torch.Generator().manual_seed(11)
    torch.randn(5, dtype=torch.float64, generator=theirs)
    state = theirs.get_state()
    _recycle_some_engines()
    ours = cr.Generator().set_state(cr.tensor(state.numpy()))
    assert ours.initial_seed() == 11
    assert _same(ours.get_state(), state)
    for mine, torchs in zip(_draws(cr, ours), _draws(torch, theirs)):
        assert _same(mine, torchs)
    # and a fresh generator's state (torch's next == 0) read back as fresh
    fresh = torch.Generator().manual_seed(5).get_state()
    assert _same(cr.Generator().set_state(cr.tensor(fresh.numpy())).get_state(), fresh)


def test_an_engine_still_held_elsewhere_is_not_handed_on():
    with frozen_heap():  # (the collection below walks only what the test made)
        stream = mt19937_stream.MT19937Stream(4)
        engine = stream._engine
        before = engine.state["state"]["key"].copy()
        del stream
        gc.collect()
    others = [mt19937_stream.MT19937Stream(seed) for seed in range(2 * mt19937_stream._SPARE_MAX)]
    assert all(other._engine is not engine for other in others)
    assert np.array_equal(engine.state["state"]["key"], before)


def test_seed_from_entropy_is_a_64_bit_seed_the_generator_reports():
    generator = cr.Generator()
    seeds = {generator.seed() for _ in range(4)}
    assert len(seeds) == 4 and all(0 <= seed < 2**64 for seed in seeds)
    seed = generator.seed()
    assert generator.initial_seed() == seed
    theirs = torch.Generator().manual_seed(seed)
    assert _same(cr.randperm(30, generator=generator), torch.randperm(30, generator=theirs))


def test_shuffled_epochs_after_recycling_are_torchs():
    data = list(range(40))
    cr.manual_seed(9)
    torch.manual_seed(9)
    ours = cr.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    theirs = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    for _ in range(3):
        _recycle_some_engines()
        assert [b.tolist() for b in ours] == [b.tolist() for b in theirs]


# ---- grid_sample: taps read from a zero-padded channels-last copy (PaddedTapSum)
def _grid_sample_both(x, grid, **kwargs):
    ours_x, ours_g = cr.tensor(x, requires_grad=True), cr.tensor(grid, requires_grad=True)
    theirs_x, theirs_g = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
    ours = cr.nn.functional.grid_sample(ours_x, ours_g, **kwargs)
    theirs = torch.nn.functional.grid_sample(theirs_x, theirs_g, **kwargs)
    weights = np.random.default_rng(3).standard_normal(tuple(theirs.shape)).astype(x.dtype)
    (ours * cr.tensor(weights)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    return (ours, ours_x.grad, ours_g.grad), (theirs, theirs_x.grad, theirs_g.grad)


@pytest.mark.parametrize("spatial", [2, 3])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_values_and_gradients_are_torchs(spatial, mode, padding_mode, align_corners):
    if mode == "bicubic" and spatial == 3:
        pytest.skip("bicubic is 4-D only")
    rng = np.random.default_rng(spatial)
    x = rng.standard_normal((2, 3, *[4, 5, 6][:spatial])).astype(np.float64)
    grid = rng.uniform(-1.6, 1.6, (2, 3, 4, *[2] * (spatial - 2), spatial)).astype(np.float64)
    ours, theirs = _grid_sample_both(x, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    assert ours[0].is_contiguous() and tuple(ours[0].shape) == tuple(theirs[0].shape)
    for mine, torchs in zip(ours, theirs):
        np.testing.assert_allclose(mine.detach().numpy(), torchs.detach().numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_grid_sample_of_nan_infinite_and_far_coordinates_is_torchs(mode):
    # (these positions made an out-of-range gather index before: an IndexError for a NaN)
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 5)).astype(np.float32)
    grid = np.array([[[[np.nan, 0.0], [0.2, np.inf], [-np.inf, 0.1], [-1e30, 0.3], [0.4, 1e30],
                       [3.0, -4.0], [0.5, -0.5]]]], dtype=np.float32)
    with torch.no_grad():
        theirs = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(grid), mode=mode, align_corners=False)
    ours = cr.nn.functional.grid_sample(cr.tensor(x), cr.tensor(grid), mode=mode, align_corners=False)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("shapes", [((2, 0, 4, 5), (2, 3, 3, 2)), ((0, 3, 4, 5), (0, 3, 3, 2)),
                                    ((2, 3, 4, 5), (2, 0, 3, 2)), ((2, 0, 3, 4, 5), (2, 2, 3, 3, 3)),
                                    ((0, 2, 3, 4, 5), (0, 2, 3, 3, 3))])
def test_grid_sample_of_empty_batches_channels_and_grids_is_torchs(shapes, mode, create_graph):
    # (no channels, or no batch, made a reshape of 0 elements with a -1 fail before)
    input_shape, grid_shape = shapes
    if mode == "bicubic" and len(input_shape) == 5:
        pytest.skip("bicubic is 4-D only")
    found = []
    for lib in (cr, torch):
        x = lib.zeros(input_shape, requires_grad=True)
        grid = lib.zeros(grid_shape, requires_grad=True)
        out = lib.nn.functional.grid_sample(x, grid, mode=mode, align_corners=False)
        grad_x, grad_grid = lib.autograd.grad(out.sum(), (x, grid), create_graph=create_graph, allow_unused=True)
        found.append((tuple(out.shape), tuple(grad_x.shape), None if grad_grid is None else tuple(grad_grid.shape)))
    assert found[0] == found[1]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_grid_sample_of_infinite_coordinates_warns_nothing_as_torch(mode):
    x = cr.ones(1, 1, 3, 3)
    grid = cr.tensor([[[[float("inf"), 0.0], [0.0, float("-inf")], [float("nan"), 1e38]]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cr.nn.functional.grid_sample(x, grid, mode=mode, align_corners=False)
    assert tuple(out.shape) == (1, 1, 1, 3)
