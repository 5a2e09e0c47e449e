"""chainrule.special: torch.special's functions.

The gamma family, erfinv, Bessel I0/I1, the incomplete gammas, ndtri, log_ndtr, erfcx, zeta and
logit are ops of ``ops/special_functions.py`` (NumPy kernels with torch's derivatives); the rest
compose from chainrule's differentiable ops, so their gradients come from the ops they use. The
Bessel J/Y/K, Airy and orthogonal-polynomial families are ``ops/special_polynomials.py``'s, and
have no gradient, as torch's.
"""

from __future__ import annotations

import math as _math
from functools import partial as _partial

from . import logsumexp, softmax  # noqa: F401  (the namespace's, which take out= as torch.special's)

# exp2, expm1, log1p, logsumexp, softmax, log_softmax and xlogy are torch.special names as they are
from .autograd.function import name_node as _name_node
from .ops.elementwise import erf, exp2, expm1, log1p, xlogy  # noqa: F401
from .ops.elementwise import refuse_kernel as _refuse_kernel
from .ops.elementwise import sigmoid as _sigmoid
from .ops.reduce import log_softmax  # noqa: F401
from .ops.special_functions import (
    digamma,
    erfc,
    erfinv,
    i0,
    igamma,
    igammac,
    lgamma,
    logit,
    mvlgamma,
    polygamma,
    sinc,
    special_xlog1py,
)
from .ops.special_functions import special_entr as entr
from .ops.special_functions import special_erfcx as erfcx
from .ops.special_functions import special_i0e as i0e
from .ops.special_functions import special_i1 as i1
from .ops.special_functions import special_i1e as i1e
from .ops.special_functions import special_log_ndtr as log_ndtr
from .ops.special_functions import special_ndtri as ndtri
from .ops.special_functions import special_zeta as zeta
from .ops.special_polynomials import (
    airy_ai,
    bessel_j0,
    bessel_j1,
    bessel_y0,
    bessel_y1,
    chebyshev_polynomial_t,
    chebyshev_polynomial_u,
    chebyshev_polynomial_v,
    chebyshev_polynomial_w,
    hermite_polynomial_h,
    hermite_polynomial_he,
    laguerre_polynomial_l,
    legendre_polynomial_p,
    modified_bessel_i0,
    modified_bessel_i1,
    modified_bessel_k0,
    modified_bessel_k1,
    scaled_modified_bessel_k0,
    scaled_modified_bessel_k1,
    shifted_chebyshev_polynomial_t,
    shifted_chebyshev_polynomial_u,
    shifted_chebyshev_polynomial_v,
    shifted_chebyshev_polynomial_w,
    spherical_bessel_j0,
)
from .tensor import Tensor, honours_out

# torch.special's names for the same functions
gammaln = lgamma
psi = digamma
xlog1py = honours_out(special_xlog1py, "special_xlog1py")
multigammaln = mvlgamma
gammainc = igamma
gammaincc = igammac

__all__ = ["expit", "logit", "erf", "erfc", "exp2", "expm1", "log1p", "logsumexp", "softmax",
           "log_softmax", "xlogy", "xlog1py", "entr", "sinc", "ndtr", "round", "gammaln", "digamma", "psi",
           "polygamma", "multigammaln", "gammainc", "gammaincc", "zeta", "erfinv", "erfcx", "ndtri", "log_ndtr",
           "i0", "i0e", "i1", "i1e", "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
           "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
           "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0",
           "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
           "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
           "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
           "laguerre_polynomial_l", "legendre_polynomial_p"]


@honours_out
def expit(input: Tensor) -> Tensor:
    """The logistic sigmoid 1 / (1 + exp(-x))."""
    return _sigmoid(input)


@_partial(honours_out, composite=True)  # (torch's is composite: out= is a copy_)
def ndtr(input: Tensor) -> Tensor:
    """The standard normal CDF, (1 + erf(x / sqrt 2)) / 2."""
    # torch scales by a C++ double: mul's Scalar overload (MulBackward1)
    return _name_node(0.5 * (1 + erf(input * (1 / _math.sqrt(2)))), "MulBackward1", label="ndtr")


@honours_out
def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """torch.special.round: torch.round's ``decimals`` overload, whose kernels are floating only."""
    if isinstance(input, Tensor) and input._data.dtype.kind in "biu":
        _refuse_kernel(input, "round_cpu" if decimals else "round_vml_cpu")
    return input.round(decimals=decimals) if decimals else input.round()

# the kernels' own names, bound above only to be renamed: dir(torch.special) has none of them
del annotations, lgamma, mvlgamma, igamma, igammac, special_xlog1py, honours_out, _partial
