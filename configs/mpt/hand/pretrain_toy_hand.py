# The hand pre-training on the toy hand (the embedded default's hand counterpart): pretrain_complement.py
# on generated toy-MANO hands written in Complement's release layout, sized for a few minutes on 2 CPU
# cores. Same code path; only paths, width / depth, heatmap size and schedule are smaller.
#
#   python tools/make_toy_body_model.py data/toy
#   python tools/make_toy_hands.py data/toy/hands --body-model-dir data/toy/body_models
#   python tools/train.py configs/mpt/hand/pretrain_toy_hand.py
_base_ = ['./pretrain_complement.py']

data_root = 'data/toy/'
body_model_dir = data_root + 'body_models/'
mano_model = body_model_dir + 'mano'
hands_root = data_root + 'hands/'
# the toy MANO with METRO's 195-vertex selection (tools/make_toy_hands.py writes it)
mesh_sampling = body_model_dir + 'mano_downsampling_metro.npz'
fingertip_vertex_ids = (744, 320, 443, 554, 671)   # the toy hand's tips (MANO's smplx ids)
hand_model = dict(model_path=mano_model, fingertip_vertex_ids=fingertip_vertex_ids)

heatmap_size = (112, 112)
max_epochs = 6
batch_size = 16

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='ShortEpochLinearLR', start_factor=1e-3, end_factor=1.0, by_epoch=True, begin=0,
         end=max_epochs * 0.1, convert_to_iter_based=True),
    dict(type='ShortEpochLinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True, begin=max_epochs * 0.1,
         end=max_epochs, convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=batch_size)
default_hooks = dict(logger=dict(interval=25), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)

model = dict(
    hand_model=hand_model,
    data_preprocessor=dict(mesh_sampler=mesh_sampling, heatmap_size=heatmap_size),
    # as pretrain_toy.py: small widths, no dropout (CPU attention)
    head=dict(input_size=heatmap_size, hidden_dims=(96, 48, 24), num_layers=2, num_heads=(2, 2, 1), dropout=0.0,
              upsampling_init=mesh_sampling),
)
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
    batch_size=batch_size, num_workers=1, persistent_workers=False,
    dataset=dict(data_root=hands_root + 'complement/', mano_model_path=mano_model,
                 fingertip_vertex_ids=fingertip_vertex_ids, split='all', cache_dir=None, pipeline=train_pipeline))
# held-out toy hands (another seed), not a slice of the training meshes
val_dataloader = dict(
    batch_size=50, num_workers=1, persistent_workers=False,
    dataset=dict(data_root=hands_root + 'complement_val/', mano_model_path=mano_model,
                 fingertip_vertex_ids=fingertip_vertex_ids, split='all', max_meshes=None, cache_dir=None,
                 pipeline=val_pipeline))
test_dataloader = val_dataloader
