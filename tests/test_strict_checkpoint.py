"""A checkpoint that does not fit the model is one clear error; intended partial loads are explicit."""
import logging
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from conftest import REPO, TINY_OPTIONS, cfg_options_args
from mmpose_mpt.engine.hooks import (CheckpointError, CheckpointMismatchError, StrictCheckpointHook,
                                     check_checkpoint_file)

CONFIG = osp.join(REPO, 'configs', 'mpt', 'pretrain_toy.py')


class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.backbone = nn.Linear(3, width)
        self.head = nn.Linear(width, 2)
        self.register_buffer('scale', torch.ones(2))


def _runner(model, work_dir='.', cfg=None, load_from='ckpt.pth'):
    logger = logging.getLogger('test_strict_checkpoint')
    return SimpleNamespace(model=model, cfg=cfg or {}, logger=logger, _load_from=load_from, _resume=False,
                           work_dir=work_dir)


def test_fitting_checkpoint_passes_unchanged():
    model = Net()
    ckpt = {'state_dict': {f'module.{k}': v for k, v in Net().state_dict().items()}}
    before = dict(ckpt['state_dict'])
    StrictCheckpointHook().after_load_checkpoint(_runner(model), ckpt)
    assert ckpt['state_dict'].keys() == before.keys()


@pytest.mark.parametrize('case', ['other_model', 'missing', 'unexpected', 'shape'])
def test_mismatch_is_one_error_naming_file_and_counts(case):
    model = Net()
    sd = Net().state_dict()
    if case == 'other_model':
        sd = {'conv.weight': torch.zeros(3, 3)}
    elif case == 'missing':
        del sd['head.bias']
    elif case == 'unexpected':
        sd['extra.weight'] = torch.zeros(1)
    else:
        sd = Net(width=5).state_dict()
    with pytest.raises(CheckpointMismatchError) as e:
        StrictCheckpointHook().after_load_checkpoint(_runner(model, load_from='/x/wrong.pth'),
                                                     {'state_dict': sd})
    msg = str(e.value)
    assert msg.startswith('/x/wrong.pth: the checkpoint does not fit the model Net') and '\n' not in msg
    expected = {'other_model': ('5 of the model\'s 5 tensors missing', '1 unexpected'),
                'missing': ('1 of the model\'s 5 tensors missing', 'missing e.g. head.bias'),
                'unexpected': ('0 of the model', 'unexpected e.g. extra.weight'),
                'shape': ('3 with another shape', 'vs model')}[case]
    for part in expected:
        assert part in msg, msg
    assert 'load_partial' in msg


def test_partial_load_is_explicit_and_lists_what_was_not_loaded(caplog):
    model = Net()
    sd = Net(width=5).state_dict()       # backbone and head.weight do not fit, head.bias / scale do
    sd['head.bias'] = torch.full((2, ), 7.0)
    sd['stale.weight'] = torch.zeros(1)
    # a pattern that covers only part of the mismatch is still an error
    with pytest.raises(CheckpointMismatchError, match="does not cover"):
        StrictCheckpointHook().check(model, {'state_dict': dict(sd)}, 'p.pth', ['backbone.*'])
    ckpt = {'state_dict': dict(sd)}
    with caplog.at_level(logging.WARNING, logger='test_strict_checkpoint'):
        StrictCheckpointHook().after_load_checkpoint(
            _runner(model, cfg={'load_partial': ['backbone.*', 'head.weight', 'stale.*']}), ckpt)
    assert set(ckpt['state_dict']) == {'head.bias', 'scale'}  # what does not fit is dropped
    text = caplog.text
    for key in ('backbone.weight', 'backbone.bias', 'head.weight', 'stale.weight'):
        assert key in text
    assert '2 of 5 model tensors loaded' in text
    # load_partial=True loads whatever fits, but a checkpoint of which nothing fits is still refused
    with pytest.raises(CheckpointMismatchError, match='nothing of it fits'):
        StrictCheckpointHook().check(model, {'state_dict': {'conv.w': torch.zeros(1)}}, 'p.pth', True)


