"""The vmap calls now running, for operators that batch themselves (torch.library's ``register_vmap``).

chainrule's vmap runs the function once per slice of the mapped inputs. While it does, it notes
here which tensor each slice was cut from (and which inputs it passes unmapped), so that an
operator with its own vmap rule, called on such slices, can run the rule once on the whole batch,
as torch's vmap would, and give each per-slice call its slice of the rule's result.

Plain Python: the frame holds the slices it handed out, so their ids stay theirs while vmap runs.
"""

from __future__ import annotations

import contextlib
import weakref

__all__ = ["VmapFrame", "batched_anywhere", "batched_value", "current", "entered", "forget_made", "mapped", "note_alias", "note_made",
           "slice_draw",
           "note_drawn", "note_results", "note_value_read", "physical_strides", "refuse_batched_into_unbatched", "capturing", "closed_over", "in_place_op_name",
           "refuse_captured_write", "refuse_control_flow", "refuse_data_access", "refuse_index_read", "inner_transform", "refuse_different_inplace_randomness",
           "reads_allowed", "refuse_dynamic_shape", "refuse_inside", "refuse_item", "refuse_out", "refuse_same_randomness",
           "refuse_unbatchable", "running", "unbatched_target"]


class VmapFrame:
    """One running vmap: its batch size and randomness (the ``info`` a vmap rule is given), the
    slice now being run, and per input tensor the batched tensor and dim it came from."""

    def __init__(self, batch_size: int, randomness: str) -> None:
        self.batch_size, self.randomness = batch_size, randomness
        self.index = 0
        # how many torch.func transforms ran when this vmap began (itself counted): one more running
        # now is a grad-like transform inside it (``inner_transform``)
        from .autograd import function as _function

        self.transforms = _function.func_transforms.active
        self._origins: dict[int, tuple] = {}  # id(tensor handed to the function) -> (tensor, batched, dim)
        self.batched_results: dict = {}  # a rule's result for the whole batch, by the call it answers
        self._parts: dict[int, tuple] = {}  # id(slice of a rule's result) -> (slice, result, dim, index)
        self._aliases: dict[int, tuple] = {}  # id(a transform's alias of a slice) -> (alias, slice)
        self._pieces_at: dict[int, list] = {}  # index -> the slices cut for that call
        # id -> a tensor a factory (zeros, ones, full, tensor, ...) made during the calls, or an op made
        # from unbatched tensors only (see note_results): unbatched
        self._made = weakref.WeakValueDictionary()
        # under randomness="same", id -> (generator, its state before its first draw in this vmap): an
        # explicit generator is rewound before every slice as the default one is (torch draws once)
        self.rewound_generators: dict[int, tuple] = {}
        # id -> a tensor an op made during the calls from a batched operand (see note_results): torch's is
        # batched at this level, so reading its value (.item(), bool()) is refused as torch refuses it
        self._batched = weakref.WeakValueDictionary()
        # id -> a tensor the mapped function closes over (see note_closed_over): made before this vmap
        # began, so unbatched at this level, as torch's vmap sees it
        self._closed_over = weakref.WeakValueDictionary()
        # id -> (a tensor from before this vmap that a slice wrote unbatched values into, its values
        # before the first such write): every slice starts from them, so that the write lands once
        self._rewound_writes: dict[int, tuple] = {}
        # id -> (a module the function reads, its int/float/bool attributes before the calls): torch runs a
        # module's forward once for the batch, so a counter it keeps (self.calls += 1) moves once
        self._module_numbers: dict[int, tuple] = {}
        # whether chainrule's own code read a batched tensor's value as a Python value (note_value_read)
        self.values_read = False
        # under randomness="different": whether a slice drew other than by ``slice_draw`` (then the
        # record cannot stand for the batch's draws); >0 while slice_draw draws
        self.drew_unrecorded = False
        self.drawing_recorded = 0
        # slice_draw's batch draws, in the order slice 0 made them, and how many the running slice took
        self.draws: list = []
        self.draws_taken = 0

    def note_generator(self, generator) -> None:
        """Remember ``generator``'s state before a draw, the first time a slice draws from it."""
        if self.randomness == "same" and id(generator) not in self.rewound_generators:
            self.rewound_generators[id(generator)] = (generator, generator.get_state())

    def cut(self, batched, dim: int, index: int):
        """Slice ``index`` of ``batched`` along ``dim``, remembered as cut from it."""
        piece = batched.select(dim, index)
        self._origins[id(piece)] = (piece, batched, dim)
        self._pieces_at.setdefault(index, []).append(piece)
        return piece

    def keep(self, unmapped):
        """An input passed to every slice's call as it is (its in_dim None), remembered as such."""
        self._origins[id(unmapped)] = (unmapped, unmapped, None)
        return unmapped

    def part(self, result, dim: int, index: int):
        """Slice ``index`` of a vmap rule's batched ``result`` along ``dim``, remembered as such."""
        piece = result.select(dim, index)
        self._parts[id(piece)] = (piece, result, dim, index)
        return piece

    def whole_of(self, column: list) -> tuple | None:
        """(result, dim) when the function returned, slice by slice, the slices of one rule's result
        in order: vmap then returns that result itself, its batch dim moved (torch's vmap returns
        the rule's output, a view, not a copy); else None."""
        found = [self._parts.get(id(piece)) for piece in column]
        if not found or any(f is None or f[0] is not piece for f, piece in zip(found, column)):
            return None
        result, dim = found[0][1], found[0][2]
        if any(f[1] is not result or f[2] != dim or f[3] != i for i, f in enumerate(found)) or \
                result.shape[dim] != len(column):
            return None
        return result, dim

    def input_of(self, column: list) -> tuple | None:
        """(batched input, dim) when the function returned, slice by slice, the very slices this
        frame cut from one input, in order (an identity): vmap then returns a view of that input,
        as torch's vmap does; else None."""
        found = [self.origin(piece) for piece in column]
        if not found or any(f is None or f[1] is None for f in found):
            return None
        batched, dim = found[0]
        if any(f[0] is not batched or f[1] != dim for f in found) or batched.shape[dim] != len(column):
            return None
        if not all(any(p is piece for p in self._pieces_at.get(i, ())) for i, piece in enumerate(column)):
            return None
        return batched, dim

    def storage_origin(self, tensor) -> tuple | None:
        """As ``origin``, also for a transform's alias of a slice (see ``note_alias``): the
        storage it views, not the graph it is on."""
        alias = self._aliases.get(id(tensor))
        if alias is not None and alias[0] is tensor:
            tensor = alias[1]
        return self.origin(tensor)

    def note_closed_over(self, func) -> None:
        """Remember the tensors ``func`` reads from outside (``closed_over``), a module's parameters
        and buffers among them, and the plain numbers each module it reads holds (see ``rewind_writes``)."""
        modules: list = []
        for item in closed_over(func, modules=True, module_sink=modules):
            if self.origin(item) is None:
                self._closed_over[id(item)] = item
        for module in modules:
            for sub in module.modules():
                numbers = {name: value for name, value in vars(sub).items() if type(value) in (int, float, bool)}
                self._module_numbers.setdefault(id(sub), (sub, numbers))

    def note_write(self, target) -> None:
        """``target`` is about to be written with values unbatched at this level: when it is from
        before this vmap (an unmapped input or a tensor the function closes over, or a view of one),
        remember its values the first time (see ``rewind_writes``)."""
        # the whole of an outside tensor a view of it writes (other views of it may be written too); else
        # the target itself, a view from outside of a tensor that is not (an outer vmap's slice)
        root = target if target._base is None else target._base
        for t in (root, target):
            if id(t) in self._rewound_writes:
                return
            found = self.origin(t)
            if (found is not None and found[1] is None) or self._closed_over.get(id(t)) is t:
                self._rewound_writes[id(t)] = (t, t._data.copy())
                return

    def rewind_writes(self) -> None:
        """Put back the values of the tensors from before this vmap that a slice wrote (``note_write``):
        torch runs ``y.add_(1)`` on an unbatched ``y`` once for the whole batch; each slice here runs
        it again, from the same values, so that it lands once, as torch's."""
        for target, values in self._rewound_writes.values():
            target._data[...] = values
        for module, numbers in self._module_numbers.values():
            vars(module).update(numbers)

    def surely_unbatched(self, tensor) -> bool:
        """Whether this level surely holds ``tensor`` unbatched: an input it passes unmapped, a tensor
        the function closes over, one a factory made inside or an op made from such tensors only
        (see note_results), or a view of one."""
        found = self.origin(tensor)
        if found is not None:
            return found[1] is None
        for t in (tensor, tensor._base):
            if t is not None and (self._made.get(id(t)) is t or self._closed_over.get(id(t)) is t):
                return True
        return False

    def holds_batched(self, tensor) -> bool:
        """Whether ``tensor`` is batched at this level: a slice this frame cut (or an alias or view
        of one), or what an op made from such a tensor (or a view of that)."""
        found = self.storage_origin(tensor)
        if found is not None:
            return found[1] is not None
        if self._batched.get(id(tensor)) is tensor:
            return True
        base = tensor._base
        if base is None:
            return False
        if self._batched.get(id(base)) is base:
            return True
        from ._backend import array_module

        xp = array_module(tensor._data)
        return any(piece._base is base and xp.may_share_memory(piece._data, tensor._data)
                   for piece in self._pieces_at.get(self.index, ()))

    def origin(self, tensor) -> tuple | None:
        """(batched tensor, dim) of a slice this frame cut, (tensor, None) of an unmapped input, or
        None for a tensor the function made itself."""
        found = self._origins.get(id(tensor))
        if found is None or found[0] is not tensor:
            return None
        return found[1], found[2]


