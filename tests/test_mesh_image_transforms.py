"""Mesh-image pipeline: LoadMeshImage → MeshImageCrop → PackMeshInputs → MeshImagePreprocessor.

Geometry is checked against formulas written out here (SPIN's crop map, mmpose's get_warp_matrix,
rotation matrices), against the image content (Gaussian dots drawn into synthetic images and found
again in the crops), and against independent SMPL forwards (the smplx-based wrapper, scipy sampling
matrices). Pixel convention under test: pixel centres at integer coordinates (OpenCV / mmpose).
"""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate

import mmpose_mpt  # noqa: F401  (registers everything)
from mmpose_mpt.body_models import SMPL, toy_body_model_paths
from mmpose_mpt.body_models.j24 import J24_FLIP_PERM, J24_TO_J14, SMPL_JOINTS_FLIP_PERM
from mmpose_mpt.body_models.mesh_sampler import load_mesh_sampling
from mmpose_mpt.datasets.transforms import LoadMeshImage, MeshImageCrop, MeshImageError, PackMeshInputs
from mmpose_mpt.datasets.transforms.batched_transform import is_batched_pipeline, run_batched
from mmpose_mpt.models.data_preprocessors import MeshImagePreprocessor
from mmpose_mpt.utils.cli import MPTUserError

S = 224
H, W = 480, 640


# ------------------------------------------------------------------------------------------ helpers
def _dots_image(points, sigma=4.0, h=H, w=W, base=None):
    """BGR uint8 image with a Gaussian dot at points[c] in channel c (c = 0, 1, 2)."""
    img = np.zeros((h, w, 3), np.float64) if base is None else base.astype(np.float64)
    yy, xx = np.mgrid[0:h, 0:w]
    for c, (x, y) in enumerate(points):
        img[..., c] += 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _centroid(channel):
    """Intensity-weighted (x, y) of a crop channel."""
    c = channel.astype(np.float64)
    yy, xx = np.mgrid[0:c.shape[0], 0:c.shape[1]]
    return np.array([(c * xx).sum() / c.sum(), (c * yy).sum() / c.sum()])


def _sample(img, center=(300.0, 220.0), scale=1.5, kp2d=None, kp3d=None, pose=None, betas=None,
            idx=7, **extra):
    rng = np.random.default_rng(idx)
    r = dict(img_path=f'/data/img_{idx}.jpg', sample_idx=idx, id=f'img_{idx}', dataset_name='toy',
             center=np.asarray(center, np.float32), scale=np.float32(scale),
             keypoints_2d_j24=(np.concatenate([rng.uniform(200, 400, (24, 2)), np.ones((24, 1))], 1)
                               if kp2d is None else kp2d).astype(np.float32),
             keypoints_3d_j24=(np.concatenate([rng.normal(0, 0.3, (24, 3)) + [0, 0, 5], np.ones((24, 1))], 1)
                               if kp3d is None else kp3d).astype(np.float32),
             smpl_pose=(rng.normal(0, 0.3, 72) if pose is None else pose).astype(np.float32),
             smpl_betas=(rng.normal(0, 1, 10) if betas is None else betas).astype(np.float32),
             has_smpl=np.float32(1), has_2d_joints=np.float32(1), has_3d_joints=np.float32(1),
             gender=np.int64(0))
    if img is not None:
        r.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
    r.update(extra)
    return r


def _crop(results, flip=False, rot=0.0, sc=1.0, noise=None):
    """MeshImageCrop with a fixed augmentation draw."""
    return MeshImageCrop(augment=True).crop(dict(results), (flip, noise, rot, sc))


