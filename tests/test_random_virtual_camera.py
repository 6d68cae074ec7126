"""RandomVirtualCamera (Sec. 3.1.1): view choice, projection, mmpose top-down crop, output keys.

Expected values come from an independent pinhole projection and closed-form crop, or from mmpose's own
GetBBoxCenterScale + TopdownAffine transforms.
"""
import numpy as np
import pytest

import mmpose_mpt  # noqa: F401
from mmpose_mpt.cameras import VirtualCameraRig

# A standing person's COCO-17 joints in the canonical frame (z-up, pelvis at the origin), metres.
COCO17_STANDING = np.array([
    [0.00, 0.08, 0.62],
    [-0.03, 0.06, 0.66], [0.03, 0.06, 0.66],
    [-0.07, 0.00, 0.64], [0.07, 0.00, 0.64],
    [-0.18, 0.00, 0.45], [0.18, 0.00, 0.45],
    [-0.22, 0.02, 0.18], [0.22, 0.02, 0.18],
    [-0.24, 0.05, -0.06], [0.24, 0.05, -0.06],
    [-0.10, 0.00, -0.02], [0.10, 0.00, -0.02],
    [-0.11, 0.02, -0.47], [0.11, 0.02, -0.47],
    [-0.11, 0.00, -0.86], [0.11, 0.00, -0.86],
])


def _build(**kwargs):
    from mmengine.registry import init_default_scope
    from mmpose.registry import TRANSFORMS
    init_default_scope('mmpose')
    return TRANSFORMS.build(dict(type='RandomVirtualCamera', **kwargs))


def _sample(keypoints_3d=COCO17_STANDING, **extra):
    return dict(keypoints_3d=np.array(keypoints_3d, np.float32), **extra)


def _image_px(rig, v, X):
    """Independent pinhole projection of canonical-frame points through view v."""
    Xc = np.asarray(X, np.float64) @ rig.R[v].T + rig.t[v]
    return np.stack([rig.f[v] * x[:2] / x[2] + rig.c[v] for x in Xc])


def _closed_form_crop(px, input_size, padding=1.25):
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


def test_registered_and_repr():
    t = _build(num_views=8, input_size=(112, 112), padding=1.25, random_view=False)
    assert type(t).__name__ == 'RandomVirtualCamera'
    assert 'num_views=8' in repr(t) and 'input_size=(112, 112)' in repr(t)


@pytest.mark.parametrize('num_views', [1, 2, 4, 8])
def test_eval_mode_uses_view_index_deterministically(num_views):
    t = _build(num_views=num_views, random_view=False)
    rig = VirtualCameraRig(num_views)
    for idx in range(num_views + 2):
        np.random.seed(idx)
        a = t(_sample(view_index=idx))
        np.random.seed(1000 + idx)
        b = t(_sample(view_index=idx))
        view = idx % num_views
        assert a['view_index'] == b['view_index'] == view
        for key in ('keypoints', 'keypoints_visible', 'cam_R', 'cam_t', 'warp_mat', 'bbox'):
            np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_allclose(a['cam_R'], rig.R[view], atol=1e-6)
        np.testing.assert_allclose(a['cam_t'], rig.t[view], atol=1e-6)
        np.testing.assert_allclose(a['cam_f'], rig.f[view], atol=1e-3)
        np.testing.assert_allclose(a['cam_c'], rig.c[view], atol=1e-3)


def test_eval_mode_without_view_index_is_a_clear_error():
    t = _build(num_views=4, random_view=False)
    with pytest.raises(ValueError, match='view_index'):
        t(_sample())


