"""Inference-side helpers: SMPL fitting of predicted meshes and mesh / result export.

Light at import time (torch and numpy only): the body models, smplx and mmpose are imported by the
functions that need them.
"""
from .fit_smpl import FitSMPLInputError, axis_angle_to_matrix, fit_smpl, matrix_to_axis_angle
from .mesh_export import (MeshExportError, load_obj, load_ply, load_result_json, save_obj, save_ply,
                          save_result_json)

__all__ = [
    'fit_smpl', 'FitSMPLInputError', 'axis_angle_to_matrix', 'matrix_to_axis_angle', 'MeshExportError',
    'save_obj', 'save_ply', 'save_result_json', 'load_obj', 'load_ply', 'load_result_json'
]
