# End-to-end fine-tuning on Human3.6M only (paper Table 2 rows 3 / 6): finetune_mixed.py with the
# Human3.6M training set as the only training data; evaluated on Human3.6M protocol 2.
#
# Paper, Human3.6M P2 (MPJPE / PA-MPJPE, mm): with MPT 53.3 / 35.5 (Table 2 row 6 = Table 3b "Pose
# FeatMaps" and Table 4 "Unfreeze"); without pre-training (finetune_h36m_no-pretrain.py) 59.1 / 39.2
# (Table 2 row 3; Table 3b's run of it: 58.7 / 39.7). The epochs of these runs are not stated: kept at
# the mixture's 80. Fig. 4a's 1-epoch fine-tuning: --cfg-options train_cfg.max_epochs=1.
#
#   tools/dist_train.sh configs/mpt/finetune_h36m.py 16
_base_ = ['./finetune_mixed.py']

data_root = 'data/'
train_dataloader = dict(
    _delete_=True,
    batch_size={{_base_.batch_size}},
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # METRO's Human3.6M training TSV (Pose2Mesh SMPL fits), see finetune_mixed.py's header
    dataset=dict(type='MeshImageDataset', ann_file=data_root + 'human3.6m/train.smpl.p1.yaml',
                 dataset_name='h36m_train', pipeline={{_base_.image_train_pipeline}}))
