"""The whole image path through tools/test.py (testing without fine-tuning, Sec. 3.2) on rendered toy
images in the published formats: dataset → LoadMeshImage → MeshImageCrop → MeshImagePreprocessor →
pose network (HRNet + AEHigherResolutionNeck) → pre-trained MPT head → MeshMetric.

The reported errors are recomputed by hand from the dumped predictions and from the raw label files
(numpy, not the project's readers), so a wrong joint selection, root, unit or crop would show."""
import json
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, cfg_options_args

CONFIG = osp.join(REPO, 'configs', 'mpt', 'test_wo_finetune_toy.py')
PRETRAIN = osp.join(REPO, 'configs', 'mpt', 'pretrain_toy.py')
TINY_HEAD = {'model.head.hidden_dims': (32, 16, 8), 'model.head.num_layers': 1,
             'model.head.num_heads': 2}
NUM_IMAGES = 6
# METRO's H36M_J17_TO_J14 and J24_TO_J14, written out (not imported) for the by-hand check
H36M_TO_LSP = [3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10]
J24_TO_LSP = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18]


@pytest.fixture(scope='module')
def toy_images(toy_data_root):
    from mmpose_mpt.datasets import make_toy_images
    out = osp.join(toy_data_root, 'images')
    make_toy_images(out, osp.join(toy_data_root, 'body_models'), splits={'test': NUM_IMAGES},
                    formats=('tsv', 'spin'))
    return out


