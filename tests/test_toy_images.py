"""Toy image sets: the written labels are the ones that render the image.

Independent checks: the 2D labels against a pinhole projection of the 3D labels with the recorded
camera; the body in the JPEG (pixels that differ from the re-rendered background) against a mask
rendered from an independent SMPL call on the recorded pose / betas / translation; the joints
regressed from that mesh against the 3D labels; the world floor under the recorded camera.
"""
import base64
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

from mmpose_mpt.body_models import SMPL, toy_body_model_paths
from mmpose_mpt.body_models.j24 import HUMANDATA_TO_J24, J24_PELVIS_INDEX, j24_from_regressed
from mmpose_mpt.datasets.toy_images import make_toy_images, render_toy_background, scene_of
from mmpose_mpt.visualization import render_mesh

SIZE = (320, 240)
SPLITS = {'train': 4, 'test': 3}
# J24 slots the silhouette must contain when visible: pelvis, hips, shoulders
TORSO = [J24_PELVIS_INDEX, 2, 3, 8, 9]


@pytest.fixture(scope='module')
def toy_set(toy_data_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('toy_images'))
    bm = toy_body_model_paths(toy_data_root)['body_models']
    res = make_toy_images(out, bm, splits=SPLITS, image_size=SIZE, seed=1)
    return dict(out=out, bm=bm, res=res)


@pytest.fixture(scope='module')
def smpl(toy_data_root):
    p = toy_body_model_paths(toy_data_root)
    return SMPL(p['smpl_dir'], gender='neutral', h36m_regressor=p['h36m_regressor'])


def _spin(toy_set, split):
    with np.load(osp.join(toy_set['out'], 'spin', f'{split}.npz')) as z:
        return {k: z[k] for k in z.files}


def _scenes(toy_set, split):
    with np.load(osp.join(toy_set['out'], 'scenes', f'{split}.npz')) as z:
        return {k: z[k] for k in z.files}


def _tsv_rows(path):
    with open(path) as fh:
        return [line.rstrip('\n').split('\t') for line in fh]


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_files_exist_in_each_format(toy_set):
    out, res = toy_set['out'], toy_set['res']
    assert not res['reused']
    with open(res['manifest']) as fh:
        assert json.load(fh)['settings']['splits'] == SPLITS
    for split, n in SPLITS.items():
        files = res['splits'][split]
        jpgs = sorted(os.listdir(files['images']))
        assert jpgs == [f'{i:06d}.jpg' for i in range(n)]
        spin = _spin(toy_set, split)
        assert list(spin['imgname']) == [f'images/{split}/{j}' for j in jpgs]
        assert spin['part'].shape == (n, 24, 3) and spin['S'].shape == (n, 24, 4)
        assert spin['pose'].shape == (n, 72) and spin['shape'].shape == (n, 10)
        assert (spin['has_smpl'] == 1).all() and set(spin['gender']) == {'n'}
        for name in spin['imgname']:
            img = cv2.imread(osp.join(out, name))
            assert img is not None and img.shape == (SIZE[1], SIZE[0], 3)
        # HumanData: the same J24 labels at the human_data indices (compressed columns)
        with np.load(files['humandata'], allow_pickle=True) as z:
            assert int(z['__data_len__']) == n and bool(z['__keypoints_compressed__'])
            assert list(z['image_path']) == list(spin['imgname'])
            cols = np.flatnonzero(z['keypoints2d_mask'] == 1)
            full = np.zeros((n, 190, 3), np.float32)
            full[:, cols] = z['keypoints2d']
            np.testing.assert_allclose(full[:, HUMANDATA_TO_J24], spin['part'], atol=1e-4)
            smpl_d = z['smpl'].item()
            np.testing.assert_allclose(smpl_d['global_orient'], spin['pose'][:, :3], atol=1e-6)
        # METRO TSV: the same JPEG bytes inside, the same labels
        tsv_dir = osp.dirname(files['tsv'])
        img_rows = _tsv_rows(osp.join(tsv_dir, f'{split}.img.tsv'))
        assert [r[0] for r in img_rows] == list(spin['imgname'])
        for key, b64 in img_rows:
            with open(osp.join(out, key), 'rb') as fh:
                assert base64.b64decode(b64) == fh.read()
        for (key, lab), part, pose in zip(_tsv_rows(osp.join(tsv_dir, f'{split}.label.tsv')), spin['part'],
                                          spin['pose']):
            lab = json.loads(lab)[0]
            np.testing.assert_allclose(np.array(lab['2d_joints'])[0], part, atol=1e-4)
            np.testing.assert_allclose(lab['pose'], pose, atol=1e-6)
            assert lab['has_smpl'] == lab['has_2d_joints'] == lab['has_3d_joints'] == 1


