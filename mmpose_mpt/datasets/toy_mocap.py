"""Synthetic AMASS-format motion (the toy stand-in for AMASS, Sec. 3.1's MoCap source).

Writes sequences with exactly the keys/dtypes of AMASS SMPL-H ``*_poses.npz`` files: ``poses`` (N, 156)
float64 axis-angle radians (22 SMPL body joints + 2 x 15 finger joints), ``trans`` (N, 3) float64
metres, ``betas`` (16,) float64, ``gender`` 0-d str array ('neutral' | 'male' | 'female'),
``mocap_framerate`` 0-d float64, ``dmpls`` (N, 8) float64; plus one ``shape.npz`` (betas, gender) per
subject, as AMASS has. Layout ``<out_dir>/<ToyDataset>/<subject>/<motion>_<k>_poses.npz`` with the
sub-datasets :data:`TOY_DATASETS` (``ToyVal`` is in the default validation split).

Motions (walk, arm swing, squat, turn in place, reach) are smooth periodic joint-angle curves with
random amplitude/frequency/phase and small per-joint sway, clipped to :data:`JOINT_LIMITS`. Each joint
rotation is built as ``Rx(a) @ Ry(b) @ Rz(c)`` from the limited angles (a, b, c) in SMPL's rest frame
(y-up, facing +z, left = +x); signs: hip flexion a < 0, knee flexion a > 0, trunk forward flexion
a > 0, left elbow flexion b < 0 (right b > 0), left arm down c < 0 (right c > 0).

World frame: AMASS is z-up. A standing SMPL body with zero global orient is y-up, so the global
orient is ``Rz(heading) @ Rx(+90 deg) @ R_body`` (turning = rotating about world z); the body then
faces ``(sin h, -cos h, 0)``. Deterministic under ``seed``.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np

TOY_DATASETS = ('ToyTrainA', 'ToyTrainB', 'ToyVal')
MOTIONS = ('walk', 'arm_swing', 'squat', 'turn', 'reach')
DEFAULT_FPS_CHOICES = (30.0, 60.0, 120.0)  # mixed frame rates exercise frame-rate-aware sampling

# Per SMPL joint (1..21): (lower, upper) limits of the (a, b, c) angles of Rx(a) Ry(b) Rz(c), radians.
_L = {
    1: ((-2.0, -0.5, -0.3), (0.5, 0.5, 0.8)),     # left hip: flex a<0, abduct c>0
    2: ((-2.0, -0.5, -0.8), (0.5, 0.5, 0.3)),     # right hip: abduct c<0
    3: ((-0.3, -0.4, -0.3), (0.6, 0.4, 0.3)),     # spine1
    4: ((0.0, -0.05, -0.05), (2.3, 0.05, 0.05)),  # left knee: bends one way only (a >= 0)
    5: ((0.0, -0.05, -0.05), (2.3, 0.05, 0.05)),  # right knee
    6: ((-0.3, -0.4, -0.3), (0.6, 0.4, 0.3)),     # spine2
    7: ((-0.6, -0.3, -0.3), (0.8, 0.3, 0.3)),     # left ankle
    8: ((-0.6, -0.3, -0.3), (0.8, 0.3, 0.3)),     # right ankle
    9: ((-0.3, -0.4, -0.3), (0.6, 0.4, 0.3)),     # spine3
    10: ((-0.3, -0.1, -0.1), (0.3, 0.1, 0.1)),    # left foot (toes)
    11: ((-0.3, -0.1, -0.1), (0.3, 0.1, 0.1)),    # right foot
    12: ((-0.5, -0.6, -0.4), (0.6, 0.6, 0.4)),    # neck
    13: ((-0.2, -0.3, -0.3), (0.2, 0.3, 0.3)),    # left collar
    14: ((-0.2, -0.3, -0.3), (0.2, 0.3, 0.3)),    # right collar
    15: ((-0.4, -0.5, -0.3), (0.5, 0.5, 0.3)),    # head
    16: ((-1.6, -0.8, -1.45), (1.0, 0.8, 1.4)),   # left shoulder: arm down c<0, forward a<0
    17: ((-1.6, -0.8, -1.4), (1.0, 0.8, 1.45)),   # right shoulder: arm down c>0
    18: ((-0.1, -2.4, -0.1), (0.1, 0.0, 0.1)),    # left elbow: flexion b<0 only
    19: ((-0.1, 0.0, -0.1), (0.1, 2.4, 0.1)),     # right elbow: flexion b>0 only
    20: ((-0.5, -0.4, -0.8), (0.5, 0.4, 0.8)),    # left wrist
    21: ((-0.5, -0.4, -0.8), (0.5, 0.4, 0.8)),    # right wrist
}
JOINT_LIMITS: Dict[int, Tuple[np.ndarray, np.ndarray]] = {
    j: (np.array(lo), np.array(hi)) for j, (lo, hi) in _L.items()}


# ----------------------------------------------------------------------------------------------
# rotation helpers (numpy, batched over leading dims)
# ----------------------------------------------------------------------------------------------
def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about a coordinate axis (0=x, 1=y, 2=z) by ``angle`` (...)."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def euler_xyz_to_matrix(abc: np.ndarray) -> np.ndarray:
    """(..., 3) angles (a, b, c) -> ``Rx(a) @ Ry(b) @ Rz(c)`` (..., 3, 3)."""
    return _rot(0, abc[..., 0]) @ _rot(1, abc[..., 1]) @ _rot(2, abc[..., 2])


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle, angle in [0, pi]."""
    R = np.asarray(R, dtype=np.float64)
    cos = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    v = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                  R[..., 1, 0] - R[..., 0, 1]], -1)
    sin = np.sin(angle)
    out = np.zeros(R.shape[:-2] + (3,))
    small = angle < 1e-6
    regular = (~small) & (angle < np.pi - 1e-4)
    out[regular] = (v[regular] / (2 * sin[regular])[..., None]) * angle[regular][..., None]
    out[small] = v[small] / 2.0  # first order
    near_pi = (~small) & (~regular)
    if near_pi.any():  # axis from the diagonal of R = 2 n n^T - I
        Rp = R[near_pi]
        diag = np.stack([Rp[:, 0, 0], Rp[:, 1, 1], Rp[:, 2, 2]], -1)
        n = np.sqrt(np.clip((diag + 1.0) / 2.0, 0.0, None))
        k = np.argmax(n, -1)
        for r in range(len(Rp)):  # fix the signs relative to the largest component
            kk = k[r]
            for m in range(3):
                if m != kk:
                    n[r, m] = np.copysign(n[r, m], Rp[r, kk, m] + Rp[r, m, kk])
        out[near_pi] = n / np.linalg.norm(n, axis=-1, keepdims=True) * angle[near_pi][:, None]
    return out


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices (Rodrigues)."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(angle, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    K = np.zeros(aa.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -z, y
    K[..., 1, 0], K[..., 1, 2] = z, -x
    K[..., 2, 0], K[..., 2, 1] = -y, x
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


