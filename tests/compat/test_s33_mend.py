"""Items session 32's review left, each checked against torch 2.13: a case is a function of the
library (``torch`` or ``chainrule``), run on both, and what a user sees of it (its values, or its
error's type and first line) must be the same."""

import io
import pickle
import warnings

import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(case, lib):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return case(lib)
    except Exception as error:  # the error is part of what is compared
        return ("error", type(error).__name__, str(error).split("\n")[0])


def assert_as_torch(case):
    """``case`` gives on chainrule what it gives on torch."""
    assert _outcome(case, chainrule) == _outcome(case, torch)


# --- pickling and saving a view keeps its storage, offset and strides -------------------------

def _layout(t):
    """What a view's copy must keep: its class, values, strides, offset and storage size."""
    values = t.tolist() if t.dim() else t.item()
    return (type(t).__name__, values, tuple(t.shape), t.stride(), t.storage_offset(),
            t.untyped_storage().nbytes(), t.requires_grad)


def _pickled(lib, obj):
    return pickle.loads(pickle.dumps(obj))


def _saved(lib, obj):
    buffer = io.BytesIO()
    lib.save(obj, buffer)
    buffer.seek(0)
    return lib.load(buffer)


VIEWS = {
    "every other column": lambda lib: lib.arange(24.0).reshape(4, 6)[:, ::2],
    "a transposed slice": lambda lib: lib.arange(24.0).reshape(4, 6).t()[1:, ::3],
    "expanded": lambda lib: lib.arange(3.0).reshape(3, 1).expand(3, 4),
    "as_strided with an offset": lambda lib: lib.as_strided(lib.arange(30.0), (3, 2), (5, 2), 4),
    "one row": lambda lib: lib.arange(24.0).reshape(4, 6)[1],
    "one element": lambda lib: lib.arange(24.0).reshape(4, 6)[2, 3],
    "a whole tensor": lambda lib: lib.arange(24.0).reshape(4, 6),
    "transposed whole": lambda lib: lib.arange(24.0).reshape(4, 6).t(),
    "int64 columns": lambda lib: lib.arange(12).reshape(3, 4)[:, 1:3],
    "a Parameter over columns": lambda lib: lib.nn.Parameter(lib.arange(24.0).reshape(4, 6)[:, ::2]),
    "empty slice": lambda lib: lib.arange(24.0).reshape(4, 6)[:, 6:],
}


@pytest.mark.parametrize("copy", [_pickled, _saved], ids=["pickle", "save"])
@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_copied_view_keeps_its_storage_offset_and_strides(view, copy):
    assert_as_torch(lambda lib: _layout(copy(lib, view(lib))))


@pytest.mark.parametrize("copy", [_pickled, _saved], ids=["pickle", "save"])
def test_views_copied_together_share_a_storage_as_torch(copy):
    """torch.save keeps views saved together on one storage; pickle gives each tensor its own."""
    def case(lib):
        base = lib.arange(24.0).reshape(4, 6)
        columns, corner = copy(lib, [base[:, ::2], base[1:, 1:]])
        shared = columns.untyped_storage().data_ptr() == corner.untyped_storage().data_ptr()
        return shared, _layout(columns), _layout(corner)
    assert_as_torch(case)


def test_a_copied_expanded_view_refuses_in_place_writes_and_a_gapped_one_takes_them():
    def case(lib):
        expanded = _pickled(lib, lib.arange(3.0).expand(2, 3))
        try:
            expanded.add_(1)
            refused = False
        except RuntimeError:
            refused = True
        columns = _pickled(lib, lib.arange(24.0).reshape(4, 6)[:, ::2]).add_(1)
        return refused, columns.tolist()
    assert_as_torch(case)