def test_the_dataset_reads_all_three_formats_alike(toy_set):
    from mmpose_mpt.datasets import MeshImageDataset
    out, files = toy_set['out'], toy_set['res']['splits']['test']
    items = {}
    for fmt in ('spin', 'humandata', 'tsv'):
        ds = MeshImageDataset(ann_file=files[fmt], data_root=out, data_prefix=dict(img=out), pipeline=[],
                              test_mode=True)
        assert len(ds) == SPLITS['test']
        items[fmt] = [ds.get_data_info(i) for i in range(len(ds))]
    for a, b, c in zip(items['spin'], items['humandata'], items['tsv']):
        with open(a['img_path'], 'rb') as fh:
            assert fh.read() == c['img_bytes']
        assert osp.samefile(a['img_path'], b['img_path'])
        for key in ('center', 'scale', 'keypoints_2d_j24', 'keypoints_3d_j24', 'smpl_pose', 'smpl_betas'):
            np.testing.assert_allclose(a[key], b[key], atol=1e-4, err_msg=key)
            np.testing.assert_allclose(a[key], c[key], atol=1e-4, err_msg=key)


def test_2d_labels_are_the_projection_of_the_3d_labels(toy_set):
    W, H = SIZE
    for split in SPLITS:
        spin, sc = _spin(toy_set, split), _scenes(toy_set, split)
        X = spin['S'][..., :3].astype(np.float64)
        conf = spin['S'][..., 3] > 0
        assert (spin['S'][:, [13, 15], 3] == 0).all() and (X[..., 2][conf] > 2.0).all()  # metres, in front
        X[~conf] = 1.0  # no source (zeros): any point in front of the camera
        px = sc['cam_f'][:, None] * X[..., :2] / X[..., 2:] + sc['cam_c'][:, None]
        inside = (px[..., 0] >= 0) & (px[..., 0] <= W - 1) & (px[..., 1] >= 0) & (px[..., 1] <= H - 1)
        vis = spin['part'][..., 2] > 0
        np.testing.assert_allclose(spin['part'][..., :2][vis], px[vis], atol=1e-3)
        np.testing.assert_array_equal(vis, inside & conf)
        for i in range(len(X)):  # center / scale from the visible joints' box, 1.2 x as 3DPW's
            lo, hi = px[i][vis[i]].min(0), px[i][vis[i]].max(0)
            np.testing.assert_allclose(spin['center'][i], (lo + hi) / 2, atol=1e-3)
            np.testing.assert_allclose(spin['scale'][i], 1.2 * (hi - lo).max() / 200, rtol=1e-5)


