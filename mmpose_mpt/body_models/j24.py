"""SPIN / METRO's 24-joint ground-truth set (J24) and the index arrays that map other sets onto it.

Every mesh-image annotation format (METRO TSV, SPIN npz, mmhuman3d HumanData) is normalised to J24;
the model and the metrics use its LSP-14 subset (``J24_TO_J14``), which equals the mesh-regressed
``H36M_J17_TO_J14`` joints of :mod:`.joint_regressors` joint for joint. Sources: nkolot/SPIN
``constants.py`` and ``datasets/preprocess/*.py``, microsoft/MeshTransformer ``metro/modeling/data/
config.py``, open-mmlab/mmhuman3d ``core/conventions/keypoints_mapping/*.py`` (see
``shared/research/finetune.md`` §3-5).
"""
from typing import List, Tuple

import numpy as np

J24_NAMES: Tuple[str, ...] = (
    'R_Ankle', 'R_Knee', 'R_Hip', 'L_Hip', 'L_Knee', 'L_Ankle', 'R_Wrist', 'R_Elbow', 'R_Shoulder',
    'L_Shoulder', 'L_Elbow', 'L_Wrist', 'Neck_LSP', 'Top_of_Head_LSP', 'Pelvis_MPII', 'Thorax_MPII',
    'Spine_H36M', 'Jaw_H36M', 'Head_H36M', 'Nose', 'L_Eye', 'R_Eye', 'L_Ear', 'R_Ear')
NUM_J24 = 24
J24_PELVIS_INDEX = 14
# LSP-14 = R_Ankle … L_Wrist, Neck, Head(H36M) (METRO / SPIN ``J24_TO_J14``)
J24_TO_J14: List[int] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18]
# left <-> right (SPIN ``J24_FLIP_PERM``, hard-coded the same in METRO)
J24_FLIP_PERM: List[int] = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13, 14, 15, 16, 17, 18, 19, 21, 20,
                            23, 22]
LSP14_FLIP_PERM: List[int] = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13]

# SMPL kinematic joints left <-> right, and the 72 axis-angle pose values it permutes (SPIN / METRO)
SMPL_JOINTS_FLIP_PERM: List[int] = [0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18,
                                    21, 20, 23, 22]
SMPL_POSE_FLIP_PERM: List[int] = [3 * j + k for j in SMPL_JOINTS_FLIP_PERM for k in range(3)]

# METRO's Human3.6M-17 order (``H36M17_NAMES``: Pelvis, R_Hip, R_Knee, R_Ankle, L_Hip, …) → J24 slot
H36M17_TO_J24: List[int] = [14, 2, 1, 0, 3, 4, 5, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6]
# COCO-17 (mmpose order) → J24 slot (SPIN preprocess/coco.py)
COCO17_TO_J24: List[int] = [19, 20, 21, 22, 23, 9, 8, 10, 7, 11, 6, 3, 2, 4, 1, 5, 0]

# mmhuman3d 'human_data' (190 joints) indices of J24 (its 'smpl_24'), COCO-17 and Human3.6M-17
# (mmhuman3d's h36m order: pelvis, left_hip, left_knee, left_ankle, right_hip, … — left first)
HUMANDATA_NUM_KEYPOINTS = 190
HUMANDATA_TO_J24: List[int] = [8, 5, 144, 145, 4, 7, 21, 19, 17, 16, 18, 20, 146, 147, 148, 149, 150, 151,
                               152, 55, 57, 56, 59, 58]
HUMANDATA_COCO17: List[int] = [55, 57, 56, 59, 58, 16, 17, 18, 19, 20, 21, 145, 144, 4, 5, 7, 8]
HUMANDATA_H36M17: List[int] = [148, 145, 4, 7, 144, 5, 8, 150, 146, 152, 147, 16, 18, 20, 17, 19, 21]
# The Human3.6M head trap: mmhuman3d's h36m converter stores H36M joint 9 in 'head_extra' (152, J24
# slot 18) and joint 10 (the head) in 'headtop' (147, slot 13); SPIN / GraphCMR (and so METRO's TSV)
# put joint 9 in slot 17 (Jaw) and joint 10 in slot 18 (Head), the slot LSP-14 reads. For files of
# Human3.6M origin the loader takes slots 17 / 18 from these human_data indices and leaves slot 13 empty.
HUMANDATA_H36M_ORIGIN_J24_17_18: Tuple[int, int] = (152, 147)


def j24_from_regressed(h36m17: np.ndarray, coco17: np.ndarray) -> np.ndarray:
    """J24 with confidences (..., 24, 4) from mesh-regressed joints (what toy / synthetic labels use).

    Args:
        h36m17: (..., 17, 3) Human3.6M-17 joints (METRO order) regressed from the mesh.
        coco17: (..., 17, 3) COCO-17 joints regressed from the mesh (only the face joints are used:
            the body joints come from the Human3.6M regressor, so that ``J24_TO_J14`` equals the
            model's ``H36M_J17_TO_J14`` joints exactly).

    Returns:
        (..., 24, 4) float32 [x, y, z, conf]; conf 0 for Top_of_Head_LSP and Thorax_MPII (no source).
    """
    h36m17 = np.asarray(h36m17, np.float32)
    coco17 = np.asarray(coco17, np.float32)
    out = np.zeros(h36m17.shape[:-2] + (NUM_J24, 4), np.float32)
    out[..., H36M17_TO_J24, :3] = h36m17
    out[..., H36M17_TO_J24, 3] = 1
    face = slice(0, 5)  # nose, eyes, ears
    out[..., COCO17_TO_J24[face], :3] = coco17[..., face, :]
    out[..., COCO17_TO_J24[face], 3] = 1
    return out
