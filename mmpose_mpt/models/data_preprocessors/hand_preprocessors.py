"""Hand data preprocessors: the batched, on-device half of the hand pipelines (paper Sec. 4, Table 6).

Hands differ from the body path in where the mesh comes from: Complement releases camera-space meshes
(no MANO parameters) and FreiHAND camera-space vertices, and the MANO-parameter source poses its
meshes per item. So every hand sample arrives with its mesh and 21 joints already in the camera frame,
cropped and made wrist-relative by :class:`~mmpose_mpt.datasets.transforms.HandCrop`; what is batched
here is what is heavy: the heatmaps (Eq. 1, same σ and noise as the body) or the image normalisation,
and the coarse meshes of the mesh sampler (778 -> 195).

* :class:`HandHeatmapPreprocessor` (pre-training): inputs = 21 heatmaps (B, 21, H, W) rendered from the
  MHM-corrupted crop keypoints, + Gaussian noise in training, as :class:`MoCapHeatmapPreprocessor`.
* :class:`HandImagePreprocessor` (fine-tuning / test): inputs = the normalised crops (B, 3, S, S).

Both return ``targets`` (float32, device, metres, camera frame, wrist-relative): ``vertices`` (B, 778, 3),
``vertices_sub`` (B, 195, 3) (one ``vertices_sub{k}`` per coarse level), ``joints_3d`` (B, 21, 3),
``joints_3d_visible`` (B, 21) = conf * has_3d_joints, ``joints_2d`` (B, 21, 2) normalised crop
coordinates, ``joints_2d_visible`` (B, 21) = conf * has_2d_joints, ``has_vertices`` (B,). When not
training each sample's ``gt_instances`` gets ``keypoints_3d`` (1, 21, 3), ``keypoints_3d_visible``,
``vertices`` (1, 778, 3), ``has_vertices`` and ``vertex_root`` (1, 3) = 0 for :class:`MeshMetric`.
"""
import numbers
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.model import BaseDataPreprocessor
from mmpose.registry import MODELS
from torch import Tensor

from ...body_models import MeshSampler
from ...utils.instance_fields import set_instance_fields, stack_gt_field
from .mesh_image_preprocessor import IMAGENET_MEAN, IMAGENET_STD
from .render_heatmaps import render_heatmaps


def _stack(gts: list, field: str, device: torch.device) -> Tensor:
    return stack_gt_field(gts, field, device, 'hand preprocessor',
                          '... -> HandCrop -> [MaskedHeatmapModeling ->] PackMeshInputs')


