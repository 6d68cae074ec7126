"""SMPL / MANO wrappers, chumpy-free loading and its errors, joint regressors (generated toy data only).

The reference for the skinning is an independent numpy implementation of SMPL's linear blend skinning
written from the paper's equations (not smplx's code).
"""
import os
import os.path as osp
import pickle
import shutil

import numpy as np
import pytest
import torch

from mmpose_mpt.body_models import (H36M_J17_TO_J14, MANO, MANO_FINGERTIP_VERTEX_IDS, SMPL, SMPL_FACE_VERTEX_IDS,
                                    BodyModelFileError, BodyModelFileNotFoundError, MeshSampler,
                                    load_body_model_file, make_toy_body_models, validate_body_model)


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    return make_toy_body_models(str(tmp_path_factory.mktemp('toy')))


@pytest.fixture(scope='module')
def smpl(toy):
    return SMPL(toy['smpl_dir'], dtype=torch.float64)


def _plain(path):
    """The model arrays read with plain pickle (independent of our loader); sparse -> dense."""
    with open(path, 'rb') as fh:
        d = pickle.load(fh, encoding='latin1')
    return {k: (v.toarray() if hasattr(v, 'toarray') else v) for k, v in d.items()}


def _rodrigues(r):
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    k = r / np.maximum(theta, 1e-300)
    K = np.zeros(r.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    th = theta[..., None]
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def _np_lbs(a, betas, pose, pose_mean=None):
    """SMPL (Loper et al. 2015): shape + pose blend shapes, joints from the rest shape, kinematic chain,
    linear blend skinning. pose (J, 3) axis-angle."""
    nb = len(betas)
    v = a['v_template'] + a['shapedirs'][:, :, :nb] @ betas
    J = a['J_regressor'] @ v
    if pose_mean is not None:
        pose = pose + pose_mean.reshape(-1, 3)
    R = _rodrigues(pose)
    v = v + a['posedirs'] @ (R[1:] - np.eye(3)).reshape(-1)
    parents = a['kintree_table'][0].astype(np.int64)
    G = np.zeros((len(J), 4, 4))
    for i in range(len(J)):
        L = np.eye(4)
        L[:3, :3] = R[i]
        L[:3, 3] = J[i] - (J[parents[i]] if i else 0)
        G[i] = L if i == 0 else G[parents[i]] @ L
    A = G.copy()
    A[:, :3, 3] -= np.einsum('jab,jb->ja', G[:, :3, :3], J)
    T = np.einsum('vj,jab->vab', a['weights'], A)
    verts = np.einsum('vab,vb->va', T[:, :3, :3], v) + T[:, :3, 3]
    return verts, G[:, :3, 3]


# ------------------------------------------------------------------------------------------------
# SMPL
# ------------------------------------------------------------------------------------------------
def test_plain_smplx_loads_toy_and_rest_joints_are_regressed(toy):
    import smplx
    model = smplx.SMPL(model_path=toy['smpl_dir'])  # SMPL_NEUTRAL.pkl with a scipy.sparse J_regressor
    with torch.no_grad():
        out = model()
    a = _plain(toy['smpl_neutral'])
    expected = a['J_regressor'] @ a['v_template']
    np.testing.assert_allclose(out.joints[0, :24].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(out.vertices[0].numpy(), a['v_template'], atol=1e-5)


def test_wrapper_matches_independent_lbs_and_smplx(toy, smpl):
    import smplx
    rng = np.random.default_rng(0)
    B = 3
    betas = rng.normal(0, 1, (B, 10))
    pose = rng.normal(0, 0.4, (B, 24, 3))
    transl = rng.normal(0, 0.5, (B, 3))
    with torch.no_grad():
        out = smpl(betas=torch.tensor(betas), body_pose=torch.tensor(pose[:, 1:].reshape(B, 69)),
                   global_orient=torch.tensor(pose[:, 0]), transl=torch.tensor(transl))
    assert out['vertices'].shape == (B, 6890, 3) and out['joints'].shape == (B, 24, 3)
    assert out['vertices'].dtype == torch.float64 and torch.isfinite(out['vertices']).all()
    a = _plain(toy['smpl_neutral'])
    for b in range(B):
        verts, joints = _np_lbs(a, betas[b], pose[b])
        np.testing.assert_allclose(out['vertices'][b].numpy(), verts + transl[b], atol=1e-6)
        np.testing.assert_allclose(out['joints'][b].numpy(), joints + transl[b], atol=1e-6)
    # plain smplx (float32) agrees
    ref = smplx.SMPL(model_path=toy['smpl_dir'], batch_size=B)
    with torch.no_grad():
        r = ref(betas=torch.tensor(betas).float(), body_pose=torch.tensor(pose[:, 1:].reshape(B, 69)).float(),
                global_orient=torch.tensor(pose[:, 0]).float(), transl=torch.tensor(transl).float())
    np.testing.assert_allclose(out['vertices'].numpy(), r.vertices.numpy(), atol=2e-5)


def test_rest_pose_joints_equal_regressed_vertices_and_bones_are_rigid(smpl):
    torch.manual_seed(0)
    betas = torch.randn(4, 10, dtype=torch.float64)
    with torch.no_grad():
        rest = smpl(betas=betas)
        np.testing.assert_allclose(rest['joints'].numpy(), smpl.regress(rest['vertices'], 'smpl').numpy(), atol=1e-6)
        posed = smpl(betas=betas, body_pose=0.5 * torch.randn(4, 69, dtype=torch.float64),
                     global_orient=torch.randn(4, 3, dtype=torch.float64))
    assert torch.isfinite(posed['vertices']).all()
    parents = smpl.parents[1:]
    bone = lambda j: (j[:, 1:] - j[:, parents]).norm(dim=-1)  # noqa: E731
    np.testing.assert_allclose(bone(posed['joints']).numpy(), bone(rest['joints']).numpy(), atol=1e-6)
    # posing really moved the mesh (the test would pass trivially otherwise)
    assert (posed['vertices'] - rest['vertices']).norm(dim=-1).max() > 0.1


def test_rotation_matrix_input_and_broadcasting(smpl):
    torch.manual_seed(1)
    aa = 0.3 * torch.randn(2, 24, 3, dtype=torch.float64)
    from smplx.lbs import batch_rodrigues
    R = batch_rodrigues(aa.reshape(-1, 3)).reshape(2, 24, 3, 3)
    betas = torch.randn(1, 10, dtype=torch.float64)  # broadcast over the batch
    with torch.no_grad():
        a = smpl(betas=betas, body_pose=aa[:, 1:].reshape(2, -1), global_orient=aa[:, 0])
        b = smpl(betas=betas, body_pose=R[:, 1:], global_orient=R[:, 0], pose2rot=False)
        c = smpl(betas=betas[:, :4], body_pose=aa[:, 1:], global_orient=aa[:, 0])  # 4 betas: rest 0
        d = smpl(betas=torch.cat([betas[:, :4], torch.zeros(1, 6, dtype=torch.float64)], 1),
                 body_pose=aa[:, 1:], global_orient=aa[:, 0])
    np.testing.assert_allclose(a['vertices'].numpy(), b['vertices'].numpy(), atol=1e-6)
    np.testing.assert_allclose(c['vertices'].numpy(), d['vertices'].numpy(), atol=1e-12)
    with pytest.raises(ValueError, match='shape coefficients'):
        smpl(betas=torch.zeros(1, 11))
    with pytest.raises(ValueError, match='joint rotations'):
        smpl(body_pose=torch.zeros(1, 72))


def test_dtype_device_and_state_dict(toy):
    m = SMPL(toy['smpl_dir'])
    assert m.v_template.dtype == torch.float32
    assert len(m.state_dict()) == 0  # model arrays never go into checkpoints
    out = m(betas=torch.zeros(2, 10, dtype=torch.float64))  # inputs follow the module's dtype
    assert out['vertices'].dtype == torch.float32
    m64 = m.to(torch.float64)
    assert m64.regress(m64(betas=torch.zeros(1, 10))['vertices'], 'coco').dtype == torch.float64


def test_regressors(toy, smpl, tmp_path):
    torch.manual_seed(2)
    with torch.no_grad():
        v = smpl(betas=torch.randn(2, 10, dtype=torch.float64),
                 body_pose=0.3 * torch.randn(2, 69, dtype=torch.float64))['vertices']
    shapes = {n: tuple(smpl.regress(v, n).shape) for n in ('coco', 'h36m', 'lsp', 'smpl')}
    assert shapes == dict(coco=(2, 17, 3), h36m=(2, 17, 3), lsp=(2, 14, 3), smpl=(2, 24, 3))
    h36m = np.load(toy['h36m_regressor'])
    np.testing.assert_allclose(smpl.regress(v, 'h36m').numpy(), np.einsum('kv,bvc->bkc', h36m, v.numpy()))
    np.testing.assert_allclose(smpl.regress(v, 'lsp').numpy(), smpl.regress(v, 'h36m').numpy()[:, H36M_J17_TO_J14])
    coco = np.load(toy['coco_regressor'])  # the toy writes its own COCO regressor next to the model
    np.testing.assert_allclose(smpl.regress(v, 'coco').numpy(), np.einsum('kv,bvc->bkc', coco, v.numpy()))

    # without the regressor files: COCO from SMPL joints + face vertex ids, no Human3.6M
    d = tmp_path / 'bare'
    d.mkdir()
    shutil.copy(toy['smpl_neutral'], d / 'SMPL_NEUTRAL.pkl')
    bare = SMPL(str(d), dtype=torch.float64)
    assert not bare.has_h36m_regressor
    kp = bare.regress(v, 'coco').numpy()
    assert np.array_equal(kp[:, 0], v[:, SMPL_FACE_VERTEX_IDS['nose']].numpy())
    assert np.array_equal(kp[:, 2], v[:, SMPL_FACE_VERTEX_IDS['right_eye']].numpy())
    a = _plain(toy['smpl_neutral'])
    np.testing.assert_allclose(kp[:, 5], np.einsum('v,bvc->bc', a['J_regressor'][16], v.numpy()))  # l_shoulder
    np.testing.assert_allclose(kp[:, 16], np.einsum('v,bvc->bc', a['J_regressor'][8], v.numpy()))  # r_ankle
    with pytest.raises(BodyModelFileError, match='Human3.6M'):
        bare.regress(v, 'lsp')
    # explicit regressor paths, and a size mismatch names the file
    np.save(d / 'h36m.npy', h36m)
    assert SMPL(str(d), h36m_regressor=str(d / 'h36m.npy')).has_h36m_regressor
    np.save(d / 'bad.npy', np.zeros((17, 100)))
    with pytest.raises(BodyModelFileError, match=r'bad\.npy.*6890'):
        SMPL(str(d), coco_regressor=str(d / 'bad.npy'))
    np.save(d / 'rows.npy', np.zeros((14, 6890)))
    with pytest.raises(BodyModelFileError, match=r'rows\.npy.*14 rows'):
        SMPL(str(d), h36m_regressor=str(d / 'rows.npy'))
    with pytest.raises(BodyModelFileNotFoundError, match='nothere'):
        SMPL(str(d), h36m_regressor=str(d / 'nothere.npy'))
    # SPIN's J_regressor_h36m.npy order (left leg first) read with METRO's indices would swap the
    # legs of every LSP-14 joint: refused, also when found automatically next to the model
    spin_order = [0, 4, 5, 6, 1, 2, 3] + list(range(7, 17))
    np.save(d / 'J_regressor_h36m.npy', h36m[spin_order])
    with pytest.raises(BodyModelFileError, match=r'J_regressor_h36m\.npy.*left leg.*SPIN'):
        SMPL(str(d))
    mirrored = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]
    with pytest.raises(BodyModelFileError, match='legs and arms'):
        SMPL(str(d), h36m_regressor=h36m[mirrored])
    os.remove(d / 'J_regressor_h36m.npy')


def test_genders_and_formats(toy, tmp_path):
    heights = {}
    for g in ('neutral', 'male', 'female'):
        m = SMPL(toy['smpl_dir'], gender=g)
        heights[g] = float(m.v_template[:, 1].max() - m.v_template[:, 1].min())
    assert heights['female'] < heights['neutral'] < heights['male']
    assert SMPL(toy['smpl_dir'], gender=2).gender == 'female'  # dataset gender ids
    with pytest.raises(BodyModelFileError, match="unknown gender 'alien'"):
        SMPL(toy['smpl_dir'], gender='alien')
    # .npz model file (same arrays) gives the same meshes
    arrays = load_body_model_file(toy['smpl_neutral'])
    np.savez(tmp_path / 'SMPL_NEUTRAL.npz', **{k: np.asarray(v) for k, v in arrays.items()})
    a, b = SMPL(toy['smpl_neutral']), SMPL(str(tmp_path))
    assert b.model_file.endswith('.npz')
    pose = 0.3 * torch.randn(2, 69)
    np.testing.assert_array_equal(a(body_pose=pose)['vertices'].numpy(), b(body_pose=pose)['vertices'].numpy())


def test_mesh_samplings_of_the_toy(toy):
    s = MeshSampler(toy['mesh_downsampling'])
    assert s.num_vertices == [6890, 1723, 431]
    assert MeshSampler(toy['mano_downsampling']).num_vertices == [778, 195]


# ------------------------------------------------------------------------------------------------
# MANO
# ------------------------------------------------------------------------------------------------
def test_mano_toy_with_smplx_and_wrapper(toy):
    import smplx
    ref = smplx.MANO(model_path=toy['mano_dir'], use_pca=False, flat_hand_mean=False, batch_size=2)
    m = MANO(toy['mano_dir'], dtype=torch.float64)
    rng = np.random.default_rng(3)
    betas, hand_pose, go = rng.normal(0, 1, (2, 10)), rng.normal(0, 0.3, (2, 45)), rng.normal(0, 0.5, (2, 3))
    with torch.no_grad():
        out = m(betas=torch.tensor(betas), hand_pose=torch.tensor(hand_pose), global_orient=torch.tensor(go))
        r = ref(betas=torch.tensor(betas).float(), hand_pose=torch.tensor(hand_pose).float(),
                global_orient=torch.tensor(go).float())
    assert out['vertices'].shape == (2, 778, 3) and out['joints'].shape == (2, 21, 3)
    np.testing.assert_allclose(out['vertices'].numpy(), r.vertices.numpy(), atol=2e-5)
    a = _plain(toy['mano_right'])
    for b in range(2):
        pose = np.concatenate([go[b], hand_pose[b]]).reshape(16, 3)
        verts, joints = _np_lbs(a, betas[b], pose, np.concatenate([np.zeros(3), a['hands_mean']]))
        np.testing.assert_allclose(out['vertices'][b].numpy(), verts, atol=1e-6)
        np.testing.assert_allclose(out['joints'][b, :16].numpy(), joints, atol=1e-6)
        tips = verts[list(MANO_FINGERTIP_VERTEX_IDS.values())]
        np.testing.assert_allclose(out['joints'][b, 16:].numpy(), tips, atol=1e-6)
    # flat hand mean: zero pose is the template
    flat = MANO(toy['mano_right'], flat_hand_mean=True, dtype=torch.float64)
    np.testing.assert_allclose(flat()['vertices'][0].numpy(), a['v_template'], atol=1e-6)
    assert m.regress(out['vertices'], 'openpose').shape == (2, 21, 3)
    with pytest.raises(BodyModelFileError, match='MANO'):
        MANO(toy['smpl_neutral'])


# ------------------------------------------------------------------------------------------------
# Bad input: one clear error naming the file
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def model_arrays(toy):
    return load_body_model_file(toy['smpl_neutral'])


def _write(path, obj):
    with open(path, 'wb') as fh:
        pickle.dump(obj, fh, protocol=2)
    return str(path)


def test_missing_file(tmp_path):
    p = str(tmp_path / 'SMPL_NEUTRAL.pkl')
    with pytest.raises(BodyModelFileNotFoundError, match='not found') as e:
        SMPL(p)
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, ValueError) and p in str(e.value)
    with pytest.raises(BodyModelFileNotFoundError, match=r'no SMPL model file found \(tried SMPL_MALE\.pkl'):
        SMPL(str(tmp_path), gender='male')


