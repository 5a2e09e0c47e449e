"""Tensor.storage() as a textbook chapter uses it (dlwpt-code p1ch3): printing a storage, writing
into it, reading elements, the deprecation warning. Each observable is taken from torch 2.13 and
from chainrule running the same steps."""

from __future__ import annotations

import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _printed(storage, lib_name):
    # the heading names the library; everything else must be the same text
    return repr(storage).replace(lib_name, "LIB")


def _walk(lib, lib_name):
    seen = []
    grid = lib.tensor([[1.0, 4.0], [2.0, 1.0], [3.0, 5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = grid.storage()
        seen.append(_printed(memory, lib_name))
        seen.append(str(memory) == repr(memory))
        memory[0] = 2.0  # writes into the tensor
        memory[-1] = -7.5
        seen.append(grid.tolist())
        flipped = grid.t()  # a view: one storage, in the original order
        seen.append(_printed(flipped.storage(), lib_name))
        seen.append(_printed(flipped.contiguous().storage(), lib_name))
        seen += [memory[1], type(memory[1]).__name__, len(memory)]
        counts = lib.tensor([3, 0, 2], dtype=lib.int16)
        counts.storage()[1] = 9
        seen.append(counts.tolist())
        seen.append(_printed(lib.tensor([True, False]).storage(), lib_name))
        seen.append(_printed(lib.tensor([1, 2], dtype=lib.uint8).untyped_storage(), lib_name))
    return seen


def test_storage_printing_and_writes_match_torch():
    assert _walk(chainrule, "chainrule") == _walk(torch, "torch")


def _refusal(lib, step):
    memory = lib.arange(4.0).storage()
    try:
        step(memory)
    except Exception as error:
        return type(error).__name__, str(error).replace("chainrule", "torch")
    return None


@pytest.mark.parametrize("step", [
    lambda m: m[4], lambda m: m[-5], lambda m: m.__setitem__(9, 1.0), lambda m: m[1:3],
])
def test_refusals_match_torch(step):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = _refusal(chainrule, step), _refusal(torch, step)
    assert ours is not None and ours[0] == theirs[0]
    if ours[0] == "IndexError" or "slices" in theirs[1]:
        assert ours[1] == theirs[1]


def _warnings_for_two_calls(lib):
    lib.storage._reset_warn_typed_storage_removal()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lib.ones(2).storage()
        lib.ones(3).storage()  # another call site: torch stays silent, it warned once already
    return [str(w.message) for w in caught if "TypedStorage" in str(w.message)]


def test_deprecation_warning_is_once_a_process_as_torch():
    ours, theirs = _warnings_for_two_calls(chainrule), _warnings_for_two_calls(torch)
    assert len(ours) == len(theirs) == 1 and ours == theirs
