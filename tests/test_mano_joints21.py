"""MANO.joints21: the 21 hand joints in FreiHAND order, on the generated toy MANO hand.

The expected joints are built here the way FreiHAND's code does it (utils/mano_utils.py: the MANO id ->
FreiHAND id ``mapping`` dict and the ``kpId2vertices`` tips; utils/model.py: the posed skeleton of
``global_rigid_transformation``), with a numpy MANO forward written here (Rodrigues, the kinematic
chain, shape / pose blend shapes, LBS) -- not with the project's layer.
"""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch

from mmpose_mpt.body_models import (FREIHAND21_NAMES, FREIHAND_FINGERTIP_VERTEX_IDS, MANO,
                                    MANO_FINGERTIP_VERTEX_IDS, build_toy_mano)
from mmpose_mpt.body_models.toy_body_model import toy_mano_rest_joints

# freihand utils/mano_utils.py get_keypoints_from_mesh_ch: MANO joint id -> FreiHAND keypoint id
FREIHAND_MAPPING = {0: 0, 1: 5, 2: 6, 3: 7, 4: 9, 5: 10, 6: 11, 7: 17, 8: 18, 9: 19, 10: 13, 11: 14, 12: 15,
                    13: 1, 14: 2, 15: 3}
TIP_KEYPOINTS = {'thumb': 4, 'index': 8, 'middle': 12, 'ring': 16, 'pinky': 20}
FINGERS = ('thumb', 'index', 'middle', 'ring', 'pinky')


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    arrays = build_toy_mano()
    path = str(tmp_path_factory.mktemp('mano') / 'MANO_RIGHT.pkl')
    with open(path, 'wb') as fh:
        pickle.dump(arrays, fh, protocol=2)
    plain = {k: (v.toarray() if hasattr(v, 'toarray') else v) for k, v in arrays.items()}
    return path, plain


def rodrigues(r):
    theta = np.linalg.norm(r)
    if theta < 1e-12:
        return np.eye(3)
    k = r / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def np_mano(a, betas, fullpose):
    """MANO forward (one hand): posed vertices (778, 3), posed skeleton joints (16, 3)."""
    parents = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
    v_shaped = a['v_template'] + a['shapedirs'][:, :, :len(betas)] @ betas
    J = a['J_regressor'] @ v_shaped                          # MANO ready_arguments: J from v_shaped
    pose = fullpose.reshape(16, 3)
    R = [rodrigues(p) for p in pose]
    pose_feat = np.concatenate([(R[k] - np.eye(3)).ravel() for k in range(1, 16)])
    v_posed = v_shaped + a['posedirs'] @ pose_feat
    G = [None] * 16
    for k in range(16):
        local = np.eye(4)
        local[:3, :3] = R[k]
        local[:3, 3] = J[k] - (J[parents[k]] if k else 0)
        G[k] = local if k == 0 else G[parents[k]] @ local
    jtr = np.stack([g[:3, 3] for g in G])                    # freihand: Jtr = A_global[:, :3, 3]
    A = []
    for k in range(16):
        g = G[k].copy()
        g[:3, 3] -= g[:3, :3] @ J[k]
        A.append(g)
    T = np.einsum('vk,kij->vij', a['weights'], np.stack(A))
    verts = np.einsum('vij,vj->vi', T[:, :3, :3], v_posed) + T[:, :3, 3]
    return verts, jtr


def freihand_keypoints(joints16, verts, tips=FREIHAND_FINGERTIP_VERTEX_IDS):
    """get_keypoints_from_mesh_ch: 16 joints through the mapping dict, tips from named vertices."""
    out = np.zeros((21, 3))
    for mano_id, my_id in FREIHAND_MAPPING.items():
        out[my_id] = joints16[mano_id]
    for name, kp in TIP_KEYPOINTS.items():
        out[kp] = verts[tips[name]]
    return out


def test_names_and_order():
    assert FREIHAND21_NAMES[0] == 'wrist'
    for f, finger in enumerate(FINGERS):
        assert FREIHAND21_NAMES[1 + 4 * f:5 + 4 * f] == tuple(f'{finger}{i}' for i in range(1, 5))
    # the fingertip ids cited from smplx/vertex_ids.py and freihand/utils/mano_utils.py
    assert MANO_FINGERTIP_VERTEX_IDS == dict(thumb=744, index=320, middle=443, ring=554, pinky=671)
    assert FREIHAND_FINGERTIP_VERTEX_IDS == dict(thumb=744, index=320, middle=443, ring=555, pinky=672)


