"""vmap against torch.func.vmap where tools/torch_opinfo_vmap_trial.py found them apart."""

import pytest

import chainrule
from chainrule.func import vmap

torch = pytest.importorskip("torch")

RANDOM_OPS = {
    "randn": lambda lib, x: x + lib.randn(4),
    "rand_like": lambda lib, x: lib.rand_like(x),
    "dropout": lambda lib, x: lib.nn.functional.dropout(x, 0.5),
    "bernoulli": lambda lib, x: x * lib.bernoulli(lib.full((4,), 0.5)),
    "normal_": lambda lib, x: x.clone().normal_(),
    "randint": lambda lib, x: x + lib.randint(0, 5, (4,)),
}


def _raised(call):
    try:
        call()
    except Exception as error:
        return type(error), str(error)
    return None


@pytest.mark.parametrize("name", sorted(RANDOM_OPS))
def test_random_op_in_default_randomness_mode_raises_torchs_error(name):
    op = RANDOM_OPS[name]
    expected = _raised(lambda: torch.func.vmap(lambda x: op(torch, x))(torch.ones(3, 4)))
    actual = _raised(lambda: vmap(lambda x: op(chainrule, x))(chainrule.ones(3, 4)))
    assert expected is not None and expected[0] is RuntimeError
    assert actual == expected


def test_randomness_error_of_an_outer_vmap_reaches_a_random_op_in_an_inner_one():
    def inner(x):
        return x + chainrule.randn(())

    def torch_inner(x):
        return x + torch.randn(())

    expected = _raised(lambda: torch.func.vmap(torch.func.vmap(torch_inner, randomness="different"))(
        torch.ones(2, 3)))
    actual = _raised(lambda: vmap(vmap(inner, randomness="different"))(chainrule.ones(2, 3)))
    assert expected is not None and actual == expected


@pytest.mark.parametrize("randomness", ["same", "different"])
def test_randomness_modes_draw_torchs_numbers_and_leave_the_generator_where_torch_does(randomness):
    # four-element draws: torch's CPU stream fills them one number at a time, batched or not
    results = {}
    for lib in (torch, chainrule):
        lib.manual_seed(7)
        out = lib.func.vmap(lambda x, lib=lib: x + lib.randn(4), randomness=randomness)(lib.zeros(3, 4))
        results[lib.__name__] = [torch.tensor(out.numpy()), torch.tensor(lib.randn(2).numpy())]
    torch.testing.assert_close(results["chainrule"], results["torch"])
    out = results["chainrule"][0]
    assert bool((out == out[0]).all()) == (randomness == "same")


@pytest.mark.parametrize("name", sorted(RANDOM_OPS))
def test_same_randomness_gives_every_slice_the_same_draw(name):
    op = RANDOM_OPS[name]
    out = vmap(lambda x: op(chainrule, x), randomness="same")(chainrule.ones(3, 4))
    expected = torch.func.vmap(lambda x: op(torch, x), randomness="same")(torch.ones(3, 4))
    assert tuple(out.shape) == tuple(expected.shape) and str(out.dtype) == str(expected.dtype).replace("torch", "chainrule")
    assert bool((out == out[0]).all()) and bool((expected == expected[0]).all())


def _both(function_of_lib, *make_inputs, **vmap_kwargs):
    """``function_of_lib(lib)`` under each library's vmap, on inputs ``make(lib)``; as torch tensors."""
    results = []
    for lib in (torch, chainrule):
        out = lib.func.vmap(function_of_lib(lib), **vmap_kwargs)(*(make(lib) for make in make_inputs))
        results.append(torch.tensor(out.detach().numpy()))
    return results


@pytest.mark.parametrize("in_dims", [0, 1])
def test_as_strided_offset_counts_from_each_slices_own_start(in_dims):
    # torch's vmap: each slice as if it had a storage of its own (a plain loop would read slice 0's)
    expected, actual = _both(lambda lib: lambda x: x.as_strided((2,), (2,), 1),
                             lambda lib: lib.arange(24.0).reshape(4, 6), in_dims=in_dims)
    torch.testing.assert_close(actual, expected)


def test_as_strided_offset_in_nested_vmaps_and_as_strided_copy():
    expected, actual = _both(lambda lib: lib.func.vmap(lambda x: lib.as_strided_copy(x, (2,), (1,), 1)),
                             lambda lib: lib.arange(24.0).reshape(2, 3, 4))
    torch.testing.assert_close(actual, expected)


