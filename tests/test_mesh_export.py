"""mmpose_mpt.apis.mesh_export: OBJ / PLY / result-JSON writers and readers.

The PLY files are also parsed here by a minimal struct-based reader written from the PLY spec, so
the format is checked, not only the round trip through our own reader.
"""
import json
import os
import struct

import numpy as np
import pytest
import torch

from mmpose_mpt.apis import (MeshExportError, load_obj, load_ply, load_result_json, save_obj, save_ply,
                             save_result_json)
from mmpose_mpt.apis import mesh_export
from mmpose_mpt.utils.cli import MPTUserError


def random_mesh(seed: int = 0, V: int = 300, F: int = 600):
    rng = np.random.default_rng(seed)
    v = (rng.normal(size=(V, 3)) * [0.3, 0.8, 0.2] + [0.1, -0.2, 4.0]).astype(np.float32)
    f = np.stack([rng.choice(V, 3, replace=False) for _ in range(F)]).astype(np.int64)
    return v, f


def tetrahedron():
    """Outward-wound (counter-clockwise seen from outside) tetrahedron: positive signed volume."""
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int64)
    return v, f


def signed_volume(v, f) -> float:
    a, b, c = (v[f[:, i]].astype(np.float64) for i in range(3))
    return float(np.einsum('ij,ij->i', a, np.cross(b, c)).sum() / 6)


def parse_ply_struct(path):
    """Minimal PLY reader for the layout save_ply documents, straight from the spec with struct."""
    data = open(path, 'rb').read()
    end = data.index(b'end_header\n') + len(b'end_header\n')
    header = data[:end].decode('ascii').splitlines()
    assert header[0] == 'ply' and header[1] == 'format binary_little_endian 1.0'
    body = [h for h in header if not h.startswith('comment')]
    V, F = int(body[2].split()[2]), int(body[6].split()[2])
    assert body == ['ply', 'format binary_little_endian 1.0', f'element vertex {V}', 'property float x',
                    'property float y', 'property float z', f'element face {F}',
                    'property list uchar int vertex_indices', 'end_header']
    assert len(data) == end + 12 * V + 13 * F
    verts = [struct.unpack_from('<3f', data, end + 12 * i) for i in range(V)]
    faces, pos = [], end + 12 * V
    for _ in range(F):
        (n, ) = struct.unpack_from('<B', data, pos)
        faces.append(struct.unpack_from(f'<{n}i', data, pos + 1))
        pos += 1 + 4 * n
    return np.array(verts, dtype=np.float32), np.array(faces, dtype=np.int64)


# ------------------------------------------------------------------------------------------------ PLY
def test_ply_round_trip_exact_and_format(tmp_path):
    v, f = random_mesh()
    path = save_ply(tmp_path / 'a' / 'mesh.ply', v, f)  # parent created
    assert path == str(tmp_path / 'a' / 'mesh.ply')
    V, F = load_ply(path)
    assert V.dtype == np.float32 and F.dtype == np.int64
    assert np.array_equal(V, v) and np.array_equal(F, f)
    Vs, Fs = parse_ply_struct(path)
    assert np.array_equal(Vs, v) and np.array_equal(Fs, f)


def test_ply_from_tensors_and_smpl_faces_dtype(tmp_path):
    v, f = random_mesh(1)
    save_ply(tmp_path / 'm.ply', torch.from_numpy(v).double(), f.astype(np.uint32))
    V, F = parse_ply_struct(tmp_path / 'm.ply')
    assert np.array_equal(V, v) and np.array_equal(F, f)


def test_winding_preserved(tmp_path):
    v, f = tetrahedron()
    assert signed_volume(v, f) == pytest.approx(1 / 6)
    for save, load, name in ((save_ply, load_ply, 't.ply'), (save_obj, load_obj, 't.obj')):
        save(tmp_path / name, v, f)
        V, F = load(tmp_path / name)
        assert np.array_equal(F, f)
        assert signed_volume(V, F) == pytest.approx(1 / 6)
    # and the independent parse agrees on the orientation
    assert signed_volume(*parse_ply_struct(tmp_path / 't.ply')) == pytest.approx(1 / 6)


