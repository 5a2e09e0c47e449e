"""Session 25, ctorargs lane: hostile or mistyped constructor arguments, run on torch and chainrule.

Each case is a callable taking the library (torch or chainrule) and building one thing (a module,
an optimizer, a scheduler, a DataLoader) from arguments a user typed by hand. ``outcome`` records
whether it raised, the exception class and message, and the warnings it gave, so a test can compare
the two libraries case by case.
"""

from __future__ import annotations

import functools
import math
import re
import warnings


def _params(lib, n=1):
    return [lib.nn.Parameter(lib.ones(2)) for _ in range(n)]


def _opt(lib):
    return lib.optim.SGD(_params(lib), lr=0.1)


def _data(lib):
    return lib.utils.data.TensorDataset(lib.arange(6.0))


def _sampler(lib):
    return lib.utils.data.SequentialSampler(range(6))


def _batch_sampler(lib):
    return lib.utils.data.BatchSampler(_sampler(lib), 2, False)


def _nonleaf(lib):
    return lib.ones(2, requires_grad=True) * 2


def _dup_groups(lib):
    p = lib.nn.Parameter(lib.ones(2))
    return [{"params": [p]}, {"params": [p]}]


nn = "nn"

CASES = {
    # --- Linear / Bilinear
    "Linear_neg_in": lambda L: L.nn.Linear(-1, 3),
    "Linear_neg_out": lambda L: L.nn.Linear(3, -2),
    "Linear_float_in": lambda L: L.nn.Linear(2.5, 3),
    "Linear_str_in": lambda L: L.nn.Linear("3", 3),
    "Linear_zero": lambda L: L.nn.Linear(0, 3),
    "Bilinear_neg": lambda L: L.nn.Bilinear(2, -1, 3),
    "Bilinear_float": lambda L: L.nn.Bilinear(2, 2, 1.5),
    "LazyLinear_neg": lambda L: L.nn.LazyLinear(-3),
    # --- Conv
    "Conv2d_groups_in": lambda L: L.nn.Conv2d(3, 4, 3, groups=2),
    "Conv2d_groups_out": lambda L: L.nn.Conv2d(4, 3, 3, groups=2),
    "Conv2d_groups_zero": lambda L: L.nn.Conv2d(4, 4, 3, groups=0),
    "Conv2d_groups_neg": lambda L: L.nn.Conv2d(4, 4, 3, groups=-1),
    "Conv2d_kernel_zero": lambda L: L.nn.Conv2d(1, 1, 0),
    "Conv2d_kernel_neg": lambda L: L.nn.Conv2d(1, 1, -2),
    "Conv2d_kernel_float": lambda L: L.nn.Conv2d(1, 1, 2.5),
    "Conv2d_kernel_tuple3": lambda L: L.nn.Conv2d(1, 1, (2, 2, 2)),
    "Conv2d_stride_zero": lambda L: L.nn.Conv2d(1, 1, 3, stride=0),
    "Conv2d_same_stride2": lambda L: L.nn.Conv2d(1, 1, 3, stride=2, padding="same"),
    "Conv2d_padding_bogus_str": lambda L: L.nn.Conv2d(1, 1, 3, padding="full"),
    "Conv2d_padding_mode_bogus": lambda L: L.nn.Conv2d(1, 1, 3, padding_mode="bogus"),
    "Conv2d_dilation_zero": lambda L: L.nn.Conv2d(1, 1, 3, dilation=0),
    "Conv2d_padding_neg": lambda L: L.nn.Conv2d(1, 1, 3, padding=-1),
    "Conv2d_in_zero": lambda L: L.nn.Conv2d(0, 1, 3),
    "Conv2d_in_neg": lambda L: L.nn.Conv2d(-1, 1, 3),
    "Conv2d_same_even_kernel": lambda L: L.nn.Conv2d(1, 1, 4, padding="same"),
    "Conv2d_valid_stride2": lambda L: L.nn.Conv2d(1, 1, 3, stride=2, padding="valid"),
    "Conv1d_groups_in": lambda L: L.nn.Conv1d(3, 4, 3, groups=2),
    "Conv1d_kernel_zero": lambda L: L.nn.Conv1d(1, 1, 0),
    "Conv1d_same_stride2": lambda L: L.nn.Conv1d(1, 1, 3, stride=2, padding="same"),
    "Conv1d_padding_mode_bogus": lambda L: L.nn.Conv1d(1, 1, 3, padding_mode="bogus"),
    "Conv3d_groups_zero": lambda L: L.nn.Conv3d(2, 2, 3, groups=0),
    "Conv3d_dilation_zero": lambda L: L.nn.Conv3d(1, 1, 3, dilation=0),
    "Conv3d_stride_zero": lambda L: L.nn.Conv3d(1, 1, 3, stride=0),
    "ConvT2d_groups_in": lambda L: L.nn.ConvTranspose2d(3, 4, 3, groups=2),
    "ConvT2d_groups_zero": lambda L: L.nn.ConvTranspose2d(2, 2, 3, groups=0),
    "ConvT2d_padding_mode_reflect": lambda L: L.nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect"),
    "ConvT2d_padding_same": lambda L: L.nn.ConvTranspose2d(1, 1, 3, padding="same"),
    "ConvT1d_kernel_zero": lambda L: L.nn.ConvTranspose1d(1, 1, 0),
    "ConvT2d_output_padding_big": lambda L: L.nn.ConvTranspose2d(1, 1, 3, output_padding=2),
    "LazyConv2d_groups_zero": lambda L: L.nn.LazyConv2d(4, 3, groups=0),
    # --- Embedding / EmbeddingBag
    "Embedding_padding_idx_big": lambda L: L.nn.Embedding(5, 3, padding_idx=5),
    "Embedding_padding_idx_neg_big": lambda L: L.nn.Embedding(5, 3, padding_idx=-6),
    "Embedding_padding_idx_neg_ok": lambda L: L.nn.Embedding(5, 3, padding_idx=-1),
    "Embedding_max_norm_neg": lambda L: L.nn.Embedding(5, 3, max_norm=-1.0),
    "Embedding_neg_num": lambda L: L.nn.Embedding(-5, 3),
    "Embedding_weight_shape": lambda L: L.nn.Embedding(5, 3, _weight=L.ones(4, 3)),
    "Embedding_from_pretrained_1d": lambda L: L.nn.Embedding.from_pretrained(L.ones(4)),
    "EmbeddingBag_mode_bogus": lambda L: L.nn.EmbeddingBag(5, 3, mode="bogus"),
    "EmbeddingBag_padding_idx_big": lambda L: L.nn.EmbeddingBag(5, 3, padding_idx=7),
    "EmbeddingBag_padding_idx_neg_big": lambda L: L.nn.EmbeddingBag(5, 3, padding_idx=-9),
    "EmbeddingBag_max_norm_neg": lambda L: L.nn.EmbeddingBag(5, 3, max_norm=-2.0),
    # --- Dropout family
    "Dropout_neg": lambda L: L.nn.Dropout(-0.1),
    "Dropout_big": lambda L: L.nn.Dropout(1.5),
    "Dropout_str": lambda L: L.nn.Dropout("0.5"),
    "Dropout_one": lambda L: L.nn.Dropout(1.0),
    "Dropout1d_neg": lambda L: L.nn.Dropout1d(-0.5),
    "Dropout2d_big": lambda L: L.nn.Dropout2d(2),
    "Dropout3d_neg": lambda L: L.nn.Dropout3d(-1),
    "AlphaDropout_big": lambda L: L.nn.AlphaDropout(1.1),
    "FeatureAlphaDropout_neg": lambda L: L.nn.FeatureAlphaDropout(-0.2),
    "Dropout_none": lambda L: L.nn.Dropout(None),
    # --- Normalisation
    "BatchNorm1d_zero": lambda L: L.nn.BatchNorm1d(0),
    "BatchNorm2d_neg": lambda L: L.nn.BatchNorm2d(-3),
    "BatchNorm2d_float": lambda L: L.nn.BatchNorm2d(2.5),
    "InstanceNorm1d_neg": lambda L: L.nn.InstanceNorm1d(-1, affine=True),
    "LayerNorm_neg": lambda L: L.nn.LayerNorm(-3),
    "LayerNorm_neg_tuple": lambda L: L.nn.LayerNorm((2, -3)),
    "LayerNorm_float": lambda L: L.nn.LayerNorm(2.5),
    "LayerNorm_str": lambda L: L.nn.LayerNorm("a"),
    "GroupNorm_not_dividing": lambda L: L.nn.GroupNorm(3, 4),
    "GroupNorm_zero_groups": lambda L: L.nn.GroupNorm(0, 4),
    "GroupNorm_neg_groups": lambda L: L.nn.GroupNorm(-2, 4),
    "RMSNorm_neg": lambda L: L.nn.RMSNorm(-2),
    "LocalResponseNorm_float": lambda L: L.nn.LocalResponseNorm(2.5),
    # --- RNNs
    "RNN_layers_zero": lambda L: L.nn.RNN(3, 4, num_layers=0),
    "RNN_layers_neg": lambda L: L.nn.RNN(3, 4, num_layers=-1),
    "RNN_layers_float": lambda L: L.nn.RNN(3, 4, num_layers=1.5),
    "RNN_hidden_zero": lambda L: L.nn.RNN(3, 0),
    "RNN_hidden_neg": lambda L: L.nn.RNN(3, -4),
    "RNN_hidden_float": lambda L: L.nn.RNN(3, 4.0),
    "RNN_dropout_neg": lambda L: L.nn.RNN(3, 4, num_layers=2, dropout=-0.1),
    "RNN_dropout_big": lambda L: L.nn.RNN(3, 4, num_layers=2, dropout=1.5),
    "RNN_dropout_bool": lambda L: L.nn.RNN(3, 4, num_layers=2, dropout=True),
    "RNN_dropout_one_layer": lambda L: L.nn.RNN(3, 4, dropout=0.5),
    "RNN_nonlinearity_bogus": lambda L: L.nn.RNN(3, 4, nonlinearity="bogus"),
    "RNN_proj_size": lambda L: L.nn.RNN(3, 4, proj_size=2),
    "LSTM_proj_equal": lambda L: L.nn.LSTM(3, 4, proj_size=4),
    "LSTM_proj_neg": lambda L: L.nn.LSTM(3, 4, proj_size=-1),
    "LSTM_layers_zero": lambda L: L.nn.LSTM(3, 4, num_layers=0),
    "LSTM_dropout_one_layer": lambda L: L.nn.LSTM(3, 4, dropout=0.2),
    "GRU_proj": lambda L: L.nn.GRU(3, 4, proj_size=2),
    "GRU_dropout_big": lambda L: L.nn.GRU(3, 4, num_layers=2, dropout=2),
    "GRU_layers_zero": lambda L: L.nn.GRU(3, 4, num_layers=0),
    "RNNCell_nonlinearity": lambda L: L.nn.RNNCell(3, 4, nonlinearity="gelu"),
    "LSTMCell_neg": lambda L: L.nn.LSTMCell(3, -4),
    "GRUCell_neg": lambda L: L.nn.GRUCell(-3, 4),
    "RNN_mode_kw": lambda L: L.nn.RNN(3, 4, 2, "bogus"),
    # --- attention / transformer
    "MHA_not_divisible": lambda L: L.nn.MultiheadAttention(10, 3),
    "MHA_heads_zero": lambda L: L.nn.MultiheadAttention(8, 0),
    "MHA_embed_zero": lambda L: L.nn.MultiheadAttention(0, 2),
    "MHA_embed_neg": lambda L: L.nn.MultiheadAttention(-4, 2),
    "TEL_mismatch": lambda L: L.nn.TransformerEncoderLayer(10, 3),
    "TEL_activation_bogus": lambda L: L.nn.TransformerEncoderLayer(8, 2, activation="bogus"),
    "TDL_mismatch": lambda L: L.nn.TransformerDecoderLayer(10, 4),
    "TDL_activation_bogus": lambda L: L.nn.TransformerDecoderLayer(8, 2, activation="bogus"),
    "Transformer_mismatch": lambda L: L.nn.Transformer(d_model=10, nhead=3, num_encoder_layers=1,
                                                        num_decoder_layers=1, dim_feedforward=8),
    "TE_layers_neg": lambda L: L.nn.TransformerEncoder(L.nn.TransformerEncoderLayer(8, 2, 16), -1),
    "TE_not_layer": lambda L: L.nn.TransformerEncoder("x", 2),
    # --- pools
    "MaxPool2d_kernel_zero": lambda L: L.nn.MaxPool2d(0),
    "MaxPool2d_stride_zero": lambda L: L.nn.MaxPool2d(2, stride=0),
    "MaxPool2d_pad_big": lambda L: L.nn.MaxPool2d(2, padding=2),
    "MaxPool1d_kernel_neg": lambda L: L.nn.MaxPool1d(-1),
    "AvgPool2d_kernel_zero": lambda L: L.nn.AvgPool2d(0),
    "AvgPool2d_pad_big": lambda L: L.nn.AvgPool2d(3, padding=2),
    "AvgPool1d_stride_zero": lambda L: L.nn.AvgPool1d(2, stride=0),
    "LPPool2d_kernel_zero": lambda L: L.nn.LPPool2d(2, 0),
    "AdaptiveAvgPool2d_neg": lambda L: L.nn.AdaptiveAvgPool2d(-1),
    "AdaptiveAvgPool1d_neg": lambda L: L.nn.AdaptiveAvgPool1d(-3),
    "AdaptiveMaxPool2d_neg": lambda L: L.nn.AdaptiveMaxPool2d((2, -1)),
    "MaxUnpool2d_kernel_zero": lambda L: L.nn.MaxUnpool2d(0),
    "FractionalMaxPool2d_none": lambda L: L.nn.FractionalMaxPool2d(2),
    "FractionalMaxPool2d_ratio_big": lambda L: L.nn.FractionalMaxPool2d(2, output_ratio=1.5),
    "FractionalMaxPool2d_both": lambda L: L.nn.FractionalMaxPool2d(2, output_size=3, output_ratio=0.5),
    # --- shape modules
    "Upsample_neither": lambda L: L.nn.Upsample(),
    "Upsample_both": lambda L: L.nn.Upsample(size=4, scale_factor=2),
    "Upsample_mode_bogus": lambda L: L.nn.Upsample(scale_factor=2, mode="bogus"),
    "Upsample_align_nearest": lambda L: L.nn.Upsample(scale_factor=2, mode="nearest", align_corners=True),
    "UpsamplingNearest2d_neither": lambda L: L.nn.UpsamplingNearest2d(),
    "Flatten_str": lambda L: L.nn.Flatten("a"),
    "Unflatten_sizes_str": lambda L: L.nn.Unflatten(1, "ab"),
    "Unflatten_sizes_float": lambda L: L.nn.Unflatten(1, (2.0, 3)),
    "Unflatten_dim_str_int_sizes": lambda L: L.nn.Unflatten("x", (2, 3)),
    "Unflatten_named_bad": lambda L: L.nn.Unflatten("x", ((2, 3),)),
    "Unflatten_sizes_int": lambda L: L.nn.Unflatten(1, 6),
    "PixelShuffle_float": lambda L: L.nn.PixelShuffle(2.0),
    "PixelShuffle_zero": lambda L: L.nn.PixelShuffle(0),
    "PixelUnshuffle_neg": lambda L: L.nn.PixelUnshuffle(-2),
    "Fold_no_kernel": lambda L: L.nn.Fold(4),
    "Fold_kernel_zero": lambda L: L.nn.Fold(4, 0),
    "Unfold_kernel_zero": lambda L: L.nn.Unfold(0),
    "Unfold_stride_zero": lambda L: L.nn.Unfold(2, stride=0),
    "Softmax_str_dim": lambda L: L.nn.Softmax(dim="x"),
    "Softmax_float_dim": lambda L: L.nn.Softmax(dim=1.5),
    "LogSoftmax_str_dim": lambda L: L.nn.LogSoftmax(dim="x"),
    "Softmin_str_dim": lambda L: L.nn.Softmin(dim="x"),
    "GLU_str_dim": lambda L: L.nn.GLU(dim="x"),
    "ZeroPad2d_float": lambda L: L.nn.ZeroPad2d(1.5),
    "ReflectionPad2d_tuple3": lambda L: L.nn.ReflectionPad2d((1, 1, 1)),
    "ConstantPad1d_no_value": lambda L: L.nn.ConstantPad1d(2),
    "Threshold_missing": lambda L: L.nn.Threshold(0.1),
    "Hardtanh_bad_range": lambda L: L.nn.Hardtanh(1.0, -1.0),
    "Softplus_beta_str": lambda L: L.nn.Softplus(beta="x"),
    "PReLU_zero": lambda L: L.nn.PReLU(0),
    "PReLU_neg": lambda L: L.nn.PReLU(-1),
    "ChannelShuffle_float": lambda L: L.nn.ChannelShuffle(2.5),
    # --- losses
    "CrossEntropyLoss_reduction": lambda L: L.nn.CrossEntropyLoss(reduction="bogus"),
    "CrossEntropyLoss_smoothing_neg": lambda L: L.nn.CrossEntropyLoss(label_smoothing=-0.1),
    "CrossEntropyLoss_smoothing_big": lambda L: L.nn.CrossEntropyLoss(label_smoothing=1.5),
    "CrossEntropyLoss_size_average": lambda L: L.nn.CrossEntropyLoss(size_average=False),
    "CrossEntropyLoss_reduce": lambda L: L.nn.CrossEntropyLoss(reduce=False),
    "MSELoss_reduction": lambda L: L.nn.MSELoss(reduction="bogus"),
    "MSELoss_reduction_none_obj": lambda L: L.nn.MSELoss(reduction=None),
    "L1Loss_reduction": lambda L: L.nn.L1Loss(reduction="avg"),
    "NLLLoss_reduction": lambda L: L.nn.NLLLoss(reduction="bogus"),
    "BCELoss_reduction": lambda L: L.nn.BCELoss(reduction="bogus"),
    "BCEWithLogits_reduction": lambda L: L.nn.BCEWithLogitsLoss(reduction="bogus"),
    "HuberLoss_delta_neg": lambda L: L.nn.HuberLoss(delta=-1.0),
    "SmoothL1Loss_beta_neg": lambda L: L.nn.SmoothL1Loss(beta=-1.0),
    "KLDivLoss_reduction": lambda L: L.nn.KLDivLoss(reduction="bogus"),
    "TripletMarginWithDistance_not_callable": lambda L: L.nn.TripletMarginWithDistanceLoss(distance_function=3),
    "CTCLoss_reduction": lambda L: L.nn.CTCLoss(reduction="bogus"),
    # --- containers
    "Sequential_not_module": lambda L: L.nn.Sequential(3),
    "Sequential_str": lambda L: L.nn.Sequential("relu"),
    "Sequential_func": lambda L: L.nn.Sequential(L.relu),
    "Sequential_dict_not_module": lambda L: L.nn.Sequential(__import__("collections").OrderedDict(a=3)),
    "ModuleList_not_module": lambda L: L.nn.ModuleList([L.nn.ReLU(), 3]),
    "ModuleList_not_iterable": lambda L: L.nn.ModuleList(3),
    "ModuleList_single_module": lambda L: L.nn.ModuleList(L.nn.ReLU()),
    "ModuleDict_not_module": lambda L: L.nn.ModuleDict({"a": 3}),
    "ModuleDict_list_bad": lambda L: L.nn.ModuleDict([("a",)]),
    "ModuleDict_not_iterable": lambda L: L.nn.ModuleDict(3),
    "ParameterList_int": lambda L: L.nn.ParameterList([3]),
    "ParameterDict_int": lambda L: L.nn.ParameterDict({"a": 3}),
    "ParameterDict_not_iterable": lambda L: L.nn.ParameterDict(3),
    "ParameterDict_list_bad": lambda L: L.nn.ParameterDict([("a",)]),
    "Parameter_not_tensor": lambda L: L.nn.Parameter([1.0, 2.0]),
    "Identity_args": lambda L: L.nn.Identity(3, x=4),
    # --- optimisers
    "SGD_lr_neg": lambda L: L.optim.SGD(_params(L), lr=-0.1),
    "SGD_momentum_neg": lambda L: L.optim.SGD(_params(L), lr=0.1, momentum=-0.5),
    "SGD_wd_neg": lambda L: L.optim.SGD(_params(L), lr=0.1, weight_decay=-1),
    "SGD_nesterov_no_momentum": lambda L: L.optim.SGD(_params(L), lr=0.1, nesterov=True),
    "SGD_nesterov_dampening": lambda L: L.optim.SGD(_params(L), lr=0.1, momentum=0.9, dampening=0.1,
                                                    nesterov=True),
    "SGD_empty": lambda L: L.optim.SGD([], lr=0.1),
    "SGD_single_tensor": lambda L: L.optim.SGD(L.nn.Parameter(L.ones(2)), lr=0.1),
    "SGD_single_double_tensor": lambda L: L.optim.SGD(L.nn.Parameter(L.ones(2, dtype=L.float64)), lr=0.1),
    "SGD_set": lambda L: L.optim.SGD(set(_params(L)), lr=0.1),
    "SGD_dup_in_group": lambda L: L.optim.SGD([_params(L)[0]] * 2, lr=0.1),
    "SGD_dup_across_groups": lambda L: L.optim.SGD(_dup_groups(L), lr=0.1),
    "SGD_group_missing_params": lambda L: L.optim.SGD([{"lr": 0.1}], lr=0.1),
    "SGD_nonleaf": lambda L: L.optim.SGD([_nonleaf(L)], lr=0.1),
    "SGD_not_tensor": lambda L: L.optim.SGD([1.0], lr=0.1),
    "SGD_lr_str": lambda L: L.optim.SGD(_params(L), lr="0.1"),
    "SGD_lr_tensor_2d": lambda L: L.optim.SGD(_params(L), lr=L.ones(2)),
    "SGD_int_params": lambda L: L.optim.SGD(3, lr=0.1),
    "SGD_none_params": lambda L: L.optim.SGD(None, lr=0.1),
    "SGD_mixed_groups": lambda L: L.optim.SGD([{"params": _params(L)}, _params(L)[0]], lr=0.1),
    "SGD_group_set": lambda L: L.optim.SGD([{"params": set(_params(L))}], lr=0.1),
    "Adam_lr_neg": lambda L: L.optim.Adam(_params(L), lr=-1e-3),
    "Adam_eps_neg": lambda L: L.optim.Adam(_params(L), eps=-1e-8),
    "Adam_beta1_one": lambda L: L.optim.Adam(_params(L), betas=(1.0, 0.999)),
    "Adam_beta2_neg": lambda L: L.optim.Adam(_params(L), betas=(0.9, -0.1)),
    "Adam_wd_neg": lambda L: L.optim.Adam(_params(L), weight_decay=-0.1),
    "Adam_empty": lambda L: L.optim.Adam([]),
    "Adam_single_tensor": lambda L: L.optim.Adam(L.nn.Parameter(L.ones(2))),
    "Adam_betas_tensor_mixed": lambda L: L.optim.Adam(_params(L), betas=(L.tensor(0.9), 0.99)),
    "AdamW_lr_neg": lambda L: L.optim.AdamW(_params(L), lr=-1.0),
    "AdamW_beta_big": lambda L: L.optim.AdamW(_params(L), betas=(0.9, 1.5)),
    "AdamW_eps_neg": lambda L: L.optim.AdamW(_params(L), eps=-1.0),
    "AdamW_wd_neg": lambda L: L.optim.AdamW(_params(L), weight_decay=-1.0),
    "RMSprop_lr_neg": lambda L: L.optim.RMSprop(_params(L), lr=-1.0),
    "RMSprop_alpha_neg": lambda L: L.optim.RMSprop(_params(L), alpha=-1.0),
    "RMSprop_momentum_neg": lambda L: L.optim.RMSprop(_params(L), momentum=-1.0),
    "RMSprop_eps_neg": lambda L: L.optim.RMSprop(_params(L), eps=-1.0),
    "Adagrad_lr_decay_neg": lambda L: L.optim.Adagrad(_params(L), lr_decay=-1.0),
    "Adagrad_init_acc_neg": lambda L: L.optim.Adagrad(_params(L), initial_accumulator_value=-1.0),
    "Adadelta_rho_big": lambda L: L.optim.Adadelta(_params(L), rho=1.5),
    "Adamax_beta_big": lambda L: L.optim.Adamax(_params(L), betas=(1.0, 0.9)),
    "NAdam_momentum_decay_neg": lambda L: L.optim.NAdam(_params(L), momentum_decay=-1.0),
    "RAdam_beta_neg": lambda L: L.optim.RAdam(_params(L), betas=(-0.1, 0.9)),
    "Rprop_etas_bad": lambda L: L.optim.Rprop(_params(L), etas=(1.5, 1.2)),
    "Rprop_lr_neg": lambda L: L.optim.Rprop(_params(L), lr=-1.0),
    "ASGD_lr_neg": lambda L: L.optim.ASGD(_params(L), lr=-1.0),
    "ASGD_wd_neg": lambda L: L.optim.ASGD(_params(L), weight_decay=-1.0),
    "LBFGS_two_groups": lambda L: L.optim.LBFGS([{"params": _params(L)}, {"params": _params(L)}]),
    "SparseAdam_lr_neg": lambda L: L.optim.SparseAdam(_params(L), lr=-1.0),
    # --- schedulers
    "StepLR_not_optimizer": lambda L: L.optim.lr_scheduler.StepLR("x", 2),
    "StepLR_module": lambda L: L.optim.lr_scheduler.StepLR(L.nn.Linear(2, 2), 2),
    "StepLR_step_zero": lambda L: L.optim.lr_scheduler.StepLR(_opt(L), 0),
    "ExponentialLR_not_optimizer": lambda L: L.optim.lr_scheduler.ExponentialLR(None, 0.5),
    "LambdaLR_wrong_count": lambda L: L.optim.lr_scheduler.LambdaLR(_opt(L), [lambda e: 1.0] * 2),
    "MultiStepLR_not_optimizer": lambda L: L.optim.lr_scheduler.MultiStepLR(3, [1, 2]),
    "OneCycleLR_total_zero": lambda L: L.optim.lr_scheduler.OneCycleLR(_opt(L), 1.0, total_steps=0),
    "OneCycleLR_total_neg": lambda L: L.optim.lr_scheduler.OneCycleLR(_opt(L), 1.0, total_steps=-5),
    "OneCycleLR_total_float": lambda L: L.optim.lr_scheduler.OneCycleLR(_opt(L), 1.0, total_steps=2.5),
    "OneCycleLR_nothing": lambda L: L.optim.lr_scheduler.OneCycleLR(_opt(L), 1.0),
    "OneCycleLR_epochs_zero": lambda L: L.optim.lr_scheduler.OneCycleLR(_opt(L), 1.0, epochs=0,
                                                                        steps_per_epoch=3),
    "OneCycleLR_spe_neg": lambda L: L.optim.lr_scheduler.OneCycleLR(_opt(L), 1.0, epochs=2,
                                                                    steps_per_epoch=-3),
    "OneCycleLR_pct_big": lambda L: L.optim.lr_scheduler.OneCycleLR(_opt(L), 1.0, total_steps=10,
                                                                    pct_start=1.5),
    "OneCycleLR_anneal_bogus": lambda L: L.optim.lr_scheduler.OneCycleLR(_opt(L), 1.0, total_steps=10,
                                                                         anneal_strategy="bogus"),
    "OneCycleLR_max_lr_list": lambda L: L.optim.lr_scheduler.OneCycleLR(_opt(L), [1.0, 2.0], total_steps=10),
    "CAWR_T0_zero": lambda L: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(_opt(L), T_0=0),
    "CAWR_T0_float": lambda L: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(_opt(L), T_0=2.5),
    "CAWR_Tmult_zero": lambda L: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(_opt(L), T_0=2, T_mult=0),
    "CAWR_Tmult_float": lambda L: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(_opt(L), T_0=2, T_mult=1.5),
    "CAWR_eta_min_tensor": lambda L: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(_opt(L), T_0=2,
                                                                                    eta_min=L.tensor(0.5)),
    "StepLR_resume_without_initial_lr": lambda L: L.optim.lr_scheduler.StepLR(_opt(L), 2, last_epoch=0),
    "CAWR_eta_min_str": lambda L: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(_opt(L), T_0=2, eta_min="x"),
    "CyclicLR_mode_bogus": lambda L: L.optim.lr_scheduler.CyclicLR(_opt(L), 0.1, 1.0, mode="bogus"),
    "CyclicLR_momentum_no_key": lambda L: L.optim.lr_scheduler.CyclicLR(
        L.optim.Adam(_params(L)), 0.1, 1.0),
    "ReduceLROnPlateau_factor_one": lambda L: L.optim.lr_scheduler.ReduceLROnPlateau(_opt(L), factor=1.0),
    "ReduceLROnPlateau_mode_bogus": lambda L: L.optim.lr_scheduler.ReduceLROnPlateau(_opt(L), mode="bogus"),
    "ReduceLROnPlateau_threshold_mode": lambda L: L.optim.lr_scheduler.ReduceLROnPlateau(
        _opt(L), threshold_mode="bogus"),
    "ReduceLROnPlateau_min_lr_count": lambda L: L.optim.lr_scheduler.ReduceLROnPlateau(_opt(L), min_lr=[0.1, 0.2]),
    "ReduceLROnPlateau_not_optimizer": lambda L: L.optim.lr_scheduler.ReduceLROnPlateau("x"),
    "LinearLR_start_zero": lambda L: L.optim.lr_scheduler.LinearLR(_opt(L), start_factor=0),
    "LinearLR_end_big": lambda L: L.optim.lr_scheduler.LinearLR(_opt(L), end_factor=1.5),
    "ConstantLR_factor_big": lambda L: L.optim.lr_scheduler.ConstantLR(_opt(L), factor=1.5),
    "PolynomialLR_not_optimizer": lambda L: L.optim.lr_scheduler.PolynomialLR(None),
    "SequentialLR_milestones": lambda L: L.optim.lr_scheduler.SequentialLR(
        _opt(L), [L.optim.lr_scheduler.ConstantLR(_opt(L))], milestones=[1]),
    "ChainedScheduler_empty": lambda L: L.optim.lr_scheduler.ChainedScheduler([]),
    "CosineAnnealingLR_not_optimizer": lambda L: L.optim.lr_scheduler.CosineAnnealingLR("x", 10),
    # --- DataLoader
    "DL_batch_zero": lambda L: L.utils.data.DataLoader(_data(L), batch_size=0),
    "DL_batch_neg": lambda L: L.utils.data.DataLoader(_data(L), batch_size=-1),
    "DL_batch_float": lambda L: L.utils.data.DataLoader(_data(L), batch_size=2.5),
    "DL_batch_bool": lambda L: L.utils.data.DataLoader(_data(L), batch_size=True),
    "DL_shuffle_sampler": lambda L: L.utils.data.DataLoader(_data(L), shuffle=True, sampler=_sampler(L)),
    "DL_batch_sampler_batch_size": lambda L: L.utils.data.DataLoader(_data(L), batch_size=2,
                                                                      batch_sampler=_batch_sampler(L)),
    "DL_batch_sampler_shuffle": lambda L: L.utils.data.DataLoader(_data(L), shuffle=True,
                                                                   batch_sampler=_batch_sampler(L)),
    "DL_batch_sampler_sampler": lambda L: L.utils.data.DataLoader(_data(L), sampler=_sampler(L),
                                                                   batch_sampler=_batch_sampler(L)),
    "DL_batch_sampler_drop_last": lambda L: L.utils.data.DataLoader(_data(L), drop_last=True,
                                                                     batch_sampler=_batch_sampler(L)),
    "DL_batch_none_drop_last": lambda L: L.utils.data.DataLoader(_data(L), batch_size=None, drop_last=True),
    "DL_workers_neg": lambda L: L.utils.data.DataLoader(_data(L), num_workers=-1),
    "DL_prefetch_no_workers": lambda L: L.utils.data.DataLoader(_data(L), prefetch_factor=2),
    "DL_prefetch_neg": lambda L: L.utils.data.DataLoader(_data(L), num_workers=1, prefetch_factor=-1),
    "DL_persistent_no_workers": lambda L: L.utils.data.DataLoader(_data(L), persistent_workers=True),
    "DL_timeout_neg": lambda L: L.utils.data.DataLoader(_data(L), timeout=-1),
    "DL_shuffle_str": lambda L: L.utils.data.DataLoader(_data(L), shuffle="yes"),
    "DL_sampler_not_sampler": lambda L: L.utils.data.DataLoader(_data(L), sampler=3),
    "DL_collate_not_callable": lambda L: L.utils.data.DataLoader(_data(L), collate_fn=3),
    "DL_dataset_none": lambda L: L.utils.data.DataLoader(None),
    "DL_generator_bad": lambda L: L.utils.data.DataLoader(_data(L), generator=3),
    "DL_mp_context_no_workers": lambda L: L.utils.data.DataLoader(_data(L), multiprocessing_context="spawn"),
    "DL_mp_context_bogus": lambda L: L.utils.data.DataLoader(_data(L), num_workers=1,
                                                              multiprocessing_context="bogus"),
    "DL_in_order_str": lambda L: L.utils.data.DataLoader(_data(L), in_order="x"),
    "BatchSampler_zero": lambda L: L.utils.data.BatchSampler(_sampler(L), 0, False),
    "BatchSampler_drop_last_str": lambda L: L.utils.data.BatchSampler(_sampler(L), 2, "x"),
    "RandomSampler_num_samples_zero": lambda L: L.utils.data.RandomSampler(range(5), num_samples=0),
    "RandomSampler_replacement_str": lambda L: L.utils.data.RandomSampler(range(5), replacement="x"),
    "WeightedRandomSampler_num_zero": lambda L: L.utils.data.WeightedRandomSampler([1.0, 2.0], 0),
    "WeightedRandomSampler_replacement_str": lambda L: L.utils.data.WeightedRandomSampler([1.0], 1, "x"),
}



