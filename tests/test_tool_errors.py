"""Every user mistake on the command line is one clear line (no traceback) and a non-zero exit."""
import os.path as osp
import runpy
import sys

import pytest
import torch

from conftest import REPO, TINY_OPTIONS, cfg_options_args

CONFIG = osp.join(REPO, 'configs', 'mpt', 'pretrain_toy.py')


def _run_tool(name, argv, monkeypatch, capsys):
    """Run tools/<name>.py as ``python tools/<name>.py argv`` in this process; (exit code, stderr)."""
    monkeypatch.setattr(sys, 'argv', [osp.join(REPO, 'tools', f'{name}.py'), *map(str, argv)])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(osp.join(REPO, 'tools', f'{name}.py'), run_name='__main__')
    err = capsys.readouterr().err
    return e.value.code, err


def _assert_one_line(code, err, *parts):
    assert code not in (0, None), err
    assert 'Traceback' not in err, err
    last = err.strip().splitlines()[-1]
    for p in parts:
        assert str(p) in last, (p, err)


@pytest.fixture
def opts(toy_data_root, quickstart_module):
    return dict(quickstart_module.toy_overrides(toy_data_root), **TINY_OPTIONS)


def test_train_bad_cfg_options(opts, tmp_path, monkeypatch, capsys):
    base = ['--work-dir', tmp_path / 'w', '--cfg-options']
    code, err = _run_tool('train', [CONFIG, *base, 'foo'], monkeypatch, capsys)
    _assert_one_line(code, err, 'expects KEY=VALUE', 'foo')
    code, err = _run_tool('train', [CONFIG, *base, 'hidden_dims=abc'], monkeypatch, capsys)
    _assert_one_line(code, err, 'train.py: error:', 'model.head.hidden_dims', 'give the full key')
    code, err = _run_tool('train', [CONFIG, *base, 'model.head.hidden_dims=abc'], monkeypatch, capsys)
    _assert_one_line(code, err, "model.head.hidden_dims='abc'", 'a list')
    code, err = _run_tool('train', [CONFIG, *base, 'train_cfg.max_epochs=two'], monkeypatch, capsys)
    _assert_one_line(code, err, 'a number')


def test_train_missing_files(opts, tmp_path, monkeypatch, capsys):
    def run(**over):
        o = dict(opts, **over)
        return _run_tool('train', [CONFIG, '--work-dir', tmp_path / 'w', '--no-validate', '--cfg-options',
                                   *cfg_options_args(o)], monkeypatch, capsys)

    code, err = run(**{'model.data_preprocessor.body_model.model_path': tmp_path / 'no_smpl'})
    _assert_one_line(code, err, 'train.py: error:', tmp_path / 'no_smpl', 'not found')
    code, err = run(**{'train_dataloader.dataset.data_root': tmp_path / 'no_data'})
    _assert_one_line(code, err, 'train.py: error:', tmp_path / 'no_data', 'missing')
    assert 'class `' not in err  # mmengine's build prefixes are dropped
    (tmp_path / 'empty.pth').write_bytes(b'')
    code, err = run(load_from=tmp_path / 'empty.pth')
    _assert_one_line(code, err, tmp_path / 'empty.pth', 'empty file')
    code, err = _run_tool('train', [CONFIG, '--resume', tmp_path / 'none.pth'], monkeypatch, capsys)
    _assert_one_line(code, err, tmp_path / 'none.pth', 'not found')
    code, err = _run_tool('train', [tmp_path / 'no_config.py'], monkeypatch, capsys)
    _assert_one_line(code, err, 'no_config.py')


def test_work_dir_that_is_a_file(opts, tmp_path, monkeypatch, capsys):
    f = tmp_path / 'notes.txt'
    f.write_text('keep me')
    code, err = _run_tool('train', [CONFIG, '--work-dir', f, '--cfg-options', *cfg_options_args(opts)],
                          monkeypatch, capsys)
    _assert_one_line(code, err, f, 'existing file')
    assert f.read_text() == 'keep me'


def test_test_tool_bad_arguments(tmp_path, monkeypatch, capsys):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {}}, good)
    code, err = _run_tool('test', [CONFIG, good, '--dump', 'x.json'], monkeypatch, capsys)
    _assert_one_line(code, err, '--dump x.json', '.pkl')
    for name, data, what in (('empty.pth', b'', 'empty file'), ('text.pth', b'hello\n', 'not a PyTorch'),
                             ('trunc.pth', good.read_bytes()[:100], 'truncated')):
        (tmp_path / name).write_bytes(data)
        code, err = _run_tool('test', [CONFIG, tmp_path / name], monkeypatch, capsys)
        _assert_one_line(code, err, 'test.py: error:', tmp_path / name, what)
    (tmp_path / 'outdir').mkdir()
    code, err = _run_tool('test', [CONFIG, good, '--out', tmp_path / 'outdir'], monkeypatch, capsys)
    _assert_one_line(code, err, 'outdir', 'existing directory')


def test_data_tools_bad_arguments(toy_data_root, tmp_path, monkeypatch, capsys):
    amass, bm = osp.join(toy_data_root, 'amass'), osp.join(toy_data_root, 'body_models')
    if not torch.cuda.is_available():
        code, err = _run_tool('prepare_amass', [amass, tmp_path / 'o', '--body-model-dir', bm, '--device',
                                                'cuda', '--no-progress'], monkeypatch, capsys)
        _assert_one_line(code, err, '--device cuda')
        code, err = _run_tool('benchmark_data', ['--device', 'cuda'], monkeypatch, capsys)
        _assert_one_line(code, err, '--device cuda')
    for bad in ('0', '-1', 'x'):
        code, err = _run_tool('prepare_amass', [amass, tmp_path / 'o', '--body-model-dir', bm,
                                                '--batch-size', bad], monkeypatch, capsys)
        _assert_one_line(code, err, '--batch-size')
        code, err = _run_tool('benchmark_data', ['--batch-size', bad], monkeypatch, capsys)
        _assert_one_line(code, err, '--batch-size')
    f = tmp_path / 'file'
    f.write_text('x')
    code, err = _run_tool('prepare_amass', [amass, f, '--body-model-dir', bm, '--no-progress'], monkeypatch,
                          capsys)
    _assert_one_line(code, err, f, 'existing file')
    code, err = _run_tool('prepare_amass', [amass, tmp_path / 'o', '--body-model-dir', tmp_path / 'nobm',
                                            '--no-progress'], monkeypatch, capsys)
    _assert_one_line(code, err, 'nobm')


def test_make_mesh_sampling_names_the_file(tmp_path, monkeypatch, capsys):
    import pickle

    import numpy as np
    v = np.random.default_rng(0).normal(size=(10, 3))
    f = np.array([[0, 1, 2.7], [2, 3, 4], [4, 5, 6]])
    p = tmp_path / 'model.pkl'
    with open(p, 'wb') as fh:
        pickle.dump(dict(v_template=v, f=f), fh)
    code, err = _run_tool('make_mesh_sampling', [p, tmp_path / 's.npz', '--levels', '5'], monkeypatch, capsys)
    _assert_one_line(code, err, p, 'non-integer')
    with open(p, 'wb') as fh:
        pickle.dump(dict(v_template=v, f=np.array([[0, 1, 20]])), fh)
    code, err = _run_tool('make_mesh_sampling', [p, tmp_path / 's.npz', '--levels', '5'], monkeypatch, capsys)
    _assert_one_line(code, err, p)
