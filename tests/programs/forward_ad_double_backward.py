"""The "Forward-mode Automatic Differentiation" and "Double Backward with Custom Functions"
tutorials, then a small training loop driven by Hessian-vector products.

Forward AD: ``fwAD.dual_level()``, ``make_dual``, ``unpack_dual(...).tangent`` (the same object
given, ``None`` after the level exits), module parameters swapped for dual tensors by
``delattr``/``setattr`` and by ``functional_call`` with a dict of duals, custom Functions with a
``jvp`` staticmethod (one keeping ``ctx.result``, one using ``ctx.save_for_forward``), checked by
``gradcheck(check_forward_ad=True)``, and ``torch.func.jvp``. Double backward: Functions whose
backward uses differentiable ops (``Square``, ``Exp`` saving its output, ``Sinh`` with extra
outputs, ``Cube`` through a ``CubeBackward`` Function), ``gradcheck``/``gradgradcheck`` in float64,
the tutorial's "what not to do" ``SinhBad`` caught by ``gradgradcheck(raise_exception=False)``
and a ``@once_differentiable`` backward refusing a second differentiation. Training: a Newton-CG
step per iteration on a small regression whose model ``z + 0.5 z^3`` uses ``Cube``; Hessian-vector products
by double backward (``autograd.grad(create_graph=True)``) and by forward-over-reverse
(``jvp`` of ``grad``), which must agree.
"""

import os

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
from torch.autograd.function import once_differentiable
from torch.autograd.gradcheck import gradcheck
from torch.func import functional_call

seed = int(os.environ.get("PROGRAM_SEED", "0"))
torch.manual_seed(seed)

# ---- Forward-mode AD ----
primal = torch.randn(10, 10)
tangent = torch.randn(10, 10)


def fn(x, y):
    return x ** 2 + y ** 2


# All forward AD computation must be performed in the context of
# a ``dual_level`` context. All dual tensors created in such a context
# will have their tangents destroyed upon exit. This is to ensure that
# if the output or intermediate results of this computation are reused
# in a future forward AD computation, their tangents (which are associated
# with this computation) won't be confused with tangents from a later
# computation.
with fwAD.dual_level():
    # To create a dual tensor we associate a tensor, which we call the
    # primal with another tensor of the same size, which we call the tangent.
    # If the layout of the tangent is different from that of the primal,
    # The values of the tangent are copied into a new tensor with the same
    # metadata as the primal. Otherwise, the tangent itself is used as-is.
    #
    # It is also important to note that the dual tensor created by
    # ``make_dual`` is a view of the primal.
    dual_input = fwAD.make_dual(primal, tangent)
    assert fwAD.unpack_dual(dual_input).tangent is tangent

    # To demonstrate the case where the copy of the tangent happens,
    # we pass in a tangent with a layout different from that of the primal
    dual_input_alt = fwAD.make_dual(primal, tangent.T)
    assert fwAD.unpack_dual(dual_input_alt).tangent is not tangent

    # Tensors that do not have an associated tangent are automatically
    # considered to have a zero-filled tangent of the same shape.
    plain_tensor = torch.randn(10, 10)
    dual_output = fn(dual_input, plain_tensor)

    # Unpacking the dual returns a ``namedtuple`` with ``primal`` and ``tangent``
    # as attributes
    jvp = fwAD.unpack_dual(dual_output).tangent

assert fwAD.unpack_dual(dual_output).tangent is None
print('jvp of x**2 + y**2 matches 2 x t:', torch.allclose(jvp, 2 * primal * tangent))

model = nn.Linear(5, 5)
input = torch.randn(16, 5)

params = {name: p for name, p in model.named_parameters()}
tangents = {name: torch.rand_like(p) for name, p in params.items()}

with fwAD.dual_level():
    for name, p in params.items():
        delattr(model, name)
        setattr(model, name, fwAD.make_dual(p, tangents[name]))

    out = model(input)
    jvp = fwAD.unpack_dual(out).tangent

