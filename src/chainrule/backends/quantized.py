"""torch.backends.quantized: the engine the quantized kernels run on. chainrule's dynamic
quantized layers reproduce torch's x86 (fbgemm) engine, torch's default on x86; the other
supported names are accepted, as torch accepts them, but compute the same way."""

import sys
import types

supported_engines = ["qnnpack", "onednn", "x86", "fbgemm"]
# the names torch's _get_qengine_id knows; of them only "none" has no engine on this build
_ENGINE_NAMES = {"none": "NoQEngine", **{name: name for name in supported_engines}}


class _QuantizedBackend(types.ModuleType):
    """The module itself, so that assigning ``engine`` is checked as torch's setter checks it."""

    @property
    def engine(self) -> str:
        return self.__dict__["_engine"]

    @engine.setter
    def engine(self, value) -> None:
        if not isinstance(value, str) or value not in _ENGINE_NAMES:
            raise RuntimeError(f"{value} is not a valid value for quantized engine")
        if value not in supported_engines:
            raise RuntimeError(f"quantized engine {_ENGINE_NAMES[value]} is not supported")
        self.__dict__["_engine"] = value


_engine = "x86"
sys.modules[__name__].__class__ = _QuantizedBackend
