"""Toy body models: licence-free, generated STAND-INS for SMPL and MANO.

SMPL and MANO are licensed downloads that cannot ship with this project. So that training, tests and
demos run out of the box, this module *generates* files in exactly their formats:

* ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl``: an SMPL-format model with SMPL's keys, dtypes, sizes and
  conventions (6890 vertices, 24 joints in SMPL's order and kinematic tree, 10 shape and 207 pose blend
  shapes, ``J_regressor`` as ``scipy.sparse.csc_matrix``, ``kintree_table`` root parent 2**32 - 1,
  y-up T-pose template in metres, ~1.72 m tall, facing +z, left = +x). The mesh is a human-like figure
  made of closed tubes (torso, neck, head with a nose, arms, hands with a thumb, legs, feet) around an
  SMPL-like rest skeleton, smoothly skinned to its joints; the vertices with SMPL's landmark ids (nose
  332, eyes 2800/6260, ears 583/4071, toes, heels, fingertips of ``smplx.vertex_ids['smplh']``) sit at
  the corresponding places, so vertex-id based keypoints work on it. ``J_regressor`` rows are convex
  vertex weights that reproduce the skeleton exactly (``J_regressor @ v_template == joints``).
* ``J_regressor_coco.npy`` (17, 6890) and ``J_regressor_h36m_correct.npy`` (17, 6890) for it.
* ``MANO_RIGHT.pkl``: a MANO-format right hand (778 vertices, 16 joints in MANO's order, 10 shape and
  135 pose blend shapes, 45-D hand PCA ``hands_components``/``hands_mean``/``hands_coeffs``), with the
  fingertips at MANO's tip vertex ids (thumb 744, index 320, middle 443, ring 554, pinky 671).
* ``mesh_downsampling.npz`` (SMPL 6890 -> 1723 -> 431) and ``mano_downsampling.npz`` (MANO 778 -> 195),
  built by :func:`build_mesh_sampling` from the toy templates.

Everything is deterministic (no random state besides fixed seeds) and takes well under a second apart
from the mesh samplings. Whenever the real SMPL / MANO files are given (their paths in the configs),
they are used instead: nothing else in the project depends on the toy.
"""
import functools
import os
import os.path as osp
import pickle
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .body_model_file import BodyModelFileError, load_body_model_file, validate_body_model

TOY_VERSION = 'mmpose-mpt-toy-body-1'
SMPL_NUM_VERTICES = 6890
MANO_NUM_VERTICES = 778
UINT32_ROOT = np.uint32(2**32 - 1)  # SMPL's kintree_table stores the root's parent as uint32(-1)

SMPL_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21])
MANO_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
_LR = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 22: 23}
SMPL_MIRROR = np.arange(24)
for _l, _r in _LR.items():
    SMPL_MIRROR[_l], SMPL_MIRROR[_r] = _r, _l

# Rest skeleton of the neutral toy (metres, y-up, +z front, left = +x), close to SMPL's neutral rest joints.
_CENTER_JOINTS = {0: (0.0, -0.225, 0.025), 3: (0.0, -0.105, 0.010), 6: (0.0, 0.030, 0.035),
                  9: (0.0, 0.085, 0.035), 12: (0.0, 0.285, -0.005), 15: (0.0, 0.360, 0.045)}
_LEFT_JOINTS = {1: (0.070, -0.315, 0.020), 4: (0.105, -0.700, 0.015), 7: (0.090, -1.100, -0.025),
                10: (0.118, -1.158, 0.100), 13: (0.078, 0.195, 0.012), 16: (0.170, 0.225, 0.000),
                18: (0.425, 0.210, -0.025), 20: (0.670, 0.220, -0.030), 22: (0.755, 0.215, -0.040)}

# SMPL vertex ids (smplx.vertex_ids['smplh']) placed at their anatomical spots on the toy.
SMPL_LANDMARK_IDS = dict(
    nose=332, reye=6260, leye=2800, rear=4071, lear=583,
    lthumb=2746, lindex=2319, lmiddle=2445, lring=2556, lpinky=2673,
    rthumb=6191, rindex=5782, rmiddle=5905, rring=6016, rpinky=6133,
    LBigToe=3216, LSmallToe=3226, LHeel=3387, RBigToe=6617, RSmallToe=6624, RHeel=6787)
MANO_TIP_IDS = dict(thumb=744, index=320, middle=443, ring=554, pinky=671)


def toy_smpl_rest_joints() -> np.ndarray:
    """(24, 3) rest joints of the neutral toy SMPL (metres, y-up, left = +x); exactly mirror-symmetric."""
    J = np.zeros((24, 3))
    for j, p in _CENTER_JOINTS.items():
        J[j] = p
    for j, p in _LEFT_JOINTS.items():
        J[j] = p
        J[_LR[j]] = (-p[0], p[1], p[2])
    return J


