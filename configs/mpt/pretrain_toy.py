# The embedded default: the paper's pre-training recipe on the generated toy body model and toy motion,
# sized to finish in a few minutes on 2 CPU cores (README's `make quickstart` runs it). Same code path
# as pretrain_amass.py; only data paths, model width/depth, resolution and schedule are smaller.
#
#   python tools/make_toy_body_model.py data/toy
#   python tools/make_toy_mocap.py data/toy/amass
#   python tools/prepare_amass.py data/toy/amass data/toy/mocap --body-model-dir data/toy/body_models \
#       --stride-seconds 0.2 --neutral-only
#   python tools/train.py configs/mpt/pretrain_toy.py
_base_ = ['./pretrain_amass.py']

data_root = 'data/toy/'
body_model_dir = data_root + 'body_models/'
mocap_root = data_root + 'mocap/'
h36m_regressor = body_model_dir + 'J_regressor_h36m_correct.npy'
mesh_sampling = body_model_dir + 'mesh_downsampling.npz'

# Sized by measurement (sweeps on the quickstart's toy data, held-out MPJPE, 1 thread per run): at 56 x 56
# the 7 x 7 patch tokens make a step several times cheaper than at 112 x 112, and here more optimizer
# steps beat more resolution, depth or batch: 112 px, 2 layers, 300 iterations x 16: 101.6 mm; 56 px,
# 1 layer, 600 x 16: 86.3 mm, 1500 x 8: 66.5 mm, 1200 x 16: 64.8 mm; with MVM off (below) 1200 x 8:
# 61.3 mm, 2400 x 4: 57.3 mm (27 % more time; hidden 128 / 64 / 32: 54.5 mm, 18 % more again).
# README "The embedded default" has the final run.
heatmap_size = (56, 56)
max_epochs = 4
batch_size = 4

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# fused Adam: one kernel over the 12.6 M up-sampling weights instead of a loop of small ones
optim_wrapper = dict(optimizer=dict(lr=1e-3, fused=True))
param_scheduler = [
    dict(type='ShortEpochLinearLR', start_factor=1e-3, end_factor=1.0, by_epoch=True, begin=0,
         end=max_epochs * 0.1, convert_to_iter_based=True),
    dict(type='ShortEpochLinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=max_epochs * 0.1,
         end=max_epochs, convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(interval=1, max_keep_ckpts=1))
randomness = dict(seed=0)

model = dict(
    data_preprocessor=dict(
        body_model=dict(model_path=body_model_dir + 'smpl', gender='neutral',
                        h36m_regressor=h36m_regressor),
        mesh_sampler=mesh_sampling,
        heatmap_size=heatmap_size),
    # 2 / 2 / 1 heads: PyTorch's CPU attention kernel is slow at head sizes < 24. No dropout: a few
    # thousand iterations do not over-fit, and attention dropout makes the CPU attention fall back from
    # the fused kernel to explicit matmuls + a dropout mask (~10x slower). Vertex queries smoothed over
    # the coarse mesh: with i.i.d. query codes a short schedule leaves per-vertex noise on the meshes.
    # Masked Vertex Modeling off for the same reason as dropout: 2400 steps do not over-fit (train and
    # held-out errors stay within 7 mm) and at this length masking 30 % of the queries costs 14 mm
    # held-out (75.9 -> 61.3 mm at 1200 x 8). The AMASS configs keep METRO's 0.3.
    head=dict(input_size=heatmap_size, hidden_dims=(96, 48, 24), num_layers=1, num_heads=(2, 2, 1),
              dropout=0.0, mvm_ratio=0.0, upsampling_init=mesh_sampling, smooth_vertex_queries=10),
    joint_regressor=h36m_regressor,
)
train_pipeline = [
    dict(type='RandomVirtualCamera', num_views={{_base_.num_views}}, input_size=heatmap_size,
         random_view=True),
    # the paper's 2-pixel joint jitter is at 224 x 224: the same fraction of the crop at 56 x 56
    dict(type='MaskedHeatmapModeling', jitter_std=0.5),
    dict(type='PackMeshInputs'),
]
val_pipeline = [
    dict(type='RandomVirtualCamera', num_views={{_base_.num_views}}, input_size=heatmap_size,
         random_view=False),
    dict(type='MaskedHeatmapModeling', enabled=False),
    dict(type='PackMeshInputs'),
]
train_dataloader = dict(batch_size=batch_size, num_workers=1, persistent_workers=False,
                        dataset=dict(data_root=mocap_root, pipeline=train_pipeline))
val_dataloader = dict(batch_size=64, num_workers=1, persistent_workers=False,
                      dataset=dict(data_root=mocap_root, max_meshes=100, pipeline=val_pipeline))
test_dataloader = val_dataloader
