"""MoCapHeatmapDataset on the toy motion generator + toy body model, prepared in a tmp dir."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest

from mmpose_mpt.datasets.amass_index import (MoCapIndexError, read_amass_header,
                                             read_amass_motion, walk_amass)
from mmpose_mpt.datasets.mocap_heatmap_dataset import MoCapHeatmapDataset
from mmpose_mpt.datasets.toy_mocap import TOY_DATASETS, make_toy_mocap

STRIDE = 0.5
COCO_NAMES = ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
              'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
              'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle']


def _as_list(batch):
    return batch


def _rotmat(aa):
    """(N, 3) axis-angle -> (N, 3, 3), written out independently of the package."""
    th = np.linalg.norm(aa, axis=-1)[:, None, None]
    k = aa / np.maximum(th[:, :, 0], 1e-12)
    K = np.zeros((len(aa), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    K[:, 1, 0], K[:, 2, 0], K[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    from mmpose_mpt.body_models import make_toy_body_models
    from mmpose_mpt.datasets.amass_index import prepare_amass
    base = tmp_path_factory.mktemp('toy')
    make_toy_body_models(str(base))
    amass = str(base / 'amass')
    make_toy_mocap(amass, num_sequences=6, seconds=2.0, seed=3)
    out = str(base / 'mocap')
    prepare_amass(amass, out, str(base / 'body_models'), stride_seconds=STRIDE, progress=False,
                  verbose=False)
    return amass, out


def test_toy_mocap_format_and_determinism(tmp_path):
    a = make_toy_mocap(str(tmp_path / 'a'), num_sequences=4, seconds=1.0, seed=7)
    b = make_toy_mocap(str(tmp_path / 'b'), num_sequences=4, seconds=1.0, seed=7)
    c = make_toy_mocap(str(tmp_path / 'c'), num_sequences=4, seconds=1.0, seed=8)
    assert len(a) == 4
    for pa, pb, pc in zip(a, b, c):
        za, zb, zc = np.load(pa), np.load(pb), np.load(pc)
        n = za['poses'].shape[0]
        expect = dict(poses=((n, 156), np.float64), trans=((n, 3), np.float64),
                      betas=((16, ), np.float64), dmpls=((n, 8), np.float64),
                      mocap_framerate=((), np.float64))
        for k, (shape, dtype) in expect.items():
            assert za[k].shape == shape and za[k].dtype == dtype, k
        assert za['gender'].shape == () and za['gender'].dtype.kind == 'U'
        assert str(za['gender']) in ('neutral', 'male', 'female')
        assert n == round(1.0 * float(za['mocap_framerate']))
        for k in za.files:
            np.testing.assert_array_equal(za[k], zb[k])
        assert not np.array_equal(za['poses'], zc['poses'])
    rels = [osp.relpath(p, tmp_path / 'a') for p in a]
    assert {r.split(os.sep)[0] for r in rels} == set(TOY_DATASETS)
    assert all(r.endswith('_poses.npz') and len(r.split(os.sep)) == 3 for r in rels)


def test_toy_mocap_through_reader_within_joint_limits(toy):
    amass, _ = toy
    files, skipped = walk_amass(amass)
    assert len(files) == 6 and set(skipped) == {'shape_file'}
    assert {f.split(os.sep)[0] for f in files} == set(TOY_DATASETS)
    for rel in files:
        h = read_amass_header(amass, rel)
        pose, finite = read_amass_motion(amass, h)
        assert finite.all() and pose.shape == (h.num_frames, 72)
        aa = pose.reshape(-1, 24, 3)
        assert (np.linalg.norm(aa[:, 1:], axis=-1) < np.pi).all()
        assert (aa[:, 22:] == 0).all()
        R = _rotmat(aa[:, 1:22].reshape(-1, 3)).reshape(-1, 21, 3, 3)
        # knees (SMPL 4, 5) bend one way: the shin (0,-1,0) never swings forward (+z)
        for j in (4, 5):
            shin = R[:, j - 1] @ np.array([0.0, -1.0, 0.0])
            assert (shin[:, 2] < 0.01).all(), (rel, j)
        # elbows (18 left, 19 right): the forearm folds forward (+z) only
        for j, arm in ((18, [1.0, 0, 0]), (19, [-1.0, 0, 0])):
            fore = R[:, j - 1] @ np.array(arm)
            assert (fore[:, 2] > -0.02).all(), (rel, j)
        # z-up world: the body's up axis (SMPL +y) maps to mostly +z
        up = _rotmat(aa[:, 0]) @ np.array([0.0, 1.0, 0.0])
        assert (up[:, 2] > 0.8).all(), rel


def test_length_items_and_views(toy):
    _, out = toy
    ds = MoCapHeatmapDataset(out, split='train', num_views=4)
    m = len(np.load(osp.join(out, 'train', 'pose.npy'), mmap_mode='r'))
    assert ds.num_meshes == m and len(ds) == 4 * m
    assert len(MoCapHeatmapDataset(out, split='train', num_views=3)) == 3 * m
    assert ds.metainfo['num_keypoints'] == 17
    assert [ds.metainfo['keypoint_id2name'][i] for i in range(17)] == COCO_NAMES
    pose = np.load(osp.join(out, 'train', 'pose.npy'))
    kp = np.load(osp.join(out, 'train', 'keypoints_3d.npy'))
    for idx in (0, 1, 5, len(ds) - 1):
        item = ds[idx]
        assert item['view_index'] == idx % 4 and item['mesh_index'] == idx // 4
        assert item['sample_idx'] == idx
        assert item['smpl_pose'].shape == (72, ) and item['smpl_pose'].dtype == np.float32
        assert item['smpl_betas'].shape == (10, ) and item['smpl_betas'].dtype == np.float32
        assert item['keypoints_3d'].shape == (17, 3) and item['keypoints_3d'].dtype == np.float32
        np.testing.assert_array_equal(item['smpl_pose'], pose[idx // 4])
        np.testing.assert_array_equal(item['keypoints_3d'], kp[idx // 4])
        assert item['gender'] in (0, 1, 2)
        assert item['dataset_name'] in ('ToyTrainA', 'ToyTrainB')
        assert item['seq_name'].startswith(item['dataset_name'] + '/')
    with pytest.raises(IndexError):
        ds.get_data_info(len(ds))
    # frame-rate-aware sampling: sample k of a sequence is frame floor(k * 0.5 s * fps)
    for sid, seq in enumerate(ds.index.sequences):
        frames = np.asarray(ds.index.arrays['frame_index'])[
            np.asarray(ds.index.arrays['seq_id']) == sid]
        expect = np.floor(np.arange(len(frames)) * STRIDE * seq['fps'] + 1e-6).astype(int)
        np.testing.assert_array_equal(frames, expect)
        assert len(frames) == int(np.ceil(seq['num_frames'] / (STRIDE * seq['fps'])))
    assert len({s['fps'] for s in ds.index.sequences}) > 1
    # z-up, pelvis-centred: the nose is above the pelvis, the ankles below it
    assert (kp[:, 0, 2] > 0.1).all() and (kp[:, 15:, 2] < -0.15).all()
    val = MoCapHeatmapDataset(out, split='val', num_views=2)
    assert {val[i]['dataset_name'] for i in range(len(val))} == {'ToyVal'}


def test_max_meshes(toy):
    _, out = toy
    full = MoCapHeatmapDataset(out, num_views=2)
    sub = MoCapHeatmapDataset(out, num_views=2, max_meshes=5)
    assert len(sub) == 10
    ids = [sub[2 * i]['mesh_index'] for i in range(5)]
    assert ids == sorted(set(ids)) and ids[0] == 0 and ids[-1] == full.num_meshes - 1
    assert len(MoCapHeatmapDataset(out, num_views=2, max_meshes=10**6)) == len(full)


def test_pickle_and_dataloader_workers(toy):
    import torch
    from mmengine.dataset import DefaultSampler
    _, out = toy
    ds = MoCapHeatmapDataset(out, num_views=4)
    direct = [ds[i] for i in range(8)]  # opens the memmaps in this process
    blob = pickle.dumps(ds)
    assert len(blob) < 200_000  # the arrays are not shipped
    ds2 = pickle.loads(blob)
    assert ds2.index._arrays is None
    np.testing.assert_array_equal(ds2[3]['keypoints_3d'], direct[3]['keypoints_3d'])
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, list(range(8))),
                                         batch_size=2, num_workers=2, collate_fn=_as_list)
    got = [it for batch in loader for it in batch]
    assert [g['sample_idx'] for g in got] == list(range(8))
    for g, d in zip(got, direct):
        np.testing.assert_array_equal(g['smpl_pose'], d['smpl_pose'])
        assert g['view_index'] == d['view_index']
    # DDP-style sampler sharding covers every item exactly once
    seen = []
    for rank in range(2):
        s = DefaultSampler(ds, shuffle=True, seed=0, round_up=False)
        s.rank, s.world_size = rank, 2
        s.num_samples = len(range(rank, len(ds), 2))
        s.total_size = len(ds)
        seen += list(iter(s))
    assert sorted(seen) == list(range(len(ds)))


def test_missing_or_incomplete_index(toy, tmp_path):
    _, out = toy
    with pytest.raises(MoCapIndexError) as e:
        MoCapHeatmapDataset(str(tmp_path / 'nowhere'))
    msg = str(e.value)
    assert str(tmp_path / 'nowhere') in msg and 'prepare_amass.py' in msg
    assert isinstance(e.value, FileNotFoundError)
    # an index whose array file is missing
    import shutil
    broken = tmp_path / 'broken'
    shutil.copytree(osp.join(out, 'train'), broken / 'train')
    os.remove(broken / 'train' / 'keypoints_3d.npy')
    with pytest.raises(MoCapIndexError) as e:
        MoCapHeatmapDataset(str(broken))
    assert 'keypoints_3d.npy' in str(e.value) and 'prepare_amass.py' in str(e.value)
    # lazy_init defers the check to first use
    ds = MoCapHeatmapDataset(str(tmp_path / 'nowhere'), lazy_init=True)
    with pytest.raises(MoCapIndexError):
        len(ds)
