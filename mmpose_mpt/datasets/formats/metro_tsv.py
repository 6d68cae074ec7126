"""METRO TSV datasets (microsoft/MeshTransformer ``metro/utils/tsv_file.py``, ``tsv_file_ops.py``,
``metro/datasets/human_mesh_tsv.py``).

Per split (rows are ``\\t``-separated, one per line, all files in the same row order):

* ``X.img.tsv``: ``key \\t base64(JPEG)`` (METRO decodes the last column);
* ``X.label.tsv``: ``key \\t json`` of a list with ONE dict: ``center`` [cx, cy] px, ``scale`` (box side
  / 200), ``2d_joints`` (1, 24, 3) [x, y, conf] px, ``has_2d_joints``, ``3d_joints`` (1, 24, 4)
  [x, y, z, conf] metres, ``has_3d_joints``, ``pose`` (72), ``betas`` (10), ``has_smpl``, optional
  ``gender`` (3DPW; METRO's default 'none');
* ``X.hw.tsv``: ``key \\t json [{"height": h, "width": w}]`` (or ``"h w"``);
* ``X.linelist.tsv``: the rows used, one integer per line;
* ``X.<name>.lineidx`` next to each ``X.<name>.tsv`` (``splitext(tsv)[0] + '.lineidx'``): the byte
  offset of every row, one integer per line;
* ``X.yaml``: ``img``, ``label``, ``hw``, ``linelist`` paths relative to the yaml's folder; or METRO's
  composite form ``composite: true`` with *lists* ``img`` / ``label`` / ``hw`` (one tsv per source)
  and a ``linelist`` of ``file_idx \\t row_idx`` rows (``CompositeTSVFile``).

Reading: rows are reached by seeking to their ``.lineidx`` offset (created by one streaming pass if
missing, as METRO's ``generate_lineidx``); every read checks that the offset starts a line and the
row is exactly one line, and the row key must equal the label's key, so an index that does not match
its file is an error, never a wrong row. Files are opened lazily, once per process (the readers are
pickled to DataLoader workers without their file handles). The image tsv is never read whole: only
its line index and the requested rows. The label / hw tsvs are streamed once at build time into
compact arrays (:class:`MeshAnnotations`).
"""
import base64
import binascii
import json
import os
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ...body_models.j24 import NUM_J24
from .common import MeshAnnotations, MeshImageDatasetError, as_array, gender_code
from .spin_npz import stack_records

__all__ = ['TSVFile', 'MetroTSV', 'write_metro_tsv', 'write_tsv', 'generate_lineidx', 'lineidx_path',
           'METRO_LABEL_KEYS']

METRO_LABEL_KEYS = ('center', 'scale', '2d_joints', 'has_2d_joints', '3d_joints', 'has_3d_joints',
                    'pose', 'betas', 'has_smpl', 'gender')
# how many offsets of an image tsv are spot-checked at build time (each read is checked anyway)
_SPOT_CHECKS = 16


def lineidx_path(tsv_path: str) -> str:
    """METRO's line index of a tsv: ``splitext(tsv)[0] + '.lineidx'`` (train.img.tsv -> train.img.lineidx)."""
    return osp.splitext(tsv_path)[0] + '.lineidx'


def _scan_offsets(path: str) -> np.ndarray:
    offsets, pos = [], 0
    with open(path, 'rb') as f:
        for line in f:
            offsets.append(pos)
            pos += len(line)
    return np.asarray(offsets, np.int64)


def generate_lineidx(tsv_path: str, out_path: Optional[str] = None) -> np.ndarray:
    """Write the ``.lineidx`` of ``tsv_path`` (one streaming pass; atomic rename) and return it."""
    out_path = out_path or lineidx_path(tsv_path)
    offsets = _scan_offsets(tsv_path)
    tmp = f'{out_path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(''.join(f'{int(o)}\n' for o in offsets))
    os.replace(tmp, out_path)
    return offsets