def _stream(lib):
    class Stream(lib.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(4))

    return Stream()


# deprecated or odd options, dtypes no parameter can take, containers' keys, iterable datasets
CASES.update({
    "StepLR_verbose": lambda L: L.optim.lr_scheduler.StepLR(_opt(L), 2, verbose=True),
    "StepLR_verbose_false": lambda L: L.optim.lr_scheduler.StepLR(_opt(L), 2, verbose=False),
    "Plateau_verbose": lambda L: L.optim.lr_scheduler.ReduceLROnPlateau(_opt(L), verbose=True),
    "DL_many_workers": lambda L: L.utils.data.DataLoader(_data(L), num_workers=64),
    "DL_many_workers_iter": (
        lambda L: iter(L.utils.data.DataLoader(_data(L), num_workers=64, multiprocessing_context="bogus"))),
    "MHA_kdim_no_bias": lambda L: L.nn.MultiheadAttention(4, 2, kdim=3, vdim=3),
    "TEL_norm_first_nested": (
        lambda L: L.nn.TransformerEncoder(L.nn.TransformerEncoderLayer(4, 2, 8, norm_first=True), 2)),
    "TEL_batch_first_nested": (
        lambda L: L.nn.TransformerEncoder(L.nn.TransformerEncoderLayer(4, 2, 8, batch_first=True), 2)),
    "TEL_nested_off": (
        lambda L: L.nn.TransformerEncoder(L.nn.TransformerEncoderLayer(4, 2, 8), 2, enable_nested_tensor=False)),
    "TEL_odd_heads": (
        lambda L: L.nn.TransformerEncoder(L.nn.TransformerEncoderLayer(4, 1, 8, batch_first=True), 2)),
    "Transformer_default_small": lambda L: L.nn.Transformer(8, 2, 1, 1, 16),
    "Transformer_batch_first": lambda L: L.nn.Transformer(8, 2, 1, 1, 16, batch_first=True),
    "Upsample_align_bilinear": lambda L: L.nn.Upsample(scale_factor=2, mode="bilinear"),
    "Upsample_recompute": lambda L: L.nn.Upsample(size=4, recompute_scale_factor=True),
    "GRU_dropout_warn": lambda L: L.nn.GRU(3, 4, dropout=0.3),
    "RNN_dropout_int1": lambda L: L.nn.RNN(3, 4, dropout=1),
    "LSTM_dropout_1_2layers": lambda L: L.nn.LSTM(3, 4, 2, dropout=1.0),
    "SGD_dup_params_warn": lambda L: L.optim.Adam([_params(L)[0]] * 3),
    "SGD_generator_params": lambda L: L.optim.SGD((p for p in _params(L, 2)), lr=0.1),
    "SGD_named": lambda L: L.optim.SGD([("a", _params(L)[0])], lr=0.1),
    "SGD_named_dup": lambda L: L.optim.SGD([("a", _params(L)[0]), ("a", _params(L)[0])], lr=0.1),
    "SGD_named_mixed": (
        lambda L: L.optim.SGD([{"params": [("a", _params(L)[0])]}, {"params": _params(L)}], lr=0.1)),
    "SGD_dict_params": lambda L: L.optim.SGD({"a": _params(L)[0]}, lr=0.1),
    "SGD_group_params_tensor": lambda L: L.optim.SGD([{"params": _params(L)[0]}], lr=0.1),
    "SGD_group_unknown": lambda L: L.optim.SGD([{"params": _params(L), "foo": 1}], lr=0.1),
    "SGD_no_lr": lambda L: L.optim.SGD(_params(L)),
    "Adam_fused_foreach": lambda L: L.optim.Adam(_params(L), fused=True, foreach=True),
    "Adam_amsgrad_str": lambda L: L.optim.Adam(_params(L), amsgrad="yes"),
    "Adam_capturable": lambda L: L.optim.Adam(_params(L), capturable=True),
    "Adam_differentiable_fused": lambda L: L.optim.Adam(_params(L), differentiable=True, fused=True),
    "SGD_int_param": (
        lambda L: L.optim.SGD([L.nn.Parameter(L.ones(2, dtype=L.int64), requires_grad=False)], lr=0.1)),
    "SGD_no_grad_param": lambda L: L.optim.SGD([L.ones(2)], lr=0.1),
    "Embedding_from_pretrained_freeze": lambda L: L.nn.Embedding.from_pretrained(L.ones(3, 2), padding_idx=5),
    "EmbeddingBag_from_pretrained_1d": lambda L: L.nn.EmbeddingBag.from_pretrained(L.ones(4)),
    "Linear_device_bogus": lambda L: L.nn.Linear(2, 2, device="bogus"),
    "Linear_dtype_int": lambda L: L.nn.Linear(2, 2, dtype=L.int64),
    "Conv2d_dtype_str": lambda L: L.nn.Conv2d(1, 1, 2, dtype="float32"),
    "BatchNorm_dtype_int": lambda L: L.nn.BatchNorm1d(2, dtype=L.int64),
    "LayerNorm_dtype_int": lambda L: L.nn.LayerNorm(2, dtype=L.int32),
    "Embedding_dtype_int": lambda L: L.nn.Embedding(3, 2, dtype=L.int64),
    "LSTM_dtype_int": lambda L: L.nn.LSTM(2, 2, dtype=L.int64),
    "MHA_dtype_half": lambda L: L.nn.MultiheadAttention(4, 2, dtype=L.float16),
    "Linear_bias_str": lambda L: L.nn.Linear(2, 2, bias="no"),
    "Conv2d_bias_none": lambda L: L.nn.Conv2d(1, 1, 2, bias=None),
    "ParameterList_tensor": lambda L: L.nn.ParameterList(L.ones(3)),
    "ParameterList_none": lambda L: L.nn.ParameterList([None]),
    "ModuleList_gen": lambda L: L.nn.ModuleList(m for m in [L.nn.ReLU()]),
    "Sequential_none": lambda L: L.nn.Sequential(None),
    "Sequential_kw": lambda L: L.nn.Sequential(a=L.nn.ReLU()),
    "ModuleDict_bad_key": lambda L: L.nn.ModuleDict({1: L.nn.ReLU()}),
    "ModuleDict_dot_key": lambda L: L.nn.ModuleDict({"a.b": L.nn.ReLU()}),
    "ParameterDict_dot_key": lambda L: L.nn.ParameterDict({"a.b": L.nn.Parameter(L.ones(1))}),
    "ParameterDict_int_key": lambda L: L.nn.ParameterDict({1: L.nn.Parameter(L.ones(1))}),
    "ModuleList_dup_ok": lambda L: L.nn.ModuleList([L.nn.ReLU()] * 2),
    "Sequential_empty_key": (
        lambda L: L.nn.Sequential(__import__("collections").OrderedDict([("", L.nn.ReLU())]))),
    "DL_sampler_and_batch_sampler": (
        lambda L: L.utils.data.DataLoader(_data(L), batch_size=None, shuffle=True)),
    "DL_worker_init_not_callable": lambda L: L.utils.data.DataLoader(_data(L), worker_init_fn=3),
    "DL_pin_device_no_pin": lambda L: L.utils.data.DataLoader(_data(L), pin_memory_device="cuda"),
    "DL_prefetch_zero_workers1": (
        lambda L: L.utils.data.DataLoader(_data(L), num_workers=1, prefetch_factor=0)),
    "DL_batch_size_none_sampler": (
        lambda L: L.utils.data.DataLoader(_data(L), batch_size=None, sampler=_sampler(L))),
    "DL_iterable_shuffle": lambda L: L.utils.data.DataLoader(_stream(L), shuffle=True),
    "DL_iterable_shuffle_false": lambda L: L.utils.data.DataLoader(_stream(L), shuffle=False),
    "DL_iterable_sampler": lambda L: L.utils.data.DataLoader(_stream(L), sampler=_sampler(L)),
    "DL_iterable_batch_sampler": (
        lambda L: L.utils.data.DataLoader(_stream(L), batch_sampler=_batch_sampler(L))),
})

