"""PackMeshInputs: pack a mesh sample into ``inputs`` + an mmpose ``PoseDataSample``."""
import copy
from typing import Dict, List, Sequence

import numpy as np
import torch
from mmengine.structures import InstanceData
from mmpose.registry import TRANSFORMS
from mmpose.structures import PoseDataSample

# re-exported: their historical home is this module
from ...utils.instance_fields import set_instance_fields, set_metainfo_fields  # noqa: F401
from .batched_transform import BatchedTransform

# results key -> gt_instances field (leading instance dim 1). Optional ones are packed when present,
# so mesh image datasets (fine-tuning) reuse this transform with their 3D ground truth.
INSTANCE_KEYS = {
    'keypoints': 'keypoints', 'keypoints_visible': 'keypoints_visible', 'bbox': 'bboxes',
    'bbox_center': 'bbox_centers', 'bbox_scale': 'bbox_scales',
    'smpl_pose': 'smpl_pose', 'smpl_betas': 'smpl_betas', 'gender': 'smpl_gender',
    'cam_R': 'cam_R', 'cam_t': 'cam_t', 'cam_f': 'cam_f', 'cam_c': 'cam_c', 'warp_mat': 'warp_mat',
    'heatmap_noise_std': 'heatmap_noise_std',
    'keypoints_3d': 'keypoints_3d', 'keypoints_3d_visible': 'keypoints_3d_visible',
    'vertices': 'vertices', 'has_vertices': 'has_vertices',
    # mesh image samples (MeshImageCrop): crop-frame joints, flags, the SPIN/METRO box (scale = side / 200)
    'joints_2d': 'joints_2d', 'joints_3d': 'joints_3d', 'has_smpl': 'has_smpl',
    'has_2d_joints': 'has_2d_joints', 'has_3d_joints': 'has_3d_joints',
    'center': 'bbox_center', 'scale': 'bbox_scale',
}
# Per-sample arrays that describe one instance but are stored without the leading dim by transforms.
UNBATCHED = {'smpl_pose', 'smpl_betas', 'gender', 'cam_R', 'cam_t', 'cam_f', 'cam_c', 'warp_mat',
             'heatmap_noise_std', 'has_vertices', 'has_smpl', 'has_2d_joints', 'has_3d_joints', 'center',
             'scale'}
# Per-instance arrays that may come with or without the leading instance dim (e.g. the MoCap dataset's
# ``keypoints_3d`` is (17, 3)): their ndim without it. Packed as (1, ...) either way, so every
# ``gt_instances`` field has length 1 (InstanceData takes its length from whichever field comes first).
INSTANCE_NDIM = {'keypoints_3d': 2, 'keypoints_3d_visible': 1, 'vertices': 2, 'joints_2d': 2,
                 'joints_3d': 2}


@TRANSFORMS.register_module()
class PackMeshInputs(BatchedTransform):
    """Pack the sample.

    ``inputs``: for MoCap samples, a float32 tensor (K, 3) = [x, y, visible] of the (MHM-corrupted)
    heatmap keypoints in heatmap pixels — the preprocessor renders the heatmaps from it on the device;
    for image samples, the image as a (3, H, W) tensor.

    ``data_samples``: a ``PoseDataSample`` with ``gt_instances`` (leading dim 1) holding every present
    field of :data:`INSTANCE_KEYS`, and ``meta_keys`` in its metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = ('input_size', 'view_index', 'sample_idx', 'seq_name',
                                                   'frame_index', 'dataset_name', 'img_path', 'id',
                                                   'flip_indices', 'flip', 'ori_shape')):
        self.meta_keys = tuple(meta_keys)
        # (results key, field, always add the instance dim, ndim without it): the per-sample loop
        # runs on every training sample, so the lookups are done once here
        self._instance_specs = tuple((k, f, k in UNBATCHED, INSTANCE_NDIM.get(k, -1))
                                     for k, f in INSTANCE_KEYS.items())

    def _fields(self, results: Dict) -> Dict[str, np.ndarray]:
        fields = {}
        for key, field, unbatched, ndim in self._instance_specs:
            if key not in results:
                continue
            value = results[key]
            if type(value) is not np.ndarray:
                value = np.asarray(value)
            if unbatched or value.ndim == ndim:
                value = value[None]
            if value.dtype == np.float64:
                value = value.astype(np.float32)
            fields[field] = value
        return fields

    def _sample(self, results: Dict, fields: Dict[str, np.ndarray]) -> PoseDataSample:
        sample = PoseDataSample()
        sample.gt_instances = set_instance_fields(InstanceData(), fields)
        meta = {}
        for k in self.meta_keys:
            if k in results:
                value = results[k]
                # set_metainfo deep-copies every value; only mutable containers need it
                if isinstance(value, (list, dict, set, np.ndarray)):
                    value = copy.deepcopy(value)
                meta[k] = value
        return set_metainfo_fields(sample, meta)

    def transform(self, results: Dict) -> Dict:
        if 'img' in results:
            img = np.ascontiguousarray(results['img'].transpose(2, 0, 1))
            inputs = torch.from_numpy(img)
        else:
            kp = np.asarray(results.get('heatmap_keypoints', results['keypoints']), np.float32)[0]
            vis = np.asarray(results.get('heatmap_keypoints_visible', results['keypoints_visible']),
                             np.float32)[0]
            inputs = torch.from_numpy(np.concatenate([kp, vis[:, None]], axis=1))
        return dict(inputs=inputs, data_samples=self._sample(results, self._fields(results)))

    def transform_batch(self, batch: List[Dict], draws: List) -> List[Dict]:
        # one by one: packing is the creation of each sample's data structures (stacking the fields
        # first and slicing them per sample measured slower)
        return [self.transform(r) for r in batch]

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