class TSVFile:
    """Random access to the rows of one tsv through its ``.lineidx`` (see the module docstring).

    Args:
        path: the ``.tsv``.
        create_lineidx: write a missing ``.lineidx`` (one pass over the file); False = error.
    """

    def __init__(self, path: str, create_lineidx: bool = True) -> None:
        self.path = path
        self.lineidx = lineidx_path(path)
        if not osp.isfile(path):
            raise MeshImageDatasetError(f'{path}: TSV file not found')
        if not osp.isfile(self.lineidx):
            if not create_lineidx:
                raise MeshImageDatasetError(f'{path}: no line index {self.lineidx}')
            try:
                self._offsets = generate_lineidx(path)
            except OSError:  # a read-only dataset folder: keep the index in memory only
                self._offsets = _scan_offsets(path)
        else:
            try:
                with open(self.lineidx, 'rb') as f:
                    self._offsets = np.array(f.read().split(), dtype=np.int64)
            except ValueError as e:
                raise MeshImageDatasetError(f'{self.lineidx}: not a line index (one byte offset per '
                                            f'line): {e}') from None
        self.size = os.path.getsize(path)
        self._fp = None
        self._pid: Optional[int] = None
        self._check_offsets()

    # -- pickling: no file handle travels to another process --------------------------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state['_fp'], state['_pid'] = None, None
        return state

    def __del__(self) -> None:
        fp = getattr(self, '_fp', None)
        if fp is not None and getattr(self, '_pid', None) == os.getpid():
            fp.close()

    def _file(self):
        if self._fp is None or self._pid != os.getpid():
            self._fp = open(self.path, 'rb')  # a forked worker must not share the parent's offset
            self._pid = os.getpid()
        return self._fp

    def _mismatch(self, detail: str) -> MeshImageDatasetError:
        return MeshImageDatasetError(f'{self.path}: the line index {self.lineidx} does not match the file '
                                     f'({detail}); delete the .lineidx to rebuild it')

    def _check_offsets(self) -> None:
        off, n = self._offsets, len(self._offsets)
        if n == 0:
            if self.size:
                raise self._mismatch('no rows indexed in a non-empty file')
            return
        if off[0] != 0 or (n > 1 and (np.diff(off) <= 0).any()) or off[-1] >= self.size:
            raise self._mismatch('offsets must start at 0, increase and stay inside the file')
        # a cheap spot check of a few line starts; every read checks its own row again
        probe = np.unique(np.linspace(1, n - 1, min(_SPOT_CHECKS, n - 1)).round().astype(np.int64)) \
            if n > 1 else []
        f = self._file()
        for i in probe:
            f.seek(int(off[i]) - 1)
            if f.read(1) != b'\n':
                raise self._mismatch(f'row {int(i)} offset {int(off[i])} is not a line start')

    def __len__(self) -> int:
        return len(self._offsets)

    def read_row(self, i: int) -> List[bytes]:
        """Row ``i`` as its tab-separated fields (bytes, whitespace stripped as METRO)."""
        n = len(self._offsets)
        if not 0 <= i < n:
            raise MeshImageDatasetError(f'{self.path}: row {i} out of range ({n} rows)')
        start = int(self._offsets[i])
        end = int(self._offsets[i + 1]) if i + 1 < n else self.size
        f = self._file()
        lead = 1 if start else 0
        f.seek(start - lead)
        data = f.read(end - start + lead)
        if lead:
            if data[:1] != b'\n':
                raise self._mismatch(f'row {i} offset {start} is not a line start')
            data = data[1:]
        if len(data) != end - start:
            raise self._mismatch(f'the file is shorter than the index says (row {i})')
        nl = data.find(b'\n')
        if (nl != -1 and nl != len(data) - 1) or (nl == -1 and end != self.size):
            raise self._mismatch(f'row {i} spans more or less than one line')
        return [s.strip() for s in data.split(b'\t')]

    def iter_rows(self) -> Iterator[Tuple[int, List[bytes]]]:
        """All rows in order (one streaming pass), checking every offset of the line index."""
        off, n = self._offsets, len(self._offsets)
        pos, i = 0, -1
        with open(self.path, 'rb') as f:
            for i, line in enumerate(f):
                if i >= n or off[i] != pos:
                    raise self._mismatch(f'row {i} starts at byte {pos}, the index says '
                                         f'{int(off[i]) if i < n else "nothing"}')
                pos += len(line)
                yield i, [s.strip() for s in line.split(b'\t')]
        if i + 1 != n:
            raise self._mismatch(f'the file has {i + 1} rows, the index {n}')


