"""Warnings that scripts print on torch, in torch's words and at the script's line.

Found running the spatial-transformer tutorial: ``F.affine_grid``/``F.grid_sample`` without
``align_corners`` (torch 2.x words both the same), and ``torch.from_numpy`` of a read-only array
(a PIL image through ``np.asarray``), which torch warns about once a process.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule
import chainrule.nn.functional as CF
from chainrule.ops import creation

torch = pytest.importorskip("torch")


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [(str(w.message), w.category, w.filename) for w in caught]


@pytest.mark.parametrize("op", ["affine_grid", "grid_sample"])
def test_align_corners_default_warns_in_torchs_words(op):
    def run(lib, functional):
        theta = lib.eye(2, 3).unsqueeze(0)
        grid = functional.affine_grid(theta, (1, 1, 4, 4), align_corners=False)
        if op == "affine_grid":
            return lambda: functional.affine_grid(theta, (1, 1, 4, 4))
        return lambda: functional.grid_sample(lib.ones(1, 1, 4, 4), grid)

    ours = _caught(run(chainrule, CF))
    theirs = _caught(run(torch, torch.nn.functional))
    assert [m for m, _, _ in ours] == [m for m, _, _ in theirs] and len(ours) == 1
    assert ours[0][1] is UserWarning and ours[0][2] == __file__


def test_a_read_only_array_warns_once_a_process_as_torch(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    array = np.arange(4.0)
    array.setflags(write=False)
    first = _caught(lambda: chainrule.from_numpy(array))
    again = _caught(lambda: (chainrule.from_numpy(array), chainrule.as_tensor(array)))
    assert len(first) == 1 and again == []
    message, category, filename = first[0]
    assert category is UserWarning and filename == __file__
    assert message.startswith("The given NumPy array is not writable, and PyTorch does not support non-writable")


def test_as_tensor_of_a_read_only_array_warns_and_shares_it(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    array = np.arange(3.0)
    array.setflags(write=False)
    caught = _caught(lambda: chainrule.as_tensor(array))
    assert len(caught) == 1 and caught[0][2] == __file__
    assert np.shares_memory(chainrule.as_tensor(array).numpy(), array)


def test_writable_arrays_and_copies_do_not_warn(monkeypatch):
    monkeypatch.setattr(chainrule._config, "_warned_once", set())
    read_only = np.arange(3.0)
    read_only.setflags(write=False)
    assert _caught(lambda: (chainrule.from_numpy(np.arange(3.0)), chainrule.tensor(read_only))) == []
    assert creation._READ_ONLY_WARNING not in chainrule._config._warned_once  # its once not spent


def _read_only(lib):
    array = np.arange(4.0, dtype=np.float32)
    array.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return array, lib.from_numpy(array)


@pytest.mark.parametrize("write", [lambda t: t.add_(1), lambda t: t.zero_(), lambda t: t.__setitem__(0, 5.0),
                                   lambda t: t.view(2, 2).mul_(2), lambda t: t.copy_(t + 1)],
                         ids=["add_", "zero_", "setitem", "view mul_", "copy_"])
def test_in_place_write_into_a_read_only_array_is_refused_and_says_why(write):
    # torch writes into the non-writable memory anyway (undefined behaviour: it may be a bytes
    # object or a read-only file mapping); chainrule refuses, naming the cause and the fixes,
    # and leaves the array as it was
    array, tensor = _read_only(torch)
    write(tensor)
    assert array[0] != 0 or array[1] != 1  # torch's write went through into the array
    array, tensor = _read_only(chainrule)
    with pytest.raises(RuntimeError, match=r"non-writable NumPy array .*undefined behaviour\. Copy the array first"):
        write(tensor)
    assert array.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert (tensor + 1).tolist() == [1.0, 2.0, 3.0, 4.0]  # reads are fine


def test_in_place_write_into_overlapping_elements_keeps_torchs_words():
    for lib in (chainrule, torch):
        expanded = lib.zeros(1, 3).expand(2, 3)
        with pytest.raises(RuntimeError, match="more than one element of the written-to tensor refers to a single"):
            expanded.add_(1)
