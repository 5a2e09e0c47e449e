"""Session 50, lead: integration fixes found by the clean-clone CI of the merged lanes."""
import numpy as np

import chainrule
from chainrule import Tensor


def _numpy_cube_operators(namespace):
    """torch's custom_op_db numpy_cube/numpy_mul (NumPy kernels, register_autograd, register_vmap)."""
    library = chainrule.library

    @library.custom_op(f"{namespace}::numpy_mul", mutates_args=())
    def numpy_mul(x: Tensor, y: Tensor) -> Tensor:
        return chainrule.tensor(x.numpy() * y.numpy())

    def mul_setup(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    def mul_backward(ctx, grad):
        x, y = ctx.saved_tensors
        return numpy_mul(grad, y), numpy_mul(grad, x)

    def mul_vmap(info, in_dims, x, y):
        x = x.movedim(in_dims[0], 0) if in_dims[0] is not None else x.unsqueeze(0)
        y = y.movedim(in_dims[1], 0) if in_dims[1] is not None else y.unsqueeze(0)
        return numpy_mul(x, y), 0

    numpy_mul.register_autograd(mul_backward, setup_context=mul_setup)
    numpy_mul.register_vmap(mul_vmap)

    @library.custom_op(f"{namespace}::numpy_cube", mutates_args=())
    def numpy_cube(x: Tensor) -> tuple[Tensor, Tensor]:
        return chainrule.tensor(x.numpy() ** 3), chainrule.tensor(3 * x.numpy() ** 2)

    def cube_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output[1])

    def cube_backward(ctx, grad, grad_dx):
        x, dx = ctx.saved_tensors
        return numpy_mul(grad, dx) + 6 * numpy_mul(grad_dx, x)

    numpy_cube.register_autograd(cube_backward, setup_context=cube_setup)
    numpy_cube.register_vmap(lambda info, in_dims, x: (numpy_cube(x), (in_dims[0], in_dims[0])))
    return numpy_cube


def test_vmap_of_grad_through_a_numpy_custom_op_gives_each_slices_gradient():
    # mendBU recorded generate_vmap_rule Functions for replay; a custom operator's Function carries that
    # flag too, but its backward's operator calls ran their NumPy kernels unrecorded, so the replay gave
    # every slice slice 0's gradient (torch's custom_op_db NumpyCubeCustomOp, max |diff| 15.5)
    cube = _numpy_cube_operators("_s50_lead")

    def f(x):
        values, slopes = cube(x)
        return values.sum() + slopes.sum()

    x = chainrule.tensor([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]], dtype=chainrule.float64)
    batched = chainrule.func.vmap(chainrule.func.grad(f))(x)
    each = chainrule.stack([chainrule.func.grad(f)(row) for row in x])
    expected = 3 * x.numpy() ** 2 + 6 * x.numpy()
    np.testing.assert_allclose(each.numpy(), expected)
    np.testing.assert_allclose(batched.numpy(), expected)
