"""Chumpy-free reading, validation and writing of SMPL-family body-model files.

The official SMPL / SMPL-H / MANO ``.pkl`` files are Python-2 pickles (hence ``encoding='latin1'``) that
hold some arrays as `chumpy <https://github.com/mattloper/chumpy>`_ objects (e.g. ``shapedirs`` is a
``chumpy.ch.Ch``) and ``J_regressor`` as a ``scipy.sparse`` matrix. chumpy does not install on current
Pythons, so :func:`load_body_model_file` unpickles with
:class:`~mmpose_mpt.utils.restricted_pickle.RestrictedUnpickler`, which calls nothing from the file:

* every ``chumpy.*`` class becomes a stand-in that only records its pickled state (a ``Ch`` pickles its
  value as the ndarray ``state['x']``; derived nodes such as ``chumpy.reordering.Select`` or
  ``chumpy.ch_ops.add`` pickle their operands, which are evaluated here with numpy);
* every ``scipy.sparse.*`` matrix class becomes a stand-in rebuilt as a *dense* ndarray from its state
  (``data``/``indices``/``indptr``/``_shape``, every index checked), so old pickles that name removed
  scipy modules load too;
* numpy arrays are rebuilt from byte buffers of plain numeric dtypes only (no object arrays from raw
  bytes), and only a few builtins are allowed: loading a body model never runs code from the file and
  never reads memory the file points at.

``.npz`` files are read with ``allow_pickle=False``. All errors are one :class:`BodyModelFileError`
(a ``ValueError``; :class:`BodyModelFileNotFoundError` also is a ``FileNotFoundError``) whose message
names the file and the problem.

Array conventions (SMPL, V = 6890 vertices, J = 24 joints, metres, y-up template):
``v_template`` (V, 3), ``f`` (F, 3) vertex indices, ``J_regressor`` (J, V), ``weights`` (V, J),
``kintree_table`` (2, J) (row 0 = parent ids, root parent stored as 2**32 - 1), ``shapedirs`` (V, 3, S),
``posedirs`` (V, 3, 9 * (J - 1)); MANO adds ``hands_components`` (N, 45), ``hands_mean`` (45,).
"""
import os
import os.path as osp
import pickle
import struct
import warnings
import zipfile
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ..utils.restricted_pickle import (MAX_DENSE_ELEMENTS, ChumpyObject, Pickled, RestrictedPickleError,
                                       UnknownObject, restricted_loads, sparse_from_state, sparse_to_dense,
                                       to_plain)

__all__ = [
    'BodyModelFileError', 'BodyModelFileNotFoundError', 'load_body_model_file', 'save_body_model_file',
    'validate_body_model', 'resolve_model_file', 'GENDERS', 'normalize_gender'
]

GENDERS: Tuple[str, ...] = ('neutral', 'male', 'female')  # index = the datasets' gender id

# Keys every linear-blend-skinned body model (SMPL, SMPL-H, MANO) must have.
REQUIRED_KEYS: Tuple[str, ...] = ('v_template', 'f', 'J_regressor', 'weights', 'kintree_table',
                                  'shapedirs', 'posedirs')
MANO_KEYS: Tuple[str, ...] = ('hands_components', 'hands_mean')


class BodyModelFileError(ValueError):
    """A body-model (or joint-regressor) file is unreadable, not a body model, or inconsistent."""


class BodyModelFileNotFoundError(BodyModelFileError, FileNotFoundError):
    """The body-model (or joint-regressor) file does not exist."""


# --------------------------------------------------------------------------------------------------
# Turning stand-ins into numpy
# --------------------------------------------------------------------------------------------------
class _Unconvertible(Exception):
    pass


def _bounded(shape: Tuple[int, ...], what: str) -> None:
    n = int(np.prod(shape, dtype=object)) if len(shape) else 1
    if n > MAX_DENSE_ELEMENTS:  # a few KB of chumpy operands can broadcast to many GB
        raise _Unconvertible(f'{what} would have shape {tuple(shape)} ({n} > {MAX_DENSE_ELEMENTS} elements)')


