"""torch.utils.dlpack: DLPack exchange under the module path libraries import it from
(``from torch.utils.dlpack import from_dlpack, to_dlpack``; PyTorch Geometric does at import). The
functions are torch.from_dlpack/to_dlpack (ops/compat.py)."""

import enum

from ..ops.compat import from_dlpack, to_dlpack

__all__ = ["DLDeviceType", "from_dlpack", "to_dlpack"]


class DLDeviceType(enum.IntEnum):
    """DLPack's device codes (``__dlpack_device__()[0]``), torch's names and values."""

    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14
    kDLWebGPU = 15
    kDLHexagon = 16
    kDLMAIA = 17
