"""chainrule.masked (torch.masked): reductions and normalizations over the elements a boolean mask keeps.

The mask keeps at least one element of every reduced slice in the gradchecked cases (a fully
masked-out slice gives NaN or an infinite identity, which has no finite difference); the
``*_empty_row`` cases give one slice no kept element and compare values and gradients with torch only.
"""

from __future__ import annotations

import numpy as np

from .core import OpCase, OpInfo, distinct, positive

# every row and every column keeps at least one element
_MASK = np.array([[True, False, True, True],
                  [False, True, True, False],
                  [True, True, False, True]])
# the middle row keeps nothing
_EMPTY_ROW_MASK = np.array([[True, False, True, True],
                            [False, False, False, False],
                            [True, True, False, True]])


def _masked_cases(name: str, call, *, dims=(1,), empty_row: bool = True, base=distinct, gradcheck: bool = True
           ) -> list[OpCase]:
    """``call(lib, x, mask, dim)``: one case per dim, plus a case with a fully masked-out row."""
    x = base(3, 4)
    cases = [OpCase(f"masked_{name}_dim{d}", lambda lib, x, m, d=d: call(lib, x, m, d), [x, _MASK],
                    gradcheck=gradcheck, gradgradcheck=gradcheck) for d in dims]
    if empty_row:
        cases.append(OpCase(f"masked_{name}_empty_row", lambda lib, x, m: call(lib, x, m, 1), [x, _EMPTY_ROW_MASK],
                            gradcheck=False, gradgradcheck=False))
    return cases


def _reduction(name: str, **kw) -> OpInfo:
    def samples():
        cases = _masked_cases(name, lambda lib, x, m, d: getattr(lib.masked, name)(x, d, mask=m), dims=(0, 1), **kw)
        x = distinct(3, 4)
        cases.append(OpCase(f"masked_{name}_all_keepdim",
                            lambda lib, x, m: getattr(lib.masked, name)(x, None, keepdim=True, mask=m[0]),
                            [x, _MASK]))
        return cases
    return OpInfo(f"masked.{name}", "masked", samples)


def _along_dim(name: str, **kw) -> OpInfo:
    return OpInfo(f"masked.{name}", "masked",
                  lambda: _masked_cases(name, lambda lib, x, m, d: getattr(lib.masked, name)(x, d, mask=m), dims=(0, 1), **kw))


op_db: list[OpInfo] = [
    _reduction("sum"),
    _reduction("prod"),
    _reduction("amax"),
    _reduction("amin"),
    _reduction("mean"),
    _reduction("logsumexp"),
    _reduction("var"),
    _reduction("std"),
    OpInfo("masked.norm", "masked", lambda: _masked_cases(
        "norm", lambda lib, x, m, d: lib.masked.norm(x, 3.0, d, mask=m), dims=(0, 1))),
    OpInfo("masked.median", "masked", lambda: _masked_cases(
        "median", lambda lib, x, m, d: lib.masked.median(x, d, mask=m), dims=(0, 1))),
    OpInfo("masked.argmax", "masked", lambda: _masked_cases(
        "argmax", lambda lib, x, m, d: lib.masked.argmax(x, d, mask=m), dims=(0, 1)), supports_autograd=False),
    OpInfo("masked.argmin", "masked", lambda: _masked_cases(
        "argmin", lambda lib, x, m, d: lib.masked.argmin(x, d, mask=m), dims=(0, 1)), supports_autograd=False),
    _along_dim("cumsum"),
    _along_dim("cumprod", base=positive),
    _along_dim("softmax"),
    # the masked-out outputs are -inf, whose finite differences are NaN: gradients compared with torch only
    _along_dim("log_softmax", gradcheck=False),
    _along_dim("softmin"),
    OpInfo("masked.normalize", "masked", lambda: _masked_cases(
        "normalize", lambda lib, x, m, d: lib.masked.normalize(x, 2.0, d, mask=m), dims=(0, 1))),
    OpInfo("masked.logaddexp", "masked", lambda: [
        OpCase("masked_logaddexp", lambda lib, x, y, m: lib.masked.logaddexp(x, y, input_mask=m, other_mask=~m),
               [distinct(3, 4), distinct(3, 4, seed=1), _MASK]),
    ]),
]
