"""The generated toy (stand-in) SMPL / MANO models: format, mesh validity, human-likeness, files."""
import importlib.util
import os
import os.path as osp
import pickle
import time

import numpy as np
import pytest
import scipy.sparse as sp

from mmpose_mpt.body_models import (SMPL_FACE_VERTEX_IDS, build_toy_mano, build_toy_smpl, make_toy_body_models,
                                    toy_body_model_paths)
from mmpose_mpt.body_models import toy_body_model as toy_mod


@pytest.fixture(scope='module')
def smpl():
    return build_toy_smpl('neutral')


@pytest.fixture(scope='module')
def mano():
    return build_toy_mano()


def _check_mesh(V, F):
    """Closed, consistently oriented (outward) triangle mesh."""
    F = F.astype(np.int64)
    assert F.min() >= 0 and F.max() < len(V) and len(np.unique(F)) == len(V)  # no unused vertex
    und = np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]]), axis=1)
    _, counts = np.unique(und, axis=0, return_counts=True)
    assert np.all(counts == 2), 'every edge is shared by exactly two triangles (closed)'
    directed = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed), 'neighbours traverse shared edges oppositely'
    area = np.linalg.norm(np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]]), axis=1)
    assert area.min() > 0
    volume = np.einsum('ij,ij->i', V[F[:, 0]], np.cross(V[F[:, 1]], V[F[:, 2]])).sum() / 6
    assert volume > 0, 'outward normals'
    return volume


def test_smpl_format(smpl):
    assert smpl['v_template'].shape == (6890, 3) and smpl['v_template'].dtype == np.float64
    assert smpl['f'].dtype == np.uint32 and smpl['f'].shape[1] == 3
    assert sp.isspmatrix_csc(smpl['J_regressor']) and smpl['J_regressor'].shape == (24, 6890)
    assert smpl['weights'].shape == (6890, 24)
    assert smpl['shapedirs'].shape == (6890, 3, 10) and smpl['posedirs'].shape == (6890, 3, 207)
    kt = smpl['kintree_table']
    assert kt.shape == (2, 24) and kt.dtype == np.uint32 and kt[0, 0] == 4294967295
    assert list(kt[0, 1:]) == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
    assert smpl['bs_style'] == 'lbs' and smpl['bs_type'] == 'lrotmin'
    assert np.all(np.isfinite(smpl['posedirs'])) and np.abs(smpl['posedirs']).max() < 0.01  # small correctives


def test_smpl_regressor_and_weights(smpl):
    R = smpl['J_regressor'].toarray()
    V = smpl['v_template']
    assert R.min() >= 0 and np.allclose(R.sum(1), 1)
    np.testing.assert_allclose(R @ V, smpl['J'], atol=1e-12)
    np.testing.assert_allclose(smpl['J'], toy_mod.toy_smpl_rest_joints(), atol=1e-12)  # designed skeleton
    # each joint is regressed from vertices around it (not far away)
    for j in range(24):
        nz = R[j] > 1e-6
        assert np.linalg.norm(V[nz] - smpl['J'][j], axis=1).max() < 0.25
    W = smpl['weights']
    assert W.min() >= 0 and np.allclose(W.sum(1), 1)
    # skinning follows the body part: hands move with the wrists, feet with the ankles
    assert W[2445].argmax() in (20, 22) and W[6617].argmax() in (8, 11)
    assert W[332].argmax() in (12, 15)


def test_smpl_mesh_is_closed_and_outward(smpl):
    V, F = smpl['v_template'], smpl['f']
    volume = _check_mesh(V, F)
    assert 0.04 < volume < 0.12  # m^3 (a 70 kg person is ~0.07; parts overlap a little)


