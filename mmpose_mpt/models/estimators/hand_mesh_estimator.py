"""HandMeshEstimator: MeshEstimator with MANO's 21 hand joints in place of the body's Human3.6M ones.

The body estimator regresses LSP-14 / Human3.6M-17 joints from the predicted mesh; the hand variant
regresses the 21 FreiHAND-order joints (:meth:`MANO.joint_regressor21`: MANO's ``J_regressor`` + 5
fingertip vertices, METRO's ``get_3d_joints``), used for L_J^reg and for the predictions. Everything
else (pose network + MPT head, losses, modes) is :class:`MeshEstimator`'s.
"""
from typing import List, Optional

import numpy as np
import torch
from mmengine.structures import InstanceData
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from torch import Tensor

from ...cameras import weak_perspective_project
from .mesh_estimator import MeshEstimator


@MODELS.register_module()
class HandMeshEstimator(MeshEstimator):
    """Hand mesh estimator (paper Sec. 4, Table 6).

    Args:
        hand_model: kwargs of :class:`~mmpose_mpt.body_models.MANO` (``model_path``, optional
            ``fingertip_vertex_ids``: FreiHAND's ``(744, 320, 443, 555, 672)`` for the real MANO): gives
            the (21, 778) joint regressor G.
        **kwargs: :class:`MeshEstimator`'s (``head``, ``loss``, ``backbone``, ``neck``, ``pose_net_checkpoint``
            ...; ``joint_regressor`` is not used: G comes from ``hand_model``).

    Predictions (``pred_instances``, metres, camera frame): ``keypoints_3d`` (1, 21, 3) = G V of the
    predicted mesh and ``vertices`` (1, 778, 3), both minus that wrist (joint 0; FreiHAND / METRO's
    root, the ground truth's); ``keypoints_3d_query`` (1, 21, 3) the joint queries; ``camera`` (1, 3);
    ``keypoints`` (1, 21, 2) input pixels and ``keypoint_scores`` (1, 21).
    """

    def __init__(self, hand_model: dict, **kwargs) -> None:
        kwargs.pop('joint_regressor', None)
        super().__init__(joint_regressor=None, **kwargs)
        from ...body_models.mano import MANO
        mano = MANO(**hand_model)
        reg = torch.from_numpy(mano.joint_regressor21()).float()
        del self.joint_regressor   # MeshEstimator's plain None attribute
        self.register_buffer('joint_regressor', reg.contiguous(), persistent=False)

    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[List[PoseDataSample]] = None) -> List[PoseDataSample]:
        preds = self.head(self.extract_feat(inputs))
        verts = preds['vertices'].float()
        joints = torch.matmul(self.joint_regressor, verts)                     # (B, 21, 3)
        wrist = joints[:, :1]
        joints, verts = joints - wrist, verts - wrist
        cam = preds['camera'].float()
        h, w = (inputs.shape[-2], inputs.shape[-1]) if inputs.dim() == 4 else self.pose_map_size
        kp2d = (weak_perspective_project(joints, cam) + 1) * joints.new_tensor([w / 2, h / 2])
        if data_samples is None:
            data_samples = [PoseDataSample() for _ in range(verts.shape[0])]
        joints, verts, kp2d = joints.cpu().numpy(), verts.cpu().numpy(), kp2d.cpu().numpy()
        query, cam = preds['joints_3d'].float().cpu().numpy(), cam.cpu().numpy()
        for i, ds in enumerate(data_samples):
            pred = InstanceData()
            pred.keypoints_3d = joints[i:i + 1]
            pred.vertex_root = np.zeros((1, 3), np.float32)
            pred.keypoints_3d_query = query[i:i + 1]
            pred.vertices = verts[i:i + 1]
            pred.camera = cam[i:i + 1]
            pred.keypoints = kp2d[i:i + 1]
            pred.keypoint_scores = np.ones(kp2d.shape[1:2], np.float32)[None]
            ds.pred_instances = pred
        return data_samples
