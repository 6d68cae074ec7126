# MPT hand fine-tuning on FreiHAND (paper Sec. 4, Table 6): the Complement-pre-trained head
# (pretrain_complement.py, via load_from) behind mmpose's HRNetV2-w18 hand heatmap network (released
# weights via pose_net_checkpoint), trained end to end on the FreiHAND training set (4 image versions,
# 130,240 images) with the pre-training losses and METRO's hand augmentation.
#
# Paper (FreiHAND evaluation set, Procrustes-aligned as the official scorer): PA-MPVPE 5.4 mm,
# PA-MPJPE 5.6 mm, F@5 mm 0.789, F@15 mm 0.988.
#
#   # FreiHAND v2 (training + evaluation with its released ground truth) unpacked in data/freihand/
#   tools/dist_train.sh configs/mpt/hand/finetune_freihand.py 8 \
#       --cfg-options load_from=work_dirs/pretrain_complement/best_pa_mpjpe_epoch_N.pth
#   python tools/test.py configs/mpt/hand/test_freihand.py work_dirs/finetune_freihand/best_....pth \
#       --freihand-pred work_dirs/pred.json      # Codalab submission file
_base_ = ['./pretrain_complement.py', './_base_/hrnetv2_w18_hand.py']

freihand_root = 'data/freihand/'
image_size = (224, 224)
max_epochs = 200                    # METRO's hand schedule (Adam 1e-4, x0.1 at epoch 100)
batch_size = 32

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[max_epochs // 2], gamma=0.1)]

model = dict(
    data_preprocessor=dict(_delete_=True, type='HandImagePreprocessor', mesh_sampler={{_base_.mesh_sampling}}),
    backbone={{_base_.pose_net.backbone}},
    neck={{_base_.pose_net.neck}},
    pose_net_checkpoint={{_base_.pose_net_checkpoint}},
    freeze_backbone=False,
)
# the pre-trained checkpoint has no pose network: those keys keep the released weights
load_partial = ['backbone.*', 'neck.*']

# FreiHAND crops: the whole 224 image around the annotated joints (the box from the 2D joints, padded 1.5)
image_train_pipeline = [
    dict(type='LoadMeshImage'),
    dict(type='HandCrop', input_size=image_size, padding=1.5, use_dataset_box=True, rot_std=90.0, rot_prob=0.4,
         scale_std=0.25, color_noise=0.4),
    dict(type='PackMeshInputs'),
]
image_test_pipeline = [
    dict(type='LoadMeshImage'),
    dict(type='HandCrop', input_size=image_size, padding=1.5, use_dataset_box=True, test_mode=True),
    dict(type='PackMeshInputs'),
]
train_dataloader = dict(
    _delete_=True, batch_size=batch_size, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='FreiHANDDataset', data_root=freihand_root, split='training', bbox_mode='joints',
                 bbox_padding=1.5, cache_dir=freihand_root + 'cache/', pipeline=image_train_pipeline))
val_dataloader = dict(
    _delete_=True, batch_size=64, num_workers=4, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='FreiHANDDataset', data_root=freihand_root, split='evaluation', bbox_mode='joints',
                 bbox_padding=1.5, cache_dir=freihand_root + 'cache/', test_mode=True,
                 pipeline=image_test_pipeline))
test_dataloader = val_dataloader
