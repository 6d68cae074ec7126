"""Batched access to the MoCap dataset (``__getitems__`` + BatchedTransform) gives exactly the items
of the per-item path, under the same random state, for every pipeline configuration."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmpose_mpt  # noqa: F401  (registers the components)
from mmpose_mpt.cameras import VirtualCameraError, apply_warp
from mmpose_mpt.cameras.topdown_crop import crop_from_box, crop_from_boxes
from mmpose_mpt.datasets.mocap_heatmap_dataset import MoCapHeatmapDataset
from mmpose_mpt.datasets.transforms import (MaskedHeatmapModeling, PackMeshInputs,
                                            RandomVirtualCamera)
from mmpose_mpt.datasets.transforms.batched_transform import BatchedTransform, run_batched
from mmpose_mpt.datasets.transforms.pack_mesh_inputs import set_instance_fields, set_metainfo_fields

init_default_scope('mmpose')


def _assert_same_item(a, b):
    assert torch.equal(a['inputs'], b['inputs']) and a['inputs'].dtype == b['inputs'].dtype
    ga, gb = a['data_samples'].gt_instances, b['data_samples'].gt_instances
    assert set(ga.keys()) == set(gb.keys()) and len(ga) == len(gb) == 1
    for k in ga.keys():
        u, v = np.asarray(ga.get(k)), np.asarray(gb.get(k))
        assert u.dtype == v.dtype and u.shape == v.shape, k
        np.testing.assert_array_equal(u, v, err_msg=k)
    ma, mb = a['data_samples'].metainfo, b['data_samples'].metainfo
    assert ma.keys() == mb.keys()
    for k in ma:
        assert ma[k] == mb[k], k


def _dataset(root, num_views=4, random_view=True, mhm=None, extra=()):
    pipeline = [dict(type='RandomVirtualCamera', num_views=num_views, random_view=random_view),
                dict(type='MaskedHeatmapModeling', **(mhm or {})), *extra,
                dict(type='PackMeshInputs')]
    return MoCapHeatmapDataset(osp.join(root, 'mocap'), split='train', num_views=num_views,
                               pipeline=pipeline)


MHM_CASES = [dict(), dict(num_masked=(2, 6), noise_std=0.2, jitter_std=3.0), dict(seed=5),
             dict(enabled=False), dict(jitter_std=0.0, noise_std=0.0, mask_prob=0.5)]


@pytest.mark.parametrize('random_view', [True, False])
@pytest.mark.parametrize('mhm', MHM_CASES)
def test_getitems_equals_items(toy_data_root, random_view, mhm):
    ds = _dataset(toy_data_root, num_views=8, random_view=random_view, mhm=mhm)
    idx = [int(i) for i in np.random.default_rng(0).permutation(len(ds))[:40]] + [-1, 3, 3]
    np.random.seed(11)
    items = [ds[i] for i in idx]
    np.random.seed(11)
    batch = ds.__getitems__(idx)
    assert len(batch) == len(idx)
    for a, b in zip(items, batch):
        _assert_same_item(a, b)
    # the random draws did happen (a different seed gives other corruptions / views)
    if random_view or (mhm.get('enabled', True) and 'seed' not in mhm):
        np.random.seed(12)
        other = ds.__getitems__(idx)
        assert any(not torch.equal(a['inputs'], b['inputs']) for a, b in zip(batch, other))


def test_getitems_errors_and_fallback(toy_data_root):
    ds = _dataset(toy_data_root)
    with pytest.raises(IndexError, match='out of range'):
        ds.__getitems__([0, len(ds)])
    with pytest.raises(IndexError, match='out of range'):
        ds.__getitems__([-len(ds) - 1])
    assert ds.__getitems__([]) == []

    # a pipeline with a transform that is not batched runs item by item, same items
    class Plain(BaseTransform):
        calls = 0

        def transform(self, results):
            Plain.calls += 1
            return results

    ds = _dataset(toy_data_root, extra=[Plain()])
    np.random.seed(3)
    items = [ds[i] for i in range(6)]
    np.random.seed(3)
    Plain.calls = 0
    batch = ds.__getitems__(list(range(6)))
    assert Plain.calls == 6
    for a, b in zip(items, batch):
        _assert_same_item(a, b)


def test_dataloader_uses_getitems(toy_data_root, monkeypatch):
    ds = _dataset(toy_data_root)
    calls = []
    orig = MoCapHeatmapDataset.__getitems__

    def spy(self, indices):
        calls.append(list(indices))
        return orig(self, indices)

    monkeypatch.setattr(MoCapHeatmapDataset, '__getitems__', spy)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False, collate_fn=pseudo_collate)
    np.random.seed(0)
    batch = next(iter(loader))
    assert calls == [list(range(8))]
    np.random.seed(0)
    for k, it in enumerate(orig(ds, list(range(8)))):
        assert torch.equal(batch['inputs'][k], it['inputs'])


def test_batched_camera_bad_input_names_sample(toy_data_root):
    ds = _dataset(toy_data_root, random_view=False)
    infos = ds.get_data_infos([0, 1, 2])
    infos[1] = dict(infos[1], keypoints_3d=infos[1]['keypoints_3d'].copy())
    infos[1]['keypoints_3d'][4, 0] = np.nan
    rvc = ds.pipeline.transforms[0]
    with pytest.raises(VirtualCameraError, match=f'frame {infos[1]["frame_index"]}'):
        run_batched(ds.pipeline.transforms, infos)
    with pytest.raises(VirtualCameraError, match='must be a \\(K, 3\\)'):
        rvc.transform_batch([dict(infos[0], keypoints_3d=np.zeros((17, 2)))], [None])


def test_batched_camera_edge_cases_equal_per_sample():
    """Joints behind the camera, nothing visible, different joint counts in one batch."""
    rvc = RandomVirtualCamera(num_views=4, random_view=False)
    rng = np.random.default_rng(0)
    samples = []
    for k in range(12):
        j = rng.normal(0, 0.4, (17, 3))
        if k % 4 == 1:   # a few joints behind the camera of view 1 (its optical axis is R[2])
            j[:3] -= 30 * rvc.rig.R[1][2]
        if k % 4 == 2:   # everything behind the camera
            j -= 30 * rvc.rig.R[2][2]
        samples.append(dict(keypoints_3d=j if k != 7 else j[:13], view_index=k % 4))
    per = [rvc.transform(dict(s)) for s in samples]
    bat = rvc.transform_batch([dict(s) for s in samples], [None] * len(samples))
    assert per[2]['keypoints_visible'].sum() == 0 and 0 < per[1]['keypoints_visible'].sum() < 17
    for a, b in zip(per, bat):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], np.ndarray):
                assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
            else:
                assert a[key] == b[key], key


def test_crop_from_boxes_equals_crop_from_box():
    rng = np.random.default_rng(1)
    x1, y1 = rng.uniform(-50, 900, (2, 300))
    w, h = rng.uniform(0, 600, (2, 300))
    w[:5] = 0.0                                  # degenerate boxes (MIN_BOX_SIDE)
    boxes = np.stack([x1, y1, x1 + w, y1 + h], 1).astype(np.float32).astype(np.float64)
    for size in ((224, 224), (192, 256), (112, 112)):
        batch = crop_from_boxes(boxes, size, 1.25)
        for i, b in enumerate(boxes):
            one = crop_from_box(*map(float, b), size, 1.25)
            for key in one:
                assert one[key].dtype == batch[key].dtype == np.float32
                np.testing.assert_array_equal(one[key], batch[key][i], err_msg=key)


def test_apply_warp_broadcasts():
    rng = np.random.default_rng(2)
    pts, mats = rng.normal(size=(5, 17, 2)), rng.normal(size=(5, 2, 3)).astype(np.float32)
    out = apply_warp(pts, mats)
    for i in range(5):
        np.testing.assert_array_equal(out[i], apply_warp(pts[i], mats[i]))
        np.testing.assert_allclose(out[i], pts[i] @ mats[i][:, :2].T + mats[i][:, 2], rtol=1e-12)


def test_mhm_draws_before_camera_match_per_sample():
    """In a batch MHM draws before the camera has projected (its K comes from keypoints_3d)."""
    mhm = MaskedHeatmapModeling(num_masked=(1, 4), jitter_std=2.0, noise_std=0.1)
    res = dict(keypoints=np.zeros((1, 17, 2), np.float32), keypoints_visible=np.ones((1, 17)))
    np.random.seed(4)
    a = mhm.draw(dict(keypoints_3d=np.zeros((17, 3))))
    np.random.seed(4)
    b = mhm.draw(res)
    assert a[0].shape == (1, 17) and a[1].shape == (1, 17, 2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert isinstance(mhm, BatchedTransform) and isinstance(PackMeshInputs(), BatchedTransform)


def test_set_instance_fields_fast_path_matches_mmengine():
    fields = dict(keypoints=np.zeros((1, 17, 2)), smpl_pose=np.ones((1, 72)), gender=np.array([1]))
    fast = set_instance_fields(InstanceData(), fields)
    slow = InstanceData()
    for k, v in fields.items():
        setattr(slow, k, v)
    assert fast.keys() == slow.keys() and len(fast) == len(slow) == 1
    assert fast.all_keys() == slow.all_keys()
    for k in fields:
        assert fast.get(k) is fields[k]
    # names that are attributes of the class or metainfo keep mmengine's checks
    with pytest.raises(AttributeError):
        set_instance_fields(InstanceData(metainfo=dict(smpl_pose=1)), dict(smpl_pose=np.ones((1, 2))))
    with pytest.raises(AttributeError):
        set_instance_fields(InstanceData(), {'_data_fields': np.ones((1, 2))})
    with pytest.raises(AssertionError, match='length'):
        set_instance_fields(InstanceData(), dict(a=np.ones((1, 2)), b=np.ones((2, 2))))


def test_set_metainfo_fields_fast_path_matches_mmengine():
    from mmpose.structures import PoseDataSample
    meta = dict(input_size=(224, 224), sample_idx=3, seq_name='a/b', flip_indices=[1, 0])
    fast = set_metainfo_fields(PoseDataSample(), dict(meta))
    slow = PoseDataSample(metainfo=meta)
    assert fast.metainfo == slow.metainfo and fast.metainfo_keys() == slow.metainfo_keys()
    assert fast.keys() == slow.keys() == []
    # names that clash (a data field, a property of the class) keep mmengine's checks
    with pytest.raises(AttributeError):
        set_metainfo_fields(PoseDataSample(metainfo=dict(a=1), b=np.ones(1)), dict(b=2))
    with pytest.raises(AssertionError):
        set_metainfo_fields(PoseDataSample(), dict(gt_instances=1))


def test_packed_sample_equals_mmengine_construction(toy_data_root):
    """PackMeshInputs builds its samples through fast paths: the result must be what building the
    same sample through mmengine's public API, field by field in the same order, gives (fields,
    metainfo, lengths, values, and the key order, which follows the fields' sets)."""
    from mmpose.structures import PoseDataSample

    from mmpose_mpt.datasets.transforms.pack_mesh_inputs import INSTANCE_KEYS
    ds = _dataset(toy_data_root, random_view=True, mhm=dict(seed=2))
    pack = ds.pipeline.transforms[-1]
    for item in ds.__getitems__([0, 5, 11]):
        got = item['data_samples']
        gt = got.gt_instances
        ref_gt = InstanceData()
        for field in INSTANCE_KEYS.values():
            if field in gt:
                setattr(ref_gt, field, gt.get(field))
        ref = PoseDataSample(gt_instances=ref_gt)
        for k in pack.meta_keys:
            if k in got.metainfo:
                ref.set_field(got.metainfo[k], k, field_type='metainfo')
        assert got.keys() == ref.keys() == ['gt_instances']
        assert got._data_fields == ref._data_fields
        assert got.metainfo_keys() == ref.metainfo_keys() and got.metainfo == ref.metainfo
        assert list(got.metainfo) == list(ref.metainfo)
        assert gt.keys() == ref_gt.keys() and len(gt) == len(ref_gt) == 1
        assert set(got.metainfo) == {'input_size', 'view_index', 'sample_idx', 'seq_name',
                                     'frame_index', 'dataset_name'}
        assert isinstance(got.gt_instances, InstanceData) and got.gt_instances is gt
        assert all(isinstance(gt.get(k), np.ndarray) and gt.get(k).dtype != np.float64
                   for k in gt.keys())


