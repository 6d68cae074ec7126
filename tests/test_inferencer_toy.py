"""Shared toy data of the inference tests (no tests here): toy body models, 4 rendered toy images with
known cameras and a checkpoint of the toy image model, made once per test session under pytest's base
temporary directory (make_toy_images reuses a complete set)."""
import os.path as osp

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def toy_cfg(root: str):
    """configs/mpt/test_wo_finetune_toy.py pointed at the toy body models under ``root``."""
    from mmengine.config import Config
    bm = osp.join(root, 'body_models')
    h36m = osp.join(bm, 'J_regressor_h36m_correct.npy')
    cfg = Config.fromfile(osp.join(REPO, 'configs/mpt/test_wo_finetune_toy.py'))
    cfg.merge_from_dict({
        'model.data_preprocessor.body_model.model_path': osp.join(bm, 'smpl'),
        'model.data_preprocessor.body_model.h36m_regressor': h36m,
        'model.data_preprocessor.mesh_sampler': osp.join(bm, 'mesh_downsampling.npz'),
        'model.head.upsampling_init': osp.join(bm, 'mesh_downsampling.npz'),
        'model.joint_regressor': h36m})
    return cfg


def inference_toy(tmp_path_factory) -> dict:
    """dict(root, cfg (Config), cfg_file, ckpt, ann (SPIN annotations), scenes, images (paths), images_dir)."""
    import mmpose_mpt  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS

    from mmpose_mpt.body_models import make_toy_body_models
    from mmpose_mpt.datasets import make_toy_images
    from mmpose_mpt.datasets.formats import read_spin_npz
    root = str(tmp_path_factory.getbasetemp() / 'inference_toy')
    if not osp.isfile(osp.join(root, 'body_models', 'mesh_downsampling.npz')):
        make_toy_body_models(root)
    made = make_toy_images(osp.join(root, 'images'), osp.join(root, 'body_models'), splits={'test': 4},
                           formats=('spin', ))['splits']['test']
    cfg = toy_cfg(root)
    cfg_file = osp.join(root, 'toy_image_model.py')
    ckpt = osp.join(root, 'toy_model.pth')
    if not osp.isfile(ckpt):
        cfg.dump(cfg_file)
        init_default_scope('mmpose')
        torch.manual_seed(0)
        torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {}}, ckpt)
    scenes = dict(np.load(made['scenes']))
    return dict(root=root, cfg=cfg, cfg_file=cfg_file, ckpt=ckpt, ann=read_spin_npz(made['spin']),
                scenes=scenes, images_dir=made['images'],
                images=[osp.join(root, 'images', str(n)) for n in scenes['img_name']])