def _R(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def _spin_transform(center, scale, res, rot):
    """SPIN utils/imutils.py get_transform (3x3), written out (continuous, before its int rounding)."""
    h = 200 * scale
    t = np.zeros((3, 3))
    t[0, 0] = res / h
    t[1, 1] = res / h
    t[0, 2] = res * (-center[0] / h + .5)
    t[1, 2] = res * (-center[1] / h + .5)
    t[2, 2] = 1
    if rot != 0:
        rr = -rot * np.pi / 180
        rot_mat = np.eye(3)
        rot_mat[0, :2] = [np.cos(rr), -np.sin(rr)]
        rot_mat[1, :2] = [np.sin(rr), np.cos(rr)]
        t_mat = np.eye(3)
        t_mat[:2, 2] = -res / 2
        t_inv = np.eye(3)
        t_inv[:2, 2] = res / 2
        t = t_inv @ rot_mat @ t_mat @ t
    return t


# -------------------------------------------------------------------------------------- crop: test
def test_no_augmentation_formula_and_image_content():
    center, scale = np.array([300.0, 220.0]), 1.5            # side 300 px → k = 224 / 300
    pts = np.array([[250.3, 180.6], [350.0, 262.2], [301.7, 200.1]])
    kp = np.zeros((24, 3), np.float32)
    kp[:3, :2], kp[:, 2] = pts, 1
    r = MeshImageCrop()(_sample(_dots_image(pts), center, scale, kp2d=kp))
    expected = (pts - center) * S / (200 * scale) + S / 2      # the formula, crop pixels
    np.testing.assert_allclose((r['joints_2d'][:3, :2] + 1) * S / 2, expected, atol=1e-3)
    np.testing.assert_allclose(r['joints_2d'][:, 2], kp[:, 2])
    for c in range(3):                                          # the image content lands there
        np.testing.assert_allclose(_centroid(r['img'][..., c]), expected[c], atol=0.15)
    assert r['img'].shape == (S, S, 3) and r['img'].dtype == np.uint8
    assert r['flip'] is False and r['rotation'] == 0 and r['scale_factor'] == 1
    assert r['input_size'] == (S, S) and r['img_shape'] == (S, S)
    np.testing.assert_allclose(r['warp_mat'], _spin_transform(center, scale, S, 0)[:2], rtol=1e-6, atol=1e-4)


def test_unit_scale_crop_is_the_image_slice():
    # k = 1 with an integer centre: in the pixel-centre convention the crop is the image, shifted
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    r = MeshImageCrop()(_sample(img, center=(301.0, 207.0), scale=S / 200))
    np.testing.assert_array_equal(r['img'], img[207 - 112:207 + 112, 301 - 112:301 + 112])


def test_test_mode_draws_no_random_numbers():
    np.random.seed(3)
    state = np.random.get_state()[1].copy()
    MeshImageCrop(augment=False)(_sample(_dots_image([[300, 220]])))
    assert np.array_equal(np.random.get_state()[1], state)


# ---------------------------------------------------------------------------------- crop: rotation
def test_rotation_image_2d_3d_agree():
    center, scale, rot, sc = np.array([320.0, 240.0]), 1.6, 30.0, 1.2
    k = S / (200 * scale * sc)
    # 3D joints around the pelvis (slot 14) and their orthographic image (100 px / m) at the centre
    rng = np.random.default_rng(1)
    S3 = rng.normal(0, 0.25, (24, 3))
    S3[14] = 0
    S3 += [0.1, -0.05, 4.0]                                  # not pelvis-centred on input
    px = center + 100 * (S3[:, :2] - S3[14, :2])
    S3[[0, 1, 2]] = S3[14] + [[0.6, 0, 0.1], [0, -0.5, -0.2], [-0.3, 0.4, 0.3]]
    px[[0, 1, 2]] = center + 100 * (S3[[0, 1, 2], :2] - S3[14, :2])
    kp2 = np.concatenate([px, np.ones((24, 1))], 1)
    kp3 = np.concatenate([S3, np.ones((24, 1))], 1)
    r = _crop(_sample(_dots_image(px[:3]), center, scale, kp2d=kp2, kp3d=kp3), rot=rot, sc=sc)

    expected = (R_ := _R(-rot)) @ (px - center).T * k       # SPIN: R(-rot) about the crop centre
    expected = expected.T + S / 2
    np.testing.assert_allclose((r['joints_2d'][:, :2] + 1) * S / 2, expected, atol=1e-3)
    # counter-clockwise as displayed: the joint 0.6 m to the right of the pelvis moves up
    d = expected[0] - S / 2
    np.testing.assert_allclose(d, 100 * 0.6 * k * np.array([np.cos(np.pi / 6), -np.sin(np.pi / 6)]),
                               atol=1e-6)
    for c in range(3):
        np.testing.assert_allclose(_centroid(r['img'][..., c]), expected[c], atol=0.2)
    # 3D: pelvis-centred, x/y rotated by the same matrix, z unchanged
    rel = S3 - S3[14]
    np.testing.assert_allclose(r['joints_3d'][:, :2], (R_ @ rel[:, :2].T).T, atol=1e-6)
    np.testing.assert_allclose(r['joints_3d'][:, 2], rel[:, 2], atol=1e-6)
    # the 2D joints are still the orthographic image of the 3D joints
    np.testing.assert_allclose(r['joints_2d'][:, :2], r['joints_3d'][:, :2] * 100 * k / (S / 2), atol=1e-5)
    # warp_mat: SPIN's get_transform and mmpose's get_warp_matrix
    from mmpose.structures.bbox import get_warp_matrix
    side = 200 * scale * sc
    np.testing.assert_allclose(r['warp_mat'], _spin_transform(center, scale * sc, S, rot)[:2], atol=1e-4)
    np.testing.assert_allclose(r['warp_mat'], get_warp_matrix(center, np.array([side, side]), rot, (S, S)),
                               atol=1e-3)
    assert r['rotation'] == rot and r['scale_factor'] == sc


@pytest.fixture(scope='module')
def toy_smpl(toy_data_root):
    paths = toy_body_model_paths(toy_data_root)
    models = {g: SMPL(paths['smpl_dir'], g, h36m_regressor=paths['h36m_regressor'], dtype=torch.float64)
              for g in ('neutral', 'male', 'female')}
    return dict(paths=paths, **models)


def _smpl(model, pose, betas=None):
    pose = torch.as_tensor(np.asarray(pose, np.float64)).reshape(1, 72)
    b = None if betas is None else torch.as_tensor(np.asarray(betas, np.float64)).reshape(1, -1)
    out = model(betas=b, body_pose=pose[:, 3:], global_orient=pose[:, :3])
    return out['vertices'][0].numpy(), out['joints'][0].numpy()


def test_rotated_global_orient_rotates_the_mesh(toy_smpl):
    rng = np.random.default_rng(2)
    pose = rng.normal(0, 0.4, 72)
    pose[:3] = [2.8, 0.3, -0.4]                      # near-upside-down camera-frame orientation
    betas = rng.normal(0, 1, 10)
    rot = -42.0
    r = _crop(_sample(_dots_image([[300, 220]]), pose=pose, betas=betas), rot=rot)
    v0, j0 = _smpl(toy_smpl['neutral'], pose.astype(np.float32), betas.astype(np.float32))
    v1, j1 = _smpl(toy_smpl['neutral'], r['smpl_pose'], r['smpl_betas'])
    Rz = np.eye(3)
    Rz[:2, :2] = _R(-rot)
    np.testing.assert_allclose(v1 - j1[0], (v0 - j0[0]) @ Rz.T, atol=2e-6)
    np.testing.assert_allclose(r['smpl_pose'][3:], pose[3:].astype(np.float32))
    assert np.abs(v1 - v0).max() > 0.1                    # the mesh did turn


# -------------------------------------------------------------------------------------- crop: flip
def test_flip_mirrors_image_and_joints():
    rng = np.random.default_rng(4)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (H, W, 3)), (0, 0), 5)
    texture = np.clip((texture - texture.mean()) * 4 + 128, 0, 255).astype(np.uint8)   # asymmetric
    center, scale = np.array([310.0, 230.0]), 1.4
    pts = np.array([[260.0, 190.0], [370.0, 250.0], [330.0, 300.0]])
    kp = np.concatenate([rng.uniform(200, 400, (24, 2)), rng.uniform(0, 1, (24, 1))], 1)
    kp[:3, :2] = pts
    perm = np.array(J24_FLIP_PERM)
    inv = np.argsort(perm)                 # joint c of the input is in slot inv[c] after the flip
    for img, content in ((texture, 'texture'), (_dots_image(pts), 'dots')):
        base = _sample(img, center, scale, kp2d=kp)
        a, b = _crop(base, rot=20.0), _crop(base, rot=20.0, flip=True)
        assert b['flip'] is True and a['flip'] is False
        # joints: mirrored (normalised x negated) and left / right swapped
        np.testing.assert_allclose(b['joints_2d'][:, 0], -a['joints_2d'][perm, 0], atol=1e-6)
        np.testing.assert_allclose(b['joints_2d'][:, 1:], a['joints_2d'][perm, 1:], atol=1e-6)
        np.testing.assert_allclose(b['joints_3d'][:, 0], -a['joints_3d'][perm, 0], atol=1e-6)
        np.testing.assert_allclose(b['joints_3d'][:, 1:], a['joints_3d'][perm, 1:], atol=1e-6)
        # warp_mat maps the image points to the flipped crop points
        np.testing.assert_allclose(pts @ b['warp_mat'][:, :2].T + b['warp_mat'][:, 2],
                                   (b['joints_2d'][inv[:3], :2] + 1) * S / 2, atol=1e-3)
        if content == 'texture':
            # mirror about the box centre (x -> 224 - x): fliplr shifted by one column
            diff = np.abs(b['img'][:, 1:].astype(int) - a['img'][:, :0:-1].astype(int))
            assert diff.max() <= 2 and diff.mean() < 0.3
            assert np.abs(b['img'].astype(int) - a['img'].astype(int)).mean() > 10   # not symmetric
        else:
            # the image content follows the joints
            for c in range(3):
                xy = (b['joints_2d'][inv[c], :2] + 1) * S / 2
                np.testing.assert_allclose(_centroid(b['img'][..., c]), xy, atol=0.2)
                np.testing.assert_allclose(xy[0], S - (a['joints_2d'][c, 0] + 1) * S / 2, atol=1e-4)


