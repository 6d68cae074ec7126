"""The four Human3.6M cameras of Subject 1 (the virtual cameras of MPT, Appendix A).

Numbers as published with Human3.6M (Ionescu et al., TPAMI 2014), copied digit for digit from
VideoPose3D (github.com/facebookresearch/VideoPose3D, commit 1afb1ca0f1237776518469876342fc8669d3f6a9,
``common/h36m_dataset.py``: ``h36m_cameras_intrinsic_params`` and ``h36m_cameras_extrinsic_params['S1']``).

Conventions (verified against VideoPose3D's ``common/camera.py`` / ``common/quaternion.py``):
``orientation`` is the camera→world rotation as a unit quaternion (w, x, y, z) (Hamilton, active:
``qrot(q, v) = v + 2 (w u×v + u×(u×v))``); ``translation`` is the camera centre C in the z-up world,
millimetres. ``world_to_camera(X, q, C) = qrot(qinverse(q), X - C)``, i.e. ``X_cam = R(q)^T (X - C)``.
Camera frame: x right, y down (image rows), z forward (OpenCV). Intrinsics: focal length f and
principal point c in pixels, radial k1..k3 and tangential p1, p2 distortion, image ``res_w × res_h``.
"""
from typing import Dict, List

import numpy as np

H36M_S1_CAMERA_PARAMS: List[Dict] = [
    dict(id='54138969', center=(512.54150390625, 515.4514770507812),
         focal_length=(1145.0494384765625, 1143.7811279296875),
         radial_distortion=(-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
         tangential_distortion=(-0.0009756988729350269, -0.00142447161488235), res_w=1000, res_h=1002,
         orientation=(0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
         translation=(1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
    dict(id='55011271', center=(508.8486328125, 508.0649108886719),
         focal_length=(1149.6756591796875, 1147.5916748046875),
         radial_distortion=(-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
         tangential_distortion=(-0.0016190266469493508, -0.0027408944442868233), res_w=1000, res_h=1000,
         orientation=(0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
         translation=(1761.278564453125, -5078.0068359375, 1606.2650146484375)),
    dict(id='58860488', center=(519.8158569335938, 501.40264892578125),
         focal_length=(1149.1407470703125, 1148.7989501953125),
         radial_distortion=(-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
         tangential_distortion=(0.0014843869721516967, -0.0007599993259645998), res_w=1000, res_h=1000,
         orientation=(0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
         translation=(-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
    dict(id='60457274', center=(514.9682006835938, 501.88201904296875),
         focal_length=(1145.5113525390625, 1144.77392578125),
         radial_distortion=(-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
         tangential_distortion=(-0.0005872055771760643, -0.0018133620033040643), res_w=1000, res_h=1002,
         orientation=(0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
         translation=(-1794.7896728515625, -3722.698974609375, 1574.8927001953125)),
]


# The name of the camera API in the project contract.
H36M_S1_CAMERAS = H36M_S1_CAMERA_PARAMS


def quaternion_to_matrix(q) -> np.ndarray:
    """(w, x, y, z) quaternion (normalised here) → (3, 3) rotation matrix ``R`` with ``R v = q v q*``."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def h36m_s1_cameras() -> List[Dict[str, np.ndarray]]:
    """The 4 S1 cameras in metres, in the published order (54138969, 55011271, 58860488, 60457274).

    Returns:
        One dict per camera: ``id`` str, ``R`` (3, 3) world→camera rotation (``X_cam = R (X - C)``),
        ``C`` (3,) camera centre in the H36M world (z-up, metres), ``f`` (2,) and ``c`` (2,) pixels,
        ``k`` (3,) radial and ``p`` (2,) tangential distortion (kept for reference, not applied),
        ``image_size`` (2,) (w, h) pixels.
    """
    cams = []
    for p in H36M_S1_CAMERA_PARAMS:
        cams.append(dict(id=p['id'], R=quaternion_to_matrix(p['orientation']).T,
                         C=np.asarray(p['translation'], np.float64) / 1000.0,
                         f=np.asarray(p['focal_length'], np.float64),
                         c=np.asarray(p['center'], np.float64),
                         k=np.asarray(p['radial_distortion'], np.float64),
                         p=np.asarray(p['tangential_distortion'], np.float64),
                         image_size=np.array([p['res_w'], p['res_h']], np.float64)))
    return cams
