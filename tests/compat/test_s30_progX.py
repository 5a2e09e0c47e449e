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
