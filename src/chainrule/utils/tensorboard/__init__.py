"""chainrule.utils.tensorboard: ``SummaryWriter`` writing TensorBoard event files, as
torch.utils.tensorboard does, through the ``tensorboard`` package (``pip install
"chainrule[tensorboard]"``).
"""

from __future__ import annotations

try:
    import tensorboard  # noqa: F401
except ImportError as error:
    raise ImportError('chainrule.utils.tensorboard needs the tensorboard package: '
                      'pip install "chainrule[tensorboard]"') from error

from tensorboard.summary.writer.record_writer import RecordWriter  # noqa: E402

from . import summary  # noqa: E402
from .writer import FileWriter, SummaryWriter  # noqa: E402

__all__ = ["FileWriter", "RecordWriter", "SummaryWriter", "summary"]