_frames: list[VmapFrame] = []


def _is_module(value) -> bool:
    return hasattr(value, "_parameters") and hasattr(value, "_buffers") and hasattr(value, "named_buffers")


def closed_over(func, modules: bool = False, module_sink: list | None = None) -> list:
    """The tensors ``func`` reads from outside: its closure's cells, the globals its code names, its
    defaults (and a partial's arguments), directly or in a list, tuple or dict; with ``modules``, also
    the parameters and buffers of a module ``func`` is, is bound to, or reads so (each such module
    appended to ``module_sink``), and what the Python functions it reads so read in turn."""
    found, seen, pending = [], set(), [func]
    while pending:
        func = pending.pop()
        if func is None or id(func) in seen:
            continue
        seen.add(id(func))
        values = list(getattr(func, "args", ()) or ()) + list((getattr(func, "keywords", None) or {}).values())
        code = getattr(func, "__code__", None)
        for cell in getattr(func, "__closure__", None) or ():
            try:
                values.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        # (not the globals of chainrule's own functions, a transform's wrapper among them: they name
        # the library's helpers, whose walk would spend the 64 functions before the user's own)
        if code is not None and not (getattr(func, "__module__", None) or "").startswith("chainrule."):
            scope = getattr(func, "__globals__", {})
            values.extend(scope[name] for name in code.co_names if name in scope)
        values.extend(getattr(func, "__defaults__", None) or ())
        if code is None and modules and not _is_module(func) and not isinstance(func, type):
            values.extend(getattr(func, "__dict__", {}).values())  # a callable object's own (a counter's function)
        if modules:
            values.extend((func, getattr(func, "__self__", None)))
        for value in values:
            items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) \
                else (value,)
            for item in items:
                if hasattr(item, "_base") and hasattr(item, "_data"):
                    found.append(item)
                elif modules and _is_module(item):
                    if module_sink is not None and not any(m is item for m in module_sink):
                        module_sink.append(item)
                    found.extend(t for _, t in item.named_parameters(remove_duplicate=False))
                    found.extend(t for _, t in item.named_buffers(remove_duplicate=False) if t is not None)
                elif modules and (getattr(item, "__code__", None) is not None or (
                        callable(item) and not isinstance(item, type) and hasattr(item, "__dict__"))) and len(seen) < 64:
                    pending.append(item)  # a helper (a lambda, a local function, a callable object) the function calls
        pending.append(getattr(func, "func", None) or getattr(func, "__wrapped__", None))
    return found


