"""Full-image camera from a crop's weak-perspective camera: exact algebra + round trip on toy images
rendered with a known perspective camera."""
import numpy as np
import pytest

from mmpose_mpt.apis.full_image_camera import (FullImageCameraError, crop_to_full_camera,
                                               default_focal_length, fit_weak_perspective,
                                               full_to_crop_camera, project_points)


@pytest.fixture(scope='module')
def toy_set(tmp_path_factory):
    from test_inferencer_toy import inference_toy
    return inference_toy(tmp_path_factory)


def test_inverse_is_exact():
    rng = np.random.default_rng(0)
    T = np.c_[rng.uniform(-1, 1, (5, 2)), rng.uniform(2, 9, 5)]
    center, side = rng.uniform(50, 600, (5, 2)), rng.uniform(40, 300, 5)
    for focal in (None, 800.0, (900.0, 910.0)):
        cam = full_to_crop_camera(T, center, side, (640, 480), focal, (330.0, 236.0))
        back = crop_to_full_camera(cam, center, side, (640, 480), focal, (330.0, 236.0))
        np.testing.assert_allclose(back, T, rtol=1e-12, atol=1e-12)


def test_formula_against_pinhole():
    """The root of the person projects where the weak-perspective camera puts it (Eq. 1 at X = 0),
    and Tz = 2 f / (s side) independently written."""
    cam = np.array([[0.8, 0.1, -0.05]])
    center, side, f, c = np.array([[400.0, 200.0]]), np.array([150.0]), 1000.0, (320.0, 240.0)
    T = crop_to_full_camera(cam, center, side, (640, 480), f, c)
    assert T[0, 2] == pytest.approx(2 * 1000.0 / (0.8 * 150.0))
    root_px = project_points(T, (f, f), c)[0]
    weak_px = center[0] + side[0] / 2 * cam[0, 0] * cam[0, 1:]
    np.testing.assert_allclose(root_px, weak_px, atol=1e-9)


def test_default_focal_and_errors():
    assert default_focal_length((300, 400)) == (500.0, 500.0)
    with pytest.raises(FullImageCameraError, match='scale s'):
        crop_to_full_camera(np.array([[-1.0, 0, 0]]), np.zeros((1, 2)), np.ones(1), (10, 10))
    with pytest.raises(FullImageCameraError, match='focal_length'):
        crop_to_full_camera(np.array([[1.0, 0, 0]]), np.zeros((1, 2)), np.ones(1), (10, 10), focal_length=0)
    with pytest.raises(FullImageCameraError, match='non-finite'):
        crop_to_full_camera(np.array([[np.nan, 0, 0]]), np.zeros((1, 2)), np.ones(1), (10, 10))


def test_round_trip_on_toy_images(toy_set):
    """Rendered toy images, known pinhole camera: the weak-perspective camera that explains each crop's
    2D joints (what the model is trained to predict), converted with the image's focal length and
    principal point, puts the person back where the renderer had it: the pelvis within a few % of its
    true depth and the joints on their pixels."""
    ann, sc = toy_set['ann'], toy_set['scenes']
    pelvis = 14  # J24 slot (MeshImageCrop centres the 3D joints on it)
    for i in range(len(ann.center)):
        J = ann.keypoints_3d[i][:, :3].astype(np.float64)       # camera frame, metres
        px = ann.keypoints_2d[i][:, :2].astype(np.float64)
        vis = (ann.keypoints_2d[i][:, 2] > 0) & (ann.keypoints_3d[i][:, 3] > 0)
        assert ann.keypoints_3d[i][pelvis, 3] > 0
        rel = J - J[pelvis]
        center, side = ann.center[i][None].astype(np.float64), np.array([200.0 * float(ann.scale[i])])
        xn = 2 * (px - center) / side                              # normalised crop coordinates
        cam = fit_weak_perspective(rel[vis][None], xn[vis][None])
        f, c = sc['cam_f'][i], sc['cam_c'][i]
        W, H = (int(v) for v in sc['image_size'])
        T = crop_to_full_camera(cam, center, side, (W, H), f, c)[0]
        true_root = J[pelvis]
        assert abs(T[2] - true_root[2]) / true_root[2] < 0.04, (i, T, true_root)
        np.testing.assert_allclose(T[:2], true_root[:2], atol=0.04 * true_root[2])
        reproj = project_points(rel + T, f, c)
        err = np.linalg.norm(reproj[vis] - px[vis], axis=1)
        # the weak-perspective model's own error (depth variation within the body) bounds it
        assert np.median(err) < 0.02 * max(W, H), (i, np.median(err))
        # a focal length off by 2x moves the person twice as far, the overlay stays put
        T2 = crop_to_full_camera(cam, center, side, (W, H), 2 * f, c)[0]
        assert T2[2] == pytest.approx(2 * T[2])
        np.testing.assert_allclose(project_points(T2, 2 * f, c), project_points(T, f, c), atol=1e-6)
