# Testing without fine-tuning on the 3DPW test set (paper Sec. 3.2): pre-trained MPT head + frozen COCO
# HigherHRNet-w48, no fine-tuning.
#
#   # METRO's set: data/3dpw/test_has_gender.yaml (docs/DOWNLOAD.md); or SPIN's 3dpw_test.npz /
#   # mmhuman3d's pw3d_test.npz with data_prefix.img = the 3DPW image root
#   python tools/test.py configs/mpt/test_wo_finetune_3dpw.py work_dirs/pretrain_amass/epoch_10.pth
#
# MPVE over the 6890 vertices, MPJPE and PA-MPJPE on LSP-14. Ground truth, METRO's protocol (the
# default, which MPT's code base uses): meshes of the *neutral* SMPL with the labelled pose / shape,
# centred on their own Human3.6M pelvis, joints = the label's J24 3D joints. `gendered_gt=True` gives
# the SPIN / mmhuman3d convention instead (ground-truth mesh of the subject's gendered SMPL, joints
# regressed from it: the preprocessor's joints_from_mesh then defaults to 'always'): those numbers are
# not comparable with METRO's. SPIN's 3dpw_test.npz / mmhuman3d's pw3d_test.npz carry SMPL only; their
# joints come from the ground-truth mesh either way.
_base_ = ['./test_wo_finetune_h36m.py']

gendered_gt = False
model = dict(data_preprocessor=dict(gendered_gt=gendered_gt))
test_dataloader = dict(
    dataset=dict(ann_file='data/3dpw/test_has_gender.yaml', dataset_name='3dpw_test'))
val_dataloader = test_dataloader
