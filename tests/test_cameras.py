"""Virtual cameras of MPT (Sec. 3.1, Appendix A/B): H36M S1 cameras, rig, projection, top-down crop
and the weak-perspective camera.

Expected values are computed independently of the code under test: hand-computed numbers, the
published H36M numbers written out again, scipy rotations, mmpose's own top-down transforms and a
closed-form crop.
"""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import mmpose_mpt  # noqa: F401
from mmpose_mpt.cameras import (H36M_S1_CAMERA_PARAMS, H36M_S1_CAMERAS, VALID_NUM_VIEWS,
                                VirtualCameraError, VirtualCameraRig, apply_warp, h36m_s1_cameras,
                                project_points, quaternion_to_matrix, topdown_crop,
                                weak_perspective_project)

# Published Human3.6M S1 numbers (VideoPose3D common/h36m_dataset.py), written out again:
# id, camera centre (metres, z-up world), focal length (px), principal point (px), (w, h),
# camera→world quaternion (w, x, y, z).
PUBLISHED = [
    ('54138969', (1.841107, 4.955285, 1.563445), (1145.0494, 1143.7811), (512.5415, 515.4515),
     (1000, 1002), (0.1407056, -0.1500702, -0.7552408, 0.6223280)),
    ('55011271', (1.761279, -5.078007, 1.606265), (1149.6757, 1147.5917), (508.8486, 508.0649),
     (1000, 1000), (0.6157188, -0.7648363, -0.1483383, 0.1179474)),
    ('58860488', (-1.846778, 5.215046, 1.491972), (1149.1407, 1148.7990), (519.8159, 501.4026),
     (1000, 1000), (0.1465147, -0.1464785, 0.7653024, -0.6094176)),
    ('60457274', (-1.794790, -3.722699, 1.574893), (1145.5114, 1144.7739), (514.9682, 501.8820),
     (1000, 1002), (0.5834008, -0.7853162, 0.1454882, -0.1474959)),
]
PELVIS_HEIGHT = 0.92
HEAD = np.array([0.0, 0.0, 0.7])      # a standing person's head, pelvis at the origin (z-up)
FEET = np.array([0.0, 0.0, -0.92])    # the floor under the pelvis

# A standing person's COCO-17 joints in the canonical frame (z-up, pelvis at the origin), metres.
COCO17_STANDING = np.array([
    [0.00, 0.08, 0.62],                       # nose
    [-0.03, 0.06, 0.66], [0.03, 0.06, 0.66],  # eyes
    [-0.07, 0.00, 0.64], [0.07, 0.00, 0.64],  # ears
    [-0.18, 0.00, 0.45], [0.18, 0.00, 0.45],  # shoulders
    [-0.22, 0.02, 0.18], [0.22, 0.02, 0.18],  # elbows
    [-0.24, 0.05, -0.06], [0.24, 0.05, -0.06],  # wrists
    [-0.10, 0.00, -0.02], [0.10, 0.00, -0.02],  # hips
    [-0.11, 0.02, -0.47], [0.11, 0.02, -0.47],  # knees
    [-0.11, 0.00, -0.86], [0.11, 0.00, -0.86],  # ankles
])


def _scipy_world_to_cam(q):
    w, x, y, z = q
    return Rotation.from_quat([x, y, z, w]).inv().as_matrix()  # scipy: scalar last


def _to_cam(rig, v, X):
    return np.asarray(X, np.float64) @ rig.R[v].T + rig.t[v]


def _pinhole(X_cam, f, c):
    return np.array([f[0] * X_cam[0] / X_cam[2] + c[0], f[1] * X_cam[1] / X_cam[2] + c[1]])


def _azimuth(p):
    return np.arctan2(p[1], p[0])


# ------------------------------------------------------------------------------------ projection
def test_project_points_hand_computed_numpy():
    pts = np.array([[0.5, -0.25, 2.0], [0.0, 0.0, 4.0], [-1.0, 2.0, 5.0]])
    f = np.array([1000.0, 1100.0])
    c = np.array([500.0, 480.0])
    out = project_points(pts, f, c)
    assert isinstance(out, np.ndarray) and out.shape == (3, 2)
    # 1000*0.5/2+500 = 750, 1100*-0.25/2+480 = 342.5; principal point; 1000*-1/5+500, 1100*2/5+480
    np.testing.assert_allclose(out, [[750.0, 342.5], [500.0, 480.0], [300.0, 920.0]], atol=1e-9)


