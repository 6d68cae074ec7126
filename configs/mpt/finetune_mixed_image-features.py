# Image feature maps instead of pose feature maps as the transformer's input (Table 3b, "as discussed
# in Mesh Graphormer"): finetune_mixed.py without the pose head (AEHigherResolutionNeck).
# The MPT head reads HigherHRNet-w48's backbone features, the 48 channels of its 1/4-resolution branch
# (56 x 56 for a 224 crop) from which the released network computes its heatmaps, instead of the 17
# pose feature maps.
#
# Patch embedding: 2 x 2 patches of the 56 x 56 features give the same 28 x 28 = 784 tokens, each
# covering the same 8 x 8 pixels of the crop, as the 8 x 8 patches of the 224 x 224 pose maps (tokens
# of 2 * 2 * 48 = 192 values instead of 8 * 8 * 17 = 1088); the global feature pools the 48 channels.
# Only the input changes; the rest of the model is the same. The backbone starts from the COCO
# HigherHRNet-w48 (pose_net_checkpoint; its head's tensors are left out). The MPT head starts from its
# initialisation (load_from=None): the pre-trained head reads 17 heatmaps, its input layers cannot
# take these features, and the paper's image-feature row is without MPT. To start the rest of the
# transformer from the pre-trained one anyway:
#   --cfg-options load_from=work_dirs/pretrain_amass/epoch_10.pth \
#       "load_partial=['backbone.*','head.input_embed.*','head.global_embed.*']"
#
# Paper, Human3.6M P2 (MPJPE / PA-MPJPE, mm), Table 3b, fine-tuned on Human3.6M only: image features
# 78.0 / 47.0, pose feature maps 58.7 / 39.7 (both without MPT), 53.3 / 35.5 (pose maps, with MPT).
# That run is finetune_h36m_image-features.py; no paper number for this mixture.
_base_ = ['./finetune_mixed.py']

load_from = None
model = dict(
    neck=None,              # no pose head: the backbone's features are the transformer's input
    head=dict(in_channels=48, input_size=(56, 56), patch_size=2),
)
