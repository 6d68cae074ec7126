"""Virtual camera rig of MPT (Sec. 3.1, Appendix A/B): Human3.6M S1 cameras around a centred mesh.

The canonical mesh frame is z-up (as AMASS and the Human3.6M world) with the SMPL pelvis at the origin.
The subject stands where the four H36M cameras look: the least-squares intersection of their optical
axes in the ground plane, with the pelvis at a standing height of 0.92 m. Cameras keep their published
orientations and heights, so the synthetic views have H36M's distances (4.4–5.7 m), heights (~1.5 m)
and downward tilt. Their principal axes do not pass exactly through the pelvis; the crop around the
projected joints (mmpose's top-down box) makes that irrelevant, as for real H36M frames.

Interpolated views (Appendix B, Fig. 8): between azimuth neighbours, the camera centre is interpolated
in cylindrical coordinates around the subject (mean azimuth, radius and height) and the rotation by
slerp at t = 0.5; intrinsics are averaged.

``num_views``: 1 → camera 54138969; 2 → 54138969 and 58860488 (the two cameras on the same side,
+y); 4 → all four; 8 → the four plus four interpolated views.
"""
from typing import List

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from .h36m_cameras import h36m_s1_cameras

PELVIS_HEIGHT = 0.92  # metres above the floor for a standing adult
VALID_NUM_VIEWS = (1, 2, 4, 8)
_SUBSETS = {1: [0], 2: [0, 2], 4: [0, 1, 2, 3]}


def subject_position(cams: List[dict]) -> np.ndarray:
    """Point on the floor plane (x, y) closest to all optical axes, at pelvis height (z)."""
    a, b = np.zeros((3, 3)), np.zeros(3)
    for cam in cams:
        d = cam['R'].T @ np.array([0.0, 0.0, 1.0])
        proj = np.eye(3) - np.outer(d, d)
        a += proj
        b += proj @ cam['C']
    p = np.linalg.solve(a, b)
    return np.array([p[0], p[1], PELVIS_HEIGHT])


class VirtualCameraRig:
    """The virtual cameras, as arrays over views, in the canonical centred mesh frame.

    Attributes:
        R: (V, 3, 3) world→camera rotations; ``X_cam = R @ X + t``.
        t: (V, 3) translations (metres).
        centers: (V, 3) camera centres in the mesh frame.
        f: (V, 2), c: (V, 2) focal lengths and principal points (pixels).
        image_size: (V, 2) (w, h) pixels.
        interpolated: (V,) bool, True for the interpolated views.
    """

    def __init__(self, num_views: int = 4):
        if num_views not in VALID_NUM_VIEWS:
            raise ValueError(f'num_views must be one of {VALID_NUM_VIEWS}, got {num_views}')
        cams = h36m_s1_cameras()
        subject = subject_position(cams)
        views = [dict(R=c['R'], C=c['C'] - subject, f=c['f'], c=c['c'], image_size=c['image_size'],
                      interpolated=False) for c in cams]
        if num_views == 8:
            views = views + self._interpolate(views)
        else:
            views = [views[i] for i in _SUBSETS[num_views]]
        self.num_views = num_views
        self.R = np.stack([v['R'] for v in views])
        self.centers = np.stack([v['C'] for v in views])
        self.t = -np.einsum('vij,vj->vi', self.R, self.centers)
        self.f = np.stack([v['f'] for v in views])
        self.c = np.stack([v['c'] for v in views])
        self.image_size = np.stack([v['image_size'] for v in views])
        self.interpolated = np.array([v['interpolated'] for v in views])

    @staticmethod
    def _interpolate(views: List[dict]) -> List[dict]:
        az = np.array([np.arctan2(v['C'][1], v['C'][0]) for v in views])
        order = np.argsort(az)
        out = []
        for i in range(len(order)):
            a, b = views[order[i]], views[order[(i + 1) % len(order)]]
            az_a, az_b = az[order[i]], az[order[(i + 1) % len(order)]]
            if az_b <= az_a:
                az_b += 2 * np.pi
            mid = 0.5 * (az_a + az_b)
            radius = 0.5 * (np.linalg.norm(a['C'][:2]) + np.linalg.norm(b['C'][:2]))
            centre = np.array([radius * np.cos(mid), radius * np.sin(mid), 0.5 * (a['C'][2] + b['C'][2])])
            slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([a['R'], b['R']])))
            out.append(dict(R=slerp([0.5]).as_matrix()[0], C=centre, f=0.5 * (a['f'] + b['f']),
                            c=0.5 * (a['c'] + b['c']), image_size=a['image_size'], interpolated=True))
        return out
