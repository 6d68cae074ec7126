# HigherHRNet-w48 (COCO bottom-up, mmpose 0.x), MPT's main 2D pose network (Sec. 3.2, 3.3).
#
# Released weights (mmpose 0.x model zoo, COCO val AP 0.686): download
#   https://download.openmmlab.com/mmpose/bottom_up/higher_hrnet48_coco_512x512-60fedcbc_20200712.pth
# and pass the file as `model.pose_net_checkpoint` (its `backbone.*` go to the HRNet, its
# `keypoint_head.*` to AEHigherResolutionNeck; loaded strictly). Usage in a config:
#
#   _base_ = ['../_base_/default_runtime.py', '../_base_/pose_nets/higherhrnet_w48.py']
#   model = dict(type='MeshEstimator', backbone=pose_net['backbone'], neck=pose_net['neck'],
#                pose_net_checkpoint=pose_net_checkpoint, ...)
#
# Input: RGB, ImageNet mean / std (as METRO). For a 224 x 224 crop the neck returns the 17 COCO maps
# at 112 x 112 (1/2 resolution); MeshEstimator resizes them to the head's pose_map_size.
pose_net_url = ('https://download.openmmlab.com/mmpose/bottom_up/'
                'higher_hrnet48_coco_512x512-60fedcbc_20200712.pth')
pose_net_checkpoint = 'data/pose_nets/higher_hrnet48_coco_512x512-60fedcbc_20200712.pth'
pose_net = dict(
    # open-mmlab/mmpose@0.x configs/body/2d_kpt_sview_rgb_img/associative_embedding/coco/
    # higherhrnet_w48_coco_512x512.py; 0.x and 1.x HRNet share state-dict names and shapes
    backbone=dict(
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(4, ),
                        num_channels=(64, )),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(4, 4),
                        num_channels=(48, 96)),
            stage3=dict(num_modules=4, num_branches=3, block='BASIC', num_blocks=(4, 4, 4),
                        num_channels=(48, 96, 192)),
            stage4=dict(num_modules=3, num_branches=4, block='BASIC', num_blocks=(4, 4, 4, 4),
                        num_channels=(48, 96, 192, 384)))),
    # the 0.x AEHigherResolutionHead without post-processing (no tags / grouping / NMS)
    neck=dict(
        type='AEHigherResolutionNeck',
        in_channels=48,
        num_joints=17,
        tag_per_joint=True,
        extra=dict(final_conv_kernel=1),
        num_deconv_layers=1,
        num_deconv_filters=[48],
        num_deconv_kernels=[4],
        num_basic_blocks=4,
        cat_output=[True],
        with_ae_loss=[True, False],
        pose_maps='final'),   # 'average': mean with the resized 1/4-resolution heatmaps (0.x test)
)
