# HRNetV2-w18 hand heatmaps (mmpose 1.x, top-down, 21 FreiHAND-order keypoints): the hand variant's 2D
# pose network, in place of the body's HigherHRNet-w48 (paper Sec. 4; MPT does not name its hand 2D
# network, see ../shared/research/hand.md sec. 6 for the candidates).
#
# mmpose configs/hand_2d_keypoint/topdown_heatmap/onehand10k/td-hm_hrnetv2-w18_8xb64-210e_onehand10k-256x256.py
# (OneHand10K PCK@0.2 0.990 / AUC 0.567 / EPE 24.26). Released weights: download
#   https://download.openmmlab.com/mmpose/hand/hrnetv2/hrnetv2_w18_onehand10k_256x256-30bc9c6b_20210330.pth
# (or the RHD / COCO-WholeBody-Hand ones: hrnetv2_w18_rhd2d_256x256-95b20dd8_20210330.pth,
# hrnetv2_w18_coco_wholebody_hand_256x256-1c028db7_20210908.pth; same layout) and pass it as
# `model.pose_net_checkpoint`: its `backbone.*` go to the HRNet, its `head.*` to ConcatHeatmapHead (=
# mmpose's FeatureMapProcessor(concat=True) + HeatmapHead, same state-dict names), loaded strictly.
#
# Input: RGB, ImageNet mean / std (the config's data_preprocessor). A 224 crop gives 21 maps of 56 x 56
# (1/4 resolution); MeshEstimator resizes them to the head's pose_map_size.
pose_net_url = ('https://download.openmmlab.com/mmpose/hand/hrnetv2/'
                'hrnetv2_w18_onehand10k_256x256-30bc9c6b_20210330.pth')
pose_net_checkpoint = 'data/pose_nets/hrnetv2_w18_onehand10k_256x256-30bc9c6b_20210330.pth'
pose_net = dict(
    backbone=dict(
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(4, ),
                        num_channels=(64, )),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(4, 4),
                        num_channels=(18, 36)),
            stage3=dict(num_modules=4, num_branches=3, block='BASIC', num_blocks=(4, 4, 4),
                        num_channels=(18, 36, 72)),
            stage4=dict(num_modules=3, num_branches=4, block='BASIC', num_blocks=(4, 4, 4, 4),
                        num_channels=(18, 36, 72, 144), multiscale_output=True),
            upsample=dict(mode='bilinear', align_corners=False))),
    neck=dict(type='ConcatHeatmapHead', in_channels=270, out_channels=21, deconv_out_channels=None,
              conv_out_channels=(270, ), conv_kernel_sizes=(1, )),
)
