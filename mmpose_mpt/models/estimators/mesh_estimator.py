"""MeshEstimator: (optional 2D pose backbone) + MPT head, with mmengine's loss / predict / tensor modes.

Pre-training (Sec. 3.1): no backbone; the data preprocessor renders MoCap heatmaps and ground truth.
Testing without fine-tuning (Sec. 3.2) / fine-tuning (Sec. 3.3): a 2D pose network produces pose feature
maps that replace the heatmaps; the same head and loss are used.
"""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from torch import Tensor

from ...body_models.joint_regressors import H36M_J17_TO_J14, load_joint_regressor
from ...cameras import weak_perspective_project



@MODELS.register_module()
class MeshEstimator(BaseModel):
    """Human mesh estimator of MPT.

    Args:
        head: config of :class:`MPTHead`.
        loss: config of :class:`MPTLoss`.
        joint_regressor: path to the Human3.6M regressor G (17, V) (``J_regressor_h36m_correct.npy``);
            used for L_J^reg (rows ``H36M_J17_TO_J14``) and to root-align regressed joints.
        backbone: optional backbone of the 2D pose network (e.g. ``HRNet``, ``ResNet``).
        neck: optional module after the backbone: the 2D pose network's own head, returning the
            (B, K, h, w) pose feature maps (e.g. ``AEHigherResolutionNeck``, mmpose's ``HeatmapHead``).
            Backbone + neck = the "pose network".
        pose_map_size: (H, W) the pose feature maps are resized to; None (default): the head's
            ``input_size`` (the pre-training heatmap resolution, 224 x 224 in the paper).
        freeze_backbone: keep the whole pose network (backbone *and* neck) fixed: no gradients and
            BN layers in eval mode, so running statistics stay as loaded (testing without
            fine-tuning, Sec. 3.2).
        pose_net_checkpoint: a released 2D pose-network checkpoint (mmpose 0.x ``backbone.*`` /
            ``keypoint_head.*`` or 1.x ``backbone.*`` / ``head.*``; the head part goes to ``neck``,
            never to the MPT head) loaded strictly by :func:`load_pose_net_checkpoint` when the model
            is built and again after :meth:`init_weights` (mmengine's runner calls it before
            training, which would otherwise overwrite the loaded weights). Without a ``neck`` (the
            head reads the backbone's image features, Table 3b) only the checkpoint's backbone is
            used; its pose head is left out.
        data_preprocessor: e.g. ``MoCapHeatmapPreprocessor``; must return ``targets`` for training.
    """

    def __init__(self,
                 head: dict,
                 loss: dict,
                 joint_regressor: Optional[str] = None,
                 backbone: Optional[dict] = None,
                 neck: Optional[dict] = None,
                 pose_map_size: Optional[Sequence[int]] = None,
                 freeze_backbone: bool = False,
                 pose_net_checkpoint: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone) if backbone is not None else None
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head)
        self.loss_module = MODELS.build(loss)
        if pose_map_size is None:
            pose_map_size = getattr(self.head, 'input_size', (224, 224))
        self.pose_map_size = tuple(int(v) for v in pose_map_size)
        self.freeze_backbone = freeze_backbone
        if joint_regressor is not None:
            reg = torch.from_numpy(load_joint_regressor(joint_regressor, num_rows=17)).float()
            # all 17 rows: predictions carry the Human3.6M joints (pelvis = row 0, METRO's MPVE root)
            self.register_buffer('h36m_regressor', reg.contiguous(), persistent=False)
            self.register_buffer('joint_regressor', reg[H36M_J17_TO_J14].contiguous(), persistent=False)
        else:
            self.h36m_regressor = None
            self.joint_regressor = None
        if pose_net_checkpoint is not None and self.backbone is None:
            raise ValueError(f'MeshEstimator: pose_net_checkpoint={pose_net_checkpoint!r} needs a '
                             'backbone (and neck) config to load into')
        self.pose_net_checkpoint = pose_net_checkpoint
        self.load_pose_net()
        if self.freeze_backbone:
            for m in self.pose_net_modules():
                m.requires_grad_(False)

    def pose_net_modules(self) -> List[torch.nn.Module]:
        """The 2D pose network's parts that exist: [backbone, neck]."""
        return [m for m in (self.backbone, self.neck) if m is not None]

    def load_pose_net(self) -> Optional[dict]:
        """Load ``pose_net_checkpoint`` (if set) into backbone + neck, strictly; its summary or None."""
        if self.pose_net_checkpoint is None:
            return None
        from .pose_net_checkpoint import load_pose_net_checkpoint
        return load_pose_net_checkpoint(self.backbone, self.neck, self.pose_net_checkpoint,
                                        use_head=self.neck is not None)

    def init_weights(self) -> None:
        """mmengine's initialisation, then the released pose-network weights again on top of it."""
        super().init_weights()
        self.load_pose_net()

    def train(self, mode: bool = True) -> 'MeshEstimator':
        super().train(mode)
        if self.freeze_backbone:
            for m in self.pose_net_modules():
                m.eval()  # frozen BN statistics too
        return self

    # ------------------------------------------------------------------ features
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Images (B, 3, H, W) → pose maps (B, K, H', W'); heatmaps / coords pass through unchanged."""
        if self.backbone is None:
            return inputs
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        if isinstance(feats, (list, tuple)):
            feats = feats[-1]
        if tuple(feats.shape[-2:]) != self.pose_map_size:
            feats = F.interpolate(feats, size=self.pose_map_size, mode='bilinear', align_corners=False)
        return feats

    # ------------------------------------------------------------------ modes
    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[PoseDataSample]] = None,
                mode: str = 'tensor',
                targets: Optional[Dict[str, Tensor]] = None) -> Union[dict, list]:
        if mode == 'loss':
            return self.loss(inputs, data_samples, targets)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs))
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode.')

    def loss(self, inputs: Tensor, data_samples: Optional[List[PoseDataSample]],
             targets: Optional[Dict[str, Tensor]]) -> Dict[str, Tensor]:
        if targets is None:
            raise ValueError('MeshEstimator.loss needs `targets` from the data preprocessor '
                             '(e.g. MoCapHeatmapPreprocessor)')
        preds = self.head(self.extract_feat(inputs))
        return self.loss_module(preds, targets, self.joint_regressor)

    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[List[PoseDataSample]] = None) -> List[PoseDataSample]:
        """Predictions packed into ``PoseDataSample.pred_instances``.

        Per sample: ``keypoints_3d`` (1, J, 3) and ``vertices`` (1, V, 3) in metres, root-relative, in the
        camera frame; ``keypoints_3d_query`` (1, 14, 3) the joint queries' own prediction; ``camera``
        (1, 3) weak perspective (s, tx, ty); ``keypoints`` (1, 14, 2) the LSP-14 joints projected into
        input pixels and ``keypoint_scores`` (1, 14).

        With a ``joint_regressor``, ``keypoints_3d`` are the 17 Human3.6M joints regressed from the
        predicted mesh (G V, METRO order; ``MeshMetric`` reduces them to LSP-14 as METRO does) and
        ``vertex_root`` (1, 3) is their pelvis (row 0), the root METRO subtracts from the vertices
        for MPVE. Without one, ``keypoints_3d`` are the joint queries' 14 joints and there is no
        ``vertex_root``.
        """
        preds = self.head(self.extract_feat(inputs))
        batch = preds['vertices'].shape[0]
        if data_samples is None:
            data_samples = [PoseDataSample() for _ in range(batch)]
        joints = preds['joints_3d'].float()
        h36m = None
        if self.h36m_regressor is not None:
            h36m = torch.matmul(self.h36m_regressor, preds['vertices'].float())      # (B, 17, 3)
            joints = h36m[:, H36M_J17_TO_J14]                                        # (B, 14, 3)
        cam = preds['camera'].float()
        w, h = inputs.shape[-1], inputs.shape[-2]
        if inputs.dim() == 3:  # 2D-coordinate inputs carry no size; use the configured map size
            h, w = self.pose_map_size
        kp2d = weak_perspective_project(joints, cam)              # normalised crop coords [-1, 1]
        kp2d = (kp2d + 1) * kp2d.new_tensor([w / 2, h / 2])       # METRO: x_norm = 2x / W - 1
        out = {k: v.float().cpu().numpy() for k, v in preds.items()}
        joints = (h36m if h36m is not None else joints).cpu().numpy()
        kp2d = kp2d.cpu().numpy()
        for i, ds in enumerate(data_samples):
            pred = InstanceData()
            pred.keypoints_3d = joints[i:i + 1]
            if h36m is not None:
                pred.vertex_root = joints[i:i + 1, 0]
            pred.keypoints_3d_query = out['joints_3d'][i:i + 1]
            pred.vertices = out['vertices'][i:i + 1]
            pred.camera = out['camera'][i:i + 1]
            pred.keypoints = kp2d[i:i + 1]
            pred.keypoint_scores = np.ones(kp2d.shape[1:2], np.float32)[None]
            ds.pred_instances = pred
        return data_samples
