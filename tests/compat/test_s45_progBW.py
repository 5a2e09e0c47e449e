"""Session 45, lane progBW: gaps found beside the recsys/graph/traffic corpus programs
(dcn_xdeepfm_cross, mpnn_set2set, stgcn_traffic), each checked against torch."""

import pytest
import torch

import chainrule


def _outcome(lib, fn):
    try:
        out = fn(lib)
    except Exception as exc:  # the type and text are what is compared
        return type(exc).__name__, str(exc)
    return "ok", str(out.dtype).split(".")[-1], out.tolist()


REPEATS_ONLY = [
    # the one-argument form takes int32/int64 vectors only, dtype checked before rank
    "[[1, 2], [3, 4]]", "3", "[[2]]", "[[2.0]]", "2.0", "[2.0, 1.0]", "[True, False]", "[]",
    "[2, 1], dtype=lib.uint8", "[2, 1], dtype=lib.int16", "[2, 1], dtype=lib.int32", "[2, 0, 1]",
]


@pytest.mark.parametrize("counts", REPEATS_ONLY)
def test_repeat_interleave_of_counts_checks_dtype_then_rank_as_torch(counts):
    def build(lib):
        return eval(f"lib.tensor({counts})", {"lib": lib})

    for call in (lambda lib: lib.repeat_interleave(build(lib)),
                 lambda lib: build(lib).repeat_interleave(),
                 lambda lib: lib.repeat_interleave(build(lib), output_size=3)):
        assert _outcome(chainrule, call) == _outcome(torch, call)


REPEATS_WITH_INPUT = [
    "[[1, 2]]", "[[2.0]]", "2.0", "[2.0, 1.0]", "[2.0]", "[2, 1], dtype=lib.uint8", "[2, 1], dtype=lib.int16",
    "[True, False]", "[]", "[1, 2]", "[1, 2], dtype=lib.int32", "3", "[3]", "[1, 0, 2]",
]


@pytest.mark.parametrize("repeats", REPEATS_WITH_INPUT)
@pytest.mark.parametrize("dim", [None, 0, 1])
def test_repeat_interleave_of_an_input_checks_rank_and_size_before_dtype_as_torch(repeats, dim):
    def call(lib):
        return lib.repeat_interleave(lib.arange(6.0).reshape(2, 3), eval(f"lib.tensor({repeats})", {"lib": lib}),
                                     dim=dim)

    assert _outcome(chainrule, call) == _outcome(torch, call)