model = nn.Linear(5, 5)
dual_params = {}
with fwAD.dual_level():
    for name, p in params.items():
        # Using the same ``tangents`` from the above section
        dual_params[name] = fwAD.make_dual(p, tangents[name])
    out = functional_call(model, dual_params, input)
    jvp2 = fwAD.unpack_dual(out).tangent

# Check our results
assert torch.allclose(jvp, jvp2)
expected = input @ tangents['weight'].T + tangents['bias']
print('module jvp shape', tuple(jvp.shape), 'matches x W_t^T + b_t:', torch.allclose(jvp, expected, atol=1e-6))


class Fn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, foo):
        result = torch.exp(foo)
        # Tensors stored in ``ctx`` can be used in the subsequent forward grad
        # computation.
        ctx.result = result
        return result

    @staticmethod
    def jvp(ctx, gI):
        gO = gI * ctx.result
        # If the tensor stored in`` ctx`` will not also be used in the backward pass,
        # one can manually free it using ``del``
        del ctx.result
        return gO


fn = Fn.apply

primal = torch.randn(10, 10, dtype=torch.double, requires_grad=True)
tangent = torch.randn(10, 10)

with fwAD.dual_level():
    dual_input = fwAD.make_dual(primal, tangent)
    dual_output = fn(dual_input)
    jvp = fwAD.unpack_dual(dual_output).tangent

# It is important to use ``autograd.gradcheck`` to verify that your
# custom autograd Function computes the gradients correctly. By default,
# ``gradcheck`` only checks the backward-mode (reverse-mode) AD gradients. Specify
# ``check_forward_ad=True`` to also check forward grads. If you did not
# implement the backward formula for your function, you can also tell ``gradcheck``
# to skip the tests that require backward-mode AD by specifying
# ``check_backward_ad=False``, ``check_undefined_grad=False``, and
# ``check_batched_grad=False``.
print('Fn jvp dtype', jvp.dtype, 'gradcheck:', gradcheck(Fn.apply, (primal,), check_forward_ad=True,
                                                        check_backward_ad=False, check_undefined_grad=False,
                                                        check_batched_grad=False))


class ScaledTanh(torch.autograd.Function):
    """tanh(a * x): forward and backward mode through saved outputs."""

    @staticmethod
    def forward(ctx, x, a):
        result = torch.tanh(a * x)
        ctx.save_for_forward(result, a)
        ctx.save_for_backward(result, a)
        return result

    @staticmethod
    def jvp(ctx, x_t, a_t):
        result, a = ctx.saved_tensors
        # d tanh(a x) = (1 - tanh^2) (a dx + x da), with x = atanh(result) / a
        slope = 1 - result * result
        tangent = slope * a * x_t
        if a_t is not None:
            tangent = tangent + slope * torch.atanh(result) / a * a_t
        return tangent

    @staticmethod
    def backward(ctx, grad_out):
        result, a = ctx.saved_tensors
        slope = 1 - result * result
        return grad_out * slope * a, (grad_out * slope * torch.atanh(result) / a).sum().reshape(a.shape)


x = torch.randn(6, dtype=torch.double, requires_grad=True) * 0.5
x = x.detach().requires_grad_(True)
a = torch.tensor(1.3, dtype=torch.double, requires_grad=True)
print('ScaledTanh gradcheck (forward and backward AD):',
      gradcheck(ScaledTanh.apply, (x, a), check_forward_ad=True))
with fwAD.dual_level():
    dual_x = fwAD.make_dual(x.detach(), torch.ones(6, dtype=torch.double))
    dual_a = fwAD.make_dual(a.detach(), torch.tensor(0.5, dtype=torch.double))
    forward_tangent = fwAD.unpack_dual(ScaledTanh.apply(dual_x, dual_a)).tangent
slope = 1 / torch.cosh(a.detach() * x.detach()) ** 2
print('ScaledTanh tangent agrees with the derivative:',
      torch.allclose(forward_tangent, slope * (a.detach() + 0.5 * x.detach())))


# torch.func's jvp over the same module, parameters given as a dict
def func(params, input):
    return functional_call(model, params, input)


