"""A Tensor subclass built in its own ``__new__`` (torchvision's tv_tensors: ``BoundingBoxes(data,
format=..., canvas_size=...)`` returns ``tensor.as_subclass(cls)``): Python then calls ``__init__``
with the same arguments, and torch's Tensor leaves the built tensor as it is."""

import pytest
import torch

import chainrule


def _boxes_class(lib):
    class Boxes(lib.Tensor):
        def __new__(cls, data, *, format: str, dtype=None):
            tensor = lib.as_tensor(data, dtype=dtype).as_subclass(cls)
            tensor.format = format
            return tensor

    return Boxes


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_a_subclass_built_in_new_keeps_its_data_dtype_and_attributes(lib):
    Boxes = _boxes_class(lib)
    boxes = Boxes([[1, 2, 3, 4]], format="XYXY", dtype=lib.uint8)
    assert type(boxes) is Boxes and boxes.format == "XYXY"
    assert boxes.dtype == lib.uint8 and boxes.tolist() == [[1, 2, 3, 4]]


def test_plain_tensor_still_rejects_unknown_keywords():
    with pytest.raises(TypeError) as theirs:
        torch.Tensor([1.0], format="XYXY")
    with pytest.raises(TypeError) as ours:
        chainrule.Tensor([1.0], format="XYXY")
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("lib", [chainrule, torch], ids=["chainrule", "torch"])
def test_state_dict_metadata_records_module_versions_and_reaches_load_from_state_dict(lib):
    seen = {}

    class Versioned(lib.nn.Module):
        _version = 3

        def __init__(self):
            super().__init__()
            self.norm = lib.nn.BatchNorm1d(2)

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
            seen[lib.__name__] = local_metadata.get("version")
            super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    state = Versioned().state_dict()
    assert dict(state._metadata) == {"": {"version": 3}, "norm": {"version": 2}}
    Versioned().load_state_dict(state)
    assert seen[lib.__name__] == 3
    old = dict(state)  # no metadata: a BatchNorm without num_batches_tracked still loads (version None)
    del old["norm.num_batches_tracked"]
    assert not Versioned().load_state_dict(old).missing_keys
    assert seen[lib.__name__] is None