# per running grad transform (grad, vjp, jvp, jacrev, jacfwd), innermost last: id -> a tensor from
# outside that its function reads (``closed_over``), which torch's transforms refuse to write in place
_captures: list = []


@contextlib.contextmanager
def capturing(func):
    """A grad transform runs ``func``: an in-place write into a tensor ``func`` captured (see
    ``refuse_captured_write``) is refused meanwhile, as torch's transforms refuse it."""
    _captures.append(weakref.WeakValueDictionary((id(t), t) for t in closed_over(func, modules=True)))
    try:
        yield
    finally:
        _captures.pop()


def refuse_captured_write(target, op: str) -> None:
    """torch's refusal of an in-place op (``op``: its aten name and overload, ``add_.Tensor``) inside
    a grad transform on a tensor its function captured, a view of one or one sharing its memory
    (``.data``, ``.detach()``); raised before anything is written."""
    from ._backend import array_module

    xp = array_module(target._data)
    for captured in _captures:
        for t in (target, target._base):
            if t is not None and (captured.get(id(t)) is t or any(
                    type(other._data) is type(t._data) and xp.may_share_memory(t._data, other._data)
                    for other in captured.values())):
                raise RuntimeError(
                    f"During a grad (vjp, jvp, grad, etc) transform, the function provided attempted to call in-place "
                    f"operation (aten::{op}) that would mutate a captured Tensor. This is not supported; please rewrite "
                    "the function being transformed to explicitly accept the mutated Tensor(s) as inputs.")


