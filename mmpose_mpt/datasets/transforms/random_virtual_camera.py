"""RandomVirtualCamera: look at a centred MoCap mesh through one of the virtual cameras (Sec. 3.1.1)."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmpose.registry import TRANSFORMS

from ...cameras import VirtualCameraError, VirtualCameraRig, apply_warp, project_points
from ...cameras.topdown_crop import crop_from_box, crop_from_boxes
from .batched_transform import BatchedTransform

_FILE = 'mmpose_mpt/datasets/transforms/random_virtual_camera.py'
# Joints closer than this to the camera plane (or behind it) are not visible.
MIN_DEPTH = 1e-3  # metres


@TRANSFORMS.register_module()
class RandomVirtualCamera(BatchedTransform):
    """Pick a virtual camera, project the 3D joints, crop as mmpose's top-down pipeline does.

    Cheap (numpy on 17 points per sample; vectorised over a batch by :meth:`transform_batch`,
    see :class:`BatchedTransform`); the heavy work (body model, heatmaps) is batched in
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
        # per-view arrays, stacked so that a batch gathers them by view index
        self._RT = np.ascontiguousarray(self.rig.R.transpose(0, 2, 1))
        self._f32 = dict(cam_R=self.rig.R.astype(np.float32), cam_t=self.rig.t.astype(np.float32),
                         cam_f=self.rig.f.astype(np.float32), cam_c=self.rig.c.astype(np.float32))
        self.num_views = int(num_views)
        self.input_size = size
        self.padding = float(padding)
        self.random_view = bool(random_view)

    def draw(self, results: Dict) -> Optional[int]:
        return int(np.random.randint(self.num_views)) if self.random_view else None

    def _view(self, results: Dict, drawn: Optional[int]) -> int:
        if self.random_view:
            return drawn
        if results.get('view_index') is None:
            raise VirtualCameraError(
                f'{_FILE}: random_view=False needs results["view_index"] (set by the dataset)')
        return int(results['view_index']) % self.num_views

    @staticmethod
    def _joints(results: Dict) -> np.ndarray:
        joints = np.asarray(results.get('keypoints_3d', np.empty((0, 0))), np.float64)
        if joints.ndim != 2 or joints.shape[1] != 3 or len(joints) == 0:
            raise VirtualCameraError(
                f'{_FILE}: results["keypoints_3d"] must be a (K, 3) array of joints in metres, got '
                f'{"no such key" if "keypoints_3d" not in results else joints.shape}')
        return joints

    @staticmethod
    def _non_finite(results: Dict) -> VirtualCameraError:
        return VirtualCameraError(
            f'{_FILE}: results["keypoints_3d"] is not finite (NaN/inf joints; sample '
            f'{results.get("seq_name", "?")} frame {results.get("frame_index", "?")})')

    @staticmethod
    def _to_camera(joints: np.ndarray, RT: np.ndarray, t: np.ndarray) -> np.ndarray:
        """X R^T + t for (..., K, 3) joints and (..., 3, 3) R^T, element-wise (no matrix product:
        a sample gets the same numbers alone and in a batch)."""
        return (joints[..., 0:1] * RT[..., 0, :] + joints[..., 1:2] * RT[..., 1, :]
                + joints[..., 2:3] * RT[..., 2, :] + t)

    def transform(self, results: Dict) -> Dict:
        # one sample: transform_batch's arithmetic with scalar bookkeeping (a batch of one would
        # cost twice as many numpy calls; datasets read item by item take this path)
        joints = self._joints(results)
        if not np.isfinite(joints).all():
            raise self._non_finite(results)
        view = self._view(results, self.draw(results))
        joints_cam = self._to_camera(joints, self._RT[view], self.rig.t[view])
        visible = joints_cam[:, 2] > MIN_DEPTH
        px = project_points(joints_cam, self.rig.f[view], self.rig.c[view])
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
        results.update({k: v[view].copy() for k, v in self._f32.items()})
        results.update(
            view_index=view, warp_mat=crop['warp_mat'], bbox=crop['bbox'][None],
            bbox_center=crop['center'][None], bbox_scale=crop['scale'][None],
            input_size=self.input_size, keypoints=kp[None],
            keypoints_visible=visible[None].astype(np.float32))
        return results

    def transform_batch(self, batch: List[Dict], draws: List[Optional[int]]) -> List[Dict]:
        joints = [self._joints(r) for r in batch]
        if len({j.shape for j in joints}) > 1:   # different joint counts: one at a time
            return [self.transform_batch([r], [d])[0] for r, d in zip(batch, draws)]
        joints = np.stack(joints)                                              # (B, K, 3)
        finite = np.isfinite(joints).all(axis=(1, 2))
        if not finite.all():
            raise self._non_finite(batch[int(np.argmin(finite))])
        views = np.array([self._view(r, d) for r, d in zip(batch, draws)])
        joints_cam = self._to_camera(joints, self._RT[views][:, None], self.rig.t[views][:, None])
        visible = joints_cam[..., 2] > MIN_DEPTH                               # (B, K)
        px = project_points(joints_cam, self.rig.f[views], self.rig.c[views])  # (B, K, 2)
        # the crop box from the extent of the visible joints (the whole image if none)
        lo = np.where(visible[..., None], px, np.inf).min(1)
        hi = np.where(visible[..., None], px, -np.inf).max(1)
        none = ~visible.any(1)
        if none.any():
            lo[none], hi[none] = 0.0, self.rig.image_size[views[none]]
        box = np.concatenate([lo, hi], 1).astype(np.float32).astype(np.float64)  # mmpose boxes: f32
        crop = crop_from_boxes(box, self.input_size, self.padding)
        kp = apply_warp(px, crop['warp_mat']).astype(np.float32)
        kp[~visible] = 0.0
        vis = visible.astype(np.float32)
        cams = {k: v[views] for k, v in self._f32.items()}
        for i, r in enumerate(batch):
            r.update({k: v[i] for k, v in cams.items()})
            r.update(view_index=int(views[i]), warp_mat=crop['warp_mat'][i],
                     bbox=crop['bbox'][i:i + 1], bbox_center=crop['center'][i:i + 1],
                     bbox_scale=crop['scale'][i:i + 1], input_size=self.input_size,
                     keypoints=kp[i:i + 1], keypoints_visible=vis[i:i + 1])
        return batch

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_views={self.num_views}, input_size={self.input_size}, '
                f'padding={self.padding}, random_view={self.random_view})')
