"""FreiHANDDataset on a tiny FreiHAND-format set written here as the release has it: plain
``json.dump`` of nested lists (``<split>_K/_mano/_xyz/_verts.json``) and JPEGs named
``%08d.jpg`` = ``id + 32560 * version`` under ``<split>/rgb``.

The hands are posed toy MANO hands (so the MANO parameters, joints and vertices agree); the expected
projections / boxes are computed here with scalar formulas.
"""
import json
import os
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
import torch

from mmpose_mpt.body_models import MANO, build_toy_mano
from mmpose_mpt.datasets import FreiHANDDataset, FreiHANDDatasetError
from mmpose_mpt.utils.cli import MPTUserError

N_TRAIN, N_EVAL = 3, 2
STRIDE = 32560
VERSIONS = ('gs', 'hom', 'sample', 'auto')


def write_json(path, obj, indent=None):
    with open(path, 'w') as fh:
        json.dump(obj, fh, indent=indent)


def make_hands(mano_path, n, seed):
    """n posed toy hands in front of a FreiHAND-like camera: mano (n, 1, 61), K, xyz, verts, transl."""
    rng = np.random.default_rng(seed)
    m = MANO(mano_path, dtype=torch.float64)
    pose = rng.normal(scale=0.3, size=(n, 48))
    betas = rng.normal(scale=0.5, size=(n, 10))
    transl = np.stack([rng.uniform(-0.03, 0.03, n), rng.uniform(-0.03, 0.03, n), rng.uniform(0.5, 0.8, n)], 1)
    with torch.no_grad():
        out = m(betas=torch.tensor(betas), global_orient=torch.tensor(pose[:, :3]),
                hand_pose=torch.tensor(pose[:, 3:]), transl=torch.tensor(transl))
        xyz = m.joints21(out).numpy()
        verts = out['vertices'].numpy()
    K = np.zeros((n, 3, 3))
    K[:, 0, 0] = rng.uniform(400, 600, n)
    K[:, 1, 1] = K[:, 0, 0] * rng.uniform(0.98, 1.02, n)
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = 112 + rng.normal(size=n), 112 + rng.normal(size=n), 1.0
    K[:, 0, 1] = rng.normal(scale=2.0, size=n)  # some skew: checks the full K @ xyz
    uv_root, scale = rng.uniform(100, 120, (n, 2)), rng.uniform(1000, 2000, (n, 1))
    mano = np.concatenate([pose, betas, uv_root, scale], 1)[:, None]  # the release's (1, 61)
    return dict(K=K, xyz=xyz, verts=verts, mano=mano, transl=transl)


def write_images(folder, numbers):
    os.makedirs(folder, exist_ok=True)
    img = np.full((224, 224, 3), 127, np.uint8)
    for k in numbers:
        cv2.imwrite(osp.join(folder, f'{k:08d}.jpg'), img)


@pytest.fixture(scope='module')
def mano_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('mano') / 'MANO_RIGHT.pkl')
    with open(path, 'wb') as fh:
        pickle.dump(build_toy_mano(), fh, protocol=2)
    return path


@pytest.fixture(scope='module')
def release(tmp_path_factory, mano_path):
    """root with training (3 samples x 4 versions, verts included) and evaluation (2 samples, K only)."""
    root = str(tmp_path_factory.mktemp('freihand'))
    tr = make_hands(mano_path, N_TRAIN, 0)
    for key in ('K', 'mano', 'xyz', 'verts'):
        write_json(osp.join(root, f'training_{key}.json'), tr[key].tolist(), indent=1 if key == 'K' else None)
    write_images(osp.join(root, 'training', 'rgb'),
                 [i + STRIDE * v for v in range(4) for i in range(N_TRAIN)])
    ev = make_hands(mano_path, N_EVAL, 1)
    write_json(osp.join(root, 'evaluation_K.json'), ev['K'].tolist())
    write_images(osp.join(root, 'evaluation', 'rgb'), range(N_EVAL))
    return root, tr, ev


