"""torch.ao.nn.quantized.dynamic: modules with int8 weights whose activations are quantized per
call from their own min/max (what ``torch.ao.quantization.quantize_dynamic`` swaps in)."""

from .modules import GRU, LSTM, GRUCell, Linear, LSTMCell, RNNCell

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "Linear", "RNNCell"]