def test_per_sample_gradient_of_as_strided_with_an_offset():
    def loss(lib):
        weights = lib.linspace(-1.0, 1.0, 3, dtype=lib.float64)
        return lib.func.grad(lambda x: (x.as_strided((3,), (2,), 1) * weights).sum())

    expected, actual = _both(loss, lambda lib: lib.arange(18.0, dtype=lib.float64).reshape(3, 6))
    torch.testing.assert_close(actual, expected)


BATCH_NORM_CALLS = {
    "batch_norm": lambda lib, x, m, v: lib.nn.functional.batch_norm(x, m, v, training=True),
    "instance_norm": lambda lib, x, m, v: lib.nn.functional.instance_norm(x, m, v, use_input_stats=True),
    "BatchNorm1d": lambda lib, x, m, v: lib.nn.BatchNorm1d(2)(x),
}


@pytest.mark.parametrize("name", sorted(BATCH_NORM_CALLS))
def test_training_batch_norm_refuses_unmapped_running_stats_as_torch_does(name):
    # each slice would update the shared statistics in turn: torch's vmap refuses, before any update
    call = BATCH_NORM_CALLS[name]
    outcomes = []
    for lib in (torch, chainrule):
        mean, var = lib.zeros(2), lib.ones(2)
        raised = _raised(lambda lib=lib, mean=mean, var=var: lib.func.vmap(
            lambda x: call(lib, x, mean, var))(lib.arange(120.0).reshape(3, 4, 2, 5)))
        outcomes.append((raised, mean.tolist(), var.tolist()))
    assert outcomes[0][0] is not None and outcomes[0][0][1].startswith("Batch norm got a batched tensor")
    assert outcomes[1] == outcomes[0]


def test_training_batch_norm_with_mapped_running_stats_updates_each_slices_own():
    results = []
    for lib in (torch, chainrule):
        mean, var = lib.zeros(3, 2), lib.ones(3, 2)
        x = lib.arange(120.0).reshape(3, 4, 2, 5)
        out = lib.func.vmap(lambda x, m, v, lib=lib: lib.nn.functional.batch_norm(x, m, v, training=True))(x, mean, var)
        unmapped_input = lib.func.vmap(lambda x, m, v, lib=lib: lib.nn.functional.batch_norm(
            x, m, v, training=True), in_dims=(None, 0, 0))(x[0], mean, var)
        results.append([torch.tensor(t.numpy()) for t in (out, unmapped_input, mean, var)])
    torch.testing.assert_close(results[1], results[0])


INPLACE_INTO_UNMAPPED = {
    "mul_": lambda s, x: s.mul_(x),
    "copy_": lambda s, x: s.copy_(x),
    "clamp_": lambda s, x: s.clamp_(min=x),
    "add_": lambda s, x: s.add_(x),
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch's vmap falls back for clamp_ (a performance note)
@pytest.mark.parametrize("name", sorted(INPLACE_INTO_UNMAPPED))
def test_in_place_op_writing_a_mapped_operand_into_an_unmapped_input_is_refused(name):
    # each slice would write into the one unmapped tensor in turn; torch's vmap refuses (add_'s message is
    # its shape check's, the others' its vmap one), chainrule with the vmap message, before writing
    op = INPLACE_INTO_UNMAPPED[name]
    outcomes = []
    for lib in (torch, chainrule):
        unmapped = lib.zeros(4)
        raised = _raised(lambda lib=lib, unmapped=unmapped: lib.func.vmap(op, in_dims=(None, 0))(
            unmapped, lib.arange(12.0).reshape(3, 4)))
        outcomes.append((raised[0] if raised else None, unmapped.tolist()))
    assert outcomes[0][0] is RuntimeError
    assert outcomes[1] == outcomes[0]


def test_in_place_op_on_a_mapped_input_with_an_unmapped_operand_still_writes_the_batch():
    results = []
    for lib in (torch, chainrule):
        batch = lib.arange(12.0).reshape(3, 4)
        out = lib.func.vmap(lambda x, s: x.mul_(s), in_dims=(0, None))(batch, lib.full((4,), 2.0))
        results.append([torch.tensor(out.numpy()), torch.tensor(batch.numpy())])
    torch.testing.assert_close(results[1], results[0])
