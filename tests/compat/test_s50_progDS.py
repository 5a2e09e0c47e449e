"""Lane progDS (session 50): gaps found by the deformable_detr_msda, pointrend_uncertainty_sampling
and midas_scale_shift_invariant_loss corpus programs, each checked against torch."""
import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")


def _outcome(call):
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - the exception is the compared outcome
        return type(error).__name__, str(error)
    return tuple(result.shape), str(result.dtype).split(".")[-1], np.asarray(result.numpy()).tolist()


STEPS = {
    "int64": lambda lib: lib.tensor(5),
    "int32": lambda lib: lib.tensor(5, dtype=lib.int32),
    "int16": lambda lib: lib.tensor(4, dtype=lib.int16),
    "uint8": lambda lib: lib.tensor(3, dtype=lib.uint8),
    "zero": lambda lib: lib.tensor(0),
    "negative": lambda lib: lib.tensor(-2),
    "row_of_shapes": lambda lib: lib.as_tensor([(5, 6)], dtype=lib.long)[0][0],
    "bool": lambda lib: lib.tensor(True),
    "float": lambda lib: lib.tensor(5.0),
    "one_element_1d": lambda lib: lib.tensor([5]),
    "numpy_int": lambda lib: np.int64(5),
}


@pytest.mark.parametrize("op", ["linspace", "logspace"])
@pytest.mark.parametrize("steps", sorted(STEPS))
def test_space_steps_taken_as_a_0d_integer_tensor(op, steps):
    # Deformable DETR's get_reference_points: for H_, W_ in spatial_shapes (a long tensor),
    # torch.linspace(0.5, H_ - 0.5, H_) -- torch's parser takes a 0-d integer tensor as an int
    outcomes = [_outcome(lambda lib=lib: getattr(lib, op)(0.5, STEPS[steps](lib) - 0.5
                                                          if op == "linspace" and steps in ("int64", "row_of_shapes")
                                                          else 2.0, STEPS[steps](lib)))
                for lib in (torch, chainrule)]
    assert outcomes[1] == outcomes[0]


def test_reference_points_over_a_shapes_tensor_match_torch():
    results = []
    for lib in (torch, chainrule):
        shapes = lib.as_tensor([(4, 6), (2, 3)], dtype=lib.long)
        refs = []
        for H_, W_ in shapes:
            ref_y, ref_x = lib.meshgrid(lib.linspace(0.5, H_ - 0.5, H_, dtype=lib.float32),
                                        lib.linspace(0.5, W_ - 0.5, W_, dtype=lib.float32), indexing="ij")
            refs.append(lib.stack((ref_x.reshape(-1) / W_, ref_y.reshape(-1) / H_), -1))
        results.append(np.asarray(lib.cat(refs, 0).numpy()))
    assert results[1].dtype == results[0].dtype
    np.testing.assert_array_equal(results[1], results[0])