def test_flipped_pose_mirrors_the_mesh(toy_smpl):
    rng = np.random.default_rng(5)
    pose = rng.normal(0, 0.4, 72)
    r = _crop(_sample(_dots_image([[300, 220]]), pose=pose, betas=np.zeros(10)), flip=True)
    _, j0 = _smpl(toy_smpl['neutral'], pose.astype(np.float32))
    _, j1 = _smpl(toy_smpl['neutral'], r['smpl_pose'])
    mirrored = j0[SMPL_JOINTS_FLIP_PERM] * [-1, 1, 1]
    np.testing.assert_allclose(j1, mirrored, atol=1e-4)
    assert np.abs(j1 - j0).max() > 0.05


# ---------------------------------------------------------------------------------- augmentation
def _spin_augm_params(rf=30, sf=0.25, nf=0.4):
    """nkolot/SPIN datasets/base_dataset.py augm_params (is_train), written out."""
    flip = 1 if np.random.uniform() <= 0.5 else 0
    pn = np.random.uniform(1 - nf, 1 + nf, 3)
    rot = min(2 * rf, max(-2 * rf, np.random.randn() * rf))
    sc = min(1 + sf, max(1 - sf, np.random.randn() * sf + 1))
    if np.random.uniform() <= 0.6:
        rot = 0
    return flip, pn, rot, sc


