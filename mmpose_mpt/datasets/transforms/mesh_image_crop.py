"""MeshImageCrop: METRO / SPIN's 224×224 crop of a mesh sample, with their training augmentation.

Geometry (SPIN ``utils/imutils.py`` ``get_transform`` / ``crop`` / ``rot_aa`` / ``flip_*``, identical in
METRO ``metro/utils/image_ops.py`` and ``metro/datasets/human_mesh_tsv.py``), written as ONE affine
map applied by ``cv2.warpAffine`` (SPIN pads, rotates and resizes in three steps):

* the box is the square of side ``side = 200 * scale * s`` px centred at ``center`` (``s`` the scale
  augmentation); ``k = 224 / side``;
* ``crop = k R(-rot) (p - center) + 112``, ``R(a) = [[cos a, -sin a], [sin a, cos a]]``: a positive
  ``rot`` turns the image content counter-clockwise as displayed (SPIN's ``imrotate`` / METRO's
  ``cv2.getRotationMatrix2D``); the same matrix mmpose's ``get_warp_matrix(center, (side, side), rot,
  (224, 224))`` builds (tested);
* flip (after the rotation, as SPIN): ``x -> 224 - x``, the mirror about the box centre, so that the
  normalised x is negated exactly as SPIN's ``flip_kp`` does, consistently with the 3D flip (x -> -x)
  under the weak-perspective camera; the flipped crop is ``np.fliplr`` of the unflipped one shifted by
  one column.

**Pixel convention**: OpenCV's / mmpose's: pixel (i, j) has its centre at x = j, y = i, for the image, the
2D annotations and the crop; ``warp_mat`` (image px → crop px) is what ``cv2.warpAffine`` gets, so a
joint's crop coordinates and the image content agree exactly (tested with dots drawn in an image).
SPIN instead maps 1-based pixels and truncates the result to integers (``astype(int) + 1``), and its
crop is placed at integer pixel offsets: its joints and crops differ from these by < 1.5 crop pixels.
Normalised coordinates are ``2 x / 224 - 1`` of the unrounded crop coordinates.

3D joints: minus the J24 pelvis (slot 14, METRO), x/y rotated by ``R(-rot)`` (z unchanged), flipped by
``J24_FLIP_PERM`` with x negated. SMPL pose: global orientation left-multiplied by the same rotation about
the camera's z axis (SPIN ``rot_aa``), flipped by ``SMPL_POSE_FLIP_PERM`` with axis-angle y, z negated.
Pixel noise (training): each RGB channel times U(0.6, 1.4), clipped to [0, 255] and rounded (uint8).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmpose.registry import TRANSFORMS

from ...body_models.j24 import J24_FLIP_PERM, J24_PELVIS_INDEX, NUM_J24, SMPL_POSE_FLIP_PERM
from .batched_transform import BatchedTransform
from .load_mesh_image import MeshImageError, describe_sample

# SPIN / METRO box convention: scale = box side / 200 px
BOX_UNIT = 200.0
_J24_FLIP = np.asarray(J24_FLIP_PERM)
_POSE_FLIP = np.asarray(SMPL_POSE_FLIP_PERM)
_INTERPOLATION = {'nearest': cv2.INTER_NEAREST, 'bilinear': cv2.INTER_LINEAR, 'bicubic': cv2.INTER_CUBIC,
                  'area': cv2.INTER_AREA}


def rotation_2d(rot_deg: float) -> np.ndarray:
    """(2, 2) ``R(-rot)``: the in-plane rotation of image / camera x, y for a crop rotated by ``rot``
    degrees (SPIN: ``rot_rad = -rot * pi / 180``, ``[[cos, -sin], [sin, cos]]``)."""
    a = np.deg2rad(-float(rot_deg))
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s], [s, c]])


def crop_warp_matrix(center: Sequence[float], side: float, rot_deg: float = 0.0, flip: bool = False,
                     size: int = 224) -> np.ndarray:
    """(2, 3) float64 affine map image pixels → crop pixels (pixel centres at integers, see the module
    docstring): ``size / side * R(-rot) (p - center) + size / 2``, then ``x -> size - x`` if ``flip``."""
    A = rotation_2d(rot_deg) * (size / float(side))
    t = size / 2.0 - A @ np.asarray(center, np.float64)
    M = np.concatenate([A, t[:, None]], 1)
    if flip:
        M[0] = -M[0]
        M[0, 2] += size
    return M


def rotate_global_orient(aa: np.ndarray, rot_deg: float) -> np.ndarray:
    """SPIN's ``rot_aa``: axis-angle (3,) of ``Rz(-rot) @ Rodrigues(aa)`` (rotation about the camera z
    axis, the 3D counterpart of the crop rotation)."""
    Rz = np.eye(3)
    Rz[:2, :2] = rotation_2d(rot_deg)
    R, _ = cv2.Rodrigues(np.asarray(aa, np.float64).reshape(3, 1))
    out, _ = cv2.Rodrigues(Rz @ R)
    return out.reshape(3)


def flip_smpl_pose(pose: np.ndarray) -> np.ndarray:
    """SPIN's ``flip_pose``: left/right joints swapped, axis-angle y and z negated ((72,) → (72,))."""
    out = np.asarray(pose)[_POSE_FLIP].copy()
    out[1::3] *= -1
    out[2::3] *= -1
    return out


