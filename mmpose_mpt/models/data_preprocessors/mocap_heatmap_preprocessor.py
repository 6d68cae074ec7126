"""MoCapHeatmapPreprocessor: the batched, on-device half of the MoCap data engine (Sec. 3.1).

Per batch, on the model's device: SMPL forward of the batch's poses, rotated into each sample's
virtual camera about the SMPL pelvis (the frame the dataset's keypoints were made in; the camera
rotation is folded into the root joint's, see :class:`BatchedSkinning`) → targets root-relative to
the Human3.6M pelvis (full mesh, coarse meshes, LSP-14 joints) and the 2D targets (perspective
projection → crop warp → normalised crop coordinates) → heatmaps rendered from the MHM-corrupted
keypoints (Eq. 1) plus Gaussian noise.
"""
import numbers
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.model import BaseDataPreprocessor
from mmpose.registry import MODELS
from torch import Tensor

from ...body_models import SMPL, MeshSampler
from ...body_models.batched_skinning import BatchedSkinning, apply_keeping_float_dtype
from ...body_models.joint_regressors import H36M_J17_TO_J14
from ...utils.instance_fields import set_instance_fields, stack_gt_field
from ...utils.parallel_normal import normal_parallel_
from ...utils.recycled_buffer import RecycledBuffer
from .render_heatmaps import render_heatmaps

GENDERS = ('neutral', 'male', 'female')  # index = the dataset's gender code


def _stack(gts: list, field: str, device: torch.device) -> Tensor:
    return stack_gt_field(gts, field, device, 'MoCapHeatmapPreprocessor',
                          'RandomVirtualCamera -> [MaskedHeatmapModeling ->] PackMeshInputs')


