"""MeshImageDataset and the METRO TSV / SPIN npz / HumanData npz readers and writers.

Files are generated in the published layouts, both with the project's writers and (for TSV and
HumanData) written by hand here with plain base64 / json / np.savez code following METRO's
``tsv_writer`` / ``human_mesh_tsv.py`` and mmhuman3d's ``HumanData.dump``, so the readers are checked
against the formats, not only against the writers. Expected J24 slots of hand-written files use the
index lists published by SPIN / mmhuman3d (literals here, not the package's constants).
"""
import base64
import copy
import json
import os
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest

from mmpose_mpt.body_models.j24 import J24_FLIP_PERM
from mmpose_mpt.datasets import MeshImageDataset, MeshImageDatasetError
from mmpose_mpt.datasets import mesh_image_dataset as mid
from mmpose_mpt.datasets.formats import (detect_format, gender_code, write_humandata_npz,
                                         write_metro_tsv, write_spin_npz)
from mmpose_mpt.utils.cli import MPTUserError

# published index lists (research finetune.md 3a/3b: SPIN preprocess/coco.py + h36m.py, mmhuman3d
# keypoints_mapping) -- deliberately literals, not imported
HD_COCO17 = [55, 57, 56, 59, 58, 16, 17, 18, 19, 20, 21, 145, 144, 4, 5, 7, 8]
COCO17_TO_J24 = [19, 20, 21, 22, 23, 9, 8, 10, 7, 11, 6, 3, 2, 4, 1, 5, 0]
HD_H36M17 = [148, 145, 4, 7, 144, 5, 8, 150, 146, 152, 147, 16, 18, 20, 17, 19, 21]  # mmhuman3d order
SPIN_H36M_GLOBAL_IDX = [14, 3, 4, 5, 2, 1, 0, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6]  # same order -> J24

FIELDS = ('center', 'scale', 'keypoints_2d_j24', 'keypoints_3d_j24', 'smpl_pose', 'smpl_betas',
          'has_smpl', 'has_2d_joints', 'has_3d_joints', 'gender')


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def jpeg(h, w, seed):
    rng = np.random.default_rng(seed)
    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    ok, buf = cv2.imencode('.jpg', img)
    assert ok
    return buf.tobytes()


def make_records(n=5, seed=0):
    rng = np.random.default_rng(seed)
    recs, images = [], []
    for i in range(n):
        h, w = 40 + 8 * i, 60 + 4 * i
        kp2 = np.concatenate([rng.uniform(0, 50, (24, 2)), rng.integers(0, 2, (24, 1))], 1)
        kp2[0, 2] = 1  # at least one visible joint
        kp3 = np.concatenate([rng.normal(0, 0.5, (24, 3)), rng.integers(0, 2, (24, 1))], 1)
        kp3[14, 3] = 1
        recs.append(dict(
            img_name=f'imgs/im_{i:03d}.jpg', center=rng.uniform(20, 35, 2), scale=rng.uniform(0.1, 0.3),
            keypoints_2d_j24=kp2, keypoints_3d_j24=kp3, smpl_pose=rng.normal(0, 0.3, 72),
            smpl_betas=rng.normal(0, 1, 10), has_smpl=float(i % 3 != 2), has_2d_joints=1.0,
            has_3d_joints=float(i % 2 == 0), gender='mfn'[i % 3]))
        images.append(jpeg(h, w, seed * 100 + i))
    return recs, images


def write_images(root, recs, images):
    for r, data in zip(recs, images):
        p = osp.join(root, r['img_name'])
        os.makedirs(osp.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data)


def expected(rec, fold_flags):
    """What the dataset must return for a record: float32 values; npz formats (no per-sample flags)
    fold the flags into the confidences, and their has-2D/3D flag = "some confidence > 0"."""
    e = dict(center=np.float32(rec['center']), scale=np.float32(rec['scale']),
             keypoints_2d_j24=np.float32(rec['keypoints_2d_j24']),
             keypoints_3d_j24=np.float32(rec['keypoints_3d_j24']),
             smpl_pose=np.float32(rec['smpl_pose']), smpl_betas=np.float32(rec['smpl_betas']),
             has_smpl=np.float32(rec['has_smpl']), has_2d_joints=np.float32(rec['has_2d_joints']),
             has_3d_joints=np.float32(rec['has_3d_joints']),
             gender=np.int64({'m': 1, 'f': 2}.get(rec['gender'], 0)))
    if fold_flags:
        e['keypoints_2d_j24'][:, 2] *= e['has_2d_joints']
        e['keypoints_3d_j24'][:, 3] *= e['has_3d_joints']
        e['has_2d_joints'] = np.float32((e['keypoints_2d_j24'][:, 2] > 0).any())
        e['has_3d_joints'] = np.float32((e['keypoints_3d_j24'][:, 3] > 0).any())
    return e


def check_item(info, exp, atol=0.0):
    types = dict(center=(np.float32, (2, )), scale=(np.float32, ()), keypoints_2d_j24=(np.float32, (24, 3)),
                 keypoints_3d_j24=(np.float32, (24, 4)), smpl_pose=(np.float32, (72, )),
                 smpl_betas=(np.float32, (10, )), has_smpl=(np.float32, ()),
                 has_2d_joints=(np.float32, ()), has_3d_joints=(np.float32, ()), gender=(np.int64, ()))
    for k in FIELDS:
        v = np.asarray(info[k])
        assert v.dtype == types[k][0] and v.shape == types[k][1], (k, v.dtype, v.shape)
        tol = atol if k in ('center', 'scale') else 0.0
        np.testing.assert_allclose(v, exp[k], atol=tol, rtol=0, err_msg=k)
    assert isinstance(info['id'], str) and isinstance(info['img_path'], str)
    assert isinstance(info['sample_idx'], int) and isinstance(info['dataset_name'], str)


