"""Mesh sampler: coarse body meshes and the sparse matrices that move vertices between them.

The MPT head (like METRO) regresses a coarse mesh (SMPL: 431 vertices, MANO: 195) and up-samples it to
1723 and 6890 vertices; its losses need the ground-truth mesh at every resolution. This module

* builds the coarse levels by quadric-error edge-collapse decimation of the model's own template mesh
  (:func:`build_mesh_sampling`, as CoMA's ``generate_transform_matrices``): every coarse vertex *is* an
  original vertex (a subset, positions unchanged), ``D`` is the 0/1 selection matrix and ``U`` holds the
  barycentric coordinates of each fine vertex projected onto the closest coarse triangle;
* saves/loads them (:func:`save_mesh_sampling`, :func:`load_mesh_sampling`) in a pickle-free ``.npz``,
  and also reads METRO's / GraphCMR's released ``mesh_downsampling.npz`` (pickled object arrays of
  ``scipy.sparse`` matrices under the keys ``'A', 'U', 'D'``);
* applies them batched on any device/dtype (:class:`MeshSampler`).

Level ``k`` has ``num_vertices[k]`` vertices (level 0 = full mesh). ``D[k]`` maps level ``k`` to
``k + 1``: shape ``(num_vertices[k+1], num_vertices[k])``; ``U[k]`` maps level ``k + 1`` back to ``k``:
shape ``(num_vertices[k], num_vertices[k+1])``. Both are row-stochastic (rows are convex weights).
"""
import os
import os.path as osp
import pickle
import zipfile
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

FORMAT_VERSION = 1


class MeshSamplingFileError(ValueError):
    """A mesh-sampling file (or dict) is missing, unreadable or inconsistent."""


class MeshSamplingFileNotFoundError(MeshSamplingFileError, FileNotFoundError):
    """The mesh-sampling file does not exist."""


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------
def _check_mesh(vertices: np.ndarray, faces: np.ndarray) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 4:
        raise ValueError(f'vertices must be (V>=4, 3), got {vertices.shape}')
    if not np.isfinite(vertices).all():
        raise ValueError('vertices contain NaN/inf')
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ValueError(f'faces must be (F>0, 3), got {faces.shape}')
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f'faces index vertices outside [0, {len(vertices)})')


def _collapse_sequence(vertices: np.ndarray, faces: np.ndarray, num_target: int) -> np.ndarray:
    """Quadric-error edge collapses (``fast_simplification``) that remove at least ``V - num_target``
    vertices.

    Returns:
        (K, 2) int array; row ``(i0, i1)`` = vertex ``i1`` was merged into ``i0`` (original indices).
    """
    try:
        import fast_simplification
    except ImportError as e:  # pragma: no cover - dependency listed in requirements/runtime.txt
        raise ImportError('build_mesh_sampling needs the `fast-simplification` package '
                          '(pip install fast-simplification)') from e
    num_remove = len(vertices) - num_target
    points = np.ascontiguousarray(vertices, dtype=np.float32)
    tris = np.ascontiguousarray(faces, dtype=np.int32)
    # The decimator stops on a triangle count, not a vertex count, and may stop early. Ask for a bit
    # more than needed and truncate the collapse sequence afterwards (exact vertex count); ask for
    # more, more aggressively, if it still stopped short.
    frac = num_target / len(vertices)
    best = np.zeros((0, 2), np.int64)
    for overshoot, agg in ((0.9, 7), (0.7, 7), (0.5, 9), (0.25, 10)):
        reduction = float(np.clip(1.0 - frac * overshoot, 0.0, 0.999))
        _, _, collapses = fast_simplification.simplify(
            points, tris, target_reduction=reduction, agg=agg, return_collapses=True)
        collapses = np.asarray(collapses, dtype=np.int64).reshape(-1, 2)
        if len(collapses) > len(best):
            best = collapses
        if len(collapses) >= num_remove:
            break
    return best


def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        parent[i], i = root, parent[i]
    return root


