"""torch's default DDP communication hooks: ``hook(process_group, bucket) -> Future[Tensor]``,
registered with ``ddp.register_comm_hook(process_group_or_None, hook)``. With a hook, DDP leaves
the averaging to it; each of these divides by the group's size itself. The annotations are real
objects (no ``from __future__ import annotations``): DDP compares them, as torch does."""

from ...._dtype import float16
from ....futures import Future
from ....tensor import Tensor
from ... import distributed_c10d as c10d
from ..._grad_bucket import GradBucket

__all__ = ["allreduce_hook", "fp16_compress_hook"]


def _allreduce_fut(process_group, tensor: Tensor) -> Future[Tensor]:
    """Average ``tensor`` over the group in place; a Future of it."""
    group_to_use = process_group if process_group is not None else c10d.group.WORLD
    # divide before summing: a float16 sum can overflow where the average would not
    tensor.div_(group_to_use.size())
    work = c10d.all_reduce(tensor, group=group_to_use, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def allreduce_hook(process_group, bucket: GradBucket) -> Future[Tensor]:
    """The bucket's gradients averaged over ``process_group`` (the world when None): what DDP does
    without a hook."""
    return _allreduce_fut(process_group, bucket.buffer())


def fp16_compress_hook(process_group, bucket: GradBucket) -> Future[Tensor]:
    """Average in float16 (half the bytes on the wire), written back into the bucket's own dtype."""
    group_to_use = process_group if process_group is not None else c10d.group.WORLD
    buffer = bucket.buffer()
    compressed = buffer.to(float16).div_(group_to_use.size())

    def decompress(fut: Future) -> Tensor:
        buffer.copy_(fut.value()[0])  # in place: no second full-precision buffer
        return buffer

    return c10d.all_reduce(compressed, group=group_to_use, async_op=True).get_future().then(decompress)