def tsv_bytes_rows(path):
    with open(path, 'rb') as f:
        return f.read().split(b'\n')[:-1]


def write_lines_with_index(path, lines):
    """A tsv + its .lineidx by hand (METRO tsv_writer: offsets of each line)."""
    off = 0
    with open(path, 'wb') as f, open(osp.splitext(path)[0] + '.lineidx', 'w') as fi:
        for line in lines:
            line = line if isinstance(line, bytes) else line.encode()
            fi.write(f'{off}\n')
            f.write(line + b'\n')
            off += len(line) + 1


@pytest.fixture
def logs(monkeypatch):
    got = []
    monkeypatch.setattr(mid, 'print_log', lambda msg, *a, **k: got.append(msg))
    return got


# --------------------------------------------------------------------------------------------------
# METRO TSV
# --------------------------------------------------------------------------------------------------
def test_tsv_writer_round_trip(tmp_path, logs):
    recs, images = make_records(5)
    yml = write_metro_tsv(str(tmp_path), 'train', recs, images)
    for name in ('img', 'label', 'hw', 'linelist'):
        assert osp.isfile(tmp_path / f'train.{name}.tsv') and osp.isfile(tmp_path / f'train.{name}.lineidx')
    # the published layout: key \t base64, key \t json list with one dict of METRO's keys
    lab_rows = tsv_bytes_rows(tmp_path / 'train.label.tsv')
    key, js = lab_rows[1].split(b'\t')
    lab = json.loads(js)
    assert key.decode() == recs[1]['img_name'] and isinstance(lab, list) and len(lab) == 1
    assert set(lab[0]) == {'center', 'scale', '2d_joints', 'has_2d_joints', '3d_joints', 'has_3d_joints',
                           'pose', 'betas', 'has_smpl', 'gender'}
    assert np.shape(lab[0]['2d_joints']) == (1, 24, 3) and np.shape(lab[0]['3d_joints']) == (1, 24, 4)
    img_rows = tsv_bytes_rows(tmp_path / 'train.img.tsv')
    assert base64.b64decode(img_rows[3].split(b'\t')[1]) == images[3]
    hw = json.loads(tsv_bytes_rows(tmp_path / 'train.hw.tsv')[2].split(b'\t')[1])
    assert hw == [{'height': 56, 'width': 68}]

    ds = MeshImageDataset(ann_file=yml, pipeline=[], test_mode=True, dataset_name='toy')
    assert len(ds) == 5 and ds.format == 'metro_tsv' and ds.skipped == {}
    assert ds.metainfo['dataset_name'] == 'toy' and ds.metainfo['flip_indices'] == J24_FLIP_PERM
    assert len(logs) == 1 and '5 of 5 samples kept' in logs[0]
    for i in (3, 0, 4, 1, 2):  # out of order: random access
        info = ds.get_data_info(i)
        check_item(info, expected(recs[i], fold_flags=False))
        assert info['id'] == recs[i]['img_name'] and info['sample_idx'] == i
        assert info['img_path'] == f"{tmp_path / 'train.img.tsv'}#{i}"
        assert info['img_bytes'] == images[i]
        img = cv2.imdecode(np.frombuffer(info['img_bytes'], np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (40 + 8 * i, 60 + 4 * i, 3)
    assert ds[2]['id'] == recs[2]['img_name']  # through BaseDataset.__getitem__ / the empty pipeline


def test_tsv_hand_written_layout(tmp_path, logs):
    """A split written by hand after METRO's tsv_writer / human_mesh_tsv.py: labels with nested
    (1,24,D) joints, missing gender (METRO's default 'none'), hw as json or "h w", a linelist subset."""
    rng = np.random.default_rng(1)
    keys = ['s01/a.jpg', 's01/b.jpg', 's02/c.jpg']
    images = [jpeg(30, 50, 7), jpeg(64, 32, 8), jpeg(20, 20, 9)]
    labels = []
    for i, k in enumerate(keys):
        lab = {'center': [10.0 + i, 12.0], 'scale': 0.15 + 0.01 * i,
               '2d_joints': [np.round(np.c_[rng.uniform(0, 20, (24, 2)), np.ones(24)], 3).tolist()],
               'has_2d_joints': 1, '3d_joints': [np.round(np.c_[rng.normal(size=(24, 3)), np.ones(24)],
                                                          4).tolist()],
               'has_3d_joints': 1, 'pose': np.round(rng.normal(size=72), 4).tolist(),
               'betas': np.round(rng.normal(size=10), 4).tolist(), 'has_smpl': 0}
        if i == 1:
            lab['gender'] = 'f'
        labels.append(lab)
    write_lines_with_index(tmp_path / 'val.img.tsv',
                           [f'{k}\t{base64.b64encode(b).decode()}' for k, b in zip(keys, images)])
    write_lines_with_index(tmp_path / 'val.label.tsv', [f'{k}\t{json.dumps([lab])}' for k, lab in
                                                        zip(keys, labels)])
    hw0 = json.dumps([{'height': 30, 'width': 50}])
    write_lines_with_index(tmp_path / 'val.hw.tsv', [f'{keys[0]}\t{hw0}', f'{keys[1]}\t64 32',
                                                     f'{keys[2]}\t[{{"height": 20, "width": 20}}]'])
    write_lines_with_index(tmp_path / 'val.linelist.tsv', ['2', '0'])
    (tmp_path / 'val.yaml').write_text('img: val.img.tsv\nlabel: val.label.tsv\nhw: val.hw.tsv\n'
                                       'linelist: val.linelist.tsv\n')
    ds = MeshImageDataset(ann_file='val.yaml', data_root=str(tmp_path), test_mode=True)
    assert len(ds) == 2 and ds.dataset_name == 'val'
    for pos, row in enumerate((2, 0)):
        info = ds.get_data_info(pos)
        lab = labels[row]
        assert info['id'] == keys[row] and info['img_bytes'] == images[row]
        assert info['img_path'].endswith(f'val.img.tsv#{row}')
        np.testing.assert_array_equal(info['center'], np.float32(lab['center']))
        assert info['scale'] == np.float32(lab['scale'])
        np.testing.assert_array_equal(info['keypoints_2d_j24'], np.float32(lab['2d_joints'][0]))
        np.testing.assert_array_equal(info['keypoints_3d_j24'], np.float32(lab['3d_joints'][0]))
        np.testing.assert_array_equal(info['smpl_pose'], np.float32(lab['pose']))
        assert info['has_smpl'] == 0 and info['has_2d_joints'] == 1 and info['gender'] == 0
    # the '.tsv' entry point (siblings by name), no linelist: all rows; the "h w" hw row parses
    os.remove(tmp_path / 'val.linelist.tsv')
    ds = MeshImageDataset(ann_file=str(tmp_path / 'val.label.tsv'), test_mode=True)
    assert [ds.get_data_info(i)['id'] for i in range(3)] == keys
    assert ds.get_data_info(1)['gender'] == 2
    assert ds._ann.image_hw.tolist() == [[30, 50], [64, 32], [20, 20]]


def test_tsv_lineidx_random_access_and_creation(tmp_path, logs):
    """Rows are read by their offsets: a corrupt row that is never asked for is never parsed, the
    image tsv is not read whole, and a missing .lineidx is created as METRO does."""
    recs, images = make_records(4)
    yml = write_metro_tsv(str(tmp_path), 'train', recs, images)
    img_tsv = tmp_path / 'train.img.tsv'
    rows = tsv_bytes_rows(img_tsv)
    big = b'!' * (6 << 20)  # 6 MB of non-base64 in row 1
    rows[1] = rows[1].split(b'\t')[0] + b'\t' + big
    write_lines_with_index(img_tsv, rows)
    for p in tmp_path.glob('*.lineidx'):
        os.remove(p)
    io_path = '/proc/self/io'

    def rchar():
        with open(io_path) as f:
            return int(next(ln for ln in f if ln.startswith('rchar')).split()[1])

    ds = MeshImageDataset(ann_file=yml, test_mode=True)  # creates the indexes (one streaming pass)
    assert osp.isfile(tmp_path / 'train.img.lineidx')
    offs = [int(x) for x in (tmp_path / 'train.img.lineidx').read_text().split()]
    assert offs == [0, len(rows[0]) + 1, len(rows[0]) + len(rows[1]) + 2,
                    len(rows[0]) + len(rows[1]) + len(rows[2]) + 3]
    if not osp.exists(io_path):
        pytest.skip('no /proc/self/io')
    before = rchar()
    ds = MeshImageDataset(ann_file=yml, test_mode=True)  # indexes exist now
    for i in (3, 0, 2):
        assert ds.get_data_info(i)['img_bytes'] == images[i]
    assert rchar() - before < (1 << 20), 'the image tsv was read (nearly) whole'
    with pytest.raises(MeshImageDatasetError, match=r'train\.img\.tsv row 1 .*not base64'):
        ds.get_data_info(1)


def test_tsv_mismatched_lineidx(tmp_path, logs):
    recs, images = make_records(4)
    yml = write_metro_tsv(str(tmp_path), 'train', recs, images)
    idx_path = tmp_path / 'train.img.lineidx'
    good = idx_path.read_text()
    offs = [int(x) for x in good.split()]
    # an offset inside a line
    idx_path.write_text(''.join(f'{o + (5 if i == 2 else 0)}\n' for i, o in enumerate(offs)))
    with pytest.raises(MeshImageDatasetError, match='line index .* does not match'):
        MeshImageDataset(ann_file=yml)
    # a truncated index: the last indexed "row" spans two lines
    idx_path.write_text(''.join(f'{o}\n' for o in offs[:3]))
    with pytest.raises(MeshImageDatasetError, match='rows|does not match'):
        MeshImageDataset(ann_file=yml)
    # the label tsv's index is checked row by row while it is streamed
    idx_path.write_text(good)
    lab_idx = tmp_path / 'train.label.lineidx'
    lo = [int(x) for x in lab_idx.read_text().split()]
    lab_idx.write_text(''.join(f'{o}\n' for o in [lo[0], lo[2], lo[1], lo[3]]))
    with pytest.raises(MeshImageDatasetError, match='train.label.lineidx does not match'):
        MeshImageDataset(ann_file=yml)
    # an index of line starts of a *different* file (rows reordered): the row key check catches it
    lab_idx.write_text(''.join(f'{o}\n' for o in lo))
    img_rows = tsv_bytes_rows(tmp_path / 'train.img.tsv')
    write_lines_with_index(tmp_path / 'train.img.tsv', [img_rows[1], img_rows[0]] + img_rows[2:])
    ds = MeshImageDataset(ann_file=yml)
    assert ds.get_data_info(2)['img_bytes'] == images[2]
    with pytest.raises(MeshImageDatasetError, match=r"row 0: key 'imgs/im_001.jpg' but the label"):
        ds.get_data_info(0)


def test_tsv_composite_yaml(tmp_path, logs):
    recs_a, img_a = make_records(3, seed=1)
    recs_b, img_b = make_records(4, seed=2)
    for r in recs_b:
        r['img_name'] = r['img_name'].replace('im_', 'b_')
    write_metro_tsv(str(tmp_path / 'set_a'), 'train', recs_a, img_a)
    write_metro_tsv(str(tmp_path / 'set_b'), 'trainval', recs_b, img_b)
    mix = tmp_path / 'mix'
    mix.mkdir()
    (mix / 'train.yaml').write_text(
        'composite: true\n'
        'img:\n- ../set_a/train.img.tsv\n- ../set_b/trainval.img.tsv\n'
        'label:\n- ../set_a/train.label.tsv\n- ../set_b/trainval.label.tsv\n'
        'hw:\n- ../set_a/train.hw.tsv\n- ../set_b/trainval.hw.tsv\n'
        'linelist: train.linelist.tsv\n')
    seq = [(1, 0), (0, 2), (1, 3), (0, 0), (1, 1)]
    write_lines_with_index(mix / 'train.linelist.tsv', [f'{f}\t{r}' for f, r in seq])
    ds = MeshImageDataset(ann_file=str(mix / 'train.yaml'), test_mode=True)
    assert len(ds) == len(seq)
    for pos in (4, 0, 2, 1, 3):
        f, r = seq[pos]
        recs, imgs = (recs_a, img_a) if f == 0 else (recs_b, img_b)
        info = ds.get_data_info(pos)
        check_item(info, expected(recs[r], fold_flags=False))
        assert info['id'] == recs[r]['img_name'] and info['img_bytes'] == imgs[r]
        assert info['img_path'].endswith(('set_a/train.img.tsv#' if f == 0 else 'set_b/trainval.img.tsv#')
                                         + str(r))
    # a linelist naming a source / row that does not exist is an error naming the linelist
    write_lines_with_index(mix / 'train.linelist.tsv', ['0\t1', '2\t0'])
    with pytest.raises(MeshImageDatasetError, match=r'train.linelist.tsv line 2: file index 2'):
        MeshImageDataset(ann_file=str(mix / 'train.yaml'))
    write_lines_with_index(mix / 'train.linelist.tsv', ['0\t1', '1\t9'])
    with pytest.raises(MeshImageDatasetError, match=r'row 9 but .*trainval.img.tsv has 4 rows'):
        MeshImageDataset(ann_file=str(mix / 'train.yaml'))


# --------------------------------------------------------------------------------------------------
# SPIN npz
# --------------------------------------------------------------------------------------------------
def test_spin_round_trip(tmp_path, logs):
    recs, images = make_records(5)
    write_images(str(tmp_path / 'img_root'), recs, images)
    path = str(tmp_path / 'spin_train.npz')
    write_spin_npz(path, recs)
    with np.load(path, allow_pickle=False) as z:  # plain arrays only, SPIN's keys and shapes
        assert set(z.files) == {'imgname', 'center', 'scale', 'part', 'S', 'pose', 'shape', 'has_smpl',
                                'gender'}
        assert z['part'].shape == (5, 24, 3) and z['S'].shape == (5, 24, 4) and z['pose'].shape == (5, 72)
        assert z['shape'].shape == (5, 10) and z['center'].shape == (5, 2) and z['scale'].shape == (5, )
        assert list(z['gender']) == ['m', 'f', 'n', 'm', 'f']
    assert detect_format(path) == 'spin'
    ds = MeshImageDataset(ann_file='spin_train.npz', data_root=str(tmp_path),
                          data_prefix=dict(img='img_root'), test_mode=True)
    assert len(ds) == 5 and ds.format == 'spin'
    for i in (4, 1, 0, 3, 2):
        info = ds.get_data_info(i)
        check_item(info, expected(recs[i], fold_flags=True))
        assert 'img_bytes' not in info and info['id'] == recs[i]['img_name']
        assert info['img_path'] == osp.join(str(tmp_path), 'img_root', recs[i]['img_name'])
        assert cv2.imread(info['img_path']).shape == (40 + 8 * i, 60 + 4 * i, 3)
    # has_3d_joints = 0 records are written with zero confidences and read back as "no 3D"
    assert ds.get_data_info(1)['has_3d_joints'] == 0 and ds.get_data_info(0)['has_3d_joints'] == 1
    # a SPIN file without pose / S / part / gender (e.g. SPIN's lsp test) reads as "none"
    np.savez(str(tmp_path / 'min.npz'), imgname=np.array(['a.jpg']), center=np.array([[5., 6.]]),
             scale=np.array([0.5]))
    info = MeshImageDataset(ann_file=str(tmp_path / 'min.npz')).get_data_info(0)
    assert info['has_smpl'] == info['has_2d_joints'] == info['has_3d_joints'] == 0 and info['gender'] == 0


# --------------------------------------------------------------------------------------------------
# HumanData npz
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('compressed', [True, False])
def test_humandata_writer_round_trip(tmp_path, logs, compressed):
    recs, images = make_records(5)
    path = str(tmp_path / 'hd.npz')
    write_humandata_npz(path, recs, compressed=compressed, config='spin_test')
    with np.load(path, allow_pickle=True) as z:  # mmhuman3d HumanData.load's reading
        assert bool(z['__keypoints_compressed__']) == compressed and int(z['__data_len__']) == 5
        assert z['keypoints2d'].shape == ((5, 24, 3) if compressed else (5, 190, 3))
        assert z['keypoints3d_mask'].shape == (190, ) and z['keypoints3d_mask'].sum() == 24
        assert z['bbox_xywh'].shape == (5, 5) and str(z['config']) == 'spin_test'
        smpl = z['smpl'].item()
        assert smpl['body_pose'].shape == (5, 23, 3) and z['meta'].item()['gender'][:2] == ['m', 'f']
    assert detect_format(path) == 'humandata'
    ds = MeshImageDataset(ann_file=path, data_prefix=dict(img=str(tmp_path)), test_mode=True)
    assert len(ds) == 5 and ds.format == 'humandata'
    for i in range(5):
        info = ds.get_data_info(i)
        check_item(info, expected(recs[i], fold_flags=True), atol=1e-4)
        assert info['img_path'] == osp.join(str(tmp_path), recs[i]['img_name'])


def test_humandata_hand_written_coco(tmp_path, logs):
    """HumanData written as mmhuman3d's HumanData.dump does: compressed 'human_data' keypoints of a
    COCO-17 source, (N, 4) boxes, smpl with a flat body_pose and no has_smpl, meta.gender."""
    n = 3
    rng = np.random.default_rng(5)
    coco = np.c_[rng.uniform(0, 100, (n, 17, 2)), rng.integers(0, 2, (n, 17, 1))].astype(np.float32)
    coco[:, 0, 2] = 1
    mask = np.zeros(190, np.float32)
    mask[HD_COCO17] = 1
    full = np.zeros((n, 190, 3), np.float32)
    full[:, HD_COCO17] = coco
    stored = full[:, mask == 1]  # mmhuman3d __remove_zero_pad__: only the mask==1 columns
    bbox = np.array([[10, 20, 40, 80], [0, 0, 50, 30], [5, 5, 10, 10]], np.float32)
    go, bp, betas = rng.normal(size=(n, 3)), rng.normal(size=(n, 69)), rng.normal(size=(n, 10))
    np.savez_compressed(
        str(tmp_path / 'coco.npz'), __key_strict__=False, __data_len__=n, __keypoints_compressed__=True,
        image_path=['train2014/a.jpg', 'train2014/b.jpg', 'train2014/c.jpg'], bbox_xywh=bbox,
        keypoints2d=stored, keypoints2d_mask=mask, keypoints2d_convention='human_data',
        smpl=dict(global_orient=go, body_pose=bp, betas=betas, transl=np.zeros((n, 3))),
        meta=dict(gender=['m', 'f', 'm']), config='coco')
    # the same, uncompressed, with values in columns whose mask is 0 (they must be ignored)
    junk = full.copy()
    junk[:, mask == 0] = rng.uniform(1, 2, junk[:, mask == 0].shape)
    np.savez_compressed(
        str(tmp_path / 'coco_raw.npz'), __key_strict__=False, __data_len__=n,
        __keypoints_compressed__=False, image_path=['train2014/a.jpg', 'train2014/b.jpg', 'train2014/c.jpg'],
        bbox_xywh=bbox, keypoints2d=junk, keypoints2d_mask=mask,
        smpl=dict(global_orient=go, body_pose=bp, betas=betas), meta=dict(gender=['m', 'f', 'm']))
    for name in ('coco.npz', 'coco_raw.npz'):
        _check_coco(MeshImageDataset(ann_file=str(tmp_path / name), bbox_scale=1.2, test_mode=True),
                    n, bbox, coco, go, bp, betas)


def _check_coco(ds, n, bbox, coco, go, bp, betas):
    for i in range(n):
        info = ds.get_data_info(i)
        x, y, w, h = bbox[i]
        np.testing.assert_allclose(info['center'], [x + w / 2, y + h / 2], rtol=1e-6)
        np.testing.assert_allclose(info['scale'], max(w, h) / 200 * 1.2, rtol=1e-6)
        exp = np.zeros((24, 3), np.float32)
        exp[COCO17_TO_J24] = coco[i]
        np.testing.assert_array_equal(info['keypoints_2d_j24'], exp)
        np.testing.assert_allclose(info['smpl_pose'], np.r_[go[i], bp[i]].astype(np.float32))
        np.testing.assert_allclose(info['smpl_betas'], betas[i].astype(np.float32))
        assert info['has_smpl'] == 1 and info['has_2d_joints'] == 1 and info['has_3d_joints'] == 0
        assert info['gender'] == [1, 2, 1][i] and info['id'] == f'train2014/{"abc"[i]}.jpg'


def _h36m_file(path, config, n=2, seed=3):
    rng = np.random.default_rng(seed)
    j17 = np.c_[rng.normal(size=(n, 17, 3)), np.ones((n, 17, 1))].astype(np.float32)
    j17_2d = np.c_[rng.uniform(0, 100, (n, 17, 2)), np.ones((n, 17, 1))].astype(np.float32)
    mask = np.zeros(190, np.float32)
    mask[HD_H36M17] = 1
    k3, k2 = np.zeros((n, 190, 4), np.float32), np.zeros((n, 190, 3), np.float32)
    k3[:, HD_H36M17], k2[:, HD_H36M17] = j17, j17_2d
    np.savez_compressed(path, __key_strict__=True, __data_len__=n, __keypoints_compressed__=True,
                        image_path=[f's_09/{i}.jpg' for i in range(n)],
                        bbox_xywh=np.tile([[0, 0, 100, 100, 1]], (n, 1)).astype(np.float32),
                        keypoints2d=k2[:, mask == 1], keypoints2d_mask=mask,
                        keypoints3d=k3[:, mask == 1], keypoints3d_mask=mask, config=config)
    return j17_2d, j17


def test_humandata_h36m_head_trap(tmp_path, logs):
    path = str(tmp_path / 'h36m_valid_protocol2.npz')
    j2d, j3d = _h36m_file(path, 'h36m_p2')
    ds = MeshImageDataset(ann_file=path, test_mode=True)  # auto: config contains 'h36m'
    for i in range(2):
        info = ds.get_data_info(i)
        exp3 = np.zeros((24, 4), np.float32)
        exp3[SPIN_H36M_GLOBAL_IDX] = j3d[i]  # SPIN / METRO: H36M joint 9 -> Jaw(17), 10 -> Head(18)
        exp2 = np.zeros((24, 3), np.float32)
        exp2[SPIN_H36M_GLOBAL_IDX] = j2d[i]
        np.testing.assert_array_equal(info['keypoints_3d_j24'], exp3)
        np.testing.assert_array_equal(info['keypoints_2d_j24'], exp2)
        assert info['keypoints_3d_j24'][13, 3] == 0  # Top_of_Head_LSP left empty
        assert info['has_smpl'] == 0
    # forced off, the same file gives mmhuman3d's naming: joint 9 in slot 18 (what LSP-14 would read)
    info = MeshImageDataset(ann_file=path, h36m_origin=False).get_data_info(0)
    np.testing.assert_array_equal(info['keypoints_3d_j24'][18], j3d[0, 9])
    np.testing.assert_array_equal(info['keypoints_3d_j24'][13], j3d[0, 10])
    # a non-h36m config is not trapped unless asked
    path2 = str(tmp_path / 'other.npz')
    _, j3d2 = _h36m_file(path2, 'mpi_inf_3dhp')
    assert MeshImageDataset(ann_file=path2).get_data_info(0)['keypoints_3d_j24'][13, 3] == 1
    info = MeshImageDataset(ann_file=path2, h36m_origin=True).get_data_info(0)
    np.testing.assert_array_equal(info['keypoints_3d_j24'][18], j3d2[0, 10])
    # the writer with an h36m config writes that layout: all slots but 13 come back
    recs, _ = make_records(3)
    write_humandata_npz(str(tmp_path / 'w.npz'), recs, config='h36m')
    ds = MeshImageDataset(ann_file=str(tmp_path / 'w.npz'))
    for i in range(3):
        exp = expected(recs[i], fold_flags=True)
        exp['keypoints_3d_j24'][13] = 0
        exp['keypoints_2d_j24'][13] = 0
        check_item(ds.get_data_info(i), exp, atol=1e-4)


def test_humandata_pickled_member_never_runs_code(tmp_path, logs):
    marker = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return os.system, (f'touch {marker}', )

    meta = np.empty((), dtype=object)
    meta[()] = dict(gender=Evil())
    np.savez(str(tmp_path / 'evil.npz'), __data_len__=1, image_path=['a.jpg'],
             bbox_xywh=np.array([[0, 0, 10, 10, 1]], np.float32), meta=meta)
    with pytest.raises(MeshImageDatasetError, match=r"evil.npz: key 'meta' holds pickled objects of "
                                                    r"classes posix.system; refused"):
        MeshImageDataset(ann_file=str(tmp_path / 'evil.npz'))
    assert not marker.exists()


# --------------------------------------------------------------------------------------------------
# gender, subsets, bad input, workers
# --------------------------------------------------------------------------------------------------
def test_gender_codes(tmp_path, logs):
    assert [gender_code(g) for g in ('m', 'f', 'n', 'none', 'male', 'Female', '', b'm', 5, None)] == \
        [1, 2, 0, 0, 1, 2, 0, 1, 0, 0]
    recs, images = make_records(6)
    yml = write_metro_tsv(str(tmp_path / 'tsv'), 'train', recs, images)
    write_spin_npz(str(tmp_path / 's.npz'), recs)
    write_humandata_npz(str(tmp_path / 'h.npz'), recs)
    for ann in (yml, str(tmp_path / 's.npz'), str(tmp_path / 'h.npz')):
        ds = MeshImageDataset(ann_file=ann)
        assert [int(ds.get_data_info(i)['gender']) for i in range(6)] == [1, 2, 0, 1, 2, 0], ann
        ds = MeshImageDataset(ann_file=ann, gendered=False)
        assert all(ds.get_data_info(i)['gender'] == 0 for i in range(6))


def test_subsets_and_registry(tmp_path, logs):
    from mmpose.registry import DATASETS
    recs, _ = make_records(10)
    write_spin_npz(str(tmp_path / 's.npz'), recs)
    ds = DATASETS.build(dict(type='MeshImageDataset', ann_file=str(tmp_path / 's.npz'), max_samples=4))
    assert [ds.get_data_info(i)['id'] for i in range(len(ds))] == \
        [recs[i]['img_name'] for i in (0, 3, 6, 9)]
    assert ds.source_indices.tolist() == [0, 3, 6, 9]
    ds = MeshImageDataset(ann_file=str(tmp_path / 's.npz'), indices=[7, 2])
    assert [ds.get_data_info(i)['id'] for i in range(2)] == [recs[7]['img_name'], recs[2]['img_name']]
    assert len(MeshImageDataset(ann_file=str(tmp_path / 's.npz'), indices=3)) == 3
    with pytest.raises(IndexError):
        ds.get_data_info(2)
    # a mixture: mmengine's ConcatDataset compares metainfo, so the per-dataset name must be ignored
    from mmengine.dataset import ConcatDataset
    other = MeshImageDataset(ann_file=str(tmp_path / 's.npz'), dataset_name='other', indices=2)
    with pytest.raises(ValueError, match='does not match'):
        ConcatDataset([ds, other])
    mix = ConcatDataset([ds, other], ignore_keys=['dataset_name'])
    assert len(mix) == 4 and mix[3]['dataset_name'] == 'other'


def _label_rows(path):
    return [(r.split(b'\t')[0].decode(), json.loads(r.split(b'\t')[1])) for r in tsv_bytes_rows(path)]


def _rewrite_labels(path, rows):
    write_lines_with_index(path, [f'{k}\t{json.dumps(v)}' for k, v in rows])


def test_bad_input_errors(tmp_path, logs):
    recs, images = make_records(3)
    yml = write_metro_tsv(str(tmp_path), 'train', recs, images)
    # a missing annotation file / image tsv
    with pytest.raises(MeshImageDatasetError, match='nothere.yaml: annotation file not found'):
        MeshImageDataset(ann_file=str(tmp_path / 'nothere.yaml'))
    os.rename(tmp_path / 'train.img.tsv', tmp_path / 'moved.tsv')
    with pytest.raises(MeshImageDatasetError, match=r'train.yaml: img: train.img.tsv not found'):
        MeshImageDataset(ann_file=yml)
    os.rename(tmp_path / 'moved.tsv', tmp_path / 'train.img.tsv')
    # a missing key / a wrong shape in one label row: the error names the file, row, key and key name
    lab_path = tmp_path / 'train.label.tsv'
    rows = _label_rows(lab_path)
    bad = copy.deepcopy(rows)
    del bad[1][1][0]['center']
    _rewrite_labels(lab_path, bad)
    with pytest.raises(MeshImageDatasetError, match=r"train.label.tsv row 1 \(key imgs/im_001.jpg\): "
                                                    r"the label has no 'center'"):
        MeshImageDataset(ann_file=yml)
    bad = copy.deepcopy(rows)
    bad[2][1][0]['3d_joints'] = [[[0.0, 0.0, 0.0]] * 24]
    _rewrite_labels(lab_path, bad)
    with pytest.raises(MeshImageDatasetError, match=r"row 2 .*'3d_joints' has shape \(24, 3\), expected "
                                                    r"\(24, 4\)"):
        MeshImageDataset(ann_file=yml)
    # values that do not convert at all (ragged lists, text for a flag): one line naming row and file
    for change in (lambda lab: lab.update({'2d_joints': [[[0, 0, 1]] * 23 + [[0, 0]]]}),
                   lambda lab: lab.update(pose=[0.0] * 71 + [[0.0, 1.0]]),
                   lambda lab: lab.update(has_smpl='yes')):
        bad = copy.deepcopy(rows)
        change(bad[1][1][0])
        _rewrite_labels(lab_path, bad)
        with pytest.raises(MeshImageDatasetError, match=r'train.label.tsv row 1 .*malformed label'):
            MeshImageDataset(ann_file=yml)
    _rewrite_labels(lab_path, rows)
    # npz: missing key, wrong shape, wrong N between arrays
    write_spin_npz(str(tmp_path / 's.npz'), recs)
    z = dict(np.load(str(tmp_path / 's.npz')))
    cases = [(dict(z, scale=None), r"s2.npz: SPIN file has no 'scale'"),
             (dict(z, part=z['part'][..., :2]), r"s2.npz: 'part' has shape \(3, 24, 2\), expected "
                                                r"\(3, 24, 3\)"),
             (dict(z, center=z['center'][:2]), r"s2.npz: 'center' has shape \(2, 2\) but 'imgname' has 3")]
    for d, msg in cases:
        np.savez(str(tmp_path / 's2.npz'), **{k: v for k, v in d.items() if v is not None})
        with pytest.raises(MeshImageDatasetError, match=msg):
            MeshImageDataset(ann_file=str(tmp_path / 's2.npz'))
    write_humandata_npz(str(tmp_path / 'h.npz'), recs)
    z = dict(np.load(str(tmp_path / 'h.npz'), allow_pickle=True))
    np.savez(str(tmp_path / 'h2.npz'), **dict(z, keypoints2d=z['keypoints2d'][:, :20]))
    with pytest.raises(MeshImageDatasetError, match=r"h2.npz: 'keypoints2d' \(compressed: the mask==1 "
                                                    r"columns\) has shape \(3, 20, 3\), expected "
                                                    r"\(3, 24, 3\)"):
        MeshImageDataset(ann_file=str(tmp_path / 'h2.npz'))
    np.savez(str(tmp_path / 'h2.npz'), **dict(z, __data_len__=np.array('2x')))
    with pytest.raises(MeshImageDatasetError, match=r'h2.npz: malformed HumanData file'):
        MeshImageDataset(ann_file=str(tmp_path / 'h2.npz'))
    np.savez(str(tmp_path / 'h2.npz'), **{k: v for k, v in z.items() if k != 'bbox_xywh'})
    with pytest.raises(MeshImageDatasetError, match=r"h2.npz: HumanData file has no 'bbox_xywh'"):
        MeshImageDataset(ann_file=str(tmp_path / 'h2.npz'))
    with pytest.raises(MeshImageDatasetError, match='unknown annotation format'):
        (tmp_path / 'x.json').write_text('{}')
        MeshImageDataset(ann_file=str(tmp_path / 'x.json'))
    assert issubclass(MeshImageDatasetError, MPTUserError)


def test_per_sample_problems_are_counted_skips(tmp_path, logs):
    recs, images = make_records(8)
    yml = write_metro_tsv(str(tmp_path), 'train', recs, images)
    lab_path = tmp_path / 'train.label.tsv'
    rows = _label_rows(lab_path)
    rows[1][1][0]['center'][0] = float('nan')                 # non_finite
    rows[2][1][0]['scale'] = 0.0                              # bad_scale
    j = np.asarray(rows[3][1][0]['2d_joints'])
    j[..., 2] = 0
    rows[3][1][0]['2d_joints'] = j.tolist()                   # zero_conf_2d (has_2d_joints = 1)
    rows[4][1][0]['center'] = [-500.0, 10.0]                  # box_outside_image (hw known)
    rows[5][1][0]['has_smpl'] = 0
    rows[5][1][0]['pose'][3] = float('inf')                   # unused: kept, zeroed
    j = np.asarray(rows[6][1][0]['3d_joints'], dtype=float)
    j[0, 7, :3] = np.nan
    j[0, 7, 3] = 1
    rows[6][1][0]['3d_joints'] = j.tolist()
    rows[6][1][0]['has_3d_joints'] = 1                        # non_finite in a used 3D joint
    rows[7][1][0]['center'] = [-5.0, 10.0]
    rows[7][1][0]['scale'] = 0.2                              # centre outside, box overlaps: kept
    j = np.asarray(rows[0][1][0]['3d_joints'], dtype=float)
    j[0, 9, :3], j[0, 9, 3] = np.nan, 0
    rows[0][1][0]['3d_joints'] = j.tolist()                   # NaN in a joint of confidence 0: kept
    _rewrite_labels(lab_path, rows)
    ds = MeshImageDataset(ann_file=yml)
    assert ds.skipped == {'non_finite': 2, 'bad_scale': 1, 'zero_conf_2d': 1, 'box_outside_image': 1}
    assert [ds.get_data_info(i)['id'] for i in range(len(ds))] == \
        [recs[i]['img_name'] for i in (0, 5, 7)]
    info = ds.get_data_info(1)
    assert info['has_smpl'] == 0 and np.isfinite(info['smpl_pose']).all() and info['smpl_pose'][3] == 0
    info = ds.get_data_info(0)
    assert info['has_3d_joints'] == 1 and (info['keypoints_3d_j24'][9] == 0).all()
    assert np.isfinite(info['keypoints_3d_j24']).all()
    assert len(logs) == 1
    assert '3 of 8 samples kept; skipped: non_finite=2, bad_scale=1, zero_conf_2d=1, box_outside_image=1' \
        in logs[0] and 'train.yaml' in logs[0]
    # the same on an npz format: NaN in a visible 2D joint
    write_spin_npz(str(tmp_path / 's.npz'), recs)
    z = dict(np.load(str(tmp_path / 's.npz')))
    z['part'][4, 0, :2] = np.nan
    np.savez(str(tmp_path / 's.npz'), **z)
    ds = MeshImageDataset(ann_file=str(tmp_path / 's.npz'))
    assert ds.skipped == {'non_finite': 1} and len(ds) == 7


def test_dataloader_workers_and_pickling(tmp_path, logs):
    import torch
    recs, images = make_records(6)
    yml = write_metro_tsv(str(tmp_path), 'train', recs, images)
    ds = MeshImageDataset(ann_file=yml, test_mode=True)
    ds.get_data_info(0)  # opens the image tsv in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.get_data_info(5)['img_bytes'] == images[5]
    # forked workers inherit the parent's open file (and its offset): each must reopen its own
    # (spawned workers get the pickled dataset, checked above; spawning costs ~25 s here)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=list,
                                         multiprocessing_context='fork')
    got = {it['sample_idx']: it for batch in loader for it in batch}
    assert sorted(got) == list(range(6))
    for i, it in got.items():
        assert it['img_bytes'] == images[i] and it['id'] == recs[i]['img_name']
        check_item(it, expected(recs[i], fold_flags=False))


def test_box_outside_check_equals_the_crops(tmp_path, logs):
    """A box kept at build time must crop (MeshImageCrop refuses boxes off the image's pixel centres
    [-0.5, w - 0.5]); a box the crop would refuse is a counted skip, not an error in a worker."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    recs, images = make_records(4)
    w = 60 + 4 * 1                                           # image 1's width (make_records)
    half = 100 * 0.2
    recs[1].update(center=np.array([w - 0.25 + half, 20.0]), scale=0.2)   # left edge in [w-0.5, w)
    recs[2].update(center=np.array([-half - 0.25, 20.0]), scale=0.2)      # right edge in (-0.5, 0]
    yml = write_metro_tsv(str(tmp_path), 'train', recs, images)
    pipeline = [dict(type='LoadMeshImage'), dict(type='MeshImageCrop', augment=False)]
    ds = MeshImageDataset(ann_file=yml, pipeline=pipeline)
    assert ds.skipped == {'box_outside_image': 1}
    assert [ds.get_data_info(i)['id'] for i in range(len(ds))] == \
        [recs[i]['img_name'] for i in (0, 2, 3)]
    for i in range(len(ds)):
        assert ds[i]['img'].shape == (224, 224, 3)