def _decimate(vertices: np.ndarray, faces: np.ndarray, num_target: int):
    """Decimate to exactly ``num_target`` vertices, keeping a subset of the original vertices.

    Returns:
        keep (num_target,) sorted original indices of the kept vertices,
        coarse_faces (F', 3) int64 faces indexing ``keep``.
    """
    num_vertices = len(vertices)
    collapses = _collapse_sequence(vertices, faces, num_target)
    parent = np.arange(num_vertices)
    alive = num_vertices
    # Replay collapses in order (union-find) and stop at the exact count: any prefix of an
    # edge-collapse sequence is itself a valid decimation.
    for i0, i1 in collapses:
        if alive == num_target:
            break
        r0, r1 = _find(parent, int(i0)), _find(parent, int(i1))
        if r0 != r1:
            parent[r1] = r0
            alive -= 1
    if alive != num_target:
        raise ValueError(f'quadric decimation could only reduce {num_vertices} vertices to {alive}, '
                         f'not {num_target} (mesh too small or degenerate?)')
    roots = np.array([_find(parent, i) for i in range(num_vertices)])
    keep = np.unique(roots)
    new_index = np.full(num_vertices, -1, dtype=np.int64)
    new_index[keep] = np.arange(len(keep))
    f = new_index[roots[faces]]
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    # Two collapsed triangles can land on the same vertex triple; keep one of each.
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return keep, f[np.sort(first)]