def in_place_op_name(op: str | None, operands) -> str:
    """torch's aten name and overload of the in-place op ``op`` (a method's name without ``_``) called
    with ``operands``: ``add_.Tensor`` (a number operand is wrapped), ``fill_.Scalar``, ``relu_``."""
    op = (op or "copy").lstrip("_")
    if op in ("add", "sub", "mul", "div"):
        return f"{op}_.Tensor"
    if op in _SCALAR_OR_TENSOR:
        last = operands[-1] if operands else None
        return f"{op}_.{'Tensor' if hasattr(last, '_base') else 'Scalar'}"
    return f"{op}_"


_SCALAR_OR_TENSOR = frozenset({"fill", "pow", "lerp", "masked_fill"})


def current() -> VmapFrame | None:
    """The innermost running vmap, or None."""
    return _frames[-1] if _frames else None


def note_alias(original, alias):
    """``alias`` (a view of ``original`` a transform made to differentiate with respect to: grad's
    fresh leaf) has ``original``'s place in its batched tensor's storage, for every running vmap
    that handed ``original`` out (``VmapFrame.storage_origin``)."""
    for frame in _frames:
        if frame.origin(original) is not None:
            frame._aliases[id(alias)] = (alias, original)
    return alias


def mapped(tensor) -> bool | None:
    """True for a slice a running vmap handed the function, False for an input it passes
    unmapped, None for any other tensor (one the function computed: torch's vmap would know
    whether it is batched; a per-slice run does not)."""
    for frame in reversed(_frames):
        found = frame.origin(tensor)
        if found is not None:
            return found[1] is not None
    return None


def slice_draw(draw, shape: tuple):
    """The running slice's part of a random draw of ``shape`` per slice (dropout's mask: ``draw(size)``
    gives an array of ``size``) inside one vmap: under randomness="different" slice 0 draws the whole
    batch's, ``(B, *shape)``, as torch's vmap draws for its batched tensor, and slice ``i`` takes row i
    of it (so slice by slice or replayed, the numbers are torch's); under "same" slice 0's own draw,
    a constant of the record. None where the draw is to be made as usual (no vmap or a nested one, a
    later slice whose draws differ from slice 0's)."""
    if len(_frames) != 1 or _frames[0].randomness == "error":
        return None
    from .autograd import function as _function

    frame = _frames[0]
    hook = _function.traced_draw  # (set while slice 0's ops are recorded)
    if frame.randomness == "same":
        if frame.index or hook is None:
            return None
        mask = draw(shape)
        hook(None, mask)
        return mask
    k = frame.draws_taken
    frame.draws_taken += 1
    if frame.index == 0:
        frame.drawing_recorded += 1
        try:
            batch = draw((frame.batch_size, *shape))
        finally:
            frame.drawing_recorded -= 1
        frame.draws.append(batch)
        if hook is not None:
            hook(batch, batch[0])
        return batch[0]
    if k < len(frame.draws) and frame.draws[k].shape[1:] == tuple(shape):
        return frame.draws[k][frame.index]
    return None


