"""Session 30, lane progX: chainrule gaps found around the whole programs hamiltonian_nn,
deeponet_operator, egnn_equivariant, s4d_diagonal_ssm and neural_spline_flow, each checked
against torch 2.13 on the same calls."""

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(lib, call):
    """What a call gives: ('ok', values, dtype name) or (exception class name, its whole message)."""
    try:
        result = call(lib)
    except Exception as e:  # noqa: BLE001  (the class and text are what is compared)
        return type(e).__name__, str(e)
    return "ok", result.tolist(), str(result.dtype).rpartition(".")[2]


# torch.trapezoid/cumulative_trapezoid take samples x or a spacing dx (torch's two overloads), never
# both and never None; ours took both with a message of its own, and a number or None for x
TRAPEZOID_CALLS = {
    "x and dx by keyword": lambda L, y, x: dict(x=x, dx=0.1),
    "x positional and dx": lambda L, y, x: (x, dict(dx=0.1)),
    "a float for x": lambda L, y, x: (0.5, {}),
    "an int for x": lambda L, y, x: (2, {}),
    "None for x": lambda L, y, x: (None, {}),
    "None for dx": lambda L, y, x: dict(dx=None),
    "a str for dx": lambda L, y, x: dict(dx="a"),
    "a float dim": lambda L, y, x: dict(dim=1.0),
    "dim positional": lambda L, y, x: (x, 1, {}),
    "a list for x": lambda L, y, x: ([0.0, 1.0, 3.0], {}),
    "an unknown keyword": lambda L, y, x: dict(dz=2),
    "a complex dx": lambda L, y, x: dict(dx=1j),
    "a bool dx": lambda L, y, x: dict(dx=True),
    "x and dim": lambda L, y, x: (x, dict(dim=1)),
    "an int dx and dim": lambda L, y, x: dict(dx=2, dim=0),
    "numpy's axis": lambda L, y, x: dict(dx=0.5, axis=0),
}


def _trapezoid_call(name, case):
    def call(lib):
        y = lib.arange(6.0).reshape(2, 3)
        x = lib.tensor([0.0, 1.0, 3.0])
        spec = TRAPEZOID_CALLS[case](lib, y, x)
        if isinstance(spec, dict):
            return getattr(lib, name)(y, **spec)
        *positional, keywords = spec
        return getattr(lib, name)(y, *positional, **keywords)
    return call


@pytest.mark.parametrize("case", list(TRAPEZOID_CALLS))
@pytest.mark.parametrize("name", ["trapezoid", "trapz", "cumulative_trapezoid"])
def test_trapezoid_arguments_are_parsed_as_torchs_overloads(name, case):
    call = _trapezoid_call(name, case)
    assert _outcome(chainrule, call) == _outcome(torch, call)


@pytest.mark.parametrize("dtype", ["uint8", "float16", "float32"])
@pytest.mark.parametrize("dx", [2, 2.5, True])
def test_trapz_reads_dx_as_a_float_as_torch(dtype, dx):
    # torch's trapz parses dx as a double: True is a spacing of 1.0 (trapezoid refuses a bool)
    def call(lib):
        y = lib.tensor([[1, 2, 200], [3, 4, 5]], dtype=getattr(lib, dtype))
        return lib.trapz(y, dx=dx)
    assert _outcome(chainrule, call) == _outcome(torch, call)


# torch's index_add_ and index_reduce_ check (index_func_meta_impl) the dim within source, one index
# per source slice, then the other dims, all before any index is read. Ours let a 0-d source add
# into a 1-d self, checked shapes before the index count and read indices first; index_reduce went
# by scatter_reduce's words. Found around egnn_equivariant's unsorted_segment_sum by index_add_;
# on this grid 789 of 1,152 calls differed from torch, now none.
SHAPES = [(), (1,), (3,), (3, 2), (1, 2), (3, 1), (2, 3), (3, 2, 1)]
INDICES = [1, [1], [0, 2], [0, 1, 2], [5], [-1]]


def _index_call(op, self_shape, source_shape, index, dim):
    def call(lib):
        x, source, i = lib.zeros(self_shape), lib.ones(source_shape), lib.tensor(index)
        if op == "index_add":
            return lib.index_add(x, dim, i, source)
        return lib.index_reduce(x, dim, i, source, "amax")
    return call


@pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta")
@pytest.mark.parametrize("index", INDICES, ids=str)
@pytest.mark.parametrize("self_shape", SHAPES[:6], ids=str)
@pytest.mark.parametrize("op", ["index_add", "index_reduce"])
def test_index_add_and_reduce_check_shapes_as_torchs_meta(op, self_shape, index):
    for source_shape in SHAPES:
        for dim in (0, 1, -1):
            call = _index_call(op, self_shape, source_shape, index, dim)
            assert _outcome(chainrule, call) == _outcome(torch, call), (source_shape, dim)


@pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta")
@pytest.mark.parametrize("call", [
    lambda L: L.zeros(3).index_reduce_(0, L.tensor([[1]]), L.ones(1, 1), "amax"),
    lambda L: L.zeros(3).index_reduce_(0, L.tensor([1.0]), L.ones(1), "amax"),
    lambda L: L.zeros(3).index_reduce_(0, L.tensor([1]), L.ones(1, dtype=L.float64), "amax"),
    lambda L: L.zeros(3).index_reduce_(0, L.tensor([1]), 2.0, "amax"),
    lambda L: L.zeros(3).index_add_(0, L.tensor([1]), 2.0),
    lambda L: L.zeros(3, 2).index_add_(1, L.tensor([0]), L.ones(3)),
], ids=["rank", "index dtype", "source dtype", "reduce number source", "add number source", "dim beyond source"])
def test_index_add_and_reduce_refuse_bad_arguments_in_torchs_words(call):
    assert _outcome(chainrule, call) == _outcome(torch, call)


@pytest.mark.parametrize("call", [
    lambda L: L.zeros(3, dtype=L.float64).scatter_add_(0, L.tensor([0, 1]), L.ones(2)),
    lambda L: L.scatter_add(L.zeros(3, dtype=L.float64), 0, L.tensor([0, 1]), L.ones(2)),
    lambda L: L.zeros(3, dtype=L.float64).scatter_reduce_(0, L.tensor([0, 1]), L.ones(2), "sum"),
    lambda L: L.zeros(3, dtype=L.float64).scatter_reduce(0, L.tensor([0, 1]), L.ones(2), "amax"),
], ids=["scatter_add_", "torch.scatter_add", "scatter_reduce_", "scatter_reduce"])
def test_scatter_variants_name_scatter_for_another_source_dtype(call):
    # torch's scatter_add and scatter_reduce share scatter's check: "scatter(): Expected self.dtype ..."
    assert _outcome(chainrule, call) == _outcome(torch, call)


# s4d_diagonal_ssm convolves by rfft/irfft with n=2*L. A 1-D transform's n=-1 is refused by torch
# ("Invalid number of data points (-1) specified"); ours read it as an n-d s's -1, keep the size.
def _spectrum_outcome(lib, transform):
    """('ok', shape, flat values as real numbers, dtype name), or the exception's class and message."""
    try:
        result = transform(lib)
    except Exception as e:  # noqa: BLE001  (the class and text are what is compared)
        return type(e).__name__, str(e)
    values = lib.view_as_real(result.resolve_conj()) if result.is_complex() else result
    return "ok", tuple(result.shape), values.reshape(-1).tolist(), str(result.dtype).rpartition(".")[2]


def _same_spectrum(transform):
    ours, theirs = _spectrum_outcome(chainrule, transform), _spectrum_outcome(torch, transform)
    if theirs[0] != "ok":
        assert ours == theirs
        return
    assert ours[0] == "ok" and (ours[1], ours[3]) == (theirs[1], theirs[3]), (ours, theirs)
    assert ours[2] == pytest.approx(theirs[2], abs=1e-5)


@pytest.mark.parametrize("n", [-1, -5, 0, 3, None])
@pytest.mark.parametrize("name", ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"])
def test_one_dimensional_fft_refuses_n_of_minus_one_as_torch(name, n):
    for kind in ("real", "complex", "0-d", "int"):
        for dim in (-1, 0, 5):
            def transform(L, kind=kind, dim=dim):
                real = L.arange(8.0).reshape(2, 4)
                x = {"real": real, "complex": L.fft.fft(real), "0-d": L.tensor(1.0), "int": L.arange(4)}[kind]
                return getattr(L.fft, name)(x, n=n, dim=dim)
            _same_spectrum(transform)


@pytest.mark.parametrize("s", [(-1,), (-1, -1), (2, -1)])
@pytest.mark.parametrize("name", ["fftn", "rfftn", "irfftn", "ihfftn"])
def test_n_dimensional_fft_still_keeps_a_dim_for_minus_one(name, s):
    _same_spectrum(lambda L: getattr(L.fft, name)(L.arange(8.0).reshape(2, 4), s=s))