@TRANSFORMS.register_module()
class MeshImageCrop(BatchedTransform):
    """Crop a mesh sample's image to ``input_size`` around its box, METRO / SPIN style.

    Required keys (``MeshImageDataset`` + :class:`LoadMeshImage`): ``img`` (H, W, 3) uint8 BGR,
    ``center`` (2,) px, ``scale`` (box side / 200), ``keypoints_2d_j24`` (24, 3) [x, y, conf] px,
    ``keypoints_3d_j24`` (24, 4) [x, y, z, conf] metres (camera frame), ``smpl_pose`` (72,),
    ``smpl_betas`` (10,), ``has_3d_joints``.

    Adds / replaces: ``img`` (S, S, 3) uint8 BGR crop (pixel noise applied in training); ``joints_2d``
    float32 (24, 3) [x, y] in [-1, 1] (``2 x / S - 1``) + conf; ``joints_3d`` float32 (24, 4) pelvis-
    centred, rotated, flipped + conf (0 everywhere when ``has_3d_joints`` is 0); ``smpl_pose`` float32
    (72,) rotated / flipped; ``smpl_betas`` float32 (10,); ``warp_mat`` float32 (2, 3) image px → crop
    px (flip included); ``input_size`` (S, S); ``flip`` bool; ``rotation`` degrees; ``scale_factor``;
    ``img_shape`` (S, S). ``center`` / ``scale`` stay the dataset's box (``warp_mat`` is the applied one).

    Args:
        input_size: (w, h) of the crop; square (the box is square), 224 in METRO / SPIN.
        augment: METRO / SPIN training augmentation (flip, rotation, scale, pixel noise); False = test.
        flip_prob: probability of a horizontal flip (0.5).
        rot_factor: rotation = clip(rot_factor · N(0, 1), ±2 rot_factor) degrees (30 → ±60) ...
        rot_prob: ... applied with this probability (0.4: SPIN zeroes it with probability 0.6).
        scale_factor: box side × clip(1 + scale_factor · N(0, 1), 1 ± scale_factor) (0.25).
        noise_factor: each RGB channel × U(1 - noise_factor, 1 + noise_factor) (0.4).
        interpolation: 'bilinear' (METRO's ``cv2.resize`` / ``warpAffine``), 'nearest', 'bicubic', 'area'.

    Random numbers come from numpy's global generator (as mmpose's transforms; mmengine seeds it per
    worker), drawn in SPIN's ``augm_params`` order: flip, 3 noise values, rotation, scale, rotation on/off.

    Raises:
        MeshImageError: non-finite center / scale, scale <= 0, or a box entirely outside the image; the
            message names the image and the sample index.
    """

    def __init__(self, input_size: Sequence[int] = (224, 224), augment: bool = False, flip_prob: float = 0.5,
                 rot_factor: float = 30.0, rot_prob: float = 0.4, scale_factor: float = 0.25,
                 noise_factor: float = 0.4, interpolation: str = 'bilinear'):
        size = tuple(int(v) for v in (input_size, input_size)) if np.isscalar(input_size) else \
            tuple(int(v) for v in input_size)
        if len(size) != 2 or size[0] != size[1] or size[0] < 1:
            raise ValueError(f'MeshImageCrop: input_size must be a square (S, S) with S >= 1 (the '
                             f'METRO / SPIN box is square), got {input_size}')
        for name, v, lo, hi in (('flip_prob', flip_prob, 0, 1), ('rot_prob', rot_prob, 0, 1),
                                ('rot_factor', rot_factor, 0, 180), ('scale_factor', scale_factor, 0, 0.99),
                                ('noise_factor', noise_factor, 0, 1)):
            if not (np.isfinite(v) and lo <= v <= hi):
                raise ValueError(f'MeshImageCrop: {name} must be in [{lo}, {hi}], got {v!r}')
        if interpolation not in _INTERPOLATION:
            raise ValueError(f'MeshImageCrop: interpolation must be one of {sorted(_INTERPOLATION)}, '
                             f'got {interpolation!r}')
        self.input_size = size
        self.augment = bool(augment)
        self.flip_prob, self.rot_factor, self.rot_prob = float(flip_prob), float(rot_factor), float(rot_prob)
        self.scale_factor, self.noise_factor = float(scale_factor), float(noise_factor)
        self.interpolation = interpolation

    # ------------------------------------------------------------------------------------ random
    def draw(self, results: Optional[Dict] = None) -> Optional[Tuple[bool, np.ndarray, float, float]]:
        """(flip, noise (3,) per RGB channel, rotation degrees, scale factor); None without
        augmentation. Same draws, order and constants as SPIN / METRO ``augm_params``."""
        if not self.augment:
            return None
        flip = bool(np.random.uniform() < self.flip_prob)   # SPIN: uniform() <= 0.5
        noise = np.random.uniform(1 - self.noise_factor, 1 + self.noise_factor, 3)
        rf, sf = self.rot_factor, self.scale_factor
        rot = float(min(2 * rf, max(-2 * rf, np.random.randn() * rf)))
        sc = float(min(1 + sf, max(1 - sf, np.random.randn() * sf + 1)))
        if np.random.uniform() <= 1 - self.rot_prob:
            rot = 0.0
        return flip, noise, rot, sc

    # ---------------------------------------------------------------------------------- geometry
    def _box(self, results: Dict) -> Tuple[np.ndarray, float]:
        where = describe_sample(results)
        for key in ('img', 'center', 'scale', 'keypoints_2d_j24', 'keypoints_3d_j24', 'smpl_pose',
                    'smpl_betas'):
            if key not in results:
                raise MeshImageError(f'{where}: MeshImageCrop needs {key!r} in the sample (from '
                                     'MeshImageDataset and LoadMeshImage)')
        center = np.asarray(results['center'], np.float64).reshape(-1)
        scale = np.asarray(results['scale'], np.float64).reshape(-1)
        if center.shape != (2, ) or scale.shape != (1, ):
            raise MeshImageError(f'{where}: center must be (2,) and scale a scalar, got shapes '
                                 f'{center.shape} and {scale.shape}')
        scale = float(scale[0])
        if not (np.isfinite(center).all() and np.isfinite(scale)):
            raise MeshImageError(f'{where}: non-finite box (center {center.tolist()}, scale {scale})')
        if scale <= 0:
            raise MeshImageError(f'{where}: box scale must be > 0 (box side / 200 px), got {scale}')
        h, w = results['img'].shape[:2]
        half = BOX_UNIT * scale / 2
        # image pixels cover [-0.5, w - 0.5] x [-0.5, h - 0.5]; the unaugmented box must overlap them
        if (center[0] + half <= -0.5 or center[0] - half >= w - 0.5
                or center[1] + half <= -0.5 or center[1] - half >= h - 0.5):
            raise MeshImageError(
                f'{where}: the box (center {center.round(1).tolist()}, side {2 * half:.1f} px) lies '
                f'entirely outside the {w}x{h} image (wrong image, or box in another image size?)')
        return center, scale

    def crop(self, results: Dict, draw: Optional[Tuple[bool, np.ndarray, float, float]]) -> Dict:
        """Crop one sample with the augmentation ``draw`` (from :meth:`draw`; None = none)."""
        center, scale = self._box(results)
        flip, noise, rot, sc = draw if draw is not None else (False, None, 0.0, 1.0)
        size = self.input_size[0]
        M = crop_warp_matrix(center, BOX_UNIT * scale * sc, rot, flip, size)

        img = cv2.warpAffine(results['img'], M, (size, size), flags=_INTERPOLATION[self.interpolation],
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if noise is not None:
            # noise[c] multiplies RGB channel c (SPIN / METRO work on RGB); the image is BGR
            img = cv2.multiply(img, (float(noise[2]), float(noise[1]), float(noise[0]), 0.0))

        kp = np.asarray(results['keypoints_2d_j24'], np.float64).reshape(NUM_J24, 3)
        joints_2d = np.empty((NUM_J24, 3), np.float64)
        joints_2d[:, :2] = (kp[:, :2] @ M[:, :2].T + M[:, 2]) * (2.0 / size) - 1.0
        joints_2d[:, 2] = kp[:, 2]

        S = np.array(results['keypoints_3d_j24'], np.float64).reshape(NUM_J24, 4)
        S[:, :3] -= S[J24_PELVIS_INDEX, :3].copy()
        pose = np.array(results['smpl_pose'], np.float64).reshape(-1)
        if rot != 0:
            S[:, :2] = S[:, :2] @ rotation_2d(rot).T
            pose[:3] = rotate_global_orient(pose[:3], rot)
        if flip:
            joints_2d = joints_2d[_J24_FLIP]
            S = S[_J24_FLIP]
            S[:, 0] *= -1
            pose = flip_smpl_pose(pose)
        if not float(np.asarray(results.get('has_3d_joints', 1)).reshape(-1)[0]):
            S[:, 3] = 0

        results.update(
            img=img, img_shape=(size, size), joints_2d=joints_2d.astype(np.float32),
            joints_3d=S.astype(np.float32), smpl_pose=pose.astype(np.float32),
            smpl_betas=np.asarray(results['smpl_betas'], np.float32).reshape(-1),
            warp_mat=M.astype(np.float32), input_size=(size, size), flip=bool(flip), rotation=float(rot),
            scale_factor=float(sc))
        return results

    def transform_batch(self, batch: List[Dict], draws: List) -> List[Dict]:
        return [self.crop(r, d) for r, d in zip(batch, draws)]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, augment={self.augment}, '
                f'flip_prob={self.flip_prob}, rot_factor={self.rot_factor}, rot_prob={self.rot_prob}, '
                f'scale_factor={self.scale_factor}, noise_factor={self.noise_factor}, '
                f'interpolation={self.interpolation!r})')