def test_load_ply_ascii_big_endian_polygons(tmp_path):
    ascii_ply = ('ply\nformat ascii 1.0\ncomment hand-written\nelement vertex 4\nproperty float x\n'
                 'property float y\nproperty float z\nproperty uchar red\nelement face 1\n'
                 'property list uchar int vertex_indices\nend_header\n'
                 '0 0 0 255\n1 0 0 0\n1 1 0 0\n0 1 0 0\n4 0 1 2 3\n')
    (tmp_path / 'q.ply').write_text(ascii_ply)
    V, F = load_ply(tmp_path / 'q.ply')
    assert np.array_equal(V, np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32))
    assert np.array_equal(F, [[0, 1, 2], [0, 2, 3]])  # quad fan-triangulated, winding kept
    header = ('ply\nformat binary_big_endian 1.0\nelement vertex 3\nproperty double x\nproperty double y\n'
              'property double z\nelement face 1\nproperty list uchar uint vertex_index\nend_header\n')
    body = struct.pack('>9d', 0, 0, 0, 1, 0, 0, 0, 1, 0) + struct.pack('>B3I', 3, 0, 1, 2)
    (tmp_path / 'be.ply').write_bytes(header.encode() + body)
    V, F = load_ply(tmp_path / 'be.ply')
    assert V.dtype == np.float64 and np.array_equal(V, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert np.array_equal(F, [[0, 1, 2]])


def test_load_ply_errors(tmp_path):
    v, f = random_mesh(2, V=20, F=10)
    save_ply(tmp_path / 'm.ply', v, f)
    data = (tmp_path / 'm.ply').read_bytes()
    (tmp_path / 'cut.ply').write_bytes(data[:-20])
    with pytest.raises(MeshExportError, match='truncated'):
        load_ply(tmp_path / 'cut.ply')
    (tmp_path / 'no.ply').write_bytes(b'solid x\nendsolid\n')
    with pytest.raises(MeshExportError, match='not a PLY'):
        load_ply(tmp_path / 'no.ply')
    bad = data.replace(b'element face 10', b'element face 10').replace(
        b'property list uchar int vertex_indices', b'property list uchar quad vertex_indices')
    (tmp_path / 'bad.ply').write_bytes(bad)
    with pytest.raises(MeshExportError, match='unsupported PLY property'):
        load_ply(tmp_path / 'bad.ply')
    # face ids beyond the vertices
    rec = bytearray(data)
    end = data.index(b'end_header\n') + len(b'end_header\n')
    struct.pack_into('<i', rec, end + 12 * 20 + 1, 99)
    (tmp_path / 'range.ply').write_bytes(bytes(rec))
    with pytest.raises(MeshExportError, match='outside'):
        load_ply(tmp_path / 'range.ply')
    with pytest.raises(FileNotFoundError):
        load_ply(tmp_path / 'missing.ply')


# ------------------------------------------------------------------------------------------------ OBJ
def test_obj_round_trip_to_printed_precision(tmp_path):
    v, f = random_mesh(3)
    save_obj(tmp_path / 'm.obj', v, f)
    V, F = load_obj(tmp_path / 'm.obj')
    assert np.array_equal(F, f)
    assert np.abs(V - v.astype(np.float64)).max() <= 0.5e-6 + 1e-12
    # the text itself: 1-based triangles, 6 decimals
    lines = (tmp_path / 'm.obj').read_text().splitlines()
    vl = [ln for ln in lines if ln.startswith('v ')]
    fl = [ln for ln in lines if ln.startswith('f ')]
    assert len(vl) == len(v) and len(fl) == len(f)
    assert vl[0] == 'v ' + ' '.join(f'{x:.6f}' for x in v[0].astype(np.float64))
    assert fl[0] == 'f ' + ' '.join(str(i + 1) for i in f[0])
    save_obj(tmp_path / 'c.obj', v, f, precision=3)
    V3, _ = load_obj(tmp_path / 'c.obj')
    err = np.abs(V3 - v.astype(np.float64)).max()
    assert 1e-5 < err <= 0.5e-3 + 1e-12


def test_load_obj_corner_formats(tmp_path):
    text = ('# comment\nmtllib x.mtl\no body\nv 0 0 0 1.0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvn 0 0 1\n'
            's off\nf 1/1/1 2/1/1 3/1/1 4/1/1\nf -4//1 -3//1 -1//1\n')
    (tmp_path / 'h.obj').write_text(text)
    V, F = load_obj(tmp_path / 'h.obj')
    assert np.array_equal(V, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    assert np.array_equal(F, [[0, 1, 2], [0, 2, 3], [0, 1, 3]])
    (tmp_path / 'b.obj').write_text('v 0 0 0\nv 1 0 x\n')
    with pytest.raises(MeshExportError, match=r'b.obj:2: bad vertex line'):
        load_obj(tmp_path / 'b.obj')
    (tmp_path / 'r.obj').write_text('v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n')
    with pytest.raises(MeshExportError, match='outside'):
        load_obj(tmp_path / 'r.obj')
    (tmp_path / 'e.obj').write_text('# nothing\n')
    with pytest.raises(MeshExportError, match='no vertices'):
        load_obj(tmp_path / 'e.obj')


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize('save,name', [(save_obj, 'x.obj'), (save_ply, 'x.ply')])
def test_bad_mesh_input(tmp_path, save, name):
    v, f = random_mesh(4, V=10, F=5)
    cases = [
        (v, np.vstack([f, [[0, 1, 10]]]), r'outside \[0, 10\).*face ids \[5\]'),
        (v, np.vstack([f, [[0, -1, 2]]]), 'outside'),
        (v[:, :2], f, r'\(V, 3\)'),
        (v[None], f, r'\(V, 3\)'),
        (v[:0], f[:0], 'V >= 1'),
        (v, f[:, :2], r'\(F, 3\)'),
        (v, np.hstack([f, f[:, :1]]), r'\(F, 3\)'),
        (v, f.astype(np.float32), 'integer'),
        (np.where(np.arange(10)[:, None] == 3, np.nan, v), f, r'NaN or Inf \(vertex ids \[3\]'),
    ]
    for verts, faces, match in cases:
        with pytest.raises(MeshExportError, match=match) as e:
            save(tmp_path / name, verts, faces)
        assert isinstance(e.value, MPTUserError)
        assert not (tmp_path / name).exists()
    other = 'x.ply' if name.endswith('obj') else 'x.obj'
    with pytest.raises(MeshExportError, match='must end in'):
        save(tmp_path / other, v, f)
    os.mkdir(tmp_path / ('d' + name[-4:]))
    with pytest.raises(MeshExportError, match='directory'):
        save(tmp_path / ('d' + name[-4:]), v, f)
    save(tmp_path / name, v, np.zeros((0, 3), np.int64))  # a point cloud is fine
    assert (load_ply if name.endswith('ply') else load_obj)(tmp_path / name)[1].shape == (0, 3)


# ------------------------------------------------------------------------------------------------ atomic
@pytest.mark.parametrize('kind', ['ply', 'obj', 'json'])
def test_atomic_replace_and_interrupted_writes(tmp_path, monkeypatch, kind):
    v, f = random_mesh(5, V=30, F=20)
    path = tmp_path / f'out.{kind}'

    def write(scale):
        if kind == 'ply':
            return save_ply(path, v * scale, f)
        if kind == 'obj':
            return save_obj(path, v * scale, f)
        return save_result_json(path, dict(vertices=(v * scale)[None]))

    write(1.0)
    first = path.read_bytes()
    write(2.0)  # overwrite: the whole new file
    second = path.read_bytes()
    assert second != first
    # an interruption while writing the temporary file, and one just before the replace
    for target in ('fsync', 'replace'):
        with monkeypatch.context() as m:
            m.setattr(mesh_export.os, target, lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
            with pytest.raises(KeyboardInterrupt):
                write(3.0)
        assert path.read_bytes() == second
        assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left behind
    # a new file that could not be completed does not appear at all
    new = tmp_path / f'new.{kind}'
    with monkeypatch.context() as m:
        m.setattr(mesh_export.os, 'replace', lambda *a, **k: (_ for _ in ()).throw(OSError('disk full')))
        with pytest.raises(OSError):
            if kind == 'ply':
                save_ply(new, v, f)
            elif kind == 'obj':
                save_obj(new, v, f)
            else:
                save_result_json(new, dict(vertices=v[None]))
    assert not new.exists() and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# ------------------------------------------------------------------------------------------------ JSON
def full_result(N: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return dict(
        img_path='demo/person.jpg',
        boxes=rng.uniform(0, 640, (N, 4)).astype(np.float32),
        box_scores=rng.uniform(0, 1, N),
        keypoints=rng.uniform(0, 640, (N, 17, 2)).astype(np.float32),
        keypoint_scores=torch.rand(N, 17, generator=torch.Generator().manual_seed(seed)),
        keypoints_3d=rng.normal(0, 0.5, (N, 14, 3)).astype(np.float32),
        camera=dict(weak_perspective=rng.normal(size=(N, 3)), focal_length=5000.0, principal_point=[320, 240]),
        vertices=rng.normal(0, 0.5, (N, 50, 3)).astype(np.float32),
        smpl=dict(global_orient=rng.normal(size=(N, 3)), body_pose=rng.normal(size=(N, 69)),
                  betas=rng.normal(size=(N, 10)), transl=rng.normal(size=(N, 3)),
                  vertex_error=rng.uniform(0, 0.01, N)),
        labels=np.arange(N, dtype=np.int32), valid=np.ones(N, bool), note=None)


def test_result_json_round_trip(tmp_path):
    r = full_result()
    path = save_result_json(tmp_path / 'r' / 'img.json', r)
    raw = json.load(open(path))  # plain JSON anyone can read
    assert raw['format'] == 'mmpose-mpt-result' and raw['version'] == 1
    assert raw['boxes'][1][2] == float(r['boxes'][1, 2]) and raw['img_path'] == 'demo/person.jpg'
    back = load_result_json(path)
    assert set(back) == set(r)
    for k in ('boxes', 'keypoints', 'keypoints_3d', 'vertices'):
        assert back[k].dtype == np.float64 and np.array_equal(back[k].astype(np.float32), r[k]), k
    assert np.array_equal(back['keypoint_scores'].astype(np.float32), r['keypoint_scores'].numpy())
    for k, val in r['smpl'].items():
        assert np.array_equal(back['smpl'][k], val), k
    assert np.array_equal(back['camera']['weak_perspective'], r['camera']['weak_perspective'])
    assert back['camera']['focal_length'] == 5000.0
    assert np.array_equal(back['camera']['principal_point'], [320, 240])
    assert back['labels'].dtype == np.int64 and np.array_equal(back['labels'], [0, 1])
    assert back['valid'].dtype == bool and back['valid'].all()
    assert back['note'] is None and back['img_path'] == 'demo/person.jpg'


def test_result_json_no_person_keeps_shapes(tmp_path):
    r = {k: (v[:0] if isinstance(v, (np.ndarray, torch.Tensor)) else v) for k, v in full_result().items()}
    r['smpl'] = {k: v[:0] for k, v in r['smpl'].items()}
    r['camera'] = None
    back = load_result_json(save_result_json(tmp_path / 'empty.json', r))
    assert back['boxes'].shape == (0, 4) and back['keypoints'].shape == (0, 17, 2)
    assert back['vertices'].shape == (0, 50, 3) and back['smpl']['body_pose'].shape == (0, 69)
    assert back['labels'].shape == (0, ) and back['labels'].dtype == np.int64


def test_result_json_rejects_nan_and_bad_shapes(tmp_path):
    path = tmp_path / 'r.json'
    r = full_result()
    r['keypoints_3d'][1, 5, 2] = np.nan
    with pytest.raises(MeshExportError, match=r"keypoints_3d.*NaN or Inf.*\(1, 5, 2\)"):
        save_result_json(path, r)
    r = full_result()
    r['smpl']['vertex_error'][0] = np.inf
    with pytest.raises(MeshExportError, match=r'smpl\.vertex_error'):
        save_result_json(path, r)
    r = full_result()
    r['camera']['focal_length'] = float('nan')
    with pytest.raises(MeshExportError, match=r'camera\.focal_length'):
        save_result_json(path, r)
    for key, value, match in (
            ('boxes', np.zeros((2, 5)), r"'boxes'.*\(N, 4\).*\(2, 5\)"),
            ('keypoints', np.zeros((2, 17, 3)), r'\(N, \*, 2\)'),
            ('vertices', np.zeros((3, 50, 3)), 'number of persons N'),
            ('keypoint_scores', np.zeros((2, 16)), '17 keypoints per person'),
            ('smpl', [1, 2], 'dict of SMPL parameters'),
            ('extra', object(), 'cannot store a object'),
            ('arrays', 1, 'reserved')):
        r = full_result()
        r[key] = value
        with pytest.raises(MeshExportError, match=match):
            save_result_json(path, r)
    r = full_result()
    r['smpl']['betas'] = np.zeros((3, 10))
    with pytest.raises(MeshExportError, match='number of persons'):
        save_result_json(path, r)
    with pytest.raises(MeshExportError, match='must end in .json'):
        save_result_json(tmp_path / 'r.txt', full_result())
    with pytest.raises(MeshExportError, match='must be a dict'):
        save_result_json(path, [1, 2])
    assert not path.exists()


def test_load_result_json_errors(tmp_path):
    (tmp_path / 'a.json').write_text('{"boxes": []}')
    with pytest.raises(MeshExportError, match='not a mmpose-mpt-result file'):
        load_result_json(tmp_path / 'a.json')
    (tmp_path / 'b.json').write_text('{"format": "mmpose-mpt-result", ')
    with pytest.raises(MeshExportError, match='not valid JSON'):
        load_result_json(tmp_path / 'b.json')
    (tmp_path / 'c.json').write_text('{"format": "mmpose-mpt-result", "version": 99}')
    with pytest.raises(MeshExportError, match='version 99'):
        load_result_json(tmp_path / 'c.json')
    (tmp_path / 'd.json').write_text('{"format": "mmpose-mpt-result", "version": 1, '
                                     '"arrays": {"boxes": {"shape": [1, 4], "dtype": "float64"}}, "boxes": [[1, 2]]}')
    with pytest.raises(MeshExportError, match="'boxes' does not hold"):
        load_result_json(tmp_path / 'd.json')
