# The paper's pre-training with DeepSpeed (Appendix E: "faster and more stable training"), through
# MMEngine's FlexibleRunner. Needs `pip install deepspeed` (not part of the default environment);
# tools/train.py says so clearly when it is missing.
#
#   tools/dist_train.sh configs/mpt/pretrain_amass_deepspeed.py 16
_base_ = ['./pretrain_amass.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    # bf16 mixed precision (V100s in the paper used fp16; bf16 needs Ampere or newer).
    bf16=dict(enabled=True),
    inputs_to_half=None,  # heatmaps are rendered on the device in fp32; autocast handles the rest
    zero_optimization=dict(stage=2, allgather_partitions=True, reduce_scatter=True,
                           allgather_bucket_size=5e8, reduce_bucket_size=5e8, overlap_comm=True,
                           contiguous_gradients=True),
    gradient_clipping=1.0,
)
optim_wrapper = dict(type='DeepSpeedOptimWrapper', optimizer=dict(type='Adam', lr={{_base_.base_lr}}))
