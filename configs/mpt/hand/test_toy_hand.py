# The official FreiHAND evaluation (test_freihand.py's metric) of a toy hand model on the toy
# FreiHAND-format evaluation set.
#
#   python tools/test.py configs/mpt/hand/test_toy_hand.py work_dirs/finetune_toy_hand/epoch_4.pth \
#       --freihand-pred work_dirs/toy_pred.json
_base_ = ['./finetune_toy_hand.py']

test_evaluator = dict(type='MeshMetric', joint_set='mano21', protocol='freihand', f_score_thresholds=(5, 15))
val_evaluator = test_evaluator