# ----------------------------------------------------------------------------------------------
# motion synthesis
# ----------------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, t: np.ndarray, shape: Tuple[int, ...],
                  amp: float) -> np.ndarray:
    """Low-frequency sway (N, *shape): a sum of two random sinusoids (0.1-0.6 Hz) per entry."""
    out = np.zeros((len(t), ) + shape)
    for _ in range(2):
        f = rng.uniform(0.1, 0.6, shape)
        ph = rng.uniform(0, 2 * np.pi, shape)
        a = rng.uniform(0, amp, shape)
        out += a * np.sin(2 * np.pi * f * t.reshape((-1, ) + (1, ) * len(shape)) + ph)
    return out


def generate_motion(kind: str, num_frames: int, fps: float,
                    rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """One synthetic motion clip.

    Args:
        kind: one of :data:`MOTIONS`.
        num_frames: N.
        fps: frames per second.
        rng: numpy Generator (the only source of randomness).

    Returns:
        dict(poses (N, 156) float64 axis-angle radians, trans (N, 3) float64 metres, AMASS z-up world).
    """
    if kind not in MOTIONS:
        raise ValueError(f'unknown motion {kind!r}; choose from {MOTIONS}')
    t = np.arange(num_frames) / fps
    ang = np.zeros((num_frames, 22, 3))  # (a, b, c) per body joint; joint 0 handled separately
    # rest posture: arms hanging by the sides, slight elbow bend
    down = rng.uniform(1.1, 1.35)
    ang[:, 16, 2], ang[:, 17, 2] = -down, down
    ang[:, 18, 1], ang[:, 19, 1] = -0.2, 0.2
    ang[:, 1:] += _smooth_noise(rng, t, (21, 3), 0.05)  # everyone sways a little
    A = rng.uniform(0.6, 1.0)  # motion amplitude
    heading0 = rng.uniform(-np.pi, np.pi)
    heading = np.full(num_frames, heading0)
    speed = np.zeros(num_frames)
    height = rng.uniform(0.88, 0.95) + np.zeros(num_frames)  # pelvis height over the floor (m)
    lean = np.zeros((num_frames, 3))  # whole-body lean in the SMPL body frame (a, b, c)

    if kind in ('walk', 'turn'):
        f = rng.uniform(0.8, 1.1) if kind == 'walk' else rng.uniform(0.5, 0.8)
        step = A if kind == 'walk' else 0.35 * A
        ph = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
        for side, off in ((1, 0.0), (2, np.pi)):  # left / right leg in anti-phase
            ang[:, side, 0] += -0.1 - 0.45 * step * np.sin(ph + off)
            ang[:, side + 3, 0] += 0.15 + 0.6 * step * (1 - np.cos(ph + off + np.pi / 3)) / 2
            ang[:, side + 6, 0] += 0.15 * step * np.sin(ph + off + np.pi / 2)
        # arms swing opposite to the legs
        ang[:, 16, 0] += 0.35 * step * np.sin(ph)
        ang[:, 17, 0] += 0.35 * step * np.sin(ph + np.pi)
        ang[:, 18, 1] += -0.25 * step * (1 + np.sin(ph + np.pi / 2)) / 2
        ang[:, 19, 1] += 0.25 * step * (1 + np.sin(ph - np.pi / 2)) / 2
        ang[:, 3, 1] += 0.08 * step * np.sin(ph)  # pelvis/trunk counter-rotation
        height += 0.015 * step * np.cos(2 * ph)
        if kind == 'walk':
            speed[:] = 1.3 * f * A
            heading += rng.uniform(-0.3, 0.3) * t  # gentle curve
            lean[:, 0] = rng.uniform(0.0, 0.08)
        else:
            omega = rng.choice([-1, 1]) * rng.uniform(0.8, 1.6)  # rad/s about world z
            heading += omega * t
    elif kind == 'arm_swing':
        f = rng.uniform(0.3, 0.8)
        ph = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
        raise_ = A * (1 - np.cos(ph)) / 2  # 0 .. A
        ang[:, 16, 2] += 2.2 * raise_
        ang[:, 17, 2] -= 2.2 * raise_
        ang[:, 16, 0] += -0.6 * A * np.sin(ph + 0.7)
        ang[:, 17, 0] += -0.6 * A * np.sin(ph + 0.7 + rng.uniform(0, np.pi))
        ang[:, 18, 1] += -0.8 * A * (1 - np.cos(2 * ph)) / 2
        ang[:, 19, 1] += 0.8 * A * (1 - np.cos(2 * ph)) / 2
        ang[:, 12, 0] += 0.1 * np.sin(ph)
    elif kind == 'squat':
        f = rng.uniform(0.25, 0.5)
        ph = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
        d = A * (1 - np.cos(ph)) / 2  # depth 0 .. A
        ang[:, 1, 0] += -1.5 * d
        ang[:, 2, 0] += -1.5 * d
        ang[:, 4, 0] += 2.0 * d
        ang[:, 5, 0] += 2.0 * d
        ang[:, 7, 0] += 0.5 * d
        ang[:, 8, 0] += 0.5 * d
        for j in (3, 6, 9):
            ang[:, j, 0] += 0.12 * d
        ang[:, 16, 0] += -1.2 * d  # arms forward for balance
        ang[:, 17, 0] += -1.2 * d
        height -= 0.38 * d
    elif kind == 'reach':
        f = rng.uniform(0.2, 0.45)
        ph = 2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)
        d = A * (1 - np.cos(ph)) / 2
        side = rng.uniform(-0.25, 0.25)
        lean[:, 0] = 0.35 * d  # the pelvis tilts forward about the hips ...
        ang[:, 1, 0] -= 0.35 * d  # ... while the legs stay upright (hip flexion a < 0 re. the pelvis)
        ang[:, 2, 0] -= 0.35 * d
        for j in (3, 6, 9):
            ang[:, j, 0] += 0.2 * d
            ang[:, j, 2] += side * d
        ang[:, 4, 0] += 0.1 * d
        ang[:, 5, 0] += 0.1 * d
        ang[:, 16, 0] += -0.9 * d
        ang[:, 17, 0] += -0.9 * d
        ang[:, 18, 1] += 0.15 * d  # straighten the arms a little
        ang[:, 19, 1] -= 0.15 * d
        height -= 0.12 * d

    for j, (lo, hi) in JOINT_LIMITS.items():
        ang[:, j] = np.clip(ang[:, j], lo, hi)
    body = matrix_to_axis_angle(euler_xyz_to_matrix(ang[:, 1:]))  # (N, 21, 3)
    R_root = _rot(2, heading) @ _rot(0, np.full(num_frames, np.pi / 2)) @ euler_xyz_to_matrix(lean)
    root = matrix_to_axis_angle(R_root)
    fingers = np.zeros((num_frames, 30, 3))
    curl = rng.uniform(0.05, 0.4)
    fingers[:, :, 2] = curl + 0.05 * np.sin(2 * np.pi * 0.3 * t)[:, None]  # relaxed finger curl
    fingers[:, 15:, 2] *= -1  # mirrored for the right hand
    poses = np.concatenate([root[:, None], body, fingers], 1).reshape(num_frames, 156)
    facing = np.stack([np.sin(heading), -np.cos(heading), np.zeros(num_frames)], -1)
    xy = np.cumsum(speed[:, None] * facing / fps, 0) + rng.uniform(-1, 1, (1, 3))
    trans = np.concatenate([xy[:, :2], height[:, None]], 1)
    return dict(poses=poses.astype(np.float64), trans=trans.astype(np.float64))


