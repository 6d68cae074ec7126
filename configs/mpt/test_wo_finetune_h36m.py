# Testing without fine-tuning on Human3.6M, protocol 2 (paper Sec. 3.2, Table 2 row 5: 88.9 MPJPE /
# 58.4 PA-MPJPE): the pre-trained MPT head (configs/mpt/pretrain_amass.py) reads the pose feature maps
# of a frozen COCO HigherHRNet-w48 instead of the MoCap heatmaps. Nothing is trained.
#
#   # METRO's evaluation set (microsoft/MeshTransformer docs/DOWNLOAD.md): data/human3.6m/valid.protocol2.yaml
#   # HigherHRNet-w48 COCO weights (see _base_/pose_nets/higherhrnet_w48.py) in data/pose_nets/
#   python tools/test.py configs/mpt/test_wo_finetune_h36m.py work_dirs/pretrain_amass/epoch_10.pth
#
# Protocol (METRO's, which MPT's code base uses): S9 + S11, every 5th frame, camera 60457274;
# MPJPE / PA-MPJPE on LSP-14 from the 17 Human3.6M joints regressed from the predicted mesh with
# J_regressor_h36m_correct.npy; ground truth = the label's J24 3D joints (LSP-14 = J24_TO_J14). METRO's
# protocol-2 labels carry no SMPL (has_smpl = 0), so MPVE is NaN here, as METRO logs 0.00 for it.
# SPIN's h36m_valid_protocol2.npz (or mmhuman3d's) loads the same way: set ann_file to it and
# data_prefix.img to its image root. Their boxes are 0.9 x the person's extent, METRO's (GraphCMR's)
# the full extent: for METRO's crops add test_dataloader.dataset.bbox_scale=1.111 (= 1 / 0.9).
_base_ = ['./pretrain_amass.py', './_base_/pose_nets/higherhrnet_w48.py',
          './_base_/datasets/mesh_images.py']

data_root = 'data/'
body_model_dir = data_root + 'body_models/'
h36m_regressor = body_model_dir + 'J_regressor_h36m_correct.npy'
mesh_sampling = body_model_dir + 'mesh_downsampling.npz'

model = dict(
    data_preprocessor=dict(
        _delete_=True,
        type='MeshImagePreprocessor',
        body_model=dict(model_path=body_model_dir + 'smpl', gender='neutral',
                        h36m_regressor=h36m_regressor),
        mesh_sampler=mesh_sampling,
        gendered_gt=False),          # METRO: ground-truth meshes of the neutral SMPL
    backbone={{_base_.pose_net.backbone}},
    neck={{_base_.pose_net.neck}},
    pose_net_checkpoint={{_base_.pose_net_checkpoint}},
    freeze_backbone=True,            # the COCO pose network as released
)
# tools/test.py's checkpoint is the pre-trained MPT (no pose network inside): the pose network comes
# from pose_net_checkpoint, every other key must fit
load_partial = ['backbone.*', 'neck.*']

test_dataloader = dict(
    _delete_=True,
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='MeshImageDataset', ann_file=data_root + 'human3.6m/valid.protocol2.yaml',
                 dataset_name='h36m_p2', test_mode=True,
                 pipeline={{_base_.image_test_pipeline}}))
test_evaluator = dict(type='MeshMetric', joint_set='lsp14')
val_dataloader = test_dataloader
val_evaluator = test_evaluator
