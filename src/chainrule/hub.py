"""chainrule.hub: torch.hub's directory settings; loading raises NotImplementedError.

Hub entries are torch modules and pickled checkpoints fetched from the network; chainrule never
unpickles (see serialization.py) and cannot run hubconf code written against torch's C++ ops, so
``load``/``list``/``help``/``load_state_dict_from_url`` say so instead of being absent. Convert
weights to safetensors and load them with ``chainrule.load``.
"""

from __future__ import annotations

import os
import re
import sys
from urllib.parse import urlparse  # noqa: F401  (torch.hub re-exports it; timm imports it from here)

__all__ = ["get_dir", "set_dir", "load", "list", "help", "load_state_dict_from_url", "download_url_to_file"]

# the hash prefix in a checkpoint's file name (``resnet18-f37072fd.pth``), as torch.hub spells it;
# libraries that fetch their own weights (timm) import it to check downloads
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")

_hub_dir = None
_NOT_SUPPORTED = ("chainrule.hub.{} is not supported: hub models are torch modules and pickled "
                  "checkpoints; save the weights as safetensors and load them with chainrule.load")


def get_dir() -> str:
    """``$TORCH_HOME/hub`` (``~/.cache/torch/hub`` by default), or what ``set_dir`` set."""
    if _hub_dir is not None:
        return _hub_dir
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return os.path.join(os.path.expanduser(torch_home), "hub")


def set_dir(d) -> None:
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def load(repo_or_dir, model, *args, **kwargs):
    raise NotImplementedError(_NOT_SUPPORTED.format("load"))


def list(github, force_reload: bool = False, **kwargs):  # noqa: A001 - torch.hub's name
    raise NotImplementedError(_NOT_SUPPORTED.format("list"))


def help(github, model, force_reload: bool = False, **kwargs):  # noqa: A001 - torch.hub's name
    raise NotImplementedError(_NOT_SUPPORTED.format("help"))


def load_state_dict_from_url(url, model_dir=None, map_location=None, progress: bool = True, **kwargs):
    raise NotImplementedError(_NOT_SUPPORTED.format("load_state_dict_from_url"))


def download_url_to_file(url, dst, hash_prefix=None, progress: bool = True):
    raise NotImplementedError(_NOT_SUPPORTED.format("download_url_to_file"))


class _FallbackProgressBar:
    """torch.hub's stand-in for tqdm when tqdm is not installed: counts ``update``s and writes the
    percentage (or bytes) to stderr; like torch's, it is not iterable."""

    def __init__(self, total=None, disable=False, unit=None, *args, **kwargs):
        self.total, self.disable, self.n = total, disable, 0

    def update(self, n):
        if self.disable:
            return
        self.n += n
        progress = f"{self.n:.1f} bytes" if self.total is None else f"{100 * self.n / float(self.total):.1f}%"
        sys.stderr.write(f"\r{progress}")
        sys.stderr.flush()

    def set_description(self, *args, **kwargs):
        pass

    def write(self, s):
        sys.stderr.write(f"{s}\n")

    def close(self):
        self.disable = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if not self.disable:
            sys.stderr.write("\n")


def __getattr__(name: str):
    # torch.hub re-exports tqdm (``from torch.hub import tqdm`` in scripts), or its stand-in when
    # tqdm is not installed; imported on first use, not at ``import chainrule``
    if name == "tqdm":
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = _FallbackProgressBar
        globals()["tqdm"] = tqdm
        return tqdm
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