def pose_to_joint_angles(pose72: np.ndarray) -> np.ndarray:
    """Recover the (a, b, c) angles of ``Rx(a) Ry(b) Rz(c)`` from SMPL pose (N, 72) -> (N, 24, 3).

    Independent check of :data:`JOINT_LIMITS` on generated data (valid for |b| < pi/2).
    """
    R = axis_angle_to_matrix(np.asarray(pose72, np.float64).reshape(-1, 24, 3))
    b = np.arcsin(np.clip(R[..., 0, 2], -1, 1))
    a = np.arctan2(-R[..., 1, 2], R[..., 2, 2])
    c = np.arctan2(-R[..., 0, 1], R[..., 0, 0])
    return np.stack([a, b, c], -1)


def make_toy_mocap(out_dir: str, num_sequences: int = 12, seconds: float = 4.0,
                   fps: Optional[float] = None, seed: int = 0,
                   motions_per_subject: int = 2) -> List[str]:
    """Write ``num_sequences`` AMASS-format toy sequences under ``out_dir``.

    Sequence ``i`` goes to sub-dataset ``TOY_DATASETS[i % 3]``, motion ``MOTIONS[i % 5]``; each subject
    (fixed betas (16,) ~ N(0, 0.8) clipped to +-2.5 for the first 10, small for the rest, and a
    gender) performs ``motions_per_subject`` motions.

    Args:
        out_dir: output directory (created).
        num_sequences: number of motion files.
        seconds: length of each sequence (s).
        fps: frame rate for every file; None cycles through :data:`DEFAULT_FPS_CHOICES`.
        seed: everything is a deterministic function of it.

    Returns:
        sorted list of written motion-file paths.
    """
    if num_sequences < 1 or seconds <= 0 or (fps is not None and fps <= 0):
        raise ValueError('num_sequences >= 1, seconds > 0 and fps > 0 are required')
    ss = np.random.SeedSequence(seed)
    seq_seeds = ss.spawn(num_sequences)
    subjects: Dict[Tuple[str, int], Tuple[np.ndarray, str]] = {}
    paths = []
    for i in range(num_sequences):
        dataset = TOY_DATASETS[i % len(TOY_DATASETS)]
        local = i // len(TOY_DATASETS)
        sub_id = local // motions_per_subject
        key = (dataset, sub_id)
        if key not in subjects:
            srng = np.random.default_rng([seed, TOY_DATASETS.index(dataset), sub_id])
            betas = np.concatenate([np.clip(srng.normal(0, 0.8, 10), -2.5, 2.5),
                                    srng.normal(0, 0.1, 6)]).astype(np.float64)
            gender = ('neutral', 'male', 'female')[int(srng.integers(3))]
            subjects[key] = (betas, gender)
        betas, gender = subjects[key]
        rng = np.random.default_rng(seq_seeds[i])
        rate = float(fps) if fps is not None else DEFAULT_FPS_CHOICES[i % len(DEFAULT_FPS_CHOICES)]
        n = max(1, int(round(seconds * rate)))
        motion = MOTIONS[i % len(MOTIONS)]
        m = generate_motion(motion, n, rate, rng)
        sdir = osp.join(out_dir, dataset, f'subject_{sub_id:02d}')
        os.makedirs(sdir, exist_ok=True)
        path = osp.join(sdir, f'{motion}_{local:02d}_poses.npz')
        np.savez(path, poses=m['poses'], trans=m['trans'], betas=betas, gender=np.array(gender),
                 mocap_framerate=np.array(rate, dtype=np.float64),
                 dmpls=0.01 * rng.standard_normal((n, 8)))
        np.savez(osp.join(sdir, 'shape.npz'), betas=betas, gender=np.array(gender))
        paths.append(path)
    return sorted(paths)