def copy_release(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- tests
def test_training_items_fields_and_version_indexing(release):
    root, tr, _ = release
    ds = FreiHANDDataset(root, split='training')
    assert len(ds) == 4 * N_TRAIN and ds.num_samples == N_TRAIN
    assert ds.metainfo['keypoint_names'][:5] == ['wrist', 'thumb1', 'thumb2', 'thumb3', 'thumb4']
    assert ds.metainfo['root_index'] == 0
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        v, i = divmod(idx, N_TRAIN)
        assert info['id'] == i and info['version'] == VERSIONS[v] and info['sample_idx'] == idx
        assert info['image_id'] == i + STRIDE * v
        assert info['img_path'] == osp.join(root, 'training', 'rgb', '%08d.jpg' % (i + STRIDE * v))
        assert osp.isfile(info['img_path'])
        shapes = dict(K=(3, 3), keypoints_2d=(21, 3), keypoints_3d=(21, 4), vertices=(778, 3), mano_pose=(48, ),
                      mano_betas=(10, ), mano_uv_root=(2, ), center=(2, ), bbox=(4, ), mano_transl=(3, ))
        for k, s in shapes.items():
            assert info[k].shape == s and info[k].dtype == np.float32, k
        # the four versions share the sample's annotation
        np.testing.assert_allclose(info['keypoints_3d'][:, :3], tr['xyz'][i], atol=1e-6)
        assert np.all(info['keypoints_3d'][:, 3] == 1) and np.all(info['keypoints_2d'][:, 2] == 1)
        np.testing.assert_allclose(info['vertices'], tr['verts'][i], atol=1e-6)
        np.testing.assert_allclose(info['K'], tr['K'][i], rtol=1e-6)
        mano = tr['mano'][i, 0]
        np.testing.assert_allclose(info['mano_pose'], mano[:48], rtol=1e-6)
        np.testing.assert_allclose(info['mano_betas'], mano[48:58], rtol=1e-6)
        np.testing.assert_allclose(info['mano_uv_root'], mano[58:60], rtol=1e-6)
        assert info['mano_scale'] == pytest.approx(mano[60], rel=1e-6)
        assert info['has_2d_joints'] == info['has_3d_joints'] == info['has_vertices'] == info['has_mano'] == 1
        assert info['has_mano_transl'] == 0
    # a subset of versions: 'hom' only -> images id + 32560
    hom = FreiHANDDataset(root, versions=('hom', ))
    assert len(hom) == N_TRAIN
    assert [hom.get_data_info(i)['image_id'] for i in range(N_TRAIN)] == [STRIDE + i for i in range(N_TRAIN)]


def test_projection_and_box_against_scalar_formulas(release):
    root, tr, _ = release
    ds = FreiHANDDataset(root, versions=('gs', ), bbox_padding=1.3)
    for i in range(N_TRAIN):
        info = ds.get_data_info(i)
        K, xyz = tr['K'][i], tr['xyz'][i]
        us, vs = [], []
        for x, y, z in xyz:
            w = K[2][0] * x + K[2][1] * y + K[2][2] * z
            us.append((K[0][0] * x + K[0][1] * y + K[0][2] * z) / w)
            vs.append((K[1][0] * x + K[1][1] * y + K[1][2] * z) / w)
        np.testing.assert_allclose(info['keypoints_2d'][:, 0], us, atol=1e-3)
        np.testing.assert_allclose(info['keypoints_2d'][:, 1], vs, atol=1e-3)
        assert 0 < min(us) and max(us) < 224 and 0 < min(vs) and max(vs) < 224  # the hand is in view
        side = 1.3 * max(max(us) - min(us), max(vs) - min(vs))
        cx, cy = (max(us) + min(us)) / 2, (max(vs) + min(vs)) / 2
        np.testing.assert_allclose(info['center'], [cx, cy], atol=1e-3)
        assert info['scale'] == pytest.approx(side / 200, rel=1e-5)
        np.testing.assert_allclose(info['bbox'], [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2],
                                   atol=1e-3)
    img = FreiHANDDataset(root, versions=('gs', ), bbox_mode='image', bbox_padding=0.8).get_data_info(0)
    np.testing.assert_allclose(img['center'], [112, 112])
    assert img['scale'] == pytest.approx(0.8 * 224 / 200)


def test_mano_translation_recovered(release, mano_path):
    """FreiHAND stores no translation: with a MANO model it is recovered from xyz."""
    root, tr, _ = release
    ds = FreiHANDDataset(root, versions=('gs', 'auto'), mano_model_path=mano_path)
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        assert info['has_mano_transl'] == 1
        np.testing.assert_allclose(info['mano_transl'], tr['transl'][info['id']], atol=1e-6)


def test_evaluation_split_with_and_without_ground_truth(release, tmp_path, mano_path):
    root, _, ev = release
    ds = FreiHANDDataset(root, split='evaluation')
    assert len(ds) == N_EVAL
    info = ds.get_data_info(1)
    assert info['img_path'] == osp.join(root, 'evaluation', 'rgb', '00000001.jpg') and info['version'] == 'gs'
    assert info['has_2d_joints'] == info['has_3d_joints'] == info['has_vertices'] == info['has_mano'] == 0
    assert not info['keypoints_3d'].any() and not info['vertices'].any()
    np.testing.assert_allclose(info['center'], [112, 112])  # no joints: the whole image
    assert info['scale'] == pytest.approx(224 / 200)
    with pytest.raises(FreiHANDDatasetError, match="only version 'gs'"):
        FreiHANDDataset(root, split='evaluation', versions=('gs', 'hom'))
    # the released evaluation ground truth
    root2 = copy_release(root, str(tmp_path / 'with_gt'))
    write_json(osp.join(root2, 'evaluation_xyz.json'), ev['xyz'].tolist())
    write_json(osp.join(root2, 'evaluation_verts.json'), ev['verts'].tolist())
    info = FreiHANDDataset(root2, split='evaluation').get_data_info(1)
    assert info['has_3d_joints'] == info['has_vertices'] == 1 and info['has_mano'] == 0
    np.testing.assert_allclose(info['keypoints_3d'][:, :3], ev['xyz'][1], atol=1e-6)
    np.testing.assert_allclose(info['vertices'], ev['verts'][1], atol=1e-6)


def test_registry_indices_and_cache(release, tmp_path):
    from mmpose.registry import DATASETS
    root, tr, _ = release
    cache = str(tmp_path / 'cache')
    cfg = dict(type='FreiHANDDataset', data_root=root, versions=['gs', 'hom'], indices=[1, 4],
               cache_dir=cache)
    ds = DATASETS.build(cfg)
    assert isinstance(ds, FreiHANDDataset) and len(ds) == 2
    assert [ds.get_data_info(k)['image_id'] for k in range(2)] == [1, STRIDE + 1]
    assert sorted(f.split('_')[1] for f in os.listdir(cache)) == ['K', 'mano', 'verts', 'xyz']
    again = DATASETS.build(cfg)  # from the .npy cache
    np.testing.assert_array_equal(again.get_data_info(0)['vertices'], ds.get_data_info(0)['vertices'])
    assert ds[0]['img_path'].endswith('00000001.jpg')  # through the (empty) pipeline
    assert len(FreiHANDDataset(root, max_samples=5)) == 5


def test_bad_input_raises_one_clear_error(release, tmp_path):
    root, tr, _ = release

    def broken(name, edit):
        d = copy_release(root, str(tmp_path / name))
        edit(d)
        return d

    def check(d, pattern, **kw):
        with pytest.raises(FreiHANDDatasetError, match=pattern) as e:
            FreiHANDDataset(d, **kw)
        assert isinstance(e.value, MPTUserError)
        return str(e.value)

    # unequal lengths: names the file that differs and the reference file
    d = broken('short', lambda d: write_json(osp.join(d, 'training_xyz.json'), tr['xyz'][:2].tolist()))
    msg = check(d, 'training_xyz.json: 2 samples')
    assert 'training_K.json has 3' in msg
    # a sample of the wrong shape
    bad = tr['xyz'].tolist()
    bad[1] = bad[1][:20]
    d = broken('shape', lambda d: write_json(osp.join(d, 'training_xyz.json'), bad))
    check(d, r'training_xyz.json: sample 1 has shape \(20, 3\), expected \(21, 3\)')
    bad_mano = tr['mano'].tolist()
    bad_mano[2][0] = bad_mano[2][0][:58]
    d = broken('mano', lambda d: write_json(osp.join(d, 'training_mano.json'), bad_mano))
    check(d, r'training_mano.json: sample 2 has shape \(1, 58\), expected \(1, 61\)')
    ragged = tr['K'].tolist()
    ragged[0][1] = ragged[0][1][:2]
    d = broken('ragged', lambda d: write_json(osp.join(d, 'training_K.json'), ragged))
    check(d, 'training_K.json: sample 0 is not a numeric array')
    # missing files / images
    d = broken('nomano', lambda d: os.remove(osp.join(d, 'training_mano.json')))
    check(d, 'training_mano.json: FreiHAND annotation file not found')
    d = broken('noimg', lambda d: os.remove(osp.join(d, 'training', 'rgb', '%08d.jpg' % (2 + 3 * STRIDE))))
    msg = check(d, 'image not found')
    assert '%08d.jpg' % (2 + 3 * STRIDE) in msg and '1 of 12' in msg
    assert len(FreiHANDDataset(d, versions=('gs', 'hom', 'sample'))) == 9  # that version is not asked for
    # not a list / not json / behind the camera
    d = broken('dict', lambda d: write_json(osp.join(d, 'training_K.json'), {'K': 1}))
    check(d, 'training_K.json: not a FreiHAND annotation file')
    d = broken('garbage', lambda d: open(osp.join(d, 'training_verts.json'), 'w').write('[[1, 2'))
    check(d, 'training_verts.json: invalid json')
    behind = tr['xyz'].copy()
    behind[0, 5, 2] = -0.1
    d = broken('behind', lambda d: write_json(osp.join(d, 'training_xyz.json'), behind.tolist()))
    check(d, 'training_xyz.json: sample 0 joint 5 is not in front of the camera')
    # options
    check(root, 'versions', versions=('gs', 'color'))
    check(root, 'split', split='test')
    check(root, 'bbox_mode', bbox_mode='tight')
