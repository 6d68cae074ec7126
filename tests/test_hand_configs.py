"""Hand configs (issue 14): each builds and runs a couple of iterations on generated toy files in the real
layouts; tools/test.py --freihand-pred writes the Codalab pred.json (re-read and re-scored); the released
HRNetV2-w18 hand checkpoint layout loads through the pose_net_checkpoint loader."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from test_hand_data import write_toy_mano

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
HAND = osp.join(REPO, 'configs', 'mpt', 'hand')
PAPER = ('5.4', '5.6', '0.789', '0.988')


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    from mmpose_mpt.datasets.toy_hands import make_toy_hands
    root = str(tmp_path_factory.mktemp('toyhand'))
    bm = osp.join(root, 'body_models')
    write_toy_mano(bm)
    make_toy_hands(osp.join(root, 'hands'), bm, num_complement=16, num_complement_val=4, num_freihand=4,
                   num_freihand_eval=4, seed=0)
    return root


def _replace(obj, mapping):
    if isinstance(obj, str):
        for a, b in mapping.items():
            if obj.startswith(a):
                return b + obj[len(a):]
        return obj
    if isinstance(obj, dict):
        return {k: _replace(v, mapping) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_replace(v, mapping) for v in obj)
    return obj


def toy_cfg(name: str, toy: str, work_dir: str, **extra) -> Config:
    cfg = Config.fromfile(osp.join(HAND, f'{name}.py'))
    d = _replace(cfg.to_dict(), {'data/toy/': toy + '/'})
    d.update(work_dir=work_dir, train_cfg=dict(d['train_cfg'], max_epochs=1, val_interval=1))
    d['model']['head'].update(hidden_dims=(16, 16, 8), num_layers=1, num_heads=2)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        d[key].update(batch_size=4, num_workers=0, persistent_workers=False)
    d['default_hooks']['logger']['interval'] = 1
    d['default_hooks']['checkpoint'].update(save_best=None, interval=1)
    d.update(extra)
    return Config(d)


def _run(cfg: Config, max_iters: int = 2):
    from mmengine.runner import Runner
    import mmpose_mpt  # noqa: F401
    ds = cfg.train_dataloader.dataset
    if ds.type == 'FreiHANDDataset':
        ds.indices = 4 * max_iters
    else:   # 4 samples per iteration (batch 4), ManoParamDataset: num_views items per mesh
        ds.max_meshes = 4 * max_iters // ds.get('num_views', 1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_configs_inherit_and_carry_the_papers_numbers():
    body = Config.fromfile(osp.join(REPO, 'configs', 'mpt', 'pretrain_amass.py'))
    pre = Config.fromfile(osp.join(HAND, 'pretrain_complement.py'))
    assert pre.model.head.hidden_dims == body.model.head.hidden_dims == (1024, 256, 64)
    assert (pre.model.head.num_layers, pre.model.head.num_heads) == (4, 4)
    assert pre.model.head.num_joints == 21 and pre.model.head.in_channels == 21
    assert tuple(pre.model.head.num_vertices) == (195, 778)
    assert pre.model.data_preprocessor.heatmap_size == (224, 224) and pre.model.data_preprocessor.sigma == 3.0
    assert pre.train_dataloader.dataset.type == 'ComplementDataset'
    assert pre.optim_wrapper == body.optim_wrapper and pre.param_scheduler == body.param_scheduler
    test = Config.fromfile(osp.join(HAND, 'test_freihand.py'))
    assert test.test_evaluator == dict(type='MeshMetric', joint_set='mano21', protocol='freihand',
                                       f_score_thresholds=(5, 15))
    assert test.model.backbone.extra.stage4.num_channels == (18, 36, 72, 144)
    assert test.model.neck.type == 'ConcatHeatmapHead' and test.model.neck.in_channels == 270
    sub = Config.fromfile(osp.join(HAND, 'test_freihand_submission.py'))
    assert sub.test_evaluator.type == 'FreiHANDPredDump' and sub.model == test.model
    for name in ('pretrain_complement', 'finetune_freihand', 'test_freihand', 'test_freihand_submission'):
        text = open(osp.join(HAND, f'{name}.py')).read().split('_base_')[0]
        assert all(n in text for n in PAPER), name


def test_pretrain_toy_hand_runs_and_validates(toy, tmp_path):
    runner = _run(toy_cfg('pretrain_toy_hand', toy, str(tmp_path)))
    metrics = runner.val_loop.run()
    assert {'pa_mpjpe', 'pa_mpvpe', 'f@5mm', 'f@15mm'} <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())


def test_mano_param_source_runs_in_the_pretraining(toy, tmp_path):
    cfg = toy_cfg('pretrain_toy_hand', toy, str(tmp_path))
    cfg.train_dataloader.dataset = dict(type='ManoParamDataset', ann_file=toy + '/hands/mano_params_train.npz',
                                        mano_model_path=toy + '/body_models/mano', num_views=4, random_view=True,
                                        fingertip_vertex_ids=(744, 320, 443, 554, 671),
                                        pipeline=cfg.train_pipeline)
    runner = _run(cfg)
    assert runner.iter == 2 and len(runner.train_dataloader.dataset) == 8


@pytest.mark.slow
def test_finetune_and_test_toy_hand_with_pred_json(toy, tmp_path):
    work = str(tmp_path / 'ft')
    cfg = toy_cfg('finetune_toy_hand', toy, work)
    cfg.train_dataloader.dataset.version_stride = 4     # the fixture's 4 training samples
    _run(cfg)
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    cfg = toy_cfg('test_toy_hand', toy, str(tmp_path / 'test'))
    cfg_file = str(tmp_path / 'test_toy_hand_here.py')
    cfg.dump(cfg_file)
    pred, out = str(tmp_path / 'pred.json'), str(tmp_path / 'metrics.json')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    r = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'test.py'), cfg_file, ckpt, '--freihand-pred', pred,
                        '--out', out], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    body = json.load(open(pred))
    assert isinstance(body, list) and len(body) == 2 and len(body[0]) == len(body[1]) == 4
    assert np.asarray(body[0]).shape == (4, 21, 3) and np.asarray(body[1]).shape == (4, 778, 3)
    # re-scored against the evaluation ground truth by eval.py's procedure: the metric's numbers
    from mmpose_mpt.evaluation.functional.freihand import evaluate_freihand
    fh = osp.join(toy, 'hands', 'freihand')
    gt_xyz = np.asarray(json.load(open(osp.join(fh, 'evaluation_xyz.json'))))
    gt_verts = np.asarray(json.load(open(osp.join(fh, 'evaluation_verts.json'))))
    scores = evaluate_freihand(gt_xyz - gt_xyz[:, :1], gt_verts - gt_xyz[:, :1], body[0], body[1])
    metrics = json.load(open(out))
    assert metrics['pa_mpjpe'] == pytest.approx(scores['xyz_al_mean3d'] * 10, rel=1e-4)
    assert metrics['pa_mpvpe'] == pytest.approx(scores['mesh_al_mean3d'] * 10, rel=1e-4)
    # F-scores count vertices under a threshold: pred.json's micrometre rounding may move a few of the
    # 4 x 778 across it (a vertex of 4 samples weighs ~3e-4)
    assert metrics['f@5mm'] == pytest.approx(scores['f_al_score_5'], abs=2e-3)
    assert metrics['f@15mm'] == pytest.approx(scores['f_al_score_15'], abs=2e-3)


def test_released_hrnetv2_hand_checkpoint_loads_and_matches_mmpose(tmp_path):
    """A state dict in the released mmpose 1.x layout (TopdownPoseEstimator: backbone.*, head.*; meta with
    numpy arrays) loads strictly through pose_net_checkpoint and gives mmpose's own heatmaps."""
    import mmpose_mpt  # noqa: F401
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    base = Config.fromfile(osp.join(HAND, '_base_', 'hrnetv2_w18_hand.py'))
    torch.manual_seed(0)
    ref = MODELS.build(dict(
        type='TopdownPoseEstimator', backbone=base.pose_net.backbone,
        neck=dict(type='FeatureMapProcessor', concat=True),
        head=dict(type='HeatmapHead', in_channels=270, out_channels=21, deconv_out_channels=None,
                  conv_out_channels=(270, ), conv_kernel_sizes=(1, ),
                  decoder=dict(type='MSRAHeatmap', input_size=(256, 256), heatmap_size=(64, 64), sigma=2)))).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    ckpt = str(tmp_path / 'hrnetv2_w18_onehand10k_256x256-30bc9c6b_20210330.pth')
    torch.save(dict(state_dict=ref.state_dict(), meta=dict(dataset_meta=dict(sigmas=np.ones(21)))), ckpt)
    from mmpose_mpt.models.estimators.pose_net_checkpoint import load_pose_net_checkpoint
    backbone, neck = MODELS.build(base.pose_net.backbone), MODELS.build(base.pose_net.neck)
    backbone.eval(), neck.eval()    # (mmpose's HRNet.train returns None: no chaining)
    load_pose_net_checkpoint(backbone, neck, ckpt, use_head=True)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        want = ref.head.forward(ref.neck(ref.backbone(x)))
        got = neck(backbone(x))
    assert got.shape == (1, 21, 32, 32)
    torch.testing.assert_close(got, want)
    # a wrong layout is one clear error naming the file
    sd = dict(ref.state_dict())
    sd.pop('head.final_layer.bias')
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=sd), bad)
    with pytest.raises(Exception, match='bad.pth'):
        load_pose_net_checkpoint(backbone, neck, bad, use_head=True)


def test_freihand_pred_dump_writes_the_codalab_structure(tmp_path):
    from mmpose_mpt.evaluation import FreiHANDPredDump
    m = FreiHANDPredDump(out_file=str(tmp_path / 'p.json'))
    rng = np.random.default_rng(0)
    preds = {i: (rng.normal(size=(1, 21, 3)), rng.normal(size=(1, 778, 3))) for i in range(3)}
    m.process(None, [dict(id=i, pred_instances=dict(keypoints_3d=preds[i][0], vertices=preds[i][1]))
                     for i in (2, 0, 1)])
    assert m.evaluate(3) == {}
    body = json.load(open(tmp_path / 'p.json'))
    for i in range(3):   # evaluation order, metres, micrometre rounding
        np.testing.assert_allclose(body[0][i], preds[i][0][0], atol=1e-6)
        np.testing.assert_allclose(body[1][i], preds[i][1][0], atol=1e-6)
