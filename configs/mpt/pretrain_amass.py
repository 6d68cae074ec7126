# MPT pre-training on AMASS (paper Sec. 3.1, 3.4, Appendix E): MoCap-generated heatmaps, no images.
#
#   python tools/prepare_amass.py data/amass data/amass_prepared --body-model-dir data/body_models \
#       --target-count 2000000
#   tools/dist_train.sh configs/mpt/pretrain_amass.py 16
#
# Batch: the paper does not state it; we use 32 per GPU, so 16 GPUs give 512 (base_batch_size of
# auto_scale_lr: with `--auto-scale-lr` the lr is scaled by total_batch / 512 on other GPU counts).
_base_ = ['./_base_/default_runtime.py']

# ------------------------------------------------------------------------------------------ paths
data_root = 'data/'
body_model_dir = data_root + 'body_models/'
mocap_root = data_root + 'amass_prepared/'          # OUT_DIR of tools/prepare_amass.py
h36m_regressor = body_model_dir + 'J_regressor_h36m_correct.npy'
mesh_sampling = body_model_dir + 'mesh_downsampling.npz'

# ------------------------------------------------------------------------------- paper settings
num_views = 4                      # Human3.6M S1 cameras (8 = with interpolated views, Table 9)
heatmap_size = (224, 224)          # Table 10: 224 vs 112
sigma = 3.0                        # Eq. 1
num_keypoints = 17                 # COCO-17 heatmaps
num_joint_queries = 14             # LSP-14 joints regressed by the joint queries (METRO)
num_vertices = (431, 1723, 6890)   # coarse mesh -> MLP upsampling (mesh sampler levels, coarse first)
input_mode = 'heatmap'             # 'coords' = the 2D-coordinate input ablation (Table 3a)
max_epochs = 10
batch_size = 32                    # per GPU
base_lr = 2e-4

# ------------------------------------------------------------------------------------- schedule
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=base_lr))
# Linear warm-up over the first 10 % of the iterations, then linear decay to 0 (Appendix E).
param_scheduler = [
    dict(type='ShortEpochLinearLR', start_factor=1e-3, end_factor=1.0, by_epoch=True, begin=0,
         end=max_epochs * 0.1, convert_to_iter_based=True),
    dict(type='ShortEpochLinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=max_epochs * 0.1,
         end=max_epochs, convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=False, base_batch_size=16 * batch_size)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='mpjpe',
                    rule='less'),
)

# ---------------------------------------------------------------------------------------- model
model = dict(
    type='MeshEstimator',
    data_preprocessor=dict(
        type='MoCapHeatmapPreprocessor',
        body_model=dict(model_path=body_model_dir + 'smpl', gender='neutral',
                        h36m_regressor=h36m_regressor),
        mesh_sampler=mesh_sampling,
        heatmap_size=heatmap_size,
        sigma=sigma,
        input_mode=input_mode),
    head=dict(
        type='MPTHead',
        in_channels=num_keypoints,
        input_size=heatmap_size,
        patch_size=8,
        num_joints=num_joint_queries,
        num_vertices=num_vertices,
        hidden_dims=(1024, 256, 64),
        num_layers=4,
        num_heads=4,
        mvm_ratio=0.3,
        input_mode=input_mode,
        # up-sampling layers start as the mesh sampler's barycentric U matrices (smooth meshes early)
        upsampling_init=mesh_sampling),
    loss=dict(type='MPTLoss'),   # L_V + L_J + L_J^reg + L_J^proj, weights 1/1/1/1 (Eq. 6)
    joint_regressor=h36m_regressor,
)

# ----------------------------------------------------------------------------------------- data
train_pipeline = [
    dict(type='RandomVirtualCamera', num_views=num_views, input_size=heatmap_size, random_view=True),
    dict(type='MaskedHeatmapModeling'),
    dict(type='PackMeshInputs'),
]
val_pipeline = [
    dict(type='RandomVirtualCamera', num_views=num_views, input_size=heatmap_size, random_view=False),
    dict(type='MaskedHeatmapModeling', enabled=False),
    dict(type='PackMeshInputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MoCapHeatmapDataset', data_root=mocap_root, split='train',
                 num_views=num_views, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    # held-out AMASS split (HumanEva, MPI_HDM05, SFU, MPI_mosh), a deterministic subset for speed
    dataset=dict(type='MoCapHeatmapDataset', data_root=mocap_root, split='val', num_views=num_views,
                 max_meshes=5000, test_mode=True, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='MeshMetric')
test_evaluator = val_evaluator
