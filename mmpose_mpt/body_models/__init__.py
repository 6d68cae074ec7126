"""Body models: SMPL / MANO wrappers on smplx, chumpy-free model files, joint regressors, the toy
(stand-in) body models and the mesh sampler.

Real SMPL / MANO files are used wherever their paths are given; the toy models
(:func:`make_toy_body_models`) are generated stand-ins in the same formats.
"""
from .body_model_file import (GENDERS, BodyModelFileError, BodyModelFileNotFoundError, load_body_model_file,
                              normalize_gender, resolve_model_file, save_body_model_file, validate_body_model)
from .joint_regressors import FREIHAND21_NAMES, FREIHAND_FINGERTIP_VERTEX_IDS  # noqa: F401
from .joint_regressors import (COCO17_NAMES, H36M17_NAMES, H36M_J17_TO_J14, H36M_PELVIS_INDEX, LSP14_NAMES,
                               MANO21_NAMES, MANO21_TO_OPENPOSE, MANO_FINGERTIP_VERTEX_IDS, MANO_JOINT_NAMES,
                               SMPL_FACE_VERTEX_IDS, SMPL_JOINT_NAMES, build_coco_regressor, load_joint_regressor)
from .mano import MANO
from .mesh_sampler import MeshSampler, build_mesh_sampling, load_mesh_sampling, save_mesh_sampling
from .smpl import SMPL
from .toy_body_model import (TOY_VERSION, build_toy_mano, build_toy_smpl, make_toy_body_models,
                             toy_body_model_paths)

__all__ = [
    'GENDERS', 'BodyModelFileError', 'BodyModelFileNotFoundError', 'load_body_model_file', 'normalize_gender',
    'resolve_model_file', 'save_body_model_file', 'validate_body_model', 'COCO17_NAMES', 'H36M17_NAMES',
    'H36M_J17_TO_J14', 'H36M_PELVIS_INDEX', 'LSP14_NAMES', 'MANO21_NAMES', 'MANO21_TO_OPENPOSE',
    'MANO_FINGERTIP_VERTEX_IDS', 'MANO_JOINT_NAMES', 'SMPL_FACE_VERTEX_IDS', 'SMPL_JOINT_NAMES',
    'build_coco_regressor', 'load_joint_regressor', 'MANO', 'MeshSampler', 'build_mesh_sampling',
    'load_mesh_sampling', 'save_mesh_sampling', 'SMPL', 'TOY_VERSION', 'build_toy_mano', 'build_toy_smpl',
    'make_toy_body_models', 'toy_body_model_paths', 'FREIHAND21_NAMES', 'FREIHAND_FINGERTIP_VERTEX_IDS'
]
