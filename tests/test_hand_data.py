"""Hand data path (issue 14): METRO's 195-vertex sampling, the Complement reader, the MANO-parameter source,
HandCrop, the toy hand writers, and their bad-input errors. All on generated files in the real layouts."""
import json
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from mmpose_mpt.body_models import MANO, MeshSampler, load_mesh_sampling
from mmpose_mpt.body_models.mano import METRO_MANO_195_VERTEX_IDS, build_selection_sampling
from mmpose_mpt.body_models.toy_body_model import build_toy_mano
from mmpose_mpt.datasets import ComplementDataset, ComplementDatasetError, FreiHANDDataset, ManoParamDataset
from mmpose_mpt.datasets.complement_dataset import COMPLEMENT_K, write_obj
from mmpose_mpt.datasets.freihand_dataset import FreiHANDDatasetError
from mmpose_mpt.datasets.mano_param_dataset import ManoParamDatasetError
from mmpose_mpt.datasets.toy_hands import make_toy_hands
from mmpose_mpt.datasets.transforms import HandCrop

TOY_TIPS = (744, 320, 443, 554, 671)


def write_toy_mano(body_model_dir: str) -> str:
    os.makedirs(osp.join(body_model_dir, 'mano'), exist_ok=True)
    path = osp.join(body_model_dir, 'mano', 'MANO_RIGHT.pkl')
    with open(path, 'wb') as fh:
        pickle.dump(build_toy_mano(), fh, protocol=2)
    return path


@pytest.fixture(scope='module')
def hands(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('hands'))
    bm = osp.join(root, 'body_models')
    write_toy_mano(bm)
    paths = make_toy_hands(osp.join(root, 'hands'), bm, num_complement=12, num_complement_val=4, num_freihand=4,
                           num_freihand_eval=3, seed=0)
    paths['mano'] = osp.join(bm, 'mano')
    return paths


def test_metro_selection_sampling(hands):
    from mmpose_mpt.body_models import load_body_model_file
    arrays = load_body_model_file(osp.join(hands['mano'], 'MANO_RIGHT.pkl'))
    s = load_mesh_sampling(hands['mano_sampling'])
    assert s['num_vertices'] == [778, 195]
    D, U = s['D'][0].toarray(), s['U'][0].toarray()
    # D is METRO's selection: one 1 per row at the published ids, in their order
    assert (D.sum(1) == 1).all() and list(D.argmax(1)) == list(METRO_MANO_195_VERTEX_IDS)
    assert np.allclose(U.sum(1), 1) and (U >= 0).all()
    V = arrays['v_template']
    up = U @ (D @ V)
    assert np.allclose(up[list(METRO_MANO_195_VERTEX_IDS)], V[list(METRO_MANO_195_VERTEX_IDS)])
    err = np.linalg.norm(up - V, axis=1)
    assert err.mean() < 0.004 and err.max() < 0.03          # metres, on the toy hand (~0.2 m long)
    sampler = MeshSampler(hands['mano_sampling'])
    x = torch.from_numpy(V[None]).float()
    assert torch.allclose(sampler.upsample(sampler.downsample(x)), torch.from_numpy(up[None]).float(), atol=1e-6)
    with pytest.raises(ValueError, match='distinct'):
        build_selection_sampling(V, arrays['f'], keep=[1, 1, 2, 3])


def test_joint_regressor21_equals_joints21(hands):
    m = MANO(hands['mano'], fingertip_vertex_ids=TOY_TIPS)
    out = m(hand_pose=torch.randn(3, 45) * 0.4)
    G = torch.from_numpy(m.joint_regressor21()).float()
    assert torch.allclose(G @ out['vertices'], m.joints21(out['vertices']), atol=1e-6)


