"""prepare_amass against hostile trees: links, frame rates, FIFOs, stale splits, edited indices."""
import json
import os
import os.path as osp
import shutil
import threading
import time

import numpy as np
import pytest

from mmpose_mpt.datasets.amass_index import (MoCapIndex, MoCapIndexError, prepare_amass, read_amass_header,
                                             walk_amass)
from test_prepare_amass import write_amass


@pytest.fixture(scope='module')
def body_model_dir(tmp_path_factory):
    from mmpose_mpt.body_models import make_toy_body_models
    root = tmp_path_factory.mktemp('toy_bm')
    make_toy_body_models(str(root))
    return osp.join(str(root), 'body_models', 'smpl')


def _prep(root, out, bm, **kw):
    kw = dict(dict(stride_seconds=0.5, progress=False, verbose=False, neutral_only=True), **kw)
    return prepare_amass(str(root), str(out), bm, **kw)


def test_links_visit_every_real_file_once(tmp_path):
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'a_poses.npz'))
    write_amass(str(root / 'CMU' / 's1' / 'b_poses.npz'), seed=1)
    write_amass(str(root / 'HumanEva' / 's2' / 'c_poses.npz'), seed=2)
    os.symlink('.', root / 'CMU' / 's1' / 'loop')                      # self-loop
    os.symlink(root / 'HumanEva', root / 'CMU' / 'cross')              # crossing links
    os.symlink(root / 'CMU', root / 'HumanEva' / 'cross')
    os.symlink(root / 'CMU' / 's1', root / 'SFU')                      # alias named after a val set
    os.symlink(root / 'HumanEva', root / 'ACCAD')                      # train-named alias of val data
    os.symlink(root / 'CMU' / 's1' / 'a_poses.npz', root / 'CMU' / 's1' / 'a_copy_poses.npz')
    os.symlink(root / 'missing', root / 'CMU' / 'dangling')
    t = time.time()
    files, skipped = walk_amass(str(root))
    assert time.time() - t < 5
    assert files == sorted(osp.join(*p) for p in (('CMU', 's1', 'a_poses.npz'), ('CMU', 's1', 'b_poses.npz'),
                                                  ('HumanEva', 's2', 'c_poses.npz')))
    dup = set(skipped['duplicate'])
    assert {'ACCAD', 'SFU', osp.join('CMU', 'cross'), osp.join('HumanEva', 'cross'),
            osp.join('CMU', 's1', 'loop'), osp.join('CMU', 's1', 'a_copy_poses.npz')} == dup
    assert skipped['broken_link'] == [osp.join('CMU', 'dangling')]


def test_links_outside_the_root_are_walked(tmp_path):
    """The common layout: datasets on other disks, linked into the AMASS root."""
    ext = tmp_path / 'disk2' / 'CMU'
    write_amass(str(ext / 's1' / 'a_poses.npz'))
    root = tmp_path / 'amass'
    os.makedirs(root)
    os.symlink(ext, root / 'CMU')
    os.symlink(ext, root / 'CMU_again')
    files, skipped = walk_amass(str(root))
    assert files == [osp.join('CMU', 's1', 'a_poses.npz')]
    assert skipped['duplicate'] == ['CMU_again']


def test_alias_never_puts_one_motion_in_two_splits(tmp_path, body_model_dir):
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'a_poses.npz'))
    write_amass(str(root / 'HumanEva' / 's1' / 'v_poses.npz'), seed=3)
    os.symlink(root / 'CMU', root / 'SFU')            # val-named alias of train data
    os.symlink(root / 'HumanEva', root / 'BMLrub')    # train-named alias of val data
    rep = _prep(root, tmp_path / 'out', body_model_dir)
    train = MoCapIndex(str(tmp_path / 'out' / 'train'))
    val = MoCapIndex(str(tmp_path / 'out' / 'val'))
    assert set(train.seq_datasets) == {'CMU'} and set(val.seq_datasets) == {'HumanEva'}
    assert set(rep['skipped']['duplicate']['files']) == {'SFU', 'BMLrub'}
    assert 'same directory as CMU' in rep['skipped']['duplicate']['details']['SFU']