def test_checkpoint_files_that_are_not_checkpoints(tmp_path):
    cases = {'empty.pth': b'', 'text.pth': b'epoch 3, loss 0.1\n' * 5}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': Net().state_dict()}, good)
    (tmp_path / 'truncated.pth').write_bytes(good.read_bytes()[:200])
    torch.save(torch.zeros(3), tmp_path / 'tensor.pth')
    expect = {'empty.pth': 'empty file', 'text.pth': 'not a PyTorch checkpoint',
              'truncated.pth': 'truncated or corrupt zip', 'tensor.pth': 'not a checkpoint',
              'missing.pth': 'not found'}
    for name, what in expect.items():
        with pytest.raises(CheckpointError) as e:
            check_checkpoint_file(str(tmp_path / name))
        assert str(e.value).startswith(str(tmp_path / name)) and what in str(e.value), str(e.value)
    check_checkpoint_file(str(good))


def test_pickled_objects_are_refused_not_run(tmp_path):
    class Evil:
        def __reduce__(self):
            return (eval, (f"open({str(tmp_path / 'pwned')!r}, 'w')", ))

    torch.save({'state_dict': {}, 'meta': Evil()}, tmp_path / 'evil.pth')
    with pytest.raises(CheckpointError, match='refuses'):
        check_checkpoint_file(str(tmp_path / 'evil.pth'))
    assert not osp.exists(tmp_path / 'pwned')