def test_complement_reader_unmirrors_and_projects(hands, tmp_path):
    mano = MANO(hands['mano'], fingertip_vertex_ids=TOY_TIPS, dtype=torch.float64)
    rng = np.random.default_rng(3)
    verts = mano(hand_pose=torch.from_numpy(rng.normal(0, 0.3, (2, 45))))['vertices'].numpy()
    verts = verts + np.array([0.01, -0.02, 0.5])
    for i, v in enumerate(verts):      # the release: mirrored camera-space meshes
        write_obj(str(tmp_path / 'base_pose' / 'model_mano' / f'{i}.obj'), v * np.array([-1, 1, 1]))
    ds = ComplementDataset(str(tmp_path), mano_model_path=hands['mano'], fingertip_vertex_ids=TOY_TIPS)
    assert len(ds) == 2
    item = ds[1]
    np.testing.assert_allclose(item['vertices'], verts[1], atol=2e-6)
    reg = mano.joint_regressor21()
    np.testing.assert_allclose(item['keypoints_3d'], reg @ verts[1], atol=2e-6)
    j = reg @ verts[1]
    u = COMPLEMENT_K[0, 0] * j[:, 0] / j[:, 2] + COMPLEMENT_K[0, 2]
    v = COMPLEMENT_K[1, 1] * j[:, 1] / j[:, 2] + COMPLEMENT_K[1, 2]
    np.testing.assert_allclose(item['keypoints_2d'][:, :2], np.stack([u, v], 1), atol=1e-3)
    # train / val split: every val_every-th mesh
    assert len(ComplementDataset(str(tmp_path), hands['mano'], TOY_TIPS, split='val', val_every=2)) == 1


def test_complement_bad_input(hands, tmp_path):
    write_obj(str(tmp_path / 'p' / 'model_mano' / '0.obj'), np.zeros((778, 3)) + [0, 0, 0.5])
    bad = str(tmp_path / 'p' / 'model_mano' / '1.obj')
    write_obj(bad, np.zeros((700, 3)) + [0, 0, 0.5])
    with pytest.raises(ComplementDatasetError, match=r'1\.obj: 700 vertices.*778'):
        ComplementDataset(str(tmp_path), hands['mano'], TOY_TIPS).full_init()
    with pytest.raises(ComplementDatasetError, match='no Complement meshes'):
        ComplementDataset(str(tmp_path / 'p' / 'model_mano'), hands['mano'], TOY_TIPS).full_init()
    with open(bad, 'w') as fh:
        fh.write('v 1 2\n')
    with pytest.raises(ComplementDatasetError, match=r'1\.obj: malformed'):
        ComplementDataset(str(tmp_path), hands['mano'], TOY_TIPS).full_init()


def test_toy_complement_layout(hands):
    ds = ComplementDataset(hands['complement'], hands['mano'], TOY_TIPS)
    assert len(ds) == 12
    assert {osp.basename(osp.dirname(osp.dirname(p))) for p in ds.paths} == {'base_pose', 'trans_pose_batch1'}
    uv = np.stack([ds.get_data_info(i)['keypoints_2d'][:, :2] for i in range(len(ds))])
    assert (uv > 0).all() and (uv < 256).all()   # in the fixed camera's 256 x 256 image


def test_mano_param_views(hands, tmp_path):
    ds = ManoParamDataset(hands['mano_params_train'], hands['mano'], num_views=6, distance=0.5,
                          fingertip_vertex_ids=TOY_TIPS)
    assert len(ds) == 12 * 6
    z = np.load(hands['mano_params_train'])
    mano = MANO(hands['mano'], fingertip_vertex_ids=TOY_TIPS)
    for idx in (0, 5, 13):
        it = ds[idx]
        mesh, view = divmod(idx, 6)
        p = torch.from_numpy(z['pose'][mesh:mesh + 1])
        out = mano(betas=torch.from_numpy(z['betas'][mesh:mesh + 1]), global_orient=p[:, :3], hand_pose=p[:, 3:])
        j = mano.joints21(out)[0].numpy()
        # a rigid view of the posed hand: same pairwise distances, the centre joint on the optical axis
        d = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
        np.testing.assert_allclose(d(it['keypoints_3d']), d(j), atol=1e-5)
        np.testing.assert_allclose(it['keypoints_3d'][9], [0, 0, 0.5], atol=1e-6)
        np.testing.assert_allclose(it['keypoints_2d'][9, :2], [112, 112], atol=1e-3)
    # different views see the hand from different directions
    assert not np.allclose(ds[0]['keypoints_3d'], ds[1]['keypoints_3d'], atol=1e-3)
    np.savez(tmp_path / 'bad.npz', pose=np.zeros((3, 45)))
    with pytest.raises(ManoParamDatasetError, match=r'bad\.npz: pose must be \(N>=1, 48\)'):
        ManoParamDataset(str(tmp_path / 'bad.npz'), hands['mano']).full_init()


