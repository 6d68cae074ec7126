"""Virtual camera rig of MPT (Sec. 3.1, Appendix A/B): Human3.6M S1 cameras around a centred mesh.

Placement. The canonical mesh frame is z-up (as AMASS and the Human3.6M world) with the pelvis at the
origin. In the H36M world we put the subject where the four cameras look: the least-squares
intersection of their optical axes, in the ground plane (x, y), with the pelvis at a standing height of
``PELVIS_HEIGHT`` = 0.92 m (z). The rig is the H36M cameras translated by minus that point, i.e. "at
H36M camera height, looking at the subject" (paper, Sec. 3.1): distances 4.4–5.7 m, camera centres
0.57–0.69 m above the pelvis (1.49–1.61 m above the floor), looking slightly down.

Orientation. Cameras keep their published rotations (they are *not* re-aimed at the pelvis): the pelvis
then lies 4–8° off the optical axis, exactly as a subject in the middle of the H36M room does in the
real footage that MPT is evaluated on, so the synthetic perspective matches the test data. The
off-centre image position itself is irrelevant because the crop around the projected joints (mmpose's
top-down box) re-centres the person, as for real frames.

Interpolated views (Appendix B, Fig. 8). Real cameras are sorted by azimuth around the subject; for
each pair of azimuth neighbours (a, b) a new camera gets the centre interpolated in cylindrical
coordinates (mid-azimuth along the arc a→b, mean radius, mean height — so it stays on the ring), the
rotation ``slerp(R_a, R_b, 0.5)`` and averaged intrinsics (f, c, image size).

View order (the view index used by datasets and ``RandomVirtualCamera``):
0–3 = H36M S1 cameras 54138969, 55011271, 58860488, 60457274 (published order); 4–7 = interpolated
views, one per azimuth gap, counter-clockwise from camera 54138969: (54138969, 58860488),
(58860488, 60457274), (60457274, 55011271), (55011271, 54138969). ``num_views`` takes a prefix:
1 → camera 54138969; 2 → 54138969 and 55011271 (the first two published cameras, ~140° apart,
facing the subject from the two long sides of the room); 4 → the four; 8 → the four plus the
four interpolated views. So ``VirtualCameraRig(n)`` views equal the first n views of
``VirtualCameraRig(8)``.
"""
from typing import Dict, List

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from .h36m_cameras import h36m_s1_cameras

PELVIS_HEIGHT = 0.92  # metres above the floor for a standing adult (SMPL mean shape: ~0.9 m)
VALID_NUM_VIEWS = (1, 2, 4, 8)


class VirtualCameraError(ValueError):
    """Bad virtual-camera configuration or input (raised by the rig, the crop and the transform)."""


def subject_position(cams: List[Dict[str, np.ndarray]],
                     pelvis_height: float = PELVIS_HEIGHT) -> np.ndarray:
    """Where the subject stands in the H36M world.

    Args:
        cams: H36M cameras as returned by :func:`h36m_s1_cameras` (``R`` world→camera, ``C`` metres).
        pelvis_height: metres above the floor.

    Returns:
        (3,) metres: the point minimising the summed squared distances to all optical axes, with its
        z replaced by ``pelvis_height`` (the axes meet ~1.5 m up; the pelvis is lower).
    """
    a, b = np.zeros((3, 3)), np.zeros(3)
    for cam in cams:
        d = cam['R'].T @ np.array([0.0, 0.0, 1.0])  # optical axis in the world
        proj = np.eye(3) - np.outer(d, d)           # distance to the line = |proj (X - C)|
        a += proj
        b += proj @ cam['C']
    p = np.linalg.solve(a, b)
    return np.array([p[0], p[1], pelvis_height])


def _azimuth(centre: np.ndarray) -> float:
    return float(np.arctan2(centre[1], centre[0]))


class VirtualCameraRig:
    """The virtual cameras, as arrays over views, in the canonical centred mesh frame (z-up, metres).

    Args:
        num_views: 1, 2, 4 or 8 (see the module docstring for which cameras).

    Attributes:
        num_views: V.
        R: (V, 3, 3) world→camera rotations; ``X_cam = R @ X + t`` (camera: x right, y down, z fwd).
        t: (V, 3) translations (metres), ``t = -R @ centers``.
        centers: (V, 3) camera centres in the mesh frame (metres).
        f: (V, 2), c: (V, 2) focal lengths and principal points (pixels).
        image_size: (V, 2) (w, h) pixels.
        interpolated: (V,) bool, True for the interpolated views.
        names: list of V str, the H36M camera id or ``'mid(<id_a>,<id_b>)'``.
    """

    def __init__(self, num_views: int = 4):
        if isinstance(num_views, bool) or num_views not in VALID_NUM_VIEWS:
            raise VirtualCameraError(
                f'mmpose_mpt/cameras/virtual_camera_rig.py: num_views must be one of '
                f'{VALID_NUM_VIEWS}, got {num_views!r}')
        cams = h36m_s1_cameras()
        subject = subject_position(cams)
        real = [dict(R=c['R'], C=c['C'] - subject, f=c['f'], c=c['c'],
                     image_size=c['image_size'], interpolated=False, name=c['id']) for c in cams]
        views = (real + self._interpolate(real))[:num_views]
        self.num_views = int(num_views)
        self.R = np.stack([v['R'] for v in views])
        self.centers = np.stack([v['C'] for v in views])
        # per view, so a camera is bit-identical whatever the rig size
        self.t = np.stack([-v['R'] @ v['C'] for v in views])
        self.f = np.stack([v['f'] for v in views])
        self.c = np.stack([v['c'] for v in views])
        self.image_size = np.stack([v['image_size'] for v in views])
        self.interpolated = np.array([v['interpolated'] for v in views])
        self.names = [v['name'] for v in views]

    @staticmethod
    def _interpolate(views: List[dict]) -> List[dict]:
        """One view between each pair of azimuth neighbours, counter-clockwise from ``views[0]``."""
        az = np.array([_azimuth(v['C']) for v in views])
        ring = sorted(range(len(views)), key=lambda i: (az[i] - az[0]) % (2 * np.pi))
        out = []
        for k, ia in enumerate(ring):
            ib = ring[(k + 1) % len(ring)]
            a, b = views[ia], views[ib]
            gap = (az[ib] - az[ia]) % (2 * np.pi)  # ccw arc a → b
            mid = az[ia] + 0.5 * gap
            radius = 0.5 * (np.linalg.norm(a['C'][:2]) + np.linalg.norm(b['C'][:2]))
            centre = np.array([radius * np.cos(mid), radius * np.sin(mid),
                               0.5 * (a['C'][2] + b['C'][2])])
            slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([a['R'], b['R']])))
            out.append(dict(R=slerp([0.5]).as_matrix()[0], C=centre, f=0.5 * (a['f'] + b['f']),
                            c=0.5 * (a['c'] + b['c']),
                            image_size=0.5 * (a['image_size'] + b['image_size']),
                            interpolated=True, name=f"mid({a['name']},{b['name']})"))
        return out

    def __len__(self) -> int:
        return self.num_views

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(num_views={self.num_views}, views={self.names})'
