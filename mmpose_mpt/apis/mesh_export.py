"""Writers and readers for predicted meshes (OBJ, binary PLY) and per-image results (JSON).

* :func:`save_obj` / :func:`load_obj`: Wavefront OBJ, ``v x y z`` (metres, fixed decimals) and
  1-based ``f i j k`` triangles; the reader also takes ``i/t/n`` corners, negative (relative)
  indices and polygons (fan-triangulated).
* :func:`save_ply` / :func:`load_ply`: binary little-endian PLY 1.0 (MeshLab, Blender, Open3D and
  trimesh read it): ``element vertex`` with ``float x, y, z`` (float32, so exact round trips of
  float32 predictions) and ``element face`` with ``list uchar int vertex_indices``. The reader
  also takes big-endian and ASCII PLY, any scalar vertex / face properties (only x, y, z and the
  index list are returned) and polygons (fan-triangulated).
* :func:`save_result_json` / :func:`load_result_json`: one image's results as a dict of arrays over
  its N persons (see :func:`save_result_json`); numpy / torch values become lists, NaN / Inf are
  refused (JSON has no such numbers; they would be written as invalid tokens), the arrays' shapes
  are stored so that empty ones (no person found) come back with their shape.

Every writer is atomic: the data go to a temporary file in the target's directory, which then
replaces the target (``os.replace``), so an interrupted export never leaves a partial file under the
final name, and an existing file is only ever replaced whole. Face winding (vertex order within a
face, hence the normals' direction) is kept as given.
"""
import io
import json
import math
import os
import os.path as osp
import tempfile
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..utils.cli import MPTUserError

__all__ = ['MeshExportError', 'save_obj', 'load_obj', 'save_ply', 'load_ply', 'save_result_json',
           'load_result_json', 'RESULT_FORMAT']

PathLike = Union[str, os.PathLike]
RESULT_FORMAT = 'mmpose-mpt-result'
RESULT_VERSION = 1


class MeshExportError(MPTUserError, ValueError):
    """Bad data given to a writer, or a file a reader cannot parse (the message names it)."""


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
def _to_numpy(x: Any) -> Any:
    """torch tensors → numpy (detached, on the CPU); anything else unchanged."""
    if hasattr(x, 'detach') and hasattr(x, 'cpu') and hasattr(x, 'numpy'):
        x = x.detach().cpu()
        if str(x.dtype) == 'torch.bfloat16':  # numpy has no bfloat16
            x = x.float()
        return x.numpy()
    return x


def _check_path(path: PathLike, suffix: str, what: str) -> str:
    path = os.fspath(path)
    if not path.lower().endswith(suffix):
        raise MeshExportError(f'{path}: a {what} file must end in {suffix}')
    if osp.isdir(path):
        raise MeshExportError(f'{path}: is a directory, not a {what} file')
    return path


def _atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory + ``os.replace``."""
    parent = osp.dirname(osp.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=parent)
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a normal new file would get this
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _check_mesh(vertices: Any, faces: Any) -> Tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices, (F, 3) int64 faces, validated."""
    v = np.asarray(_to_numpy(vertices))
    f = np.asarray(_to_numpy(faces))
    if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0:
        raise MeshExportError(f'vertices must be a (V, 3) array with V >= 1, got shape {v.shape}')
    if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
        raise MeshExportError(f'vertices must be real numbers (metres), got dtype {v.dtype}')
    if not np.isfinite(v).all():
        bad = np.argwhere(~np.isfinite(v).all(1)).ravel()
        raise MeshExportError(f'vertices contain NaN or Inf (vertex ids {bad[:10].tolist()}'
                              f'{" ..." if len(bad) > 10 else ""})')
    if f.ndim != 2 or f.shape[1] != 3:
        raise MeshExportError(f'faces must be a (F, 3) array of vertex ids (triangles), got shape {f.shape}')
    if f.size and not np.issubdtype(f.dtype, np.integer):
        raise MeshExportError(f'faces must be integer vertex ids, got dtype {f.dtype}')
    f = f.astype(np.int64)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        bad = np.argwhere(((f < 0) | (f >= len(v))).any(1)).ravel()
        raise MeshExportError(f'faces refer to vertex ids outside [0, {len(v)}) (face ids '
                              f'{bad[:10].tolist()}{" ..." if len(bad) > 10 else ""}, ids {f.min()}..{f.max()})')
    return v, f