def _paths(root: str) -> dict:
    """The toy config's body-model / regressor / sampling paths under ``root`` (the quickstart's)."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import quickstart
    return {k: v for k, v in quickstart.image_overrides(root).items() if k.startswith('model.')}


@pytest.fixture(scope='module')
def pretrained_head(toy_data_root, tmp_path_factory):
    """A checkpoint of the pre-training model (MoCap preprocessor, no pose network), as
    tools/train.py configs/mpt/pretrain_toy.py writes it."""
    import mmpose_mpt  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS
    init_default_scope('mmpose')
    cfg = Config.fromfile(PRETRAIN)
    opts = dict(_paths(toy_data_root), **TINY_HEAD)
    opts['model.data_preprocessor.body_model.model_path'] = osp.join(toy_data_root, 'body_models',
                                                                     'smpl')
    cfg.merge_from_dict(opts)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        model.head.coord_out.weight.normal_(std=0.05)   # a non-trivial mesh, not the ~0 init
    path = str(tmp_path_factory.mktemp('ckpt') / 'pretrain_toy.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 2}}, path)
    return path


def _run_test(config, ckpt, options, work_dir, extra=()):
    cmd = [sys.executable, osp.join(REPO, 'tools', 'test.py'), config, ckpt, '--work-dir', work_dir,
           *extra, '--cfg-options', *cfg_options_args(options)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def _tsv_labels(yaml_path: str) -> list:
    """The label rows of a METRO TSV split read with plain json (not the project's reader)."""
    folder = osp.dirname(yaml_path)
    name = osp.basename(yaml_path)[:-len('.yaml')]
    rows = []
    with open(osp.join(folder, f'{name}.label.tsv')) as f:
        for line in f:
            rows.append(json.loads(line.rstrip('\n').split('\t')[1])[0])
    return rows


@pytest.mark.slow
def test_wo_finetune_toy_through_tools_test(toy_data_root, toy_images, pretrained_head, tmp_path):
    opts = dict(_paths(toy_data_root), **TINY_HEAD)
    opts['test_dataloader.dataset.ann_file'] = osp.join(toy_images, 'tsv', 'test.yaml')
    opts['test_dataloader.num_workers'] = 0
    dump = str(tmp_path / 'preds.pkl')
    proc = _run_test(CONFIG, pretrained_head, opts, str(tmp_path / 'tsv'),
                     ['--out', str(tmp_path / 'm.json'), '--dump', dump])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the pre-trained checkpoint has no pose network: an intended partial load, logged as one
    log = proc.stdout + proc.stderr
    assert 'partial load of' in log and "load_partial=['backbone.*', 'neck.*']" in log
    metrics = json.load(open(tmp_path / 'm.json'))
    assert set(metrics) >= {'mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe'}
    assert f'mpjpe: {NUM_IMAGES}/{NUM_IMAGES}' in log and f'mpve: {NUM_IMAGES}/{NUM_IMAGES}' in log

    # by hand: predictions from the dump, ground truth from the raw TSV labels
    with open(dump, 'rb') as f:
        samples = pickle.load(f)
    labels = _tsv_labels(osp.join(toy_images, 'tsv', 'test.yaml'))
    assert len(samples) == len(labels) == NUM_IMAGES
    errs, verrs = [], []
    for s in samples:
        idx = s['sample_idx']
        j24 = np.asarray(labels[idx]['3d_joints'], np.float64)[0]          # (24, 4) camera frame
        gt = j24[J24_TO_LSP, :3] - j24[14, :3]                             # minus the J24 pelvis
        pred17 = np.asarray(s['pred_instances']['keypoints_3d'], np.float64)[0]
        assert pred17.shape == (17, 3)
        pred = pred17[H36M_TO_LSP]
        gt = gt - (gt[2] + gt[3]) / 2                                      # METRO: mid-hip
        pred = pred - (pred[2] + pred[3]) / 2
        errs.append(np.linalg.norm(pred - gt, axis=1).mean())
        # the metric's ground truth is exactly the label (no crop rotation at test time)
        np.testing.assert_allclose(s['gt_instances']['keypoints_3d'][0],
                                   j24[J24_TO_LSP, :3] - j24[14, :3], atol=1e-5)
        pv = np.asarray(s['pred_instances']['vertices'], np.float64)[0]
        gv = np.asarray(s['gt_instances']['vertices'], np.float64)[0]
        root = np.asarray(s['pred_instances']['vertex_root'], np.float64)[0]
        np.testing.assert_allclose(root, pred17[0], atol=1e-6)            # its own H36M pelvis
        verrs.append(np.linalg.norm((pv - root) - gv, axis=1).mean())
    assert metrics['mpjpe'] == pytest.approx(1000 * np.mean(errs), rel=1e-4)
    assert metrics['mpve'] == pytest.approx(1000 * np.mean(verrs), rel=1e-4)

    # the same images as a SPIN npz: the same numbers (the format does not change the sample)
    opts['test_dataloader.dataset.ann_file'] = osp.join(toy_images, 'spin', 'test.npz')
    opts['test_dataloader.dataset.data_prefix.img'] = toy_images
    proc = _run_test(CONFIG, pretrained_head, opts, str(tmp_path / 'spin'),
                     ['--out', str(tmp_path / 'm2.json')])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    spin = json.load(open(tmp_path / 'm2.json'))
    for k in ('mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe'):
        assert spin[k] == pytest.approx(metrics[k], rel=1e-3), k


@pytest.mark.slow
def test_wo_finetune_toy_refuses_a_checkpoint_of_another_head(toy_data_root, toy_images,
                                                               pretrained_head, tmp_path):
    """load_partial covers the pose network only: a head that does not fit is still an error."""
    opts = dict(_paths(toy_data_root), **TINY_HEAD)
    opts['model.head.hidden_dims'] = (32, 16, 4)            # another head than the checkpoint's
    opts['test_dataloader.dataset.ann_file'] = osp.join(toy_images, 'tsv', 'test.yaml')
    proc = _run_test(CONFIG, pretrained_head, opts, str(tmp_path / 'bad'))
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert 'Traceback' not in proc.stderr and 'does not fit the model' in err[-1]


def test_visualize_pose_feature_maps(toy_data_root, toy_images, pretrained_head, tmp_path, capsys):
    """tools/visualize_pose_feature_maps.py: one row (crop | mesh | 17 maps) per checkpoint."""
    import cv2
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import visualize_pose_feature_maps as vis
    opts = dict(_paths(toy_data_root), **TINY_HEAD)
    opts['test_dataloader.dataset.ann_file'] = osp.join(toy_images, 'tsv', 'test.yaml')
    out = str(tmp_path / 'maps.png')
    args = [CONFIG, pretrained_head, pretrained_head, '--index', '1', '--out', out, '--cfg-options',
            *cfg_options_args(opts)]
    assert vis.main(args) == 0
    img = cv2.imread(out)
    assert img.shape == (2 * 224, 2 * 224 + 9 * 112, 3)
    assert np.array_equal(img[:224], img[224:])            # the same checkpoint twice: equal rows
    assert 'wrote' in capsys.readouterr().out