def physical_strides(tensor) -> tuple | None:
    """The strides of torch's batched tensor for ``tensor`` (batched at the one running vmap, slice 0's
    run recording its ops), its batch dim moved to the front as a batching rule moves it (a view: only
    the order of the strides counts): a view into a mapped input's memory has its strides behind that
    input's batch stride; an elementwise op's result is laid out as its first batched operand of the
    same shape (TensorIterator keeps its operand's layout, densely); a view of such a result has the
    view's steps in that layout; any other result is batch-first and row-major (its views, their own
    strides behind it). None where ``tensor`` is not batched there, or no NumPy array."""
    import numpy as np

    from .autograd import function as _function

    if len(_frames) != 1 or type(tensor._data) is not np.ndarray or not _frames[0].holds_batched(tensor):
        return None
    return _strides_of(_frames[0], _function.traced_operands if _function.tracing_ops else None, tensor, 8)


def _strides_of(frame, operands_of, tensor, depth: int) -> tuple | None:
    import numpy as np

    data = tensor._data
    for _piece, batched, dim in list(frame._origins.values()):
        if dim is not None and type(batched._data) is np.ndarray and np.may_share_memory(data, batched._data):
            return (batched._data.strides[dim], *data.strides)
    operands = operands_of(tensor) if depth and operands_of is not None else None
    if operands is not None:  # (an elementwise op's result, recorded by _vmap_batched)
        operand = next((t for t in operands if t.shape == tensor.shape and frame.holds_batched(t)), None)
        return None if operand is None or type(operand._data) is not np.ndarray else \
            _strides_of(frame, operands_of, operand, depth - 1)
    base = tensor._base
    root = data if base is None else base._data
    if type(root) is not np.ndarray or not root.flags.c_contiguous:
        return None
    if depth and base is not None and frame.holds_batched(base):
        laid = _strides_of(frame, operands_of, base, depth - 1)
        if laid is not None:  # (the view's steps through its base, in the base's dense layout)
            shape = (frame.batch_size, *root.shape)
            dense, step = [0] * len(shape), 1
            for d in sorted(range(len(shape)), key=lambda d: -abs(laid[d]))[::-1]:
                dense[d], step = step, step * shape[d]
            found = []
            for stride in data.strides:
                total, rest = 0, abs(stride)
                for through, laid_out in zip(root.strides, dense[1:]):
                    count, rest = divmod(rest, through) if through else (0, rest)
                    total += count * laid_out
                found.append(total if stride >= 0 else -total)
            return (dense[0], *found)
    return (max(root.nbytes, root.itemsize), *data.strides)


def note_made(tensor) -> None:
    """``tensor`` was made by a factory inside the innermost running vmap: torch's is unbatched."""
    _frames[-1]._made[id(tensor)] = tensor


def note_drawn(tensor) -> None:
    """``tensor`` is the running slice's row of a random factory's draw for the batch (``slice_draw``
    under randomness="different"): torch's is batched."""
    _frames[-1]._batched[id(tensor)] = tensor


def forget_made(tensor) -> None:
    """``tensor`` was made as a factory's ``*_like`` of another (batched when that one is)."""
    _frames[-1]._made.pop(id(tensor), None)


def unbatched_target(tensor) -> bool:
    """Whether torch's vmap surely holds ``tensor`` unbatched at the innermost level
    (``VmapFrame.surely_unbatched``)."""
    return _frames[-1].surely_unbatched(tensor)