def test_hand_crop_geometry():
    rng = np.random.default_rng(0)
    j3 = rng.normal(0, 0.04, (21, 3)) + [0, 0, 0.5]
    K = np.array([[500, 0, 112], [0, 500, 112], [0, 0, 1.0]])
    uv = j3 @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    verts = rng.normal(0, 0.04, (778, 3)) + [0, 0, 0.5]
    base = dict(keypoints_2d=np.concatenate([uv, np.ones((21, 1))], 1), keypoints_3d=j3, vertices=verts)
    r = HandCrop(input_size=(64, 64), padding=1.5, test_mode=True)(dict(base))
    lo, hi = uv.min(0), uv.max(0)
    side = (hi - lo).max() * 1.5
    expect = (uv - (lo + hi) / 2) / side * 2          # normalised crop coordinates, independent formula
    np.testing.assert_allclose(r['joints_2d'][:, :2], expect, atol=1e-5)
    np.testing.assert_allclose(r['joints_3d'][:, :3], j3 - j3[0], atol=1e-6)
    np.testing.assert_allclose(r['vertices'], verts - j3[0], atol=1e-6)
    # rotation: 2D normalised coordinates and 3D x, y turn together (counter-clockwise as displayed)
    crop = HandCrop(input_size=(64, 64), padding=1.5, rot_std=30.0, rot_prob=1.0)
    np.random.seed(1)
    rr = crop(dict(base))
    a = np.deg2rad(rr['crop_rotation'])
    assert abs(a) > 1e-3
    Rm = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    np.testing.assert_allclose(rr['joints_2d'][:, :2], expect @ Rm.T, atol=1e-5)
    np.testing.assert_allclose(rr['joints_3d'][:, :2], (j3 - j3[0])[:, :2] @ Rm.T, atol=1e-6)


def test_toy_freihand_layout_and_bad_input(hands, tmp_path):
    fh = hands['freihand']
    ds = FreiHANDDataset(fh, split='training', version_stride=4)
    assert len(ds) == 16
    it = ds[5]        # version 'hom' of sample 1
    assert it['id'] == 1 and it['img_path'].endswith('00000005.jpg')
    mano = MANO(osp.join(osp.dirname(hands['mano']), 'mano'), fingertip_vertex_ids=TOY_TIPS)
    p = torch.from_numpy(it['mano_pose'][None])
    out = mano(betas=torch.from_numpy(it['mano_betas'][None]), global_orient=p[:, :3], hand_pose=p[:, 3:])
    # xyz = MANO joints21 of the stored parameters (+ a translation), verts likewise
    t = it['keypoints_3d'][0, :3] - mano.joints21(out)[0, 0].numpy()
    np.testing.assert_allclose(mano.joints21(out)[0].numpy() + t, it['keypoints_3d'][:, :3], atol=2e-5)
    np.testing.assert_allclose(out['vertices'][0].numpy() + t, it['vertices'], atol=2e-5)
    # uv_root / scale of training_mano.json (FreiHAND's model.py): joint 9 at depth focal / scale
    K = it['K']
    np.testing.assert_allclose(0.5 * (K[0, 0] + K[1, 1]) / it['mano_scale'], it['keypoints_3d'][9, 2], rtol=1e-5)
    ev = FreiHANDDataset(fh, split='evaluation')
    assert len(ev) == 3 and ev[2]['has_vertices'] == 1
    # bad input: lists of unequal length, a missing image
    import shutil
    bad = str(tmp_path / 'fh')
    shutil.copytree(fh, bad)
    xyz = json.load(open(osp.join(bad, 'training_xyz.json')))
    json.dump(xyz[:-1], open(osp.join(bad, 'training_xyz.json'), 'w'))
    with pytest.raises(FreiHANDDatasetError, match=r'training_xyz\.json: 3 samples, but .*training_K\.json has 4'):
        FreiHANDDataset(bad, split='training', version_stride=4).full_init()
    json.dump(xyz, open(osp.join(bad, 'training_xyz.json'), 'w'))
    os.remove(osp.join(bad, 'training', 'rgb', '00000006.jpg'))
    with pytest.raises(FreiHANDDatasetError, match=r'00000006\.jpg: image not found'):
        FreiHANDDataset(bad, split='training', version_stride=4).full_init()