def _dot_shape(a: np.ndarray, b: np.ndarray) -> Tuple[int, ...]:
    if a.ndim == 0 or b.ndim == 0:
        return np.broadcast_shapes(a.shape, b.shape)
    if b.ndim == 1:
        return a.shape[:-1]
    return a.shape[:-1] + b.shape[:-2] + b.shape[-1:]


class _Converter:
    """Array builders, chumpy and scipy-sparse stand-ins -> numpy, for one file: every distinct object
    is converted once (a file may share one operand between many nodes), every result is bounded."""

    def __init__(self) -> None:
        self.memo: Dict[int, Any] = {}

    def __call__(self, obj: Any) -> Any:
        try:
            return to_plain(obj, self.standin, self.memo)
        except (RestrictedPickleError, TypeError, ValueError, AttributeError, IndexError, KeyError,
                RecursionError, MemoryError) as e:
            raise _Unconvertible(f'{type(e).__name__}: {e}') from None

    def standin(self, obj: Pickled) -> np.ndarray:
        if isinstance(obj, UnknownObject):
            raise _Unconvertible(f'object of class {obj._qualname} (not loaded: nothing from the file is run)')
        try:
            if isinstance(obj, ChumpyObject):
                return self.chumpy(obj)
            return sparse_to_dense(sparse_from_state(obj))  # every index checked before scipy sees it
        except (KeyError, ValueError, TypeError, IndexError, AttributeError, MemoryError) as e:
            raise _Unconvertible(f'{obj._qualname}: {type(e).__name__}: {e}') from None

    def chumpy(self, obj: ChumpyObject) -> np.ndarray:
        st, name = obj._state, obj._qualname.rsplit('.', 1)[-1]

        def val(key):
            if key not in st:
                raise _Unconvertible(f'{obj._qualname} lacks its operand {key!r}')
            return np.asarray(to_plain(st[key], self.standin, self.memo))

        if name in ('Ch', 'ChHandle'):  # a leaf: its value is the pickled array 'x'
            return val('x')
        if name == 'Select':
            r = val('a').ravel()[val('idxs')].copy()
            return r.reshape(st['preferred_shape']) if st.get('preferred_shape') is not None else r
        if name == 'Reshape':
            return val('a').reshape(st['newshape'])
        if name == 'transpose':
            return np.transpose(val('a'), st.get('axes'))
        ops = {'add': np.add, 'subtract': np.subtract, 'multiply': np.multiply, 'divide': np.divide,
               'NanDivide': np.divide}
        if name in ops:
            a, b = (val('a'), val('b')) if name in ('add', 'subtract', 'multiply') else (val('x1'), val('x2'))
            _bounded(np.broadcast_shapes(a.shape, b.shape), f'{obj._qualname}')
            return ops[name](a, b)
        if name == 'dot':
            a, b = val('a'), val('b')
            _bounded(_dot_shape(a, b), f'{obj._qualname}')
            return np.dot(a, b)
        if name == 'negative':
            return -val('x')
        if name == 'MatVecMult':
            vec, mtx = val('vec'), val('mtx')
            _bounded(mtx.shape[:-1], f'{obj._qualname}')
            r = mtx.dot(vec.ravel())
            return r.reshape(-1, vec.shape[1]) if vec.ndim > 1 and vec.shape[1] > 1 else r
        raise _Unconvertible(f'unsupported chumpy object {obj._qualname}')


def _to_numpy(obj: Any) -> Any:
    """Recursively turn array builders and chumpy / sparse stand-ins into ndarrays; containers keep
    their structure."""
    return _Converter()(obj)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------
def _sniff(path: str) -> str:
    ext = osp.splitext(path)[1].lower()
    if ext in ('.pkl', '.pickle'):
        return 'pkl'
    if ext == '.npz':
        return 'npz'
    raise BodyModelFileError(f'{path}: unsupported body-model file type {ext or "(no extension)"!r} '
                             '(expected .pkl or .npz)')


