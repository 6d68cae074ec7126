# End-to-end fine-tuning of the embedded default (Sec. 3.3 on rendered toy images): the toy-pre-trained
# MPT head (load_from, configs/mpt/pretrain_toy.py) + the toy 2D pose network (model.pose_net_checkpoint,
# configs/mpt/pose_net_toy.py), trained together on the toy images' train split (METRO TSV, METRO / SPIN
# augmentation) with the pre-training losses, evaluated on the held-out test split. The head's settings
# are the toy pre-training's (no MVM, no dropout).
#
#   python tools/train.py configs/mpt/finetune_toy.py \
#       --cfg-options load_from=work_dirs/pretrain_toy/epoch_4.pth \
#       model.pose_net_checkpoint=work_dirs/pose_net_toy/epoch_20.pth
_base_ = ['./test_wo_finetune_toy.py']

max_epochs = 6
batch_size = 16
model = dict(freeze_backbone=False)
# the pre-trained head from load_from (which holds no pose network); the pose network from
# model.pose_net_checkpoint
load_partial = ['backbone.*', 'neck.*']

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=5e-4))
param_scheduler = [
    dict(type='ShortEpochLinearLR', start_factor=1e-3, end_factor=1.0, by_epoch=True, begin=0,
         end=max_epochs * 0.1, convert_to_iter_based=True),
    dict(type='ShortEpochLinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=max_epochs * 0.1, end=max_epochs, convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))

train_dataloader = dict(
    _delete_=True,
    batch_size=batch_size,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MeshImageDataset', ann_file='data/toy/images/tsv/train.yaml',
                 dataset_name='toy_train', pipeline={{_base_.image_train_pipeline}}))
