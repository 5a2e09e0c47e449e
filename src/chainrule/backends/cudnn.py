"""torch.backends.cudnn: chainrule has no cuDNN; the flags are kept with torch's defaults.

``allow_tf32`` is read as torch reads it for convolutions: with ``backends.cuda.conv.tensor_cores``
on, float32 convolutions on CuPy run in TF32 on the tensor cores unless it is False. The others
change nothing.
"""

enabled = True
benchmark = False
benchmark_limit = 10
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version() -> None:
    """None: no cuDNN library is loaded (torch answers the same on a CPU build)."""
    return None