def _load_pickle(path: str) -> dict:
    with open(path, 'rb') as fh:
        raw = fh.read()
    try:
        obj = restricted_loads(raw)
    except RestrictedPickleError as e:
        raise BodyModelFileError(f'{path}: refused body-model pickle ({e}); nothing from the file was run'
                                 ) from None
    except Exception as e:  # noqa: BLE001 - corrupt pickles raise many types; one clear error
        # (the pure-Python unpickler meets the end of a truncated file as EOFError or struct.error)
        kind = 'truncated' if isinstance(e, (EOFError, struct.error)) or 'truncated' in str(e) \
            else 'not a valid pickle'
        raise BodyModelFileError(f'{path}: cannot read body-model pickle ({kind}: {type(e).__name__}: '
                                 f'{e})') from None
    if isinstance(obj, Pickled) and obj._items:
        obj = dict(obj._items)
    if not isinstance(obj, dict):
        raise BodyModelFileError(f'{path}: not a body-model file (the pickle holds a '
                                 f'{getattr(obj, "_qualname", type(obj).__name__)}, expected a dict of arrays)')
    return obj


def _load_npz(path: str) -> dict:
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise BodyModelFileError(f'{path}: cannot read .npz body-model file ({type(e).__name__}: {e})'
                                 ) from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise BodyModelFileError(f'{path}: not an .npz archive (holds a single {type(z).__name__})')
    out, skipped = {}, []
    with z:
        for k in z.files:
            try:
                out[k] = z[k]
            except ValueError:  # object arrays need pickle: not needed by any body model
                skipped.append(k)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise BodyModelFileError(f'{path}: corrupt .npz entry {k!r} ({type(e).__name__}: {e})'
                                         ) from None
    if skipped:
        warnings.warn(f'{path}: skipped object (pickled) arrays {skipped}')
    return out