def test_dataloader_workers_batches(toy_data_root):
    """Batches made by worker processes (pickled views of one batch array) are the items."""
    ds = _dataset(toy_data_root, random_view=False, mhm=dict(seed=1, noise_std=0.1))
    loader = torch.utils.data.DataLoader(ds, batch_size=6, shuffle=False, num_workers=2,
                                         collate_fn=pseudo_collate)
    got = [b for _, b in zip(range(3), loader)]
    for k, batch in enumerate(got):
        for i, item in enumerate(ds.__getitems__(list(range(6 * k, 6 * k + 6)))):
            assert torch.equal(batch['inputs'][i], item['inputs'])
            np.testing.assert_array_equal(batch['data_samples'][i].gt_instances.cam_R,
                                          item['data_samples'].gt_instances.cam_R)
            assert batch['data_samples'][i].sample_idx == 6 * k + i


class _DropEveryFifth(BatchedTransform):
    """Drops samples whose index is a multiple of 5 (as a filtering transform would)."""

    def transform_batch(self, batch, draws):
        return [None if r['sample_idx'] % 5 == 0 else r for r in batch]


class _KeepFirstJoints(BatchedTransform):
    """Changes the number of keypoints after the camera (so MHM's early draws no longer fit)."""

    def transform_batch(self, batch, draws):
        for r in batch:
            r['keypoints'] = r['keypoints'][:, :12].copy()
            r['keypoints_visible'] = r['keypoints_visible'][:, :12].copy()
        return batch


