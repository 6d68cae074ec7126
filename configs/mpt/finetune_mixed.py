# End-to-end fine-tuning of MPT on the mixture of 2D and 3D datasets (paper Sec. 3.3, 4.1, Appendix E):
# the graph of testing without fine-tuning (test_wo_finetune_h36m.py: COCO HigherHRNet-w48 -> 17 pose
# feature maps -> the pre-trained MPT head) with the pose network unfrozen, trained on METRO /
# MeshGraphormer's mixture of Human3.6M, MuCo-3DHP, UP-3D, COCO and MPII, evaluated on Human3.6M
# protocol 2 after every epoch (the best checkpoint by PA-MPJPE is kept, as METRO keeps it).
#
# Paper, Human3.6M P2 (MPJPE / PA-MPJPE, mm): 45.3 / 31.7 (Table 1; Table 2 row 7 "MPT, mixed
# datasets"; Table 10 at 224 x 224). Without pre-training (finetune_mixed_no-pretrain.py): 46.6 / 32.4.
#
#   # METRO's TSVs (microsoft/MeshTransformer docs/DOWNLOAD.md) under data/; the pre-trained MPT
#   # (configs/mpt/pretrain_amass.py) and the COCO HigherHRNet-w48 (_base_/pose_nets/higherhrnet_w48.py)
#   tools/dist_train.sh configs/mpt/finetune_mixed.py 16
#
# Initialisation: the pose network from `model.pose_net_checkpoint` (the released COCO weights, loaded
# when the model is built and again after mmengine's init_weights), the MPT head from `load_from` (the
# pre-training checkpoint, read after init_weights; it has no pose network, hence
# load_partial=['backbone.*', 'neck.*']: those keys keep the released weights, every other key must
# fit). `--resume` reads this run's own checkpoints (the whole model, optimizer, schedulers, sampler
# position, RNG states); load_from is not used then.
#
# Loss: the pre-training loss (Sec. 3.3, L_V + L_J + L_J^reg + L_J^proj, weights 1), each term over the
# samples that have its ground truth (MeshImagePreprocessor's masks: MPII's 2D-only samples train
# L_J^proj alone, samples without SMPL no L_V).
#
# Data. Every source is one MeshImageDataset in mmpose's CombinedDataset, every batch composed by
# source_ratio (ResumableMultiSourceSampler = mmpose's MultiSourceSampler + exact resume). METRO reads
# the composite Tax-H36m-coco40k-Muco-UP-Mpii/train.yaml, a concatenation shuffled as one set, so each
# source's expected share of a batch is its share of the samples; the ratios below are those shares,
# rounded to whole samples of a 32-sample batch with at least one per source (MultiSourceSampler gives
# a source int(32 r / sum(r)) samples, 0 for a share < 1/32). Source sizes (approximate, not verified
# here; each dataset logs "N of M samples kept" at start, set the ratios from yours): Human3.6M ~312k
# (METRO's tsv_demo_h36m: 305,476 SMPL fits), MuCo-3DHP ~200k, COCO ~40k ("coco40k"), MPII ~15k,
# UP-3D ~7k: shares 54 / 35 / 7 / 3 / 1 % -> 17 / 11 / 2 / 1 / 1 of 32 in that order (MPII and UP-3D
# up-weighted by the rounding). An epoch is len(all sources) / world size samples: one pass over the
# mixture, as METRO's. METRO's exact sampling instead: train_dataloader.sampler=dict(type=
# 'DefaultSampler', shuffle=True) and train_dataloader.dataset=dict(type='MeshImageDataset', ann_file=
# data_root + 'Tax-H36m-coco40k-Muco-UP-Mpii/train.yaml', pipeline=image_train_pipeline).
#
# Files: MuCo, UP-3D and MPII are X.img.tsv with their X.label / hw / linelist.tsv siblings. Human3.6M's
# and COCO's labels lie in smpl/, so they are read through a split yaml (paths relative to it):
#   human3.6m/train.smpl.p1.yaml:  img: train.img.tsv, hw: train.hw.tsv,
#       label: smpl/train.label.smpl.p1.tsv, linelist: smpl/train.linelist.smpl.p1.tsv
#   coco_smpl/train.yaml:  img: train.img.tsv, hw: train.hw.tsv,
#       label: smpl/train.label.tsv, linelist: smpl/train.linelist.tsv
# (METRO's code reads human3.6m/train.smpl.p1.yaml; write either file with those lines if yours lacks
# it.)
_base_ = ['./test_wo_finetune_h36m.py']

data_root = 'data/'
max_epochs = 80                    # Appendix E
batch_size = 32                    # per GPU, as pre-training (not stated; 16 GPUs in the paper)

# the pre-trained MPT (configs/mpt/pretrain_amass.py's last epoch): the head's initialisation
load_from = 'work_dirs/pretrain_amass/epoch_10.pth'
model = dict(freeze_backbone=False)    # end to end: pose network and head (Sec. 3.3)

# ------------------------------------------------------------------------------------- schedule
# Adam 2e-4 (inherited); linear warm-up over the first 10 % of the iterations, then linear decay to 0
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='ShortEpochLinearLR', start_factor=1e-3, end_factor=1.0, by_epoch=True, begin=0,
         end=max_epochs * 0.1, convert_to_iter_based=True),
    dict(type='ShortEpochLinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=max_epochs * 0.1, end=max_epochs, convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(save_best='pa_mpjpe', rule='less'))

# ----------------------------------------------------------------------------------------- data
train_dataloader = dict(
    _delete_=True,
    batch_size=batch_size,
    num_workers=8,
    persistent_workers=True,
    # Human3.6M, MuCo-3DHP, UP-3D, COCO, MPII: 17 / 11 / 1 / 2 / 1 of every 32 samples (see the header);
    # batch_size must be the dataloader's
    sampler=dict(type='ResumableMultiSourceSampler', batch_size=batch_size,
                 source_ratio=[17, 11, 1, 2, 1], shuffle=True),
    dataset=dict(
        type='CombinedDataset',
        metainfo=dict(from_file='{{ fileDirname }}/_base_/datasets/j24_info.py'),
        # the sources give raw samples (pipeline=[]); the combined pipeline crops and augments them
        datasets=[
            dict(type='MeshImageDataset', ann_file=data_root + 'human3.6m/train.smpl.p1.yaml',
                 dataset_name='h36m_train', pipeline=[]),
            dict(type='MeshImageDataset', ann_file=data_root + 'muco/train.img.tsv',
                 dataset_name='muco_train', pipeline=[]),
            dict(type='MeshImageDataset', ann_file=data_root + 'up3d/trainval.img.tsv',
                 dataset_name='up3d_trainval', pipeline=[]),
            dict(type='MeshImageDataset', ann_file=data_root + 'coco_smpl/train.yaml',
                 dataset_name='coco_train', pipeline=[]),
            dict(type='MeshImageDataset', ann_file=data_root + 'mpii/train.img.tsv',
                 dataset_name='mpii_train', pipeline=[]),
        ],
        pipeline={{_base_.image_train_pipeline}}))
# validation / test: Human3.6M protocol 2 as test_wo_finetune_h36m.py (MPJPE / PA-MPJPE on LSP-14)