_, jvp_out = torch.func.jvp(lambda p: func(p, input), (params,), (tangents,))
print('func.jvp agrees with forward AD:', torch.allclose(jvp_out, jvp2, atol=1e-6))


# ---- Double backward with custom functions ----
class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        # Because we are saving one of the inputs use `save_for_backward`
        # Save non-tensors and non-inputs/non-outputs directly on ctx
        ctx.save_for_backward(x)
        return x**2

    @staticmethod
    def backward(ctx, grad_out):
        # A function support double backward automatically if autograd
        # is able to record the computations performed in backward
        x, = ctx.saved_tensors
        return grad_out * 2 * x


# Use double precision because finite differencing method magnifies errors
x = torch.rand(3, 3, requires_grad=True, dtype=torch.double)
print('Square:', torch.autograd.gradcheck(Square.apply, x), torch.autograd.gradgradcheck(Square.apply, x))


class Exp(torch.autograd.Function):
    # Simple case where everything goes well
    @staticmethod
    def forward(ctx, x):
        # This time we save the output
        result = torch.exp(x)
        # Note that we should use `save_for_backward` here when
        # the tensor saved is an ouptut (or an input).
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_out):
        result, = ctx.saved_tensors
        return result * grad_out


x = torch.tensor(1., requires_grad=True, dtype=torch.double).clone()
# Validate our gradients using gradcheck
print('Exp:', torch.autograd.gradcheck(Exp.apply, x), torch.autograd.gradgradcheck(Exp.apply, x))
y = Exp.apply(x)
print('Exp grad_fn', type(y.grad_fn).__name__, 'saved output is y:', y.grad_fn.saved_tensors[0] is y)


class Sinh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        expx = torch.exp(x)
        expnegx = torch.exp(-x)
        ctx.save_for_backward(expx, expnegx)
        # In order to be able to save the intermediate results, we need to
        # include them as outputs.
        return (expx - expnegx) / 2, expx, expnegx

    @staticmethod
    def backward(ctx, grad_out, _grad_out_exp, _grad_out_negexp):
        expx, expnegx = ctx.saved_tensors
        grad_input = grad_out * (expx + expnegx) / 2
        # We cannot skip accumulating these even though we won't use the outputs
        # directly. They will be used later in the second backward.
        grad_input += _grad_out_exp * expx
        grad_input -= _grad_out_negexp * expnegx
        return grad_input


def sinh(x):
    # Create a wrapper that only returns the first output
    return Sinh.apply(x)[0]


x = torch.rand(3, 3, requires_grad=True, dtype=torch.double)
print('Sinh:', torch.autograd.gradcheck(sinh, x), torch.autograd.gradgradcheck(sinh, x))


class SinhBad(torch.autograd.Function):
    # This is an example of what NOT to do!
    @staticmethod
    def forward(ctx, x):
        expx = torch.exp(x)
        expnegx = torch.exp(-x)
        ctx.expx = expx
        ctx.expnegx = expnegx
        return (expx - expnegx) / 2

    @staticmethod
    def backward(ctx, grad_out):
        expx = ctx.expx
        expnegx = ctx.expnegx
        grad_input = grad_out * (expx + expnegx) / 2
        return grad_input


x = torch.rand(3, 3, requires_grad=True, dtype=torch.double)
print('SinhBad: gradcheck', torch.autograd.gradcheck(SinhBad.apply, x),
      'gradgradcheck', torch.autograd.gradgradcheck(SinhBad.apply, x, raise_exception=False))


def cube_forward(x):
    return x**3


def cube_backward(grad_out, x):
    return grad_out * 3 * x**2


def cube_backward_backward(grad_out, sav_grad_out, x):
    return grad_out * sav_grad_out * 6 * x


def cube_backward_backward_grad_out(grad_out, x):
    return grad_out * 3 * x**2


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return cube_forward(x)

    @staticmethod
    def backward(ctx, grad_out):
        x, = ctx.saved_tensors
        return CubeBackward.apply(grad_out, x)


class CubeBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_out, x):
        ctx.save_for_backward(x, grad_out)
        return cube_backward(grad_out, x)

    @staticmethod
    def backward(ctx, grad_out):
        x, sav_grad_out = ctx.saved_tensors
        dx = cube_backward_backward(grad_out, sav_grad_out, x)
        dgrad_out = cube_backward_backward_grad_out(grad_out, x)
        return dgrad_out, dx


x = torch.tensor(2., requires_grad=True, dtype=torch.double)
print('Cube:', torch.autograd.gradcheck(Cube.apply, x), torch.autograd.gradgradcheck(Cube.apply, x))


class NumpyCube(torch.autograd.Function):
    """A backward done outside autograd (NumPy), so it is marked once-differentiable."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, = ctx.saved_tensors
        return torch.from_numpy(grad_out.numpy() * 3 * x.numpy() ** 2)


x = torch.rand(4, requires_grad=True, dtype=torch.double)
print('NumpyCube gradcheck:', torch.autograd.gradcheck(NumpyCube.apply, x))
(g,) = torch.autograd.grad((NumpyCube.apply(x) ** 2).sum(), x, create_graph=True)
print('once_differentiable grad requires_grad:', g.requires_grad)
try:
    g.sum().backward()
except RuntimeError as error:
    print('second backward refused:', type(error).__name__, 'once_differentiable' in str(error))


# ---- Training with Hessian-vector products (Newton-CG) ----
true_w = torch.tensor([0.8, -0.5, 0.3], dtype=torch.double)
features = torch.rand(64, 3, dtype=torch.double) * 2 - 1
targets = (features @ true_w + 0.5 * Cube.apply(features @ true_w)) + 0.01 * torch.randn(64, dtype=torch.double)
w = (0.1 * torch.randn(3, dtype=torch.double)).requires_grad_(True)


def loss_fn(w):
    z = features @ w
    return ((z + 0.5 * Cube.apply(z) - targets) ** 2).mean() + 1e-3 * (w ** 2).sum()


def hvp_double_backward(w, v):
    (g,) = torch.autograd.grad(loss_fn(w), w, create_graph=True)
    (hv,) = torch.autograd.grad(g @ v, w)
    return hv


def plain_loss_fn(w):
    # torch.func transforms need a Function with setup_context: the same loss with a plain cube
    z = features @ w
    return ((z + 0.5 * z ** 3 - targets) ** 2).mean() + 1e-3 * (w ** 2).sum()


def hvp_forward_over_reverse(w, v):
    return torch.func.jvp(torch.func.grad(plain_loss_fn), (w.detach(),), (v,))[1]


def conjugate_gradient(hvp, b, steps=10):
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = r @ r
    for _ in range(steps):
        hp = hvp(p)
        alpha = rs / (p @ hp)
        x = x + alpha * p
        r = r - alpha * hp
        rs_new = r @ r
        if rs_new.sqrt() < 1e-10:
            break
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


hvp_gap = 0.0
for step in range(10):
    loss = loss_fn(w)
    (g,) = torch.autograd.grad(loss, w)
    v = torch.randn(3, dtype=torch.double)
    hvp_gap = max(hvp_gap, (hvp_double_backward(w, v) - hvp_forward_over_reverse(w, v)).abs().max().item())
    direction = conjugate_gradient(lambda p, w=w: hvp_double_backward(w, p) + 1e-2 * p, -g)  # damped Newton
    with torch.no_grad():  # backtracking (Armijo) along the Newton direction
        t = 1.0
        while loss_fn(w + t * direction) > loss + 1e-4 * t * (g @ direction) and t > 1e-4:
            t /= 2
        w += t * direction
    print(f"newton step {step} loss {loss.item():.6f} grad norm {g.norm().item():.3e}")

final_loss = loss_fn(w).item()
weight_error = (w.detach() - true_w).abs().max().item()
print(f"FINAL loss={final_loss:.6f} weight_error={weight_error:.4f} hvp_gap={hvp_gap:.2e}")