def test_the_image_shows_the_labelled_body(toy_set, smpl):
    W, H = SIZE
    kernel = np.ones((3, 3), np.uint8)
    for split in SPLITS:
        spin, sc = _spin(toy_set, split), _scenes(toy_set, split)
        pose = torch.as_tensor(spin['pose'])
        with torch.no_grad():  # an independent SMPL call on the recorded parameters
            v = smpl(betas=torch.as_tensor(spin['shape']), body_pose=pose[:, 3:],
                     global_orient=pose[:, :3])['vertices'].double().numpy() + sc['transl'][:, None]
        for i, name in enumerate(spin['imgname']):
            img = cv2.imread(osp.join(toy_set['out'], name)).astype(np.int64)
            bg = render_toy_background(SIZE, scene_of(sc, i)).astype(np.int64)
            diff = (np.abs(img - bg).max(2) > 30).astype(np.uint8)
            sil = cv2.morphologyEx(diff, cv2.MORPH_OPEN, kernel) > 0  # JPEG ringing removed
            mask = render_mesh(v[i], smpl.faces, image=np.zeros((H, W, 3), np.uint8), color=(255, 255, 255),
                               intrinsics=(tuple(sc['cam_f'][i]), tuple(sc['cam_c'][i]))).max(2) > 127
            assert _iou(sil, mask) > 0.6, (split, i)
            # at the same place: no shift of the mask by up to 4 px overlaps the image's body better
            # than the recorded one (+- 1 px)
            best = max((_iou(sil, np.roll(mask, (dy, dx), (0, 1))), dy, dx)
                       for dy in range(-4, 5) for dx in range(-4, 5))
            assert abs(best[1]) <= 1 and abs(best[2]) <= 1, (split, i, best)
            # the visible torso joints lie on the body in the image
            near = cv2.dilate(sil.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            kp = spin['part'][i]
            for j in TORSO:
                if kp[j, 2] > 0:
                    x, y = int(round(kp[j, 0])), int(round(kp[j, 1]))
                    assert near[y, x] and mask[y, x], (split, i, j)
            # the label box matches the silhouette's box (1.2 x the joints' box vs the body's outline)
            ys, xs = np.nonzero(mask)
            side = max(xs.max() - xs.min(), ys.max() - ys.min())
            assert 0.85 < 200 * spin['scale'][i] / side < 1.4, (split, i)
            ctr = np.array([(xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2])
            assert np.abs(spin['center'][i] - ctr).max() < 0.12 * side, (split, i)


def test_smpl_of_the_recorded_pose_is_the_rendered_mesh(toy_set, smpl):
    for split in SPLITS:
        spin, sc = _spin(toy_set, split), _scenes(toy_set, split)
        pose = torch.as_tensor(spin['pose'])
        with torch.no_grad():
            v0 = smpl(betas=torch.as_tensor(spin['shape']), body_pose=pose[:, 3:], global_orient=pose[:, :3])
            v0 = v0['vertices']
            j0 = j24_from_regressed(smpl.regress(v0, 'h36m').numpy(), smpl.regress(v0, 'coco').numpy())
        S = spin['S']
        # root-aligned: the pose (camera-frame global orientation included) alone gives the 3D labels
        rel0 = j0[..., :3] - j0[:, J24_PELVIS_INDEX:J24_PELVIS_INDEX + 1, :3]
        rel = S[..., :3] - S[:, J24_PELVIS_INDEX:J24_PELVIS_INDEX + 1, :3]
        conf = S[..., 3] > 0
        np.testing.assert_allclose(rel0[conf], rel[conf], atol=1e-4)
        # and + transl the camera-frame joints themselves
        np.testing.assert_allclose(j0[..., :3][conf] + np.repeat(sc['transl'][:, None], 24, 1)[conf],
                                   S[..., :3][conf], atol=1e-4)
        # back in the world the recorded camera puts that mesh on the floor (its lowest vertex)
        v_cam = v0.double().numpy() + sc['transl'][:, None]
        vw = np.einsum('nvi,nij->nvj', v_cam, sc['cam_R']) + sc['cam_C'][:, None]  # R^T x + C
        np.testing.assert_allclose(vw[..., 2].min(1), sc['floor_z'], atol=1e-4)
        # the body stands upright in the world (z up): head above pelvis above ankles
        Sw = np.einsum('nki,nij->nkj', S[..., :3].astype(np.float64), sc['cam_R']) + sc['cam_C'][:, None]
        assert (Sw[:, 18, 2] > Sw[:, J24_PELVIS_INDEX, 2]).all()
        assert (Sw[:, J24_PELVIS_INDEX, 2] > Sw[:, [0, 5], 2].max(1)).all()


def test_idempotent_and_atomic(toy_set, monkeypatch):
    out, bm = toy_set['out'], toy_set['bm']
    first = osp.join(out, 'images', 'train', '000000.jpg')
    mtime = os.stat(first).st_mtime_ns
    again = make_toy_images(out, bm, splits=SPLITS, image_size=SIZE, seed=1)
    assert again['reused'] and os.stat(first).st_mtime_ns == mtime
    # an interrupted rewrite (other settings) leaves no manifest: the set is not taken as complete
    import mmpose_mpt.datasets.formats as formats

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(formats, 'write_metro_tsv', boom)
    with pytest.raises(KeyboardInterrupt):
        make_toy_images(out, bm, splits={'train': 2}, image_size=SIZE, seed=1)
    assert not osp.exists(osp.join(out, 'toy_images.json'))
    assert not [p for p in os.listdir(out) if p.startswith('.toy_images_tmp')]  # staging removed
    monkeypatch.undo()
    redo = make_toy_images(out, bm, splits=SPLITS, image_size=SIZE, seed=1)
    assert not redo['reused'] and osp.isfile(redo['manifest'])
    # deterministic: the same settings give the same bytes
    spin = _spin(toy_set, 'train')
    np.testing.assert_array_equal(spin['part'], _spin(dict(out=out), 'train')['part'])


def test_another_seed_gives_other_images(toy_set, tmp_path):
    res = make_toy_images(str(tmp_path), toy_set['bm'], splits={'train': 2}, image_size=SIZE, seed=2,
                          formats=('spin', ))
    assert set(os.listdir(tmp_path)) >= {'images', 'spin', 'scenes', 'toy_images.json'}
    assert not osp.exists(osp.join(tmp_path, 'tsv')) and 'tsv' not in res['splits']['train']
    a, b = _spin(toy_set, 'train'), _spin(dict(out=str(tmp_path)), 'train')
    assert not np.allclose(a['pose'][:2], b['pose'])
    for name in b['imgname']:
        ia = cv2.imread(osp.join(toy_set['out'], name)).astype(int)
        ib = cv2.imread(osp.join(str(tmp_path), name)).astype(int)
        assert np.abs(ia - ib).mean() > 10


def test_cli_and_errors(toy_set, tmp_path, capsys):
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools'))
    import make_toy_images as tool

    from mmpose_mpt.datasets.toy_images import TOY_IMAGE_FORMATS
    assert tool.FORMATS == TOY_IMAGE_FORMATS
    # the fixture's set again (same settings): reused, printed
    rc = tool.main([toy_set['out'], '--body-model-dir', toy_set['bm'], '--train', '4', '--test', '3',
                    '--seed', '1', '--preview', str(tmp_path / 'sheet.png')])
    out = capsys.readouterr().out
    assert rc == 0 and 'kept the existing' in out and 'spin/train.npz' in out
    sheet = cv2.imread(str(tmp_path / 'sheet.png'))
    assert sheet is not None and sheet.shape == (SIZE[1], 4 * SIZE[0], 3)  # the 4 training images
    for argv, msg in (([str(tmp_path / 'x'), '--body-model-dir', str(tmp_path / 'none')], 'no smpl/'),
                      ([str(tmp_path / 'x'), '--body-model-dir', toy_set['bm'], '--size', '8', '8'], '32..4096'),
                      ([str(tmp_path / 'x'), '--train', '0', '--test', '0'], 'nothing to make')):
        assert tool.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    with pytest.raises(ValueError, match='integer >= 1'):
        make_toy_images(str(tmp_path / 'y'), toy_set['bm'], splits={'train': 0})


def test_coco_keypoints_read_by_mmpose(toy_set):
    """The COCO person-keypoints file is what mmpose's own CocoDataset reads: the 17 COCO joints of the
    J24 labels (mmpose's order), visibility 2 / 0, the label box, relative image paths."""
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS

    from mmpose_mpt.body_models.j24 import COCO17_TO_J24
    init_default_scope('mmpose')
    out = toy_set['out']
    for split, n in SPLITS.items():
        spin = _spin(toy_set, split)
        ds = DATASETS.build(dict(type='CocoDataset', data_root=out, data_mode='topdown',
                                 ann_file=f'coco/person_keypoints_{split}.json', data_prefix=dict(img=''),
                                 pipeline=[], test_mode=True))
        assert len(ds) == n
        for i in range(n):
            info = ds.get_data_info(i)
            assert info['img_path'] == osp.join(out, str(spin['imgname'][i]))
            coco = spin['part'][i][COCO17_TO_J24]
            vis = coco[:, 2] > 0
            np.testing.assert_allclose(info['keypoints'][0][vis], coco[vis, :2], atol=0.01)
            np.testing.assert_array_equal(info['keypoints_visible'][0], vis.astype(np.float32))
            c, half = spin['center'][i], 100 * spin['scale'][i]
            x0, y0 = np.clip(c - half, 0, SIZE)
            x1, y1 = np.clip(c + half, 0, SIZE)
            np.testing.assert_allclose(info['bbox'][0], [x0, y0, x1, y1], atol=0.02)