# ---------------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------------
def _flag(label: dict, key: str, where: str) -> float:
    if key not in label:
        raise MeshImageDatasetError(f'{where}: the label has no {key!r}')
    v = np.asarray(label[key], dtype=np.float64) if not isinstance(label[key], bool) else \
        np.float64(label[key])
    if v.size != 1:
        raise MeshImageDatasetError(f'{where}: {key!r} has shape {v.shape}, expected a scalar')
    return float(v.reshape(()))


def _joints(label: dict, key: str, dim: int, where: str) -> np.ndarray:
    v = np.asarray(label[key], dtype=np.float32) if key in label else None
    if v is None:
        raise MeshImageDatasetError(f'{where}: the label has {key[:2]} joints flagged but no {key!r}')
    if v.ndim == 3 and v.shape[0] == 1:  # METRO: (1, 24, D), squeezed when ndim == 3
        v = v[0]
    return as_array(v, (NUM_J24, dim), repr(key), where)


def _parse_label(fields: List[bytes], where: str) -> Tuple[Any, ...]:
    try:
        return _parse_label_fields(fields, where)
    except MeshImageDatasetError:
        raise
    except (TypeError, ValueError) as e:   # ragged lists, text where numbers belong, ...
        raise MeshImageDatasetError(f'{where}: malformed label ({type(e).__name__}: {e})') from None


def _parse_label_fields(fields: List[bytes], where: str) -> Tuple[Any, ...]:
    if len(fields) < 2:
        raise MeshImageDatasetError(f'{where}: expected "key<TAB>json", got {len(fields)} column(s)')
    try:
        labels = json.loads(fields[1])
    except ValueError as e:
        raise MeshImageDatasetError(f'{where}: the label is not JSON ({e})') from None
    if not isinstance(labels, list) or not labels or not isinstance(labels[0], dict):
        raise MeshImageDatasetError(f'{where}: the label must be a JSON list holding one dict')
    lab = labels[0]
    for key in ('center', 'scale'):
        if key not in lab:
            raise MeshImageDatasetError(f'{where}: the label has no {key!r}')
    center = as_array(lab['center'], (2, ), "'center'", where)
    scale = as_array(lab['scale'], (-1, ) if np.ndim(lab['scale']) else (), "'scale'", where)
    if scale.size != 1:
        raise MeshImageDatasetError(f"{where}: 'scale' has shape {scale.shape}, expected a scalar")
    has2, has3, hass = (_flag(lab, k, where) for k in ('has_2d_joints', 'has_3d_joints', 'has_smpl'))
    # a group whose flag is 0 may omit its arrays (zeros); METRO files carry them anyway
    kp2 = _joints(lab, '2d_joints', 3, where) if has2 != 0 or '2d_joints' in lab \
        else np.zeros((NUM_J24, 3), np.float32)
    kp3 = _joints(lab, '3d_joints', 4, where) if has3 != 0 or '3d_joints' in lab \
        else np.zeros((NUM_J24, 4), np.float32)
    if hass != 0 or 'pose' in lab or 'betas' in lab:
        for key in ('pose', 'betas'):
            if key not in lab:
                raise MeshImageDatasetError(f'{where}: the label has no {key!r}')
        pose = as_array(np.asarray(lab['pose'], np.float32).reshape(-1), (72, ), "'pose'", where)
        betas = as_array(np.asarray(lab['betas'], np.float32).reshape(-1), (10, ), "'betas'", where)
    else:
        pose, betas = np.zeros(72, np.float32), np.zeros(10, np.float32)
    return (center, float(scale.reshape(())), kp2, kp3, pose, betas, hass, has2, has3,
            gender_code(lab.get('gender', 'none')))


