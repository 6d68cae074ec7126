# The embedded default's 2D pose network: mmpose's top-down heatmap network (HRNet + HeatmapHead, as in
# mmpose's configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py) at
# toy size: HRNet with w48's layout at 16 channels and one block per branch (0.7 M parameters). Trained
# by configs/mpt/pose_net_toy.py; used as MeshEstimator's backbone + neck by the toy image configs.
toy_crop_size = (160, 160)        # (w, h): a multiple of 32 (HRNet's four branches)
# mmpose's heatmap codec for training it: 1/4-resolution maps. sigma 1.5 (mmpose's COCO configs: 2)
# makes its maps as wide as the pre-training heatmaps they replace: MSRA's exp(-d^2 / (2 s^2)) at 40 px
# resized to the toy head's 56 px equals MPT's exp(-d^2 / sigma^2), sigma = 3 px, for
# s = 3 / (sqrt(2) * 56 / 40) = 1.5
toy_codec = dict(type='MSRAHeatmap', input_size=(160, 160), heatmap_size=(40, 40), sigma=1.5)
toy_pose_net = dict(
    backbone=dict(
        type='HRNet',
        in_channels=3,
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1, ),
                        num_channels=(16, )),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1),
                        num_channels=(16, 32)),
            stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(1, 1, 1),
                        num_channels=(16, 32, 64)),
            stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(1, 1, 1, 1),
                        num_channels=(16, 32, 64, 128)))),
    # mmpose's HeatmapHead: a 1 x 1 conv on HRNet's highest-resolution branch, 17 COCO maps
    head=dict(type='HeatmapHead', in_channels=16, out_channels=17, deconv_out_channels=None),
)
