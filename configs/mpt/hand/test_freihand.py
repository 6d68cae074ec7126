# Evaluation on the FreiHAND evaluation set exactly as the official scorer (lmb-freiburg/freihand eval.py):
# per-sample similarity alignment (scipy orthogonal_procrustes, reflections admitted), joints and
# vertices aligned separately, F-scores on vertices (strict <) at 5 / 15 mm, AUCs.
#
# Paper (Table 6): PA-MPVPE 5.4 mm, PA-MPJPE 5.6 mm, F@5 mm 0.789, F@15 mm 0.988
# (= eval.py's mesh_al_mean3d, xyz_al_mean3d, f_al_score_5, f_al_score_15).
#
#   python tools/test.py configs/mpt/hand/test_freihand.py CHECKPOINT [--freihand-pred pred.json]
# --freihand-pred writes the Codalab submission ([xyz list, verts list], metres, evaluation order).
# Without the released evaluation ground truth (evaluation_xyz / _verts.json): test_freihand_submission.py.
_base_ = ['./finetune_freihand.py']

test_evaluator = dict(type='MeshMetric', joint_set='mano21', protocol='freihand', f_score_thresholds=(5, 15))
val_evaluator = test_evaluator
