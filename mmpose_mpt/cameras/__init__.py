from .h36m_cameras import H36M_S1_CAMERA_PARAMS, h36m_s1_cameras, quaternion_to_matrix
from .projection import project_points
from .topdown_crop import apply_warp, topdown_crop
from .virtual_camera_rig import VALID_NUM_VIEWS, VirtualCameraRig
from .weak_perspective import weak_perspective_project

__all__ = ['H36M_S1_CAMERA_PARAMS', 'h36m_s1_cameras', 'quaternion_to_matrix', 'project_points',
           'apply_warp', 'topdown_crop', 'VALID_NUM_VIEWS', 'VirtualCameraRig',
           'weak_perspective_project']
