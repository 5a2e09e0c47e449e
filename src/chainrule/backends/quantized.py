"""torch.backends.quantized: the engine the quantized kernels run on. chainrule's dynamic
quantized layers reproduce torch's x86 (fbgemm) engine, torch's default on x86; the other names
are accepted, as torch accepts them, but compute the same way."""

engine = "x86"
supported_engines = ["qnnpack", "onednn", "x86", "fbgemm"]
