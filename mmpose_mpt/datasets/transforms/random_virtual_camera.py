"""RandomVirtualCamera: look at a centred MoCap mesh through one of the virtual cameras (Sec. 3.1.1)."""
from typing import Dict, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmpose.registry import TRANSFORMS

from ...cameras import VirtualCameraError, VirtualCameraRig, apply_warp, project_points
from ...cameras.topdown_crop import crop_from_box

_FILE = 'mmpose_mpt/datasets/transforms/random_virtual_camera.py'
# Joints closer than this to the camera plane (or behind it) are not visible.
MIN_DEPTH = 1e-3  # metres


@TRANSFORMS.register_module()
class RandomVirtualCamera(BaseTransform):
    """Pick a virtual camera, project the 3D joints, crop as mmpose's top-down pipeline does.

    Per sample and cheap (numpy on 17 points); the heavy work (body model, heatmaps) is batched in
    :class:`MoCapHeatmapPreprocessor`. Random draws use ``np.random`` (mmengine seeds each worker).
    Projection is an undistorted pinhole: the heatmaps are synthetic, so lens distortion would only
    add a camera-specific warp that real top-down crops do not reproduce either.

    Args:
        num_views: 1, 2, 4 or 8 virtual cameras (see :class:`VirtualCameraRig` for which).
        input_size: (w, h) of the crop = heatmap resolution in pixels (224 or 112).
        padding: crop enlargement (mmpose's ``GetBBoxCenterScale``).
        random_view: draw the view uniformly (training); else use ``results['view_index'] %
            num_views`` (the dataset enumerates mesh × view, so evaluation is deterministic).

    Required keys: ``keypoints_3d`` (K, 3) finite, canonical frame (z-up, pelvis at the origin, metres);
    ``view_index`` int when ``random_view=False``.

    Added/updated keys: ``view_index`` int, ``cam_R`` (3, 3), ``cam_t`` (3,) (``X_cam = R X + t``,
    metres), ``cam_f`` (2,), ``cam_c`` (2,) pixels, ``warp_mat`` (2, 3) image → crop pixels,
    ``bbox`` (1, 4) xyxy tight box of the visible joints (image pixels), ``bbox_center`` (1, 2),
    ``bbox_scale`` (1, 2) (padded, aspect-fixed, image pixels), ``input_size`` (w, h),
    ``keypoints`` (1, K, 2) float32 crop pixels (0 for invisible joints), ``keypoints_visible``
    (1, K) float32 (1 for joints in front of the camera). All arrays float32.
    """

    def __init__(self, num_views: int = 4, input_size: Sequence[int] = (224, 224),
                 padding: float = 1.25, random_view: bool = True):
        self.rig = VirtualCameraRig(num_views)
        try:
            size = tuple(int(v) for v in input_size)
        except (TypeError, ValueError):
            size = ()
        if len(size) != 2 or min(size) <= 0 or tuple(input_size) != size:
            raise VirtualCameraError(
                f'{_FILE}: input_size must be two positive integers (w, h), got {input_size!r}')
        if not padding > 0:
            raise VirtualCameraError(f'{_FILE}: padding must be > 0, got {padding!r}')
        # per-view float32 copies for the results (made once: this runs for every training sample)
        self._RT = [np.ascontiguousarray(R.T) for R in self.rig.R]
        self._f32 = [dict(cam_R=self.rig.R[v].astype(np.float32), cam_t=self.rig.t[v].astype(np.float32),
                          cam_f=self.rig.f[v].astype(np.float32), cam_c=self.rig.c[v].astype(np.float32))
                     for v in range(len(self.rig.R))]
        self.num_views = int(num_views)
        self.input_size = size
        self.padding = float(padding)
        self.random_view = bool(random_view)

    def _view(self, results: Dict) -> int:
        if self.random_view:
            return int(np.random.randint(self.num_views))
        if results.get('view_index') is None:
            raise VirtualCameraError(
                f'{_FILE}: random_view=False needs results["view_index"] (set by the dataset)')
        return int(results['view_index']) % self.num_views

    def transform(self, results: Dict) -> Optional[Dict]:
        joints = np.asarray(results.get('keypoints_3d', np.empty((0, 0))), np.float64)
        if joints.ndim != 2 or joints.shape[1] != 3 or len(joints) == 0:
            raise VirtualCameraError(
                f'{_FILE}: results["keypoints_3d"] must be a (K, 3) array of joints in metres, got '
                f'{"no such key" if "keypoints_3d" not in results else joints.shape}')
        if not np.isfinite(joints).all():
            raise VirtualCameraError(
                f'{_FILE}: results["keypoints_3d"] is not finite (NaN/inf joints; sample '
                f'{results.get("seq_name", "?")} frame {results.get("frame_index", "?")})')
        view = self._view(results)
        joints_cam = joints.dot(self._RT[view])
        joints_cam += self.rig.t[view]
        visible = joints_cam[:, 2] > MIN_DEPTH
        px = project_points(joints_cam, self.rig.f[view], self.rig.c[view])
        # the crop box from the extent of the visible joints (crop_from_box: no per-call validation of
        # topdown_crop, whose numpy overhead on 17 points is the cost of this every-sample transform)
        all_visible = bool(visible.all())
        if all_visible:
            lo, hi = px.min(0), px.max(0)
        elif visible.any():
            lo, hi = px[visible].min(0), px[visible].max(0)
        else:  # nothing in front of the camera (never for a centred mesh): crop the whole image
            lo, hi = np.zeros(2), self.rig.image_size[view]
        box = [float(np.float32(v)) for v in (lo[0], lo[1], hi[0], hi[1])]   # mmpose boxes are f32
        crop = crop_from_box(*box, self.input_size, self.padding)
        kp = apply_warp(px, crop['warp_mat']).astype(np.float32)
        if not all_visible:
            kp[~visible] = 0.0
        results.update({k: v.copy() for k, v in self._f32[view].items()})
        results.update(
            view_index=view, warp_mat=crop['warp_mat'], bbox=crop['bbox'][None],
            bbox_center=crop['center'][None], bbox_scale=crop['scale'][None],
            input_size=self.input_size, keypoints=kp[None],
            keypoints_visible=visible[None].astype(np.float32))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_views={self.num_views}, input_size={self.input_size}, '
                f'padding={self.padding}, random_view={self.random_view})')