def load_body_model_file(path: str) -> Dict[str, Any]:
    """Load a body-model file without chumpy.

    Args:
        path: ``.pkl`` (official SMPL/SMPL-H/MANO pickles incl. chumpy objects and Python-2 latin1
            strings, or plain numpy pickles) or ``.npz``.

    Returns:
        dict name -> value: chumpy objects and ``scipy.sparse`` matrices become dense ``np.ndarray``
        (values identical to the source), other arrays keep their dtype, 0-d string arrays become
        ``str``; entries that hold objects of other classes are dropped (with a warning).

    Raises:
        BodyModelFileNotFoundError: the file does not exist.
        BodyModelFileError: wrong type, unreadable, truncated, or not a dict of arrays.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise BodyModelFileNotFoundError(f'{path}: body-model file not found')
    fmt = _sniff(path)
    raw = _load_pickle(path) if fmt == 'pkl' else _load_npz(path)
    out, dropped = {}, []
    convert = _Converter()  # one per file: objects shared between entries are converted once
    for k, v in raw.items():
        if not isinstance(k, (str, bytes)):
            raise BodyModelFileError(f'{path}: not a body-model file (a key of type {type(k).__name__})')
        k = k.decode('latin1') if isinstance(k, bytes) else k
        try:
            v = convert(v)
        except _Unconvertible as e:
            if k in REQUIRED_KEYS + MANO_KEYS:
                raise BodyModelFileError(f'{path}: cannot convert {k!r} to an array ({e})') from None
            dropped.append(f'{k} ({e})')
            continue
        if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in 'US':
            v = str(v)
        out[k] = v
    if dropped:
        # Only warn: e.g. training-info dicts do not matter, missing *required* arrays are caught by
        # validate_body_model with a clear message.
        warnings.warn(f'{path}: dropped entries that are not arrays: {dropped}')
    return out


def save_body_model_file(path: str, arrays: Dict[str, Any]) -> Dict[str, Any]:
    """Write a chumpy-free body-model file.

    ``.pkl``: a plain pickle of a dict of numpy arrays / strings / numbers (loadable by
    ``smplx.SMPL(model_path=...)`` and ``smplx.MANO(model_path=..., ext='pkl')``). ``.npz``: the same
    arrays (strings as 0-d unicode arrays), readable with ``allow_pickle=False``. Values that are
    neither arrays, strings nor numbers (e.g. nested dicts) are left out.

    Returns:
        the dict that was written.
    """
    path = os.fspath(path)
    fmt = osp.splitext(path)[1].lower()
    if fmt not in ('.pkl', '.npz'):
        raise BodyModelFileError(f'{path}: output must end in .pkl or .npz')
    clean = {}
    for k, v in arrays.items():
        if isinstance(v, np.ndarray) and v.dtype != object:
            clean[k] = v
        elif isinstance(v, (str, int, float, np.generic)) and not isinstance(v, bool):
            clean[k] = v
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as fh:  # write then rename: readers never see a half-written file
        if fmt == '.pkl':
            pickle.dump(clean, fh, protocol=4)
        else:
            np.savez(fh, **{k: np.asarray(v) for k, v in clean.items()})
    os.replace(tmp, path)
    return clean


def _fail(path: str, msg: str):
    raise BodyModelFileError(f'{path}: {msg}')


def validate_body_model(arrays: Dict[str, Any], path: str = '<arrays>',
                        kind: Optional[str] = None) -> Dict[str, int]:
    """Check that ``arrays`` form a consistent linear-blend-skinned body model.

    Args:
        arrays: from :func:`load_body_model_file`.
        path: file name used in error messages.
        kind: ``'smpl'`` (SMPL / SMPL-H: >= 22 joints), ``'mano'`` (16 joints + hand PCA) or None (any).

    Returns:
        dict(num_vertices, num_joints, num_betas, num_faces, num_pose_basis).

    Raises:
        BodyModelFileError: missing keys, wrong shapes/dtypes, indices out of range, bad kinematic tree.
    """
    need = REQUIRED_KEYS + (MANO_KEYS if kind == 'mano' else ())
    missing = [k for k in need if k not in arrays]
    if missing:
        _fail(path, f'not a{" MANO" if kind == "mano" else ""} body model: missing key(s) {missing} '
                    f'(found {sorted(arrays)})')
    arr = {}
    for k in need:
        v = arrays[k]
        if not isinstance(v, np.ndarray) or v.dtype == object or v.dtype.kind not in 'biuf':
            _fail(path, f'{k!r} must be a numeric array, got {type(v).__name__}'
                        f'{" of " + str(v.dtype) if isinstance(v, np.ndarray) else ""}')
        arr[k] = v
    vt = arr['v_template']
    if vt.ndim != 2 or vt.shape[1] != 3 or len(vt) < 4:
        _fail(path, f"'v_template' must be (V, 3), got {vt.shape}")
    if not np.isfinite(vt).all():
        _fail(path, "'v_template' contains NaN/inf")
    V = vt.shape[0]
    f = arr['f']
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        _fail(path, f"'f' must be (F, 3) vertex indices, got {f.shape}")
    if f.dtype.kind == 'f' and not np.all(f == np.round(f)):
        _fail(path, "'f' holds non-integer values")
    if f.min() < 0 or f.max() >= V:
        _fail(path, f"'f' indexes vertices outside [0, {V}) (min {f.min()}, max {f.max()})")
    jr = arr['J_regressor']
    if jr.ndim != 2 or jr.shape[1] != V:
        _fail(path, f"'J_regressor' must be (J, V={V}), got {jr.shape}")
    J = jr.shape[0]
    checks = (('weights', (V, J)), ('kintree_table', (2, J)))
    for k, shape in checks:
        if arr[k].shape != shape:
            _fail(path, f'{k!r} must have shape {shape} (V={V} vertices, J={J} joints), got {arr[k].shape}')
    sd = arr['shapedirs']
    if sd.ndim != 3 or sd.shape[:2] != (V, 3) or sd.shape[2] < 1:
        _fail(path, f"'shapedirs' must be (V={V}, 3, S>=1), got {sd.shape}")
    pd = arr['posedirs']
    if pd.shape != (V, 3, 9 * (J - 1)):
        _fail(path, f"'posedirs' must be (V={V}, 3, 9*(J-1)={9 * (J - 1)}), got {pd.shape}")
    parents = arr['kintree_table'][0].astype(np.int64)
    bad = [i for i in range(1, J) if not 0 <= parents[i] < i]
    if bad:
        _fail(path, f"'kintree_table' parents must precede their children; joints {bad} do not "
                    f'(parents {parents.tolist()})')
    for k in ('v_template', 'J_regressor', 'weights', 'shapedirs', 'posedirs'):
        if not np.isfinite(arr[k]).all():
            _fail(path, f'{k!r} contains NaN/inf')
    if kind == 'smpl' and J < 22:
        _fail(path, f'an SMPL-family model needs >= 22 joints (SMPL: 24, SMPL-H: 52), got {J}'
                    f'{" (this looks like a MANO hand model)" if J == 16 else ""}')
    if kind == 'mano':
        if J != 16:
            _fail(path, f'a MANO model has 16 joints, got {J}')
        hc, hm = arr['hands_components'], arr['hands_mean']
        if hc.ndim != 2 or hc.shape[1] != 3 * (J - 1):
            _fail(path, f"'hands_components' must be (N, {3 * (J - 1)}), got {hc.shape}")
        if hm.shape != (3 * (J - 1), ):
            _fail(path, f"'hands_mean' must be ({3 * (J - 1)},), got {hm.shape}")
    return dict(num_vertices=int(V), num_joints=int(J), num_betas=int(sd.shape[2]), num_faces=int(len(f)),
                num_pose_basis=int(pd.shape[2]))


def normalize_gender(gender: Any, path: str = '') -> str:
    """'neutral' | 'male' | 'female' (also 'n'/'m'/'f', any case, or the dataset ids 0/1/2)."""
    if isinstance(gender, (int, np.integer)) and not isinstance(gender, bool) and 0 <= gender < 3:
        return GENDERS[int(gender)]
    g = str(gender).strip().lower()
    g = {'n': 'neutral', 'm': 'male', 'f': 'female'}.get(g, g)
    if g not in GENDERS:
        raise BodyModelFileError(f'{path + ": " if path else ""}unknown gender {gender!r} '
                                 f'(expected one of {list(GENDERS)})')
    return g


# File names of the official downloads, tried after smplx's SMPL_{GENDER}.pkl naming.
_OFFICIAL_SMPL_NAMES = {
    'neutral': ('basicModel_neutral_lbs_10_207_0_v1.0.0.pkl', 'basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl'),
    'male': ('basicmodel_m_lbs_10_207_0_v1.0.0.pkl', 'basicmodel_m_lbs_10_207_0_v1.1.0.pkl',
             'basicModel_m_lbs_10_207_0_v1.0.0.pkl'),
    'female': ('basicModel_f_lbs_10_207_0_v1.0.0.pkl', 'basicmodel_f_lbs_10_207_0_v1.1.0.pkl'),
}


def resolve_model_file(model_path: str, model_type: str = 'smpl', gender: str = 'neutral',
                       is_rhand: bool = True) -> str:
    """Find the model file: ``model_path`` itself if it is a file, else inside the directory
    ``SMPL_{GENDER}.pkl``/``.npz`` (SMPL; also the official ``basicModel_*`` names and a ``smpl/``
    sub-directory) or ``MANO_{RIGHT,LEFT}.pkl``/``.npz`` (MANO; also a ``mano/`` sub-directory).

    Raises:
        BodyModelFileNotFoundError: naming the candidates that were tried.
    """
    model_path = os.fspath(model_path)
    if osp.isfile(model_path):
        return model_path
    if not osp.isdir(model_path):
        raise BodyModelFileNotFoundError(f'{model_path}: body-model file or directory not found')
    if model_type == 'smpl':
        gender = normalize_gender(gender, model_path)
        names: Sequence[str] = (f'SMPL_{gender.upper()}.pkl', f'SMPL_{gender.upper()}.npz') + \
            _OFFICIAL_SMPL_NAMES[gender]
        sub = 'smpl'
    elif model_type == 'mano':
        side = 'RIGHT' if is_rhand else 'LEFT'
        names, sub = (f'MANO_{side}.pkl', f'MANO_{side}.npz'), 'mano'
    else:
        raise ValueError(f'unknown model_type {model_type!r}')
    tried = []
    for d in (model_path, osp.join(model_path, sub)):
        for n in names:
            p = osp.join(d, n)
            tried.append(p)
            if osp.isfile(p):
                return p
    raise BodyModelFileNotFoundError(f'{model_path}: no {model_type.upper()} model file found (tried '
                                     f'{", ".join(osp.relpath(t, model_path) for t in tried)})')
