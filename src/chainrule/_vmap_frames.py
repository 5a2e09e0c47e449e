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

__all__ = ["VmapFrame", "batched_value", "current", "entered", "forget_made", "mapped", "note_alias", "note_made",
           "refuse_batched_into_unbatched", "refuse_dynamic_shape", "running", "unbatched_target"]


class VmapFrame:
    """One running vmap: its batch size and randomness (the ``info`` a vmap rule is given), the
    slice now being run, and per input tensor the batched tensor and dim it came from."""

    def __init__(self, batch_size: int, randomness: str) -> None:
        self.batch_size, self.randomness = batch_size, randomness
        self.index = 0
        self._origins: dict[int, tuple] = {}  # id(tensor handed to the function) -> (tensor, batched, dim)
        self.batched_results: dict = {}  # a rule's result for the whole batch, by the call it answers
        self._parts: dict[int, tuple] = {}  # id(slice of a rule's result) -> (slice, result, dim, index)
        self._aliases: dict[int, tuple] = {}  # id(a transform's alias of a slice) -> (alias, slice)
        self._pieces_at: dict[int, list] = {}  # index -> the slices cut for that call
        # id -> a tensor a factory (zeros, ones, full, tensor, ...) made during the calls: unbatched
        self._made = weakref.WeakValueDictionary()
        # under randomness="same", id -> (generator, its state before its first draw in this vmap): an
        # explicit generator is rewound before every slice as the default one is (torch draws once)
        self.rewound_generators: dict[int, tuple] = {}

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

    def origin(self, tensor) -> tuple | None:
        """(batched tensor, dim) of a slice this frame cut, (tensor, None) of an unmapped input, or
        None for a tensor the function made itself."""
        found = self._origins.get(id(tensor))
        if found is None or found[0] is not tensor:
            return None
        return found[1], found[2]


_frames: list[VmapFrame] = []


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


def note_made(tensor) -> None:
    """``tensor`` was made by a factory inside the innermost running vmap: torch's is unbatched."""
    _frames[-1]._made[id(tensor)] = tensor


def forget_made(tensor) -> None:
    """``tensor`` was made as a factory's ``*_like`` of another (batched when that one is)."""
    _frames[-1]._made.pop(id(tensor), None)


def unbatched_target(tensor) -> bool:
    """Whether torch's vmap surely holds ``tensor`` unbatched at the innermost level: an input passed
    unmapped, or a factory's tensor made inside the function (or a view of one)."""
    frame = _frames[-1]
    found = frame.origin(tensor)
    if found is not None:
        return found[1] is None
    for t in (tensor, tensor._base):
        if t is not None and frame._made.get(id(t)) is t:
            return True
    return False


def batched_value(tensor) -> bool:
    """Whether ``tensor`` is, at the innermost level, a slice vmap handed out or a view into one
    (``x[0]``, ``x[:2]``); a value the function computed from one is not recognised."""
    frame = _frames[-1]
    found = frame.storage_origin(tensor)
    if found is not None:
        return found[1] is not None
    if tensor._base is None:
        return False
    from ._backend import array_module

    xp = array_module(tensor._data)
    return any(piece._base is tensor._base and xp.may_share_memory(piece._data, tensor._data)
               for piece in frame._pieces_at.get(frame.index, ()))


def refuse_batched_into_unbatched(target, operands) -> None:
    """torch's vmap error for an in-place write (``add_``, ``copy_``, ``x[i] = v``, ...) of a batched
    operand into an unbatched tensor; raised before anything is written."""
    if unbatched_target(target) and any(batched_value(o) for o in operands if hasattr(o, "_base")):
        raise RuntimeError(
            "vmap: inplace arithmetic(self, *extra_args) is not possible because there exists a Tensor `other` in "
            "extra_args that has more elements than `self`. This happened due to `other` being vmapped over but "
            "`self` not being vmapped over in a vmap. Please try to use out-of-place operators instead of inplace "
            "arithmetic. If said operator is being called inside the PyTorch framework, please file a bug report instead.")


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
