"""MeshImagePreprocessor: the batched, on-device half of the mesh-image (fine-tuning / test) pipeline.

Per batch, on the model's device: the uint8 crops → float, BGR → RGB, ImageNet normalisation; the
targets from the packed ground truth (:class:`MeshImageCrop` + :class:`PackMeshInputs`): LSP-14 3D
joints (pelvis-centred, crop-rotated, metres) and 2D joints (normalised crop coordinates) with their
visibility masks, and the ground-truth meshes of the samples that have SMPL parameters (METRO: the
neutral SMPL, no translation, minus the mesh's own Human3.6M pelvis) at every mesh-sampler level.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.model import BaseDataPreprocessor
from mmpose.registry import MODELS
from torch import Tensor

from ...body_models import SMPL, MeshSampler
from ...body_models.batched_skinning import BatchedSkinning, apply_keeping_float_dtype
from ...body_models.j24 import J24_TO_J14
from ...utils.instance_fields import set_instance_fields, stack_gt_field

GENDERS = ('neutral', 'male', 'female')  # index = the dataset's gender code
IMAGENET_MEAN = (123.675, 116.28, 103.53)   # RGB, 0-255
IMAGENET_STD = (58.395, 57.12, 57.375)
JOINTS_FROM_MESH = ('missing', 'always', 'never')
GT_FIELDS = ('joints_2d', 'joints_3d', 'smpl_pose', 'smpl_betas', 'smpl_gender', 'has_smpl',
             'has_2d_joints', 'has_3d_joints')


def _stack(gts: list, field: str, device: torch.device) -> Tensor:
    return stack_gt_field(gts, field, device, 'MeshImagePreprocessor',
                          'LoadMeshImage -> MeshImageCrop -> PackMeshInputs')


@MODELS.register_module()
class MeshImagePreprocessor(BaseDataPreprocessor):
    """Normalise a batch of image crops and build its mesh / joint targets.

    Args:
        mean, std: per-channel normalisation of the 0-255 RGB image (ImageNet by default).
        bgr_to_rgb: the packed crops are BGR (OpenCV); convert before normalising.
        body_model: kwargs of :class:`SMPL` (``model_path``, ``h36m_regressor``, ...; ``gender`` is set
            here). The Human3.6M regressor is required (its row 0 is the pelvis the GT meshes are
            centred on).
        mesh_sampler: path of the mesh-sampling ``.npz`` (full → coarse levels).
        gendered_gt: GT meshes from each sample's gendered SMPL (gender code 1 male, 2 female, 0 the
            neutral model; SPIN / mmhuman3d's 3DPW convention); default False: the neutral model for
            all (METRO, whose protocol MPT follows).
        joints_from_mesh: where the 3D joint targets come from the ground-truth mesh (its LSP-14
            joints regressed with the Human3.6M regressor, minus its pelvis: the same joints the
            model's L_J^reg and METRO's evaluation regress) instead of the label's J24:
            ``'missing'`` for samples with SMPL but no 3D joints (SPIN's and mmhuman3d's 3DPW files
            carry only SMPL parameters), ``'always'`` for every sample with SMPL (SPIN / mmhuman3d's
            3DPW protocol), ``'never'``. None (default): ``'always'`` with ``gendered_gt`` (the
            gendered mesh and the label's neutral joints would mix two protocols), else
            ``'missing'``.

    :meth:`forward` returns ``dict(inputs, data_samples, targets)``: ``inputs`` (B, 3, H, W) float32
    normalised; ``targets`` (float32, on the device, metres): ``joints_3d`` (B, 14, 3) =
    ``joints_3d[:, J24_TO_J14, :3]`` (pelvis-centred by MeshImageCrop), ``joints_3d_visible`` (B, 14) =
    conf · has_3d_joints, ``joints_2d`` (B, 14, 2) normalised crop coordinates, ``joints_2d_visible``
    (B, 14) = conf · has_2d_joints, ``vertices`` (B, V, 3) and one ``vertices_sub{k}`` per coarse level
    (``vertices_sub`` (B, 1723, 3), ``vertices_sub2`` (B, 431, 3)) — SMPL(pose, betas) minus its
    Human3.6M pelvis for the samples with ``has_smpl``, zeros elsewhere — and ``has_vertices`` (B,) =
    has_smpl. When not training, each sample's ``gt_instances`` also gets (numpy, leading dim 1)
    ``keypoints_3d`` (1, 14, 3), ``keypoints_3d_visible`` (1, 14), ``vertices`` (1, V, 3),
    ``has_vertices`` (1,) and ``vertex_root`` (1, 3) = 0 (the GT vertices are already centred on their
    own pelvis) for :class:`MeshMetric`.
    """

    def __init__(self,
                 body_model: dict,
                 mesh_sampler: str,
                 mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD,
                 bgr_to_rgb: bool = True,
                 gendered_gt: bool = False,
                 joints_from_mesh: Optional[str] = None,
                 non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        if joints_from_mesh is None:
            joints_from_mesh = 'always' if gendered_gt else 'missing'
        if joints_from_mesh not in JOINTS_FROM_MESH:
            raise ValueError(f'MeshImagePreprocessor: joints_from_mesh must be one of {JOINTS_FROM_MESH}, '
                             f'got {joints_from_mesh!r}')
        self.joints_from_mesh = joints_from_mesh
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean_t.numel() != 3 or std_t.numel() != 3 or not torch.isfinite(mean_t).all() \
                or not (torch.isfinite(std_t).all() and (std_t > 0).all()):
            raise ValueError(f'MeshImagePreprocessor: mean and std must be 3 finite values (std > 0), got '
                             f'mean={mean}, std={std}')
        self.register_buffer('mean', mean_t.view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', std_t.view(1, 3, 1, 1), persistent=False)
        self.bgr_to_rgb = bool(bgr_to_rgb)
        self.gendered_gt = bool(gendered_gt)
        genders = GENDERS if self.gendered_gt else ('neutral', )
        self.body_models = torch.nn.ModuleList(SMPL(**dict(body_model, gender=g)) for g in genders)
        smpl = self.body_models[0]
        if not smpl.has_h36m_regressor:
            raise ValueError(f'{body_model.get("model_path")}: MeshImagePreprocessor needs the Human3.6M '
                             'joint regressor (body_model.h36m_regressor=... J_regressor_h36m_correct.npy)')
        self.skinning = torch.nn.ModuleList(BatchedSkinning(m) for m in self.body_models)
        self.mesh_sampler = MeshSampler(mesh_sampler)
        if self.mesh_sampler.num_vertices[0] != smpl.num_vertices:
            raise ValueError(f'{mesh_sampler}: mesh sampling is for {self.mesh_sampler.num_vertices[0]} '
                             f'vertices but the body model has {smpl.num_vertices}')
        self.register_buffer('pelvis_regressor', smpl.get_regressor('h36m')[:1].float().contiguous(),
                             persistent=False)                                             # (1, V)
        self.register_buffer('j24_to_j14', torch.tensor(J24_TO_J14), persistent=False)
        self.register_buffer('lsp_regressor', smpl.get_regressor('lsp').float().contiguous(),
                             persistent=False)                                             # (14, V)

    def _apply(self, fn, *args, **kwargs):
        # whole-model casts (DeepSpeed bf16/fp16) must not reach the targets: they are computed in
        # float32 (mmengine's DeepSpeed wrapper casts the preprocessor's outputs afterwards)
        return apply_keeping_float_dtype(self, super()._apply, fn, *args, **kwargs)

    # -------------------------------------------------------------------------------- body model
    def gt_vertices(self, pose: Tensor, betas: Tensor, gender: Tensor) -> Tensor:
        """Ground-truth meshes, batch-last (V, 3, B) float32, minus each mesh's Human3.6M pelvis.

        Args:
            pose: (B, 72) axis-angle; betas: (B, S); gender: (B,) codes (used with ``gendered_gt``).
        """
        n = pose.shape[0]
        num_v = self.skinning[0].num_vertices
        if len(self.skinning) == 1:
            verts = self.skinning[0](pose, betas, root_relative=True)[0]
        else:
            verts = pose.new_zeros(num_v, 3, n)
            for code, skin in enumerate(self.skinning):
                sel = (gender == code).nonzero(as_tuple=True)[0]
                if len(sel):
                    verts[:, :, sel] = skin(pose[sel], betas[sel], root_relative=True)[0]
            other = ((gender < 0) | (gender >= len(self.skinning))).nonzero(as_tuple=True)[0]
            if len(other):   # unknown codes: the neutral model (as code 0)
                verts[:, :, other] = self.skinning[0](pose[other], betas[other], root_relative=True)[0]
        pelvis = (self.pelvis_regressor.to(verts.dtype) @ verts.view(num_v, 3 * n)).view(1, 3, n)
        return verts.sub_(pelvis)

    # ----------------------------------------------------------------------------------- forward
    @torch.no_grad()
    def forward(self, data: dict, training: bool = False) -> dict:
        device = self.mean.device
        samples = data['data_samples']
        inputs = data['inputs']
        imgs = inputs if torch.is_tensor(inputs) else torch.stack(list(inputs))     # uint8 (B, 3, H, W)
        # move the uint8 crops (4x fewer bytes than float), convert on the device
        x = imgs.to(device, non_blocking=self._non_blocking).float()
        if self.bgr_to_rgb:
            x = x.flip(1)
        x = torch.sub(x, self.mean).div_(self.std)     # out of place: float inputs stay untouched

        gts = [ds.gt_instances for ds in samples]
        stacked = {f: _stack(gts, f, device) for f in GT_FIELDS}
        b = x.shape[0]
        j14 = self.j24_to_j14
        j3d = stacked['joints_3d'][:, j14]                                     # (B, 14, 4)
        j2d = stacked['joints_2d'][:, j14]                                     # (B, 14, 3)
        has_smpl = stacked['has_smpl'].reshape(b)
        targets: Dict[str, Tensor] = {
            'joints_3d': j3d[..., :3].contiguous(),
            'joints_3d_visible': j3d[..., 3] * stacked['has_3d_joints'].reshape(b, 1),
            'joints_2d': j2d[..., :2].contiguous(),
            'joints_2d_visible': j2d[..., 2] * stacked['has_2d_joints'].reshape(b, 1),
            'has_vertices': has_smpl.clone(),
        }

        num_v = self.skinning[0].num_vertices
        sel = (has_smpl > 0).nonzero(as_tuple=True)[0]
        n = len(sel)
        levels = self.mesh_sampler.num_vertices
        names = ['vertices'] + ['vertices_sub' if k == 1 else f'vertices_sub{k}'
                                for k in range(1, len(levels))]
        for name, nv in zip(names, levels):
            targets[name] = x.new_zeros(b, nv, 3)
        if n:
            pose = stacked['smpl_pose'][sel]
            betas = stacked['smpl_betas'][sel]
            gender = stacked['smpl_gender'].reshape(b)[sel].long()
            # batch-last (V, 3, n): mesh down-sampling is a gather of whole rows of (V, 3 n)
            verts = self.gt_vertices(pose, betas, gender).float()
            level = verts.view(num_v, 3 * n)
            targets['vertices'][sel] = verts.permute(2, 0, 1)
            if self.joints_from_mesh != 'never':
                use = torch.ones_like(sel, dtype=torch.bool) if self.joints_from_mesh == 'always' \
                    else stacked['has_3d_joints'].reshape(b)[sel] <= 0
                if bool(use.any()):
                    # the mesh is centred on its pelvis already: LSP-14 rows give root-relative joints
                    j = (self.lsp_regressor @ verts.view(num_v, 3 * n)).view(-1, 3, n).permute(2, 0, 1)
                    rows = sel[use]
                    targets['joints_3d'][rows] = j[use]
                    targets['joints_3d_visible'][rows] = 1.0
            for k in range(1, len(levels)):
                level = self.mesh_sampler.downsample(level, k - 1, k)
                targets[names[k]][sel] = level.view(-1, 3, n).permute(2, 0, 1)

        if not training:
            self._attach_ground_truth(samples, targets)
        return dict(inputs=x, data_samples=samples, targets=targets)

    @staticmethod
    def _attach_ground_truth(samples: List, targets: Dict[str, Tensor]) -> None:
        """Per-sample ground truth in ``gt_instances`` for the metric (numpy, leading dim 1)."""
        joints = targets['joints_3d'].cpu().numpy()
        vis = targets['joints_3d_visible'].cpu().numpy()
        verts = targets['vertices'].cpu().numpy()
        has = targets['has_vertices'].cpu().numpy()
        root = np.zeros((1, 3), np.float32)
        for i, ds in enumerate(samples):
            set_instance_fields(ds.gt_instances, dict(
                keypoints_3d=joints[i:i + 1], keypoints_3d_visible=vis[i:i + 1], vertices=verts[i:i + 1],
                has_vertices=has[i:i + 1], vertex_root=root))

    def extra_repr(self) -> str:
        return (f'bgr_to_rgb={self.bgr_to_rgb}, gendered_gt={self.gendered_gt}, '
                f'joints_from_mesh={self.joints_from_mesh!r}')
