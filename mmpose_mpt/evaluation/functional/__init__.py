"""Functional evaluation metrics (numpy; torch tensors accepted)."""
from .freihand import align_w_scale, calculate_fscore, evaluate_freihand, pck_auc, point_distances
from .mpjpe import (MetricInputError, f_score, mpjpe, nearest_neighbour_distances, pa_align,
                    root_align)

__all__ = ['MetricInputError', 'mpjpe', 'pa_align', 'root_align', 'f_score',
           'nearest_neighbour_distances', 'align_w_scale', 'calculate_fscore', 'evaluate_freihand',
           'pck_auc', 'point_distances']