@pytest.mark.parametrize('case', ['txt', 'text_as_pkl', 'truncated', 'list', 'empty_npz'])
def test_unreadable_files(tmp_path, toy, case):
    if case == 'txt':
        p = tmp_path / 'model.txt'
        p.write_text('hello')
        msg = 'unsupported body-model file type'
    elif case == 'text_as_pkl':
        p = tmp_path / 'SMPL_NEUTRAL.pkl'
        p.write_text('this is not a pickle')
        msg = 'not a valid pickle'
    elif case == 'truncated':
        p = tmp_path / 'SMPL_NEUTRAL.pkl'
        with open(toy['smpl_neutral'], 'rb') as fh:
            p.write_bytes(fh.read()[:100000])
        msg = 'truncated'
    elif case == 'list':
        p = _write(tmp_path / 'SMPL_NEUTRAL.pkl', [1, 2, 3])
        msg = 'not a body-model file'
    else:
        p = tmp_path / 'SMPL_NEUTRAL.npz'
        np.savez(p, something=np.zeros(3))
        msg = 'missing key'
    with pytest.raises(BodyModelFileError, match=msg) as e:
        SMPL(str(p))
    assert str(p) in str(e.value)


@pytest.mark.parametrize('change,msg', [
    (lambda a: a.pop('weights'), r"missing key\(s\) \['weights'\]"),
    (lambda a: a.update(v_template=a['v_template'][:, :2]), r"'v_template' must be \(V, 3\)"),
    (lambda a: a.update(weights=a['weights'][:, :20]), r"'weights' must have shape \(6890, 24\)"),
    (lambda a: a.update(posedirs=a['posedirs'][..., :100]), r"'posedirs' must be"),
    (lambda a: a.update(f=a['f'] + 7000), r"'f' indexes vertices outside"),
    (lambda a: a.update(J_regressor=a['J_regressor'][:, :100]), r"'J_regressor' must be \(J, V=6890\)"),
    (lambda a: a.update(shapedirs='abc'), r"'shapedirs' must be a numeric array"),
])
def test_invalid_model_contents(tmp_path, model_arrays, change, msg):
    a = dict(model_arrays)
    change(a)
    p = _write(tmp_path / 'SMPL_NEUTRAL.pkl', a)
    with pytest.raises(BodyModelFileError, match=msg) as e:
        SMPL(p)
    assert p in str(e.value)


