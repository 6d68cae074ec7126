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
        backbone: optional 2D pose network producing (B, K, h, w) pose feature maps.
        neck: optional module after the backbone.
        pose_map_size: (H, W) the pose feature maps are resized to (the pre-training resolution).
        freeze_backbone: keep the backbone fixed (testing without fine-tuning).
        data_preprocessor: e.g. ``MoCapHeatmapPreprocessor``; must return ``targets`` for training.
    """

    def __init__(self,
                 head: dict,
                 loss: dict,
                 joint_regressor: Optional[str] = None,
                 backbone: Optional[dict] = None,
                 neck: Optional[dict] = None,
                 pose_map_size: Sequence[int] = (224, 224),
                 freeze_backbone: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone) if backbone is not None else None
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head)
        self.loss_module = MODELS.build(loss)
        self.pose_map_size = tuple(pose_map_size)
        self.freeze_backbone = freeze_backbone
        if joint_regressor is not None:
            reg = torch.from_numpy(load_joint_regressor(joint_regressor, num_rows=17)).float()
            self.register_buffer('joint_regressor', reg[H36M_J17_TO_J14].contiguous(), persistent=False)
        else:
            self.joint_regressor = None
        if self.freeze_backbone and self.backbone is not None:
            self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> 'MeshEstimator':
        super().train(mode)
        if self.freeze_backbone and self.backbone is not None:
            self.backbone.eval()  # frozen BN statistics too
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
        camera frame; ``keypoints_3d_query`` (1, J, 3) the joint queries' own prediction; ``camera``
        (1, 3) weak perspective (s, tx, ty); ``keypoints`` (1, J, 2) ``keypoints_3d`` projected into
        input pixels and ``keypoint_scores`` (1, J).

        With a ``joint_regressor``, ``keypoints_3d`` are the joints regressed from the predicted mesh
        (G V), as METRO evaluates MPJPE; otherwise the joint queries' prediction.
        """
        preds = self.head(self.extract_feat(inputs))
        batch = preds['vertices'].shape[0]
        if data_samples is None:
            data_samples = [PoseDataSample() for _ in range(batch)]
        joints = preds['joints_3d'].float()
        if self.joint_regressor is not None:
            joints = torch.matmul(self.joint_regressor, preds['vertices'].float())   # (B, J, 3)
        cam = preds['camera'].float()
        w, h = inputs.shape[-1], inputs.shape[-2]
        if inputs.dim() == 3:  # 2D-coordinate inputs carry no size; use the configured map size
            h, w = self.pose_map_size
        kp2d = weak_perspective_project(joints, cam)              # normalised crop coords [-1, 1]
        kp2d = (kp2d + 1) * kp2d.new_tensor([w / 2, h / 2])       # METRO: x_norm = 2x / W - 1
        out = {k: v.float().cpu().numpy() for k, v in preds.items()}
        joints = joints.cpu().numpy()
        kp2d = kp2d.cpu().numpy()
        for i, ds in enumerate(data_samples):
            pred = InstanceData()
            pred.keypoints_3d = joints[i:i + 1]
            pred.keypoints_3d_query = out['joints_3d'][i:i + 1]
            pred.vertices = out['vertices'][i:i + 1]
            pred.camera = out['camera'][i:i + 1]
            pred.keypoints = kp2d[i:i + 1]
            pred.keypoint_scores = np.ones(kp2d.shape[1:2], np.float32)[None]
            ds.pred_instances = pred
        return data_samples