def test_toy_figure_is_human_like(smpl):
    V, J = smpl['v_template'], smpl['J']
    height = V[:, 1].max() - V[:, 1].min()
    assert 1.5 < height < 2.0
    assert J[15, 1] > J[12, 1] > J[9, 1] > J[0, 1] > J[4, 1] > J[7, 1]  # head > neck > spine > pelvis > knee > ankle
    assert V[:, 1].argmax() in np.nonzero(np.linalg.norm(V - J[15], axis=1) < 0.25)[0]  # top is the head
    mirror = toy_mod.SMPL_MIRROR
    np.testing.assert_allclose(J[mirror] * [-1, 1, 1], J, atol=1e-12)  # left/right symmetric
    assert np.all(J[[1, 4, 7, 13, 16, 18, 20], 0] > 0)  # left = +x like SMPL
    span = V[:, 0].max() - V[:, 0].min()
    assert 0.9 * height < span < 1.1 * height  # T-pose arm span ~ height
    # face landmarks: nose in front, eyes above it on their sides, ears on the sides
    nose, leye, reye, lear = (V[SMPL_FACE_VERTEX_IDS[k]] for k in ('nose', 'left_eye', 'right_eye', 'left_ear'))
    assert nose[2] > J[15, 2] + 0.08 and leye[1] > nose[1] and leye[0] > 0 > reye[0] and lear[0] > 0.07
    # toes in front of heels, fingertips beyond the wrists
    assert V[3216, 2] > V[3387, 2] + 0.2 and V[2445, 0] > J[20, 0] + 0.1 and V[5905, 0] < J[21, 0] - 0.1


def test_shape_space_and_genders(smpl):
    V, S, R = smpl['v_template'], smpl['shapedirs'], smpl['J_regressor'].toarray()

    def height(b):
        v = V + S @ b
        return v[:, 1].max() - v[:, 1].min()

    e = np.eye(10)
    dh = height(e[0]) - height(np.zeros(10))
    assert 0.02 < dh < 0.1  # beta 0 ~ size: a few cm per unit
    assert height(e[2]) > height(np.zeros(10))  # longer legs
    arm = lambda b: np.linalg.norm(R[20] @ (V + S @ b) - R[16] @ (V + S @ b))  # noqa: E731
    assert arm(e[5]) > arm(np.zeros(10)) + 0.01  # longer arms
    m, f = build_toy_smpl('male'), build_toy_smpl('female')
    assert np.ptp(f['v_template'][:, 1]) < height(np.zeros(10)) < np.ptp(m['v_template'][:, 1])
    for g in (m, f):  # same topology / rig, different template
        assert np.array_equal(g['f'], smpl['f']) and np.array_equal(g['weights'], smpl['weights'])
        np.testing.assert_allclose(g['J_regressor'] @ g['v_template'], g['J'], atol=1e-12)
        np.testing.assert_allclose(g['J'][toy_mod.SMPL_MIRROR] * [-1, 1, 1], g['J'], atol=1e-9)


def test_mano_format(mano):
    V = mano['v_template']
    assert V.shape == (778, 3) and mano['weights'].shape == (778, 16)
    assert mano['J_regressor'].shape == (16, 778) and mano['kintree_table'][0, 0] == 4294967295
    assert mano['shapedirs'].shape == (778, 3, 10) and mano['posedirs'].shape == (778, 3, 135)
    hc = mano['hands_components']
    assert hc.shape == (45, 45) and np.allclose(hc @ hc.T, np.eye(45))
    assert mano['hands_mean'].shape == (45, ) and mano['hands_coeffs'].shape[1] == 45
    _check_mesh(V, mano['f'])
    R = mano['J_regressor'].toarray()
    assert R.min() >= 0 and np.allclose(R.sum(1), 1)
    np.testing.assert_allclose(R @ V, mano['J'], atol=1e-12)
    # each fingertip vertex is its finger's farthest point from the wrist, ~15-20 cm hand length
    wrist = mano['J'][0]
    for name, vid in toy_mod.MANO_TIP_IDS.items():
        first = toy_mod._FINGERS[name][0]
        d_tip = np.linalg.norm(V[vid] - wrist)
        assert d_tip > np.linalg.norm(mano['J'][first + 2] - wrist)
    assert 0.15 < np.linalg.norm(V[toy_mod.MANO_TIP_IDS['middle']] - wrist) < 0.22


