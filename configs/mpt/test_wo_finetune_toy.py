# The image path of the embedded default (testing without fine-tuning, Sec. 3.2) on rendered toy images:
# the toy-pre-trained MPT head (configs/mpt/pretrain_toy.py) + a small HigherHRNet-style pose network
# (mmpose's HRNet at 1/4 width and depth + AEHigherResolutionNeck, random weights: there is no COCO-
# trained pose network on these machines) -> meshes -> MeshMetric.
#
#   python tools/make_toy_images.py data/toy/images --body-model-dir data/toy/body_models
#   python tools/test.py configs/mpt/test_wo_finetune_toy.py work_dirs/pretrain_toy/epoch_2.pth
#
# With random pose-network weights the pose maps carry no pose, so the meshes are poor (roughly the
# mean pose): that is what testing without fine-tuning gives without a trained 2D pose network, and what
# end-to-end fine-tuning fixes. pose_net_checkpoint=... loads a trained one.
_base_ = ['./pretrain_toy.py', './_base_/datasets/mesh_images.py']

data_root = 'data/toy/'
body_model_dir = data_root + 'body_models/'
toy_images = data_root + 'images/'          # OUT_DIR of tools/make_toy_images.py
h36m_regressor = body_model_dir + 'J_regressor_h36m_correct.npy'
mesh_sampling = body_model_dir + 'mesh_downsampling.npz'

# HRNet with w48's layout at 16 channels and one block per branch; 224 crop -> 56 x 56 features -> the
# neck's 112 x 112 maps = the toy head's heatmap size (no resize)
tiny_hrnet = dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1, ), num_channels=(16, )),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1), num_channels=(16, 32)),
    stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(1, 1, 1),
                num_channels=(16, 32, 64)),
    stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(1, 1, 1, 1),
                num_channels=(16, 32, 64, 128)))
model = dict(
    data_preprocessor=dict(
        _delete_=True,
        type='MeshImagePreprocessor',
        body_model=dict(model_path=body_model_dir + 'smpl', gender='neutral',
                        h36m_regressor=h36m_regressor),
        mesh_sampler=mesh_sampling,
        gendered_gt=False),
    backbone=dict(type='HRNet', in_channels=3, extra=tiny_hrnet),
    neck=dict(type='AEHigherResolutionNeck', in_channels=16, num_joints=17, tag_per_joint=True,
              extra=dict(final_conv_kernel=1), num_deconv_layers=1, num_deconv_filters=[16],
              num_deconv_kernels=[4], num_basic_blocks=1, cat_output=[True],
              with_ae_loss=[True, False], pose_maps='final'),
    pose_net_checkpoint=None,
    freeze_backbone=True,
)
load_partial = ['backbone.*', 'neck.*']

test_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='MeshImageDataset', ann_file=toy_images + 'tsv/test.yaml',
                 dataset_name='toy_test', test_mode=True,
                 pipeline={{_base_.image_test_pipeline}}))
test_evaluator = dict(type='MeshMetric', joint_set='lsp14')
val_dataloader = test_dataloader
val_evaluator = test_evaluator