# --------------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------------
def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class _Part:
    """A closed tube around the axis p0 -> p1: rings of vertices on an elliptic cross-section
    (semi-axes ``a(s)`` along e1 and ``b(s)`` along e2, s in [0, 1] along the axis) rounded at both
    ends by the super-ellipse ``(1 - |2s - 1|^k)^(1/k)``, closed by one pole vertex at each end.

    ``chain`` = (first owner joint, [(joint whose projection on the axis is a breakpoint, new owner,
    blend half-width in metres), ...]) defines the skinning along the axis.
    """

    def __init__(self, name: str, p0, p1, up, a: Callable, b: Callable, k: float, chain, side: int = 0,
                 tip_landmarks=None):
        self.name, self.side, self.k = name, side, k
        self.p0, self.p1 = np.asarray(p0, float), np.asarray(p1, float)
        self.a, self.b, self.chain = a, b, chain
        d = self.p1 - self.p0
        self.length = float(np.linalg.norm(d))
        self.d = d / self.length
        up = np.asarray(up, float)
        e1 = up - up.dot(self.d) * self.d
        self.e1 = e1 / np.linalg.norm(e1)
        self.e2 = np.cross(self.d, self.e1)  # (e1, e2, d) right-handed
        s = np.linspace(0.0, 1.0, 4001)
        g = (1.0 - np.abs(2.0 * s - 1.0)**k)**(1.0 / k)
        r = 0.5 * (a(s) + b(s)) * g
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(s) * self.length, np.diff(r)))])
        self._s, self._arc, self._g = s, arc, g
        self.arc_length = float(arc[-1])
        self.max_circumference = float(np.pi * np.max((a(s) + b(s)) * g))

    def counts(self, h: float) -> Tuple[int, int]:
        """(rings, segments per ring) for a target edge length h."""
        seg = max(8, int(round(self.max_circumference / h)))
        seg += seg % 2
        rings = max(3, int(round(self.arc_length / h)) - 1)
        return rings, seg

    def build(self, ring_sizes: Sequence[int]):
        """Vertices (N, 3), faces (F, 3) (outward, local indices), axial coordinate (N,) metres."""
        R = len(ring_sizes)
        frac = (np.arange(R) + 1.0) / (R + 1.0)
        s_r = np.interp(frac * self.arc_length, self._arc, self._s)
        g_r = (1.0 - np.abs(2.0 * s_r - 1.0)**self.k)**(1.0 / self.k)
        verts, axial, rings = [self.p0[None]], [0.0], []
        n = 1
        for i, m in enumerate(ring_sizes):
            c = 0.0 if m % 2 == 0 else 0.25  # azimuths symmetric under phi -> pi - phi (mirror of e1)
            phi = 2.0 * np.pi * (np.arange(m) + c) / m
            ra, rb = self.a(s_r[i]) * g_r[i], self.b(s_r[i]) * g_r[i]
            ring = (self.p0 + s_r[i] * self.length * self.d + ra * np.cos(phi)[:, None] * self.e1 +
                    rb * np.sin(phi)[:, None] * self.e2)
            verts.append(ring)
            axial.extend([s_r[i] * self.length] * m)
            rings.append((np.arange(n, n + m), phi))
            n += m
        verts.append(self.p1[None])
        axial.append(self.length)
        faces = []
        first = rings[0][0]
        faces += [(0, first[(j + 1) % len(first)], first[j]) for j in range(len(first))]
        for (ia, pa), (ib, pb) in zip(rings[:-1], rings[1:]):
            faces += _zipper(ia, pa, ib, pb)
        last = rings[-1][0]
        faces += [(n, last[j], last[(j + 1) % len(last)]) for j in range(len(last))]
        return np.concatenate(verts), np.asarray(faces, np.int64), np.asarray(axial)

    def axial(self, v: np.ndarray) -> np.ndarray:
        return (v - self.p0) @ self.d

    def radial(self, v: np.ndarray) -> np.ndarray:
        """Unit vectors from the axis to the points (0 on the axis)."""
        r = (v - self.p0) - np.outer(self.axial(v), self.d)
        n = np.linalg.norm(r, axis=1, keepdims=True)
        return np.where(n > 1e-9, r / np.maximum(n, 1e-12), 0.0)


def _zipper(ia, pa, ib, pb) -> List[Tuple[int, int, int]]:
    """Triangulate the band between two rings (vertex ids, ascending azimuths in [0, 2 pi))."""
    na, nb = len(ia), len(ib)
    A = np.append(pa, pa[0] + 2 * np.pi)
    B = np.append(pb, pb[0] + 2 * np.pi)
    i = j = 0
    tris = []
    while i < na or j < nb:
        if j == nb or (i < na and A[i + 1] < B[j + 1]):
            tris.append((ia[i % na], ia[(i + 1) % na], ib[j % nb]))
            i += 1
        else:
            tris.append((ia[i % na], ib[(j + 1) % nb], ib[j % nb]))
            j += 1
    return tris


def _table(key_axis: int, p0, p1, keys, values) -> Callable:
    """Profile s -> value, tabulated at world coordinates ``keys`` along ``key_axis``."""
    k0, k1 = p0[key_axis], p1[key_axis]
    fr = (np.asarray(keys, float) - k0) / (k1 - k0)
    order = np.argsort(fr)
    fr, values = fr[order], np.asarray(values, float)[order]
    return lambda s: np.interp(s, fr, values)


def _convex_weights(points: np.ndarray, target: np.ndarray, base: np.ndarray) -> Optional[np.ndarray]:
    """Positive weights w (sum 1) with w @ points == target, closest to ``base`` in KL divergence
    (exponential tilting: w_i ~ base_i exp(lambda . (p_i - target)), Newton on the convex dual).
    None if ``target`` is not strictly inside the convex hull of ``points``."""
    X = points - target
    scale = np.abs(X).max()
    X = X / scale
    logb = np.log(base / base.sum())

    def lse(lam):
        z = logb + X @ lam
        m = z.max()
        return m + np.log(np.exp(z - m).sum())

    lam = np.zeros(3)
    for _ in range(200):
        z = logb + X @ lam
        p = np.exp(z - z.max())
        p /= p.sum()
        g = p @ X
        if np.linalg.norm(g) < 1e-14:
            return p
        H = (X * p[:, None]).T @ X - np.outer(g, g)
        try:
            step = -np.linalg.solve(H + 1e-14 * np.eye(3), g)
        except np.linalg.LinAlgError:
            return None
        t, f0 = 1.0, lse(lam)
        while lse(lam + t * step) > f0 + 1e-4 * t * g.dot(step) and t > 1e-12:
            t *= 0.5
        lam = lam + t * step
        if not np.all(np.isfinite(lam)) or np.abs(lam).max() > 1e8:
            return None
    return p if np.linalg.norm(g) < 1e-10 else None


