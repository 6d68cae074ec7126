# Hand fine-tuning on the toy FreiHAND-format set (finetune_freihand.py's path on rendered toy hands):
# the toy-pre-trained hand head (pretrain_toy_hand.py, via load_from) + a small HRNetV2-style hand pose
# network (random weights: no hand 2D network on these machines), trained end to end on the toy
# training images (4 versions), evaluated with the official FreiHAND protocol on the toy evaluation set.
#
#   python tools/make_toy_hands.py data/toy/hands --body-model-dir data/toy/body_models
#   python tools/train.py configs/mpt/hand/finetune_toy_hand.py \
#       --cfg-options load_from=work_dirs/pretrain_toy_hand/epoch_6.pth
_base_ = ['./finetune_freihand.py']

data_root = 'data/toy/'
body_model_dir = data_root + 'body_models/'
mano_model = body_model_dir + 'mano'
freihand_root = data_root + 'hands/freihand/'
mesh_sampling = body_model_dir + 'mano_downsampling_metro.npz'
fingertip_vertex_ids = (744, 320, 443, 554, 671)
hand_model = dict(model_path=mano_model, fingertip_vertex_ids=fingertip_vertex_ids)
heatmap_size = (112, 112)
num_train = 48                      # toy images of version v are id + 48 v (FreiHAND: 32560)
max_epochs = 4
batch_size = 16

# HRNetV2 layout at 8 / 16 / 32 / 64 channels, one block per branch; concatenation = 120 channels
tiny_hrnetv2 = dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1, ), num_channels=(16, )),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1), num_channels=(8, 16)),
    stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(1, 1, 1), num_channels=(8, 16, 32)),
    stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(1, 1, 1, 1),
                num_channels=(8, 16, 32, 64), multiscale_output=True),
    upsample=dict(mode='bilinear', align_corners=False))
model = dict(
    hand_model=hand_model,
    data_preprocessor=dict(mesh_sampler=mesh_sampling),
    backbone=dict(type='HRNet', in_channels=3, extra=tiny_hrnetv2),
    neck=dict(type='ConcatHeatmapHead', in_channels=120, out_channels=21, deconv_out_channels=None,
              conv_out_channels=(120, ), conv_kernel_sizes=(1, )),
    pose_net_checkpoint=None,
    head=dict(input_size=heatmap_size, hidden_dims=(96, 48, 24), num_layers=2, num_heads=(2, 2, 1), dropout=0.0,
              upsampling_init=mesh_sampling),
)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[max_epochs // 2], gamma=0.1)]
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None))
randomness = dict(seed=0)
train_dataloader = dict(
    batch_size=batch_size, num_workers=1, persistent_workers=False,
    dataset=dict(data_root=freihand_root, version_stride=num_train, cache_dir=None))
val_dataloader = dict(
    batch_size=16, num_workers=1, persistent_workers=False,
    dataset=dict(data_root=freihand_root, cache_dir=None))
test_dataloader = val_dataloader
