# The embedded default's 2D pose network: mmpose's own top-down heatmap training (TopdownPoseEstimator,
# HRNet + HeatmapHead, CocoDataset, MSRAHeatmap, CocoMetric — as mmpose's
# configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py) at toy size,
# on the toy images' COCO-layout 2D labels. It stands in for the COCO-trained network of the paper
# (HigherHRNet-w48 / SimpleBaseline): its checkpoint is an ordinary mmpose 1.x file (`backbone.*`,
# `head.*`) that MPT's configs load through `model.pose_net_checkpoint`, exactly like a released one.
#
#   python tools/make_toy_images.py data/toy/images --body-model-dir data/toy/body_models
#   python tools/train.py configs/mpt/pose_net_toy.py
#   # -> work_dirs/pose_net_toy/epoch_*.pth, then e.g.
#   python tools/test.py configs/mpt/test_wo_finetune_toy.py work_dirs/pretrain_toy/epoch_4.pth \
#       --cfg-options model.pose_net_checkpoint=work_dirs/pose_net_toy/epoch_20.pth
_base_ = ['./_base_/default_runtime.py', './_base_/pose_nets/toy_hrnet.py']

data_root = 'data/toy/images/'     # OUT_DIR of tools/make_toy_images.py
max_epochs = 20
batch_size = 32
codec = {{_base_.toy_codec}}        # 160 x 160 crops = MeshImageCrop's size in test_wo_finetune_toy.py

model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone={{_base_.toy_pose_net.backbone}},
    head=dict(type='HeatmapHead', in_channels=16, out_channels=17, deconv_out_channels=None,
              loss=dict(type='KeypointMSELoss', use_target_weight=True), decoder=codec),
    test_cfg=dict(flip_test=False, output_heatmaps=False),
)

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=50, start_factor=0.01, by_epoch=False),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5, by_epoch=True, begin=0,
         end=max_epochs),
]
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))
randomness = dict(seed=0)

train_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.0),   # the label box is already MeshImageCrop's square
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomBBoxTransform', shift_factor=0.1, scale_factor=(0.8, 1.2), rotate_factor=30),
    dict(type='TopdownAffine', input_size={{_base_.toy_crop_size}}),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.0),
    dict(type='TopdownAffine', input_size={{_base_.toy_crop_size}}),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(
    batch_size=batch_size, num_workers=1, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CocoDataset', data_root=data_root, data_mode='topdown',
                 ann_file='coco/person_keypoints_train.json', data_prefix=dict(img=''),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=1, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='CocoDataset', data_root=data_root, data_mode='topdown',
                 ann_file='coco/person_keypoints_test.json', data_prefix=dict(img=''), test_mode=True,
                 pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'coco/person_keypoints_test.json')
test_evaluator = val_evaluator
