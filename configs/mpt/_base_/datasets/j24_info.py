# mmpose dataset info of SPIN / METRO's 24-joint ground-truth set (J24), the joint set every
# MeshImageDataset normalises its annotations to (mmpose_mpt/body_models/j24.py J24_NAMES).
#
# mmpose's CombinedDataset parses its `metainfo` with parse_pose_metainfo, which needs this layout
# (keypoint_info / skeleton_info / joint_weights / sigmas, as mmpose's configs/_base_/datasets/*.py);
# the fine-tuning configs pass it as `metainfo=dict(from_file=...)`. CombinedDataset copies its
# `flip_indices` into every sample: they equal J24_FLIP_PERM (SPIN / METRO), the permutation
# MeshImageCrop flips with (tests/test_finetune_configs.py checks names and swaps against j24.py).
#
# Colours follow mmpose: left green, right orange, centre blue. joint_weights and sigmas are only read
# by mmpose's 2D heatmap losses and OKS metrics, which MPT does not use; sigmas are COCO's for the COCO
# joints and, for the others, COCO's value of the nearest COCO joint (neck / thorax: shoulder; top of
# head / jaw / head: nose; pelvis / spine: hip).
_L, _R, _C = [0, 255, 0], [255, 128, 0], [51, 153, 255]
dataset_info = dict(
    dataset_name='j24',
    paper_info=dict(
        author='Kolotouros, Nikos and Pavlakos, Georgios and Black, Michael J and Daniilidis, Kostas',
        title='Learning to Reconstruct 3D Human Pose and Shape via Model-fitting in the Loop',
        container='ICCV',
        year='2019',
        homepage='https://github.com/nkolot/SPIN',
    ),
    keypoint_info={
        0: dict(name='R_Ankle', id=0, color=_R, type='lower', swap='L_Ankle'),
        1: dict(name='R_Knee', id=1, color=_R, type='lower', swap='L_Knee'),
        2: dict(name='R_Hip', id=2, color=_R, type='lower', swap='L_Hip'),
        3: dict(name='L_Hip', id=3, color=_L, type='lower', swap='R_Hip'),
        4: dict(name='L_Knee', id=4, color=_L, type='lower', swap='R_Knee'),
        5: dict(name='L_Ankle', id=5, color=_L, type='lower', swap='R_Ankle'),
        6: dict(name='R_Wrist', id=6, color=_R, type='upper', swap='L_Wrist'),
        7: dict(name='R_Elbow', id=7, color=_R, type='upper', swap='L_Elbow'),
        8: dict(name='R_Shoulder', id=8, color=_R, type='upper', swap='L_Shoulder'),
        9: dict(name='L_Shoulder', id=9, color=_L, type='upper', swap='R_Shoulder'),
        10: dict(name='L_Elbow', id=10, color=_L, type='upper', swap='R_Elbow'),
        11: dict(name='L_Wrist', id=11, color=_L, type='upper', swap='R_Wrist'),
        12: dict(name='Neck_LSP', id=12, color=_C, type='upper', swap=''),
        13: dict(name='Top_of_Head_LSP', id=13, color=_C, type='upper', swap=''),
        14: dict(name='Pelvis_MPII', id=14, color=_C, type='lower', swap=''),
        15: dict(name='Thorax_MPII', id=15, color=_C, type='upper', swap=''),
        16: dict(name='Spine_H36M', id=16, color=_C, type='upper', swap=''),
        17: dict(name='Jaw_H36M', id=17, color=_C, type='upper', swap=''),
        18: dict(name='Head_H36M', id=18, color=_C, type='upper', swap=''),
        19: dict(name='Nose', id=19, color=_C, type='upper', swap=''),
        20: dict(name='L_Eye', id=20, color=_L, type='upper', swap='R_Eye'),
        21: dict(name='R_Eye', id=21, color=_R, type='upper', swap='L_Eye'),
        22: dict(name='L_Ear', id=22, color=_L, type='upper', swap='R_Ear'),
        23: dict(name='R_Ear', id=23, color=_R, type='upper', swap='L_Ear'),
    },
    # the bones mmpose_mpt.datasets.toy_images.J24_SKELETON draws
    skeleton_info={
        0: dict(link=('R_Ankle', 'R_Knee'), id=0, color=_R),
        1: dict(link=('R_Knee', 'R_Hip'), id=1, color=_R),
        2: dict(link=('R_Hip', 'Pelvis_MPII'), id=2, color=_R),
        3: dict(link=('L_Hip', 'Pelvis_MPII'), id=3, color=_L),
        4: dict(link=('L_Hip', 'L_Knee'), id=4, color=_L),
        5: dict(link=('L_Knee', 'L_Ankle'), id=5, color=_L),
        6: dict(link=('Pelvis_MPII', 'Spine_H36M'), id=6, color=_C),
        7: dict(link=('Spine_H36M', 'Neck_LSP'), id=7, color=_C),
        8: dict(link=('Neck_LSP', 'Jaw_H36M'), id=8, color=_C),
        9: dict(link=('Jaw_H36M', 'Head_H36M'), id=9, color=_C),
        10: dict(link=('Neck_LSP', 'R_Shoulder'), id=10, color=_R),
        11: dict(link=('R_Shoulder', 'R_Elbow'), id=11, color=_R),
        12: dict(link=('R_Elbow', 'R_Wrist'), id=12, color=_R),
        13: dict(link=('Neck_LSP', 'L_Shoulder'), id=13, color=_L),
        14: dict(link=('L_Shoulder', 'L_Elbow'), id=14, color=_L),
        15: dict(link=('L_Elbow', 'L_Wrist'), id=15, color=_L),
        16: dict(link=('Jaw_H36M', 'Nose'), id=16, color=_C),
        17: dict(link=('Nose', 'L_Eye'), id=17, color=_L),
        18: dict(link=('Nose', 'R_Eye'), id=18, color=_R),
        19: dict(link=('L_Eye', 'L_Ear'), id=19, color=_L),
        20: dict(link=('R_Eye', 'R_Ear'), id=20, color=_R),
    },
    joint_weights=[1.0] * 24,
    sigmas=[
        0.089, 0.087, 0.107, 0.107, 0.087, 0.089, 0.062, 0.072, 0.079, 0.079, 0.072, 0.062,
        0.079, 0.026, 0.107, 0.079, 0.107, 0.026, 0.026, 0.026, 0.025, 0.025, 0.035, 0.035
    ])