# ------------------------------------------------------------------------------ through tools/test.py
@pytest.fixture(scope='module')
def toy_checkpoints(toy_data_root, quickstart_module, tmp_path_factory):
    """A checkpoint of the tiny toy model (as tools/train.py would save it) and wrong ones."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS
    init_default_scope('mmpose')
    opts = dict(quickstart_module.toy_overrides(toy_data_root), **TINY_OPTIONS)
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(opts)
    model = MODELS.build(cfg.model)
    d = tmp_path_factory.mktemp('ckpts')
    sd = model.state_dict()
    torch.save({'state_dict': sd, 'meta': {}}, d / 'good.pth')
    torch.save({'state_dict': Net().state_dict(), 'meta': {}}, d / 'wrong.pth')
    head_only = {k: v for k, v in sd.items() if not k.startswith('head.upsampling')}
    torch.save({'state_dict': head_only, 'meta': {}}, d / 'partial.pth')
    return d, opts


def _test_tool(ckpt, opts, work_dir, *extra):
    cmd = [sys.executable, osp.join(REPO, 'tools', 'test.py'), CONFIG, str(ckpt), '--work-dir', str(work_dir),
           '--cfg-options', *cfg_options_args(dict(opts, **{'test_dataloader.dataset.max_meshes': 2,
                                                            'test_dataloader.batch_size': 8})), *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def _test_in_process(capfd, monkeypatch, ckpt, opts, work_dir, *extra):
    """tools/test.py as ``_test_tool`` runs it, in this process (saves ~8 s of start-up per run); stdout /
    stderr captured at the file descriptors, where mmengine's logger writes. What the run leaves behind
    is undone: its loggers (their handlers write to the capture, closed after the test) and message
    hubs, LOCAL_RANK, sys.argv, the working directory."""
    import importlib.util

    from mmengine.logging import MessageHub, MMLogger

    from mmpose_mpt.utils.cli import run_tool
    spec = importlib.util.spec_from_file_location('mpt_test_tool', osp.join(REPO, 'tools', 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    argv = ['test.py', CONFIG, str(ckpt), '--work-dir', str(work_dir), '--cfg-options',
            *cfg_options_args(dict(opts, **{'test_dataloader.dataset.max_meshes': 2,
                                            'test_dataloader.batch_size': 8})), *extra]
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, 'argv', argv)
    monkeypatch.setenv('LOCAL_RANK', os.environ.get('LOCAL_RANK', '0'))   # restored after the test
    managers = {cls: set(cls._instance_dict) for cls in (MMLogger, MessageHub)}
    capfd.readouterr()
    try:
        rc = run_tool(tool.main, 'test.py')
    finally:
        for cls, before in managers.items():
            for name in [n for n in cls._instance_dict if n not in before]:
                instance = cls._instance_dict.pop(name)
                for handler in getattr(instance, 'handlers', [])[:]:
                    handler.close()
                    instance.removeHandler(handler)
    out, err = capfd.readouterr()
    return SimpleNamespace(returncode=rc, stdout=out, stderr=err)


@pytest.mark.slow
def test_tools_test_refuses_a_wrong_checkpoint_and_loads_the_right_one(toy_checkpoints, tmp_path, capfd,
                                                                      monkeypatch):
    d, opts = toy_checkpoints
    # the command line once, end to end; the other cases in this process
    proc = _test_tool(d / 'wrong.pth', opts, tmp_path / 'w')
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    err = proc.stderr.strip().splitlines()
    assert 'Traceback' not in proc.stderr and err[-1].startswith('test.py: error: ')
    assert f'{d / "wrong.pth"}: the checkpoint does not fit the model MeshEstimator' in err[-1]
    assert 'Epoch(test)' not in proc.stdout + proc.stderr          # nothing was scored

    proc = _test_in_process(capfd, monkeypatch, d / 'partial.pth', opts, tmp_path / 'p')
    assert proc.returncode == 2 and 'head.upsampling' in proc.stderr
    proc = _test_in_process(capfd, monkeypatch, d / 'partial.pth', opts, tmp_path / 'p2', 'load_partial=True')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'partial load of' in proc.stdout + proc.stderr and 'missing (kept as initialised): head.upsampling' \
        in proc.stdout + proc.stderr

    proc = _test_in_process(capfd, monkeypatch, d / 'good.pth', opts, tmp_path / 'g')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Epoch(test)' in proc.stdout + proc.stderr and 'partial load' not in proc.stdout + proc.stderr


def test_what_mmengine_would_not_load_is_not_passed():
    """The hook renames keys exactly as mmengine's Runner does ('^module.', any character after
    'module'), and entries that are not loadable tensors count as mismatched."""

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.module_head = nn.Linear(2, 2)

    hook = StrictCheckpointHook()
    # mmengine would turn module_head.* into head.* and load nothing: the hook must see the same
    with pytest.raises(CheckpointMismatchError, match='2 of the model'):
        hook.check(Odd(), {'state_dict': Odd().state_dict()}, 'odd.pth')
    sd = Net().state_dict()
    for bad in ([1.0, 2.0], torch.zeros(2, device='meta'), torch.zeros(2, dtype=torch.complex64)):
        with pytest.raises(CheckpointMismatchError, match='not loadable e.g. head.bias'):
            hook.check(Net(), {'state_dict': dict(sd, **{'head.bias': bad})}, 'x.pth')
    with pytest.raises(CheckpointError, match='not strings'):
        hook.check(Net(), {'state_dict': {**sd, 3: torch.zeros(1)}}, 'x.pth')
    for partial in (1, 0, 2.5, [1]):
        with pytest.raises(CheckpointError, match='load_partial must be'):
            hook.check(Net(), {'state_dict': sd}, 'x.pth', partial)


@pytest.mark.slow
def test_fine_tuning_load_from_a_wrong_checkpoint_stops(toy_checkpoints, tmp_path):
    """load_from= for fine-tuning used to start from scratch with one warning."""
    d, opts = toy_checkpoints
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), CONFIG, '--work-dir', str(tmp_path / 'ft'),
           '--cfg-options', *cfg_options_args(dict(opts, load_from=str(d / 'wrong.pth')))]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert f'{d / "wrong.pth"}: the checkpoint does not fit' in proc.stderr.strip().splitlines()[-1]
    assert 'Epoch(train)' not in proc.stdout + proc.stderr     # not one step was trained