def test_augmentation_draws_and_statistics():
    t = MeshImageCrop(augment=True)
    np.random.seed(11)
    ours = [t.draw({}) for _ in range(4000)]
    np.random.seed(11)
    spin = [_spin_augm_params() for _ in range(4000)]
    for (f, pn, rot, sc), (f2, pn2, rot2, sc2) in zip(ours, spin):   # SPIN's draws, in SPIN's order
        assert f == bool(f2) and rot == rot2 and sc == sc2 and np.array_equal(pn, pn2)
    flip = np.array([d[0] for d in ours])
    rot = np.array([d[2] for d in ours])
    sc = np.array([d[3] for d in ours])
    pn = np.array([d[1] for d in ours])
    assert abs(flip.mean() - 0.5) < 0.03
    assert abs((rot != 0).mean() - 0.4) < 0.03
    assert np.abs(rot).max() == 60 and 0.005 < (np.abs(rot) == 60).mean() < 0.04
    assert 24 < rot[rot != 0].std() < 32
    assert sc.min() == 0.75 and sc.max() == 1.25 and abs((np.abs(sc - 1) == 0.25).mean() - 0.317) < 0.03
    assert pn.min() >= 0.6 and pn.max() <= 1.4 and pn.min() < 0.62 and pn.max() > 1.38


