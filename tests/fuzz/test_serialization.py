"""A differential fuzzer of serialization: random objects saved and loaded by torch and by chainrule in
all four directions (torch.save -> chainrule.load, chainrule.save -> torch.load, each with itself),
every observable compared with torch's own round trip.

A case (``draw_case`` in ``_serialization.py``, drawn from its family and seed alone) is an object —
tensors of every dtype (0-d, empty, non-contiguous, transposed, sliced, expanded, conjugated views sharing
one storage, Parameters with and without requires_grad, tensors that require grad, non-leaves), plain
values, nested dict/OrderedDict/list/tuple, a module's and an optimizer's state_dict — and how it is saved
(a path or an io.BytesIO, the zip or the legacy format, the pickle protocol) and loaded (weights_only,
map_location, mmap). The ``hostile`` family mutates the saved bytes (truncated, emptied, a byte flipped in
the pickle or a storage, a storage cut short, a member renamed or dropped, a pickle calling a callable
weights-only loading refuses): chainrule must raise torch's error type, or load what torch loads.

CI runs ``CI_CASES`` seeds a family; ``CHAINRULE_LONG_TESTS=1`` runs ``LONG_CASES``.
``python -m tests.fuzz.test_serialization N [family ...]`` runs N seeds a family and prints the mismatches,
for hunting (``--all``: the listed ones too; ``--start=K``: seeds from K). A mismatch found and not fixed
goes into ``OPEN`` (the case's repr -> the reason), a whole kind of them into ``OPEN_KINDS``, so a new one
fails CI.
"""

from __future__ import annotations

import sys

import pytest

import chainrule

from ._differential import Differential
from ._serialization import FAMILIES, draw_case, first_difference, run_case

CI_CASES, LONG_CASES = 10, 1500
# a state dict's case builds a module and steps an optimizer on both libraries (about 0.3 s of CPU a case on the
# loaded 2-core machine, the others a few ms): CI runs 3 of them
CASES_OF = {"state_dicts": (3, 600)}

# case repr -> why it differs: the open defects, found and not fixed yet
OPEN: dict[str, str] = {}

def _conjugated(case) -> bool:
    return "'conj'" in repr(case.spec)


# (reason, test of (case, problem)): whole kinds of open defect, found and not fixed yet
OPEN_KINDS: list = [
    ("a mutated zip member: chainrule checks every member's CRC32 and refuses the file (RuntimeError); torch "
     "reads no CRC, so it loads a flipped storage byte as a silently wrong value and fails on a flipped pickle "
     "byte with whatever its unpickler meets (UnpicklingError, UnicodeDecodeError, AttributeError, ...): "
     "chainrule's refusal is deliberate",
     lambda case, problem: case.mutation is not None and "fails its CRC check" in problem),
    ("a member's name garbled in its local header only: chainrule refuses the file (the central directory and the "
     "local header disagree on what the bytes are), torch reads the central directory's name and loads it: "
     "chainrule's refusal is deliberate",
     lambda case, problem: case.mutation is not None and "has another name in its local header" in problem),
    ("mmap=True and a storage record shorter than its tensors need: torch maps the file and views past the record "
     "(no size check: a silently wrong tensor), chainrule refuses it as torch does without mmap: deliberate",
     lambda case, problem: case.mmap and case.mutation is not None and "should hold" in problem),
    ("a legacy-format file garbled or cut (it has no CRC): torch's error depends on where its unpickler trips "
     "(the C one for weights_only=False, the Python one for True: UnpicklingError, EOFError, IndexError, "
     "UnicodeDecodeError, AttributeError, struct.error); chainrule dry-runs the pickle first and raises its "
     "RuntimeError naming the file (an EOFError too when the pickle ends early; cut inside the magic number, it "
     "is no longer told from a safetensors file)",
     lambda case, problem: case.legacy and case.mutation is not None
     and ("(legacy format)" in problem or "safetensors" in problem)),
    ("a conj() view: chainrule's holds its conjugated values in memory of its own, so it shares no storage with "
     "its base (and is saved as a storage of its own); torch's shares the base's storage",
     lambda case, problem: _conjugated(case) and (problem.startswith("build:") or ".storage" in problem)),
]


def mismatch(case) -> str | None:
    """How chainrule's runs of ``case`` differ from torch's, or None."""
    import torch

    return first_difference(case, run_case(case, torch, chainrule))


FUZZER = Differential(FAMILIES, draw_case, mismatch, OPEN, OPEN_KINDS, CI_CASES, LONG_CASES, CASES_OF)
known, hunt = FUZZER.known, FUZZER.hunt


@pytest.mark.parametrize("family", list(FAMILIES))
def test_serialization_agrees_with_torch(family):
    pytest.importorskip("torch")
    found = FUZZER.unlisted(family)
    assert not found, "\n".join(found)


if __name__ == "__main__":
    FUZZER.main(sys.argv[1:])
