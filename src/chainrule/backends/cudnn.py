"""torch.backends.cudnn: chainrule has no cuDNN; the flags are kept (torch's defaults) and unused."""

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
