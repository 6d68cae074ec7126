"""Real training runs on generated toy data: DDP through the launcher, kill + resume, the quickstart."""
import glob
import json
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import REPO, TINY_OPTIONS, cfg_options_args

CONFIG = osp.join(REPO, 'configs', 'mpt', 'pretrain_toy.py')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1', PORT=str(_free_port()))
    env.pop('CUDA_VISIBLE_DEVICES', None)
    return env


def _losses(work_dir: str) -> dict:
    """iteration -> loss from mmengine's scalars.json of every run in work_dir (later runs win)."""
    out = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec and 'iter' in rec:
                    out[rec['iter']] = rec['loss']
    return out


@pytest.mark.slow
def test_two_process_ddp_through_the_launcher(toy_data_root, quickstart_module, tmp_path):
    work_dir = str(tmp_path / 'ddp')
    opts = dict(quickstart_module.toy_overrides(toy_data_root), **TINY_OPTIONS,
                **{'train_cfg.max_epochs': 1})
    cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), CONFIG, '2', '--work-dir', work_dir,
           '--cfg-options', *cfg_options_args(opts)]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()
    assert 'Distributed training: True' in log
    # 8 meshes x 4 views = 32 items, split over 2 ranks of batch 4 -> 4 iterations per epoch.
    assert 'Epoch(train) [1][4/4]' in log
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert 'mpjpe' in log  # validation ran with MeshMetric


@pytest.mark.slow
def test_kill_and_resume_continues_the_same_trajectory(toy_data_root, quickstart_module, tmp_path):
    opts = dict(quickstart_module.toy_overrides(toy_data_root), **TINY_OPTIONS,
                **{'train_cfg.max_epochs': 2})
    args = ['--no-validate', '--cfg-options', *cfg_options_args(opts)]
    train = [sys.executable, osp.join(REPO, 'tools', 'train.py'), CONFIG]
    full_dir, killed_dir = str(tmp_path / 'full'), str(tmp_path / 'killed')

    subprocess.run(train + ['--work-dir', full_dir] + args, cwd=REPO, env=_env(), check=True,
                   capture_output=True, timeout=600)
    full = _losses(full_dir)
    assert sorted(full) == list(range(1, 17))  # 8 meshes x 4 views / batch 4 = 8 iters x 2 epochs

    # Same run, killed (SIGKILL, no clean-up) once epoch 1 is checkpointed and epoch 2 has started.
    proc = subprocess.Popen(train + ['--work-dir', killed_dir] + args, cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if osp.isfile(osp.join(killed_dir, 'epoch_1.pth')) and max(_losses(killed_dir), default=0) > 9:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
    assert not osp.isfile(osp.join(killed_dir, 'epoch_2.pth'))

    proc = subprocess.run(train + ['--work-dir', killed_dir, '--resume'] + args, cwd=REPO, env=_env(),
                          check=True, capture_output=True, text=True, timeout=600)
    resumed = _losses(killed_dir)
    assert osp.isfile(osp.join(killed_dir, 'epoch_2.pth'))
    # same process count, same threads, same data order and RNG states: bit-identical losses
    for it in range(9, 17):  # epoch 2, recomputed after the resume
        assert resumed[it] == full[it], (it, resumed[it], full[it])
    # the resume found the same dataset: no (false) "metainfo is different" warning to learn to ignore
    assert 'Resumed from' in proc.stdout + proc.stderr or 'resumed' in (proc.stdout + proc.stderr).lower()
    assert 'dataset metainfo from the resumed checkpoint is different' not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_quickstart_pretraining_smoke(toy_data_root, quickstart_module, tmp_path):
    """The quickstart's train -> evaluate -> render path on a tiny model; training must help."""
    opts = dict(TINY_OPTIONS, **{'train_cfg.max_epochs': 3, 'train_cfg.val_interval': 3,
                                 'optim_wrapper.optimizer.lr': 3e-3})
    runner, results = quickstart_module.pretrain_and_evaluate(CONFIG, toy_data_root, str(tmp_path),
                                                              opts)
    for key in ('before', 'after', 'before_30pct_joint_dropout', 'after_30pct_joint_dropout'):
        assert {'mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe'} <= set(results[key])
    assert results['after']['mpjpe'] < results['before']['mpjpe']
    assert osp.getsize(tmp_path / 'pred_vs_gt.png') > 1000
    assert json.load(open(tmp_path / 'metrics.json'))['after'] == results['after']

    # the image part: the pre-trained head on toy images, random pose net vs oracle pose maps
    head = {k: v for k, v in TINY_OPTIONS.items() if k.startswith('model.head.')}
    images = quickstart_module.test_without_finetuning(
        runner, toy_data_root, str(tmp_path), str(tmp_path / 'pretrain_toy' / 'epoch_3.pth'),
        num_render=2, splits={'train': 8, 'test': 8}, cfg_options=dict(head, **{
            'test_dataloader.num_workers': 0, 'test_dataloader.batch_size': 4}))
    for key in ('random_pose_net', 'oracle_pose_maps'):
        assert {'mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe'} <= set(images[key])
    # a pose map that carries the pose beats one that does not
    assert images['oracle_pose_maps']['mpjpe'] < images['random_pose_net']['mpjpe']
    assert osp.getsize(tmp_path / 'images_wo_finetune.png') > 1000
    # end-to-end fine-tuning on the toy train images, from the pre-trained head
    ft = quickstart_module.finetune_and_evaluate(
        toy_data_root, str(tmp_path), str(tmp_path / 'pretrain_toy' / 'epoch_3.pth'),
        images['_before'], cfg_options=dict(head, **{
            'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1, 'train_dataloader.batch_size': 4,
            'train_dataloader.num_workers': 0, 'val_dataloader.num_workers': 0,
            'test_dataloader.num_workers': 0, 'default_hooks.checkpoint.interval': 1}))
    assert {'mpjpe', 'pa_mpjpe', 'mpve', 'pa_mpvpe'} <= set(ft['after'])
    assert osp.isfile(tmp_path / 'finetune_toy' / 'epoch_1.pth')
    assert osp.getsize(tmp_path / 'images_finetune.png') > 1000
