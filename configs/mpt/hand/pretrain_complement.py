# MPT hand pre-training on Complement (paper Sec. 4 "Applying to 3D Hand Reconstruction", Table 6):
# the body pre-training (../pretrain_amass.py) with MANO in place of SMPL: 21 hand joints (FreiHAND
# order) -> 21 heatmaps (224 x 224, sigma 3 as the body), 21 joint queries + 195 coarse-vertex queries
# up-sampled to the 778 MANO vertices, the paper's widths (1024 / 256 / 64, 4 layers x 4 heads per
# block), MHM and MVM as the body. Only body model, joints, vertices and data differ.
#
# Paper, FreiHAND after fine-tuning (finetune_freihand.py, test_freihand.py): PA-MPVPE 5.4 mm,
# PA-MPJPE 5.6 mm, F@5 mm 0.789, F@15 mm 0.988.
#
#   # Complement (SeanChenxy/HandMesh complement_data.md) unpacked under data/complement/ (any depth:
#   # */model_mano/<num>.obj), MANO_RIGHT.pkl under data/body_models/mano/, METRO's
#   # mano_downsampling.npz (microsoft/MeshTransformer metro/modeling/data/) as data/body_models/
#   tools/dist_train.sh configs/mpt/hand/pretrain_complement.py 8
#
# Alternative source: MANO fits (npz of pose / betas) seen by virtual cameras around the hand,
#   train_dataloader.dataset=dict(type='ManoParamDataset', ann_file=..., mano_model_path=...,
#                                 num_views=8, random_view=True, pipeline=train_pipeline)
_base_ = ['../pretrain_amass.py']

data_root = 'data/'
body_model_dir = data_root + 'body_models/'
mano_model = body_model_dir + 'mano'
complement_root = data_root + 'complement/'
mesh_sampling = body_model_dir + 'mano_downsampling.npz'   # METRO's (778 -> 195) or tools/make_mesh_sampling.py
# FreiHAND's fingertip vertices (its training_xyz.json convention, ../shared/research/hand.md sec. 7)
fingertip_vertex_ids = (744, 320, 443, 555, 672)

num_keypoints = 21
num_joint_queries = 21
num_vertices = (195, 778)
heatmap_size = {{_base_.heatmap_size}}
hand_model = dict(model_path=mano_model, fingertip_vertex_ids=fingertip_vertex_ids)

default_hooks = dict(checkpoint=dict(save_best='pa_mpjpe', rule='less'))

model = dict(
    type='HandMeshEstimator',
    hand_model=hand_model,
    joint_regressor=None,
    data_preprocessor=dict(_delete_=True, type='HandHeatmapPreprocessor', mesh_sampler=mesh_sampling,
                           heatmap_size=heatmap_size, sigma={{_base_.sigma}}),
    # hand crops: the 2D-joint box padded by 1.5 spans ~0.27 m of a ~0.18 m hand over the 2 units of the
    # normalised crop, so the weak-perspective scale starts near 2 / 0.27
    head=dict(in_channels=num_keypoints, num_joints=num_joint_queries, num_vertices=num_vertices,
              init_camera_scale=7.0, upsampling_init=mesh_sampling),
)

# METRO's hand augmentation (rotation N(0, 90 deg) for 40 % of the samples, scale N(1, 0.25)) on the crop
train_pipeline = [
    dict(type='HandCrop', input_size=heatmap_size, padding=1.5, rot_std=90.0, rot_prob=0.4, scale_std=0.25),
    dict(type='MaskedHeatmapModeling'),
    dict(type='PackMeshInputs'),
]
val_pipeline = [
    dict(type='HandCrop', input_size=heatmap_size, padding=1.5, test_mode=True),
    dict(type='MaskedHeatmapModeling', enabled=False),
    dict(type='PackMeshInputs'),
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='ComplementDataset', data_root=complement_root, mano_model_path=mano_model,
                 fingertip_vertex_ids=fingertip_vertex_ids, split='train', cache_dir=data_root + 'cache/',
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='ComplementDataset', data_root=complement_root, mano_model_path=mano_model,
                 fingertip_vertex_ids=fingertip_vertex_ids, split='val', max_meshes=5000,
                 cache_dir=data_root + 'cache/', test_mode=True, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='MeshMetric', joint_set='mano21', protocol='freihand', f_score_thresholds=(5, 15))
test_evaluator = val_evaluator