def _parse_hw(fields: List[bytes], where: str) -> Tuple[int, int]:
    if len(fields) < 2:
        raise MeshImageDatasetError(f'{where}: expected "key<TAB>json", got {len(fields)} column(s)')
    try:
        v = json.loads(fields[1])
        v = v[0] if isinstance(v, list) else v
        return int(v['height']), int(v['width'])
    except (ValueError, KeyError, TypeError, IndexError):
        parts = fields[1].split()  # METRO's fallback: "height width"
        try:
            return int(parts[0]), int(parts[1])
        except (ValueError, IndexError):
            raise MeshImageDatasetError(f'{where}: not an image size (json [{{"height", "width"}}] or '
                                        '"h w")') from None


# ---------------------------------------------------------------------------------------------------
# yaml / tsv datasets
# ---------------------------------------------------------------------------------------------------
def _resolve(name: Any, root: str, cfg_path: str, key: str) -> str:
    if not isinstance(name, str) or not name:
        raise MeshImageDatasetError(f'{cfg_path}: {key!r} must be a file name, got {name!r}')
    for cand in (osp.join(root, name), name):
        if osp.isfile(cand):
            return cand
    raise MeshImageDatasetError(f'{cfg_path}: {key}: {name} not found (relative to {root})')


def _file_list(value: Any, root: str, cfg_path: str, key: str) -> List[str]:
    if isinstance(value, str):  # CompositeTSVFile also takes a file with one tsv per line
        with open(_resolve(value, root, cfg_path, key)) as f:
            value = [ln.strip() for ln in f if ln.strip()]
    if not isinstance(value, list) or not value:
        raise MeshImageDatasetError(f'{cfg_path}: {key!r} must be a list of tsv files in a composite yaml')
    return [_resolve(v, root, cfg_path, f'{key}[{i}]') for i, v in enumerate(value)]


def _read_linelist(path: str, composite: bool) -> Tuple[np.ndarray, np.ndarray]:
    files, rows = [], []
    with open(path, 'rb') as f:
        for ln, line in enumerate(f):
            parts = line.split()
            if not parts:
                continue
            want = 2 if composite else 1
            if len(parts) != want:
                raise MeshImageDatasetError(
                    f'{path} line {ln + 1}: expected ' + ('"file_idx<TAB>row_idx"' if composite else
                                                          'one row number') + f', got {len(parts)} columns')
            try:
                vals = [int(p) for p in parts]
            except ValueError:
                raise MeshImageDatasetError(f'{path} line {ln + 1}: not an integer') from None
            files.append(vals[0] if composite else 0)
            rows.append(vals[-1])
    return np.asarray(files, np.int64), np.asarray(rows, np.int64)


