"""RandomVirtualCamera: look at a centred MoCap mesh through one of the virtual cameras (Sec. 3.1.1)."""
from typing import Dict, Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmpose.registry import TRANSFORMS

from ...cameras import VirtualCameraRig, apply_warp, project_points, topdown_crop


@TRANSFORMS.register_module()
class RandomVirtualCamera(BaseTransform):
    """Pick a virtual camera, project the COCO-17 joints, crop as mmpose's top-down pipeline does.

    Per sample and cheap (numpy on 17 points); the heavy work (body model, heatmaps) is batched in
    :class:`MoCapHeatmapPreprocessor`.

    Args:
        num_views: 1, 2, 4 or 8 virtual cameras (see :class:`VirtualCameraRig`).
        input_size: (w, h) of the crop = heatmap resolution (224 or 112).
        padding: crop enlargement (mmpose's ``GetBBoxCenterScale``).
        random_view: draw the view uniformly (training); else use ``results['view_index']`` (the
            dataset enumerates mesh × view, so evaluation is deterministic).

    Required keys: ``keypoints_3d`` (17, 3) canonical frame (metres), ``view_index`` if not random.

    Added keys: ``view_index``, ``cam_R`` (3, 3), ``cam_t`` (3,), ``cam_f`` (2,), ``cam_c`` (2,),
    ``warp_mat`` (2, 3), ``bbox`` (1, 4) xyxy image pixels, ``bbox_center`` (1, 2), ``bbox_scale``
    (1, 2), ``input_size`` (w, h), ``keypoints`` (1, 17, 2) crop pixels, ``keypoints_visible`` (1, 17)
    (1 for joints in front of the camera).
    """

    def __init__(self, num_views: int = 4, input_size: Sequence[int] = (224, 224),
                 padding: float = 1.25, random_view: bool = True):
        self.rig = VirtualCameraRig(num_views)
        self.num_views = num_views
        self.input_size = tuple(int(v) for v in input_size)
        self.padding = padding
        self.random_view = random_view

    def transform(self, results: Dict) -> Optional[Dict]:
        if self.random_view:
            view = int(np.random.randint(self.num_views))
        else:
            view = int(results['view_index']) % self.num_views
        R, t, f, c = self.rig.R[view], self.rig.t[view], self.rig.f[view], self.rig.c[view]
        joints_cam = np.asarray(results['keypoints_3d'], np.float64) @ R.T + t
        visible = joints_cam[:, 2] > 1e-3
        px = project_points(joints_cam, f, c)
        crop = topdown_crop(px[visible] if visible.any() else px, self.input_size, self.padding)
        kp = apply_warp(px, crop['warp_mat'])
        results.update(
            view_index=view, cam_R=R.astype(np.float32), cam_t=t.astype(np.float32),
            cam_f=f.astype(np.float32), cam_c=c.astype(np.float32), warp_mat=crop['warp_mat'],
            bbox=crop['bbox'][None], bbox_center=crop['center'][None], bbox_scale=crop['scale'][None],
            input_size=self.input_size, keypoints=kp[None].astype(np.float32),
            keypoints_visible=visible[None].astype(np.float32))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_views={self.num_views}, input_size={self.input_size}, '
                f'padding={self.padding}, random_view={self.random_view})')
