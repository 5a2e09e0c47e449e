"""torch.backends.mkldnn (oneDNN): not used by chainrule; ``enabled`` is kept and unused."""

enabled = True


def is_available() -> bool:
    return False