def batched_value(tensor) -> bool:
    """Whether ``tensor`` is, at the innermost level, a slice vmap handed out or a view into one
    (``x[0]``, ``x[:2]``), or a value an op computed from one (``VmapFrame.holds_batched``)."""
    return _frames[-1].holds_batched(tensor)


def _tensors_in(values, found: list) -> list:
    for value in values:
        if isinstance(value, (tuple, list)):
            _tensors_in(value, found)
        elif hasattr(value, "_base") and hasattr(value, "_data"):
            found.append(value)
    return found


def note_results(inputs, params, outputs) -> None:
    """An op (a built-in one or a user Function) ran inside vmap on ``inputs`` (and keyword
    ``params``) and gave ``outputs``: at every level where an operand is batched, its outputs are
    batched too, as torch's batching rules make them."""
    operands = _tensors_in(inputs, [])
    if params:
        _tensors_in(params.values(), operands)
    if not operands:
        return
    results = None
    for frame in _frames:
        batched = any(frame.holds_batched(t) for t in operands)
        if batched or all(frame.surely_unbatched(t) for t in operands):
            if results is None:
                results = _tensors_in(outputs if isinstance(outputs, (tuple, list)) else (outputs,), [])
            # batched from a batched operand; else made from unbatched ones only, as a factory's
            into = frame._batched if batched else frame._made
            for t in results:
                into[id(t)] = t


_reads_allowed = 0  # how many kernels or vmap rules that run below vmap (on whole batches) are running


@contextlib.contextmanager
def reads_allowed():
    """A custom op's kernel or vmap rule, or a user Function's forward, runs: torch runs them below
    vmap (a rule on whole batches), where reading a tensor's values (``.numpy()``) is allowed."""
    global _reads_allowed
    _reads_allowed += 1
    try:
        yield
    finally:
        _reads_allowed -= 1


def batched_anywhere(tensor) -> bool:
    """Whether ``tensor`` is batched at any running vmap's level (torch's view: a functorch wrapper,
    so "tensor-subclass-like"), outside a kernel or vmap rule that runs below vmap."""
    return not _reads_allowed and any(frame.holds_batched(tensor) for frame in _frames)


def note_value_read(tensor) -> None:
    """chainrule's own code read ``tensor``'s value as a Python value (an op reading a 0-d operand as a
    number, an index key's integer): where ``tensor`` is batched, the number is slice 0's, so vmap may
    not replay slice 0's record of the ops on the whole batch (``VmapFrame.values_read``)."""
    for frame in _frames:
        if frame.holds_batched(tensor):
            frame.values_read = True


# torch's words where a batched tensor's value is read while a grad-like transform runs inside the
# innermost vmap: its current level is no vmap's, so the kernel reading the value meets the batched
# tensor itself (no batching rule), whatever the read (.item(), bool(), a 0-d index)
_READ_UNDER_TRANSFORM = (
    "vmap: It looks like you're either (1) calling .item() on a Tensor or (2) attempting to use a Tensor in some "
    "data-dependent control flow or (3) encountering this error in PyTorch internals. For (1): we don't support vmap "
    "over calling .item() on a Tensor, please try to rewrite what you're doing with other operations. For (2): we "
    "don't support data-dependent control flow in vmap yet, please file an issue at "
    "https://github.com/pytorch/pytorch/issues . For (3): please file an issue.")


def inner_transform() -> bool:
    """Whether a torch.func transform other than vmap (grad, vjp, jvp, jacrev, jacfwd) runs inside the
    innermost running vmap: torch's current level is then that transform's, not a vmap's."""
    from .autograd import function as _function

    return bool(_frames) and _function.func_transforms.active > _frames[-1].transforms


def refuse_index_read(tensor) -> None:
    """A 0-d integer tensor in an index key, which torch's indexing reads as a Python integer
    (``.item()``) unless it is batched at the current level: refused in torch's words where it is
    batched and a grad-like transform runs inside the innermost vmap (``vmap(grad(lambda x: x[x.argmax()]))``)."""
    if batched_anywhere(tensor) and inner_transform():
        raise RuntimeError(_READ_UNDER_TRANSFORM)


