"""SummaryWriter: scalars, grouped scalars, histograms, images, figures, text, hyperparameters, PR curves
and the model graph as TensorBoard event records."""

from __future__ import annotations

import io
import os
import socket
import time
from datetime import datetime

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event, TaggedRunMetadata
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.pr_curve.plugin_data_pb2 import PrCurvePluginData
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from ._graph import graph
from .summary import hparams

__all__ = ["FileWriter", "SummaryWriter"]


def _to_numpy(value) -> np.ndarray:
    """A Tensor (chainrule's, or anything with .detach().cpu().numpy()), array or number as an array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _scalar(value) -> float:
    array = _to_numpy(value)
    if array.size != 1:
        raise ValueError(f"add_scalar: expected a scalar value, got an array of shape {array.shape}")
    return float(array.reshape(()))


def _tensorflow_bins() -> np.ndarray:
    """The bucket edges TensorFlow's histograms use (torch's bins='tensorflow'): +-1e-12 growing
    by 10% up to 1e20, and 0."""
    positive = []
    edge = 1e-12
    while edge < 1e20:
        positive.append(edge)
        edge *= 1.1
    return np.array([-e for e in reversed(positive)] + [0.0] + positive)


def _histogram(values: np.ndarray, bins, max_bins) -> HistogramProto:
    """np.histogram's counts, trimmed to the non-empty range, as TensorBoard's right-edge buckets."""
    values = values.reshape(-1).astype(np.float64)
    if values.size == 0:
        raise ValueError("add_histogram: the input has no element.")
    if isinstance(bins, str) and bins == "tensorflow":
        bins = _tensorflow_bins()
    counts, limits = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        # merge neighbouring bins so that at most max_bins remain
        group = -(-len(counts) // max_bins)
        counts = np.pad(counts, (0, (-len(counts)) % group)).reshape(-1, group).sum(axis=1)
        limits = np.append(limits[:-1:group], limits[-1])
    nonzero = np.flatnonzero(counts)
    start, end = (int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else (0, len(counts))
    # TensorBoard buckets carry only their right edge: keep one empty bucket on the left so the
    # leftmost edge is recorded too
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    return HistogramProto(min=float(values.min()), max=float(values.max()), num=int(values.size),
                          sum=float(values.sum()), sum_squares=float(values.dot(values)),
                          bucket_limit=limits.tolist(), bucket=counts.tolist())


def _to_hwc(array: np.ndarray, dataformats: str) -> np.ndarray:
    """An image in ``dataformats`` (N, C, H, W in any order; C or N optional) as (H, W, C) with 3
    or 4 channels, as torch's writer lays it out: grey is repeated into RGB, and a batch becomes
    one grid of at most 8 columns without padding."""
    if len(set(dataformats)) != len(dataformats):
        raise AssertionError(f"You can not use the same dimension shorthand twice. input_format: {dataformats}")
    if array.ndim != len(dataformats):
        raise AssertionError(f"size of input tensor and input format are different. tensor shape: "
                             f"{array.shape}, input_format: {dataformats}")
    dataformats = dataformats.upper()
    if len(dataformats) == 4:
        batch = array.transpose([dataformats.find(c) for c in "NCHW"])
        if batch.shape[1] == 1:
            batch = np.concatenate([batch] * 3, 1)
        if batch.shape[1] != 3:
            raise AssertionError("Input should be a 4D numpy array with 3 channels")
        count, _, height, width = batch.shape
        columns = min(count, 8)
        rows = -(-count // columns)
        grid = np.zeros((3, height * rows, width * columns), dtype=batch.dtype)
        for i in range(count):
            row, column = divmod(i, columns)
            grid[:, row * height:(row + 1) * height, column * width:(column + 1) * width] = batch[i]
        return grid.transpose(1, 2, 0)
    if len(dataformats) == 3:
        image = array.transpose([dataformats.find(c) for c in "HWC"])
        return np.concatenate([image] * 3, 2) if image.shape[2] == 1 else image
    image = array.transpose([dataformats.find(c) for c in "HW"])
    return np.stack([image] * 3, 2)


def _image(array: np.ndarray, dataformats: str) -> Summary.Image:
    """A PNG-encoded image: uint8 values as they are, any other dtype read as [0, 1] and scaled to
    [0, 255] (clipped), as torch's writer does."""
    from PIL import Image

    pixels = _to_hwc(array, dataformats)
    scale = 1 if pixels.dtype == np.uint8 else 255
    pixels = (pixels.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    height, width, channels = pixels.shape
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="PNG")
    return Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=encoded.getvalue())


