# Pose feature maps at 112 x 112 instead of 224 x 224 (Table 10 / Appendix D): finetune_mixed.py whose
# MPT head reads 112 x 112 maps (14 x 14 patches of 8 x 8), initialised from the head pre-trained at
# that resolution (configs/mpt/pretrain_amass_112px.py). The crop stays 224 x 224: for it HigherHRNet
# returns its pose maps at exactly 112 x 112 (1/2 resolution), so they are no longer resized.
#
# Paper, Human3.6M P2 (MPJPE / PA-MPJPE, mm): 112 x 112 46.5 / 32.7; 224 x 224 45.3 / 31.7 (Table 10).
_base_ = ['./finetune_mixed.py']

heatmap_size = (112, 112)
load_from = 'work_dirs/pretrain_amass_112px/epoch_10.pth'
model = dict(head=dict(input_size=heatmap_size))
