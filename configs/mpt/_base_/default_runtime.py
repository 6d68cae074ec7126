# Runtime settings shared by every MPT config; follows mmpose 1.x's configs/_base_/default_runtime.py.
default_scope = 'mmpose'
custom_imports = dict(imports=['mmpose_mpt'], allow_failed_imports=False)

# hooks
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

# custom hooks
custom_hooks = [
    # Synchronize model buffers such as running_mean and running_var in BN at the end of each epoch.
    dict(type='SyncBuffersHook'),
    # Stop at the first NaN/inf loss, naming the iteration and the batch's sources.
    dict(type='NonFiniteLossHook'),
    # Checkpoints loadable with torch.load(weights_only=True); RNG states so --resume continues exactly.
    dict(type='ResumableCheckpointHook'),
    # A checkpoint (load_from, --resume, tools/test.py) that does not fit the model is an error.
    dict(type='StrictCheckpointHook'),
]

# multi-processing backend; tools/train.py switches nccl to gloo when no GPU is visible.
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

# visualizer: mmengine's own (mmpose's PoseLocalVisualizer module imports torchvision through
# mmpose.visualization.simcc_vis, which has no CPU build).
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')

# logger
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True, num_digits=6)
log_level = 'INFO'
load_from = None
resume = False
# False: load_from / --resume / tools/test.py's checkpoint must fit the model exactly. True, or a list
# of fnmatch key patterns (e.g. ['backbone.*']): an intended partial load; what is not loaded is logged.
load_partial = False

# file I/O backend
backend_args = dict(backend='local')

# training/validation/testing progress
train_cfg = dict(by_epoch=True)
val_cfg = dict()
test_cfg = dict()
