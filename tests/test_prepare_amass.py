"""tools/prepare_amass.py / mmpose_mpt.datasets.amass_index on generated AMASS-format trees."""
import importlib.util
import json
import os
import os.path as osp
import time

import numpy as np
import pytest
import torch

from mmpose_mpt.datasets.amass_index import (INDEX_ARRAYS, MoCapIndex, amass_to_smpl_pose,
                                             parse_splits, prepare_amass, read_amass_header,
                                             sample_frame_indices, split_of)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
STRIDE = 0.35  # s; gives non-integer frame steps at 30 and 50 fps


def _rotmat(aa: np.ndarray) -> np.ndarray:
    """Rodrigues, written out here independently of the package."""
    th = np.linalg.norm(aa)
    if th < 1e-12:
        return np.eye(3)
    k = aa / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def write_amass(path, n=100, width=156, fps=60.0, gender='male', fr_key='mocap_framerate',
                nbetas=16, seed=0, drop=(), **override):
    """An AMASS-format file with smooth random motion; ``drop`` removes keys, ``override`` replaces."""
    rng = np.random.default_rng(seed)
    poses = np.zeros((n, width))
    t = np.arange(n)[:, None] / fps
    poses[:, :66] = 0.3 * np.sin(2 * np.pi * 0.5 * t + rng.uniform(0, 6, 66)) * rng.uniform(
        0, 1, 66)
    poses[:, 66:] = 0.1 * rng.standard_normal(width - 66)
    poses[:, :3] += np.array([np.pi / 2, 0, 0])  # z-up world: +90 deg about x
    d = dict(poses=poses, trans=rng.standard_normal((n, 3)), betas=rng.normal(0, 1, nbetas),
             gender=np.array(gender), **{fr_key: np.array(fps)}, dmpls=np.zeros((n, 8)))
    d.update(override)
    for k in drop:
        d.pop(k)
    os.makedirs(osp.dirname(path), exist_ok=True)
    np.savez(path, **d)
    return path


# name -> (rel path, n, width, fps, gender, framerate key); expected frames at STRIDE=0.35 s
GOOD = {
    'a': ('CMUx/s1/a_poses.npz', 250, 156, 120.0, 'male', 'mocap_framerate'),
    'b': ('CMUx/s1/b_poses.npz', 100, 72, 60.0, b'female', 'mocap_frame_rate'),
    'c': ('BMLx/s2/c_poses.npz', 333, 156, 100.0, 'neutral', 'mocap_framerate'),
    'd': ('HumanEva/s3/d_poses.npz', 95, 156, 30.0, b'male', 'mocap_framerate'),
    'nan': ('CMUx/s4/nan_poses.npz', 60, 156, 50.0, 'female', 'mocap_framerate'),
}
# hand-computed: frame floor(k * 0.35 * fps) for k * 0.35 < n / fps
EXPECTED_FRAMES = {
    'a': [0, 42, 84, 126, 168, 210],                       # step 42, 250/120 = 2.08 s
    'b': [0, 21, 42, 63, 84],                              # step 21, 1.67 s
    'c': [0, 35, 70, 105, 140, 175, 210, 245, 280, 315],   # step 35, 3.33 s
    'd': [0, 10, 21, 31, 42, 52, 63, 73, 84, 94],          # step 10.5, 3.17 s
    'nan': [0, 35, 52],                                    # step 17.5 -> 0,17,35,52; 17 is NaN
}
NAN_FRAMES = (17, 40)


