"""Inference-side API: MeshInferencer (mmpose's inferencer conventions), full-image cameras, SMPL fitting
of predicted meshes, mesh / result export, ONNX export and the onnxruntime backend.

Light at import time (torch and numpy only): the names that need mmpose's inferencers / mmdet
(:class:`MeshInferencer`), onnx (:func:`export_onnx`) or onnxruntime (:class:`OnnxMeshModel`) are
imported when first used. ``import mmpose_mpt.apis.inferencer`` registers ``MeshInferencer`` (also as
``'mesh-estimation'``) in mmpose's ``INFERENCERS``.
"""
from .fit_smpl import FitSMPLInputError, axis_angle_to_matrix, fit_smpl, matrix_to_axis_angle
from .full_image_camera import (FullImageCameraError, crop_to_full_camera, default_focal_length,
                                full_to_crop_camera)
from .mesh_export import (MeshExportError, load_obj, load_ply, load_result_json, save_obj, save_ply,
                          save_result_json)

_LAZY = {
    'MeshInferencer': '.inferencer', 'MeshInferencerError': '.inferencer',
    'MeshModelNotFoundError': '.inferencer', 'load_image': '.inferencer',
    'OnnxMeshModel': '.onnx_backend', 'OnnxBackendError': '.onnx_backend',
    'export_onnx': '.onnx_export', 'OnnxExportError': '.onnx_export',
}

__all__ = [
    'fit_smpl', 'FitSMPLInputError', 'axis_angle_to_matrix', 'matrix_to_axis_angle', 'MeshExportError',
    'save_obj', 'save_ply', 'save_result_json', 'load_obj', 'load_ply', 'load_result_json',
    'FullImageCameraError', 'crop_to_full_camera', 'full_to_crop_camera', 'default_focal_length'
] + list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