class _ZeroKeypointsMHM(MaskedHeatmapModeling):
    """A subclass that overrides only the per-sample transform."""

    def transform(self, results):
        results = super().transform(results)
        results['heatmap_keypoints'] = np.zeros_like(results['heatmap_keypoints'])
        return results


@pytest.mark.parametrize('case', ['drop', 'reshape', 'subclass'])
def test_getitems_falls_back_to_items(toy_data_root, case):
    """Batches a vectorised run cannot reproduce exactly are made item by item from the same random
    state: a dropped sample (train mode re-fetches another), a draw that no longer fits, a subclass
    whose own transform the batch code would skip."""
    root = osp.join(toy_data_root, 'mocap')
    cam = dict(type='RandomVirtualCamera', num_views=4, random_view=True)
    mhm = dict(type='MaskedHeatmapModeling', num_masked=(1, 3))
    pipeline = {'drop': [cam, _DropEveryFifth(), mhm, dict(type='PackMeshInputs')],
                'reshape': [cam, _KeepFirstJoints(), mhm, dict(type='PackMeshInputs')],
                'subclass': [cam, _ZeroKeypointsMHM(), dict(type='PackMeshInputs')]}[case]
    ds = MoCapHeatmapDataset(root, num_views=4, pipeline=pipeline, test_mode=False)
    idx = list(range(1, 13))
    np.random.seed(0)
    items = [ds[i] for i in idx]
    after_items = np.random.random()
    np.random.seed(0)
    batch = ds.__getitems__(idx)
    assert np.random.random() == after_items
    for a, b in zip(items, batch):
        _assert_same_item(a, b)
    if case == 'drop':
        assert {b['data_samples'].sample_idx % 5 for b in batch} != {0}
        assert all(b['data_samples'].sample_idx % 5 for b in batch)
    if case == 'subclass':
        assert all(float(b['inputs'][:, :2].abs().sum()) == 0 for b in batch)