def _closest_point_barycentric(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Closest point on triangles (a, b, c) to points p, all (M, 3) (Ericson, Real-Time Collision
    Detection, 5.1.5), vectorised.

    Returns:
        bary (M, 3) non-negative barycentric weights summing to 1, dist2 (M,) squared distance
        (inf for degenerate triangles).
    """
    dot = lambda u, v: np.einsum('ij,ij->i', u, v)  # noqa: E731
    ab, ac, ap = b - a, c - a, p - a
    bp, cp = p - b, p - c
    d1, d2 = dot(ab, ap), dot(ac, ap)
    d3, d4 = dot(ab, bp), dot(ac, bp)
    d5, d6 = dot(ab, cp), dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide='ignore', invalid='ignore'):
        # Face interior (lowest priority; overwritten by the edge and vertex regions below).
        denom = va + vb + vc
        v, w = vb / denom, vc / denom
        bary = np.stack([1 - v - w, v, w], axis=1)
        regions = [  # (mask, weights) in increasing priority, as Ericson's early returns
            ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),
             lambda t: np.stack([0 * t, 1 - t, t], 1), (d4 - d3) / ((d4 - d3) + (d5 - d6))),  # BC
            ((vb <= 0) & (d2 >= 0) & (d6 <= 0),
             lambda t: np.stack([1 - t, 0 * t, t], 1), d2 / (d2 - d6)),  # AC
            ((d6 >= 0) & (d5 <= d6), lambda t: np.stack([0 * t, 0 * t, 1 + 0 * t], 1), d6),  # C
            ((vc <= 0) & (d1 >= 0) & (d3 <= 0),
             lambda t: np.stack([1 - t, t, 0 * t], 1), d1 / (d1 - d3)),  # AB
            ((d3 >= 0) & (d4 <= d3), lambda t: np.stack([0 * t, 1 + 0 * t, 0 * t], 1), d3),  # B
            ((d1 <= 0) & (d2 <= 0), lambda t: np.stack([1 + 0 * t, 0 * t, 0 * t], 1), d1),  # A
        ]
        for mask, weights, t in regions:
            bary[mask] = weights(t[mask])
    bad = ~np.isfinite(bary).all(axis=1)
    bary[bad] = 1.0 / 3
    bary = np.clip(bary, 0.0, 1.0)
    bary /= bary.sum(axis=1, keepdims=True)
    q = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    dist2 = ((q - p) ** 2).sum(axis=1)
    dist2[bad] = np.inf
    return bary, dist2


def _upsampling_matrix(fine: np.ndarray, coarse: np.ndarray, coarse_faces: np.ndarray,
                       keep: np.ndarray, num_neighbours: int = 12):
    """U (num_fine, num_coarse): barycentric coordinates of each fine vertex's closest point on the
    coarse mesh (nearest coarse vertex if it has no triangle nearby). Kept vertices map to themselves.
    """
    import scipy.sparse as sp
    from scipy.spatial import cKDTree
    num_fine, num_coarse = len(fine), len(coarse)
    k = min(num_neighbours, num_coarse)
    _, nn_idx = cKDTree(coarse).query(fine, k=k)
    nn_idx = nn_idx.reshape(num_fine, k)
    # Fallback: nearest coarse vertex (weight 1; the two padding columns get weight 0).
    cols = np.concatenate([nn_idx[:, :1], nn_idx[:, :1], nn_idx[:, :1]], axis=1)
    vals = np.zeros((num_fine, 3))
    vals[:, 0] = 1.0
    if len(coarse_faces):
        # Candidate triangles: those touching one of the k nearest coarse vertices (the closest
        # point of a well-shaped decimated mesh lies on one of them); exact search is O(V*F).
        vf_face = np.repeat(np.arange(len(coarse_faces)), 3)
        vf_vert = coarse_faces.reshape(-1)
        order = np.argsort(vf_vert, kind='stable')
        vf_face, vf_vert = vf_face[order], vf_vert[order]
        ptr = np.searchsorted(vf_vert, np.arange(num_coarse + 1))
        counts = (ptr[1:] - ptr[:-1])[nn_idx]  # (num_fine, k)
        pair_fine = np.repeat(np.repeat(np.arange(num_fine), k), counts.reshape(-1))
        starts = np.repeat(ptr[:-1][nn_idx].reshape(-1), counts.reshape(-1))
        offsets = np.arange(len(starts)) - np.repeat(np.cumsum(counts.reshape(-1)) - counts.reshape(-1),
                                                     counts.reshape(-1))
        pair_face = vf_face[starts + offsets]
        tri = coarse_faces[pair_face]
        bary, dist2 = _closest_point_barycentric(fine[pair_fine], coarse[tri[:, 0]], coarse[tri[:, 1]],
                                                 coarse[tri[:, 2]])
        best = np.lexsort((dist2, pair_fine))  # per fine vertex: smallest distance first
        first = best[np.r_[True, pair_fine[best][1:] != pair_fine[best][:-1]]]
        has = np.isfinite(dist2[first])
        fi = pair_fine[first][has]
        cols[fi], vals[fi] = tri[first][has], bary[first][has]
    # A kept vertex is exactly its coarse copy (also covers kept vertices without triangles).
    cols[keep], vals[keep] = np.arange(num_coarse)[:, None].repeat(3, 1), np.array([[1.0, 0.0, 0.0]])
    rows = np.repeat(np.arange(num_fine), 3)
    u = sp.csr_matrix((vals.reshape(-1), (rows, cols.reshape(-1))), shape=(num_fine, num_coarse))
    u.sum_duplicates()
    u.eliminate_zeros()
    return u


def build_mesh_sampling(vertices: np.ndarray, faces: np.ndarray,
                        num_vertices: Sequence[int] = (1723, 431)) -> Dict[str, list]:
    """Build the coarse mesh levels and their sampling matrices from a template mesh.

    Each level is decimated from the previous one (quadric-error edge collapses, exact vertex count),
    keeping a subset of its vertices.

    Args:
        vertices: (V, 3) template vertices (metres; e.g. SMPL ``v_template``, V = 6890).
        faces: (F, 3) int triangle indices.
        num_vertices: vertex counts of the coarse levels, strictly decreasing and < V
            (SMPL: (1723, 431); MANO: (195,)).

    Returns:
        dict(D=[scipy csr (n_{k+1}, n_k)], U=[scipy csr (n_k, n_{k+1})], F=[(F_k, 3) int64],
        num_vertices=[V, n_1, ...], vertices=[(n_k, 3) float64 positions of each level]).
    """
    import scipy.sparse as sp
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f'faces must be integers, got {faces.dtype}')
    faces = faces.astype(np.int64)
    _check_mesh(vertices, faces)
    levels = [int(n) for n in num_vertices]
    sizes = [len(vertices)] + levels
    if not levels or any(b >= a for a, b in zip(sizes, sizes[1:])) or levels[-1] < 4:
        raise ValueError(f'num_vertices must be strictly decreasing, below {len(vertices)} and >= 4; '
                         f'got {tuple(levels)}')
    out = dict(D=[], U=[], F=[faces], num_vertices=sizes, vertices=[vertices])
    for n in levels:
        fine, fine_faces = out['vertices'][-1], out['F'][-1]
        keep, coarse_faces = _decimate(fine, fine_faces, n)
        coarse = fine[keep]
        d = sp.csr_matrix((np.ones(n), (np.arange(n), keep)), shape=(n, len(fine)))
        out['D'].append(d)
        out['U'].append(_upsampling_matrix(fine, coarse, coarse_faces, keep))
        out['F'].append(coarse_faces)
        out['vertices'].append(coarse)
    return out


# --------------------------------------------------------------------------------------------------
# Saving / loading / validation
# --------------------------------------------------------------------------------------------------
def _validate(d: Dict[str, list], source: str) -> Dict[str, list]:
    """Check shapes and indices of a sampling dict; return it with ``num_vertices`` filled in."""
    import scipy.sparse as sp

    def fail(msg):
        raise MeshSamplingFileError(f'{source}: {msg}')

    D, U = list(d.get('D', [])), list(d.get('U', []))
    if len(D) == 0 or len(D) != len(U):
        fail(f'needs as many down- as up-sampling matrices (>= 1), got {len(D)} D and {len(U)} U')
    for name, mats in (('D', D), ('U', U)):
        for i, m in enumerate(mats):
            if not sp.issparse(m) and not (isinstance(m, np.ndarray) and m.ndim == 2):
                fail(f'{name}[{i}] is not a 2-D (sparse) matrix but {type(m).__name__}')
    sizes = [int(D[0].shape[1])] + [int(m.shape[0]) for m in D]
    given = d.get('num_vertices')
    if given is not None and [int(n) for n in np.asarray(given).reshape(-1)] != sizes:
        fail(f'num_vertices {list(np.asarray(given).reshape(-1))} does not match the D matrices '
             f'(which imply {sizes})')
    if any(b >= a for a, b in zip(sizes, sizes[1:])):
        fail(f'vertex counts must decrease level by level, got {sizes}')
    out = dict(D=[], U=[], F=[], num_vertices=sizes)
    for i in range(len(D)):
        for name, m, shape in (('D', D[i], (sizes[i + 1], sizes[i])), ('U', U[i], (sizes[i], sizes[i + 1]))):
            if tuple(m.shape) != shape:
                fail(f'{name}[{i}] has shape {tuple(m.shape)}, expected {shape} for levels {sizes}')
            m = sp.csr_matrix(m, dtype=np.float64)
            if not np.isfinite(m.data).all():
                fail(f'{name}[{i}] contains NaN/inf')
            out[name].append(m)
    faces = d.get('F')
    faces = [] if faces is None else list(faces)
    if faces and len(faces) != len(sizes):
        fail(f'F has {len(faces)} entries, expected one per level ({len(sizes)})')
    for i, f in enumerate(faces or [None] * len(sizes)):
        if f is not None:
            f = np.asarray(f)
            if (f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer)
                    or (f.size and (f.min() < 0 or f.max() >= sizes[i]))):
                fail(f'F[{i}] must be (F, 3) ints in [0, {sizes[i]}), got {f.shape} {f.dtype}')
            f = f.astype(np.int64)
        out['F'].append(f)
    return out


def save_mesh_sampling(path: str, d: Dict[str, list]) -> None:
    """Save a sampling dict (from :func:`build_mesh_sampling` / :func:`load_mesh_sampling`) as a
    pickle-free ``.npz``: per level ``i`` the COO arrays ``D{i}_indices`` (2, nnz) int64 (row, col),
    ``D{i}_values`` (nnz,) float64, ``D{i}_shape`` (2,), the same for ``U{i}``, faces ``F{i}`` (level 0 is
    the full mesh; omitted if unknown), plus ``num_vertices`` and ``version``.
    """
    import scipy.sparse as sp
    d = _validate(d, 'mesh sampling to save')
    arrays = dict(num_vertices=np.asarray(d['num_vertices'], np.int64),
                  version=np.asarray(FORMAT_VERSION, np.int64))
    for name in ('D', 'U'):
        for i, m in enumerate(d[name]):
            m = sp.coo_matrix(m)
            arrays[f'{name}{i}_indices'] = np.stack([m.row, m.col]).astype(np.int64)
            arrays[f'{name}{i}_values'] = m.data.astype(np.float64)
            arrays[f'{name}{i}_shape'] = np.asarray(m.shape, np.int64)
    for i, f in enumerate(d['F']):
        if f is not None:
            arrays[f'F{i}'] = f
    dirname = osp.dirname(osp.abspath(path))
    os.makedirs(dirname, exist_ok=True)
    with open(path, 'wb') as fh:  # a file handle keeps numpy from appending '.npz' to the name
        np.savez_compressed(fh, **arrays)


def _read_ours(z, path: str) -> Dict[str, list]:
    import scipy.sparse as sp
    num_levels = len(np.asarray(z['num_vertices']).reshape(-1))
    d = dict(D=[], U=[], F=[], num_vertices=z['num_vertices'])
    for name in ('D', 'U'):
        for i in range(num_levels - 1):
            keys = [f'{name}{i}_{s}' for s in ('indices', 'values', 'shape')]
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise MeshSamplingFileError(f'{path}: missing key(s) {missing} for {num_levels} levels')
            idx, val, shape = (z[k] for k in keys)
            if (idx.ndim != 2 or idx.shape[0] != 2 or val.shape != (idx.shape[1],) or shape.shape != (2,)
                    or not np.issubdtype(idx.dtype, np.integer)):
                raise MeshSamplingFileError(f'{path}: malformed COO arrays {keys}: indices {idx.shape}, '
                                            f'values {val.shape}, shape {shape.shape}')
            shape = tuple(int(s) for s in shape)
            if idx.size and (idx.min() < 0 or idx[0].max() >= shape[0] or idx[1].max() >= shape[1]):
                raise MeshSamplingFileError(f'{path}: {name}{i}_indices out of range for shape {shape}')
            d[name].append(sp.csr_matrix((val, (idx[0], idx[1])), shape=shape))
    d['F'] = [z[f'F{i}'] if f'F{i}' in z.files else None for i in range(num_levels)]
    return d


def _read_metro(path: str) -> Dict[str, list]:
    # METRO / GraphCMR files are Python-2 pickles of scipy.sparse objects (hence latin1) inside object
    # arrays. They are read by the restricted unpickler (nothing from the file is called) and the
    # matrices rebuilt from their recorded state with every index checked.
    from ..utils.restricted_pickle import SparseMatrix, load_npz_restricted, refused_classes, sparse_from_state
    z = load_npz_restricted(path, ('D', 'U', 'F'), max_member_bytes=256 << 20)  # METRO's: ~2 MB

    def matrices(key: str) -> list:
        out = []
        for i, m in enumerate(np.asarray(z[key], dtype=object).reshape(-1)):
            if not isinstance(m, SparseMatrix):
                bad = refused_classes(m)
                raise MeshSamplingFileError(
                    f'{path}: {key}[{i}] is not a scipy sparse matrix but '
                    f'{bad[0] if bad else type(m).__name__} (not loaded: nothing from the file is run)')
            out.append(sparse_from_state(m))
        return out

    d = dict(D=matrices('D'), U=matrices('U'), F=None)
    if 'F' in z:
        faces = z['F']
        if faces.dtype == object:
            faces = [np.asarray(f) if isinstance(f, np.ndarray) else f for f in faces.reshape(-1)]
            for i, f in enumerate(faces):
                if not isinstance(f, np.ndarray):
                    raise MeshSamplingFileError(f'{path}: F[{i}] is a {type(f).__name__}, not an array')
        d['F'] = list(faces)
    return d


def load_mesh_sampling(path: str) -> Dict[str, list]:
    """Load mesh-sampling matrices from our ``.npz`` layout (:func:`save_mesh_sampling`) or METRO's
    ``mesh_downsampling.npz`` (object arrays ``'D'``, ``'U'`` (and ``'A'``, ignored; ``'F'`` optional)).

    Returns:
        dict(D=[scipy csr (n_{k+1}, n_k)], U=[scipy csr (n_k, n_{k+1})], F=[(F_k, 3) int64 or None],
        num_vertices=[n_0, n_1, ...]).

    Raises:
        MeshSamplingFileError: missing file, unreadable file, missing keys or inconsistent shapes.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise MeshSamplingFileNotFoundError(f'{path}: mesh-sampling file not found')
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise MeshSamplingFileError(f'{path}: not an .npz archive (a single {type(z).__name__})')
        with z:
            files = set(z.files)
            if 'num_vertices' in files:
                d = _read_ours(z, path)
            elif {'D', 'U'} <= files:
                d = None
            else:
                raise MeshSamplingFileError(
                    f'{path}: neither our mesh-sampling layout (num_vertices, D0_indices, ...) nor '
                    f"METRO's (D, U); keys found: {sorted(files)}")
        if d is None:
            d = _read_metro(path)
    except MeshSamplingFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, KeyError, EOFError, TypeError, ImportError,
            AttributeError, IndexError, pickle.UnpicklingError) as e:
        raise MeshSamplingFileError(f'{path}: cannot read mesh-sampling file ({type(e).__name__}: {e})'
                                    ) from None
    return _validate(d, path)