def _regressor_row(V: np.ndarray, target: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(N,) convex weights over ``candidates`` (vertex ids) near ``target`` that reproduce it exactly.
    The neighbourhood is a ball (mirror-symmetric data gives mirror-symmetric weights) grown until the
    target lies inside the hull of its vertices."""
    P = V[candidates]
    dist = np.linalg.norm(P - target, axis=1)
    r = 1.3 * dist.min()
    while True:
        sel = dist <= r
        if sel.sum() >= 12:
            w = _convex_weights(P[sel], target, np.exp(-(dist[sel] / r)**2))
            if w is not None:
                row = np.zeros(len(V))
                row[candidates[sel]] = w
                return row
        if sel.all():
            raise RuntimeError(f'toy body model: joint {target} outside its vertices')  # pragma: no cover
        r *= 1.2


def _vertex_normals(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    n = np.zeros_like(V)
    for c in range(3):
        np.add.at(n, F[:, c], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _mirror_part(part: '_Part') -> '_Part':
    """The mirror image (x -> -x) of a left part, with left/right joint ids swapped."""
    M = np.diag([-1.0, 1.0, 1.0])
    m = object.__new__(_Part)
    m.__dict__.update(part.__dict__)
    m.name = part.name.replace('l_', 'r_', 1)
    m.side = -part.side
    m.p0, m.p1, m.d = M @ part.p0, M @ part.p1, M @ part.d
    m.e1, m.e2 = M @ part.e1, M @ part.e2
    first, bps = part.chain
    m.chain = (int(SMPL_MIRROR[first]), [(int(SMPL_MIRROR[j]), int(SMPL_MIRROR[o]), w) for j, o, w in bps])
    return m


def _assemble(parts: List[_Part], num_vertices: int, grow_part: int):
    """Choose ring counts so that the parts have exactly ``num_vertices`` vertices in total (uniform
    edge length, the remainder spread over the rings of ``parts[grow_part]``) and build the mesh."""
    def total(h):
        return sum(r * s + 2 for r, s in (p.counts(h) for p in parts))

    lo, hi = 1e-3, 1.0  # edge length: total(lo) > num_vertices >= total(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if total(mid) > num_vertices else (lo, mid)
    sizes = [[s] * r for r, s in (p.counts(hi) for p in parts)]
    rest = num_vertices - total(hi)
    g = sizes[grow_part]
    for i in range(rest):  # spread the remainder over the rings (middle ones first)
        g[(len(g) // 2 + (i + 1) // 2 * (-1)**i) % len(g)] += 1
    verts, faces, axial, label = [], [], [], []
    n = 0
    for pi, (p, rs) in enumerate(zip(parts, sizes)):
        v, f, t = p.build(rs)
        if p.side < 0:  # mirrored parts: keep outward orientation
            f = f[:, ::-1]
        verts.append(v)
        faces.append(f + n)
        axial.append(t)
        label.append(np.full(len(v), pi))
        n += len(v)
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(axial), np.concatenate(label)


def _permute_landmarks(V, F, arrays: Sequence[np.ndarray], picks: Dict[int, int]):
    """Reorder vertices so that vertex ``src`` gets the id ``dst`` for every (dst, src) in picks."""
    N = len(V)
    order = np.full(N, -1)
    for dst, src in picks.items():
        order[dst] = src
    rest = np.setdiff1d(np.arange(N), np.asarray(list(picks.values())))
    order[order < 0] = rest
    inv = np.empty(N, np.int64)
    inv[order] = np.arange(N)
    return V[order], inv[F], [a[order] for a in arrays]


def _pick_nearest(V, allowed: np.ndarray, target, used: set) -> int:
    idx = np.nonzero(allowed)[0]
    for i in idx[np.argsort(np.linalg.norm(V[idx] - np.asarray(target), axis=1))]:
        if int(i) not in used:
            used.add(int(i))
            return int(i)
    raise RuntimeError('no free vertex')  # pragma: no cover


def _chain_weights(part: _Part, axial: np.ndarray, joints: np.ndarray, num_joints: int) -> np.ndarray:
    """Skinning weights (N, J) along a part's axis: hat functions of a smooth 'progress' coordinate that
    steps by one at every breakpoint (a partition of unity)."""
    first, bps = part.chain
    owners = [first] + [o for _, o, _ in bps]
    c = np.zeros(len(axial))
    for j, _, w in bps:
        b = (joints[j] - part.p0) @ part.d
        c += _smoothstep((axial - b) / (2 * w) + 0.5)
    W = np.zeros((len(axial), num_joints))
    for k, o in enumerate(owners):
        W[:, o] += np.clip(1.0 - np.abs(c - k), 0.0, 1.0)
    return W


# --------------------------------------------------------------------------------------------------
# SMPL-format toy
# --------------------------------------------------------------------------------------------------
def _smpl_parts(J: np.ndarray) -> List[_Part]:
    X, Y = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    P = []
    # torso: crotch to shoulder line (elliptic, wider than deep), skinned pelvis -> spine1/2/3
    p0, p1 = (0.0, -0.40, 0.015), (0.0, 0.27, 0.0)
    ys = [-0.40, -0.32, -0.22, -0.05, 0.10, 0.20, 0.27]
    P.append(_Part('torso', p0, p1, X, _table(1, p0, p1, ys, [0.15, 0.165, 0.16, 0.135, 0.155, 0.165, 0.16]),
                   _table(1, p0, p1, ys, [0.10, 0.105, 0.10, 0.09, 0.105, 0.095, 0.08]), 5.0,
                   (0, [(3, 3, 0.05), (6, 6, 0.04), (9, 9, 0.04)])))
    p0, p1 = (0.0, 0.20, 0.0), (0.0, 0.37, 0.015)
    P.append(_Part('neck', p0, p1, X, lambda s: 0.052 + 0 * s, lambda s: 0.05 + 0 * s, 4.0,
                   (9, [(12, 12, 0.03), (15, 15, 0.03)])))
    p0, p1 = (0.0, 0.305, 0.030), (0.0, 0.545, 0.025)
    P.append(_Part('head', p0, p1, X, lambda s: 0.078 + 0 * s, lambda s: 0.098 + 0 * s, 2.0,
                   (12, [(15, 15, 0.04)])))
    left = []
    # arm: from inside the torso (the collar joint lies in it) to the wrist
    p0, p1 = (0.02, 0.222, -0.005), (0.685, 0.219, -0.032)
    xs = [0.02, 0.17, 0.30, 0.425, 0.55, 0.67, 0.685]
    left.append(_Part('l_arm', p0, p1, Y, _table(0, p0, p1, xs, [0.05, 0.05, 0.045, 0.037, 0.036, 0.026, 0.025]),
                      _table(0, p0, p1, xs, [0.06, 0.055, 0.047, 0.038, 0.037, 0.031, 0.03]), 4.0,
                      (13, [(16, 16, 0.05), (18, 18, 0.05), (20, 20, 0.03)]), side=1))
    p0, p1 = (0.655, 0.218, -0.030), (0.84, 0.212, -0.035)
    xs = [0.655, 0.70, 0.76, 0.84]
    left.append(_Part('l_hand', p0, p1, Y, _table(0, p0, p1, xs, [0.016, 0.016, 0.014, 0.011]),
                      _table(0, p0, p1, xs, [0.035, 0.042, 0.040, 0.032]), 3.0,
                      (18, [(20, 20, 0.02), (22, 22, 0.03)]), side=1))
    left.append(_Part('l_thumb', (0.68, 0.208, -0.005), (0.755, 0.198, 0.045), Y, lambda s: 0.011 + 0 * s,
                      lambda s: 0.012 + 0 * s, 2.5, (20, []), side=1))
    p0, p1 = (0.085, -0.24, 0.02), (0.092, -1.13, -0.035)
    ys = [-0.24, -0.32, -0.45, -0.60, -0.70, -0.82, -0.95, -1.08, -1.13]
    left.append(_Part('l_leg', p0, p1, X,
                      _table(1, p0, p1, ys, [0.085, 0.085, 0.075, 0.062, 0.052, 0.055, 0.048, 0.036, 0.034]),
                      _table(1, p0, p1, ys, [0.085, 0.09, 0.08, 0.065, 0.055, 0.062, 0.052, 0.038, 0.036]), 4.0,
                      (0, [(1, 1, 0.06), (4, 4, 0.05), (7, 7, 0.03)]), side=1))
    p0, p1 = (0.088, -1.14, -0.085), (0.128, -1.16, 0.165)
    zs = [-0.085, -0.03, 0.06, 0.11, 0.165]
    left.append(_Part('l_foot', p0, p1, Y, _table(2, p0, p1, zs, [0.038, 0.040, 0.034, 0.026, 0.02]),
                      _table(2, p0, p1, zs, [0.035, 0.040, 0.048, 0.046, 0.04]), 3.0,
                      (7, [(10, 10, 0.03)]), side=1))
    return P + left + [_mirror_part(p) for p in left]


# joints regressed from the vertices of these parts (mirror-symmetric sets for left/right joints)
_JOINT_PARTS = {0: ('torso', ), 3: ('torso', ), 6: ('torso', ), 9: ('torso', ), 12: ('neck', ), 15: ('head', ),
                1: ('l_leg', ), 4: ('l_leg', ), 7: ('l_leg', 'l_foot'), 10: ('l_foot', ), 13: ('l_arm', ),
                16: ('l_arm', ), 18: ('l_arm', ), 20: ('l_arm', 'l_hand'), 22: ('l_hand', )}
for _l, _r in _LR.items():
    _JOINT_PARTS[_r] = tuple(n.replace('l_', 'r_', 1) for n in _JOINT_PARTS[_l])


@functools.lru_cache(maxsize=1)
def _toy_smpl_neutral() -> Dict[str, np.ndarray]:
    J = toy_smpl_rest_joints()
    parts = _smpl_parts(J)
    names = [p.name for p in parts]
    V, F, axial, label = _assemble(parts, SMPL_NUM_VERTICES, grow_part=0)

    # face: a nose (front of the head) and small ears make the orientation readable
    head = label == names.index('head')
    hc = parts[names.index('head')]
    zc = 0.5 * (hc.p0[2] + hc.p1[2])
    front = head & (V[:, 2] > zc)
    V[front, 2] += 0.02 * np.exp(-(V[front, 0] / 0.013)**2 - ((V[front, 1] - 0.415) / 0.018)**2)
    side = head & (np.abs(V[:, 0]) > 0.04)
    V[side, 0] += np.sign(V[side, 0]) * 0.01 * np.exp(-((V[side, 1] - 0.43) / 0.02)**2 -
                                                        ((V[side, 2] - zc + 0.01) / 0.02)**2)

    # vertices with SMPL's landmark ids at the matching places
    used: set = set()
    picks = {}

    def part(n):
        return label == names.index(n)

    head_front_z = zc + 0.098
    targets = dict(nose=('head', (0.0, 0.415, head_front_z + 0.03)),
                   leye=('head', (0.032, 0.448, head_front_z)), reye=('head', (-0.032, 0.448, head_front_z)),
                   lear=('head', (0.10, 0.43, zc - 0.01)), rear=('head', (-0.10, 0.43, zc - 0.01)))
    for s, sx in (('l', 1.0), ('r', -1.0)):
        S = s.upper()
        targets[f'{S}BigToe'] = (f'{s}_foot', (sx * 0.105, -1.13, 0.19))
        targets[f'{S}SmallToe'] = (f'{s}_foot', (sx * 0.16, -1.15, 0.15))
        targets[f'{S}Heel'] = (f'{s}_foot', (sx * 0.088, -1.19, -0.10))
        targets[f'{s}thumb'] = (f'{s}_thumb', (sx * 0.80, 0.197, 0.06))
        for name, z in (('index', -0.005), ('middle', -0.025), ('ring', -0.045), ('pinky', -0.065)):
            targets[f'{s}{name}'] = (f'{s}_hand', (sx * 0.86, 0.212, z))
    for key, (pn, tgt) in targets.items():
        picks[SMPL_LANDMARK_IDS[key]] = _pick_nearest(V, part(pn), tgt, used)
    V, F, (axial, label) = _permute_landmarks(V, F, [axial, label], picks)

    # joint regressor: convex vertex weights reproducing the skeleton
    Jr = np.zeros((24, len(V)))
    for j in range(24):
        cand = np.nonzero(np.isin(label, [names.index(n) for n in _JOINT_PARTS[j]]))[0]
        Jr[j] = _regressor_row(V, J[j], cand)

    # skinning weights: along each part's axis, plus collar / hip blends on the torso
    W = np.zeros((len(V), 24))
    for pi, p in enumerate(parts):
        m = label == pi
        W[m] = _chain_weights(p, axial[m], J, 24)
    t = label == names.index('torso')
    ax, y = np.abs(V[t, 0]), V[t, 1]
    for wblend, (jl, jr) in ((_smoothstep((ax - 0.06) / 0.08) * _smoothstep((y - 0.10) / 0.10), (13, 14)),
                             (_smoothstep((ax - 0.02) / 0.08) * _smoothstep((-0.27 - y) / 0.08), (1, 2))):
        onehot = np.zeros((t.sum(), 24))
        onehot[np.arange(t.sum()), np.where(V[t, 0] >= 0, jl, jr)] = 1.0
        W[t] = (1 - wblend[:, None]) * W[t] + wblend[:, None] * onehot

    shapedirs = _smpl_shapedirs(V, label, parts, J)
    normals = _vertex_normals(V, F)
    posedirs = np.zeros((len(V), 3, 207))
    for k in range(1, 24):  # bending a joint inflates its skin a little (against LBS volume loss)
        for m in (0, 4, 8):
            posedirs[:, :, 9 * (k - 1) + m] = -0.004 * W[:, k:k + 1] * normals
    return dict(v_template=V, f=F.astype(np.uint32), J_regressor=Jr, weights=W, shapedirs=shapedirs,
                posedirs=posedirs, J=J, label=label)


def _smpl_shapedirs(V, label, parts, J) -> np.ndarray:
    """(V, 3, 10) smooth, mirror-symmetric shape directions (metres per unit beta): size, girth, leg
    length, torso length, shoulder width, arm length, hip width, head size, belly, limb thickness."""
    names = [p.name for p in parts]
    kind = np.array([p.name.split('_')[-1] for p in parts])[label]
    rad = np.zeros_like(V)
    for pi, p in enumerate(parts):
        m = label == pi
        rad[m] = p.radial(V[m])
    sx = np.sign(V[:, 0])
    ax, y = np.abs(V[:, 0]), V[:, 1]
    S = np.zeros((len(V), 3, 10))
    S[:, :, 0] = 0.035 * (V - J[0])
    girth = dict(torso=1.6, leg=1.0, arm=0.7, neck=0.6, head=0.2, hand=0.2, thumb=0.1, foot=0.2)
    S[:, :, 1] = 0.012 * rad * np.vectorize(girth.get)(kind)[:, None]
    leg, foot = kind == 'leg', kind == 'foot'
    S[leg, 1, 2] = -0.03 * np.clip((J[1, 1] - y[leg]) / (J[1, 1] - J[7, 1]), 0, 1)
    S[foot, 1, 2] = -0.03
    upper = np.isin(kind, ['neck', 'head', 'arm', 'hand', 'thumb'])
    torso = kind == 'torso'
    S[torso, 1, 3] = 0.025 * np.clip((y[torso] - J[0, 1]) / (J[12, 1] - J[0, 1]), 0, 1)
    S[upper, 1, 3] = 0.025
    arms = np.isin(kind, ['arm', 'hand', 'thumb'])
    S[torso, 0, 4] = 0.015 * sx[torso] * _smoothstep((ax[torso] - 0.03) / 0.12) * _smoothstep(y[torso] / 0.15)
    S[arms, 0, 4] = 0.015 * sx[arms]
    arm = kind == 'arm'
    S[arm, 0, 5] = 0.025 * sx[arm] * np.clip((ax[arm] - J[16, 0]) / (J[20, 0] - J[16, 0]), 0, 1)
    hands = np.isin(kind, ['hand', 'thumb'])
    S[hands, 0, 5] = 0.025 * sx[hands]
    S[torso, 0, 6] = 0.012 * sx[torso] * _smoothstep((ax[torso] - 0.02) / 0.12) * \
        _smoothstep((-0.05 - y[torso]) / 0.2)
    legs = leg | foot
    S[legs, 0, 6] = 0.012 * sx[legs]
    head = kind == 'head'
    hp = parts[names.index('head')]
    S[head, :, 7] = 0.06 * (V[head] - 0.5 * (hp.p0 + hp.p1))
    neck = kind == 'neck'
    S[neck, :, 7] = 0.003 * rad[neck]
    S[torso, 2, 8] = 0.02 * np.maximum(rad[torso, 2], 0) * np.exp(-((y[torso] + 0.08) / 0.12)**2)
    limbs = np.isin(kind, ['arm', 'leg'])
    S[limbs, :, 9] = 0.008 * rad[limbs]
    S[torso, :, 9] = -0.004 * rad[torso]
    return S


# Gender variants: the neutral template moved along the toy's own shape space.
_GENDER_BETAS = dict(neutral=np.zeros(10),
                     male=np.array([1.0, 0.3, 0.4, 0.3, 1.0, 0.5, -0.6, 0.2, 0.0, 0.6]),
                     female=np.array([-1.0, -0.3, -0.2, -0.2, -1.0, -0.4, 1.0, -0.2, 0.3, -0.6]))


def build_toy_smpl(gender: str = 'neutral') -> Dict[str, object]:
    """Arrays of the toy SMPL-format model (a stand-in for SMPL, see the module docstring).

    Returns:
        dict with SMPL's keys: ``v_template`` (6890, 3) f64, ``f`` (F, 3) uint32, ``J_regressor``
        scipy.sparse.csc_matrix (24, 6890), ``weights`` (6890, 24), ``kintree_table`` (2, 24) uint32,
        ``shapedirs`` (6890, 3, 10), ``posedirs`` (6890, 3, 207), ``J`` (24, 3), ``bs_type``,
        ``bs_style``, plus ``toy_version``.
    """
    import scipy.sparse as sp
    if gender not in _GENDER_BETAS:
        raise BodyModelFileError(f'unknown gender {gender!r} (expected one of {list(_GENDER_BETAS)})')
    n = _toy_smpl_neutral()
    v = n['v_template'] + n['shapedirs'] @ _GENDER_BETAS[gender]
    kintree = np.stack([np.where(SMPL_PARENTS < 0, UINT32_ROOT, SMPL_PARENTS), np.arange(24)]).astype(np.uint32)
    return dict(v_template=v, f=n['f'].copy(), J_regressor=sp.csc_matrix(n['J_regressor']),
                weights=n['weights'].copy(), kintree_table=kintree, shapedirs=n['shapedirs'].copy(),
                posedirs=n['posedirs'].copy(), J=n['J_regressor'] @ v, bs_type='lrotmin', bs_style='lbs',
                toy_version=TOY_VERSION)


def _ring_mixture(F: np.ndarray, vid: int, num_vertices: int) -> np.ndarray:
    """Row: half on a vertex, half spread over its 1-ring neighbours."""
    nb = np.unique(F[np.any(F == vid, axis=1)])
    nb = nb[nb != vid]
    row = np.zeros(num_vertices)
    row[nb] = 0.5 / len(nb)
    row[vid] = 0.5
    return row


def toy_coco_regressor() -> np.ndarray:
    """(17, 6890) COCO-17 regressor of the toy: SMPL joint rows for the body, small vertex mixtures
    around SMPL's face landmark ids for nose / eyes / ears."""
    from .joint_regressors import COCO17_NAMES, SMPL_FACE_VERTEX_IDS, SMPL_JOINT_OF_COCO
    n = _toy_smpl_neutral()
    R = np.zeros((17, SMPL_NUM_VERTICES))
    for k, name in enumerate(COCO17_NAMES):
        if name in SMPL_FACE_VERTEX_IDS:
            R[k] = _ring_mixture(n['f'].astype(np.int64), SMPL_FACE_VERTEX_IDS[name], SMPL_NUM_VERTICES)
        else:
            R[k] = n['J_regressor'][SMPL_JOINT_OF_COCO[name]]
    return R


def toy_h36m_regressor() -> np.ndarray:
    """(17, 6890) Human3.6M-17 regressor of the toy (METRO's joint order): hips/knees/ankles/shoulders/
    elbows/wrists = SMPL joints, Pelvis = mid-hips, Neck (thorax) and Torso (spine) = joint mixtures,
    Nose = vertices 1 cm inside the nose tip, Head = vertices 4 cm below the top of the head."""
    n = _toy_smpl_neutral()
    Jr, V, label = n['J_regressor'], n['v_template'], n['label']
    head = np.nonzero(label == 2)[0]  # parts: torso, neck, head, ...
    pelvis = 0.5 * (Jr[1] + Jr[2])
    thorax = 0.75 * Jr[12] + 0.25 * Jr[9]
    nose = V[SMPL_LANDMARK_IDS['nose']] - np.array([0.0, 0.0, 0.01])
    top = head[np.argmax(V[head, 1])]
    rows = [pelvis, Jr[2], Jr[5], Jr[8], Jr[1], Jr[4], Jr[7], 0.5 * (pelvis + thorax), thorax,
            _regressor_row(V, nose, head), _regressor_row(V, V[top] - np.array([0.0, 0.04, 0.0]), head),
            Jr[16], Jr[18], Jr[20], Jr[17], Jr[19], Jr[21]]
    return np.stack(rows)


# --------------------------------------------------------------------------------------------------
# MANO-format toy (right hand)
# --------------------------------------------------------------------------------------------------
# right hand, MANO-like frame: wrist near (0.095, 0.006, 0.006), fingers along -x, thumb towards +z,
# palm facing -y
_WRIST = np.array([0.095, 0.006, 0.006])
# finger: (first joint id, MCP position, direction, segment lengths, radius)
_FINGERS = dict(index=(1, (0.012, 0.004, 0.030), (-1.0, 0.0, 0.08), (0.040, 0.024, 0.022), 0.0095),
                middle=(4, (0.008, 0.004, 0.010), (-1.0, 0.0, 0.0), (0.044, 0.028, 0.024), 0.0098),
                pinky=(7, (0.022, 0.002, -0.026), (-1.0, 0.0, -0.12), (0.032, 0.020, 0.020), 0.0080),
                ring=(10, (0.012, 0.003, -0.009), (-1.0, 0.0, -0.05), (0.041, 0.026, 0.023), 0.0090),
                thumb=(13, (0.075, -0.005, 0.030), (-0.6, -0.15, 0.8), (0.035, 0.030, 0.027), 0.0110))


def toy_mano_rest_joints() -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    """(16, 3) rest joints of the toy right hand and the fingertip positions."""
    J = np.zeros((16, 3))
    J[0] = _WRIST
    tips = {}
    for name, (j0, mcp, d, lens, _) in _FINGERS.items():
        d = np.asarray(d) / np.linalg.norm(d)
        p = np.asarray(mcp, float)
        for i in range(3):
            J[j0 + i] = p
            p = p + lens[i] * d
        tips[name] = p
    return J, tips


@functools.lru_cache(maxsize=1)
def _toy_mano() -> Dict[str, np.ndarray]:
    J, tips = toy_mano_rest_joints()
    Y = np.array([0, 1.0, 0])
    parts = [_Part('palm', _WRIST + (0.012, 0.0, 0.0), (0.0, 0.003, 0.004), Y,
                   _table(0, _WRIST + (0.012, 0, 0), (0.0, 0, 0), [0.107, 0.06, 0.0], [0.014, 0.015, 0.012]),
                   _table(0, _WRIST + (0.012, 0, 0), (0.0, 0, 0), [0.107, 0.06, 0.0], [0.032, 0.044, 0.042]),
                   4.0, (0, []))]
    for name, (j0, mcp, d, lens, rad) in _FINGERS.items():
        d = np.asarray(d) / np.linalg.norm(d)
        start = np.asarray(mcp) - (0.02 if name == 'thumb' else 0.012) * d
        prof = (lambda r0: (lambda s: r0 * (1.0 - 0.25 * s)))(rad)
        parts.append(_Part(name, start, tips[name], Y if name != 'thumb' else np.array([0, 0.3, 1.0]),
                           prof, prof, 3.0, (0, [(j0, j0, 0.006), (j0 + 1, j0 + 1, 0.005),
                                                 (j0 + 2, j0 + 2, 0.004)])))
    names = [p.name for p in parts]
    V, F, axial, label = _assemble(parts, MANO_NUM_VERTICES, grow_part=0)
    # the tube's end pole is the fingertip
    offsets = np.concatenate([[0], np.cumsum(np.bincount(label))])
    picks = {MANO_TIP_IDS[n]: int(offsets[names.index(n) + 1] - 1) for n in MANO_TIP_IDS}
    V, F, (axial, label) = _permute_landmarks(V, F, [axial, label], picks)
    Jr = np.zeros((16, len(V)))
    joint_part = {0: 'palm'}
    for name, (j0, *_rest) in _FINGERS.items():
        for i in range(3):
            joint_part[j0 + i] = name
    for j in range(16):
        Jr[j] = _regressor_row(V, J[j], np.nonzero(label == names.index(joint_part[j]))[0])
    W = np.zeros((len(V), 16))
    for pi, p in enumerate(parts):
        m = label == pi
        W[m] = _chain_weights(p, axial[m], J, 16)
    rad = np.zeros_like(V)
    for pi, p in enumerate(parts):
        m = label == pi
        rad[m] = p.radial(V[m])
    palm = label == 0
    S = np.zeros((len(V), 3, 10))
    S[:, :, 0] = 0.06 * (V - J[0])  # size
    S[~palm, :, 1] = 0.012 * (V[~palm] - J[0]) * np.array([1.0, 0.0, 0.0])  # finger length
    S[:, 2, 2] = 0.08 * (V[:, 2] - J[0, 2])  # hand width
    S[:, 1, 3] = 0.10 * (V[:, 1] - J[0, 1])  # thickness
    S[~palm, :, 4] = 0.0015 * rad[~palm]  # finger girth
    S[palm, :, 5] = 0.002 * rad[palm]  # palm girth
    for b, fname in zip(range(6, 10), ('index', 'middle', 'ring', 'pinky')):  # single-finger length
        m = label == names.index(fname)
        S[m, 0, b] = -0.004 * np.clip(axial[m] / parts[names.index(fname)].length, 0, 1)
    normals = _vertex_normals(V, F)
    posedirs = np.zeros((len(V), 3, 135))
    for k in range(1, 16):
        for m in (0, 4, 8):
            posedirs[:, :, 9 * (k - 1) + m] = -0.001 * W[:, k:k + 1] * normals
    return dict(v_template=V, f=F.astype(np.uint32), J_regressor=Jr, weights=W, shapedirs=S,
                posedirs=posedirs, label=label)


def build_toy_mano() -> Dict[str, object]:
    """Arrays of the toy MANO-format right hand (a stand-in for MANO_RIGHT.pkl, see the module
    docstring): MANO's keys incl. ``hands_components`` (45, 45) orthonormal, ``hands_mean`` (45,) (a
    slight finger curl), ``hands_coeffs`` (64, 45)."""
    import scipy.sparse as sp
    n = _toy_mano()
    rng = np.random.RandomState(0)
    comps, _ = np.linalg.qr(rng.randn(45, 45))
    mean = np.zeros((15, 3))
    mean[:12, 2] = 0.12  # fingers curl towards the palm (-y): rotation about +z
    mean[12:, 2] = 0.05
    kintree = np.stack([np.where(MANO_PARENTS < 0, UINT32_ROOT, MANO_PARENTS), np.arange(16)]).astype(np.uint32)
    return dict(v_template=n['v_template'].copy(), f=n['f'].copy(), J_regressor=sp.csc_matrix(n['J_regressor']),
                weights=n['weights'].copy(), kintree_table=kintree, shapedirs=n['shapedirs'].copy(),
                posedirs=n['posedirs'].copy(), J=n['J_regressor'] @ n['v_template'],
                hands_components=comps.T.copy(), hands_mean=mean.reshape(-1),
                hands_coeffs=(rng.randn(64, 45) * 0.3), bs_type='lrotmin', bs_style='lbs',
                toy_version=TOY_VERSION)


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------
def toy_body_model_paths(root: str) -> Dict[str, str]:
    """Paths of the toy files under ``root/body_models/`` (the layout of real data under ``data/``)."""
    bm = osp.join(os.fspath(root), 'body_models')
    return dict(body_models=bm, smpl_dir=osp.join(bm, 'smpl'),
                smpl_neutral=osp.join(bm, 'smpl', 'SMPL_NEUTRAL.pkl'),
                smpl_male=osp.join(bm, 'smpl', 'SMPL_MALE.pkl'),
                smpl_female=osp.join(bm, 'smpl', 'SMPL_FEMALE.pkl'),
                coco_regressor=osp.join(bm, 'smpl', 'J_regressor_coco.npy'),
                h36m_regressor=osp.join(bm, 'J_regressor_h36m_correct.npy'),
                mano_dir=osp.join(bm, 'mano'), mano_right=osp.join(bm, 'mano', 'MANO_RIGHT.pkl'),
                mesh_downsampling=osp.join(bm, 'mesh_downsampling.npz'),
                mano_downsampling=osp.join(bm, 'mano_downsampling.npz'))


def _atomic_write(path: str, write: Callable) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as fh:
        write(fh)
    os.replace(tmp, path)  # concurrent callers (e.g. dataloader workers) never see partial files


def _model_ok(path: str, kind: str) -> bool:
    try:
        arrays = load_body_model_file(path)
        validate_body_model(arrays, path, kind=kind)
        return arrays.get('toy_version') == TOY_VERSION
    except (BodyModelFileError, OSError):
        return False


def _array_ok(path: str, shape) -> bool:
    try:
        return np.load(path, allow_pickle=False).shape == shape
    except (OSError, ValueError):
        return False


def _sampling_ok(path: str, faces: np.ndarray, levels: Sequence[int]) -> bool:
    from .mesh_sampler import load_mesh_sampling
    try:
        d = load_mesh_sampling(path)
    except (ValueError, OSError):
        return False
    return (list(d['num_vertices'][1:]) == list(levels) and d['F'][0] is not None
            and np.array_equal(d['F'][0], faces.astype(np.int64)))


def make_toy_body_models(root: str = 'data/toy', force: bool = False) -> Dict[str, str]:
    """Write the toy (stand-in) SMPL / MANO files under ``root/body_models/``; real SMPL / MANO files
    are used instead wherever their paths are given.

    Idempotent: files that exist and are valid (readable, current toy version, samplings matching the
    toy mesh) are kept; ``force=True`` rewrites everything.

    Returns:
        dict of paths (see :func:`toy_body_model_paths`).
    """
    from .mesh_sampler import build_mesh_sampling, save_mesh_sampling
    paths = toy_body_model_paths(root)
    for gender in ('neutral', 'male', 'female'):
        p = paths[f'smpl_{gender}']
        if force or not _model_ok(p, 'smpl'):
            arrays = build_toy_smpl(gender)
            _atomic_write(p, lambda fh: pickle.dump(arrays, fh, protocol=2))
    for key, fn in (('coco_regressor', toy_coco_regressor), ('h36m_regressor', toy_h36m_regressor)):
        if force or not _array_ok(paths[key], (17, SMPL_NUM_VERTICES)):
            R = fn()
            _atomic_write(paths[key], lambda fh: np.save(fh, R))
    if force or not _model_ok(paths['mano_right'], 'mano'):
        arrays = build_toy_mano()
        _atomic_write(paths['mano_right'], lambda fh: pickle.dump(arrays, fh, protocol=2))
    for key, faces, levels in (('mesh_downsampling', _toy_smpl_neutral()['f'], (1723, 431)),
                               ('mano_downsampling', _toy_mano()['f'], (195, ))):
        if force or not _sampling_ok(paths[key], faces, levels):
            verts = (_toy_smpl_neutral() if key == 'mesh_downsampling' else _toy_mano())['v_template']
            sampling = build_mesh_sampling(verts, faces.astype(np.int64), num_vertices=levels)
            tmp = f'{paths[key]}.tmp{os.getpid()}.npz'
            save_mesh_sampling(tmp, sampling)
            os.replace(tmp, paths[key])
    return paths
