"""What the trials of torch's own test databases share (tools/torch_*_trial.py): torch values turned
into chainrule values faithfully — dtype, values, sizes, strides, storage offset, memory shared
between a sample's tensors, requires_grad — and a per-sample time limit.

Imported by the trial scripts beside it; never by chainrule itself (torch is a test oracle only).
"""

from __future__ import annotations

import contextlib
import signal


def _answer_no_test_function_at_once() -> None:
    """torch's sample and error-input iterators ask, for every sample, which unittest method is running
    (``common_utils.extract_test_fn``): it walks ``inspect.stack()`` — source lines read, and
    ``getmodule`` over every loaded module per frame — to find a ``unittest.TestCase`` ``self``.
    Under pytest there is none, so the answer is always None; its cost grows with the process, from
    0.05 s a call in a fresh one to most of the op_db ledger tests' time in a CI worker that has run
    thousands of tests (748 s for 700 error inputs). The trials take the same answer at once.

    ``opinfo.core`` holds its own reference (``from common_utils import extract_test_fn``, asked once
    per ``sample_inputs``/``error_inputs`` call for per-sample skips): a module imported after this
    one picks up the answer below, but one imported before keeps torch's walk. In a CI worker it is
    imported before, at collection (tests/autograd/test_s18_control_flow.py imports ``hop_db``), so
    it is answered here too. torch's unittest skip and xfail decorators are never used by the trials."""
    import sys

    try:
        from torch.testing._internal import common_utils
    except Exception:  # torch or expecttest missing: the trials and their tests skip
        return
    common_utils.extract_test_fn = _no_test_function
    core = sys.modules.get("torch.testing._internal.opinfo.core")
    if core is not None:
        core.extract_test_fn = _no_test_function


def _no_test_function() -> None:
    return None


_answer_no_test_function_at_once()


class NotComparable(Exception):
    """A value, sample or op that cannot be run on chainrule; the message is the skip reason."""


def chainrule_dtype(torch_dtype):
    import chainrule

    name = str(torch_dtype).rpartition(".")[2]
    dtype = getattr(chainrule, name, None)
    if dtype is None:
        raise NotComparable(f"dtype {torch_dtype} has no chainrule counterpart")
    return dtype


def _numpy_values(flat_torch_tensor, dtype):
    """The values of a contiguous 1-d torch tensor as a NumPy array of chainrule's storage dtype."""
    import torch

    import chainrule

    try:
        storage_dtype = chainrule.empty(0, dtype=dtype).numpy().dtype
    except Exception as exc:
        raise NotComparable(f"chainrule cannot store {flat_torch_tensor.dtype}: {exc}") from exc
    if flat_torch_tensor.dtype in (torch.bfloat16,) or "float8" in str(flat_torch_tensor.dtype):
        # NumPy has no such dtype: copy the bits and reinterpret them as chainrule's storage type
        width = {1: torch.uint8, 2: torch.int16}[flat_torch_tensor.element_size()]
        # copied, so the array's own memory (not the integer array it views) is the storage chainrule reads
        return flat_torch_tensor.view(width).numpy().view(storage_dtype).copy()
    if flat_torch_tensor.is_conj():
        flat_torch_tensor = flat_torch_tensor.resolve_conj()
    if flat_torch_tensor.is_neg():
        flat_torch_tensor = flat_torch_tensor.resolve_neg()
    return flat_torch_tensor.numpy().astype(storage_dtype, copy=True)


def torch_tensor_to_chainrule(tensor, storages: dict | None = None):
    """A chainrule tensor with the torch tensor's dtype, values, sizes, strides and requires_grad
    (an ``nn.Parameter`` stays one).

    The torch tensor's whole storage is copied once (``storages`` remembers the copies of one
    sample) and viewed with the tensor's sizes, strides and offset: a non-contiguous or expanded
    torch tensor stays one in chainrule, and tensors that share memory in torch (``out=`` given an
    input, one tensor passed as input and target) share it in chainrule too.
    """
    import torch

    import chainrule

    if tensor.layout != torch.strided:
        raise NotComparable(f"layout {tensor.layout} is not compared by this trial")
    if tensor.device.type not in ("cpu", "meta"):
        raise NotComparable(f"device {tensor.device}")
    if tensor.device.type == "meta":
        return chainrule.empty_strided(tuple(tensor.shape), tensor.stride(), dtype=chainrule_dtype(tensor.dtype),
                                       device="meta", requires_grad=tensor.requires_grad)
    if tensor.dim() > 64:
        raise NotComparable(f"a {tensor.dim()}-d tensor: NumPy arrays have at most 64 dimensions")
    dtype = chainrule_dtype(tensor.dtype)
    detached = tensor.detach()
    storages = {} if storages is None else storages
    key = (detached.untyped_storage().data_ptr(), detached.dtype)
    if key not in storages:
        length = detached.untyped_storage().nbytes() // max(detached.element_size(), 1)
        flat = torch.as_strided(detached, (length,), (1,), 0).clone()
        storages[key] = chainrule.from_numpy(_numpy_values(flat, dtype))
    converted = storages[key].as_strided(tuple(detached.shape), detached.stride(), detached.storage_offset())
    converted = converted.detach()
    if converted.dtype != dtype:
        raise NotComparable(f"converted {tensor.dtype} to {converted.dtype}")
    if isinstance(tensor, torch.nn.Parameter):
        return chainrule.nn.Parameter(converted, requires_grad=tensor.requires_grad)
    if tensor.requires_grad:
        converted.requires_grad_(True)
    return converted


@contextlib.contextmanager
def time_limit(seconds: float, error: type[BaseException] = TimeoutError):
    """Raise ``error`` in the main thread when the block runs past ``seconds`` (SIGALRM)."""
    def on_alarm(signum, frame):
        raise error(f"ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def seeding_the_cpu_alone():
    """torch.manual_seed also queues a lazy seed for CUDA, XPU and MTIA, each with a formatted stack
    (``traceback.format_stack``): a third of an op_db ledger replay's time, and a quarter of the
    module_db test's, on a machine with none of them. While it runs, those three seed nothing; the
    CPU generator is seeded as before."""
    import torch

    devices = [module for module in (torch.cuda, torch.xpu, torch.mtia) if not module.is_available()]
    saved = [module.manual_seed_all for module in devices]
    for module in devices:
        module.manual_seed_all = lambda seed: None
    try:
        yield
    finally:
        for module, seed_all in zip(devices, saved):
            module.manual_seed_all = seed_all
