# SimpleBaseline ResNet-101 as the 2D pose network instead of HigherHRNet-w48 (Table 8):
# finetune_mixed.py with the pose network of _base_/pose_nets/simplebaseline_r101.py (COCO top-down
# heatmaps, mmpose 1.x; 17 maps at 56 x 56 for a 224 crop, resized to the head's 224 x 224).
#
# Paper, Human3.6M P2 (MPJPE / PA-MPJPE, mm), Table 8 compares the pose networks *without* pre-training:
# SimpleBaseline 45.8 / 32.8 vs HigherHRNet 46.6 / 32.4 (finetune_mixed_no-pretrain.py). That run is
# this config with --cfg-options load_from=None; as it is, it starts from the pre-trained MPT head.
#
# The pose-network settings repeat _base_/pose_nets/simplebaseline_r101.py: mmengine refuses the same
# key in two bases, and finetune_mixed.py's bases already hold HigherHRNet's (the tests check that they
# are equal).
_base_ = ['./finetune_mixed.py']

pose_net_url = ('https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/'
                'td-hm_res101_8xb64-210e_coco-256x192-065d3625_20220926.pth')
pose_net_checkpoint = 'data/pose_nets/td-hm_res101_8xb64-210e_coco-256x192-065d3625_20220926.pth'
pose_net = dict(
    _delete_=True,     # not merged into finetune_mixed.py's HigherHRNet settings
    backbone=dict(type='ResNet', depth=101),
    neck=dict(type='HeatmapHead', in_channels=2048, out_channels=17),
)
model = dict(
    backbone=dict(pose_net['backbone'], _delete_=True),
    neck=dict(pose_net['neck'], _delete_=True),
    pose_net_checkpoint=pose_net_checkpoint,
)