def refuse_item(tensor) -> None:
    """torch's vmap error for reading a batched tensor's value as a Python number (``.item()``,
    ``float(t)``, ``int(t)``): each slice has its own."""
    if batched_anywhere(tensor):
        if inner_transform():
            raise RuntimeError(_READ_UNDER_TRANSFORM)
        raise RuntimeError("vmap: It looks like you're calling .item() on a Tensor. We don't support vmap over calling "
                           ".item() on a Tensor, please try to rewrite what you're doing with other operations. If "
                           "error is occurring somewhere inside PyTorch internals, please file a bug report.")


def refuse_control_flow(tensor) -> None:
    """torch's vmap error for ``bool(t)`` of a batched tensor (``if t.sum() > 0:``, ``while``):
    the slices may take different branches."""
    if batched_anywhere(tensor):
        if inner_transform():
            raise RuntimeError(_READ_UNDER_TRANSFORM)
        raise RuntimeError("vmap: It looks like you're attempting to use a Tensor in some data-dependent control flow. "
                           "We don't support that yet, please file an issue at "
                           "https://github.com/pytorch/pytorch/issues .")


def refuse_inside(op: str) -> None:
    """torch's refusal of a random op its vmap does not support (rrelu): refused inside any vmap,
    whether or not an operand is batched (torch registers it for vmap's mode, not its batched
    tensors)."""
    if _frames and not _reads_allowed:
        raise RuntimeError(f"vmap: we do not yet support {op}. Please file an issue")


def refuse_out(op: str, operands, result=None) -> None:
    """torch's vmap refusal of an op's ``out=`` variant (``torch.sin(x, out=y)``) where an operand or
    ``out`` is batched (or the ``result`` computed from them): its fallback cannot write into ``out``.
    Named by torch's overload."""
    if not any(batched_anywhere(t) for t in _tensors_in((*operands, result), [])):
        return
    if op == "pow":  # (called with the operands: self or exponent a number)
        overload = "Scalar_out" if not hasattr(operands[0], "_base") else "Tensor_Scalar_out" if len(operands) > 1 \
            and not hasattr(operands[1], "_base") else "Tensor_Tensor_out"
    else:
        overload = _OUT_OVERLOADS.get(op, "out")
    name = f"aten::{_ATEN_NAMES.get(op, op)}.{overload}"
    if op in ("cat", "stack", "concat", "concatenate", "hstack", "vstack", "dstack"):
        raise RuntimeError(f"Batching rule not implemented for {name}. We could not generate a fallback.")
    raise RuntimeError(f"Batching rule not implemented for {name}; the fallback path doesn't work on out= or view "
                       "ops.")


# torch's overload names of out= variants not called "out", and aten names of ops under another name
_OUT_OVERLOADS = {"sum": "IntList_out", "sort": "values", "topk": "values", "kthvalue": "values", "mode": "values",
                  "max": "dim_max", "min": "dim_min", "median": "dim_values", "nanmedian": "dim_values",
                  "cummax": "out", "cummin": "out"}
_ATEN_NAMES = {"vector_norm": "linalg_vector_norm", "matrix_norm": "linalg_matrix_norm"}


def refuse_unbatchable(message: str, *tensors) -> None:
    """torch's refusal (``message``) of an op with no batching rule that answers a Python value
    (``torch.equal``, ``torch.allclose``) when an operand is batched."""
    if any(hasattr(t, "_base") and batched_anywhere(t) for t in tensors):
        raise RuntimeError(message)


def refuse_same_randomness(*tensors) -> None:
    """torch's vmap refusal, under randomness="same", of a random op whose draws take a batched tensor's
    values as parameters (bernoulli's probabilities, normal's mean, multinomial's weights)."""
    for frame in _frames:
        if frame.randomness == "same" and any(hasattr(t, "_base") and frame.holds_batched(t) for t in tensors):
            raise RuntimeError("Vmap does not currently support same randomness with a batched tensor input. Please "
                               "file an issue with functorch")