def _module_list(lib):
    return lib.nn.ModuleList([lib.nn.ReLU()])


def _sequential(lib):
    return lib.nn.Sequential(lib.nn.ReLU())


def _module_dict(lib):
    return lib.nn.ModuleDict({"a": lib.nn.ReLU()})


def _parameter_list(lib):
    return lib.nn.ParameterList([lib.nn.Parameter(lib.ones(1))])


def _parameter_dict(lib):
    return lib.nn.ParameterDict({"a": lib.nn.Parameter(lib.ones(1))})


def _setitem(container, key, value):
    container[key] = value


# the containers' (and Module's) methods that take a module, a parameter or a key
CASES.update({
    "ML_append_int": lambda L: _module_list(L).append(3),
    "ML_append_none": lambda L: _module_list(L).append(None),
    "ML_extend_int": lambda L: _module_list(L).extend(3),
    "ML_extend_bad_el": lambda L: _module_list(L).extend([3]),
    "ML_insert_int": lambda L: _module_list(L).insert(0, 3),
    "ML_insert_strindex": lambda L: _module_list(L).insert("a", L.nn.ReLU()),
    "ML_setitem_int": lambda L: _setitem(_module_list(L), 0, 3),
    "ML_setitem_oob": lambda L: _setitem(_module_list(L), 5, L.nn.ReLU()),
    "ML_getitem_oob": lambda L: _module_list(L)[5],
    "ML_getitem_str": lambda L: _module_list(L)["a"],
    "ML_add_list": lambda L: _module_list(L) + [L.nn.ReLU()],
    "ML_iadd_int": lambda L: _module_list(L).__iadd__(3),
    "ML_pop_oob": lambda L: _module_list(L).pop(5),
    "SQ_append_int": lambda L: _sequential(L).append(3),
    "SQ_extend_int": lambda L: _sequential(L).extend(3),
    "SQ_insert_int": lambda L: _sequential(L).insert(0, 3),
    "SQ_insert_oob": lambda L: _sequential(L).insert(5, L.nn.ReLU()),
    "SQ_add_int": lambda L: _sequential(L) + 3,
    "SQ_mul_zero": lambda L: _sequential(L) * 0,
    "SQ_mul_float": lambda L: _sequential(L) * 1.5,
    "SQ_getitem_oob": lambda L: _sequential(L)[5],
    "SQ_setitem_int": lambda L: _setitem(_sequential(L), 0, 3),
    "SQ_getitem_str": lambda L: _sequential(L)["a"],
    "SQ_pop_oob": lambda L: _sequential(L).pop(5),
    "MD_setitem_int": lambda L: _setitem(_module_dict(L), "b", 3),
    "MD_setitem_intkey": lambda L: _setitem(_module_dict(L), 1, L.nn.ReLU()),
    "MD_getitem_missing": lambda L: _module_dict(L)["zz"],
    "MD_pop_missing": lambda L: _module_dict(L).pop("zz"),
    "MD_update_int": lambda L: _module_dict(L).update(3),
    "PL_append_int": lambda L: _parameter_list(L).append(3),
    "PL_append_none": lambda L: _parameter_list(L).append(None),
    "PL_extend_int": lambda L: _parameter_list(L).extend(3),
    "PL_setitem_oob": lambda L: _setitem(_parameter_list(L), 5, L.ones(1)),
    "PL_getitem_oob": lambda L: _parameter_list(L)[5],
    "PL_int_tensor": lambda L: _parameter_list(L).append(L.ones(1, dtype=L.int64)),
    "PD_setitem_int": lambda L: _setitem(_parameter_dict(L), "b", 3),
    "PD_setitem_none": lambda L: _setitem(_parameter_dict(L), "b", None),
    "PD_getitem_missing": lambda L: _parameter_dict(L)["zz"],
    "PD_update_list_bad": lambda L: _parameter_dict(L).update([("a",)]),
    "PD_pop_missing": lambda L: _parameter_dict(L).pop("zz"),
    "PD_fromkeys": lambda L: _parameter_dict(L).fromkeys(["x"], L.ones(1)),
    "Module_add_module_int": lambda L: L.nn.Module().add_module("a", 3),
    "Module_add_module_name_int": lambda L: L.nn.Module().add_module(1, L.nn.ReLU()),
    "Module_register_parameter_tensor": lambda L: L.nn.Module().register_parameter("w", L.ones(1)),
    "Module_register_buffer_int": lambda L: L.nn.Module().register_buffer("b", 3),
    "Module_register_parameter_dot": (
        lambda L: L.nn.Module().register_parameter("a.b", L.nn.Parameter(L.ones(1)))),
    "Module_register_buffer_empty": lambda L: L.nn.Module().register_buffer("", L.ones(1)),
})

