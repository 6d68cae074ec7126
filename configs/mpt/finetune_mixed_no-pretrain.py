# Mixed-dataset fine-tuning without Mesh Pre-Training ("w/o MPT"): finetune_mixed.py with the MPT head
# trained from its initialisation instead of the pre-trained checkpoint (the pose network still starts
# from the COCO HigherHRNet-w48).
#
# Paper, Human3.6M P2 (MPJPE / PA-MPJPE, mm): 46.6 / 32.4 (Table 2 row 4; Table 8 "HigherHRNet").
_base_ = ['./finetune_mixed.py']

load_from = None
