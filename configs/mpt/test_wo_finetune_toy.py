# The image path of the embedded default (testing without fine-tuning, Sec. 3.2) on rendered toy images:
# the toy-pre-trained MPT head (configs/mpt/pretrain_toy.py) behind the toy 2D pose network
# (configs/mpt/pose_net_toy.py: mmpose's top-down HRNet + HeatmapHead at toy size, trained by mmpose on
# the toy images' 2D labels, the stand-in for the paper's COCO-trained network) -> meshes -> MeshMetric.
#
#   python tools/make_toy_images.py data/toy/images --body-model-dir data/toy/body_models
#   python tools/train.py configs/mpt/pose_net_toy.py
#   python tools/test.py configs/mpt/test_wo_finetune_toy.py work_dirs/pretrain_toy/epoch_4.pth \
#       --cfg-options model.pose_net_checkpoint=work_dirs/pose_net_toy/epoch_20.pth
#
# The pose network's checkpoint is an ordinary mmpose 1.x file (`backbone.*`, `head.*`) loaded strictly
# through `model.pose_net_checkpoint`, as the released HigherHRNet / SimpleBaseline files are; None leaves
# random weights (pose maps without pose: roughly the mean mesh). The paper's configs use HigherHRNet and
# its higher-resolution neck (test_wo_finetune_h36m.py); the toy uses mmpose's standard top-down head,
# which mmpose can train here.
_base_ = ['./pretrain_toy.py', './_base_/datasets/mesh_images.py', './_base_/pose_nets/toy_hrnet.py']

data_root = 'data/toy/'
body_model_dir = data_root + 'body_models/'
toy_images = data_root + 'images/'          # OUT_DIR of tools/make_toy_images.py
h36m_regressor = body_model_dir + 'J_regressor_h36m_correct.npy'
mesh_sampling = body_model_dir + 'mesh_downsampling.npz'
image_size = {{_base_.toy_crop_size}}       # the crops the pose network was trained on (160 x 160)

model = dict(
    data_preprocessor=dict(
        _delete_=True,
        type='MeshImagePreprocessor',
        body_model=dict(model_path=body_model_dir + 'smpl', gender='neutral',
                        h36m_regressor=h36m_regressor),
        mesh_sampler=mesh_sampling,
        gendered_gt=False),
    # exactly the network pose_net_toy.py trains (its state dict loads strictly); its 1/4-resolution
    # maps (40 x 40) are resized to the head's input size
    backbone={{_base_.toy_pose_net.backbone}},
    neck={{_base_.toy_pose_net.head}},
    pose_net_checkpoint=None,
    freeze_backbone=True,
)
load_partial = ['backbone.*', 'neck.*']

image_train_pipeline = [
    dict(type='LoadMeshImage'),
    dict(type='MeshImageCrop', input_size=image_size, augment=True),
    dict(type='PackMeshInputs'),
]
image_test_pipeline = [
    dict(type='LoadMeshImage'),
    dict(type='MeshImageCrop', input_size=image_size, augment=False),
    dict(type='PackMeshInputs'),
]
test_dataloader = dict(
    _delete_=True,
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(type='MeshImageDataset', ann_file=toy_images + 'tsv/test.yaml',
                 dataset_name='toy_test', test_mode=True, pipeline=image_test_pipeline))
test_evaluator = dict(type='MeshMetric', joint_set='lsp14')
val_dataloader = test_dataloader
val_evaluator = test_evaluator
