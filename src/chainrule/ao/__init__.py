"""torch.ao: torch's "architecture optimization" (quantization, sparsity). chainrule has no quantized
tensors or kernels; only the float-model pieces that model code builds before any quantization
pass are here (see quantization/)."""
