"""The CPU random streams are torch's: the same seed and the same calls give torch 2.13's values,
compared bit for bit (``torch.equal``)."""

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

SEEDS = [0, 1, 42, 2**32 + 5, 2**63, 67280421310721]


def _as_torch(tensor) -> "torch.Tensor":
    values = np.array(tensor.detach().numpy())
    if tensor.dtype == cr.bfloat16:  # NumPy's bfloat16 (ml_dtypes) crosses as its bits
        return torch.from_numpy(values.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(values)


def _both(seed, draw):
    """``draw(lib)`` after ``lib.manual_seed(seed)`` in chainrule and torch."""
    cr.manual_seed(seed)
    torch.manual_seed(seed)
    return draw(cr), draw(torch)


def _assert_equal(ours, theirs):
    ours = _as_torch(ours)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if ours.is_floating_point():  # NaN where torch has NaN, the same bits elsewhere
        assert torch.equal(ours.isnan(), theirs.isnan())
        ours, theirs = ours[~ours.isnan()], theirs[~theirs.isnan()]
    assert torch.equal(ours, theirs), (ours - theirs).abs().max()


@pytest.mark.parametrize("seed", SEEDS)
def test_seeding_gives_torchs_state_bytes_and_initial_seed(seed):
    ours, theirs = _both(seed, lambda lib: lib.get_rng_state())
    _assert_equal(ours, theirs)
    assert ours.numel() == 5056
    assert cr.initial_seed() == torch.initial_seed() == seed


@pytest.mark.parametrize("seed", SEEDS)
def test_rand_float32_float64_and_uniform_bounds(seed):
    def draw(lib):
        return [lib.rand(1000), lib.rand(3, 5, dtype=lib.float64),
                lib.empty(333).uniform_(-0.3, 0.7), lib.empty(7, dtype=lib.float64).uniform_(-2.5, 1e-3),
                lib.rand_like(lib.zeros(4, 4)), lib.get_rng_state()]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("seed", SEEDS)
def test_small_normal_draws_are_bit_equal_and_cache_the_second_value(seed):
    # below 16 values torch draws one double-precision Box–Muller pair per two values and keeps
    # the odd one out for the next call (it is part of the state bytes)
    def draw(lib):
        return [lib.randn(5), lib.get_rng_state(), lib.randn(3, dtype=lib.float64),
                lib.empty(7).normal_(2.0, 3.0), lib.normal(1.0, 0.5, size=(1,)), lib.get_rng_state()]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("count", [16, 1000, 1003])
def test_vectorised_normal_float32_and_float64_are_bit_equal(seed, count):
    # from 16 values torch transforms blocks of 16 uniforms (and redraws the last 16 for a
    # remainder); float32 with its AVX kernel's own log and sincos, float64 with the C library's
    def draw(lib):
        return [lib.randn(count), lib.empty(count).normal_(2.0, 3.0), lib.normal(-1.0, 0.5, size=(count,)),
                lib.get_rng_state(), lib.randn(count, dtype=lib.float64),
                lib.empty(count, dtype=lib.float64).normal_(0.3, 1.7), lib.get_rng_state()]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("seed", [5, 2**32 + 5])
def test_a_million_float32_normals_are_torchs_bit_for_bit(seed):
    # many chunks of the in-place cephes log/sincos, a shifted and scaled fill, and a remainder
    def draw(lib):
        return [lib.randn(2**20 + 5), lib.empty(10**6 + 7).normal_(-2.0, 0.25), lib.get_rng_state()]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("seed", SEEDS)
def test_integer_draws_and_permutations(seed):
    def draw(lib):
        return [lib.randint(0, 10, (50,)), lib.randint(-5, 2**40, (20,)), lib.randint(3, (2, 3)),
                lib.empty(20, dtype=lib.int64).random_(), lib.empty(9, dtype=lib.int32).random_(),
                lib.empty(6).random_(), lib.empty(6, dtype=lib.float64).random_(), lib.empty(5).random_(100),
                lib.randperm(10), lib.randperm(1000), lib.randperm(1, dtype=lib.int32), lib.get_rng_state()]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("n", [2, 128, 129, 65535, 65536, 70001, 300000])
def test_randperm_resolves_the_swaps_as_torchs_loop_does(n):
    # around the switch from the swap loop to the sorted, pointer-jumped resolution, and the
    # (target, step) sort keys outgrowing 32 bits above 65535
    def draw(lib):
        return [lib.randperm(n), lib.randperm(n // 2 + 1, dtype=lib.int32), lib.get_rng_state()]

    for seed in (0, 2**32 + 5):
        for ours, theirs in zip(*_both(seed, draw)):
            _assert_equal(ours, theirs)


def test_state_round_trips_between_torch_and_chainrule():
    torch.manual_seed(3)
    torch.rand(11)
    torch.randn(3)  # leaves a cached normal in the state
    cr.set_rng_state(cr.tensor(torch.get_rng_state().numpy()))
    _assert_equal(cr.get_rng_state(), torch.get_rng_state())
    assert cr.initial_seed() == 3
    _assert_equal(cr.randn(1), torch.randn(1))  # the cached value
    _assert_equal(cr.rand(5), torch.rand(5))
    torch.set_rng_state(_as_torch(cr.get_rng_state()))
    _assert_equal(cr.randint(0, 7, (9,)), torch.randint(0, 7, (9,)))


def test_bad_states_are_refused_as_torch_refuses_them():
    for lib in (cr, torch):
        with pytest.raises(RuntimeError, match="Expected a CPUGeneratorImplState of size 5056 but found the "
                                               "input RNG state size to be 10"):
            lib.set_rng_state(lib.zeros(10, dtype=lib.uint8))
        state = lib.get_rng_state()
        state[8:12] = 0  # 'left' (the words before the next twist) of 0
        with pytest.raises(RuntimeError, match="Invalid mt19937 state"):
            lib.set_rng_state(state)


def test_generator_objects_and_fork_rng_follow_torch():
    ours = cr.Generator().manual_seed(2**32 + 5)
    theirs = torch.Generator().manual_seed(2**32 + 5)
    _assert_equal(cr.rand(4, generator=ours), torch.rand(4, generator=theirs))
    assert cr.Generator().initial_seed() == torch.Generator().initial_seed() == 67280421310721
    ours, theirs = _both(0, lambda lib: lib.rand(2))
    with cr.random.fork_rng(devices=[]):
        cr.rand(100)
    _assert_equal(cr.rand(3), torch.rand(3))
    assert 0 <= cr.Generator().seed() < 2**64


def test_default_module_initialisation_is_torchs():
    def build(lib):
        model = lib.nn.Sequential(lib.nn.Conv2d(3, 8, 3), lib.nn.ReLU(), lib.nn.Flatten(),
                                  lib.nn.Linear(8 * 4 * 4, 10), lib.nn.LayerNorm(10))
        return [model.state_dict(), lib.nn.Linear(784, 256).weight, lib.nn.LSTM(5, 7, num_layers=2).state_dict(),
                lib.nn.Embedding(11, 16).weight, lib.nn.GRU(3, 4).state_dict()]

    ours, theirs = _both(0, build)
    for part_ours, part_theirs in zip(ours, theirs):
        if isinstance(part_theirs, dict):
            assert list(part_ours) == list(part_theirs)
            for name in part_theirs:
                _assert_equal(part_ours[name], part_theirs[name])
        else:
            _assert_equal(part_ours, part_theirs)


def test_init_functions_on_a_seeded_stream():
    def draw(lib):
        weights = [lib.empty(30, 20) for _ in range(5)]
        lib.nn.init.xavier_uniform_(weights[0])
        lib.nn.init.kaiming_uniform_(weights[1], a=0.1)
        lib.nn.init.uniform_(weights[2], -1.0, 2.0)
        lib.nn.init.normal_(weights[3], 0.5, 0.02)
        lib.nn.init.normal_(weights[4][:2, :3])
        sparse = lib.nn.init.sparse_(lib.empty(10, 20), 0.3)
        return [w.detach().clone() for w in weights[:3]] + [sparse, lib.get_rng_state()]

    for ours, theirs in zip(*_both(7, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("replacement", [False, True])
def test_shuffled_data_loader_order_is_torchs(replacement):
    def order(lib):
        data = lib.utils.data.TensorDataset(lib.arange(50))
        sampler = lib.utils.data.RandomSampler(data, replacement=replacement, num_samples=70)
        loader = lib.utils.data.DataLoader(data, batch_size=8, sampler=sampler)
        batches = [batch[0] for epoch in range(2) for batch in loader]
        subset = list(lib.utils.data.SubsetRandomSampler([3, 9, 27, 81, 243]))
        shuffled = [batch[0] for batch in lib.utils.data.DataLoader(data, batch_size=16, shuffle=True)]
        return batches + shuffled + [lib.tensor(subset), lib.get_rng_state()]

    for ours, theirs in zip(*_both(0, order)):
        _assert_equal(ours, theirs)


def test_distributed_sampler_shuffles_as_torch():
    def order(lib):
        sampler = lib.utils.data.DistributedSampler(list(range(23)), num_replicas=3, rank=1, shuffle=True, seed=5)
        sampler.set_epoch(2)
        return lib.tensor(list(sampler))

    _assert_equal(*_both(0, order))


@pytest.mark.parametrize("seed", [0, 42])
def test_bernoulli_exponential_and_dropout_masks_are_torchs(seed):
    def draw(lib):
        x = lib.arange(1, 601, dtype=lib.float32).reshape(20, 30)
        return [lib.empty(700).bernoulli_(0.37), lib.empty(9, dtype=lib.float64).bernoulli_(0.5),
                lib.bernoulli(lib.linspace(0, 1, 50)), lib.bernoulli(lib.linspace(0, 1, 50, dtype=lib.float64)),
                lib.bernoulli(lib.zeros(8), p=0.5), lib.empty(500).exponential_(1.5),
                lib.nn.functional.dropout(x, 0.3, training=True), lib.nn.Dropout(0.77)(x),
                lib.nn.functional.alpha_dropout(x, 0.2, training=True), lib.get_rng_state()]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


def test_strided_tensors_are_filled_in_memory_order():
    # torch's CPU kernels walk a transposed or sliced tensor in memory order; a transposed
    # tensor's normal_ takes the one-at-a-time path, as it is not contiguous
    def draw(lib):
        fills = [lib.zeros(4, 6).t().normal_(), lib.zeros(40, 3).t().normal_(1.0, 2.0),
                 lib.zeros(4, 6)[:, ::2].uniform_(), lib.zeros(20, 3, dtype=lib.float64).t().uniform_(-1, 1),
                 lib.zeros(5, 7, dtype=lib.int64).t().random_(0, 100), lib.zeros(6, 5).t().bernoulli_(0.3),
                 lib.zeros(3, 9).t().exponential_()]
        return fills + [lib.get_rng_state()]

    for ours, theirs in zip(*_both(3, draw)):
        _assert_equal(ours.contiguous(), theirs.contiguous())


@pytest.mark.parametrize("bounds", [{}, {"mean": 0.5, "std": 1.0, "a": -0.5, "b": 1.0},
                                    {"mean": 0.0, "std": 1.0, "a": 1.5, "b": 3.0}])
def test_trunc_normal_rejects_and_redraws_as_torch(bounds):
    # more than 0.3 of the mass inside: normal draws redrawn whole; less: uniforms accepted
    # against the density; either way the values and the stream afterwards are torch's
    def draw(lib):
        weight = lib.empty(40, 30)
        lib.nn.init.trunc_normal_(weight, **bounds)
        return [weight.detach().clone(), lib.rand(3)]

    for ours, theirs in zip(*_both(5, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("seed", [0, 2**32 + 5])
def test_multinomial_draws_are_torchs(seed):
    # without replacement (and for one sample) torch divides the weights by exponential draws of
    # their dtype and takes the largest keys; with replacement it searches the cumulative
    # weights for one double uniform per sample
    weights = np.random.default_rng(seed % 97).random((4, 60)) ** 3

    def draw(lib):
        rows32 = lib.tensor(weights.astype(np.float32))
        rows64 = lib.tensor(weights)
        return [lib.multinomial(rows32, 10), lib.multinomial(rows32, 1), lib.multinomial(rows32, 1, True),
                lib.multinomial(rows32, 300, replacement=True), lib.multinomial(rows64[1], 60),
                lib.multinomial(rows64, 7, replacement=True), lib.multinomial(rows32.t()[:5], 3),
                lib.multinomial(lib.tensor(weights[0].astype(np.float16)), 20, True), lib.get_rng_state()]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize(("weights", "num_samples", "replacement"), [
    ([0.5, -1.0], 1, True), ([0.5, float("inf")], 2, False), ([0.0, 0.0], 1, False),
    ([float("nan"), 1.0], 2, True), ([0.5, float("inf")], 2, True), ([[1.0, 2.0], [0.0, -0.0]], 2, True),
    ([1.0, 2.0], 3, False)])
def test_multinomial_refuses_bad_weights_in_torchs_words(weights, num_samples, replacement):
    with pytest.raises(RuntimeError) as theirs:
        torch.multinomial(torch.tensor(weights), num_samples, replacement)
    with pytest.raises(RuntimeError) as ours:
        cr.multinomial(cr.tensor(weights), num_samples, replacement)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("replacement", [True, False])
def test_weighted_random_sampler_draws_torchs_indices(replacement):
    # torch's sampler calls multinomial on the default generator itself (no fresh one per epoch)
    def draw(lib):
        weights = [0.1, 0.0, 2.0, 3.0, 0.5, 1.0, 0.25]
        sampler = lib.utils.data.WeightedRandomSampler(weights, 5 if not replacement else 40, replacement)
        seeded = lib.utils.data.WeightedRandomSampler(weights, 3, replacement,
                                                      generator=lib.Generator().manual_seed(9))
        return [lib.tensor(list(sampler)), lib.tensor(list(sampler)), lib.tensor(list(seeded)), lib.get_rng_state()]

    for ours, theirs in zip(*_both(11, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("seed", [0, 42, 2**32 + 5])
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_one_double_per_value_samplers_are_torchs(seed, dtype):
    # exponential_, cauchy_, log_normal_ and geometric_ compute one double per value with the C
    # library's functions (log_normal_ from the scalar normal sampler and its cache), then cast
    def draw(lib):
        dt = getattr(lib, dtype)
        strided = lib.zeros(6, 9, dtype=dt).t()
        return [lib.empty(1000, dtype=dt).exponential_(), lib.empty(17, dtype=dt).exponential_(0.7),
                lib.empty(1000, dtype=dt).cauchy_(), lib.empty(33, dtype=dt).cauchy_(0.3, 1.7),
                lib.empty(1001, dtype=dt).log_normal_(), lib.empty(5, dtype=dt).log_normal_(0.3, 0.4),
                lib.empty(1000, dtype=dt).geometric_(0.03), lib.empty(20, dtype=dt).geometric_(0.9),
                strided.exponential_(2.0).clone(), strided.cauchy_().clone(), lib.get_rng_state(), lib.randn(3)]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


def test_geometric_fills_integer_tensors_as_torch():
    def draw(lib):
        return [lib.empty(300, dtype=lib.int64).geometric_(0.2), lib.empty(30, dtype=lib.int32).geometric_(0.5),
                lib.get_rng_state()]

    for ours, theirs in zip(*_both(7, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("call", [
    lambda lib: lib.empty(3).exponential_(-1.0), lambda lib: lib.empty(3).exponential_(0.0),
    lambda lib: lib.empty(3, dtype=lib.int64).exponential_(), lambda lib: lib.empty(3).cauchy_(0.0, -1.0),
    lambda lib: lib.empty(3, dtype=lib.int64).cauchy_(), lambda lib: lib.empty(3).log_normal_(0.0, 0.0),
    lambda lib: lib.empty(3, dtype=lib.int32).log_normal_(), lambda lib: lib.empty(3).geometric_(0.0),
    lambda lib: lib.empty(3).geometric_(1.0), lambda lib: lib.empty(3, dtype=lib.bool).geometric_(0.5)])
def test_sampler_refusals_are_torchs(call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(Exception) as ours:
        call(cr)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("seed", [0, 3, 2**32 + 5])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_rand_and_randn_are_torchs(seed, dtype):
    # from 16 values (contiguous) torch's half normal_ runs the float32 kernel on whole blocks of
    # 16 uniforms and writes the last block over the last 16 places; below 16 the scalar sampler.
    # A uniform that rounds up to the upper bound is the lower bound instead
    def draw(lib):
        dt = getattr(lib, dtype)
        return [lib.randn(5, dtype=dt), lib.randn(16, dtype=dt), lib.randn(17, dtype=dt), lib.randn(40, dtype=dt),
                lib.randn(1003, dtype=dt), lib.empty(50, dtype=dt).normal_(0.1, 0.3), lib.rand(20000, dtype=dt),
                lib.empty(5000, dtype=dt).uniform_(2.0, 3.0), lib.empty(10, 4, dtype=dt).t().normal_(),
                lib.get_rng_state()]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("bounds", [(), (0.1, 0.37)])
def test_training_rrelu_draws_torchs_slopes(dtype, bounds):
    # one double uniform per element that is ≤ 0 (zero included, NaN not), the bounds rounded to
    # float32 below float64; the gradient is the drawn slope
    values = np.linspace(-3, 3, 401)
    values[200], values[7] = 0.0, np.nan

    def draw(lib):
        x = lib.tensor(values).to(getattr(lib, dtype)).requires_grad_()
        out = lib.nn.functional.rrelu(x, *bounds, training=True)
        out.sum().backward()
        in_place = lib.tensor(values[::-1].copy()).to(getattr(lib, dtype))
        lib.nn.functional.rrelu_(in_place, *bounds, training=True)
        return [out.detach(), x.grad, in_place, lib.get_rng_state()]

    for ours, theirs in zip(*_both(5, draw)):
        _assert_equal(ours, theirs)


def _relaxed_probs(lib):
    return lib.tensor([[0.1, 0.0, 0.5, 0.4], [1.0, 2.0, 3.0, 0.0], [0.0, 0.0, 7.0, 0.0]])


@pytest.mark.parametrize("seed", [0, 11])
def test_distribution_samples_are_torchs(seed):
    # the distributions that draw with torch's stream calls: Categorical through multinomial with
    # replacement (zero-probability classes, a single class), OneHotCategorical and Multinomial on
    # it, Exponential and Cauchy through exponential_ and cauchy_, and the normal family
    def draw(lib):
        dist = lib.distributions
        return [dist.Categorical(_relaxed_probs(lib)).sample((5, 2)), dist.Categorical(lib.ones(1)).sample((4,)),
                dist.Categorical(logits=lib.tensor([0.3, -1.0, 2.0])).sample(), dist.Categorical(
                    logits=lib.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0]], dtype=lib.float64)).sample((7,)),
                dist.OneHotCategorical(_relaxed_probs(lib)).sample((3,)),
                dist.Multinomial(10, _relaxed_probs(lib)).sample(),
                dist.Exponential(lib.tensor([0.5, 2.0, 7.0])).rsample((4,)),
                dist.Exponential(lib.tensor(3.0, dtype=lib.float64)).sample((20,)),
                dist.Cauchy(lib.tensor([0.0, 1.0]), lib.tensor([1.0, 0.1])).rsample((9,)),
                dist.Normal(lib.zeros(20), lib.ones(20)).rsample(), dist.Normal(0.5, 2.0).sample((3,)),
                dist.HalfNormal(lib.ones(30)).sample(), dist.Uniform(lib.zeros(30), lib.ones(30) * 3).sample(),
                dist.Bernoulli(lib.full((30,), 0.3)).sample(), dist.Geometric(lib.full((30,), 0.3)).sample(),
                dist.MultivariateNormal(lib.zeros(3), lib.eye(3) * 2).sample((6,)), lib.get_rng_state()]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("seed", [0, 5, 2**32 + 5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gamma_family_samples_are_torchs(seed, dtype):
    # Marsaglia and Tsang per value on the double uniforms and the cached scalar normal sampler,
    # α < 1 boosted (0.01 and 0.3 here), α = 0 drawing nothing; Dirichlet and Beta normalise
    # double-precision draws as torch's _sample_dirichlet; StudentT is a normal over a Chi2
    alphas = np.array([0.0, 0.01, 0.3, 1.0, 2.5, 7.0, 100.0, 0.999])
    concentrations = np.linspace(0.2, 3.0, 10)

    def draw(lib):
        dt = getattr(lib, dtype)
        dist = lib.distributions
        alpha = lib.tensor(alphas, dtype=dt)
        return [lib._standard_gamma(alpha.repeat(40)), dist.Gamma(alpha[1:], lib.tensor(2.0, dtype=dt)).rsample((30,)),
                dist.Chi2(lib.tensor([0.5, 3.0], dtype=dt)).sample((50,)),
                # float64 over 10 classes parts in the last bit: torch's vectorised sum of the draws
                dist.Dirichlet(lib.tensor(concentrations[:10 if dtype == 'float32' else 4], dtype=dt)).rsample((60,)),
                dist.Dirichlet(lib.tensor(concentrations[:3], dtype=dt)).sample(),
                dist.Beta(lib.tensor([0.5, 2.0], dtype=dt), lib.tensor([2.0, 0.05], dtype=dt)).sample((40,)),
                lib._sample_dirichlet(lib.tensor(concentrations[:4], dtype=dt).expand(30, 4)),
                lib._standard_gamma(alpha, generator=lib.Generator().manual_seed(4)),
                dist.StudentT(lib.tensor([1.5, 3.0, 30.0], dtype=dt)).sample((20,)),
                lib.get_rng_state(), lib.randn(3)]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("seed", [0, 3, 2**32 + 5])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_poisson_and_binomial_counts_are_torchs(seed, dtype):
    # Poisson: products of uniforms below λ = 10, Hörmann's transformed rejection from there,
    # nothing drawn for λ = 0; binomial: waiting-time inversion below count·p = 10, BTRS above,
    # on min(p, 1 - p), nothing drawn for count ≤ 0, p ≤ 0 or p ≥ 1
    rates = np.concatenate([np.linspace(0.0, 12.0, 49), [0.001, 9.999, 10.0, 57.3, 1e3, 2.5e5]])
    # fractional counts and counts from 2**23 take torch's float32 roundings of k and count - k + 1
    counts = np.array([0.0, -3.0, 1.0, 5.0, 20.0, 20.0, 100.0, 1000.0, 1e6, 37.0, 37.0, 12.0, 3.5, 25.5, 2e7,
                       2.0**24 + 2, 1e9, 33.25])
    probs = np.array([0.3, 0.3, 0.5, 1.0, 0.0, 0.6, 0.05, 0.97, 0.5, 0.2, 0.8, 0.999, 0.3, 0.45, 0.5, 0.2, 0.7, 0.9])

    def draw(lib):
        dt = getattr(lib, dtype)
        dist = lib.distributions
        count, prob = lib.tensor(counts, dtype=dt), lib.tensor(probs, dtype=dt)
        return [lib.poisson(lib.tensor(rates, dtype=dt).repeat(8)), lib.binomial(count.repeat(20), prob.repeat(20)),
                lib.binomial(lib.tensor([[50.0], [7.0]], dtype=dt).expand(2, 3),
                             lib.tensor([0.1, 0.4, 0.9], dtype=dt).expand(2, 3)),
                dist.Poisson(lib.tensor([0.5, 30.0], dtype=dt)).sample((25,)),
                dist.Binomial(lib.tensor([10.0, 200.0], dtype=dt), lib.tensor([0.3, 0.7], dtype=dt)).sample((25,)),
                lib.get_rng_state(), lib.randn(3)]

    for ours, theirs in zip(*_both(seed, draw)):
        _assert_equal(ours, theirs)


def test_half_precision_poisson_is_torchs():
    def draw(lib):
        return [lib.poisson(lib.tensor([0.5, 4.0, 30.0, 700.0]).half().repeat(10)), lib.get_rng_state()]

    for ours, theirs in zip(*_both(1, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("rates", [[1.0, -0.5], [float("nan")]])
def test_poisson_refuses_negative_and_nan_rates_as_torch(rates):
    with pytest.raises(RuntimeError) as theirs:
        torch.poisson(torch.tensor(rates))
    with pytest.raises(RuntimeError) as ours:
        cr.poisson(cr.tensor(rates))
    assert str(ours.value) == str(theirs.value)


def test_gamma_of_negative_nan_and_infinite_concentrations_is_torchs():
    # a negative α below -1 or a NaN one gives torch's NaN draw, kept at the smallest normal
    # number; between -1 and 0 the boost still runs; an infinite α draws inf
    def draw(lib):
        alpha = lib.tensor([-0.5, float("nan"), -3.0, float("inf"), 0.0, 2.0])
        return [lib._standard_gamma(alpha), lib._standard_gamma(alpha.double()), lib.get_rng_state()]

    for ours, theirs in zip(*_both(2, draw)):
        _assert_equal(ours, theirs)


def test_binomial_edge_probabilities_are_torchs():
    # a NaN probability gives NaN without a draw; p ≤ 0, p ≥ 1 and count ≤ 0 draw nothing
    def draw(lib):
        count = lib.tensor([5.0, 0.0, -2.0, 5.0, 5.0, 5.0, 40.0, 40.0])
        prob = lib.tensor([float("nan"), float("nan"), 0.5, -0.5, 1.5, 1.0, 0.5, 0.0])
        return [lib.binomial(count, prob), lib.binomial(count.double(), prob.double()), lib.get_rng_state()]

    for ours, theirs in zip(*_both(0, draw)):
        _assert_equal(ours, theirs)


@pytest.mark.parametrize("function", ["rrelu", "rrelu_"])
def test_training_rrelu_refuses_half_as_torch(function):
    with pytest.raises(NotImplementedError) as theirs:
        getattr(torch.nn.functional, function)(torch.ones(3, dtype=torch.float16), training=True)
    x = cr.ones(3, dtype=cr.float16)
    with pytest.raises(NotImplementedError) as ours:
        getattr(cr.nn.functional, function)(x, training=True)
    assert str(ours.value) == str(theirs.value)
    assert cr.equal(x, cr.ones(3, dtype=cr.float16))  # refused before anything was written


@pytest.mark.parametrize("dtype", ["int64", "int32", "float64"])
@pytest.mark.parametrize("low, high", [(0, 2**28 - 1), (0, 2**28), (-5, 2**30), (0, 2**31 - 2), (7, 2**32 + 9)])
def test_random_over_a_wide_range_draws_torchs_values(dtype, low, high):
    # torch 2.13's CPU kernel takes a 64-bit word once the range reaches 2**28 (not 2**32)
    if dtype == "int32" and high > 2**31:
        pytest.skip("beyond int32")
    drawn = []
    for lib in (torch, cr):
        lib.manual_seed(3)
        drawn.append(lib.zeros(9, dtype=getattr(lib, dtype)).random_(low, high).tolist())
    assert drawn[0] == drawn[1]
    torch.manual_seed(4)
    cr.manual_seed(4)
    assert torch.randint(low, high, (6,)).tolist() == cr.randint(low, high, (6,)).tolist()
