"""mmpose_mpt.apis.fit_smpl: SMPL parameters from meshes, checked against the body model's own forward.

Ground truth: random toy-SMPL parameters posed by ``SMPL.forward`` (smplx's LBS). The fit is judged
by re-posing its parameters through that same forward (not through the fitter's own skinning) and
comparing with the ground-truth mesh; the fitter's derivatives are checked against finite
differences of smplx.
"""
import importlib
import json
import math
import os.path as osp
import sys

import pytest
import torch

from mmpose_mpt.apis import FitSMPLInputError, axis_angle_to_matrix, fit_smpl, matrix_to_axis_angle
from mmpose_mpt.body_models import SMPL, toy_body_model_paths
from mmpose_mpt.utils.cli import MPTUserError

fit_module = importlib.import_module('mmpose_mpt.apis.fit_smpl')
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def smpl(toy_data_root):
    return SMPL(toy_body_model_paths(toy_data_root)['smpl_dir'])


def random_params(n: int, seed: int, pose_std: float = 0.4) -> dict:
    """Axis-angle drawn directly (random unit axis, angle U[0, π]) for the root: independent of the
    module's rotation conversions, and it includes near-180° orientations (camera frames, y down)."""
    g = torch.Generator().manual_seed(seed)
    axis = torch.randn(n, 3, generator=g)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    angle = torch.rand(n, 1, generator=g) * math.pi
    return dict(global_orient=axis * angle, body_pose=pose_std * torch.randn(n, 69, generator=g),
                betas=torch.randn(n, 10, generator=g),
                transl=torch.randn(n, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.0, 4.0]))


def pose(smpl, params: dict) -> torch.Tensor:
    with torch.no_grad():
        return smpl(**params)['vertices']


def mean_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).norm(dim=-1).mean(-1)


def geodesic_deg(aa1: torch.Tensor, aa2: torch.Tensor) -> torch.Tensor:
    """Angle of R1ᵀ R2 in degrees, from the trace (no axis-angle conversion of the module)."""
    from smplx.lbs import batch_rodrigues
    R1, R2 = batch_rodrigues(aa1.reshape(-1, 3)), batch_rodrigues(aa2.reshape(-1, 3))
    tr = (R1.transpose(1, 2) @ R2).diagonal(dim1=1, dim2=2).sum(-1)
    return torch.rad2deg(torch.acos(((tr - 1) / 2).clamp(-1, 1)))


# ------------------------------------------------------------------------------------------------
def test_fit_reproduces_exact_meshes(smpl):
    params = random_params(4, seed=0)
    verts = pose(smpl, params)
    out = fit_smpl(verts, smpl)
    assert set(out) == {'global_orient', 'body_pose', 'betas', 'transl', 'vertices', 'vertex_error'}
    assert out['global_orient'].shape == (4, 3) and out['body_pose'].shape == (4, 69)
    assert out['betas'].shape == (4, 10) and out['transl'].shape == (4, 3) and out['vertex_error'].shape == (4, )
    # the target is 10 mm; the fit of in-model meshes is at float32 precision
    refit = pose(smpl, {k: out[k] for k in ('global_orient', 'body_pose', 'betas', 'transl')})
    err = mean_dist(refit, verts)
    assert err.max() < 0.5e-3, err
    assert torch.allclose(out['vertex_error'], mean_dist(out['vertices'], verts), atol=1e-7)
    assert torch.allclose(out['vertices'], refit, atol=1e-6)
    # the toy's shape directions are independent and every joint moves vertices: parameters too
    assert (out['betas'] - params['betas']).abs().max() < 0.05
    assert (out['transl'] - params['transl']).abs().max() < 1e-3
    assert geodesic_deg(out['global_orient'], params['global_orient']).max() < 0.5
    assert geodesic_deg(out['body_pose'], params['body_pose']).max() < 0.5


def test_fit_camera_frame_180_degrees_and_strong_poses(smpl):
    """A y-down camera frame (180° about x), large joint angles and a person 6 m away."""
    params = random_params(3, seed=1, pose_std=1.0)
    params['global_orient'][0] = torch.tensor([math.pi, 0.0, 0.0])
    params['transl'][1] = torch.tensor([1.0, -0.5, 6.0])
    verts = pose(smpl, params)
    out = fit_smpl(verts, smpl)
    assert mean_dist(pose(smpl, {k: out[k] for k in params}), verts).max() < 0.5e-3
    assert geodesic_deg(out['global_orient'][:1], params['global_orient'][:1]).item() < 0.5