# every nn module class built with no arguments, with 16 positional ones and with an unknown keyword:
# Python's own TypeError for arguments that do not fit names the class (torch's, not chainrule's base)
MODULE_NAMES = (
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveLogSoftmaxWithLoss",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "AlphaDropout", "AvgPool1d", "AvgPool2d",
    "AvgPool3d", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "Bilinear",
    "CELU", "CTCLoss", "ChannelShuffle", "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d",
    "ConstantPad2d", "ConstantPad3d", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "CosineEmbeddingLoss", "CosineSimilarity", "CrossEntropyLoss", "CrossMapLRN2d",
    "DataParallel", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "ELU", "Embedding", "EmbeddingBag",
    "FeatureAlphaDropout", "Flatten", "Fold", "FractionalMaxPool2d", "FractionalMaxPool3d", "GELU", "GLU",
    "GRU", "GRUCell", "GaussianNLLLoss", "GroupNorm", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh",
    "HingeEmbeddingLoss", "HuberLoss", "Identity", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "KLDivLoss", "L1Loss", "LPPool1d", "LPPool2d", "LPPool3d", "LSTM", "LSTMCell", "LayerNorm",
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConv1d", "LazyConv2d", "LazyConv3d",
    "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyInstanceNorm1d",
    "LazyInstanceNorm2d", "LazyInstanceNorm3d", "LazyLinear", "LeakyReLU", "Linear", "LinearCrossEntropyLoss",
    "LocalResponseNorm", "LogSigmoid", "LogSoftmax", "MSELoss", "MarginRankingLoss", "MaxPool1d", "MaxPool2d",
    "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "Mish", "ModuleDict", "ModuleList",
    "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "MultiheadAttention", "NLLLoss",
    "NLLLoss2d", "PReLU", "PairwiseDistance", "ParameterDict", "ParameterList", "PixelShuffle",
    "PixelUnshuffle", "PoissonNLLLoss", "RMSNorm", "RNN", "RNNBase", "RNNCell", "RReLU", "ReLU", "ReLU6",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
    "ReplicationPad3d", "SELU", "Sequential", "SiLU", "Sigmoid", "SmoothL1Loss", "SoftMarginLoss", "Softmax",
    "Softmax2d", "Softmin", "Softplus", "Softshrink", "Softsign", "SyncBatchNorm", "Tanh", "Tanhshrink",
    "Threshold", "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer", "TripletMarginLoss", "TripletMarginWithDistanceLoss", "Unflatten", "Unfold",
    "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
)
for _name in MODULE_NAMES:
    if _name != "Transformer":  # (which builds a 512-wide, 12-layer model: seconds on each library)
        CASES[f"{_name}_no_args"] = lambda L, n=_name: getattr(L.nn, n)()
    CASES[f"{_name}_16_args"] = lambda L, n=_name: getattr(L.nn, n)(*[1] * 16)
    CASES[f"{_name}_unknown_keyword"] = lambda L, n=_name: getattr(L.nn, n)(bogus_keyword=1)




