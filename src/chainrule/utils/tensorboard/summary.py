"""chainrule.utils.tensorboard.summary: the Summary records torch.utils.tensorboard.summary builds
that writers and libraries (stable-baselines3's logger) add themselves through ``file_writer``."""

from __future__ import annotations

import logging

from google.protobuf import struct_pb2
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams.api_pb2 import (
    DataType,
    Experiment,
    HParamInfo,
    MetricInfo,
    MetricName,
    Status,
)
from tensorboard.plugins.hparams.metadata import (
    EXPERIMENT_TAG,
    PLUGIN_DATA_VERSION,
    PLUGIN_NAME,
    SESSION_END_INFO_TAG,
    SESSION_START_INFO_TAG,
)
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo, SessionStartInfo

from ...tensor import Tensor

__all__ = ["hparams"]

logger = logging.getLogger(__name__)


def _hparams_summary(tag: str, **plugin_data) -> Summary:
    """One hparams-plugin record: no value, everything in the plugin's metadata."""
    content = HParamsPluginData(version=PLUGIN_DATA_VERSION, **plugin_data).SerializeToString()
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content))
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata)])


def _check_domains(hparam_dict: dict, hparam_domain_discrete) -> dict:
    domains = hparam_domain_discrete or {}
    if not isinstance(domains, dict):
        raise TypeError("parameter: hparam_domain_discrete should be a dictionary, nothing logged.")
    for name, values in domains.items():
        if (name not in hparam_dict or not isinstance(values, list)
                or not all(isinstance(value, type(hparam_dict[name])) for value in values)):
            raise TypeError(f"parameter: hparam_domain_discrete[{name}] should be a list of same type as "
                            f"hparam_dict[{name}].")
    return domains


def hparams(hparam_dict=None, metric_dict=None, hparam_domain_discrete=None) -> tuple[Summary, Summary, Summary]:
    """torch.utils.tensorboard.summary.hparams: the (experiment, session-start, session-end) Summary
    records of TensorBoard's HParams tab.

    Values are numbers (bool and int included, stored as float64, as torch's — its bool branch is
    never reached), strings, or tensors (their first element); ``None`` values are left out.
    ``hparam_domain_discrete`` names the values a hyperparameter can take. The metrics are only
    named here: their values are scalars the caller writes under the same tags.
    """
    if not isinstance(hparam_dict, dict):
        logger.warning("parameter: hparam_dict should be a dictionary, nothing logged.")
        raise TypeError("parameter: hparam_dict should be a dictionary, nothing logged.")
    if not isinstance(metric_dict, dict):
        logger.warning("parameter: metric_dict should be a dictionary, nothing logged.")
        raise TypeError("parameter: metric_dict should be a dictionary, nothing logged.")
    domains = _check_domains(hparam_dict, hparam_domain_discrete)

    start = SessionStartInfo()
    infos = []
    for name, value in hparam_dict.items():
        if value is None:
            continue
        domain_discrete = None
        if isinstance(value, (int, float)):
            start.hparams[name].number_value = value
            kind = "DATA_TYPE_FLOAT64"
            if name in domains:
                domain_discrete = struct_pb2.ListValue(values=[struct_pb2.Value(number_value=v)
                                                               for v in domains[name]])
        elif isinstance(value, str):
            start.hparams[name].string_value = value
            kind = "DATA_TYPE_STRING"
            if name in domains:
                domain_discrete = struct_pb2.ListValue(values=[struct_pb2.Value(string_value=v)
                                                               for v in domains[name]])
        elif isinstance(value, Tensor):
            # torch keeps a tensor's first element and no domain
            start.hparams[name].number_value = value.detach().cpu().numpy().reshape(-1)[0]
            kind = "DATA_TYPE_FLOAT64"
        else:
            raise ValueError("value should be one of int, float, str, bool, or torch.Tensor")
        infos.append(HParamInfo(name=name, type=DataType.Value(kind), domain_discrete=domain_discrete))

    experiment = Experiment(hparam_infos=infos, metric_infos=[MetricInfo(name=MetricName(tag=tag))
                                                             for tag in metric_dict])
    return (_hparams_summary(EXPERIMENT_TAG, experiment=experiment),
            _hparams_summary(SESSION_START_INFO_TAG, session_start_info=start),
            _hparams_summary(SESSION_END_INFO_TAG,
                             session_end_info=SessionEndInfo(status=Status.Value("STATUS_SUCCESS"))))
