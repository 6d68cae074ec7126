from .h36m_cameras import H36M_S1_CAMERA_PARAMS, H36M_S1_CAMERAS, h36m_s1_cameras, quaternion_to_matrix
from .projection import project_points
from .topdown_crop import apply_warp, topdown_crop
from .virtual_camera_rig import (PELVIS_HEIGHT, VALID_NUM_VIEWS, VirtualCameraError, VirtualCameraRig,
                                 subject_position)
from .weak_perspective import weak_perspective_project

__all__ = ['H36M_S1_CAMERA_PARAMS', 'H36M_S1_CAMERAS', 'h36m_s1_cameras', 'quaternion_to_matrix',
           'project_points', 'apply_warp', 'topdown_crop', 'PELVIS_HEIGHT', 'VALID_NUM_VIEWS',
           'VirtualCameraError', 'VirtualCameraRig', 'subject_position', 'weak_perspective_project']