def _pr_curve_data(labels: np.ndarray, predictions: np.ndarray, num_thresholds: int, weights) -> np.ndarray:
    """The (6, num_thresholds) table TensorBoard's PR-curve plugin reads: true/false positive and
    negative counts, precision and recall at each threshold, computed as torch's writer does
    (predictions bucketed by floor(p * (num_thresholds - 1)), counts summed from the top)."""
    smallest_count = 1e-7
    weights = 1.0 if weights is None else weights
    buckets = np.int32(np.floor(predictions * (num_thresholds - 1)))
    positive = labels.astype(np.float64)
    span = (0, num_thresholds - 1)
    true_hits, _ = np.histogram(buckets, bins=num_thresholds, range=span, weights=positive * weights)
    false_hits, _ = np.histogram(buckets, bins=num_thresholds, range=span, weights=(1.0 - positive) * weights)
    true_pos = np.cumsum(true_hits[::-1])[::-1]
    false_pos = np.cumsum(false_hits[::-1])[::-1]
    true_neg = false_pos[0] - false_pos
    false_neg = true_pos[0] - true_pos
    precision = true_pos / np.maximum(smallest_count, true_pos + false_pos)
    recall = true_pos / np.maximum(smallest_count, true_pos + false_neg)
    return np.stack((true_pos, false_pos, true_neg, false_neg, precision, recall))


