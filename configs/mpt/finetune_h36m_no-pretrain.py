# Human3.6M-only fine-tuning without Mesh Pre-Training ("w/o MPT"): finetune_h36m.py with the MPT head
# trained from its initialisation instead of the pre-trained checkpoint (the pose network still starts
# from the COCO HigherHRNet-w48).
#
# Paper, Human3.6M P2 (MPJPE / PA-MPJPE, mm): 59.1 / 39.2 (Table 2 row 3); 58.7 / 39.7 (Table 3b,
# "Pose FeatMaps" without MPT). Fig. 4b's non-pre-trained curve: the *-data configs with
# --cfg-options load_from=None (e.g. 210.4 PA-MPJPE at 10 % of the data).
_base_ = ['./finetune_h36m.py']

load_from = None
