"""torch.distributed.GradBucket: what DistributedDataParallel hands a communication hook."""

from __future__ import annotations


class GradBucket:
    """One bucket of DDP gradients (torch's ``dist.GradBucket``): ``buffer()`` is the flat tensor
    of the gradients of ``parameters()``, in that order; ``gradients()`` are views of it shaped
    like the parameters. DDP builds these; a hook reads them and may ``set_buffer``."""

    def __init__(self, index: int, bucket_count: int, buffer, parameters: list) -> None:
        self._index = index
        self._bucket_count = bucket_count
        self._buffer = buffer
        self._parameters = list(parameters)

    def index(self) -> int:
        """The bucket's position; buckets are communicated in index order, 0 first."""
        return self._index

    def buffer(self):
        """The flattened gradients (a 1-d tensor)."""
        return self._buffer

    def set_buffer(self, buffer) -> None:
        """Replace the flat tensor (compression hooks swap in a cast copy)."""
        self._buffer = buffer

    def gradients(self) -> list:
        """Views of ``buffer()``, one per parameter, shaped like it."""
        views, start = [], 0
        for parameter in self._parameters:
            count = parameter.numel()
            views.append(self._buffer[start:start + count].view(parameter.shape))
            start += count
        return views

    def parameters(self) -> list:
        """The parameters whose gradients the bucket holds."""
        return list(self._parameters)

    def is_last(self) -> bool:
        """Whether this is the last bucket of the iteration (the first parameters' gradients)."""
        return self._index == self._bucket_count - 1