class _HandTargets(BaseDataPreprocessor):
    """Shared target building (see the module docstring)."""

    def __init__(self, mesh_sampler: str, num_vertices: int = 778, non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        self.mesh_sampler = MeshSampler(mesh_sampler)
        if self.mesh_sampler.num_vertices[0] != int(num_vertices):
            raise ValueError(f'{mesh_sampler}: mesh sampling is for {self.mesh_sampler.num_vertices[0]} '
                             f'vertices, the hand model has {num_vertices}')
        self.register_buffer('_device_probe', torch.zeros(0), persistent=False)

    def targets(self, samples: List) -> Dict[str, Tensor]:
        device = self._device_probe.device
        gts = [ds.gt_instances for ds in samples]
        b = len(gts)
        j3 = _stack(gts, 'joints_3d', device)                          # (B, 21, 4)
        j2 = _stack(gts, 'joints_2d', device)                          # (B, 21, 3)
        has = {k: _stack(gts, k, device).reshape(b) for k in ('has_vertices', 'has_3d_joints',
                                                              'has_2d_joints')}
        verts = _stack(gts, 'vertices', device)                        # (B, V, 3)
        t: Dict[str, Tensor] = {
            'joints_3d': j3[..., :3].contiguous(), 'joints_3d_visible': j3[..., 3] * has['has_3d_joints'][:, None],
            'joints_2d': j2[..., :2].contiguous(), 'joints_2d_visible': j2[..., 2] * has['has_2d_joints'][:, None],
            'has_vertices': has['has_vertices'], 'vertices': verts}
        level = verts
        for k in range(1, len(self.mesh_sampler.num_vertices)):
            level = self.mesh_sampler.downsample(level, k - 1, k)
            t['vertices_sub' if k == 1 else f'vertices_sub{k}'] = level.contiguous()
        return t

    @staticmethod
    def attach_ground_truth(samples: List, targets: Dict[str, Tensor]) -> None:
        joints = targets['joints_3d'].cpu().numpy()
        vis = targets['joints_3d_visible'].cpu().numpy()
        verts = targets['vertices'].cpu().numpy()
        has = targets['has_vertices'].cpu().numpy()
        root = np.zeros((1, 3), np.float32)   # both sides are wrist-relative already
        for i, ds in enumerate(samples):
            set_instance_fields(ds.gt_instances, dict(
                keypoints_3d=joints[i:i + 1], keypoints_3d_visible=vis[i:i + 1], vertices=verts[i:i + 1],
                has_vertices=has[i:i + 1], vertex_root=root))


@MODELS.register_module()
class HandHeatmapPreprocessor(_HandTargets):
    """Pre-training batches: 21 heatmaps + hand mesh targets.

    Args:
        mesh_sampler: mesh-sampling ``.npz`` (778 -> 195: METRO's ``mano_downsampling.npz`` or ours).
        heatmap_size: (H, W) = HandCrop's ``input_size``.
        sigma: σ of Eq. 1 (heatmap px; the body's 3.0 by default).
        num_vertices: full mesh size (MANO 778).
    """

    def __init__(self, mesh_sampler: str, heatmap_size: Sequence[int] = (224, 224), sigma: float = 3.0,
                 num_vertices: int = 778, non_blocking: bool = False):
        super().__init__(mesh_sampler, num_vertices, non_blocking)
        self.heatmap_size = tuple(int(v) for v in heatmap_size)
        if len(self.heatmap_size) != 2 or min(self.heatmap_size) < 1:
            raise ValueError(f'heatmap_size must be (H, W) with H, W >= 1, got {heatmap_size}')
        if not (isinstance(sigma, numbers.Real) and not isinstance(sigma, bool) and np.isfinite(sigma)
                and sigma > 0):
            raise ValueError(f'sigma must be a finite number > 0 (heatmap pixels), got {sigma!r}')
        self.sigma = float(sigma)

    @torch.no_grad()
    def forward(self, data: dict, training: bool = False) -> dict:
        device = self._device_probe.device
        samples = data['data_samples']
        kp = torch.stack(list(data['inputs'])).to(device).float()            # (B, 21, 3) x, y, visible
        inputs = render_heatmaps(kp[..., :2], kp[..., 2] > 0, self.heatmap_size, self.sigma)
        if training:
            std = _stack([ds.gt_instances for ds in samples], 'heatmap_noise_std', device).reshape(-1)
            if bool((std > 0).any()):
                inputs.addcmul_(torch.randn_like(inputs), std[:, None, None, None]).clamp_(0, 1)
        targets = self.targets(samples)
        if not training:
            self.attach_ground_truth(samples, targets)
        return dict(inputs=inputs, data_samples=samples, targets=targets)


@MODELS.register_module()
class HandImagePreprocessor(_HandTargets):
    """Image batches (FreiHAND fine-tuning / test): normalised crops + hand mesh targets.

    Args:
        mesh_sampler, num_vertices: as :class:`HandHeatmapPreprocessor`.
        mean, std: RGB 0-255 normalisation (ImageNet, as mmpose's hand HRNet and METRO).
        bgr_to_rgb: the packed crops are BGR (OpenCV).
    """

    def __init__(self, mesh_sampler: str, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, bgr_to_rgb: bool = True, num_vertices: int = 778,
                 non_blocking: bool = False):
        super().__init__(mesh_sampler, num_vertices, non_blocking)
        self.register_buffer('mean', torch.as_tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), False)
        self.register_buffer('std', torch.as_tensor(std, dtype=torch.float32).view(1, 3, 1, 1), False)
        if not bool((self.std > 0).all()):
            raise ValueError(f'HandImagePreprocessor: std must be > 0, got {std}')
        self.bgr_to_rgb = bool(bgr_to_rgb)

    @torch.no_grad()
    def forward(self, data: dict, training: bool = False) -> dict:
        device = self._device_probe.device
        samples = data['data_samples']
        inputs = data['inputs']
        x = (inputs if torch.is_tensor(inputs) else torch.stack(list(inputs))).to(device).float()
        if self.bgr_to_rgb:
            x = x.flip(1)
        x = torch.sub(x, self.mean).div_(self.std)
        targets = self.targets(samples)
        if not training:
            self.attach_ground_truth(samples, targets)
        return dict(inputs=x, data_samples=samples, targets=targets)