def _make_bad_files(root):
    """Every bad-input case; returns {reason: [rel paths]} expected in the report."""
    j = lambda *p: osp.join(root, *p)  # noqa: E731
    # truncated archive
    p = write_amass(j('CMUx', 'bad', 'truncated_poses.npz'), seed=5)
    data = open(p, 'rb').read()
    open(p, 'wb').write(data[:len(data) // 2])
    # not an npz at all
    open(j('CMUx', 'bad', 'garbage_poses.npz'), 'wb').write(b'this is not a zip file' * 10)
    # valid archive, corrupted array bytes (CRC error only when the poses are read in pass 2)
    p = write_amass(j('CMUx', 'bad', 'crc_poses.npz'), n=200, seed=6)
    data = bytearray(open(p, 'rb').read())
    mid = data.find(b'poses.npy') + 2000  # inside the poses payload
    data[mid:mid + 64] = bytes(64)
    open(p, 'wb').write(bytes(data))
    write_amass(j('CMUx', 'bad', 'nobetas_poses.npz'), drop=('betas', ))
    write_amass(j('CMUx', 'bad', 'nofps_poses.npz'), drop=('mocap_framerate', ))
    write_amass(j('CMUx', 'bad', 'width_poses.npz'), poses=np.zeros((100, 100)))
    write_amass(j('CMUx', 'bad', 'trans_poses.npz'), trans=np.zeros((100, 2)))
    write_amass(j('CMUx', 'bad', 'fewbetas_poses.npz'), nbetas=8)
    write_amass(j('CMUx', 'bad', 'empty_poses.npz'), n=0)
    write_amass(j('CMUx', 'bad', 'allnan_poses.npz'),
                poses=np.full((100, 156), np.nan))
    write_amass(j('CMUx', 'bad', 'nanbetas_poses.npz'), betas=np.full(16, np.nan))
    write_amass(j('CMUx', 'bad', 'alien_poses.npz'), gender='alien')
    write_amass(j('CMUx', 'bad', 'zerofps_poses.npz'), mocap_framerate=np.array(0.0))
    np.savez(j('CMUx', 's1', 'shape.npz'), betas=np.zeros(16), gender=np.array('male'))
    os.makedirs(j('CMUx', 'empty_subject'))
    os.makedirs(j('EmptyDS'))
    b = osp.join
    return {
        'unreadable': [b('CMUx', 'bad', n) for n in ('crc_poses.npz', 'garbage_poses.npz',
                                                       'truncated_poses.npz')],
        'missing_keys': [b('CMUx', 'bad', n) for n in ('nobetas_poses.npz', 'nofps_poses.npz')],
        'bad_shape': [b('CMUx', 'bad', n) for n in ('fewbetas_poses.npz', 'trans_poses.npz',
                                                     'width_poses.npz')],
        'no_frames': [b('CMUx', 'bad', 'empty_poses.npz')],
        'nonfinite': [b('CMUx', 'bad', n) for n in ('allnan_poses.npz', 'nanbetas_poses.npz')],
        'unknown_gender': [b('CMUx', 'bad', 'alien_poses.npz')],
        'bad_framerate': [b('CMUx', 'bad', 'zerofps_poses.npz')],
        'shape_file': [b('CMUx', 's1', 'shape.npz')],
        'empty_dir': [b('CMUx', 'empty_subject'), 'EmptyDS'],
    }


@pytest.fixture(scope='module')
def body_model_dir(tmp_path_factory):
    from mmpose_mpt.body_models import make_toy_body_models
    root = tmp_path_factory.mktemp('toy')
    make_toy_body_models(str(root))
    return osp.join(str(root), 'body_models', 'smpl')


@pytest.fixture(scope='module')
def amass_tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('amass'))
    for i, (name, (rel, n, w, fps, g, key)) in enumerate(GOOD.items()):
        over = {}
        if name == 'nan':
            rng = np.random.default_rng(9)
            poses = rng.normal(0, 0.2, (n, w))
            trans = np.zeros((n, 3))
            poses[NAN_FRAMES[0], 5] = np.nan
            trans[NAN_FRAMES[1], 1] = np.inf
            over = dict(poses=poses, trans=trans)
        write_amass(osp.join(root, rel), n=n, width=w, fps=fps, gender=g, fr_key=key, seed=i,
                    **over)
    bad = _make_bad_files(root)
    return root, bad


@pytest.fixture(scope='module')
def prepared(amass_tree, body_model_dir, tmp_path_factory):
    root, _ = amass_tree
    out = str(tmp_path_factory.mktemp('prepared'))
    t = time.time()
    report = prepare_amass(root, out, body_model_dir, stride_seconds=STRIDE, progress=False,
                           verbose=False, batch_size=16)
    return out, report, time.time() - t


def _load_split(out, split):
    return {k: np.load(osp.join(out, split, f'{k}.npy')) for k in INDEX_ARRAYS}, json.load(
        open(osp.join(out, split, 'index.json')))


def test_sample_frame_indices_formula():
    assert sample_frame_indices(250, 120.0, 0.35).tolist() == EXPECTED_FRAMES['a']
    assert sample_frame_indices(95, 30.0, 0.35).tolist() == EXPECTED_FRAMES['d']
    # 1 s stride at 30 vs 120 fps: the same instants
    np.testing.assert_array_equal(sample_frame_indices(300, 30.0, 1.0) * 4,
                                  sample_frame_indices(1200, 120.0, 1.0))
    # stride shorter than a frame: every frame once
    assert sample_frame_indices(5, 10.0, 0.01).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        sample_frame_indices(10, 30.0, 0.0)


def test_pose_conversion_and_splits():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((4, 156))
    s = amass_to_smpl_pose(h)
    np.testing.assert_array_equal(s[:, :66], h[:, :66])
    assert (s[:, 66:] == 0).all()  # SMPL hand joints 22/23 have no SMPL-H counterpart
    np.testing.assert_array_equal(amass_to_smpl_pose(h[:, :72]), h[:, :72])
    sp = parse_splits(None)
    assert split_of('HumanEva', sp) == 'val' and split_of('mpi_hdm05', sp) == 'val'
    assert split_of('SSM_synced', sp) == 'test' and split_of('CMU', sp) == 'train'
    sp = parse_splits(['train:CMU,BMLmovi', 'val:HumanEva'])
    assert split_of('CMU', sp) == 'train' and split_of('SFU', sp) is None
    with pytest.raises(ValueError):
        parse_splits(['CMU'])


def test_index_shapes_frames_and_splits(prepared, amass_tree):
    out, report, _ = prepared
    tr, tr_info = _load_split(out, 'train')
    va, va_info = _load_split(out, 'val')
    n_train = sum(len(EXPECTED_FRAMES[k]) for k in ('a', 'b', 'c', 'nan'))
    n_val = len(EXPECTED_FRAMES['d'])
    assert report['num_meshes'] == {'train': n_train, 'val': n_val, 'test': 0}
    assert not osp.exists(osp.join(out, 'test', 'index.json'))
    for arrs, m in ((tr, n_train), (va, n_val)):
        for k, (shape, dtype) in INDEX_ARRAYS.items():
            assert arrs[k].shape == (m, ) + shape and arrs[k].dtype == np.dtype(dtype), k
    # per sequence: frames follow the time stride at the file's own frame rate
    for arrs, info in ((tr, tr_info), (va, va_info)):
        for sid, seq in enumerate(info['sequences']):
            name = osp.basename(seq['name']).replace('_poses', '')
            frames = arrs['frame_index'][arrs['seq_id'] == sid].tolist()
            assert frames == EXPECTED_FRAMES[name], name
            assert seq['count'] == len(frames)
            rel, n, w, fps, g, _ = GOOD[name]
            assert seq['fps'] == fps and seq['num_frames'] == n
            g = g.decode() if isinstance(g, bytes) else g
            assert seq['source_gender'] == g
    # poses: SMPL-H body joints kept, hand joints zero; betas = first 10
    root, _ = amass_tree
    for arrs, info in ((tr, tr_info), (va, va_info)):
        for sid, seq in enumerate(info['sequences']):
            src = np.load(osp.join(root, seq['path']))
            rows = arrs['seq_id'] == sid
            exp = src['poses'][arrs['frame_index'][rows]]
            np.testing.assert_allclose(arrs['pose'][rows][:, :66], exp[:, :66], atol=1e-6)
            if src['poses'].shape[1] == 156:
                assert (arrs['pose'][rows][:, 66:] == 0).all()
            else:
                np.testing.assert_allclose(arrs['pose'][rows], exp, atol=1e-6)
            np.testing.assert_allclose(arrs['betas'][rows], np.broadcast_to(
                src['betas'][:10], (rows.sum(), 10)), atol=1e-6)
    # NaN frames dropped and counted
    nf = report['nonfinite_frames']
    assert nf['count'] == 2 and nf['dropped_samples'] == 1
    assert list(nf['files']) == [GOOD['nan'][0].replace('/', os.sep)]


def test_keypoints_centred_and_match_forward(prepared, body_model_dir):
    """Stored joints == COCO regression of an independent forward, minus the posed pelvis; and the
    global orient is kept: kp == R(go) @ (kp(go=0) - pelvis(go=0))."""
    from mmpose_mpt.body_models import SMPL
    out, _, _ = prepared
    arrs, info = _load_split(out, 'train')
    genders = ('neutral', 'male', 'female')
    for gid in np.unique(arrs['gender']):
        smpl = SMPL(body_model_dir, gender=genders[gid])
        rows = np.nonzero(arrs['gender'] == gid)[0]
        pose = torch.tensor(arrs['pose'][rows], dtype=torch.float64).float()
        betas = torch.tensor(arrs['betas'][rows])
        with torch.no_grad():
            res = smpl(betas=betas, body_pose=pose[:, 3:], global_orient=pose[:, :3])
            coco = smpl.regress(res['vertices'], 'coco') - res['joints'][:, :1]
            res0 = smpl(betas=betas, body_pose=pose[:, 3:],
                        global_orient=torch.zeros_like(pose[:, :3]))
            coco0 = (smpl.regress(res0['vertices'], 'coco') - res0['joints'][:, :1]).numpy()
        np.testing.assert_allclose(arrs['keypoints_3d'][rows], coco.numpy(), atol=1e-4)
        for i, r in enumerate(rows):
            R = _rotmat(arrs['pose'][r, :3].astype(np.float64))
            np.testing.assert_allclose(arrs['keypoints_3d'][r], coco0[i] @ R.T, atol=1e-4)
    # gendered toy models exist -> sequences use their own gender's model
    seq_g = [genders.index(s['source_gender']) for s in info['sequences']]
    np.testing.assert_array_equal(arrs['gender'], np.array(seq_g)[arrs['seq_id']])


def test_rerun_is_idempotent_and_resumes(prepared, amass_tree, body_model_dir):
    out, report, first_s = prepared
    root, _ = amass_tree
    before = {s: _load_split(out, s) for s in ('train', 'val')}
    t = time.time()
    r2 = prepare_amass(root, out, body_model_dir, stride_seconds=STRIDE, progress=False,
                       verbose=False)
    again_s = time.time() - t
    assert r2['files_computed'] == 0 and r2['files_cached'] == report['files_computed']
    for s in ('train', 'val'):
        after = _load_split(out, s)
        for k in INDEX_ARRAYS:
            np.testing.assert_array_equal(before[s][0][k], after[0][k])
        assert before[s][1] == after[1]
    assert r2['skipped'] == report['skipped']
    assert again_s < max(first_s, 1.0)
    # touching one file recomputes only that file, with identical results
    p = osp.join(root, GOOD['b'][0])
    st = os.stat(p)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r3 = prepare_amass(root, out, body_model_dir, stride_seconds=STRIDE, progress=False,
                       verbose=False)
    assert r3['files_computed'] == 1
    after = _load_split(out, 'train')
    for k in INDEX_ARRAYS:
        a, b = before['train'][0][k], after[0][k]
        if np.issubdtype(a.dtype, np.floating):
            # the recomputed file goes through the body model in another batch composition: float32
            # summation order (multi-threaded BLAS) may differ in the last bit
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        else:
            np.testing.assert_array_equal(a, b)
    # a different stride invalidates every cache entry
    r4 = prepare_amass(root, out, body_model_dir, stride_seconds=1.0, progress=False,
                       verbose=False)
    assert r4['files_computed'] == report['files_computed']
    assert r4['total_meshes'] < report['total_meshes']
    # restore for the other tests sharing the fixture
    prepare_amass(root, out, body_model_dir, stride_seconds=STRIDE, progress=False,
                  verbose=False)


def test_target_count(amass_tree, body_model_dir, tmp_path):
    root, _ = amass_tree
    target = 40
    rep = prepare_amass(root, str(tmp_path), body_model_dir, target_count=target,
                        progress=False, verbose=False)
    nseq = rep['num_files_used']
    assert nseq == len(GOOD)
    assert abs(rep['total_meshes'] - target) <= nseq
    # the stride spreads the target over the usable (finite) time of the usable files
    total_s = sum(n / fps for _, n, _, fps, _, _ in GOOD.values()) - len(NAN_FRAMES) / 50.0
    assert rep['stride_seconds'] == pytest.approx(total_s / target)


def test_bad_inputs_reported_and_skipped(prepared, amass_tree, capsys):
    out, report, _ = prepared
    _, bad = amass_tree
    skipped = report['skipped']
    assert set(skipped) == set(bad)
    for reason, files in bad.items():
        assert skipped[reason]['count'] == len(files), reason
        assert sorted(skipped[reason]['files']) == sorted(files), reason
    on_disk = json.load(open(osp.join(out, 'report.json')))
    assert on_disk['skipped'] == skipped
    assert report['num_files_used'] == len(GOOD)
    # the printed summary names the reasons
    from mmpose_mpt.datasets.amass_index import format_report
    text = format_report(report)
    for reason in bad:
        assert reason in text
    with pytest.raises(Exception) as e:
        read_amass_header(amass_tree[0], bad['unknown_gender'][0])
    assert 'alien' in str(e.value) and 'alien_poses.npz' in str(e.value)


def test_cli(amass_tree, body_model_dir, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('prepare_amass_tool',
                                                  osp.join(REPO, 'tools', 'prepare_amass.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root, _ = amass_tree
    rc = tool.main([root, str(tmp_path / 'o'), '--body-model-dir', osp.dirname(body_model_dir),
                    '--stride-seconds', '1', '--splits', 'train:CMUx', 'val:HumanEva',
                    '--no-progress', '--neutral-only'])
    assert rc == 0
    idx = MoCapIndex(str(tmp_path / 'o' / 'train'))
    assert set(idx.seq_datasets) == {'CMUx'}
    assert (np.asarray(idx.arrays['gender']) == 0).all()  # --neutral-only
    rep = json.load(open(tmp_path / 'o' / 'report.json'))
    assert rep['excluded_datasets'] == {'BMLx': 1}
    assert 'meshes' in capsys.readouterr().out
    assert tool.main([str(tmp_path / 'missing'), str(tmp_path / 'o2'), '--body-model-dir',
                      body_model_dir]) == 2
    assert 'missing' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main([root, str(tmp_path / 'o3'), '--body-model-dir', body_model_dir,
                   '--stride-seconds', '1', '--target-count', '10'])