def test_fit_noisy_predictions_within_noise(smpl):
    """5 mm Gaussian noise per coordinate (what a network predicts): the fit reports ~the noise
    (mean norm of 3-D noise = σ·2·sqrt(2/π) ≈ 7.98 mm) and lands far closer to the clean mesh."""
    params = random_params(4, seed=2)
    clean = pose(smpl, params)
    sigma = 5e-3
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(3))
    out = fit_smpl(noisy, smpl)
    expected = sigma * 2 * math.sqrt(2 / math.pi)
    assert torch.allclose(out['vertex_error'], torch.full((4, ), expected), rtol=0.05), out['vertex_error']
    to_clean = mean_dist(out['vertices'], clean)
    assert to_clean.max() < 2e-3, to_clean
    assert (out['vertex_error'] < 10e-3).all()


def test_batch_items_fitted_independently(smpl):
    params = random_params(3, seed=4)
    verts = pose(smpl, params)
    ref = fit_smpl(verts, smpl)
    g = torch.Generator().manual_seed(5)
    for bad in (torch.rand(6890, 3, generator=g) * 2,         # garbage
                verts[1] * 10,                                 # no SMPL explains it
                torch.zeros(6890, 3)):                         # degenerate
        x = verts.clone()
        x[1] = bad
        out = fit_smpl(x, smpl)
        for k in ('global_orient', 'body_pose', 'betas', 'transl', 'vertices', 'vertex_error'):
            assert torch.isfinite(out[k]).all(), k
            assert torch.allclose(out[k][[0, 2]], ref[k][[0, 2]], atol=1e-6), k
    # and a person alone gets the same fit as inside a batch
    alone = fit_smpl(verts[2:], smpl)
    assert torch.allclose(alone['vertices'][0], ref['vertices'][2], atol=1e-5)


def test_chunks_and_float64(smpl):
    params = random_params(3, seed=6)
    verts = pose(smpl, params)
    out = fit_smpl(verts, smpl, chunk_size=2)
    assert mean_dist(out['vertices'], verts).max() < 0.5e-3
    out64 = fit_smpl(verts.double(), smpl)
    assert all(v.dtype == torch.float64 for v in out64.values())
    assert mean_dist(out64['vertices'], verts.double()).max() < 0.5e-3


def test_no_grad_leak_deterministic_inference_mode(smpl):
    verts = pose(smpl, random_params(2, seed=7)).requires_grad_(True)
    out = fit_smpl(verts, smpl)
    assert not any(v.requires_grad for v in out.values())
    assert verts.grad is None and verts.grad_fn is None
    again = fit_smpl(verts, smpl)
    assert all(torch.equal(out[k], again[k]) for k in out)
    with torch.inference_mode():
        inf = fit_smpl(verts.detach().clone(), smpl)
    assert torch.allclose(inf['vertices'], out['vertices'], atol=1e-6)
    with torch.no_grad():
        ng = fit_smpl(verts, smpl, num_iters=0)  # initialisation only: a few mm
    assert ng['vertex_error'].max() < 10e-3


@pytest.mark.parametrize('bad,match', [
    (torch.zeros(2, 6000, 3), r'\(B, 6890, 3\).*\(2, 6000, 3\)'),
    (torch.zeros(6890, 3), r'\(B, 6890, 3\)'),
    (torch.zeros(0, 6890, 3), 'empty batch'),
    (torch.zeros(1, 6890, 3, dtype=torch.long), 'floating point'),
])
def test_bad_vertices(smpl, bad, match):
    with pytest.raises(FitSMPLInputError, match=match):
        fit_smpl(bad, smpl)


def test_non_finite_vertices_named(smpl):
    x = pose(smpl, random_params(3, seed=8))
    x[1, 100, 2] = float('nan')
    x[2, 0, 0] = float('inf')
    with pytest.raises(FitSMPLInputError, match=r'batch item\(s\) \[1, 2\] contain NaN or Inf') as e:
        fit_smpl(x, smpl)
    assert isinstance(e.value, MPTUserError) and isinstance(e.value, ValueError)


def test_bad_arguments(smpl):
    x = pose(smpl, random_params(1, seed=9))
    with pytest.raises(FitSMPLInputError, match='torch.Tensor'):
        fit_smpl(x.numpy(), smpl)
    with pytest.raises(FitSMPLInputError, match='body_model'):
        fit_smpl(x, object())
    for kw, match in ((dict(num_iters=-1), 'num_iters'), (dict(betas_weight=float('nan')), 'betas_weight'),
                      (dict(tol=-1.0), 'tol'), (dict(chunk_size=0), 'chunk_size'),
                      (dict(init_rounds=0), 'init_rounds')):
        with pytest.raises(FitSMPLInputError, match=match):
            fit_smpl(x, smpl, **kw)