# one argument at a time made hostile in an otherwise valid call, per kind of parameter (as
# tests/fuzz/_ctorfuzz.HOSTILE, which compares only the exception class)
class _Tensor:
    """A value built per library: ``_Tensor(0.5)`` is ``lib.tensor(0.5)``."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"tensor({self.value!r})"


_HOSTILE = {
    "size": [0, -1, 2.5, 2.0, True, None, "3", (2, 2), _Tensor(3), math.nan],
    "ntuple": [0, -1, 2.5, (2,), (2, 2, 2, 2, 2), (), (0, 2), (-1, 2), [2, 2], (2.5, 2), (None, 2), "2", None],
    "float": [-1.0, 1.5, math.nan, math.inf, "0.5", None, True, _Tensor(0.5), 3],
    "prob": [-0.1, 1.0, 1.5, math.nan, math.inf, "0.5", None, _Tensor(0.5), 1],
    "bool": [None, "no", 2, 0.5],
    "str": ["foo", "", None, 3, "MEAN"],
}

# (class, {parameter: (valid value, kind)})
_SWEPT = [
    ("Linear", dict(in_features=(3, "size"), out_features=(2, "size"), bias=(True, "bool"))),
    ("Conv2d", dict(in_channels=(2, "size"), out_channels=(2, "size"), kernel_size=(3, "ntuple"), stride=(1, "ntuple"),
                    padding=(0, "ntuple"), dilation=(1, "ntuple"), groups=(1, "size"), padding_mode=("zeros", "str"))),
    ("ConvTranspose2d", dict(in_channels=(2, "size"), out_channels=(2, "size"), kernel_size=(3, "ntuple"),
                             stride=(1, "ntuple"), output_padding=(0, "ntuple"))),
    ("Embedding", dict(num_embeddings=(5, "size"), embedding_dim=(3, "size"), padding_idx=(None, "size"),
                       max_norm=(None, "float"))),
    ("EmbeddingBag", dict(num_embeddings=(5, "size"), embedding_dim=(3, "size"), mode=("mean", "str"))),
    ("Dropout", dict(p=(0.5, "prob"), inplace=(False, "bool"))),
    ("BatchNorm2d", dict(num_features=(3, "size"), eps=(1e-5, "float"), momentum=(0.1, "float"))),
    ("LayerNorm", dict(normalized_shape=(3, "ntuple"), eps=(1e-5, "float"))),
    ("GroupNorm", dict(num_groups=(2, "size"), num_channels=(4, "size"))),
    ("RNN", dict(input_size=(3, "size"), hidden_size=(4, "size"), num_layers=(1, "size"), nonlinearity=("tanh", "str"),
                 dropout=(0.0, "prob"))),
    ("LSTM", dict(input_size=(3, "size"), hidden_size=(4, "size"), proj_size=(0, "size"))),
    ("MultiheadAttention", dict(embed_dim=(4, "size"), num_heads=(2, "size"), dropout=(0.0, "prob"))),
    ("TransformerEncoderLayer", dict(d_model=(4, "size"), nhead=(2, "size"), dim_feedforward=(8, "size"),
                                     dropout=(0.1, "prob"), activation=("relu", "str"))),
    ("MaxPool2d", dict(kernel_size=(2, "ntuple"), stride=(None, "ntuple"), padding=(0, "ntuple"),
                       dilation=(1, "ntuple"))),
    ("AvgPool2d", dict(kernel_size=(2, "ntuple"), stride=(None, "ntuple"), padding=(0, "ntuple"),
                       divisor_override=(None, "size"))),
    ("Upsample", dict(size=(None, "ntuple"), scale_factor=(2.0, "float"), mode=("nearest", "str"))),
    ("Flatten", dict(start_dim=(1, "size"), end_dim=(-1, "size"))),
    ("Unflatten", dict(dim=(1, "size"), unflattened_size=((2, 3), "ntuple"))),
    ("PixelShuffle", dict(upscale_factor=(2, "size"))),
    ("Fold", dict(output_size=(4, "ntuple"), kernel_size=(2, "ntuple"), stride=(1, "ntuple"))),
    ("Unfold", dict(kernel_size=(2, "ntuple"), dilation=(1, "ntuple"), stride=(1, "ntuple"))),
    ("AdaptiveAvgPool2d", dict(output_size=(2, "ntuple"))),
    ("Softmax", dict(dim=(1, "size"))),
    ("CrossEntropyLoss", dict(ignore_index=(-100, "size"), reduction=("mean", "str"), label_smoothing=(0.0, "prob"))),
    ("Hardtanh", dict(min_val=(-1.0, "float"), max_val=(1.0, "float"))),
    ("ELU", dict(alpha=(1.0, "float"))),
    ("LeakyReLU", dict(negative_slope=(0.01, "float"))),
    ("PReLU", dict(num_parameters=(1, "size"), init=(0.25, "float"))),
    ("Bilinear", dict(in1_features=(2, "size"), in2_features=(2, "size"), out_features=(2, "size"))),
    ("InstanceNorm2d", dict(num_features=(3, "size"), eps=(1e-5, "float"))),
    ("LocalResponseNorm", dict(size=(2, "size"), alpha=(1e-4, "float"))),
    ("CosineSimilarity", dict(dim=(1, "size"), eps=(1e-8, "float"))),
    ("ZeroPad2d", dict(padding=(1, "ntuple"))),
    ("ChannelShuffle", dict(groups=(2, "size"))),
    ("TripletMarginLoss", dict(margin=(1.0, "float"), p=(2.0, "float"))),
    ("RMSNorm", dict(normalized_shape=(3, "ntuple"), eps=(None, "float"))),
    # (the rest of the module families, their other arguments)
    ("Conv1d", dict(in_channels=(2, "size"), out_channels=(2, "size"), kernel_size=(3, "ntuple"),
                    stride=(1, "ntuple"), padding=(0, "ntuple"), dilation=(1, "ntuple"), groups=(1, "size"),
                    bias=(True, "bool"), padding_mode=("zeros", "str"))),
    ("Conv3d", dict(in_channels=(2, "size"), out_channels=(2, "size"), kernel_size=(3, "ntuple"),
                    stride=(1, "ntuple"), padding=(0, "ntuple"))),
    ("ConvTranspose1d", dict(in_channels=(2, "size"), out_channels=(2, "size"), kernel_size=(3, "ntuple"),
                             stride=(1, "ntuple"), padding=(0, "ntuple"), output_padding=(0, "ntuple"),
                             groups=(1, "size"), dilation=(1, "ntuple"), padding_mode=("zeros", "str"))),
    ("ConvTranspose3d", dict(in_channels=(2, "size"), out_channels=(2, "size"), kernel_size=(3, "ntuple"))),
    ("MaxPool1d", dict(kernel_size=(2, "ntuple"), stride=(None, "ntuple"), padding=(0, "ntuple"),
                       dilation=(1, "ntuple"), return_indices=(False, "bool"), ceil_mode=(False, "bool"))),
    ("MaxPool3d", dict(kernel_size=(2, "ntuple"), stride=(None, "ntuple"), padding=(0, "ntuple"))),
    ("AvgPool1d", dict(kernel_size=(2, "ntuple"), stride=(None, "ntuple"), padding=(0, "ntuple"),
                       ceil_mode=(False, "bool"), count_include_pad=(True, "bool"))),
    ("AvgPool3d", dict(kernel_size=(2, "ntuple"), stride=(None, "ntuple"), padding=(0, "ntuple"),
                       divisor_override=(None, "size"))),
    ("LPPool2d", dict(norm_type=(2.0, "float"), kernel_size=(2, "ntuple"), stride=(None, "ntuple"))),
    ("FractionalMaxPool2d", dict(kernel_size=(2, "ntuple"), output_size=(2, "ntuple"))),
    ("MaxUnpool2d", dict(kernel_size=(2, "ntuple"), stride=(None, "ntuple"), padding=(0, "ntuple"))),
    ("AdaptiveMaxPool1d", dict(output_size=(2, "ntuple"), return_indices=(False, "bool"))),
    ("AdaptiveAvgPool3d", dict(output_size=(2, "ntuple"))),
    ("Dropout1d", dict(p=(0.5, "prob"))),
    ("Dropout2d", dict(p=(0.5, "prob"))),
    ("Dropout3d", dict(p=(0.5, "prob"))),
    ("AlphaDropout", dict(p=(0.5, "prob"))),
    ("FeatureAlphaDropout", dict(p=(0.5, "prob"))),
    ("BatchNorm1d", dict(num_features=(3, "size"), eps=(1e-5, "float"), momentum=(0.1, "float"),
                         affine=(True, "bool"), track_running_stats=(True, "bool"))),
    ("InstanceNorm1d", dict(num_features=(3, "size"), affine=(False, "bool"),
                            track_running_stats=(False, "bool"))),
    ("GroupNorm", dict(num_groups=(2, "size"), num_channels=(4, "size"), eps=(1e-5, "float"),
                       affine=(True, "bool"))),
    ("LayerNorm", dict(normalized_shape=(3, "ntuple"), elementwise_affine=(True, "bool"),
                       bias=(True, "bool"))),
    ("RNNCell", dict(input_size=(3, "size"), hidden_size=(4, "size"), bias=(True, "bool"),
                     nonlinearity=("tanh", "str"))),
    ("LSTMCell", dict(input_size=(3, "size"), hidden_size=(4, "size"))),
    ("GRUCell", dict(input_size=(3, "size"), hidden_size=(4, "size"))),
    ("GRU", dict(input_size=(3, "size"), hidden_size=(4, "size"), num_layers=(1, "size"),
                 bias=(True, "bool"), batch_first=(False, "bool"), dropout=(0.0, "prob"),
                 bidirectional=(False, "bool"))),
    ("TransformerDecoderLayer", dict(d_model=(4, "size"), nhead=(2, "size"), dim_feedforward=(8, "size"),
                                     dropout=(0.1, "prob"), activation=("relu", "str"),
                                     layer_norm_eps=(1e-5, "float"), batch_first=(False, "bool"),
                                     norm_first=(False, "bool"))),
    ("MultiheadAttention", dict(embed_dim=(4, "size"), num_heads=(2, "size"), bias=(True, "bool"),
                                add_bias_kv=(False, "bool"), kdim=(None, "size"), vdim=(None, "size"),
                                batch_first=(False, "bool"))),
    ("EmbeddingBag", dict(num_embeddings=(5, "size"), embedding_dim=(3, "size"), max_norm=(None, "float"),
                          norm_type=(2.0, "float"), padding_idx=(None, "size"),
                          include_last_offset=(False, "bool"))),
    ("Upsample", dict(size=(4, "ntuple"), scale_factor=(None, "float"), mode=("nearest", "str"),
                      align_corners=(None, "bool"))),
    ("UpsamplingBilinear2d", dict(size=(None, "ntuple"), scale_factor=(2.0, "float"))),
    ("PixelUnshuffle", dict(downscale_factor=(2, "size"))),
    ("Threshold", dict(threshold=(0.1, "float"), value=(0.0, "float"), inplace=(False, "bool"))),
    ("Softplus", dict(beta=(1.0, "float"), threshold=(20.0, "float"))),
    ("CELU", dict(alpha=(1.0, "float"))),
    ("GELU", dict(approximate=("none", "str"))),
    ("RReLU", dict(lower=(0.125, "float"), upper=(0.33, "float"))),
    ("Softshrink", dict(lambd=(0.5, "float"))),
    ("Hardshrink", dict(lambd=(0.5, "float"))),
    ("LogSoftmax", dict(dim=(1, "size"))),
    ("Softmin", dict(dim=(1, "size"))),
    ("GLU", dict(dim=(-1, "size"))),
    ("ReflectionPad1d", dict(padding=(1, "ntuple"))),
    ("ReplicationPad3d", dict(padding=(1, "ntuple"))),
    ("ConstantPad2d", dict(padding=(1, "ntuple"), value=(0.0, "float"))),
    ("CircularPad2d", dict(padding=(1, "ntuple"))),
    ("NLLLoss", dict(ignore_index=(-100, "size"), reduction=("mean", "str"))),
    ("BCELoss", dict(reduction=("mean", "str"))),
    ("BCEWithLogitsLoss", dict(reduction=("mean", "str"))),
    ("KLDivLoss", dict(reduction=("mean", "str"), log_target=(False, "bool"))),
    ("HuberLoss", dict(reduction=("mean", "str"), delta=(1.0, "float"))),
    ("SmoothL1Loss", dict(reduction=("mean", "str"), beta=(1.0, "float"))),
    ("MarginRankingLoss", dict(margin=(0.0, "float"), reduction=("mean", "str"))),
    ("TripletMarginLoss", dict(margin=(1.0, "float"), p=(2.0, "float"), eps=(1e-6, "float"),
                               swap=(False, "bool"), reduction=("mean", "str"))),
    ("CTCLoss", dict(blank=(0, "size"), reduction=("mean", "str"), zero_infinity=(False, "bool"))),
    ("MultiMarginLoss", dict(p=(1, "size"), margin=(1.0, "float"), reduction=("mean", "str"))),
    ("PoissonNLLLoss", dict(log_input=(True, "bool"), full=(False, "bool"), eps=(1e-8, "float"),
                            reduction=("mean", "str"))),
    ("GaussianNLLLoss", dict(full=(False, "bool"), eps=(1e-6, "float"), reduction=("mean", "str"))),
    ("CosineEmbeddingLoss", dict(margin=(0.0, "float"), reduction=("mean", "str"))),
    ("HingeEmbeddingLoss", dict(margin=(1.0, "float"), reduction=("mean", "str"))),
    ("SoftMarginLoss", dict(reduction=("mean", "str"))),
    ("MultiLabelMarginLoss", dict(reduction=("mean", "str"))),
    ("L1Loss", dict(reduction=("mean", "str"))),
    ("PairwiseDistance", dict(p=(2.0, "float"), eps=(1e-6, "float"), keepdim=(False, "bool"))),
    ("Flatten", dict(start_dim=(1, "size"), end_dim=(-1, "size"))),
    ("Fold", dict(output_size=(4, "ntuple"), kernel_size=(2, "ntuple"), dilation=(1, "ntuple"),
                  padding=(0, "ntuple"), stride=(1, "ntuple"))),
    ("Unfold", dict(kernel_size=(2, "ntuple"), padding=(0, "ntuple"))),
    ("Bilinear", dict(in1_features=(2, "size"), in2_features=(2, "size"), out_features=(2, "size"),
                      bias=(True, "bool"))),
    ("Embedding", dict(num_embeddings=(5, "size"), embedding_dim=(3, "size"), norm_type=(2.0, "float"),
                       scale_grad_by_freq=(False, "bool"), sparse=(False, "bool"))),
    ("AdaptiveLogSoftmaxWithLoss", dict(in_features=(8, "size"), n_classes=(10, "size"),
                                        cutoffs=((4,), "ntuple"), div_value=(4.0, "float"))),
    ("ChannelShuffle", dict(groups=(2, "size"))),
    ("LocalResponseNorm", dict(size=(2, "size"), beta=(0.75, "float"), k=(1.0, "float"))),
    ("CrossMapLRN2d", dict(size=(2, "size"), alpha=(1e-4, "float"))),
    ("Hardtanh", dict(min_val=(-1.0, "float"), max_val=(1.0, "float"), inplace=(False, "bool"))),
    ("ReLU6", dict(inplace=(False, "bool"))),
    ("LeakyReLU", dict(negative_slope=(0.01, "float"), inplace=(False, "bool"))),
]


def _swept(lib, name: str, arguments: dict):
    built = {key: lib.tensor(value.value) if isinstance(value, _Tensor) else value for key, value in arguments.items()}
    return getattr(lib.nn, name)(**built)


for _name, _parameters in _SWEPT:
    _valid = {key: value for key, (value, _) in _parameters.items()}
    for _key, (_value, _kind) in _parameters.items():
        for _hostile in _HOSTILE[_kind]:
            if type(_hostile) is not type(_value) or _hostile != _value:
                CASES[f"{_name}({_key}={_hostile!r})"] = functools.partial(
                    _swept, name=_name, arguments={**_valid, _key: _hostile})

# optimizers, schedulers and data classes with no arguments and with an unknown keyword (optimizers
# also with 16 positional ones)
OPTIMIZER_NAMES = ("ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "LBFGS", "Muon", "NAdam",
                   "RAdam", "RMSprop", "Rprop", "SGD", "SparseAdam")
SCHEDULER_NAMES = ("ChainedScheduler", "ConstantLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR",
                   "ExponentialLR", "LRScheduler", "LambdaLR", "LinearLR", "MultiStepLR", "MultiplicativeLR",
                   "OneCycleLR", "PolynomialLR", "ReduceLROnPlateau", "SequentialLR", "StepLR")
DATA_NAMES = ("DataLoader", "BatchSampler", "RandomSampler", "SequentialSampler", "SubsetRandomSampler",
              "WeightedRandomSampler", "TensorDataset", "ConcatDataset", "Subset", "StackDataset", "ChainDataset")
for _name in OPTIMIZER_NAMES:
    CASES[f"{_name}_no_args"] = lambda L, n=_name: getattr(L.optim, n)()
    CASES[f"{_name}_unknown_keyword"] = lambda L, n=_name: getattr(L.optim, n)(_params(L), bogus_keyword=1)
    CASES[f"{_name}_16_args"] = lambda L, n=_name: getattr(L.optim, n)(_params(L), *[0.5] * 16)
for _name in SCHEDULER_NAMES:
    CASES[f"{_name}_no_args"] = lambda L, n=_name: getattr(L.optim.lr_scheduler, n)()
    CASES[f"{_name}_unknown_keyword"] = lambda L, n=_name: getattr(L.optim.lr_scheduler, n)(_opt(L), bogus_keyword=1)
for _name in DATA_NAMES:
    CASES[f"{_name}_no_args"] = lambda L, n=_name: getattr(L.utils.data, n)()
    CASES[f"{_name}_unknown_keyword"] = lambda L, n=_name: getattr(L.utils.data, n)(_data(L), bogus_keyword=1)

# every distribution class with no arguments, an unknown keyword and 9 positional ones (its
# constructor is wrapped by _naming as a module's is)
DISTRIBUTION_NAMES = (
    "Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2", "ContinuousBernoulli", "Dirichlet",
    "Distribution", "Exponential", "ExponentialFamily", "FisherSnedecor", "Gamma", "GeneralizedPareto",
    "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "InverseGamma", "Kumaraswamy",
    "LKJCholesky", "Laplace", "LogNormal", "LogisticNormal", "LowRankMultivariateNormal", "MixtureSameFamily",
    "Multinomial", "MultivariateNormal", "NegativeBinomial", "Normal", "OneHotCategorical",
    "OneHotCategoricalStraightThrough", "Pareto", "Poisson", "RelaxedBernoulli", "RelaxedOneHotCategorical",
    "StudentT", "TransformedDistribution", "Uniform", "VonMises", "Weibull", "Wishart",
)
for _name in DISTRIBUTION_NAMES:
    CASES[f"{_name}_no_args"] = lambda L, n=_name: getattr(L.distributions, n)()
    CASES[f"{_name}_unknown_keyword"] = lambda L, n=_name: getattr(L.distributions, n)(bogus_keyword=1)
    CASES[f"{_name}_9_args"] = lambda L, n=_name: getattr(L.distributions, n)(*[1.0] * 9)

def _group_after(lib, refused):
    """Whether ``refused(lib, optimizer)`` raised (its class) and the options of the optimizer's param
    group after it: a constructor refusing its arguments leaves the optimizer as it was (no
    'initial_lr' written)."""
    optimizer = lib.optim.SGD(_params(lib), lr=0.1, momentum=0.9)
    try:
        refused(lib, optimizer)
    except Exception as error:  # noqa: BLE001  (what is compared is the state left behind)
        refusal = type(error).__name__
    else:
        refusal = "returned"
    return refusal, sorted((key, repr(value)) for key, value in optimizer.param_groups[0].items() if key != "params")

# what a refused scheduler (or param group) leaves in the optimizer it was given
STATE_CASES = {
    "StepLR_step_float": lambda L, o: L.optim.lr_scheduler.StepLR(o, "x"),
    "OneCycleLR_total_zero": lambda L, o: L.optim.lr_scheduler.OneCycleLR(o, 1.0, total_steps=0),
    "OneCycleLR_anneal_bogus": lambda L, o: L.optim.lr_scheduler.OneCycleLR(o, 1.0, total_steps=5,
                                                                            anneal_strategy="bogus"),
    "OneCycleLR_pct_big": lambda L, o: L.optim.lr_scheduler.OneCycleLR(o, 1.0, total_steps=5, pct_start=2.0),
    "OneCycleLR_max_lr_count": lambda L, o: L.optim.lr_scheduler.OneCycleLR(o, [1.0, 2.0], total_steps=5),
    "CAWR_T0_zero": lambda L, o: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0),
    "CAWR_Tmult_zero": lambda L, o: L.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
    "CyclicLR_mode_bogus": lambda L, o: L.optim.lr_scheduler.CyclicLR(o, 0.1, 1.0, mode="bogus"),
    "CyclicLR_base_lr_count": lambda L, o: L.optim.lr_scheduler.CyclicLR(o, [0.1, 0.2], 1.0),
    "LambdaLR_count": lambda L, o: L.optim.lr_scheduler.LambdaLR(o, [lambda e: 1.0] * 2),
    "LinearLR_start_zero": lambda L, o: L.optim.lr_scheduler.LinearLR(o, start_factor=0),
    "ConstantLR_big": lambda L, o: L.optim.lr_scheduler.ConstantLR(o, factor=2.0),
    "ReduceLROnPlateau_factor": lambda L, o: L.optim.lr_scheduler.ReduceLROnPlateau(o, factor=2.0),
    "ReduceLROnPlateau_min_lr_count": lambda L, o: L.optim.lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1, 0.2]),
    "PolynomialLR_power_str": lambda L, o: L.optim.lr_scheduler.PolynomialLR(o, power="x"),
    "MultiplicativeLR_count": lambda L, o: L.optim.lr_scheduler.MultiplicativeLR(o, [lambda e: 1.0] * 3),
    "add_param_group_duplicate": lambda L, o: o.add_param_group({"params": o.param_groups[0]["params"]}),
    "add_param_group_lr_neg": lambda L, o: o.add_param_group({"params": _params(L), "lr": -1.0}),
}

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def outcome(lib, build):
    """(raised class or 'returned', message, [(warning class, message), ...]) of build(lib)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            build(lib)
        except Exception as error:  # noqa: BLE001  (the class is what is compared)
            kind, message = type(error).__name__, str(error)
            if isinstance(error, KeyError) and len(error.args) == 1:  # (whose str() quotes the message)
                message = str(error.args[0])
        else:
            kind, message = "returned", ""
    seen = [(w.category.__name__, str(w.message)) for w in caught]
    return kind, _SET_OF_STRINGS.sub(_sorted_set, _ADDRESS.sub("", message)), seen


# a set of strings prints in an order that changes with Python's hash seed (conv's padding strings)
_SET_OF_STRINGS = re.compile(r"\{'[^{}]*'\}")


def _sorted_set(match) -> str:
    return "{" + ", ".join(sorted(match.group(0)[1:-1].split(", "))) + "}"


def agrees(theirs, ours) -> bool:
    """Whether chainrule's outcome is torch's: both return, or both raise the same class with torch's
    message inside chainrule's (chainrule may name the class and arguments before it, _naming.py, or
    add what was expected after it), and the same warnings, torch's text inside each of ours."""
    (t_kind, t_message, t_warnings), (o_kind, o_message, o_warnings) = theirs, ours
    if t_kind != o_kind or t_message not in o_message:
        return False
    if len(t_warnings) != len(o_warnings):
        return False
    return all(tc == oc and tm in om for (tc, tm), (oc, om) in zip(t_warnings, o_warnings))
