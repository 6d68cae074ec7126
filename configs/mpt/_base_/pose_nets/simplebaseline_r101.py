# SimpleBaseline ResNet-101 (COCO top-down heatmaps, mmpose 1.x), MPT's second 2D pose network.
#
# Released weights (mmpose 1.x model zoo, td-hm_res101_8xb64-210e_coco-256x192, COCO val AP 0.728):
# download
#   https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/td-hm_res101_8xb64-210e_coco-256x192-065d3625_20220926.pth
# and pass the file as `model.pose_net_checkpoint` (its `backbone.*` go to the ResNet, its `head.*` to
# the HeatmapHead used as MeshEstimator's neck, never to the MPT head; loaded strictly). The 0.x file
# top_down/resnet/res101_coco_256x192-6e6babf0_20200708.pth (`keypoint_head.*`) loads as well.
#
#   _base_ = ['../_base_/default_runtime.py', '../_base_/pose_nets/simplebaseline_r101.py']
#   model = dict(type='MeshEstimator', backbone=pose_net['backbone'], neck=pose_net['neck'],
#                pose_net_checkpoint=pose_net_checkpoint, ...)
#
# Input: RGB, ImageNet mean / std. For a 224 x 224 crop the neck returns the 17 COCO maps at 56 x 56
# (1/4 resolution); MeshEstimator resizes them to the head's pose_map_size.
pose_net_url = ('https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/'
                'td-hm_res101_8xb64-210e_coco-256x192-065d3625_20220926.pth')
pose_net_checkpoint = 'data/pose_nets/td-hm_res101_8xb64-210e_coco-256x192-065d3625_20220926.pth'
pose_net = dict(
    # open-mmlab/mmpose configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_res101_8xb64-210e_coco-256x192.py
    backbone=dict(type='ResNet', depth=101),
    # mmpose's own HeatmapHead (3 deconvs 256, 1x1 final conv) as the neck; only its forward is used
    neck=dict(type='HeatmapHead', in_channels=2048, out_channels=17),
)