def test_fifo_named_like_a_motion_does_not_hang(tmp_path, body_model_dir):
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'a_poses.npz'))
    os.mkfifo(root / 'CMU' / 's1' / 'pipe_poses.npz')
    out = {}
    th = threading.Thread(target=lambda: out.update(rep=_prep(root, tmp_path / 'out', body_model_dir)),
                          daemon=True)
    th.start()
    th.join(120)
    assert not th.is_alive(), 'prepare_amass hangs on a FIFO'
    assert out['rep']['skipped']['not_regular']['files'] == [osp.join('CMU', 's1', 'pipe_poses.npz')]
    with pytest.raises(Exception, match='not_regular'):
        read_amass_header(str(root), osp.join('CMU', 's1', 'pipe_poses.npz'))


@pytest.mark.parametrize('fps', [1e-9, 1e-320, 1e12, 0.5, 5000.0, -60.0, float('nan')])
def test_implausible_frame_rates_are_skipped(tmp_path, body_model_dir, fps):
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'good_poses.npz'), n=120, fps=60.0)
    write_amass(str(root / 'CMU' / 's1' / 'bad_poses.npz'), n=120, mocap_framerate=np.array(fps))
    rep = _prep(root, tmp_path / 'out', body_model_dir, stride_seconds=None, target_count=10)
    assert rep['skipped']['bad_framerate']['files'] == [osp.join('CMU', 's1', 'bad_poses.npz')]
    # the good file gets the target count (it is the only usable time)
    assert 10 <= rep['num_meshes']['train'] <= 11


def test_every_file_with_zero_samples_is_reported(tmp_path, body_model_dir):
    """A file whose sampled frames are all non-finite (but not every frame) used to vanish."""
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'good_poses.npz'), n=60, fps=60.0)
    poses = np.zeros((60, 156))
    poses[0] = np.nan  # stride 2 s over 1 s: only frame 0 is sampled
    write_amass(str(root / 'CMU' / 's1' / 'hole_poses.npz'), n=60, fps=60.0, poses=poses)
    rep = _prep(root, tmp_path / 'out', body_model_dir, stride_seconds=2.0)
    assert rep['skipped']['no_samples']['files'] == [osp.join('CMU', 's1', 'hole_poses.npz')]
    used = json.load(open(tmp_path / 'out' / 'train' / 'index.json'))['sequences']
    assert [s['path'] for s in used] == ['CMU/s1/good_poses.npz']


def test_bad_body_model_dir_fails_before_the_scan(tmp_path, monkeypatch):
    import mmpose_mpt.datasets.amass_index as ai
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'a_poses.npz'))
    monkeypatch.setattr(ai, 'walk_amass', lambda *a, **k: pytest.fail('scanned AMASS first'))
    with pytest.raises(FileNotFoundError, match='nowhere'):
        _prep(root, tmp_path / 'out', str(tmp_path / 'nowhere'))


def test_unreadable_directories_are_reported(tmp_path):
    if os.geteuid() == 0:
        pytest.skip('root reads every directory')
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'a_poses.npz'))
    os.makedirs(root / 'CMU' / 'locked')
    os.chmod(root / 'CMU' / 'locked', 0)
    try:
        _, skipped = walk_amass(str(root))
    finally:
        os.chmod(root / 'CMU' / 'locked', 0o755)
    assert skipped['unreadable_dir'] == [osp.join('CMU', 'locked')]


def test_unlistable_directory_is_reported_even_as_root(tmp_path, monkeypatch):
    """The same through a scandir failure (root reads everything, so provoke it)."""
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'a_poses.npz'))
    os.makedirs(root / 'CMU' / 'locked')
    real = os.scandir

    def scandir(path):
        if str(path).endswith('locked'):
            raise PermissionError(13, 'Permission denied', str(path))
        return real(path)

    monkeypatch.setattr(os, 'scandir', scandir)
    files, skipped = walk_amass(str(root))
    assert files == [osp.join('CMU', 's1', 'a_poses.npz')]
    assert skipped['unreadable_dir'] == [osp.join('CMU', 'locked')]