def test_project_points_torch_batched_and_behind_camera():
    pts = torch.tensor([[[0.5, -0.25, 2.0], [1.0, 1.0, 1.0]],
                        [[0.3, 0.6, 3.0], [0.0, 0.0, -2.0]]], dtype=torch.float64)
    f = torch.tensor([[1000.0, 1100.0], [800.0, 900.0]], dtype=torch.float64)
    c = torch.tensor([[500.0, 480.0], [100.0, 200.0]], dtype=torch.float64)
    out = project_points(pts, f, c)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2, 2) and out.dtype == torch.float64
    np.testing.assert_allclose(out[0, 0].numpy(), [750.0, 342.5])
    np.testing.assert_allclose(out[0, 1].numpy(), [1500.0, 1580.0])
    np.testing.assert_allclose(out[1, 0].numpy(), [180.0, 380.0])  # 800*0.1+100, 900*0.2+200
    assert torch.isfinite(out[1, 1]).all()  # behind the camera: finite; caller marks it invisible


def test_weak_perspective_hand_computed():
    pts = torch.tensor([[[0.1, -0.2, 5.0], [0.0, 0.3, -1.0]],
                        [[-0.4, 0.5, 0.0], [1.0, 1.0, 1.0]]])
    cam = torch.tensor([[2.0, 0.1, -0.1], [0.5, -1.0, 0.0]])
    # s * (X_xy + (tx, ty)), depth ignored
    expected = torch.tensor([[[0.4, -0.6], [0.2, 0.4]],
                             [[-0.7, 0.25], [0.0, 0.5]]])
    out = weak_perspective_project(pts, cam)
    assert out.shape == (2, 2, 2)
    torch.testing.assert_close(out, expected)


# ----------------------------------------------------------------------------- H36M S1 cameras
def test_quaternion_to_matrix_matches_scipy_and_hand_cases():
    rng = np.random.default_rng(0)
    for q in [p['orientation'] for p in H36M_S1_CAMERA_PARAMS] + list(rng.normal(size=(20, 4))):
        w, x, y, z = q
        np.testing.assert_allclose(quaternion_to_matrix(q), Rotation.from_quat([x, y, z, w]).as_matrix(),
                                   atol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix((1.0, 0.0, 0.0, 0.0)), np.eye(3), atol=1e-15)
    c = np.cos(np.pi / 4)  # 90° about z maps x to y
    np.testing.assert_allclose(quaternion_to_matrix((c, 0, 0, c)) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def _videopose3d_world_to_camera(X, q, C):
    """VideoPose3D common/camera.py world_to_camera with common/quaternion.py qrot/qinverse, in numpy."""
    q = np.asarray(q, np.float64)
    q_inv = np.concatenate([q[:1], -q[1:]])
    v = np.asarray(X, np.float64) - C
    u = q_inv[1:]
    uv = np.cross(u, v)
    uuv = np.cross(u, uv)
    return v + 2 * (q_inv[0] * uv + uuv)


def test_h36m_cameras_match_published_numbers_and_convention():
    assert H36M_S1_CAMERAS is H36M_S1_CAMERA_PARAMS
    cams = h36m_s1_cameras()
    assert len(cams) == 4
    for cam, raw, (cid, centre, f, c, size, q) in zip(cams, H36M_S1_CAMERA_PARAMS, PUBLISHED):
        assert cam['id'] == raw['id'] == cid
        np.testing.assert_allclose(cam['C'], centre, atol=1e-6)
        np.testing.assert_allclose(cam['f'], f, atol=1e-4)
        np.testing.assert_allclose(cam['c'], c, atol=1e-4)
        np.testing.assert_array_equal(cam['image_size'], size)
        np.testing.assert_allclose(raw['orientation'], q, atol=1e-7)
        assert cam['k'].shape == (3, ) and cam['p'].shape == (2, )
        # R is world→camera, the inverse of the camera→world quaternion, and it reproduces
        # VideoPose3D's world_to_camera on a few world points.
        np.testing.assert_allclose(cam['R'], _scipy_world_to_cam(q), atol=1e-6)
        X = np.array([[0.0, 0.0, 0.9], [1.0, -2.0, 0.0], [3.0, 1.0, 2.0]])
        for x in X:
            np.testing.assert_allclose(cam['R'] @ (x - cam['C']),
                                       _videopose3d_world_to_camera(x, raw['orientation'], cam['C']),
                                       atol=1e-6)  # published quaternions are unit to ~1e-8


def test_h36m_cameras_look_at_the_room_centre_upright():
    for cam in h36m_s1_cameras():
        axis = cam['R'].T @ [0.0, 0.0, 1.0]  # optical axis in the world
        down = cam['R'].T @ [0.0, 1.0, 0.0]  # image-down direction in the world
        to_centre = -cam['C'][:2] / np.linalg.norm(cam['C'][:2])
        assert axis[:2] / np.linalg.norm(axis[:2]) @ to_centre > np.cos(np.deg2rad(20))
        assert axis[2] < 0        # looking slightly down
        assert down[2] < -0.8     # not upside down in the z-up world


# ----------------------------------------------------------------------------------------- rig
@pytest.mark.parametrize('num_views', VALID_NUM_VIEWS)
def test_rig_rotations_orthonormal_and_shapes(num_views):
    rig = VirtualCameraRig(num_views)
    assert rig.num_views == len(rig) == num_views
    assert rig.R.shape == (num_views, 3, 3)
    for name, shape in [('t', (3, )), ('centers', (3, )), ('f', (2, )), ('c', (2, )),
                        ('image_size', (2, ))]:
        assert getattr(rig, name).shape == (num_views, ) + shape, name
    assert rig.interpolated.shape == (num_views, ) and len(rig.names) == num_views
    for R in rig.R:
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-9)
    for v in range(num_views):  # X_cam = R X + t sends the camera centre to the origin
        np.testing.assert_allclose(_to_cam(rig, v, rig.centers[v]), 0.0, atol=1e-9)
    assert rig.interpolated.sum() == (4 if num_views == 8 else 0)


