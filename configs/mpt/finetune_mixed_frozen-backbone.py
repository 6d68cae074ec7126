# Fine-tuning with the pose network frozen (Table 4 / Fig. 6 top row): finetune_mixed.py with the COCO
# HigherHRNet-w48 kept as released (no gradients, BN statistics as loaded); only the MPT head trains.
#
# Paper, Human3.6M P2 (MPJPE / PA-MPJPE, mm), Table 4 fine-tunes on Human3.6M only: frozen 78.1 / 53.5
# vs unfrozen 53.3 / 35.5; that run is finetune_h36m_frozen-backbone.py. No paper number for this
# mixture (compare with finetune_mixed.py's 45.3 / 31.7).
_base_ = ['./finetune_mixed.py']

model = dict(freeze_backbone=True)