def _fan(polygon: List[int]) -> List[Tuple[int, int, int]]:
    return [(polygon[0], polygon[i], polygon[i + 1]) for i in range(1, len(polygon) - 1)]


def _faces_array(tris: List[Tuple[int, int, int]]) -> np.ndarray:
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def _check_read_faces(path: str, faces: np.ndarray, num_vertices: int) -> np.ndarray:
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        raise MeshExportError(f'{path}: faces refer to vertex ids outside [0, {num_vertices})')
    return faces


# ------------------------------------------------------------------------------------------------
# OBJ
# ------------------------------------------------------------------------------------------------
def save_obj(path: PathLike, vertices: Any, faces: Any, precision: int = 6) -> str:
    """Write a triangle mesh as Wavefront OBJ (atomically).

    Args:
        path: output file, ``*.obj``; parent directories are created.
        vertices: (V, 3) numpy array or tensor, metres.
        faces: (F, 3) integer vertex ids (0-based, as ``SMPL.faces``), winding kept.
        precision: decimals of the coordinates (6: micrometres).

    Returns:
        the path written.

    Raises:
        MeshExportError: bad shapes, non-finite vertices, face ids out of range, bad path.
    """
    path = _check_path(path, '.obj', 'OBJ')
    if isinstance(precision, bool) or not isinstance(precision, int) or not 0 <= precision <= 17:
        raise MeshExportError(f'precision must be an integer in [0, 17], got {precision!r}')
    v, f = _check_mesh(vertices, faces)
    buf = io.StringIO()
    buf.write(f'# mmpose-mpt mesh: {len(v)} vertices, {len(f)} faces, metres\n')
    np.savetxt(buf, v.astype(np.float64), fmt=f'v %.{precision}f %.{precision}f %.{precision}f')
    if len(f):
        np.savetxt(buf, f + 1, fmt='f %d %d %d')
    _atomic_write(path, buf.getvalue().encode('ascii'))
    return path