@pytest.mark.parametrize('num_views', [0, 3, 5, 6, 16, -1, 4.5, '4', None, True])
def test_rig_invalid_num_views(num_views):
    with pytest.raises(ValueError, match='num_views'):
        VirtualCameraRig(num_views)
    with pytest.raises(VirtualCameraError, match='virtual_camera_rig.py'):
        VirtualCameraRig(num_views)


@pytest.mark.parametrize('num_views,ids', [(1, ['54138969']), (2, ['54138969', '55011271']),
                                           (4, ['54138969', '55011271', '58860488', '60457274']),
                                           (8, ['54138969', '55011271', '58860488', '60457274'])])
def test_rig_real_views_are_published_cameras_shifted_to_the_subject(num_views, ids):
    rig = VirtualCameraRig(num_views)
    published = {p[0]: p for p in PUBLISHED}
    real = np.flatnonzero(~rig.interpolated)
    np.testing.assert_array_equal(real, np.arange(len(ids)))  # real cameras come first
    assert rig.names[:len(ids)] == ids
    offsets = []
    for v, cid in zip(real, ids):
        _, centre, f, c, _, q = published[cid]
        np.testing.assert_allclose(rig.f[v], f, atol=1e-4)
        np.testing.assert_allclose(rig.c[v], c, atol=1e-4)
        np.testing.assert_allclose(rig.R[v], _scipy_world_to_cam(q), atol=1e-6)  # orientation kept
        offsets.append(np.asarray(centre) - rig.centers[v])  # = the subject in the H36M world
    offsets = np.array(offsets)
    np.testing.assert_allclose(offsets, np.broadcast_to(offsets[0], offsets.shape), atol=1e-5)
    assert offsets[0, 2] == pytest.approx(PELVIS_HEIGHT, abs=1e-6)
    assert np.linalg.norm(offsets[0, :2]) < 0.5  # near the middle of the H36M room


def test_subject_is_least_squares_intersection_of_optical_axes():
    """Independent check: the xy of the subject minimises the summed squared distances of the
    ground-plane point (x, y, z*) to the 4 optical axes, up to moving along z (a numeric search)."""
    rig = VirtualCameraRig(4)
    subject_xy = np.asarray(PUBLISHED[0][1][:2]) - rig.centers[0, :2]
    cams = [(np.asarray(p[1]), Rotation.from_matrix(_scipy_world_to_cam(p[5])).inv().apply([0, 0, 1]))
            for p in PUBLISHED]

    def cost(p):
        return sum(np.sum(np.cross(p - C, d) ** 2) for C, d in cams)

    from scipy.optimize import minimize
    best = minimize(cost, np.zeros(3)).x
    np.testing.assert_allclose(subject_xy, best[:2], atol=1e-4)