# --------------------------------------------------------------------------------------------------
# Torch module
# --------------------------------------------------------------------------------------------------
class MeshSampler(nn.Module):
    """Apply down-/up-sampling matrices to batched per-vertex data on the module's device.

    The sparse matrices are stored as COO buffers (``D{k}_row/_col/_val``, ``U{k}_...``; not saved in
    state dicts: they come from the file) and applied with gather + ``index_add_``, which works for any
    device, float dtype and autograd. Weights are kept in float64 (also after ``module.half()``,
    ``.bfloat16()``, ``.float()``) and cast to the computation dtype per call; half/bfloat16 inputs are
    accumulated in float32, then cast back (dtype-preserving).

    Args:
        sampling: path of a mesh-sampling ``.npz`` (ours or METRO's) or a dict from
            :func:`build_mesh_sampling` / :func:`load_mesh_sampling`.
    """

    def __init__(self, sampling: Union[str, os.PathLike, Dict[str, list]]):
        super().__init__()
        if isinstance(sampling, dict):
            d = _validate(sampling, 'mesh sampling dict')
        else:
            d = load_mesh_sampling(sampling)
        self._num_vertices = list(d['num_vertices'])
        self._selection: Dict[str, bool] = {}
        self.faces: List[Optional[np.ndarray]] = d['F']
        for name in ('D', 'U'):
            for i, m in enumerate(d[name]):
                m = m.tocoo()
                order = np.lexsort((m.col, m.row))          # row-major entries
                m = type(m)((m.data[order], (m.row[order], m.col[order])), shape=m.shape)
                self.register_buffer(f'{name}{i}_row', torch.from_numpy(m.row.astype(np.int64)), False)
                self.register_buffer(f'{name}{i}_col', torch.from_numpy(m.col.astype(np.int64)), False)
                self.register_buffer(f'{name}{i}_val', torch.from_numpy(m.data.astype(np.float64)), False)
                # down-sampling matrices are usually vertex selections (one entry per row): a gather
                # then replaces gather + scatter-add (CPU index_add_ is the slow part)
                self._selection[f'{name}{i}'] = bool(np.array_equal(m.row, np.arange(m.shape[0])))

    @property
    def num_vertices(self) -> List[int]:
        """Vertex count of every level, full mesh first (e.g. [6890, 1723, 431])."""
        return list(self._num_vertices)

    @property
    def num_levels(self) -> int:
        return len(self._num_vertices)

    def _apply(self, fn, *args, **kwargs):
        # Module dtype casts (.half(), .bfloat16(), .to(dtype)) must not round the weights (bf16 rows
        # would no longer sum to 1): let them see only the index buffers and follow their device.
        weights = {n: self._buffers.pop(n) for n in list(self._buffers) if n.endswith('_val')}
        try:
            super()._apply(fn, *args, **kwargs)
        finally:
            device = self.D0_row.device
            self._buffers.update({n: w.to(device) for n, w in weights.items()})
        return self

    def _matmul(self, name: str, level: int, x: torch.Tensor, num_out: int) -> torch.Tensor:
        row, col = getattr(self, f'{name}{level}_row'), getattr(self, f'{name}{level}_col')
        val = getattr(self, f'{name}{level}_val').to(dtype=x.dtype)
        src = x.index_select(1, col) * val[None, :, None]
        if self._selection.get(f'{name}{level}', False):     # one entry per row, sorted by row at init
            return src
        out = x.new_zeros(x.shape[0], num_out, x.shape[2])
        return out.index_add_(1, row, src)

    def _run(self, x: torch.Tensor, path: List[tuple]) -> torch.Tensor:
        if not torch.is_floating_point(x):
            raise TypeError(f'MeshSampler expects floating-point vertex data, got {x.dtype}')
        if x.dim() < 2:
            raise ValueError(f'expected (..., V, C) vertex data, got shape {tuple(x.shape)}')
        lead, c = x.shape[:-2], x.shape[-1]
        dtype = x.dtype
        work = x if dtype in (torch.float32, torch.float64) else x.float()
        work = work.reshape(-1, x.shape[-2], c).to(self.D0_row.device)
        for name, level, num_out in path:
            work = self._matmul(name, level, work, num_out)
        return work.to(dtype).reshape(*lead, work.shape[1], c)

    def _check(self, x: torch.Tensor, n1: int, n2: int, down: bool) -> None:
        last = self.num_levels - 1
        if not (0 <= n1 <= last and 0 <= n2 <= last) or (n1 > n2 if down else n1 < n2):
            kind = 'downsample needs 0 <= n1 <= n2' if down else 'upsample needs n1 >= n2 >= 0'
            raise ValueError(f'{kind} <= {last}, got n1={n1}, n2={n2}')
        if x.dim() < 2 or x.shape[-2] != self._num_vertices[n1]:
            raise ValueError(f'level {n1} has {self._num_vertices[n1]} vertices; got data of shape '
                             f'{tuple(x.shape)} (expected (..., {self._num_vertices[n1]}, C))')

    def downsample(self, x: torch.Tensor, n1: int = 0, n2: Optional[int] = None) -> torch.Tensor:
        """Map (..., V_{n1}, C) data at level ``n1`` to (..., V_{n2}, C) at the coarser level ``n2``
        (default: the coarsest). Output dtype = input dtype, device = module device."""
        n2 = self.num_levels - 1 if n2 is None else n2
        self._check(x, n1, n2, down=True)
        return self._run(x, [('D', k, self._num_vertices[k + 1]) for k in range(n1, n2)])

    def upsample(self, x: torch.Tensor, n1: Optional[int] = None, n2: int = 0) -> torch.Tensor:
        """Map (..., V_{n1}, C) data at level ``n1`` (default: the coarsest) to (..., V_{n2}, C) at the
        finer level ``n2`` (barycentric interpolation)."""
        n1 = self.num_levels - 1 if n1 is None else n1
        self._check(x, n1, n2, down=False)
        return self._run(x, [('U', k, self._num_vertices[k]) for k in reversed(range(n2, n1))])

    def extra_repr(self) -> str:
        return f'num_vertices={self._num_vertices}'