class MetroTSV:
    """A METRO TSV dataset (a split yaml, a composite yaml, or a ``X.img.tsv`` / ``X.label.tsv`` next
    to its siblings): the annotations as arrays plus lazy access to the image rows.

    Attributes:
        annotations: :class:`MeshAnnotations` (``tsv_file`` / ``tsv_row`` say where each image is).
        img_tsvs: one :class:`TSVFile` per source.

    Raises:
        MeshImageDatasetError: see the module docstring (missing file / key, wrong shapes, bad linelist,
        sources whose row counts or keys disagree, a line index that does not match).
    """

    def __init__(self, path: str, create_lineidx: bool = True) -> None:
        self.path = path
        if not osp.isfile(path):
            raise MeshImageDatasetError(f'{path}: METRO TSV annotation file not found')
        img, label, hw, linelist, composite = self._config(path)
        self.composite = composite
        self.img_tsvs = [TSVFile(p, create_lineidx) for p in img]
        if linelist is not None:
            files, rows = _read_linelist(linelist, composite)
            where = linelist
        else:
            files = np.zeros(len(self.img_tsvs[0]), np.int64)
            rows = np.arange(len(self.img_tsvs[0]), dtype=np.int64)
            where = img[0]
        if len(files) and (files.min() < 0 or files.max() >= len(img)):
            bad = int(np.flatnonzero((files < 0) | (files >= len(img)))[0])
            raise MeshImageDatasetError(f'{where} line {bad + 1}: file index {int(files[bad])} but the '
                                        f'yaml lists {len(img)} sources')
        parts = []
        for fi in range(len(img)):
            sel = np.flatnonzero(files == fi)
            parts.append(self._read_source(fi, img[fi], label[fi], hw[fi] if hw else None, rows[sel],
                                           where, sel, create_lineidx))
        self.annotations = self._merge(parts, len(files))

    @staticmethod
    def _config(path: str):
        if path.endswith('.tsv'):
            for suffix in ('.img.tsv', '.label.tsv', '.hw.tsv'):
                if path.endswith(suffix):
                    stem = path[:-len(suffix)]
                    break
            else:
                raise MeshImageDatasetError(f'{path}: a METRO tsv annotation must be X.img.tsv, '
                                            'X.label.tsv or X.hw.tsv (or give the split yaml)')
            img, label = f'{stem}.img.tsv', f'{stem}.label.tsv'
            for p in (img, label):
                if not osp.isfile(p):
                    raise MeshImageDatasetError(f'{path}: {p} not found')
            hw, ll = f'{stem}.hw.tsv', f'{stem}.linelist.tsv'
            return [img], [label], ([hw] if osp.isfile(hw) else None), \
                (ll if osp.isfile(ll) else None), False
        import yaml
        try:
            with open(path) as f:
                cfg = yaml.safe_load(f)  # safe_load: a data file never constructs Python objects
        except yaml.YAMLError as e:
            raise MeshImageDatasetError(f'{path}: not a YAML file ({e})') from None
        if not isinstance(cfg, dict):
            raise MeshImageDatasetError(f'{path}: expected a mapping with img / label / hw / linelist')
        root = osp.dirname(path)
        composite = bool(cfg.get('composite', False))
        for key in ('img', 'label'):
            if not cfg.get(key):
                raise MeshImageDatasetError(f'{path}: the yaml has no {key!r}')
        if composite:
            img = _file_list(cfg['img'], root, path, 'img')
            label = _file_list(cfg['label'], root, path, 'label')
            hw = _file_list(cfg['hw'], root, path, 'hw') if cfg.get('hw') else None
            if not cfg.get('linelist'):
                raise MeshImageDatasetError(f'{path}: a composite yaml needs a linelist '
                                            '(file_idx<TAB>row_idx rows)')
            for key, lst in (('label', label), ('hw', hw)):
                if lst is not None and len(lst) != len(img):
                    raise MeshImageDatasetError(f'{path}: {len(img)} img tsvs but {len(lst)} {key} tsvs')
        else:
            img = [_resolve(cfg['img'], root, path, 'img')]
            label = [_resolve(cfg['label'], root, path, 'label')]
            hw = [_resolve(cfg['hw'], root, path, 'hw')] if cfg.get('hw') else None
        linelist = _resolve(cfg['linelist'], root, path, 'linelist') if cfg.get('linelist') else None
        return img, label, hw, linelist, composite

    def _read_source(self, fi: int, img_path: str, label_path: str, hw_path: Optional[str],
                     rows: np.ndarray, where: str, positions: np.ndarray, create_lineidx: bool) -> dict:
        img_tsv = self.img_tsvs[fi]
        nimg = len(img_tsv)
        if len(rows) and (rows.min() < 0 or rows.max() >= nimg):
            bad = int(np.flatnonzero((rows < 0) | (rows >= nimg))[0])
            raise MeshImageDatasetError(f'{where} line {int(positions[bad]) + 1}: row {int(rows[bad])} '
                                        f'but {img_path} has {nimg} rows')
        wanted, inverse = np.unique(rows, return_inverse=True)
        m = len(wanted)
        need = np.full(nimg, -1, np.int64)
        need[wanted] = np.arange(m)
        keys = [''] * m
        center = np.zeros((m, 2), np.float32)
        scale = np.zeros(m, np.float32)
        kp2 = np.zeros((m, NUM_J24, 3), np.float32)
        kp3 = np.zeros((m, NUM_J24, 4), np.float32)
        pose = np.zeros((m, 72), np.float32)
        betas = np.zeros((m, 10), np.float32)
        flags = np.zeros((m, 3), np.float32)
        gender = np.zeros(m, np.int64)
        label_tsv = TSVFile(label_path, create_lineidx)
        if len(label_tsv) != nimg:
            raise MeshImageDatasetError(f'{label_path} has {len(label_tsv)} rows but {img_path} has {nimg}')
        for r, fields in label_tsv.iter_rows():
            j = need[r]
            if j < 0:
                continue
            key = fields[0].decode('utf-8', 'replace')
            v = _parse_label(fields, f'{label_path} row {r} (key {key})')
            keys[j] = key
            center[j], scale[j], kp2[j], kp3[j], pose[j], betas[j] = v[:6]
            flags[j] = v[6:9]
            gender[j] = v[9]
        hw = None
        if hw_path is not None:
            hw = np.full((m, 2), -1, np.int64)
            hw_tsv = TSVFile(hw_path, create_lineidx)
            if len(hw_tsv) != nimg:
                raise MeshImageDatasetError(f'{hw_path} has {len(hw_tsv)} rows but {img_path} has {nimg}')
            for r, fields in hw_tsv.iter_rows():
                j = need[r]
                if j < 0:
                    continue
                key = fields[0].decode('utf-8', 'replace')
                if key != keys[j]:
                    raise MeshImageDatasetError(f'{hw_path} row {r}: key {key!r} but {label_path} row {r} '
                                                f'has {keys[j]!r}')
                hw[j] = _parse_hw(fields, f'{hw_path} row {r} (key {key})')
        take = inverse
        return dict(positions=positions, ids=np.asarray(keys, dtype=str)[take] if m else None,
                    center=center[take], scale=scale[take], keypoints_2d=kp2[take],
                    keypoints_3d=kp3[take], smpl_pose=pose[take], smpl_betas=betas[take],
                    has_smpl=flags[take, 0], has_2d_joints=flags[take, 1], has_3d_joints=flags[take, 2],
                    gender=gender[take], image_hw=None if hw is None else hw[take],
                    tsv_file=np.full(len(rows), fi, np.int64), tsv_row=rows.copy())

    def _merge(self, parts: Sequence[dict], n: int) -> MeshAnnotations:
        names = ('center', 'scale', 'keypoints_2d', 'keypoints_3d', 'smpl_pose', 'smpl_betas', 'has_smpl',
                 'has_2d_joints', 'has_3d_joints', 'gender', 'tsv_file', 'tsv_row')
        shapes = dict(center=(2, ), keypoints_2d=(NUM_J24, 3), keypoints_3d=(NUM_J24, 4),
                      smpl_pose=(72, ), smpl_betas=(10, ))
        out: Dict[str, np.ndarray] = {}
        for k in names:
            dtype = np.int64 if k in ('gender', 'tsv_file', 'tsv_row') else np.float32
            out[k] = np.zeros((n, ) + shapes.get(k, ()), dtype)
        ids = [''] * n
        with_hw = any(p['image_hw'] is not None for p in parts)
        hw = np.full((n, 2), -1, np.int64) if with_hw else None
        for p in parts:
            pos = p['positions']
            if not len(pos):
                continue
            for k in names:
                out[k][pos] = p[k]
            for i, key in zip(pos.tolist(), p['ids'].tolist()):
                ids[i] = key
            if p['image_hw'] is not None:
                hw[pos] = p['image_hw']
        return MeshAnnotations(source=self.path, ids=np.asarray(ids, dtype=str) if n else
                               np.zeros(0, '<U1'), image_hw=hw, **out)

    def image_path(self, i: int) -> str:
        """``'<img.tsv path>#<row>'`` of sample ``i`` (for messages)."""
        a = self.annotations
        return f'{self.img_tsvs[int(a.tsv_file[i])].path}#{int(a.tsv_row[i])}'

    def read_image(self, i: int) -> bytes:
        """The encoded (JPEG) bytes of sample ``i``, base64-decoded; its row key must equal the label's."""
        a = self.annotations
        tsv = self.img_tsvs[int(a.tsv_file[i])]
        row = int(a.tsv_row[i])
        fields = tsv.read_row(row)
        key = fields[0].decode('utf-8', 'replace')
        if key != a.ids[i]:
            raise MeshImageDatasetError(f'{tsv.path} row {row}: key {key!r} but the label row has '
                                        f'{str(a.ids[i])!r} (the tsvs or the line index do not match)')
        if len(fields) < 2:
            raise MeshImageDatasetError(f'{tsv.path} row {row} (key {key}): no image column')
        try:
            return base64.b64decode(fields[-1], validate=True)
        except (binascii.Error, ValueError) as e:
            raise MeshImageDatasetError(f'{tsv.path} row {row} (key {key}): the image is not base64 '
                                        f'({e})') from None


