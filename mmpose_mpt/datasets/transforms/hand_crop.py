"""HandCrop: the square crop of a hand sample (MoCap pre-training or image), wrist-relative 3D targets.

One transform for both hand paths, so pre-training heatmaps and fine-tuning images see the same crop:

* the box: ``center`` / ``scale`` from the dataset (METRO / SPIN convention, side = 200 * scale px;
  FreiHAND's items carry it) when ``use_dataset_box`` and present, else the square around the visible
  2D joints, side = ``padding`` x their larger extent;
* augmentation (training): scale ``s`` (box side times s), in-plane rotation ``rot`` (METRO's hand
  augmentation: rot ~ N(0, rot_std) clipped to +-2 rot_std, 0 with probability ``1 - rot_prob``; scale
  ~ N(1, scale_std) clipped to [1 - 2 scale_std, 1 + 2 scale_std]), RGB channel noise U(0.6, 1.4) for
  images (``color_noise``); no flip (right hands only, as METRO);
* the warp is :func:`~mmpose_mpt.datasets.transforms.mesh_image_crop.crop_warp_matrix` (image px ->
  crop px, pixel centres at integers); the 3D joints and vertices are rotated about the camera's z
  axis by the same ``R(-rot)`` (METRO's ``rot_aa`` for the hand) and made relative to the wrist
  (joint 0, FreiHAND / METRO's root).

Required keys: ``keypoints_2d`` (21, 3) [u, v, conf] image px; ``keypoints_3d`` (21, 3 | 4) camera
frame, metres (4th column conf). Optional: ``vertices`` (V, 3) camera frame (metres), ``img`` (H, W, 3)
uint8, ``has_vertices`` / ``has_2d_joints`` / ``has_3d_joints`` (default 1), ``center`` (2,) /
``scale``.

Added / updated keys: ``img`` (S, S, 3) (when present), ``warp_mat`` (2, 3) float32, ``keypoints``
(1, 21, 2) float32 crop px and ``keypoints_visible`` (1, 21) (what MHM / the heatmaps use),
``joints_2d`` (21, 3) float32 = normalised crop coordinates ``2 x / S - 1`` + conf, ``joints_3d``
(21, 4) float32 wrist-relative (metres) + conf, ``vertices`` (V, 3) float32 wrist-relative,
``has_vertices`` / ``has_2d_joints`` / ``has_3d_joints`` float32, ``input_size`` (S, S), ``bbox`` (1, 4)
the crop box (image px, xyxy, before rotation),
``crop_rotation`` float (degrees), ``crop_scale`` float.
"""
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
from mmpose.registry import TRANSFORMS

from .load_mesh_image import MeshImageError, describe_sample
from .mesh_image_crop import BOX_UNIT, crop_warp_matrix, rotation_2d


