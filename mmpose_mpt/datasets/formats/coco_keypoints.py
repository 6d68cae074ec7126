"""COCO person-keypoints annotations (``person_keypoints_*.json``) of mesh-image records.

The 2D pose networks MPT plugs in (HigherHRNet, SimpleBaseline) are trained on COCO with mmpose's
``CocoDataset``; writing a mesh-image set in that layout lets the same mmpose configs train a pose
network on it (the embedded default's stand-in for a COCO-trained checkpoint). Layout: the COCO 2017
keypoint files (``images``, ``annotations`` with ``keypoints`` (17 x 3 flat, v = 2 visible / 0 not
labelled), ``num_keypoints``, ``bbox`` [x, y, w, h], ``area``, ``iscrowd``, ``category_id`` 1, and the
``person`` category with COCO's keypoint names and 1-based skeleton).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ...body_models.j24 import COCO17_TO_J24

COCO17_NAMES: Tuple[str, ...] = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
    'right_knee', 'left_ankle', 'right_ankle')
# COCO 2017's person skeleton (1-based keypoint ids, as in person_keypoints_val2017.json)
COCO17_SKELETON_1BASED: List[List[int]] = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10],
    [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


def write_coco_keypoints(path: str, records: Sequence[Dict], image_size: Tuple[int, int]) -> str:
    """Write ``records`` (``img_name``, ``keypoints_2d_j24`` (24, 3) pixels + confidence, ``center`` (2,)
    and ``scale`` (SPIN: box side / 200)) as one COCO keypoints json; returns ``path``.

    One image and one person annotation per record (image id = annotation id = index + 1). ``bbox`` is
    the record's square label box (``center`` +- 100 ``scale``: what MeshImageCrop crops), clipped to
    the image: a top-down network trained on it sees the person framed about as MPT's crops frame
    them (exactly where the box is inside the image; ~1/4 of the toy boxes are clipped, their crop
    centre then moves by up to ~0.2 of the side, which the training augmentation covers). ``area`` is
    that box's area, not a silhouette's as in COCO: OKS, whose tolerance grows with the area, is then
    more lenient than COCO's, so the AP of these files is not comparable with COCO's.
    """
    W, H = (int(v) for v in image_size)
    images, anns = [], []
    for i, rec in enumerate(records):
        j24 = np.asarray(rec['keypoints_2d_j24'], np.float64)
        coco = j24[COCO17_TO_J24]                                    # (17, 3)
        vis = coco[:, 2] > 0
        kps = np.zeros((17, 3))
        kps[vis, :2] = coco[vis, :2]
        kps[vis, 2] = 2
        c = np.asarray(rec['center'], np.float64)
        half = 100.0 * float(np.asarray(rec['scale']).reshape(-1)[0])
        x0, y0 = np.clip(c - half, 0, [W, H])
        x1, y1 = np.clip(c + half, 0, [W, H])
        images.append(dict(id=i + 1, file_name=str(rec['img_name']), width=W, height=H))
        anns.append(dict(id=i + 1, image_id=i + 1, category_id=1, iscrowd=0,
                         keypoints=[round(float(v), 2) for v in kps.reshape(-1)],
                         num_keypoints=int(vis.sum()),
                         bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                         area=round(float((x1 - x0) * (y1 - y0)), 2)))
    doc = dict(info=dict(description='mmpose-mpt mesh-image set, COCO person keypoints layout'),
               images=images, annotations=anns,
               categories=[dict(id=1, name='person', supercategory='person', keypoints=list(COCO17_NAMES),
                                skeleton=COCO17_SKELETON_1BASED)])
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)
    return path