@MODELS.register_module()
class MoCapHeatmapPreprocessor(BaseDataPreprocessor):
    """Render MoCap heatmaps and mesh targets for a batch.

    Args:
        body_model: kwargs of :class:`SMPL` (``model_path``, ``gender``, ``h36m_regressor``, ...). The
            Human3.6M regressor is required (it defines the pelvis and the LSP-14 joints).
        mesh_sampler: path of the mesh-sampling ``.npz`` (full → coarse levels).
        heatmap_size: (H, W) of the heatmaps (= the crop size of RandomVirtualCamera).
        sigma: σ of Eq. 1.
        input_mode: 'heatmap' → inputs (B, K, H, W); 'coords' → inputs (B, K, 3) = normalised (x, y)
            in [-1, 1] and visibility (Table 3a ablation).
        per_sample_gender: use the dataset's gender per sample (needs SMPL_{MALE,FEMALE} and data
            prepared with them); default: one model (``body_model['gender']``) for all, matching
            ``tools/prepare_amass.py --neutral-only``.
        recycle_buffers: on the CPU, write each batch's heatmaps and vertices into the previous
            batch's memory when nothing holds it any more (see :class:`RecycledBuffer`); other devices
            have caching allocators.

    Returns of :meth:`forward`: ``dict(inputs, data_samples, targets)``; ``targets`` (float32, on the
    device, camera frame, metres, root-relative to the H36M pelvis): ``vertices`` (B, V, 3) and one
    ``vertices_sub{k}`` per coarse level (``vertices_sub`` (B, 1723, 3), ``vertices_sub2`` (B, 431, 3)),
    ``joints_3d`` (B, 14, 3), ``joints_2d`` (B, 14, 2) normalised crop coordinates, ``has_vertices``
    (B,), ``joints_3d_visible`` (B, 14), ``joints_2d_visible`` (B, 14). When not training, the same
    ground truth is also written into each sample's ``gt_instances`` (``keypoints_3d``,
    ``keypoints_3d_visible``, ``vertices``, ``has_vertices``) for :class:`MeshMetric`.
    """

    def __init__(self,
                 body_model: dict,
                 mesh_sampler: str,
                 heatmap_size: Sequence[int] = (224, 224),
                 sigma: float = 3.0,
                 input_mode: str = 'heatmap',
                 per_sample_gender: bool = False,
                 recycle_buffers: bool = True,
                 non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        if input_mode not in ('heatmap', 'coords'):
            raise ValueError(f"input_mode must be 'heatmap' or 'coords', got {input_mode!r}")
        self.heatmap_size = tuple(int(v) for v in heatmap_size)
        if len(self.heatmap_size) != 2 or min(self.heatmap_size) < 1:
            raise ValueError(f'heatmap_size must be (H, W) with H, W >= 1, got {heatmap_size}')
        # Eq. 1 depends on sigma^2 only: -3 would render like 3, 0 divides by zero at the first batch
        if not (isinstance(sigma, numbers.Real) and not isinstance(sigma, bool)
                and np.isfinite(sigma) and sigma > 0):
            raise ValueError(f'sigma must be a finite number > 0 (heatmap pixels), got {sigma!r}')
        self.sigma = float(sigma)
        self.input_mode = input_mode
        self.per_sample_gender = per_sample_gender
        genders = GENDERS if per_sample_gender else (body_model.get('gender', 'neutral'), )
        self.body_models = torch.nn.ModuleList(
            SMPL(**dict(body_model, gender=g)) for g in genders)
        smpl = self.body_models[0]
        if not smpl.has_h36m_regressor:
            raise ValueError(f'{body_model.get("model_path")}: MoCapHeatmapPreprocessor needs the '
                             'Human3.6M joint regressor (body_model.h36m_regressor=... '
                             'J_regressor_h36m_correct.npy)')
        self.skinning = torch.nn.ModuleList(BatchedSkinning(m) for m in self.body_models)
        self.recycle_buffers = bool(recycle_buffers)
        self._heatmaps = RecycledBuffer()
        self._noise = RecycledBuffer()
        self._vertices = RecycledBuffer()
        self._skinned = RecycledBuffer()
        self.mesh_sampler = MeshSampler(mesh_sampler)
        if self.mesh_sampler.num_vertices[0] != smpl.num_vertices:
            raise ValueError(f'{mesh_sampler}: mesh sampling is for {self.mesh_sampler.num_vertices[0]} '
                             f'vertices but the body model has {smpl.num_vertices}')
        h36m = smpl.get_regressor('h36m').float()
        # row 0: the H36M pelvis (the targets' root), rows 1..14: LSP-14
        self.register_buffer('joint_regressor', torch.cat([h36m[:1], h36m[H36M_J17_TO_J14]]).contiguous(),
                             persistent=False)

    def _apply(self, fn, *args, **kwargs):
        # whole-model casts (DeepSpeed bf16/fp16) must not reach the engine: it computes in float32
        # (mmengine's DeepSpeed wrapper casts the preprocessor's outputs afterwards); the skinning and
        # the mesh sampler keep their own dtypes the same way
        return apply_keeping_float_dtype(self, super()._apply, fn, *args, **kwargs)

    def _recycle(self, device: torch.device) -> bool:
        return self.recycle_buffers and device.type == 'cpu'

    # -------------------------------------------------------------------------------- body model
    def posed_vertices(self, pose: Tensor, betas: Tensor, gender: Tensor,
                       rotation: Optional[Tensor] = None, batch_last: bool = False) -> Tensor:
        """Posed meshes centred on the SMPL pelvis (the canonical frame of the prepared index).

        Args:
            pose: (B, 72); betas: (B, 10); gender: (B,) codes (used with ``per_sample_gender``).
            rotation: optional (B, 3, 3) applied about the pelvis (e.g. a camera's ``R``).
            batch_last: return (V, 3, B) (the engine's layout) instead of (B, V, 3).

        Returns:
            float32 vertices, (B, V, 3) or (V, 3, B).
        """
        if len(self.skinning) == 1:
            out = None
            if batch_last and self._recycle(pose.device):   # consumed within forward: scratch
                out = self._skinned.get((self.skinning[0].num_vertices, 3, pose.shape[0]),
                                        self.skinning[0].blend_dirs.dtype, pose.device)
            verts, _ = self.skinning[0](pose, betas, rotation, root_relative=True, out=out)
        else:
            verts = pose.new_zeros(self.skinning[0].num_vertices, 3, pose.shape[0])
            for code, skin in enumerate(self.skinning):
                sel = (gender == code).nonzero(as_tuple=True)[0]
                if len(sel):
                    verts[:, :, sel] = skin(pose[sel], betas[sel],
                                            None if rotation is None else rotation[sel],
                                            root_relative=True)[0]
        return verts if batch_last else verts.permute(2, 0, 1).contiguous()

    # ----------------------------------------------------------------------------------- forward
    @torch.no_grad()
    def forward(self, data: dict, training: bool = False) -> dict:
        device = self.joint_regressor.device
        samples = data['data_samples']
        gts = [ds.gt_instances for ds in samples]
        kp_in = torch.stack(list(data['inputs'])).to(device).float()           # (B, K, 3)
        pose = _stack(gts, 'smpl_pose', device)
        betas = _stack(gts, 'smpl_betas', device)
        gender = _stack(gts, 'smpl_gender', device).long()
        R, t = _stack(gts, 'cam_R', device), _stack(gts, 'cam_t', device)
        f, c = _stack(gts, 'cam_f', device), _stack(gts, 'cam_c', device)
        warp = _stack(gts, 'warp_mat', device)
        noise_std = _stack(gts, 'heatmap_noise_std', device)
        w, h = self.heatmap_size[1], self.heatmap_size[0]

        b = pose.shape[0]
        # camera frame, centred on the SMPL pelvis; batch-last (V, 3, B): the regressors are one
        # product, the re-centring one contiguous pass and mesh down-sampling a gather of whole rows;
        # only the outputs are transposed to (B, V, 3)
        verts_rot = self.posed_vertices(pose, betas, gender, rotation=R, batch_last=True)
        num_v = verts_rot.shape[0]
        regressed = (self.joint_regressor @ verts_rot.view(num_v, 3 * b)).view(-1, 3, b)
        verts_rot -= regressed[0]                          # root-relative to the H36M pelvis
        regressed = regressed.permute(2, 0, 1)                               # (B, 15, 3)
        pelvis, joints_rot = regressed[:, 0], regressed[:, 1:]
        recycle = self._recycle(device)
        verts = (self._vertices.get((b, num_v, 3), verts_rot.dtype, device) if recycle
                 else verts_rot.new_empty(b, num_v, 3))
        verts.copy_(verts_rot.permute(2, 0, 1))
        targets: Dict[str, Tensor] = {'vertices': verts}
        coarse = verts_rot.view(num_v, 3 * b)
        for level in range(1, len(self.mesh_sampler.num_vertices)):
            name = 'vertices_sub' if level == 1 else f'vertices_sub{level}'
            coarse = self.mesh_sampler.downsample(coarse, level - 1, level)   # (V_level, 3 B)
            targets[name] = coarse.view(-1, 3, b).permute(2, 0, 1).contiguous()
        del verts_rot
        targets['joints_3d'] = joints_rot - pelvis[:, None]
        joints_cam = joints_rot + t[:, None]
        z = joints_cam[..., 2:]
        px = f[:, None] * joints_cam[..., :2] / z.clamp(min=1e-6) + c[:, None]
        crop = torch.einsum('bij,bkj->bki', warp[..., :2], px) + warp[:, None, :, 2]
        targets['joints_2d'] = 2 * crop / crop.new_tensor([w, h]) - 1           # METRO: 2x / W - 1
        targets['has_vertices'] = verts.new_ones(b)
        targets['joints_3d_visible'] = verts.new_ones(b, targets['joints_3d'].shape[1])
        targets['joints_2d_visible'] = (z[..., 0] > 1e-3).float()

        visible = kp_in[..., 2] > 0
        if self.input_mode == 'coords':
            xy = 2 * kp_in[..., :2] / kp_in.new_tensor([w, h]) - 1
            inputs = torch.cat([xy * visible[..., None], visible[..., None].float()], dim=-1)
        else:
            shape = (b, kp_in.shape[1]) + self.heatmap_size
            out = self._heatmaps.get(shape, torch.float32, device) if recycle else None
            inputs = render_heatmaps(kp_in[..., :2], visible, self.heatmap_size, self.sigma, out=out)
            if training and bool((noise_std > 0).any()):
                noise = normal_parallel_(self._noise.get(shape, torch.float32, device) if recycle
                                         else torch.empty_like(inputs))
                inputs.addcmul_(noise, noise_std[:, None, None, None]).clamp_(0, 1)

        if not training:
            self._attach_ground_truth(samples, targets)
        return dict(inputs=inputs, data_samples=samples, targets=targets)

    @staticmethod
    def _attach_ground_truth(samples: List, targets: Dict[str, Tensor]) -> None:
        """Per-sample ground truth in ``gt_instances`` for the metric (numpy, leading dim 1).

        ``vertex_root`` is 0: the vertices are already centred on their own Human3.6M pelvis, the
        root METRO's MPVE subtracts (the prediction carries its mesh's pelvis the same way)."""
        joints = targets['joints_3d'].cpu().numpy()
        verts = targets['vertices'].cpu().numpy()
        vis = targets['joints_3d_visible'].cpu().numpy()
        root = np.zeros((1, 3), np.float32)
        for i, ds in enumerate(samples):
            set_instance_fields(ds.gt_instances, dict(
                keypoints_3d=joints[i:i + 1], keypoints_3d_visible=vis[i:i + 1],
                vertices=verts[i:i + 1], has_vertices=np.ones(1, np.float32), vertex_root=root))

    def extra_repr(self) -> str:
        return (f'heatmap_size={self.heatmap_size}, sigma={self.sigma}, input_mode={self.input_mode}, '
                f'per_sample_gender={self.per_sample_gender}')