@pytest.mark.parametrize('num_views', VALID_NUM_VIEWS)
def test_every_camera_looks_at_an_upright_subject(num_views):
    rig = VirtualCameraRig(num_views)
    for v in range(num_views):
        w, h = rig.image_size[v]
        px = {}
        for name, X in [('pelvis', np.zeros(3)), ('head', HEAD), ('feet', FEET)]:
            Xc = _to_cam(rig, v, X)
            assert 3.0 < Xc[2] < 7.0, (v, name, Xc)  # in front, at H36M distances
            px[name] = _pinhole(Xc, rig.f[v], rig.c[v])
            assert 0 <= px[name][0] < w and 0 <= px[name][1] < h, (v, name, px[name])
        # the pelvis projects in the central region of the image
        assert np.all(np.abs(px['pelvis'] - rig.image_size[v] / 2) < 0.2 * rig.image_size[v])
        # the optical axis passes within 10° of the pelvis
        Xc = _to_cam(rig, v, np.zeros(3))
        assert np.degrees(np.arccos(Xc[2] / np.linalg.norm(Xc))) < 10
        # camera centre 0.4–0.9 m above the pelvis (1.5–1.6 m above the floor), 4–6 m away
        assert 0.4 < rig.centers[v, 2] < 0.9
        assert 4.0 < np.linalg.norm(rig.centers[v, :2]) < 6.0
        # upright: head above pelvis above feet in the image, nearly vertical (no roll)
        assert px['head'][1] < px['pelvis'][1] < px['feet'][1], (v, px)
        d = px['head'] - px['feet']
        assert abs(d[0]) < 0.2 * abs(d[1])


def test_interpolated_views_lie_between_their_azimuth_neighbours():
    rig = VirtualCameraRig(8)
    real, interp = np.arange(4), np.arange(4, 8)
    assert not rig.interpolated[real].any() and rig.interpolated[interp].all()
    az_real = np.array([_azimuth(rig.centers[v]) for v in real])
    order = real[np.argsort(az_real)]
    used = set()
    for i in range(4):
        a, b = order[i], order[(i + 1) % 4]
        az_a = _azimuth(rig.centers[a])
        span = (_azimuth(rig.centers[b]) - az_a) % (2 * np.pi)  # ccw arc a → b
        inside = [m for m in interp if 0 < (_azimuth(rig.centers[m]) - az_a) % (2 * np.pi) < span]
        assert len(inside) == 1, (a, b, inside)  # exactly one interpolated view per gap
        m = inside[0]
        used.add(m)
        assert set(rig.names[m][4:-1].split(',')) == {rig.names[a], rig.names[b]}
        Cm, Ca, Cb = rig.centers[m], rig.centers[a], rig.centers[b]
        assert (_azimuth(Cm) - az_a) % (2 * np.pi) == pytest.approx(span / 2, abs=1e-9)
        assert min(Ca[2], Cb[2]) <= Cm[2] <= max(Ca[2], Cb[2])
        assert Cm[2] == pytest.approx(0.5 * (Ca[2] + Cb[2]))
        ra, rb, rm = (np.linalg.norm(C[:2]) for C in (Ca, Cb, Cm))
        assert rm == pytest.approx(0.5 * (ra + rb))
        # slerp midpoint: geodesic distance to each neighbour is half of theirs, and it is on the
        # geodesic (the two halves add up)
        Ra, Rb, Rm = (Rotation.from_matrix(rig.R[v]) for v in (a, b, m))
        d_ab = (Ra.inv() * Rb).magnitude()
        assert d_ab > 0.1
        assert (Ra.inv() * Rm).magnitude() == pytest.approx(d_ab / 2, abs=1e-9)
        assert (Rb.inv() * Rm).magnitude() == pytest.approx(d_ab / 2, abs=1e-9)
        np.testing.assert_allclose(rig.f[m], 0.5 * (rig.f[a] + rig.f[b]))
        np.testing.assert_allclose(rig.c[m], 0.5 * (rig.c[a] + rig.c[b]))
    assert used == set(interp)


def test_smaller_rigs_are_prefixes_of_the_8_view_rig():
    r8 = VirtualCameraRig(8)
    for n in (1, 2, 4):
        rn = VirtualCameraRig(n)
        for name in ('R', 't', 'centers', 'f', 'c', 'image_size'):
            np.testing.assert_array_equal(getattr(rn, name), getattr(r8, name)[:n])
        assert rn.names == r8.names[:n]