def test_rerun_with_other_splits_retires_the_old_ones(tmp_path, body_model_dir):
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'a_poses.npz'))
    write_amass(str(root / 'HumanEva' / 's1' / 'v_poses.npz'), seed=3)
    out = tmp_path / 'out'
    _prep(root, out, body_model_dir)
    MoCapIndex(str(out / 'val'))
    rep = _prep(root, out, body_model_dir, splits={'train': ['*'], 'holdout': ['HumanEva']})
    assert rep['stale_splits'] == ['val']
    with pytest.raises(MoCapIndexError, match='stale'):
        MoCapIndex(str(out / 'val'))
    assert osp.isfile(out / 'val' / 'pose.npy')  # nothing deleted
    MoCapIndex(str(out / 'holdout'))


def test_out_of_range_seq_id_is_one_clear_error(tmp_path, body_model_dir):
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'a_poses.npz'))
    out = tmp_path / 'out'
    _prep(root, out, body_model_dir)
    seq = np.load(out / 'train' / 'seq_id.npy')
    seq[-1] = 7
    np.save(out / 'train' / 'seq_id.npy', seq)
    with pytest.raises(MoCapIndexError, match=r'seq_id.npy holds ids in \[0, 7\]'):
        MoCapIndex(str(out / 'train'))


def test_output_dir_that_is_a_file(tmp_path, body_model_dir):
    root = tmp_path / 'amass'
    write_amass(str(root / 'CMU' / 's1' / 'a_poses.npz'))
    (tmp_path / 'out').write_text('my notes')
    with pytest.raises(NotADirectoryError, match='existing file'):
        _prep(root, tmp_path / 'out', body_model_dir)
    assert (tmp_path / 'out').read_text() == 'my notes'


def test_pickled_gender_string_still_reads(tmp_path):
    """The releases that pickled gender as an object array keep working, through the safe reader."""
    root = tmp_path / 'amass'
    path = root / 'CMU' / 's1' / 'a_poses.npz'
    g = np.empty((), object)
    g[()] = 'female'
    write_amass(str(path), gender=g)
    assert read_amass_header(str(root), osp.join('CMU', 's1', 'a_poses.npz')).gender == 'female'
    shutil.rmtree(root)


def test_very_deep_tree_is_walked(tmp_path):
    """A walk by recursion overflowed Python's stack ~1000 levels down."""
    root = tmp_path / 'amass'
    deep = root / 'DS'
    os.makedirs(deep)
    rels = ['DS']
    for _ in range(1200):
        os.mkdir(osp.join(str(root), rels[-1], 'd'))
        rels.append(osp.join(rels[-1], 'd'))
    cwd = os.getcwd()
    os.chdir(str(root))
    try:
        write_amass(osp.join(rels[-1], 'a_poses.npz'))
        files, skipped = walk_amass('.')
        os.remove(osp.join(rels[-1], 'a_poses.npz'))
        for r in reversed(rels[1:]):   # shutil.rmtree (pytest's clean-up) recurses, and would overflow
            os.rmdir(r)
    finally:
        os.chdir(cwd)
    assert files == [osp.join(rels[-1], 'a_poses.npz')] and 'unreadable_dir' not in skipped


def test_hard_links_are_one_file(tmp_path):
    root = tmp_path / 'amass'
    write_amass(str(root / 'A' / 's' / 'x_poses.npz'))
    os.makedirs(root / 'B' / 's')
    os.link(root / 'A' / 's' / 'x_poses.npz', root / 'B' / 's' / 'y_poses.npz')
    files, skipped = walk_amass(str(root), details := {})
    assert files == [osp.join('A', 's', 'x_poses.npz')]
    assert skipped['duplicate'] == [osp.join('B', 's', 'y_poses.npz')]
    assert 'hard link of' in details['duplicate'][osp.join('B', 's', 'y_poses.npz')]
