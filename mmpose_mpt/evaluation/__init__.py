"""Evaluation: MeshMetric (registered in ``mmpose.registry.METRICS``) and functional metrics."""
from .functional import f_score, mpjpe, pa_align, root_align
from .freihand_pred_dump import FreiHANDPredDump, write_freihand_pred  # noqa: F401
from .mesh_metric import H36M_J17_TO_J14, MeshMetric, MeshMetricError

__all__ = ['MeshMetric', 'MeshMetricError', 'H36M_J17_TO_J14', 'mpjpe', 'pa_align', 'root_align',
           'f_score']