def test_generation_is_fast_and_deterministic():
    toy_mod._toy_smpl_neutral.cache_clear()
    toy_mod._toy_mano.cache_clear()
    t0 = time.time()
    a, ma = build_toy_smpl(), build_toy_mano()
    assert time.time() - t0 < 5.0
    toy_mod._toy_smpl_neutral.cache_clear()
    toy_mod._toy_mano.cache_clear()
    b, mb = build_toy_smpl(), build_toy_mano()
    for x, y in ((a, b), (ma, mb)):
        for k in x:
            vx, vy = (v.toarray() if sp.issparse(v) else v for v in (x[k], y[k]))
            assert np.array_equal(vx, vy), k
    with pytest.raises(ValueError, match='unknown gender'):
        build_toy_smpl('x')


def test_make_toy_body_models_layout_and_idempotence(tmp_path):
    paths = make_toy_body_models(str(tmp_path))
    assert paths == toy_body_model_paths(str(tmp_path))
    expected = ['J_regressor_h36m_correct.npy', 'mano/MANO_RIGHT.pkl', 'mano_downsampling.npz',
                'mesh_downsampling.npz', 'smpl/J_regressor_coco.npy', 'smpl/SMPL_FEMALE.pkl',
                'smpl/SMPL_MALE.pkl', 'smpl/SMPL_NEUTRAL.pkl']
    found = sorted(osp.relpath(osp.join(d, f), paths['body_models']).replace(os.sep, '/')
                   for d, _, fs in os.walk(paths['body_models']) for f in fs)
    assert found == expected
    files = [osp.join(paths['body_models'], f) for f in expected]
    mtimes = [os.stat(f).st_mtime_ns for f in files]
    t0 = time.time()
    make_toy_body_models(str(tmp_path))  # nothing to do
    assert time.time() - t0 < 3.0
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes
    # a damaged file is rewritten, the others kept
    with open(paths['smpl_male'], 'wb') as fh:
        fh.write(b'garbage')
    with open(paths['mesh_downsampling'], 'wb') as fh:
        fh.write(b'garbage')
    make_toy_body_models(str(tmp_path))
    with open(paths['smpl_male'], 'rb') as fh:
        assert pickle.load(fh, encoding='latin1')['v_template'].shape == (6890, 3)
    from mmpose_mpt.body_models import MeshSampler
    assert MeshSampler(paths['mesh_downsampling']).num_vertices == [6890, 1723, 431]
    assert os.stat(paths['smpl_neutral']).st_mtime_ns == mtimes[expected.index('smpl/SMPL_NEUTRAL.pkl')]
    # regressors written by the toy: the COCO nose lies near SMPL's nose vertex, H36M head above its nose
    coco, h36m = np.load(paths['coco_regressor']), np.load(paths['h36m_regressor'])
    V = build_toy_smpl()['v_template']
    assert np.linalg.norm(coco[0] @ V - V[332]) < 0.01
    assert (h36m[10] @ V)[1] > (h36m[9] @ V)[1] > (h36m[8] @ V)[1] > (h36m[0] @ V)[1]
    assert np.allclose(coco.sum(1), 1) and np.allclose(h36m.sum(1), 1) and coco.min() >= 0 and h36m.min() >= 0


def test_cli(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'make_toy_body_model', osp.join(osp.dirname(__file__), '..', 'tools', 'make_toy_body_model.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert 'stand-in' in (tool.__doc__ or '').lower()
    with pytest.raises(SystemExit):
        tool.main(['--help'])
    assert 'STAND-INS' in capsys.readouterr().out
    assert tool.main([str(tmp_path / 'out')]) == 0
    assert osp.isfile(tmp_path / 'out' / 'body_models' / 'smpl' / 'SMPL_NEUTRAL.pkl')