def test_train_mode_covers_all_views_uniformly_and_is_seedable():
    t = _build(num_views=8, random_view=True)
    rig = VirtualCameraRig(8)
    np.random.seed(0)
    views = []
    for i in range(2000):
        out = t(_sample(view_index=3))  # ignored when random
        views.append(out['view_index'])
        if i < 16:
            np.testing.assert_allclose(out['cam_R'], rig.R[out['view_index']], atol=1e-6)
    counts = np.bincount(views, minlength=8)
    assert counts.sum() == 2000 and len(counts) == 8
    chi2 = ((counts - 250) ** 2 / 250).sum()
    assert chi2 < 24.3, (counts, chi2)  # p ≈ 0.001, 7 dof
    np.random.seed(0)
    again = [t(_sample())['view_index'] for _ in range(50)]
    assert again == views[:50]  # np.random drives it (mmengine seeds the workers)


@pytest.mark.parametrize('view', range(8))
def test_keypoints_match_independent_projection_and_crop(view):
    t = _build(num_views=8, random_view=False)
    rig = VirtualCameraRig(8)
    out = t(_sample(view_index=view))
    assert out['keypoints'].shape == (1, 17, 2) and out['keypoints'].dtype == np.float32
    assert out['keypoints_visible'].shape == (1, 17)
    assert out['keypoints_visible'].dtype == np.float32
    np.testing.assert_array_equal(out['keypoints_visible'], 1.0)
    px = _image_px(rig, view, COCO17_STANDING)
    centre, scale, kp = _closed_form_crop(px, (224, 224))
    np.testing.assert_allclose(out['keypoints'][0], kp, atol=1e-3)
    np.testing.assert_allclose(out['bbox_center'][0], centre, atol=1e-3)
    np.testing.assert_allclose(out['bbox_scale'][0], scale, atol=1e-3)
    np.testing.assert_allclose(out['bbox'][0], np.concatenate([px.min(0), px.max(0)]), atol=1e-3)
    assert tuple(out['input_size']) == (224, 224)
    for key, shape in [('bbox', (1, 4)), ('bbox_center', (1, 2)), ('bbox_scale', (1, 2)),
                       ('cam_R', (3, 3)), ('cam_t', (3, )), ('cam_f', (2, )), ('cam_c', (2, )),
                       ('warp_mat', (2, 3))]:
        assert out[key].shape == shape, key
        assert out[key].dtype == np.float32, key
    np.testing.assert_allclose(px @ out['warp_mat'][:, :2].T + out['warp_mat'][:, 2], kp, atol=1e-3)
    # cam_R/cam_t take the canonical joints into the camera frame: re-projecting with cam_f/cam_c and
    # warping gives the keypoints back
    Xc = COCO17_STANDING @ out['cam_R'].T.astype(np.float64) + out['cam_t']
    re = out['cam_f'] * Xc[:, :2] / Xc[:, 2:] + out['cam_c']
    np.testing.assert_allclose(re @ out['warp_mat'][:, :2].T + out['warp_mat'][:, 2], kp, atol=2e-2)


@pytest.mark.parametrize('view', range(4))
def test_crop_equals_mmpose_topdown_transforms(view):
    """The same keypoints through mmpose's GetBBoxCenterScale + TopdownAffine (bbox from keypoints)."""
    from mmpose.datasets.transforms import GetBBoxCenterScale, TopdownAffine
    rig = VirtualCameraRig(4)
    px = _image_px(rig, view, COCO17_STANDING).astype(np.float32)
    ref = dict(img=np.zeros((1002, 1000, 3), np.uint8),
               bbox=np.concatenate([px.min(0), px.max(0)])[None], keypoints=px[None],
               keypoints_visible=np.ones((1, 17), np.float32))
    ref = TopdownAffine(input_size=(224, 224))(GetBBoxCenterScale(padding=1.25)(ref))
    out = _build(num_views=4, random_view=False)(_sample(view_index=view))
    np.testing.assert_allclose(out['keypoints'], ref['transformed_keypoints'], atol=1e-3)
    np.testing.assert_allclose(out['bbox_center'], ref['bbox_center'], atol=1e-3)
    np.testing.assert_allclose(out['bbox_scale'], ref['bbox_scale'], atol=1e-3)
    np.testing.assert_allclose(out['bbox'], ref['bbox'], atol=1e-3)