# -------------------------------------------------------------------------------- top-down crop
def _mmpose_topdown(kp, input_size):
    """The same box through mmpose's own transforms: bbox from keypoints → GetBBoxCenterScale →
    TopdownAffine."""
    from mmpose.datasets.transforms import GetBBoxCenterScale, TopdownAffine
    bbox = np.concatenate([kp.min(0), kp.max(0)])[None].astype(np.float32)
    results = dict(img=np.zeros((1000, 1000, 3), np.uint8), bbox=bbox,
                   keypoints=kp[None].astype(np.float32),
                   keypoints_visible=np.ones((1, len(kp)), np.float32))
    results = GetBBoxCenterScale(padding=1.25)(results)
    return TopdownAffine(input_size=input_size)(results)


def _closed_form_crop(px, input_size, padding=1.25):
    """Box centre → crop centre; padded box, widened to the crop's aspect ratio → crop size."""
    w, h = input_size
    lo, hi = px.min(0), px.max(0)
    centre = 0.5 * (lo + hi)
    bw, bh = (hi - lo) * padding
    if bw > bh * w / h:
        bh = bw * h / w
    else:
        bw = bh * w / h
    scale = np.array([bw, bh])
    return centre, scale, (px - centre) * np.array([w, h]) / scale + np.array([w, h]) / 2


@pytest.mark.parametrize('input_size', [(224, 224), (112, 112), (192, 256)])
@pytest.mark.parametrize('view', range(8))
def test_topdown_crop_matches_mmpose_pipeline(view, input_size):
    rig = VirtualCameraRig(8)
    Xc = _to_cam(rig, view, COCO17_STANDING)
    px = (rig.f[view] * Xc[:, :2] / Xc[:, 2:] + rig.c[view]).astype(np.float32)
    ours = topdown_crop(px, input_size=input_size, padding=1.25)
    ref = _mmpose_topdown(px, input_size)
    np.testing.assert_allclose(ours['center'], ref['bbox_center'][0], atol=1e-3)
    np.testing.assert_allclose(ours['scale'], ref['bbox_scale'][0], atol=1e-3)
    np.testing.assert_allclose(apply_warp(px, ours['warp_mat']), ref['transformed_keypoints'][0],
                               atol=1e-3)
    np.testing.assert_allclose(ours['bbox'], np.concatenate([px.min(0), px.max(0)]), atol=1e-4)
    centre, scale, kp = _closed_form_crop(px.astype(np.float64), input_size)
    np.testing.assert_allclose(ours['center'], centre, atol=1e-3)
    np.testing.assert_allclose(ours['scale'], scale, atol=1e-3)
    np.testing.assert_allclose(apply_warp(px, ours['warp_mat']), kp, atol=1e-3)


def test_topdown_crop_random_boxes_match_mmpose():
    rng = np.random.default_rng(1)
    for _ in range(10):
        lo = rng.uniform(0, 500, 2)
        px = (lo + rng.uniform(0, 1, (17, 2)) * rng.uniform(20, 400, 2)).astype(np.float32)
        ours = topdown_crop(px, (224, 224))
        ref = _mmpose_topdown(px, (224, 224))
        np.testing.assert_allclose(apply_warp(px, ours['warp_mat']), ref['transformed_keypoints'][0],
                                   atol=1e-3)
        np.testing.assert_allclose(ours['center'], ref['bbox_center'][0], atol=1e-3)
        np.testing.assert_allclose(ours['scale'], ref['bbox_scale'][0], atol=1e-3)


def test_topdown_crop_degenerate_and_bad_input():
    out = topdown_crop(np.array([[100.0, 200.0]]), (224, 224))  # one point: finite, centred
    assert np.isfinite(out['warp_mat']).all()
    np.testing.assert_allclose(apply_warp(np.array([[100.0, 200.0]]), out['warp_mat']), [[112, 112]],
                               atol=1e-3)
    for bad in (np.zeros((0, 2)), np.zeros((3, 3)), np.array([[np.nan, 1.0]])):
        with pytest.raises(VirtualCameraError, match='topdown_crop.py'):
            topdown_crop(bad)


def test_apply_warp_hand_computed():
    pts = np.array([[1.0, 2.0], [0.0, 0.0], [-3.0, 8.0]])
    M = np.array([[2.0, 0.0, 10.0], [0.0, 0.5, -4.0]])
    np.testing.assert_allclose(apply_warp(pts, M), [[12.0, -3.0], [10.0, -4.0], [4.0, 0.0]])
    M = np.array([[2.0, 1.0, 10.0], [-0.5, 0.5, -4.0]])  # x' = 2x + y + 10, y' = -x/2 + y/2 - 4
    np.testing.assert_allclose(apply_warp(pts, M), [[14.0, -3.5], [10.0, -4.0], [12.0, 1.5]])
