# Table 4's run: Human3.6M-only fine-tuning (finetune_h36m.py) with the pose network frozen (the COCO
# HigherHRNet-w48 as released: no gradients, BN statistics as loaded); only the MPT head trains.
#
# Paper, Human3.6M P2 (MPJPE / PA-MPJPE, mm): frozen 78.1 / 53.5; unfrozen (finetune_h36m.py)
# 53.3 / 35.5 (Table 4).
_base_ = ['./finetune_h36m.py']

model = dict(freeze_backbone=True)