def test_pixel_noise_per_rgb_channel():
    img = np.full((H, W, 3), 100, np.uint8)
    t = MeshImageCrop(augment=True)
    seen = []
    for seed in range(60):
        np.random.seed(seed)
        flip, pn, rot, sc = t.draw({})
        np.random.seed(seed)
        r = t(_sample(img))
        assert (r['flip'], r['rotation'], r['scale_factor']) == (flip, rot, sc)
        bgr = r['img'][S // 2, S // 2].astype(float)
        np.testing.assert_allclose(bgr[::-1], np.round(100 * pn), atol=0.51)   # pn[0] is red
        assert 60 <= bgr.min() and bgr.max() <= 140
        seen.append(bgr)
    seen = np.array(seen)
    assert seen.std(0).min() > 10 and np.abs(seen[:, 0] - seen[:, 2]).max() > 20   # independent channels


def test_batched_pipeline_equals_per_item():
    imgs = [_dots_image([[300 + 10 * i, 220]]) for i in range(3)]
    pipe = [MeshImageCrop(augment=True), PackMeshInputs()]
    assert is_batched_pipeline(pipe)
    np.random.seed(5)
    one = [Compose(pipe)(_sample(im, idx=i)) for i, im in enumerate(imgs)]
    np.random.seed(5)
    many = run_batched(pipe, [_sample(im, idx=i) for i, im in enumerate(imgs)])
    for a, b in zip(one, many):
        assert torch.equal(a['inputs'], b['inputs'])
        np.testing.assert_array_equal(a['data_samples'].gt_instances.joints_2d,
                                      b['data_samples'].gt_instances.joints_2d)


# -------------------------------------------------------------------------------------- crop errors
@pytest.mark.parametrize('center, scale, what', [((-500.0, 200.0), 1.0, 'entirely outside'),
                                                 ((300.0, 1200.0), 1.0, 'entirely outside'),
                                                 ((np.nan, 200.0), 1.0, 'non-finite'),
                                                 ((300.0, 200.0), np.inf, 'non-finite'),
                                                 ((300.0, 200.0), 0.0, '> 0')])
def test_crop_bad_box(center, scale, what):
    with pytest.raises(MeshImageError, match=what) as e:
        MeshImageCrop()(_sample(_dots_image([[300, 220]]), center, scale, idx=42))
    assert '/data/img_42.jpg' in str(e.value) and 'sample 42' in str(e.value)
    assert isinstance(e.value, MPTUserError)
    # a box that overlaps the image only partly is fine (zero padding, as SPIN)
    MeshImageCrop()(_sample(_dots_image([[300, 220]]), (-90.0, 200.0), 1.0))


# ------------------------------------------------------------------------------------ LoadMeshImage
def _load(**results):
    return LoadMeshImage()(dict(sample_idx=3, **results))


def test_load_formats(tmp_path):
    rng = np.random.default_rng(6)
    gray = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'gray.png'), gray)
    r = _load(img_path=str(tmp_path / 'gray.png'))
    assert r['img'].shape == (30, 40, 3) and r['img'].dtype == np.uint8
    assert r['img_shape'] == (30, 40) and r['ori_shape'] == (30, 40)
    for c in range(3):
        np.testing.assert_array_equal(r['img'][..., c], gray)

    bgra = rng.integers(0, 256, (20, 25, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / 'rgba.png'), bgra)
    np.testing.assert_array_equal(_load(img_path=str(tmp_path / 'rgba.png'))['img'], bgra[..., :3])

    deep = rng.integers(0, 65536, (20, 25, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    np.testing.assert_array_equal(_load(img_path=str(tmp_path / 'deep.png'))['img'],
                                  (deep >> 8).astype(np.uint8))          # the high byte

    color = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (0, 0), 2)
    ok, jpg = cv2.imencode('.jpg', color, [cv2.IMWRITE_JPEG_QUALITY, 98])
    r = _load(img_bytes=jpg.tobytes(), img_path='/x/train.img.tsv#5')     # METRO TSV row
    assert r['img'].shape == (48, 64, 3) and np.abs(r['img'].astype(int) - color).mean() < 3
    assert 'img_bytes' not in r
    # bytes after the end-of-image marker (padded files) are fine
    (tmp_path / 'pad.jpg').write_bytes(jpg.tobytes() + b'\0' * 100)
    np.testing.assert_array_equal(_load(img_path=str(tmp_path / 'pad.jpg'))['img'], r['img'])


def test_load_errors(tmp_path):
    color = cv2.GaussianBlur(np.random.default_rng(7).integers(0, 256, (96, 128, 3), dtype=np.uint8),
                             (0, 0), 2)
    jpg = cv2.imencode('.jpg', color)[1].tobytes()
    png = cv2.imencode('.png', color)[1].tobytes()
    assert cv2.imdecode(np.frombuffer(jpg[:len(jpg) // 2], np.uint8), cv2.IMREAD_COLOR) is not None, \
        'OpenCV decodes a truncated JPEG partially: the case the EOI check is for'
    (tmp_path / 'trunc.jpg').write_bytes(jpg[:len(jpg) // 2])
    (tmp_path / 'trunc.png').write_bytes(png[:len(png) - 20])
    # JPEG markers present (SOI, SOS, EOI) but garbage in between
    corrupt = b'\xff\xd8\xff\xe0' + bytes(range(256)) * 4 + b'\xff\xda\x00\xff\xd9'
    (tmp_path / 'corrupt.jpg').write_bytes(corrupt)
    (tmp_path / 'garbage.jpg').write_bytes(b'this is not an image')
    (tmp_path / 'empty.jpg').write_bytes(b'')
    cases = [('missing.jpg', 'not found'), ('trunc.jpg', 'truncated JPEG'), ('trunc.png', 'truncated PNG'),
             ('corrupt.jpg', 'not a decodable image'), ('garbage.jpg', 'not a decodable image'),
             ('empty.jpg', 'empty')]
    for name, what in cases:
        path = str(tmp_path / name)
        with pytest.raises(MeshImageError, match=what) as e:
            _load(img_path=path)
        assert path in str(e.value) and 'sample 3' in str(e.value), str(e.value)
        assert isinstance(e.value, MPTUserError)
    with pytest.raises(MeshImageError, match=r'train.img.tsv#9 \(sample 3\): a truncated JPEG'):
        _load(img_bytes=jpg[:-300], img_path='train.img.tsv#9')


# ----------------------------------------------------------------------------- pack + preprocessor
_JPG = cv2.imencode('.jpg', _dots_image([[300, 220], [330, 250], [280, 200]]))[1].tobytes()


def _packed_batch(n_samples=4):
    """Samples through LoadMeshImage → MeshImageCrop(test) → PackMeshInputs, with mixed flags."""
    pipe = Compose([LoadMeshImage(), MeshImageCrop(), PackMeshInputs()])
    out = []
    for i in range(n_samples):
        r = _sample(None, idx=i, img_bytes=_JPG, gender=np.int64(i % 3))
        r['keypoints_2d_j24'][::5, 2] = 0
        r['keypoints_3d_j24'][1::4, 3] = 0.5
        if i == 1:
            r.update(has_smpl=np.float32(0), has_3d_joints=np.float32(0))
        if i == 2:
            r.update(has_2d_joints=np.float32(0))
        out.append(pipe(r))
    return out


def test_pack_fields():
    packed = _packed_batch(2)
    ds = packed[0]['data_samples']
    g = ds.gt_instances
    assert packed[0]['inputs'].shape == (3, S, S) and packed[0]['inputs'].dtype == torch.uint8
    shapes = dict(joints_2d=(1, 24, 3), joints_3d=(1, 24, 4), smpl_pose=(1, 72), smpl_betas=(1, 10),
                  smpl_gender=(1, ), has_smpl=(1, ), has_2d_joints=(1, ), has_3d_joints=(1, ),
                  warp_mat=(1, 2, 3), bbox_center=(1, 2), bbox_scale=(1, ))
    for k, shape in shapes.items():
        assert np.asarray(getattr(g, k)).shape == shape, k
    np.testing.assert_allclose(g.bbox_center[0], [300, 220])
    np.testing.assert_allclose(g.bbox_scale[0], 1.5)
    assert g.joints_3d.dtype == np.float32 and g.smpl_gender.dtype == np.int64
    meta = ds.metainfo
    for k in ('img_path', 'id', 'sample_idx', 'dataset_name', 'input_size', 'flip', 'ori_shape'):
        assert k in meta, k
    assert meta['ori_shape'] == (H, W) and meta['flip'] is False and meta['input_size'] == (S, S)
    crop = MeshImageCrop()(LoadMeshImage()(_sample(None, idx=0, img_bytes=_JPG)))['img']
    np.testing.assert_array_equal(packed[0]['inputs'].numpy().transpose(1, 2, 0), crop)


@pytest.fixture(scope='module')
def preprocessor(toy_smpl):
    p = toy_smpl['paths']
    body = dict(model_path=p['smpl_dir'], h36m_regressor=p['h36m_regressor'])
    return MeshImagePreprocessor(body_model=body, mesh_sampler=p['mesh_downsampling'])


def _expected_mesh(model, pose, betas, down):
    v, _ = _smpl(model, pose, betas)
    v = v - model.regress(torch.as_tensor(v)[None], 'h36m')[0, 0].numpy()
    levels = [v]
    for D in down:
        levels.append(D @ levels[-1])
    return levels


def test_preprocessor_targets(preprocessor, toy_smpl):
    packed = _packed_batch(4)
    # MeshImageCrop zeroes the 3D conf of has_3d_joints = 0 samples; the preprocessor masks by itself
    packed[1]['data_samples'].gt_instances.joints_3d[..., 3] = 1
    data = pseudo_collate(packed)
    out = preprocessor(data, training=False)
    x, t = out['inputs'], out['targets']
    # normalisation: (rgb - mean) / std of the packed uint8 BGR crops
    bgr = np.stack([p['inputs'].numpy() for p in packed]).astype(np.float64)
    rgb = bgr[:, ::-1]
    mean = np.array([123.675, 116.28, 103.53])[None, :, None, None]
    std = np.array([58.395, 57.12, 57.375])[None, :, None, None]
    assert x.shape == (4, 3, S, S) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), (rgb - mean) / std, atol=1e-5)

    gts = [p['data_samples'].gt_instances for p in packed]
    j3d = np.concatenate([g.joints_3d for g in gts])[:, J24_TO_J14]
    j2d = np.concatenate([g.joints_2d for g in gts])[:, J24_TO_J14]
    has3 = np.array([1, 0, 1, 1.0])
    has2 = np.array([1, 1, 0, 1.0])
    np.testing.assert_allclose(t['joints_3d'].numpy(), j3d[..., :3])
    np.testing.assert_allclose(t['joints_3d_visible'].numpy(), j3d[..., 3] * has3[:, None])
    np.testing.assert_allclose(t['joints_2d'].numpy(), j2d[..., :2])
    np.testing.assert_allclose(t['joints_2d_visible'].numpy(), j2d[..., 2] * has2[:, None])
    assert set(t['joints_3d_visible'][0].tolist()) == {0.5, 1.0}      # the conf column is used
    np.testing.assert_array_equal(t['has_vertices'].numpy(), [1, 0, 1, 1])

    down = load_mesh_sampling(toy_smpl['paths']['mesh_downsampling'])['D']
    assert t['vertices'].shape == (4, 6890, 3) and t['vertices_sub'].shape == (4, 1723, 3)
    assert t['vertices_sub2'].shape == (4, 431, 3)
    for i, g in enumerate(gts):
        names = ('vertices', 'vertices_sub', 'vertices_sub2')
        if i == 1:
            for n in names:
                assert not t[n][i].abs().any()
            continue
        exp = _expected_mesh(toy_smpl['neutral'], g.smpl_pose[0], g.smpl_betas[0], down)
        for n, e in zip(names, exp):
            np.testing.assert_allclose(t[n][i].numpy(), e, atol=2e-5)
        # eval: per-sample ground truth for MeshMetric
        gi = out['data_samples'][i].gt_instances
        np.testing.assert_allclose(gi.vertices, exp[0][None], atol=2e-5)
        np.testing.assert_allclose(gi.keypoints_3d, j3d[i:i + 1, :, :3])
        assert gi.keypoints_3d_visible.shape == (1, 14) and gi.has_vertices.shape == (1, )
        np.testing.assert_array_equal(gi.vertex_root, np.zeros((1, 3)))
    assert out['data_samples'][1].gt_instances.has_vertices[0] == 0
    for k, v in t.items():
        assert v.dtype == torch.float32 and v.device == preprocessor.mean.device, k


def test_preprocessor_training_attaches_nothing(preprocessor):
    data = pseudo_collate(_packed_batch(2))
    out = preprocessor(data, training=True)
    assert 'keypoints_3d' not in out['data_samples'][0].gt_instances
    assert out['targets']['vertices'].shape == (2, 6890, 3)


def test_preprocessor_gendered_gt(toy_smpl):
    p = toy_smpl['paths']
    body = dict(model_path=p['smpl_dir'], h36m_regressor=p['h36m_regressor'])
    pp = MeshImagePreprocessor(body_model=body, mesh_sampler=p['mesh_downsampling'], gendered_gt=True)
    packed = _packed_batch(4)           # genders 0, 1, 2, 0; sample 1 has no SMPL
    t = pp(pseudo_collate(packed), training=True)['targets']
    down = load_mesh_sampling(p['mesh_downsampling'])['D']
    for i, gender in ((0, 'neutral'), (2, 'female'), (3, 'neutral')):
        g = packed[i]['data_samples'].gt_instances
        exp = _expected_mesh(toy_smpl[gender], g.smpl_pose[0], g.smpl_betas[0], down)
        np.testing.assert_allclose(t['vertices'][i].numpy(), exp[0], atol=2e-5)
        np.testing.assert_allclose(t['vertices_sub2'][i].numpy(), exp[2], atol=2e-5)
        if gender != 'neutral':
            neutral = _expected_mesh(toy_smpl['neutral'], g.smpl_pose[0], g.smpl_betas[0], down)[0]
            assert np.abs(exp[0] - neutral).max() > 5e-3     # the gender's model matters
    # male sample through a batch where it has SMPL
    packed[1]['data_samples'].gt_instances.has_smpl[:] = 1
    t = pp(pseudo_collate(packed), training=True)['targets']
    g = packed[1]['data_samples'].gt_instances
    exp = _expected_mesh(toy_smpl['male'], g.smpl_pose[0], g.smpl_betas[0], down)
    np.testing.assert_allclose(t['vertices'][1].numpy(), exp[0], atol=2e-5)


def test_preprocessor_needs_h36m_regressor(tmp_path, toy_smpl):
    import shutil
    src = toy_smpl['paths']['smpl_neutral']
    shutil.copy(src, tmp_path / 'SMPL_NEUTRAL.pkl')
    with pytest.raises(ValueError, match='Human3.6M'):
        MeshImagePreprocessor(body_model=dict(model_path=str(tmp_path)),
                              mesh_sampler=toy_smpl['paths']['mesh_downsampling'])
    assert osp.isfile(src)


@pytest.mark.parametrize('mode', ['missing', 'always', 'never'])
def test_preprocessor_joints_from_mesh(toy_smpl, mode):
    """SPIN's / mmhuman3d's 3DPW files carry SMPL but no 3D joints: by default the 3D targets of such
    samples are the LSP-14 joints regressed from the GT mesh (what SPIN evaluates), labelled joints
    win where they exist unless 'always'; 'never' leaves them masked."""
    p = toy_smpl['paths']
    body = dict(model_path=p['smpl_dir'], h36m_regressor=p['h36m_regressor'])
    pp = MeshImagePreprocessor(body_model=body, mesh_sampler=p['mesh_downsampling'],
                               joints_from_mesh=mode)
    packed = _packed_batch(4)
    gts = [q['data_samples'].gt_instances for q in packed]
    gts[1].has_smpl[:] = 1          # SMPL but no 3D joints (has_3d_joints 0)
    labelled = np.concatenate([g.joints_3d for g in gts])[:, J24_TO_J14]
    t = pp(pseudo_collate(packed), training=True)['targets']
    down = load_mesh_sampling(p['mesh_downsampling'])['D']
    for i in (0, 1):
        mesh = _expected_mesh(toy_smpl['neutral'], gts[i].smpl_pose[0], gts[i].smpl_betas[0], down)[0]
        from_mesh = toy_smpl['neutral'].regress(torch.as_tensor(mesh)[None], 'lsp')[0].numpy()
        use_mesh = mode == 'always' or (mode == 'missing' and i == 1)
        expected = from_mesh if use_mesh else labelled[i, :, :3]
        np.testing.assert_allclose(t['joints_3d'][i].numpy(), expected, atol=2e-5)
        vis = t['joints_3d_visible'][i].numpy()
        if use_mesh:
            assert (vis == 1).all()
        elif i == 1:
            assert (vis == 0).all()
    with pytest.raises(ValueError, match='joints_from_mesh'):
        MeshImagePreprocessor(body_model=body, mesh_sampler=p['mesh_downsampling'],
                              joints_from_mesh='sometimes')
    # gendered meshes come with the joints of those meshes (SPIN / mmhuman3d), never the label's
    # neutral joints next to a gendered mesh
    assert MeshImagePreprocessor(body_model=body, mesh_sampler=p['mesh_downsampling']
                                 ).joints_from_mesh == 'missing'
    assert MeshImagePreprocessor(body_model=body, mesh_sampler=p['mesh_downsampling'],
                                 gendered_gt=True).joints_from_mesh == 'always'