def refuse_different_inplace_randomness(target) -> None:
    """torch's vmap refusal, under randomness="different", of an in-place random fill of a tensor
    unbatched at that level: one tensor cannot hold each slice's own draws."""
    for frame in _frames:
        if frame.randomness == "different" and not frame.holds_batched(target):
            raise RuntimeError("vmap: Cannot ask for different inplace randomness on an unbatched tensor. This will "
                               "appear like same randomness. If this is necessary for your usage, please file an "
                               "issue with functorch.")


def refuse_data_access(tensor) -> None:
    """torch's error for ``.tolist()`` or ``.numpy()`` of a batched tensor, which has no storage of
    its own."""
    if batched_anywhere(tensor):
        raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage")


def refuse_batched_into_unbatched(target, operands, op: str | None = None) -> None:
    """torch's vmap error for an in-place write (``add_``, ``copy_``, ``x[i] = v``, ...) of a batched
    operand into an unbatched tensor (one the function made with a factory, or closes over); raised
    before anything is written. ``add_`` and the other ops of _BROADCAST_CHECKED fail in torch on the
    batched shape instead."""
    batched = [o for o in operands if hasattr(o, "_base") and batched_value(o)]
    for frame in _frames:  # an unbatched write into a tensor from before a vmap lands once there
        if not any(hasattr(o, "_base") and frame.holds_batched(o) for o in operands):
            frame.note_write(target)
    if batched and unbatched_target(target):
        op = op.lstrip("_") if op else op  # (a private helper's name: _index_put is index_put_)
        if op == "masked_fill" and batched[-1] is not operands[-1]:
            op = None  # a batched mask with an unbatched value: torch's masked_fill_ rule calls it arithmetic
        if op in _BROADCAST_CHECKED:
            import numpy as np

            from ._backend import broadcast_refusal

            try:
                shape = np.broadcast_shapes(tuple(target.shape), *(tuple(o.shape) for o in batched))
            except ValueError:
                shape = None
            if shape is not None:
                raise broadcast_refusal(target.shape, (_frames[-1].batch_size, *shape))
        # torch names the op its batching rule refused in, or its fallback's (aten::..., with the level)
        name = "inplace arithmetic" if op in _ARITHMETIC else f"{op}_" if op in _OWN_RULES else f"aten::{op}_"
        where = f"at level {len(_frames)}" if name.startswith("aten::") else "in a vmap"
        raise RuntimeError(
            f"vmap: {name}(self, *extra_args) is not possible because there exists a Tensor `other` in "
            "extra_args that has more elements than `self`. This happened due to `other` being vmapped over but "
            f"`self` not being vmapped over {where}. Please try to use out-of-place operators instead of {name}. "
            "If said operator is being called inside the PyTorch framework, please file a bug report instead.")


# in-place ops whose refusal torch words as "inplace arithmetic" (copy_ and setitem, which name no op,
# among them), and those with an in-place batching rule of their own, named without "aten::"
_ARITHMETIC = frozenset({None, "<lambda>", "add", "sub", "mul", "div", "subtract", "multiply", "divide", "true_divide",
                         "logical_and", "logical_or", "logical_xor", "clamp_min", "clamp_max"})
_OWN_RULES = frozenset({"index_add", "fill", "index_put", "index_fill", "scatter_add"})
# in-place binary ops whose batching rule writes the batched result into self and fails on its shape
_BROADCAST_CHECKED = frozenset({"add", "copysign", "atan2", "arctan2", "bitwise_and", "bitwise_or", "bitwise_xor",
                                "bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm"})


def refuse_dynamic_shape(tensor, aten_op: str) -> None:
    """torch's vmap error for an op whose output's shape depends on the values (nonzero, unique),
    called on a batched tensor: each slice would give another shape."""
    if _frames and batched_value(tensor):
        raise RuntimeError(f"vmap: We do not support batching operators that can output dynamic shape. Attempted to "
                           f"vmap over {aten_op}. Please file an issue at https://github.com/pytorch/pytorch/issues if "
                           f"you need this feature.")


def running() -> tuple:
    """Every running vmap, outermost first."""
    return tuple(_frames)


@contextlib.contextmanager
def entered(frame: VmapFrame):
    _frames.append(frame)
    try:
        yield frame
    finally:
        _frames.pop()