def load_obj(path: PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """Read an OBJ mesh: vertices (V, 3) float64 and faces (F, 3) int64 (0-based).

    ``v`` lines give the vertices (extra values such as w or colours are ignored), ``f`` lines the
    faces (``i``, ``i/t``, ``i//n``, ``i/t/n``; negative ids count from the last vertex so far;
    polygons are fan-triangulated); other statements are skipped.

    Raises:
        MeshExportError: a malformed ``v`` / ``f`` line (named by its line number), face ids out
            of range, no vertices. FileNotFoundError if the file is missing.
    """
    path = os.fspath(path)
    verts: List[Tuple[float, float, float]] = []
    tris: List[Tuple[int, int, int]] = []
    with open(path, 'r', encoding='utf-8', errors='replace') as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if parts[0] == 'v':
                try:
                    x, y, z = (float(t) for t in parts[1:4])
                except ValueError:
                    raise MeshExportError(f'{path}:{lineno}: bad vertex line {line.strip()!r}') from None
                verts.append((x, y, z))
            elif parts[0] == 'f':
                try:
                    ids = [int(t.split('/')[0]) for t in parts[1:]]
                except ValueError:
                    raise MeshExportError(f'{path}:{lineno}: bad face line {line.strip()!r}') from None
                if len(ids) < 3 or 0 in ids:
                    raise MeshExportError(f'{path}:{lineno}: a face needs >= 3 vertex ids (1-based), '
                                          f'got {line.strip()!r}')
                n = len(verts)
                tris.extend(_fan([i - 1 if i > 0 else n + i for i in ids]))
    if not verts:
        raise MeshExportError(f'{path}: no vertices (not an OBJ mesh?)')
    v = np.asarray(verts, dtype=np.float64)
    return v, _check_read_faces(path, _faces_array(tris), len(v))


# ------------------------------------------------------------------------------------------------
# PLY
# ------------------------------------------------------------------------------------------------
_PLY_TYPES = {
    'char': 'i1', 'int8': 'i1', 'uchar': 'u1', 'uint8': 'u1', 'short': 'i2', 'int16': 'i2',
    'ushort': 'u2', 'uint16': 'u2', 'int': 'i4', 'int32': 'i4', 'uint': 'u4', 'uint32': 'u4',
    'float': 'f4', 'float32': 'f4', 'double': 'f8', 'float64': 'f8'
}
_FACE_DTYPE = np.dtype([('count', 'u1'), ('ids', '<i4', (3, ))])  # packed: 13 bytes per face


def save_ply(path: PathLike, vertices: Any, faces: Any) -> str:
    """Write a triangle mesh as binary little-endian PLY (atomically).

    Layout: ``element vertex V`` with ``property float x / y / z`` (float32, metres) and
    ``element face F`` with ``property list uchar int vertex_indices`` (each face: the byte 3 and
    three little-endian int32 vertex ids, 0-based, winding kept).

    Args:
        path: output file, ``*.ply``; parent directories are created.
        vertices: (V, 3) numpy array or tensor, metres (stored as float32).
        faces: (F, 3) integer vertex ids (0-based).

    Returns:
        the path written.

    Raises:
        MeshExportError: bad shapes, non-finite vertices (or beyond float32's range), face ids out of
            range, more than 2**31 - 1 vertices, bad path.
    """
    path = _check_path(path, '.ply', 'PLY')
    v, f = _check_mesh(vertices, faces)
    if len(v) > np.iinfo(np.int32).max:
        raise MeshExportError(f'{len(v)} vertices do not fit int32 face indices')
    v32 = v.astype('<f4')
    if not np.isfinite(v32).all():
        raise MeshExportError('vertices exceed float32\'s range (PLY stores float32)')
    header = ('ply\nformat binary_little_endian 1.0\ncomment mmpose-mpt mesh, metres\n'
              f'element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n'
              f'element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n')
    face_rec = np.empty(len(f), dtype=_FACE_DTYPE)
    face_rec['count'] = 3
    face_rec['ids'] = f
    _atomic_write(path, header.encode('ascii') + np.ascontiguousarray(v32).tobytes() + face_rec.tobytes())
    return path


def _parse_ply_header(path: str, data: bytes):
    end = data.find(b'end_header')
    if not data.startswith(b'ply') or end < 0:
        raise MeshExportError(f'{path}: not a PLY file (no "ply" magic / "end_header")')
    nl = data.find(b'\n', end)
    if nl < 0:
        raise MeshExportError(f'{path}: truncated PLY header')
    lines = data[:end].decode('ascii', errors='replace').replace('\r', '').split('\n')
    fmt, elements = None, []
    for line in lines[1:]:
        parts = line.split()
        if not parts or parts[0] in ('comment', 'obj_info'):
            continue
        if parts[0] == 'format':
            fmt = parts[1] if len(parts) > 1 else None
        elif parts[0] == 'element' and len(parts) == 3:
            elements.append(dict(name=parts[1], count=int(parts[2]), props=[]))
        elif parts[0] == 'property' and elements:
            if len(parts) == 5 and parts[1] == 'list' and parts[2] in _PLY_TYPES and parts[3] in _PLY_TYPES:
                elements[-1]['props'].append((parts[4], _PLY_TYPES[parts[2]], _PLY_TYPES[parts[3]]))
            elif len(parts) == 3 and parts[1] in _PLY_TYPES:
                elements[-1]['props'].append((parts[2], _PLY_TYPES[parts[1]], None))
            else:
                raise MeshExportError(f'{path}: unsupported PLY property line {line!r}')
        else:
            raise MeshExportError(f'{path}: unsupported PLY header line {line!r}')
    if fmt not in ('binary_little_endian', 'binary_big_endian', 'ascii'):
        raise MeshExportError(f'{path}: unsupported PLY format {fmt!r}')
    return fmt, elements, nl + 1


def _read_binary_element(path: str, data: bytes, pos: int, el: dict, endian: str):
    """(records: dict name -> array | list of lists, new position) for one element."""
    props, count = el['props'], el['count']
    if all(p[2] is None for p in props):  # scalars only: one structured read
        dt = np.dtype([(name, endian + t) for name, t, _ in props])
        if pos + dt.itemsize * count > len(data):
            raise MeshExportError(f'{path}: truncated PLY data in element {el["name"]!r}')
        rec = np.frombuffer(data, dtype=dt, count=count, offset=pos)
        return {name: rec[name] for name, _, _ in props}, pos + dt.itemsize * count
    if len(props) == 1:  # one list (faces): fast path when every list has the first one's length
        name, ct, it = props[0]
        cdt, idt = np.dtype(endian + ct), np.dtype(endian + it)
        if count == 0:
            return {name: np.zeros((0, 3), np.int64)}, pos
        if pos + cdt.itemsize > len(data):
            raise MeshExportError(f'{path}: truncated PLY data in element {el["name"]!r}')
        k = int(np.frombuffer(data, dtype=cdt, count=1, offset=pos)[0])
        dt = np.dtype([('n', cdt), ('i', idt, (k, ))])
        if pos + dt.itemsize * count <= len(data):
            rec = np.frombuffer(data, dtype=dt, count=count, offset=pos)
            if (rec['n'] == k).all():
                return {name: rec['i'].astype(np.int64)}, pos + dt.itemsize * count
    out: Dict[str, list] = {name: [] for name, _, _ in props}
    for _ in range(count):  # general case: record by record
        for name, t, it in props:
            cdt = np.dtype(endian + t)
            if pos + cdt.itemsize > len(data):
                raise MeshExportError(f'{path}: truncated PLY data in element {el["name"]!r}')
            val = np.frombuffer(data, dtype=cdt, count=1, offset=pos)[0]
            pos += cdt.itemsize
            if it is not None:
                idt = np.dtype(endian + it)
                n = int(val)
                if pos + idt.itemsize * n > len(data):
                    raise MeshExportError(f'{path}: truncated PLY data in element {el["name"]!r}')
                val = np.frombuffer(data, dtype=idt, count=n, offset=pos).astype(np.int64).tolist()
                pos += idt.itemsize * n
            out[name].append(val)
    return out, pos


def _read_ascii_elements(path: str, body: bytes, elements: list) -> Dict[str, dict]:
    tokens = body.decode('ascii', errors='replace').split()
    pos, res = 0, {}
    try:
        for el in elements:
            out: Dict[str, list] = {name: [] for name, _, _ in el['props']}
            for _ in range(el['count']):
                for name, t, it in el['props']:
                    if it is None:
                        out[name].append(float(tokens[pos]))
                        pos += 1
                    else:
                        n = int(tokens[pos])
                        out[name].append([int(x) for x in tokens[pos + 1:pos + 1 + n]])
                        if len(out[name][-1]) != n:
                            raise IndexError
                        pos += 1 + n
            res[el['name']] = out
    except (IndexError, ValueError):
        raise MeshExportError(f'{path}: truncated or malformed ASCII PLY data') from None
    return res


def load_ply(path: PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """Read a PLY mesh: vertices (V, 3) (float32 for float vertex properties, as stored) and faces
    (F, 3) int64 (0-based).

    Binary little- / big-endian and ASCII PLY; vertex properties x, y, z (others ignored), the
    face list ``vertex_indices`` (or ``vertex_index``); polygons are fan-triangulated, a file
    without faces gives (0, 3).

    Raises:
        MeshExportError: not a PLY file, unsupported format / property, truncated data, no x / y /
            z, face ids out of range. FileNotFoundError if the file is missing.
    """
    path = os.fspath(path)
    with open(path, 'rb') as fh:
        data = fh.read()
    fmt, elements, pos = _parse_ply_header(path, data)
    if fmt == 'ascii':
        parsed = _read_ascii_elements(path, data[pos:], elements)
    else:
        endian = '<' if fmt == 'binary_little_endian' else '>'
        parsed = {}
        for el in elements:
            parsed[el['name']], pos = _read_binary_element(path, data, pos, el, endian)
    vert = parsed.get('vertex')
    if vert is None or not all(k in vert for k in 'xyz'):
        raise MeshExportError(f'{path}: no vertex element with x, y, z properties')
    v = np.stack([np.asarray(vert[k]) for k in 'xyz'], 1)
    if fmt == 'ascii':
        types = {name: t for el in elements if el['name'] == 'vertex' for name, t, _ in el['props']}
        v = v.astype(np.float32 if types['x'] == 'f4' else np.float64)
    else:
        v = v.astype(v.dtype.newbyteorder('=')) if v.dtype.byteorder not in ('=', '|') else v
        v = np.ascontiguousarray(v)
    face = parsed.get('face', {})
    lists = face.get('vertex_indices', face.get('vertex_index'))
    if lists is None:
        faces = np.zeros((0, 3), np.int64)
    elif isinstance(lists, np.ndarray) and lists.ndim == 2 and lists.shape[1] == 3:
        faces = lists.astype(np.int64)
    else:
        tris: List[Tuple[int, int, int]] = []
        for poly in (lists.tolist() if isinstance(lists, np.ndarray) else lists):
            if len(poly) < 3:
                raise MeshExportError(f'{path}: a face with {len(poly)} vertex ids')
            tris.extend(_fan(list(poly)))
        faces = _faces_array(tris)
    return v, _check_read_faces(path, faces, len(v))


# ------------------------------------------------------------------------------------------------
# Per-image results (JSON)
# ------------------------------------------------------------------------------------------------
# known per-person arrays: trailing shape (None = any size) and unit, checked on writing
RESULT_ARRAYS = {
    'boxes': ((4, ), 'px, x1 y1 x2 y2'),
    'box_scores': ((), ''),
    'keypoints': ((None, 2), 'px'),
    'keypoint_scores': ((None, ), ''),
    'keypoints_3d': ((None, 3), 'm'),
    'vertices': ((None, 3), 'm'),
}
SMPL_ARRAYS = {
    'global_orient': ((3, ), 'rad, axis-angle'),
    'body_pose': ((None, ), 'rad, axis-angle'),
    'betas': ((None, ), ''),
    'transl': ((3, ), 'm'),
    'vertex_error': ((), 'm'),
}


def _jsonable(x: Any, where: str, arrays: Optional[Dict[str, dict]]) -> Any:
    """JSON-ready copy of ``x``: arrays → nested lists (shape and dtype noted in ``arrays[where]``
    unless ``arrays`` is None: inside lists, or under keys with a dot, which the dotted path could
    not name); NaN / Inf refused naming ``where`` and the index."""
    x = _to_numpy(x)
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if not isinstance(k, str):
                raise MeshExportError(f'result key {k!r} in {where or "result"} is not a string')
            out[k] = _jsonable(v, f'{where}.{k}' if where else k, None if '.' in k else arrays)
        return out
    if isinstance(x, (list, tuple)):
        try:
            arr = np.asarray(x)
        except ValueError:  # ragged
            arr = None
        if arr is not None and arr.dtype.kind in 'biuf' and arr.size:
            return _jsonable(arr, where, arrays)
        return [_jsonable(v, f'{where}[{i}]', None) for i, v in enumerate(x)]
    if isinstance(x, np.ndarray):
        kind = x.dtype.kind
        if kind == 'f':
            if not np.isfinite(x).all():
                idx = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
                raise MeshExportError(f'result[{where!r}] contains NaN or Inf (first at index {idx}); '
                                      'JSON cannot store them: drop or mask the value before saving')
            x = x.astype(np.float64)
        elif kind in 'iu':
            x = x.astype(np.int64)
        elif kind in 'US':
            return x.tolist()
        elif kind != 'b':
            raise MeshExportError(f'result[{where!r}]: cannot store arrays of dtype {x.dtype} in JSON')
        if arrays is not None:
            arrays[where] = dict(shape=list(x.shape), dtype=str(x.dtype))
        return x.tolist()
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(float(x)):
            raise MeshExportError(f'result[{where!r}] is {float(x)}; JSON cannot store NaN / Inf')
        return float(x)
    if x is None or isinstance(x, str):
        return x
    raise MeshExportError(f'result[{where!r}]: cannot store a {type(x).__name__} in JSON')


def _check_result_shapes(result: dict) -> None:
    """Shapes of the known per-person arrays, and one N across them."""
    sizes: Dict[str, int] = {}

    def check(key: str, value: Any, trailing: tuple) -> None:
        arr = np.asarray(_to_numpy(value))
        if arr.ndim != 1 + len(trailing) or any(t is not None and s != t for s, t in zip(arr.shape[1:], trailing)):
            want = ', '.join(['N'] + ['*' if t is None else str(t) for t in trailing])
            raise MeshExportError(f'result[{key!r}] must be ({want}), got shape {arr.shape}')
        sizes[key] = arr.shape[0]

    for key, (trailing, _) in RESULT_ARRAYS.items():
        if result.get(key) is not None:
            check(key, result[key], trailing)
    smpl = result.get('smpl')
    if smpl is not None:
        if not isinstance(smpl, dict):
            raise MeshExportError(f"result['smpl'] must be a dict of SMPL parameters, got {type(smpl).__name__}")
        for key, (trailing, _) in SMPL_ARRAYS.items():
            if smpl.get(key) is not None:
                check(f'smpl.{key}', smpl[key], trailing)
    if 'keypoints' in sizes and 'keypoint_scores' in sizes:
        k1 = np.asarray(_to_numpy(result['keypoints'])).shape[1]
        k2 = np.asarray(_to_numpy(result['keypoint_scores'])).shape[1]
        if k1 != k2:
            raise MeshExportError(f"result['keypoints'] has {k1} keypoints per person but "
                                  f"result['keypoint_scores'] {k2}")
    if len(set(sizes.values())) > 1:
        raise MeshExportError('the per-person arrays disagree on the number of persons N: ' +
                              ', '.join(f'{k} {n}' for k, n in sizes.items()))


def save_result_json(path: PathLike, result: Dict[str, Any], indent: Union[int, None] = None) -> str:
    """Write one image's results as JSON (atomically).

    Args:
        path: output file, ``*.json``; parent directories are created.
        result: dict over the image's N persons; known keys (all optional) are checked:
            ``boxes`` (N, 4) x1 y1 x2 y2 px, ``box_scores`` (N,), ``keypoints`` (N, K, 2) px,
            ``keypoint_scores`` (N, K), ``keypoints_3d`` (N, J, 3) m, ``vertices`` (N, V, 3) m,
            ``smpl`` dict of ``global_orient`` (N, 3), ``body_pose`` (N, 69), ``betas`` (N, 10),
            ``transl`` (N, 3) (axis-angle rad, m) and ``vertex_error`` (N,) m (as
            :func:`~mmpose_mpt.apis.fit_smpl` returns them). Other keys (e.g. ``camera``, ``img_path``,
            ``faces``) are stored as given: numbers, strings, None, lists, dicts, numpy arrays,
            tensors.
        indent: JSON indentation (None: compact).

    The file is ``{"format": "mmpose-mpt-result", "version": 1, "arrays": {key: {"shape": [...],
    "dtype": "float64" | "int64" | "bool"}}, ...result}``: ``arrays`` names every numeric array
    (numpy, tensor or list of numbers; dotted keys for nested dicts) with its shape, so that
    :func:`load_result_json` restores them, empty ones (no person found) included.

    Returns:
        the path written.

    Raises:
        MeshExportError: NaN / Inf anywhere (naming the key and index), a known array of the wrong
            shape, per-person arrays with different N, values JSON cannot hold, reserved keys
            (``format``, ``version``, ``arrays``), bad path.
    """
    path = _check_path(path, '.json', 'JSON')
    if not isinstance(result, dict):
        raise MeshExportError(f'result must be a dict, got {type(result).__name__}')
    reserved = {'format', 'version', 'arrays'} & set(result)
    if reserved:
        raise MeshExportError(f'result keys {sorted(reserved)} are reserved for the file header')
    _check_result_shapes(result)
    arrays: Dict[str, dict] = {}
    body = _jsonable(result, '', arrays)
    doc = dict(format=RESULT_FORMAT, version=RESULT_VERSION, arrays=arrays, **body)
    text = json.dumps(doc, indent=indent, allow_nan=False)
    _atomic_write(path, (text + '\n').encode('utf-8'))
    return path


def load_result_json(path: PathLike) -> Dict[str, Any]:
    """Read a file of :func:`save_result_json`: the result dict, every numeric array that was
    written (see ``arrays`` there) back as a numpy array of its shape and dtype (floats as float64:
    float32 values come back exactly after ``.astype(np.float32)``; int64; bool).

    Raises:
        MeshExportError: not JSON, not a result file of this format / version, an ``arrays`` entry
            that does not match the data. FileNotFoundError if the file is missing.
    """
    path = os.fspath(path)
    with open(path, 'r', encoding='utf-8') as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as e:
            raise MeshExportError(f'{path}: not valid JSON ({e})') from None
    if not isinstance(doc, dict) or doc.get('format') != RESULT_FORMAT:
        raise MeshExportError(f'{path}: not a {RESULT_FORMAT} file (no "format": "{RESULT_FORMAT}")')
    if doc.get('version') != RESULT_VERSION:
        raise MeshExportError(f'{path}: result format version {doc.get("version")!r}, this reader knows '
                              f'{RESULT_VERSION}')
    arrays = doc.pop('arrays', None) or {}
    doc.pop('format')
    doc.pop('version')
    for key, spec in arrays.items():
        parent, parts = doc, key.split('.')
        try:
            for p in parts[:-1]:
                parent = parent[p]
            value, shape, dtype = parent[parts[-1]], list(spec['shape']), np.dtype(spec['dtype'])
        except (KeyError, TypeError, ValueError):
            raise MeshExportError(f'{path}: "arrays" names {key!r}, which the file does not hold') from None
        try:
            arr = np.asarray(value, dtype=dtype).reshape(shape)
        except (TypeError, ValueError):
            raise MeshExportError(f'{path}: {key!r} does not hold a {dtype} array of shape {shape}') from None
        parent[parts[-1]] = arr
    return doc
