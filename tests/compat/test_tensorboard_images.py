"""SummaryWriter.add_image / add_images: the same pixels, size and channels as torch's writer."""

import io

import numpy as np
import pytest

import chainrule

pytest.importorskip("tensorboard")
PIL_Image = pytest.importorskip("PIL.Image")
torch = pytest.importorskip("torch")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from torch.utils.tensorboard.summary import image as torch_image_summary  # noqa: E402

from chainrule.utils.tensorboard import SummaryWriter  # noqa: E402
from chainrule.utils.tensorboard.writer import _image  # noqa: E402

RNG = np.random.default_rng(0)
# (array, dataformats): every layout torch's writer accepts, float in and out of [0, 1], uint8
LAYOUTS = [
    (RNG.random((3, 5, 7)).astype(np.float32), "CHW"),
    (RNG.random((1, 5, 7)).astype(np.float32), "CHW"),
    (RNG.random((5, 7, 3)).astype(np.float64), "HWC"),
    (RNG.random((5, 7, 4)).astype(np.float32), "HWC"),
    ((RNG.random((5, 7)) * 1.6 - 0.3).astype(np.float32), "HW"),
    (RNG.random((7, 5)).astype(np.float32), "WH"),
    (RNG.integers(0, 256, (3, 5, 7)).astype(np.uint8), "CHW"),
    (RNG.random((10, 1, 4, 6)).astype(np.float32), "NCHW"),
    (RNG.random((3, 4, 6, 3)).astype(np.float32), "NHWC"),
]


def _pixels(proto) -> np.ndarray:
    return np.asarray(PIL_Image.open(io.BytesIO(proto.encoded_image_string)))


@pytest.mark.parametrize("array,dataformats", LAYOUTS, ids=[f"{a.dtype}-{f}-{a.shape}" for a, f in LAYOUTS])
def test_image_matches_torchs_summary(array, dataformats):
    ours = _image(array, dataformats)
    theirs = torch_image_summary("t", torch.from_numpy(array), dataformats=dataformats).value[0].image
    assert (ours.height, ours.width, ours.colorspace) == (theirs.height, theirs.width, theirs.colorspace)
    np.testing.assert_array_equal(_pixels(ours), _pixels(theirs))


@pytest.mark.parametrize("array,dataformats,words", [
    (np.zeros((3, 4, 4)), "HWW", "You can not use the same dimension shorthand twice"),
    (np.zeros((3, 4, 4)), "HW", "size of input tensor and input format are different"),
    (np.zeros((2, 2, 4, 4)), "NCHW", "Input should be a 4D numpy array with 3 channels"),
])
def test_bad_layouts_raise_torchs_assertion(array, dataformats, words):
    with pytest.raises(AssertionError, match=words):
        _image(array, dataformats)
    with pytest.raises(AssertionError, match=words):
        torch_image_summary("t", torch.from_numpy(array), dataformats=dataformats)


def test_images_written_by_add_image_and_add_images_are_read_back(tmp_path):
    grid = chainrule.rand(3, 8, 10)
    batch = chainrule.rand(5, 1, 6, 6)
    with SummaryWriter(str(tmp_path)) as writer:
        writer.add_image("grid", grid, 3)
        writer.add_image("grey", grid[0].numpy(), 4, dataformats="HW")
        writer.add_images("batch", batch, 5)
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0}).Reload()
    (grid_event,) = events.Images("grid")
    assert (grid_event.step, grid_event.height, grid_event.width) == (3, 8, 10)
    decoded = np.asarray(PIL_Image.open(io.BytesIO(grid_event.encoded_image_string)))
    np.testing.assert_array_equal(decoded, (grid.numpy().transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8))
    (batch_event,) = events.Images("batch")
    assert (batch_event.step, batch_event.height, batch_event.width) == (5, 6, 30)  # 5 images in one row
    assert events.Images("grey")[0].width == 10