@TRANSFORMS.register_module()
class HandCrop:
    """Crop a hand sample (see the module docstring).

    Args:
        input_size: (w, h) of the crop; square (224, 224 in the paper / METRO).
        padding: box side / extent of the 2D joints (when the box comes from the joints).
        use_dataset_box: use ``center`` / ``scale`` of the item when present.
        rot_std: std of the rotation augmentation, degrees (METRO: 90; 0 = off).
        rot_prob: probability that a sample is rotated (METRO: 0.4).
        scale_std: std of the scale augmentation (METRO: 0.25; 0 = off).
        color_noise: per-channel pixel factor U(1 - n, 1 + n) (METRO: 0.4; images only).
        test_mode: no augmentation.
    """

    def __init__(self, input_size: Sequence[int] = (224, 224), padding: float = 1.5,
                 use_dataset_box: bool = True, rot_std: float = 0.0, rot_prob: float = 0.4,
                 scale_std: float = 0.0, color_noise: float = 0.0, test_mode: bool = False) -> None:
        size = tuple(int(v) for v in input_size)
        if len(size) != 2 or size[0] != size[1] or size[0] < 1:
            raise ValueError(f'HandCrop: input_size must be a square (S, S), got {input_size!r}')
        if not padding > 0:
            raise ValueError(f'HandCrop: padding must be > 0, got {padding!r}')
        if min(rot_std, scale_std, color_noise) < 0 or not 0 <= rot_prob <= 1:
            raise ValueError('HandCrop: rot_std, scale_std, color_noise must be >= 0 and rot_prob in [0, 1]')
        self.input_size = size
        self.padding = float(padding)
        self.use_dataset_box = bool(use_dataset_box)
        self.rot_std, self.rot_prob = float(rot_std), float(rot_prob)
        self.scale_std, self.color_noise = float(scale_std), float(color_noise)
        self.test_mode = bool(test_mode)

    def _box(self, results: Dict, uv: np.ndarray, conf: np.ndarray):
        if self.use_dataset_box and 'center' in results and 'scale' in results:
            side = float(np.asarray(results['scale'], np.float64).reshape(-1)[0]) * BOX_UNIT
            return np.asarray(results['center'], np.float64).reshape(2), side
        pts = uv[conf > 0] if (conf > 0).any() else uv
        lo, hi = pts.min(0), pts.max(0)
        return (lo + hi) / 2.0, max(float((hi - lo).max()) * self.padding, 1.0)

    def _augment(self):
        if self.test_mode:
            return 0.0, 1.0
        rot = 0.0
        if self.rot_std > 0 and np.random.rand() < self.rot_prob:
            rot = float(np.clip(np.random.randn() * self.rot_std, -2 * self.rot_std, 2 * self.rot_std))
        s = 1.0
        if self.scale_std > 0:
            s = float(np.clip(1 + np.random.randn() * self.scale_std, 1 - 2 * self.scale_std,
                              1 + 2 * self.scale_std))
        return rot, s

    def transform(self, results: Dict) -> Optional[Dict]:
        where = describe_sample(results)
        kp2 = np.asarray(results.get('keypoints_2d', np.empty(0)), np.float64)
        kp3 = np.asarray(results.get('keypoints_3d', np.empty(0)), np.float64)
        if kp2.ndim != 2 or kp2.shape[1] != 3 or kp3.ndim != 2 or kp3.shape[1] not in (3, 4) \
                or len(kp2) != len(kp3):
            raise MeshImageError(f'{where}: HandCrop needs keypoints_2d (J, 3) and keypoints_3d (J, 3|4), '
                                 f'got {kp2.shape} and {kp3.shape}')
        if not (np.isfinite(kp2).all() and np.isfinite(kp3).all()):
            raise MeshImageError(f'{where}: keypoints_2d / keypoints_3d contain NaN / inf')
        conf3 = kp3[:, 3] if kp3.shape[1] == 4 else np.ones(len(kp3))
        center, side = self._box(results, kp2[:, :2], kp2[:, 2])
        rot, s = self._augment()
        size = self.input_size[0]
        M = crop_warp_matrix(center, side * s, rot, False, size)
        if 'img' in results:
            img = cv2.warpAffine(results['img'], M, (size, size), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            if self.color_noise > 0 and not self.test_mode:
                pn = np.random.uniform(1 - self.color_noise, 1 + self.color_noise, 3)
                img = np.clip(img.astype(np.float32) * pn[None, None], 0, 255).round().astype(np.uint8)
            results['img'] = img
            results['img_shape'] = img.shape[:2]
        crop = kp2[:, :2] @ M[:, :2].T + M[:, 2]
        R = np.eye(3)
        R[:2, :2] = rotation_2d(rot)
        root = kp3[0, :3].copy()
        j3 = (kp3[:, :3] - root) @ R.T
        results['joints_3d'] = np.concatenate([j3, conf3[:, None]], 1).astype(np.float32)
        results['joints_2d'] = np.concatenate([2 * crop / size - 1, kp2[:, 2:3]], 1).astype(np.float32)
        results['keypoints'] = crop[None].astype(np.float32)
        results['keypoints_visible'] = (kp2[None, :, 2] > 0).astype(np.float32)
        if 'vertices' in results:
            v = np.asarray(results['vertices'], np.float64)
            results['vertices'] = ((v - root) @ R.T).astype(np.float32)
        for k in ('has_vertices', 'has_2d_joints', 'has_3d_joints'):
            results[k] = np.float32(results.get(k, 1.0 if k != 'has_vertices' or 'vertices' in results else 0.0))
        half = side * s / 2
        results.update(warp_mat=M.astype(np.float32), input_size=self.input_size, crop_rotation=rot,
                       crop_scale=s, bbox=np.array([[center[0] - half, center[1] - half, center[0] + half,
                                                     center[1] + half]], np.float32))
        return results

    def __call__(self, results: Dict) -> Optional[Dict]:
        return self.transform(results)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, padding={self.padding}, '
                f'rot_std={self.rot_std}, scale_std={self.scale_std}, color_noise={self.color_noise}, '
                f'test_mode={self.test_mode})')
