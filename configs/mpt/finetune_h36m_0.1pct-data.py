# Fig. 4b: Human3.6M-only fine-tuning (finetune_h36m.py) on 0.1 % of its training set.
#
# The subset is deterministic: MeshImageDataset's sample_fraction keeps round(0.001 N) samples evenly
# spaced over the file (every subject, action and camera of the video set; the same samples in every
# run, with or without pre-training). The paper does not say how it chose its subsets.
#
# Paper, Human3.6M P2 PA-MPJPE (mm; Sec. 4.3 gives two points, the others are only plotted): the
# pre-trained model with 0.1 % of the data 56.1, the non-pre-trained one (--cfg-options load_from=None)
# 210.4 with 10 %.
_base_ = ['./finetune_h36m.py']

train_dataloader = dict(dataset=dict(sample_fraction=0.001))