def test_validate_reports_sizes(model_arrays):
    info = validate_body_model(model_arrays, 'x', kind='smpl')
    assert info == dict(num_vertices=6890, num_joints=24, num_betas=10, num_faces=len(model_arrays['f']),
                        num_pose_basis=207)
    with pytest.raises(BodyModelFileError, match='MANO'):
        validate_body_model(model_arrays, 'x', kind='mano')


def test_tools_exit_cleanly_on_bad_input(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'convert_body_model', osp.join(osp.dirname(__file__), '..', 'tools', 'convert_body_model.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    missing = str(tmp_path / 'nope.pkl')
    assert tool.main([missing, str(tmp_path / 'out.npz')]) == 1
    err = capsys.readouterr().err
    assert missing in err and 'Traceback' not in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / 'out.npz')


@pytest.mark.parametrize('dtype,tol', [(torch.float16, 5e-3), (torch.bfloat16, 3e-2)])
def test_half_precision_models_stay_finite(toy, dtype, tol):
    """smplx's Rodrigues epsilon underflows in float16 (NaN for zero rotations); the wrappers avoid it."""
    torch.manual_seed(4)
    betas, pose = torch.randn(2, 10), 0.3 * torch.randn(2, 69)
    for cls, path, kw in ((SMPL, toy['smpl_dir'], dict(betas=betas, body_pose=pose)),
                          (MANO, toy['mano_dir'], dict(betas=betas, hand_pose=pose[:, :45]))):
        ref = cls(path)(**kw)
        out = cls(path).to(dtype)(**kw)
        assert out['vertices'].dtype == dtype and torch.isfinite(out['vertices']).all()
        np.testing.assert_allclose(out['vertices'].float().numpy(), ref['vertices'].numpy(), atol=tol)
        np.testing.assert_allclose(out['joints'].float().numpy(), ref['joints'].numpy(), atol=tol)
