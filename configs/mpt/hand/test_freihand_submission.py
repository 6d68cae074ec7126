# The FreiHAND Codalab submission without the evaluation ground truth: test_freihand.py's model and data,
# writing pred.json ([xyz list, verts list], metres, evaluation order; lmb-freiburg/freihand pred.py's
# format) instead of scoring. With the released evaluation ground truth use test_freihand.py and
# `tools/test.py ... --freihand-pred pred.json` (scores and the file in one run).
#
# Paper (Table 6, Codalab-scored): PA-MPVPE 5.4 mm, PA-MPJPE 5.6 mm, F@5 mm 0.789, F@15 mm 0.988.
#
#   python tools/test.py configs/mpt/hand/test_freihand_submission.py CHECKPOINT \
#       --cfg-options test_evaluator.out_file=work_dirs/pred.json
_base_ = ['./test_freihand.py']

test_evaluator = dict(_delete_=True, type='FreiHANDPredDump', out_file='work_dirs/freihand_pred.json')