def test_rest_hand_order_chains_and_tips(toy):
    """Flat rest hand: joints21 = the toy's rest skeleton in FreiHAND order; each finger chain runs
    outward from the wrist; the tips are the named fingertip vertices (the toy's finger ends)."""
    path, a = toy
    m = MANO(path, flat_hand_mean=True, dtype=torch.float64)
    with torch.no_grad():
        out = m()
        j_out = m.joints21(out)[0].numpy()
        j_verts = m.joints21(out['vertices'])[0].numpy()
    assert j_out.shape == (21, 3)
    rest, tip_pos = toy_mano_rest_joints()
    exp = freihand_keypoints(rest, a['v_template'], MANO_FINGERTIP_VERTEX_IDS)
    np.testing.assert_allclose(j_out, exp, atol=1e-9)
    np.testing.assert_allclose(j_verts, exp, atol=1e-9)  # unposed: regressed = skeleton
    for name, kp in TIP_KEYPOINTS.items():
        np.testing.assert_allclose(j_out[kp], tip_pos[name], atol=1e-9)  # the toy's fingertip by name
    wrist = j_out[0]
    for f in range(5):
        d = np.linalg.norm(j_out[1 + 4 * f:5 + 4 * f] - wrist, axis=1)
        assert np.all(np.diff(d) > 0.005), (FINGERS[f], d)
    # finger identity on the toy (fingers along -x, thumb towards +z): the thumb tip is the most +z,
    # then index, middle, ring, pinky across the palm
    tips_z = j_out[[4, 8, 12, 16, 20], 2]
    assert np.all(np.diff(tips_z) < 0), tips_z


def test_posed_matches_freihand_construction(toy):
    """Dict input: posed skeleton + tips (FreiHAND's training_xyz); vertices input: J_regressor on
    the posed mesh (METRO). Both against the numpy MANO forward; the two differ under pose."""
    path, a = toy
    m = MANO(path, dtype=torch.float64)  # flat_hand_mean=False: hand_pose relative to hands_mean
    rng = np.random.default_rng(0)
    poses = rng.normal(scale=0.3, size=(3, 48))  # FreiHAND's training_mano.json layout: 3 + 45
    betas = rng.normal(scale=1.0, size=(3, 10))
    transl = rng.normal(scale=0.1, size=(3, 3)) + [0, 0, 0.6]
    with torch.no_grad():
        out = m(betas=torch.tensor(betas), global_orient=torch.tensor(poses[:, :3]),
                hand_pose=torch.tensor(poses[:, 3:]), transl=torch.tensor(transl))
        j_out = m.joints21(out).numpy()
        j_verts = m.joints21(out['vertices']).numpy()
    assert j_out.shape == (3, 21, 3)
    for b in range(3):
        fullpose = np.concatenate([poses[b, :3], poses[b, 3:] + a['hands_mean']])
        verts, jtr = np_mano(a, betas[b], fullpose)
        verts, jtr = verts + transl[b], jtr + transl[b]
        np.testing.assert_allclose(out['vertices'][b].numpy(), verts, atol=1e-9)
        np.testing.assert_allclose(j_out[b], freihand_keypoints(jtr, verts, MANO_FINGERTIP_VERTEX_IDS),
                                   atol=1e-9)
        np.testing.assert_allclose(j_verts[b],
                                   freihand_keypoints(a['J_regressor'] @ verts, verts,
                                                      MANO_FINGERTIP_VERTEX_IDS), atol=1e-9)
    assert np.abs(j_out[:, :, :] - j_verts).max() > 1e-4  # skeleton vs regressed: not the same


def test_flat_hand_mean(toy):
    """flat_hand_mean=False (FreiHAND's): zero hand pose = the hands_mean curl; the same hand as
    flat_hand_mean=True with hand_pose = hands_mean."""
    path, a = toy
    mean = torch.tensor(a['hands_mean'])[None]
    curl = MANO(path, dtype=torch.float64)
    flat = MANO(path, flat_hand_mean=True, dtype=torch.float64)
    with torch.no_grad():
        j_curl = curl.joints21(curl())
        j_flat_mean = flat.joints21(flat(hand_pose=mean))
        j_flat = flat.joints21(flat())
    np.testing.assert_allclose(j_curl.numpy(), j_flat_mean.numpy(), atol=1e-12)
    moved = torch.linalg.norm(j_curl - j_flat, dim=-1)[0]
    assert moved[0] < 1e-12 and moved[[4, 8, 12, 16, 20]].min() > 0.005  # wrist fixed, tips curl


def test_freihand_fingertip_ids_and_errors(toy):
    path, _ = toy
    m = MANO(path, fingertip_vertex_ids=list(FREIHAND_FINGERTIP_VERTEX_IDS.values()), dtype=torch.float64)
    with torch.no_grad():
        out = m(hand_pose=torch.full((1, 45), 0.1))
        j = m.joints21(out)
    ids = [FREIHAND_FINGERTIP_VERTEX_IDS[f] for f in FINGERS]
    np.testing.assert_array_equal(j[0, [4, 8, 12, 16, 20]].numpy(), out['vertices'][0, ids].numpy())
    with pytest.raises(ValueError, match='joints21'):
        m.joints21({'vertices': out['vertices']})
    with pytest.raises(ValueError, match='778'):
        m.joints21(out['vertices'][:, :700])
    assert osp.isfile(path)