@pytest.mark.parametrize('view', range(8))
def test_keypoints_inside_crop_with_padding(view):
    kp = _build(num_views=8, random_view=False)(_sample(view_index=view))['keypoints'][0]
    assert np.all(kp >= 0) and np.all(kp < 224)
    extent = kp.max(0) - kp.min(0)
    assert extent.max() == pytest.approx(224 / 1.25, abs=1e-2)  # longer side = 224 / padding
    assert int(np.argmax(extent)) == 1  # a standing person is taller than wide
    assert 0.5 * (kp[:, 1].min() + kp[:, 1].max()) == pytest.approx(112, abs=1e-2)
    assert kp[0, 1] < kp[15, 1] and kp[0, 1] < kp[16, 1]  # nose above ankles


def test_non_square_input_size():
    t = _build(num_views=4, random_view=False, input_size=(192, 256))
    rig = VirtualCameraRig(4)
    out = t(_sample(view_index=1))
    _, scale, kp = _closed_form_crop(_image_px(rig, 1, COCO17_STANDING), (192, 256))
    np.testing.assert_allclose(out['keypoints'][0], kp, atol=1e-3)
    np.testing.assert_allclose(out['bbox_scale'][0], scale, atol=1e-3)
    assert tuple(out['input_size']) == (192, 256)


def test_joint_behind_camera_is_invisible_and_excluded_from_crop():
    view = 2
    rig = VirtualCameraRig(4)
    joints = COCO17_STANDING.copy()
    axis = rig.R[view].T @ [0.0, 0.0, 1.0]  # optical axis in the mesh frame
    joints[9] = rig.centers[view] - 0.5 * axis  # left wrist 0.5 m behind the camera
    out = _build(num_views=4, random_view=False)(_sample(joints, view_index=view))
    vis = out['keypoints_visible'][0]
    assert vis[9] == 0 and np.all(np.delete(vis, 9) == 1)
    np.testing.assert_array_equal(out['keypoints'][0, 9], 0.0)
    kp = np.delete(out['keypoints'][0], 9, axis=0)
    _, _, ref = _closed_form_crop(_image_px(rig, view, np.delete(joints, 9, axis=0)), (224, 224))
    np.testing.assert_allclose(kp, ref, atol=1e-3)


def test_all_joints_behind_camera_gives_finite_output():
    rig = VirtualCameraRig(1)
    axis = rig.R[0].T @ [0.0, 0.0, 1.0]
    joints = rig.centers[0] - 1.0 * axis + 0.01 * COCO17_STANDING
    out = _build(num_views=1, random_view=False)(_sample(joints, view_index=0))
    np.testing.assert_array_equal(out['keypoints_visible'], 0.0)
    for key in ('keypoints', 'warp_mat', 'bbox_center', 'bbox_scale'):
        assert np.isfinite(out[key]).all(), key


@pytest.mark.parametrize('kwargs,match', [(dict(num_views=3), 'num_views'),
                                          (dict(num_views=16), 'num_views'),
                                          (dict(input_size=(224, )), 'input_size'),
                                          (dict(input_size=(0, 224)), 'input_size'),
                                          (dict(input_size=(224.5, 224)), 'input_size'),
                                          (dict(padding=0), 'padding')])
def test_bad_config_is_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _build(**kwargs)


def test_bad_sample_is_a_clear_value_error():
    t = _build(num_views=4, random_view=True)
    with pytest.raises(ValueError, match='keypoints_3d'):
        t(dict(view_index=0))
    with pytest.raises(ValueError, match='keypoints_3d'):
        t(dict(keypoints_3d=np.zeros((17, 2))))


def test_non_finite_joints_are_a_clear_error():
    t = _build(num_views=4, random_view=False)
    for bad in (np.nan, np.inf):
        joints = COCO17_STANDING.copy()
        joints[5, 0] = bad
        with pytest.raises(ValueError, match='not finite.*seq_x frame 7'):
            t(_sample(joints, view_index=1, seq_name='seq_x', frame_index=7))