# ---------------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------------
def write_tsv(rows: Sequence[Sequence[str]], tsv_path: str) -> None:
    """Write rows (``\\t``-joined, one per line) and the ``.lineidx`` (METRO ``tsv_writer``)."""
    os.makedirs(osp.dirname(osp.abspath(tsv_path)), exist_ok=True)
    offsets, pos = [], 0
    with open(tsv_path, 'wb') as f:
        for row in rows:
            line = ('\t'.join(str(v) for v in row) + '\n').encode('utf-8')
            offsets.append(pos)
            f.write(line)
            pos += len(line)
    with open(lineidx_path(tsv_path), 'w') as f:
        f.write(''.join(f'{o}\n' for o in offsets))


def _image_hw(data: bytes, key: str) -> Tuple[int, int]:
    import cv2
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f'image of {key!r} cannot be decoded')
    return int(img.shape[0]), int(img.shape[1])


def write_metro_tsv(out_dir: str, split: str, records: List[dict], images: List[bytes]) -> str:
    """Write records + encoded images as a METRO TSV split (layout of the module docstring):
    ``{split}.img.tsv``, ``{split}.label.tsv``, ``{split}.hw.tsv``, ``{split}.linelist.tsv`` (all rows),
    a ``.lineidx`` for each and ``{split}.yaml``. Row key = ``record['img_name']``; ``gender`` is
    written as 'm' / 'f' / 'n'.

    Returns:
        the yaml path.
    """
    if len(records) != len(images):
        raise ValueError(f'{len(records)} records but {len(images)} images')
    a = stack_records(records)
    keys = [str(k) for k in a['img_name']]
    for k in keys:
        if any(c in k for c in '\t\n\r'):
            raise ValueError(f'row key {k!r} contains a tab or newline')
    base = osp.join(out_dir, split)
    write_tsv([(k, base64.b64encode(img).decode('ascii')) for k, img in zip(keys, images)],
              f'{base}.img.tsv')
    labels = []
    for i, k in enumerate(keys):
        r = records[i]
        # the raw joints (TSV has per-sample flags: no need to fold them into the confidences)
        lab = {'center': a['center'][i].tolist(), 'scale': float(a['scale'][i]),
               '2d_joints': [np.asarray(r['keypoints_2d_j24'], np.float32).reshape(NUM_J24, 3).tolist()],
               'has_2d_joints': int(a['has_2d_joints'][i]),
               '3d_joints': [np.asarray(r['keypoints_3d_j24'], np.float32).reshape(NUM_J24, 4).tolist()],
               'has_3d_joints': int(a['has_3d_joints'][i]),
               'pose': a['smpl_pose'][i].tolist(), 'betas': a['smpl_betas'][i].tolist(),
               'has_smpl': int(a['has_smpl'][i]), 'gender': str(a['gender'][i])}
        labels.append((k, json.dumps([lab], separators=(',', ':'))))
    write_tsv(labels, f'{base}.label.tsv')
    write_tsv([(k, json.dumps([dict(zip(('height', 'width'), _image_hw(img, k)))]))
               for k, img in zip(keys, images)], f'{base}.hw.tsv')
    write_tsv([(i, ) for i in range(len(keys))], f'{base}.linelist.tsv')
    import yaml
    yaml_path = f'{base}.yaml'
    with open(yaml_path, 'w') as f:
        yaml.safe_dump(dict(img=f'{split}.img.tsv', label=f'{split}.label.tsv', hw=f'{split}.hw.tsv',
                            linelist=f'{split}.linelist.tsv'), f, sort_keys=False)
    return yaml_path
