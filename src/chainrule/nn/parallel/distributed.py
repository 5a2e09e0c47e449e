"""torch.nn.parallel.DistributedDataParallel: data parallelism by averaging gradients over ranks.

At construction the ranks check that their models have the same parameters and take rank 0's
values (parameters and buffers), so ranks seeded differently start equal. During backward each
parameter's post-accumulate-grad hook copies its gradient into a flat bucket (~``bucket_cap_mb``,
parameters in reverse registration order, roughly the order backward produces them); a full
bucket starts a non-blocking all-reduce at once, while backward goes on with the rest of the
graph. When the last bucket has started, all are completed and averaged back into ``.grad``.
Buckets start in index order on every rank, whatever order their gradients arrive in, because
MPI requires every rank to issue collectives on a communicator in the same order.

DDP is a ``Joinable``: under ``with ddp.join():`` a rank that has run out of inputs shadows the
others' collectives (buffer broadcasts, gradient buckets of zeros) until all have run out, then
every rank takes the parameters of a rank that joined last (see ``distributed.algorithms.join``).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json

import numpy as np

from ... import distributed as dist
from ..._backend import array_module, device_of
from ..._backend import device as _device
from ...autograd.grad_mode import is_grad_enabled
from ...distributed._grad_bucket import GradBucket
from ...distributed.algorithms.join import Join, Joinable, JoinHook
from ...futures import Future
from ...tensor import Tensor
from ..modules.module import Module

# torch's defaults: 25 MiB buckets; unless bucket_cap_mb is given, the first one (the last
# layers' gradients) is 1 MiB so that communication starts early
DEFAULT_BUCKET_CAP_MB = 25
FIRST_BUCKET_BYTES = 1024 * 1024


class _Bucket:
    __slots__ = ("params", "offsets", "flat", "tensor", "pending", "work")

    def __init__(self, params: list, dtype: np.dtype) -> None:
        self.params = params
        sizes = [p._data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        # on the parameters' device: gradients are copied in and averages copied out there
        self.flat = array_module(params[0]._data).zeros(self.offsets[-1], dtype)
        self.tensor = Tensor._make(self.flat)  # the collectives take Tensors; this one shares flat
        self.pending = len(params)
        self.work = None


class DistributedDataParallel(Module, Joinable):
    """Wrap ``module`` so that backward averages its gradients over the process group's ranks.

    ``bucket_cap_mb`` sizes the buckets (default 25); ``find_unused_parameters`` handles models
    whose forward leaves some parameters out of the loss; ``no_sync()`` skips the averaging for
    gradient accumulation; ``broadcast_buffers`` re-sends rank 0's buffers before each forward.
    The module may live on the CPU or on CUDA devices, as in torch: for a module on one GPU,
    ``device_ids=[i]`` (or None) names that GPU and forward moves its tensor inputs there;
    ``output_device`` is recorded as in torch (which, for one device, moves nothing to it). MPI is
    not CUDA-aware, so CUDA buckets are staged through the host (see ``distributed_c10d``).
    ``gradient_as_bucket_view``/``static_graph`` are accepted for torch's signature and change
    nothing here (gradients are always copied back into ``.grad``).
    ``state_dict()`` keys carry the ``module.`` prefix, as torch's do; use ``ddp.module`` for the
    unwrapped model's. ``join()`` trains on uneven inputs (torch's Join context manager);
    ``register_comm_hook(state, hook)`` replaces each bucket's all-reduce and average.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb: float | None = None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False, **kwargs) -> None:
        super().__init__()
        Joinable.__init__(self)
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an nn.Module, got {type(module).__name__}")
        self.module = module
        self.process_group = process_group if process_group is not None else dist.group.WORLD
        if self.process_group is None:
            raise ValueError("Default process group has not been initialized, please make sure to call "
                             "init_process_group.")
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self.bucket_bytes_cap = int((DEFAULT_BUCKET_CAP_MB if bucket_cap_mb is None else bucket_cap_mb) * 1024 * 1024)
        self._first_bucket_bytes = FIRST_BUCKET_BYTES if bucket_cap_mb is None else self.bucket_bytes_cap
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any "
                               "parameter that requires a gradient.")
        self.device_ids, self.output_device = _check_devices(module, device_ids, output_device)
        self.device = next(module.parameters()).device
        self._parameter_names = [name for name, _ in named]
        self._parameters_list = [p for _, p in named]
        self._world_size = dist.get_world_size(self.process_group)
        self._verify_same_model(module)
        self._broadcast_state([t for _, t in module.named_parameters()] + [b for _, b in module.named_buffers()])
        self._buckets, self._slot = self._build_buckets()
        self._handles = [p.register_post_accumulate_grad_hook(self._on_grad_ready)
                         for p in self._parameters_list]
        self._syncing = False
        self._unused: tuple[int, ...] = ()
        self._ready: set[int] = set()
        self._next_bucket = 0
        self._divide_by_initial_world_size = True
        self._training_ranks = None  # under join(): the Work counting the ranks still training
        self._comm_hook = None  # (state, hook) from register_comm_hook

    # ------------------------------------------------------------------ the forward pass
    def forward(self, *inputs, **kwargs):
        if self._ready and self._syncing:
            self._raise_unfinished_reduction()
        self._complete_training_ranks_count()
        self._training_ranks = Join.notify_join_context(self)
        self._sync_buffers_before_forward(is_joined_rank=False)
        self._syncing = is_grad_enabled() and self.require_backward_grad_sync
        if self._join_config.enable:
            self._agree_on_backward_sync(is_joined_rank=False)
        # torch's: buffers are re-sent only after an iteration that synchronised gradients
        self.require_forward_param_sync = self._syncing
        self._reset_iteration()
        if self.device_ids:
            inputs, kwargs = _moved(inputs, self.device), _moved(kwargs, self.device)
        output = self.module(*inputs, **kwargs)
        self._unused = self._find_unused(output) if self._syncing and self.find_unused_parameters else ()
        return output

    def _sync_buffers_before_forward(self, is_joined_rank: bool) -> None:
        """Broadcast the buffers, from rank 0, or under join() from the highest rank still training
        (rank 0 may have joined, its buffers stale); a joined rank takes part from its hook."""
        if not (self.broadcast_buffers and self.require_forward_param_sync):
            return
        buffers = [b for _, b in self.module.named_buffers()]
        if not buffers:
            return
        source = self._find_common_rank(not is_joined_rank) if self._join_config.enable else 0
        self._broadcast_state(buffers, source)

    # ------------------------------------------------------------------ communication hooks
    def register_comm_hook(self, state: object, hook) -> None:
        """torch's ``register_comm_hook``: ``hook(state, bucket: dist.GradBucket) ->
        torch.futures.Future[torch.Tensor]`` runs for each bucket, in bucket order, in place of the
        all-reduce and the average (it must divide, as ``ddp_comm_hooks.default_hooks`` do); the
        tensor its Future completes with becomes the bucket's gradients. Once per model."""
        if not callable(hook):
            raise TypeError("Communication hook must be callable.")
        signature = inspect.signature(hook)
        empty = inspect.Signature.empty
        # torch reads the parameter named "bucket" (a hook naming it otherwise fails there with KeyError)
        if signature.parameters["bucket"].annotation not in (empty, GradBucket):
            raise ValueError("Communication hook: bucket annotation should be dist.GradBucket.")
        if signature.return_annotation not in (empty, Future[Tensor]):
            raise ValueError("Communication hook: return annotation should be torch.futures.Future[torch.Tensor].")
        if self._comm_hook is not None:
            raise RuntimeError("register_comm_hook or register_builtin_comm_hook can only be called once.")
        self._comm_hook = (state, hook)

    def _run_comm_hook(self, index: int, flat, params: list) -> Future:
        state, hook = self._comm_hook
        future = hook(state, GradBucket(index, len(self._buckets), Tensor._make(flat), params))
        if not isinstance(future, Future):
            raise TypeError(f"DistributedDataParallel: the communication hook {getattr(hook, '__name__', hook)} "
                            f"must return a torch.futures.Future, got {type(future).__name__}")
        return future

    def _comm_hook_result(self, future: Future, bucket: _Bucket, bucket_index: int):
        """The flat gradients a hook's Future completed with, checked against the bucket."""
        result = future.wait()
        if not isinstance(result, Tensor) or result.numel() != bucket.flat.size:
            got = f"a tensor of {result.numel()} elements" if isinstance(result, Tensor) else type(result).__name__
            raise RuntimeError(f"DistributedDataParallel: the communication hook's Future for bucket {bucket_index} "
                               f"must hold a tensor of the bucket's {bucket.flat.size} elements, got {got}")
        return result._data.reshape(-1)

    # ------------------------------------------------------------------ uneven inputs: Join
    def join(self, divide_by_initial_world_size: bool = True, enable: bool = True,
             throw_on_early_termination: bool = False) -> Join:
        """torch's ``DistributedDataParallel.join``: ``with ddp.join():`` around the training loop
        lets ranks have different numbers of batches. A rank that ran out contributes zero
        gradients while the others train; gradients are divided by the initial world size, or
        with ``divide_by_initial_world_size=False`` by the number of ranks still training. At the
        end every rank takes the model of a rank that ran out last."""
        return Join([self], enable, throw_on_early_termination,
                    divide_by_initial_world_size=divide_by_initial_world_size)

    def join_hook(self, **kwargs) -> JoinHook:
        return _DDPJoinHook(self, divide_by_initial_world_size=kwargs.get("divide_by_initial_world_size", True))

    @property
    def join_device(self):
        return self.device

    @property
    def join_process_group(self):
        return self.process_group

    def _agree_on_backward_sync(self, is_joined_rank: bool) -> bool:
        """One all-reduce per iteration: the training ranks say whether backward will all-reduce
        (torch sends ``require_backward_grad_sync``; we also count grad mode off as no, so a
        joined rank never waits in a bucket all-reduce that a no_grad forward will not issue)."""
        flag = Tensor._make(np.array([0.0 if is_joined_rank else float(self._syncing)], np.float32))
        dist.all_reduce(flag, group=self.process_group)
        return bool(flag._data[0])

    def _find_common_rank(self, is_candidate: bool) -> int:
        """The highest group rank among the candidates (all ranks call it; one must be a candidate)."""
        rank = dist.get_rank(self.process_group)
        chosen = Tensor._make(np.array([rank if is_candidate else -1], np.int64))
        dist.all_reduce(chosen, op=dist.ReduceOp.MAX, group=self.process_group)
        if chosen._data[0] == -1:
            # torch's ValueError; reaching it means the ranks' join bookkeeping disagrees
            raise ValueError("DistributedDataParallel: expected at least one rank to be a candidate when choosing "
                             "the rank to take state from (a bug in DDP's join, please report it)")
        return int(chosen._data[0])

    def _complete_training_ranks_count(self) -> int | None:
        """Wait for this iteration's count of training ranks (under join()), once; None if none."""
        work, self._training_ranks = self._training_ranks, None
        return None if work is None else int(work.result()[0]._data[0])

    def _shadow_backward(self) -> None:
        """On a joined rank: the training ranks' backward collectives, with zero gradients (the
        communication hook runs on zero buckets, as in torch)."""
        zero_buckets = [array_module(bucket.flat).zeros_like(bucket.flat) for bucket in self._buckets]
        if self._comm_hook is None:
            pending = [dist.all_reduce(Tensor._make(flat), group=self.process_group, async_op=True)
                       for flat in zero_buckets]
        else:
            pending = [self._run_comm_hook(index, flat, bucket.params)
                       for index, (flat, bucket) in enumerate(zip(zero_buckets, self._buckets))]
        for work in pending:
            work.wait()
        if self.find_unused_parameters:
            dist.all_reduce(Tensor._make(np.zeros(len(self._parameters_list), np.int32)), group=self.process_group)

    def _sync_final_model(self, is_last_joiner: bool) -> None:
        """After everyone joined: all take the parameters (and buffers) of the highest last joiner."""
        states = [p for _, p in self.module.named_parameters()]
        if self.broadcast_buffers:
            states += [b for _, b in self.module.named_buffers()]
        self._broadcast_state(states, self._find_common_rank(is_last_joiner))

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, backward accumulates local gradients without communicating; the first
        backward after it averages everything accumulated (torch's gradient accumulation)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # ------------------------------------------------------------------ backward: the hooks
    def _on_grad_ready(self, param) -> None:
        if not self._syncing:
            return
        index = self._index_of[id(param)]
        if not self._ready and self._unused:
            for unused in self._unused:
                self._mark_ready(unused, None)
        self._mark_ready(index, param.grad._data)
        for bucket in self._buckets[:self._next_bucket]:
            if isinstance(bucket.work, dist.Work):
                bucket.work._test()  # MPI progresses only inside MPI calls
        if self._next_bucket == len(self._buckets):
            self._finish_reduction()

    def _mark_ready(self, index: int, grad) -> None:
        if index in self._ready:
            raise RuntimeError(
                f"Expected to mark a variable ready only once. Parameter {self._parameter_names[index]} "
                "received its gradient twice in one iteration (a second backward through the same "
                "forward, or a parameter shared across reentrant calls); call forward again first."
            )
        self._ready.add(index)
        bucket_index, position = self._slot[index]
        bucket = self._buckets[bucket_index]
        start, stop = bucket.offsets[position], bucket.offsets[position + 1]
        if grad is None:
            bucket.flat[start:stop] = 0
        else:
            bucket.flat[start:stop] = grad.reshape(-1)
        bucket.pending -= 1
        # start buckets in index order only: every rank must issue its collectives alike
        while self._next_bucket < len(self._buckets) and self._buckets[self._next_bucket].pending == 0:
            ready = self._buckets[self._next_bucket]
            if self._comm_hook is None:
                ready.work = dist.all_reduce(ready.tensor, group=self.process_group, async_op=True)
            else:
                ready.work = self._run_comm_hook(self._next_bucket, ready.flat, ready.params)
            self._next_bucket += 1

    def _finish_reduction(self) -> None:
        training_ranks = self._complete_training_ranks_count()
        divisor = self._world_size
        if training_ranks is not None and not self._divide_by_initial_world_size:
            divisor = training_ranks  # the joined ranks sent zeros: average over those that trained
        used = None
        if self.find_unused_parameters:
            # a parameter unused here may be used on another rank: it then gets the average
            used = np.ones(len(self._parameters_list), np.int32)
            used[list(self._unused)] = 0
            dist.all_reduce(Tensor._make(used), group=self.process_group)
        for bucket_index, bucket in enumerate(self._buckets):
            if self._comm_hook is None:
                bucket.work.wait()
                bucket.flat /= divisor
                reduced = bucket.flat
            else:
                reduced = self._comm_hook_result(bucket.work, bucket, bucket_index)
            for position, param in enumerate(bucket.params):
                index = self._bucket_members[bucket_index][position]
                if used is not None and not used[index]:
                    continue  # unused on every rank: .grad stays as it was, as in torch
                start, stop = bucket.offsets[position], bucket.offsets[position + 1]
                averaged = reduced[start:stop].reshape(param._data.shape)
                if param._grad is None:  # a copy in the parameter's dtype (a hook's result may differ)
                    param._grad = Tensor._make(averaged.astype(param._data.dtype))
                else:
                    param._grad._data[...] = averaged
                    param._grad._bump_version()
        self._syncing = False
        self._reset_iteration()

    def _reset_iteration(self) -> None:
        self._ready = set()
        self._next_bucket = 0
        for bucket in self._buckets:
            bucket.pending = len(bucket.params)
            bucket.work = None

    def _raise_unfinished_reduction(self) -> None:
        missing = [self._parameter_names[i] for i in range(len(self._parameters_list)) if i not in self._ready]
        raise RuntimeError(
            "Expected to have finished reduction in the prior iteration before starting a new one. This "
            "error indicates that your module has parameters that were not used in producing loss. You "
            "can enable unused parameter detection by passing the keyword argument "
            "`find_unused_parameters=True` to `torch.nn.parallel.DistributedDataParallel`, and by making "
            "sure all `forward` function outputs participate in calculating loss. Parameters which did "
            f"not receive grad for rank {dist.get_rank()}: {', '.join(missing)}"
        )

    def _find_unused(self, output) -> tuple[int, ...]:
        """Parameters the autograd graph of ``output`` does not reach (walked from its grad_fns)."""
        seen, reached, stack = set(), set(), [t.grad_fn for t in _tensors_in(output) if t.grad_fn is not None]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            variable = getattr(node, "variable", None)
            if variable is not None:
                reached.add(id(variable))
            stack.extend(child for child, _ in node.next_functions if child is not None)
        return tuple(i for i, p in enumerate(self._parameters_list) if id(p) not in reached)

    # ------------------------------------------------------------------ construction
    def _build_buckets(self):
        """Buckets of one dtype and device each, filled from the last parameter backwards."""
        self._index_of = {id(p): i for i, p in enumerate(self._parameters_list)}
        buckets, members, slot = [], [], {}
        open_by_kind: dict = {}  # (dtype, device) -> [indices, bytes, cap] of the bucket being filled
        for index in reversed(range(len(self._parameters_list))):
            data = self._parameters_list[index]._data
            kind = (data.dtype, device_of(data))
            current = open_by_kind.get(kind)
            if current is None or (current[1] and current[1] + data.nbytes > current[2]):
                cap = self._first_bucket_bytes if not members else self.bucket_bytes_cap
                current = open_by_kind[kind] = [[], 0, cap]
                members.append(current[0])
            current[0].append(index)
            current[1] += data.nbytes
        for bucket_index, indices in enumerate(members):
            params = [self._parameters_list[i] for i in indices]
            buckets.append(_Bucket(params, params[0]._data.dtype))
            for position, index in enumerate(indices):
                slot[index] = (bucket_index, position)
        self._bucket_members = members
        return buckets, slot

    def _verify_same_model(self, module: Module) -> None:
        """Fail on every rank, naming the difference, when ranks built different models."""
        signature = [[name, list(p.shape), str(p.dtype)] for name, p in module.named_parameters()]
        signature += [[name, list(b.shape), str(b.dtype)] for name, b in module.named_buffers()]
        text = json.dumps(signature)
        digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little", signed=True)
        digests = Tensor._make(np.empty(self._world_size, np.int64))
        dist.all_gather_into_tensor(digests, Tensor._make(np.array([digest], np.int64)), group=self.process_group)
        if len(set(digests._data.tolist())) == 1:
            return
        # the rare bad case: exchange the signatures (as JSON text, never pickled) to name it
        theirs = [json.loads(t) for t in _all_gather_text(text, self.process_group, self._world_size)]
        rank = dist.get_rank(self.process_group)
        for other, entries in enumerate(theirs):
            if entries != signature:
                if len(entries) != len(signature):
                    detail = f"rank {rank} has {len(signature)} parameters and buffers, rank {other} has {len(entries)}"
                else:
                    mine, different = next((a, b) for a, b in zip(signature, entries) if a != b)
                    detail = (f"rank {rank} has {mine[0]} of shape {tuple(mine[1])} ({mine[2]}), rank {other} "
                              f"has {different[0]} of shape {tuple(different[1])} ({different[2]})")
                raise RuntimeError(f"DistributedDataParallel: DDP expects the same model on all ranks, but "
                                   f"{detail}")

    def _broadcast_state(self, tensors: list, source: int = 0) -> None:
        """Overwrite ``tensors`` with those of group rank ``source``, one broadcast per dtype and
        device (packed flat on that device)."""
        by_kind: dict = {}
        for t in tensors:
            by_kind.setdefault((t._data.dtype, device_of(t._data)), []).append(t)
        for group in by_kind.values():
            flat = array_module(group[0]._data).concatenate([t._data.reshape(-1) for t in group])
            dist.broadcast(Tensor._make(flat), src=dist.get_global_rank(self.process_group, source),
                           group=self.process_group)
            start = 0
            for t in group:
                t._data[...] = flat[start:start + t._data.size].reshape(t._data.shape)
                t._bump_version()
                start += t._data.size


class _DDPJoinHook(JoinHook):
    """What DDP does on a rank that ran out of inputs (torch's ``_DDPJoinHook``)."""

    def __init__(self, ddp: DistributedDataParallel, divide_by_initial_world_size: bool) -> None:
        self.ddp = ddp
        self.ddp._divide_by_initial_world_size = divide_by_initial_world_size

    def main_hook(self) -> None:
        """Mirror one forward and backward of the training ranks, in their order."""
        ddp = self.ddp
        ddp._sync_buffers_before_forward(is_joined_rank=True)
        should_sync = ddp._agree_on_backward_sync(is_joined_rank=True)
        ddp.require_forward_param_sync = should_sync
        if should_sync:
            ddp._shadow_backward()

    def post_hook(self, is_last_joiner: bool) -> None:
        self.ddp._sync_final_model(is_last_joiner)


def _check_devices(module: Module, device_ids, output_device):
    """torch's rules for where the module lives: every parameter on one device type; for a module
    on one GPU, ``device_ids`` None or that one GPU; for a CPU or multi-device module, neither
    ``device_ids`` nor ``output_device``. Returns (device_ids, output_device) as torch keeps them."""
    if device_ids is not None and len(device_ids) > 1:
        raise ValueError("device_ids can only be None or contain a single element.")
    devices = {p.device for p in module.parameters()}
    types = {d.type for d in devices}
    if len(types) != 1:
        raise ValueError("DistributedDataParallel's input module must be on the same type of devices, but input "
                         f"module parameters locate in {types}.")
    if not device_ids or types == {"cpu"} or len(devices) > 1:
        if device_ids or output_device:
            raise ValueError("DistributedDataParallel device_ids and output_device arguments only work with "
                             "single-device/multiple-device GPU modules or CPU modules, but got device_ids "
                             f"{device_ids}, output_device {output_device}, and module parameters {devices}.")
        return None, None
    (module_device,) = devices
    ids = [_device_index(d, module_device) for d in device_ids]
    if ids[0] != module_device.index:
        # torch fails at the first forward (inputs moved to device_ids[0] meet parameters elsewhere)
        raise RuntimeError(f"DistributedDataParallel: device_ids {list(device_ids)} names cuda:{ids[0]} but the "
                           f"module's parameters are on {module_device}; pass device_ids=[{module_device.index}] "
                           f"or move the module there first with .to('cuda:{ids[0]}')")
    return ids, _device_index(device_ids[0] if output_device is None else output_device, module_device)


def _device_index(value, module_device) -> int:
    """torch's ``_get_device_index``: an int, 'cuda:1' or a device; 'cuda' means the module's GPU."""
    if isinstance(value, int):
        return value
    dev = _device(value)
    if dev.type != "cuda":
        raise ValueError(f"DistributedDataParallel: expected a CUDA device in device_ids/output_device, got {dev}")
    return dev.index if dev.index is not None else module_device.index


def _moved(value, device):
    """``value`` with every tensor in it (through tuples, lists and dicts) moved to ``device``."""
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(_moved(item, device) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(item, device) for item in value)
    if isinstance(value, dict):
        return {key: _moved(item, device) for key, item in value.items()}
    return value


def _tensors_in(value):
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item)


def _all_gather_text(text: str, group, size: int) -> list[str]:
    data = np.frombuffer(text.encode(), np.uint8)
    lengths = Tensor._make(np.empty(size, np.int64))
    dist.all_gather_into_tensor(lengths, Tensor._make(np.array([data.size], np.int64)), group=group)
    longest = int(lengths._data.max())
    padded = np.zeros(longest, np.uint8)
    padded[:data.size] = data
    gathered = Tensor._make(np.empty(size * longest, np.uint8))
    dist.all_gather_into_tensor(gathered, Tensor._make(padded), group=group)
    rows = gathered._data.reshape(size, longest)
    return [rows[i, :lengths._data[i]].tobytes().decode() for i in range(size)]