# ------------------------------------------------------------------------------------------------
def test_rotation_conversions_match_smplx():
    from smplx.lbs import batch_rodrigues
    g = torch.Generator().manual_seed(10)
    axis = torch.randn(64, 3, generator=g, dtype=torch.float64)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    angle = torch.cat([torch.tensor([0.0, 1e-9, 1e-5, math.pi - 1e-7, math.pi], dtype=torch.float64),
                       torch.rand(59, generator=g, dtype=torch.float64) * math.pi])[:, None]
    aa = axis * angle
    R = axis_angle_to_matrix(aa)
    assert torch.allclose(R, batch_rodrigues(aa), atol=1e-7)
    back = matrix_to_axis_angle(R)
    assert torch.allclose(axis_angle_to_matrix(back), R, atol=1e-9)
    assert (back.norm(dim=-1) <= math.pi + 1e-9).all()
    # below π the axis-angle itself comes back
    assert torch.allclose(back[:-2], aa[:-2], atol=1e-6)
    # finite gradient at the zero rotation (the LM increments start there)
    z = torch.zeros(2, 3, requires_grad=True)
    axis_angle_to_matrix(z).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_derivatives_match_finite_differences_of_smplx(toy_data_root):
    """The fitter's analytic Jacobian (all vertices, pose blend shapes included) and its exact
    gradient against central differences of SMPL.forward (smplx), in float64."""
    smpl64 = SMPL(toy_body_model_paths(toy_data_root)['smpl_dir'], dtype=torch.float64)
    p = {k: v.double() for k, v in random_params(1, seed=11, pose_std=0.6).items()}
    aa = torch.cat([p['global_orient'][:, None], p['body_pose'].view(1, 23, 3)], 1)
    skin = fit_module._Skinning(smpl64, torch.device('cpu'), torch.float64)
    R = axis_angle_to_matrix(aa)
    verts, aux = skin(R, p['betas'], p['transl'])
    assert torch.allclose(verts, smpl64(**p)['vertices'], atol=1e-7)
    jac = skin.jacobian(aux)[0]                                                   # (V*3, 85)

    def f(x):  # local increments applied as R_j exp([δ_j]×), composed back to axis-angle for smplx
        Rn = R[0] @ axis_angle_to_matrix(x[:72].view(24, 3))
        a = matrix_to_axis_angle(Rn)
        return smpl64(global_orient=a[:1], body_pose=a[1:].reshape(1, 69), betas=p['betas'] + x[72:82],
                      transl=p['transl'] + x[82:])['vertices'].reshape(-1)

    cols = torch.randperm(85, generator=torch.Generator().manual_seed(12))[:24].tolist() + [72, 84]
    eps = 1e-6
    for c in cols:
        e = torch.zeros(85, dtype=torch.float64)
        e[c] = eps
        num = (f(e) - f(-e)) / (2 * eps)
        assert torch.allclose(jac[:, c], num, atol=1e-6), c
    r = torch.randn(1, 6890, 3, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    assert torch.allclose(skin.gradient(aux, r)[0], jac.t() @ r.reshape(-1), rtol=1e-9, atol=1e-8)
    # the metric's subset rows without the pose blend shapes differ from the full rows only there
    ids = skin.hessian_ids
    sub = skin.jacobian(aux, vertex_ids=ids).view(len(ids), 3, 85)
    assert torch.allclose(sub, jac.view(6890, 3, 85)[ids], atol=1e-12)


# ------------------------------------------------------------------------------------------------
def test_benchmark_tool_json_and_ratio_line(toy_data_root, capsys):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import benchmark_fit_smpl
    finally:
        sys.path.pop(0)
    smpl_path = toy_body_model_paths(toy_data_root)['smpl_neutral']
    rc = benchmark_fit_smpl.main(['--smpl', smpl_path, '--batch-sizes', '1', '2', '--repeats', '1', '--json'])
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and res['accurate'] and [r['batch_size'] for r in res['rows']] == [1, 2]
    slowest = max(r['s_per_person'] for r in res['rows'])
    assert res['ratio'] == pytest.approx(1.0 / slowest, rel=0.02)
    # 5 mm noise: the fit's error ~8 mm against the input, < 2 mm against the clean mesh
    assert all(7.0 < r['vertex_error_mm_mean'] < 9.0 and r['error_to_gt_mm_max'] < 2.0 for r in res['rows'])
    rc = benchmark_fit_smpl.main(['--smpl', smpl_path, '--batch-sizes', '1', '--repeats', '1', '--num-iters', '0'])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and lines[-1].startswith('ratio: ') and float(lines[-1].split()[1]) > 0
    assert benchmark_fit_smpl.main(['--smpl', smpl_path, '--noise-mm', '-1']) == 2