def _figure_rgb(figure, close: bool) -> np.ndarray:
    """A matplotlib figure rendered by the Agg backend as a (3, H, W) uint8 array."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    width, height = figure.canvas.get_width_height()
    rgba = np.frombuffer(canvas.buffer_rgba(), dtype=np.uint8).reshape(height, width, 4)
    if close:
        plt.close(figure)
    return np.moveaxis(rgba[:, :, :3], 2, 0)


class FileWriter:
    """torch.utils.tensorboard.writer.FileWriter(log_dir, max_queue=10, flush_secs=120, filename_suffix=''):
    one event file in ``log_dir``, written by a background thread. ``SummaryWriter.file_writer`` is
    one; libraries add their own records through it (stable-baselines3 adds ``summary.hparams``)."""

    def __init__(self, log_dir, max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = "") -> None:
        self.event_writer = EventFileWriter(str(log_dir), max_queue, flush_secs, filename_suffix)

    def get_logdir(self) -> str:
        return self.event_writer.get_logdir()

    def add_event(self, event: Event, step=None, walltime=None) -> None:
        """``event`` stamped with ``walltime`` (now by default) and, when given, ``step``."""
        event.wall_time = time.time() if walltime is None else float(walltime)
        if step is not None:
            event.step = int(step)  # a NumPy integer is not a protobuf int
        self.event_writer.add_event(event)

    def add_summary(self, summary: Summary, global_step=None, walltime=None) -> None:
        self.add_event(Event(summary=summary), global_step, walltime)

    def flush(self) -> None:
        self.event_writer.flush()

    def close(self) -> None:
        self.event_writer.close()

    def reopen(self) -> None:
        # as torch's: TensorBoard's EventFileWriter has no reopen, so this raises AttributeError
        self.event_writer.reopen()


class SummaryWriter:
    """torch.utils.tensorboard.SummaryWriter(log_dir=None, comment='', purge_step=None,
    max_queue=10, flush_secs=120, filename_suffix='').

    ``log_dir`` defaults to ``runs/<Mon>DD_HH-MM-SS_<hostname><comment>`` as torch's. Records are
    queued and written by a background thread every ``flush_secs`` or on ``flush()``/``close()``.
    """

    def __init__(self, log_dir: str | None = None, comment: str = "", purge_step=None, max_queue: int = 10,
                 flush_secs: int = 120, filename_suffix: str = "") -> None:
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        # torch's public attributes: the default run's writer, and every open writer by directory
        # (add_scalars adds one per sub-run); close() clears both and the next record reopens
        self.file_writer: FileWriter | None = None
        self.all_writers: dict[str, FileWriter] | None = None
        self._get_file_writer()

    def get_logdir(self) -> str:
        return self.log_dir

    def _get_file_writer(self) -> FileWriter:
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = FileWriter(self.log_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                # a restarted run drops the events at and after purge_step from TensorBoard's view
                self.file_writer.add_event(Event(step=self.purge_step, file_version="brain.Event:2"))
                self.file_writer.add_event(Event(step=self.purge_step, session_log={"status": 1}))
                self.purge_step = None
        return self.file_writer

    def _add_summary(self, summary: Summary, global_step, walltime, writer=None) -> None:
        (writer or self._get_file_writer()).add_summary(summary, global_step, walltime)

    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None, new_style: bool = False,
                   double_precision: bool = False) -> None:
        """One point of the curve ``tag``."""
        value = _scalar(scalar_value)
        if new_style:
            tensor = (TensorProto(dtype="DT_DOUBLE", double_val=[value]) if double_precision
                      else TensorProto(dtype="DT_FLOAT", float_val=[value]))
            metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
            summary = Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=metadata)])
        else:
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
        self._add_summary(summary, global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None, walltime=None) -> None:
        """Several curves in one chart: each ``tag`` goes to the run ``log_dir/main_tag_tag``
        under the tag ``main_tag``, as torch writes them."""
        walltime = time.time() if walltime is None else walltime
        for tag, value in tag_scalar_dict.items():
            run_dir = os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{tag}")
            self._get_file_writer()
            writer = self.all_writers.get(run_dir)
            if writer is None:
                writer = self.all_writers[run_dir] = FileWriter(
                    run_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            summary = Summary(value=[Summary.Value(tag=main_tag, simple_value=_scalar(value))])
            self._add_summary(summary, global_step, walltime, writer)

    def add_histogram(self, tag: str, values, global_step=None, bins="tensorflow", walltime=None,
                      max_bins=None) -> None:
        """The distribution of ``values``; ``bins`` is 'tensorflow' (torch's default) or anything
        np.histogram accepts ('auto', a count, edges)."""
        histogram = _histogram(_to_numpy(values), bins, max_bins)
        self._add_summary(Summary(value=[Summary.Value(tag=tag, histo=histogram)]), global_step, walltime)

    def add_image(self, tag: str, img_tensor, global_step=None, walltime=None, dataformats: str = "CHW") -> None:
        """One image, (3, H, W) by default (``dataformats`` 'HWC', 'HW', ... for other layouts);
        float values in [0, 1], uint8 in [0, 255]. Needs pillow, as torch's."""
        image = _image(_to_numpy(img_tensor), dataformats)
        self._add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), global_step, walltime)

    def add_images(self, tag: str, img_tensor, global_step=None, walltime=None, dataformats: str = "NCHW") -> None:
        """A batch of images, (N, 3, H, W) by default, shown as one grid."""
        image = _image(_to_numpy(img_tensor), dataformats)
        self._add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), global_step, walltime)

    def add_figure(self, tag: str, figure, global_step=None, close: bool = True, walltime=None) -> None:
        """A matplotlib figure (or a list of them, shown as one grid) drawn as an RGB image;
        ``close`` closes the figures once drawn, as torch's."""
        figures = figure if isinstance(figure, list) else [figure]
        images = np.stack([_figure_rgb(each, close) for each in figures])
        if isinstance(figure, list):
            self.add_image(tag, images, global_step, walltime, dataformats="NCHW")
        else:
            self.add_image(tag, images[0], global_step, walltime, dataformats="CHW")

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete=None, run_name=None,
                    global_step=None) -> None:
        """A hyperparameter set and its metrics for the HParams tab, written (as torch's) into the
        sub-run ``log_dir/run_name`` (the current time when not given), each metric as a scalar."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        records = hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        log_dir = os.path.join(self._get_file_writer().get_logdir(), run_name or str(time.time()))
        with SummaryWriter(log_dir=log_dir) as run_writer:
            for record in records:
                run_writer.file_writer.add_summary(record, global_step)
            for tag, value in metric_dict.items():
                run_writer.add_scalar(tag, value, global_step)

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        """Markdown text, shown by TensorBoard's text plugin under ``tag/text_summary``."""
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
        tensor = TensorProto(dtype="DT_STRING", string_val=[text_string.encode("utf-8")],
                             tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        summary = Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=metadata, tensor=tensor)])
        self._add_summary(summary, global_step, walltime)

    def add_pr_curve(self, tag: str, labels, predictions, global_step=None, num_thresholds: int = 127,
                     weights=None, walltime=None) -> None:
        """A precision-recall curve of ``predictions`` (probabilities in [0, 1]) against the 0/1 or
        boolean ``labels``; at most 127 thresholds, as torch's writer."""
        num_thresholds = min(num_thresholds, 127)
        data = _pr_curve_data(_to_numpy(labels), _to_numpy(predictions), num_thresholds, weights)
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name="pr_curves",
            content=PrCurvePluginData(version=0, num_thresholds=num_thresholds).SerializeToString()))
        tensor = TensorProto(dtype="DT_FLOAT", float_val=data.reshape(-1).tolist(), tensor_shape=TensorShapeProto(
            dim=[TensorShapeProto.Dim(size=data.shape[0]), TensorShapeProto.Dim(size=data.shape[1])]))
        summary = Summary(value=[Summary.Value(tag=tag, metadata=metadata, tensor=tensor)])
        self._add_summary(summary, global_step, walltime)

    def add_graph(self, model, input_to_model=None, verbose: bool = False, use_strict_trace: bool = True) -> None:
        """The graph of ``model`` run once on ``input_to_model`` (a tensor, or a tuple or list of
        forward's arguments), in eval mode, for TensorBoard's Graphs tab: ops grouped by the
        module they ran in, with their output shapes. ``verbose`` prints the recorded graph."""
        graph_def, run_metadata = graph(model, input_to_model, verbose, use_strict_trace)
        writer = self._get_file_writer()
        # torch's writer follows the graph with (empty) step statistics tagged "step1"
        writer.add_event(Event(graph_def=graph_def.SerializeToString()))
        metadata = TaggedRunMetadata(tag="step1", run_metadata=run_metadata.SerializeToString())
        writer.add_event(Event(tagged_run_metadata=metadata))

    def flush(self) -> None:
        for writer in (self.all_writers or {}).values():
            writer.flush()

    def close(self) -> None:
        for writer in (self.all_writers or {}).values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
