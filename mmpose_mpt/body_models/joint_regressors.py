"""Joint regressors as matrices: keypoints = R @ vertices, R (K, V) with convex rows.

* COCO-17 (mmpose ``coco.py`` order): the 12 body keypoints are rows of the SMPL ``J_regressor`` (the
  SMPL joints shoulder/elbow/wrist/hip/knee/ankle), the 5 face keypoints are single SMPL vertices
  (``smplx.vertex_ids['smplh']``: nose 332, right eye 6260, left eye 2800, right ear 4071, left ear 583,
  as in SPIN / smplx).
* Human3.6M-17 (METRO's ``H36M_J17_NAME`` order): read from a ``J_regressor_h36m_correct.npy`` (17, V).
* LSP-14: rows ``H36M_J17_TO_J14`` of the Human3.6M regressor (METRO).
* MANO-21: the 16 MANO joints followed by 5 fingertip vertices (smplx order thumb, index, middle, ring,
  pinky); ``MANO21_TO_OPENPOSE`` re-orders them to the wrist/thumb/index/middle/ring/pinky order of
  FreiHAND / OpenPose.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .body_model_file import BodyModelFileError, BodyModelFileNotFoundError

SMPL_JOINT_NAMES: Tuple[str, ...] = (
    'pelvis', 'left_hip', 'right_hip', 'spine1', 'left_knee', 'right_knee', 'spine2', 'left_ankle',
    'right_ankle', 'spine3', 'left_foot', 'right_foot', 'neck', 'left_collar', 'right_collar', 'head',
    'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
    'left_hand', 'right_hand')

COCO17_NAMES: Tuple[str, ...] = (
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
    'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
    'right_knee', 'left_ankle', 'right_ankle')

H36M17_NAMES: Tuple[str, ...] = (
    'Pelvis', 'R_Hip', 'R_Knee', 'R_Ankle', 'L_Hip', 'L_Knee', 'L_Ankle', 'Torso', 'Neck', 'Nose', 'Head',
    'L_Shoulder', 'L_Elbow', 'L_Wrist', 'R_Shoulder', 'R_Elbow', 'R_Wrist')

# A list (as METRO's), so that ``x[..., H36M_J17_TO_J14, :]`` indexes tensors / arrays correctly.
H36M_J17_TO_J14: List[int] = [3, 2, 1, 4, 5, 6, 16, 15, 14, 11, 12, 13, 8, 10]
LSP14_NAMES: Tuple[str, ...] = tuple(H36M17_NAMES[i] for i in H36M_J17_TO_J14)
H36M_PELVIS_INDEX = 0

# SMPL vertex ids of the COCO face keypoints (smplx.vertex_ids['smplh'], SPIN).
SMPL_FACE_VERTEX_IDS: Dict[str, int] = dict(nose=332, left_eye=2800, right_eye=6260, left_ear=583,
                                            right_ear=4071)
# COCO body keypoint -> SMPL joint index.
SMPL_JOINT_OF_COCO: Dict[str, int] = dict(
    left_shoulder=16, right_shoulder=17, left_elbow=18, right_elbow=19, left_wrist=20, right_wrist=21,
    left_hip=1, right_hip=2, left_knee=4, right_knee=5, left_ankle=7, right_ankle=8)

# MANO: 16 kinematic joints (MANO order) + 5 fingertip vertices (smplx.vertex_ids['mano'] order).
MANO_JOINT_NAMES: Tuple[str, ...] = (
    'wrist', 'index1', 'index2', 'index3', 'middle1', 'middle2', 'middle3', 'pinky1', 'pinky2', 'pinky3',
    'ring1', 'ring2', 'ring3', 'thumb1', 'thumb2', 'thumb3')
# smplx/vertex_ids.py VERTEX_IDS['mano'] (vchoutas/smplx 1265df7, PyPI 0.1.28): thumb 744, index 320,
# middle 443, ring 554, pinky 671; the toy hand puts its fingertips at these ids.
MANO_FINGERTIP_VERTEX_IDS: Dict[str, int] = dict(thumb=744, index=320, middle=443, ring=554, pinky=671)
# FreiHAND's tips (lmb-freiburg/freihand utils/mano_utils.py kpId2vertices: ThumbT 744, IndexT 320,
# MiddleT 443, RingT 555, PinkT 672), with which training_xyz.json was made from the real MANO: ring and
# pinky are the neighbours of smplx's. (manopth's right hand: 745, 317, 444, 556, 673.)
FREIHAND_FINGERTIP_VERTEX_IDS: Dict[str, int] = dict(thumb=744, index=320, middle=443, ring=555, pinky=672)
MANO21_NAMES: Tuple[str, ...] = MANO_JOINT_NAMES + tuple(f'{k}4' for k in MANO_FINGERTIP_VERTEX_IDS)
# MANO-21 -> wrist, thumb1-4, index1-4, middle1-4, ring1-4, pinky1-4 (FreiHAND / OpenPose order).
# FreiHAND utils/mano_utils.py maps MANO joint -> FreiHAND id {0: 0, 1: 5, 2: 6, 3: 7, 4: 9, 5: 10, 6: 11,
# 7: 17, 8: 18, 9: 19, 10: 13, 11: 14, 12: 15, 13: 1, 14: 2, 15: 3} and tips -> 4, 8, 12, 16, 20; this is
# its inverse (METRO's and manopth's gather index too).
MANO21_TO_OPENPOSE: List[int] = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]
FREIHAND21_NAMES: Tuple[str, ...] = tuple(MANO21_NAMES[i] for i in MANO21_TO_OPENPOSE)

NUM_KEYPOINTS = dict(coco=17, h36m=17, lsp=14)


def build_coco_regressor(j_regressor: np.ndarray,
                         face_vertex_ids: Optional[Dict[str, int]] = None) -> np.ndarray:
    """COCO-17 regressor (17, V) from the SMPL joint regressor (J >= 22, V) and 5 face vertex ids.

    Raises:
        BodyModelFileError: if a face vertex id is outside the mesh (not an SMPL-topology mesh).
    """
    face_vertex_ids = SMPL_FACE_VERTEX_IDS if face_vertex_ids is None else face_vertex_ids
    j_regressor = np.asarray(j_regressor, dtype=np.float64)
    V = j_regressor.shape[1]
    out = np.zeros((len(COCO17_NAMES), V), dtype=np.float64)
    for k, name in enumerate(COCO17_NAMES):
        if name in face_vertex_ids:
            vid = int(face_vertex_ids[name])
            if not 0 <= vid < V:
                raise BodyModelFileError(f'COCO face keypoint {name!r} uses vertex {vid}, but the mesh has '
                                         f'{V} vertices (not the SMPL topology: give a COCO regressor file)')
            out[k, vid] = 1.0
        else:
            out[k] = j_regressor[SMPL_JOINT_OF_COCO[name]]
    return out


def load_joint_regressor(path: str, num_vertices: Optional[int] = None,
                         num_rows: Optional[int] = None) -> np.ndarray:
    """Load a joint-regressor matrix (K, V) float64.

    Args:
        path: ``.npy`` (dense), ``.npz`` (``scipy.sparse.save_npz`` layout, or the first / the
            ``J_regressor`` array), or a ``.pkl`` of an array (read with the chumpy-free loader).
        num_vertices: expected V (the body model's vertex count).
        num_rows: expected K (17 for COCO / Human3.6M).

    Raises:
        BodyModelFileNotFoundError, BodyModelFileError: missing / unreadable file or wrong size.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise BodyModelFileNotFoundError(f'{path}: joint-regressor file not found')
    ext = osp.splitext(path)[1].lower()
    try:
        if ext == '.npy':
            arr = np.load(path, allow_pickle=False)
        elif ext == '.npz':
            with np.load(path, allow_pickle=False) as z:
                files = list(z.files)
                if {'format', 'shape', 'data'} <= set(files):  # scipy.sparse.save_npz
                    # rebuilt with every index checked: scipy's loader checks only the outline and its
                    # kernels write wherever a bad index points
                    from ..utils.restricted_pickle import sparse_to_dense, validated_sparse
                    fmt = z['format'].item()
                    fmt = fmt.decode('latin1') if isinstance(fmt, bytes) else str(fmt)
                    shape = tuple(int(v) for v in np.asarray(z['shape']).reshape(-1))
                    if num_vertices is not None and len(shape) == 2 and shape[1] != num_vertices:
                        raise BodyModelFileError(f'{path}: joint regressor has {shape[1]} columns, the '
                                                 f'body model has {num_vertices} vertices')
                    parts = {k: z[k] for k in ('indices', 'indptr', 'row', 'col') if k in files}
                    arr = sparse_to_dense(validated_sparse(fmt, shape, z['data'], **parts))
                else:
                    arr = z['J_regressor' if 'J_regressor' in files else files[0]]
        elif ext in ('.pkl', '.pickle'):
            from ..utils.restricted_pickle import restricted_loads
            from .body_model_file import _to_numpy
            with open(path, 'rb') as fh:
                arr = _to_numpy(restricted_loads(fh.read()))
            if isinstance(arr, dict):
                arr = arr.get('J_regressor', next(iter(arr.values()), None))
        else:
            raise BodyModelFileError(f'{path}: unsupported joint-regressor file type {ext!r} '
                                     '(expected .npy, .npz or .pkl)')
    except BodyModelFileError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy/pickle raise many types for bad files
        raise BodyModelFileError(f'{path}: cannot read joint regressor ({type(e).__name__}: {e})') from None
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.dtype.kind not in 'biuf':
        raise BodyModelFileError(f'{path}: a joint regressor must be a 2-D numeric (K, V) matrix, got '
                                 f'shape {arr.shape} dtype {arr.dtype}')
    if num_rows is not None and arr.shape[0] != num_rows:
        raise BodyModelFileError(f'{path}: joint regressor has {arr.shape[0]} rows, expected {num_rows}')
    if num_vertices is not None and arr.shape[1] != num_vertices:
        raise BodyModelFileError(f'{path}: joint regressor is {arr.shape}, but the body model has '
                                 f'{num_vertices} vertices (regressor made for another mesh?)')
    if not np.isfinite(arr).all():
        raise BodyModelFileError(f'{path}: joint regressor contains NaN/inf')
    return arr.astype(np.float64)


def check_h36m_regressor_order(regressor: np.ndarray, v_template: np.ndarray, where: str) -> None:
    """Refuse a Human3.6M-17 regressor whose rows are not in METRO's order (right leg first).

    METRO's ``H36M_J17_TO_J14`` (and so every LSP-14 number of this project) assumes the row order of
    ``J_regressor_h36m_correct.npy``: rows 1-3 the right leg, 4-6 the left leg, 11-13 the left arm,
    14-16 the right arm. SPIN's ``J_regressor_h36m.npy`` lists the left leg first (its own
    ``H36M_TO_J14`` compensates); read through METRO's indices it swaps the legs, so the
    evaluation joints would be wrong while every number still looks plausible. The check regresses
    the rest mesh, where the body's right side is at -x (SMPL's template), and compares sides.

    Args:
        regressor: (17, V); v_template: (V, 3) rest vertices; where: file named in the error.

    Raises:
        BodyModelFileError: the legs or the arms are on the wrong side.
    """
    x = (np.asarray(regressor, np.float64) @ np.asarray(v_template, np.float64))[:, 0]
    legs_ok = x[[1, 2, 3]].mean() < x[[4, 5, 6]].mean()
    arms_ok = x[[14, 15, 16]].mean() < x[[11, 12, 13]].mean()
    if legs_ok and arms_ok:
        return
    if not legs_ok and arms_ok:
        raise BodyModelFileError(
            f'{where}: Human3.6M regressor rows 1-3 are the left leg (SPIN\'s J_regressor_h36m.npy '
            'order), but this project uses METRO\'s order and H36M_J17_TO_J14 (rows 1-3 = right '
            'leg): use J_regressor_h36m_correct.npy (microsoft/MeshTransformer metro/modeling/data/)')
    raise BodyModelFileError(
        f'{where}: Human3.6M regressor has the {"legs and arms" if not legs_ok else "arms"} on the '
        'wrong side of the body for METRO\'s joint order (rows 1-3 right leg, 4-6 left leg, 11-13 '
        'left arm, 14-16 right arm); expected J_regressor_h36m_correct.npy')


def h36m_to_lsp(h36m_regressor: np.ndarray) -> np.ndarray:
    """LSP-14 rows (14, V) of a Human3.6M-17 regressor (17, V) (works for joints (..., 17, 3) too via
    ``x[..., H36M_J17_TO_J14, :]``)."""
    return np.asarray(h36m_regressor)[list(H36M_J17_TO_J14)]


def flip_pairs(names: Sequence[str]) -> Tuple[Tuple[int, int], ...]:
    """Index pairs (left, right) of a keypoint name list (``left_x``/``right_x`` or ``L_x``/``R_x``)."""
    pairs = []
    for i, n in enumerate(names):
        for l, r in (('left_', 'right_'), ('L_', 'R_')):
            if n.startswith(l) and n.replace(l, r, 1) in names:
                pairs.append((i, names.index(n.replace(l, r, 1))))
    return tuple(pairs)
