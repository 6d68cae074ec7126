"""Per-person time and accuracy of ``mmpose_mpt.apis.fit_smpl`` (SMPL parameters from predicted meshes).

    python tools/benchmark_fit_smpl.py [--device cpu|cuda] [--batch-sizes 1 8 32] [--repeats 3]
                                       [--num-iters N] [--noise-mm 5] [--pose-std 0.4]
                                       [--smpl PATH] [--threads N] [--seed 0] [--json]

"Predictions" are generated: random SMPL parameters (body joints ~ N(0, pose_std²) rad, betas ~ N(0, 1),
a uniformly random global rotation, a translation ~ 5 m in front of a camera) posed by the body model's
own forward (smplx), plus i.i.d. Gaussian vertex noise of ``--noise-mm`` per coordinate (what a
network's prediction looks like; 0 = exact meshes). For every batch size the same persons are
fitted (the first B of them), one warm-up fit first, then ``--repeats`` timed fits; the median
time / B is the per-person time.

Accuracy: ``vertex_error`` (mean per-vertex distance of the fitted mesh to the input, what
``fit_smpl`` reports) and the distance to the noise-free ground-truth mesh (mean over persons, and
the worst person), millimetres. With noise, the first is ~1.6 x the per-coordinate noise (the mean
norm of 3-D Gaussian noise) and the second is the part of the error a fit can remove.

Body model: the toy SMPL-format model (generated into a temporary directory unless
``data/toy/body_models`` holds it) or ``--smpl`` (a real SMPL file or directory).

Exit status 1 if a fit misses the accuracy target (mean vertex error to the ground truth above
10 mm). The last line is ``ratio: X.XX`` = 1 s (the per-person time target) / the slowest measured
per-person time over the batch sizes (> 1: faster than the target); ``--json`` prints one JSON
object (with a ``ratio`` field) instead.
"""
import argparse
import json
import math
import os
import os.path as osp
import platform
import shutil
import sys
import tempfile
import time
from typing import Dict, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import torch  # noqa: E402

from mmpose_mpt.utils.cli import MPTUserError, check_device, positive_int  # noqa: E402

TIME_TARGET_S = 1.0      # per person, CPU (issue text)
ERROR_TARGET_MM = 10.0   # mean vertex error of the fit on toy predictions (issue text)


def random_rotations(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3) axis-angle of uniformly random rotations (normalised Gaussian quaternions)."""
    from mmpose_mpt.apis import matrix_to_axis_angle
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    R = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                     2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                     2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1).view(n, 3, 3)
    return matrix_to_axis_angle(R).float()


def make_predictions(smpl, n: int, pose_std: float, noise_mm: float, seed: int) -> Dict[str, torch.Tensor]:
    """Ground-truth parameters, meshes (n, V, 3) and noisy "predicted" meshes, on the CPU, metres."""
    g = torch.Generator().manual_seed(seed)
    params = dict(global_orient=random_rotations(n, g),
                  body_pose=pose_std * torch.randn(n, 3 * (smpl.num_joints - 1), generator=g),
                  betas=torch.randn(n, smpl.num_betas, generator=g),
                  transl=torch.randn(n, 3, generator=g) * 0.5 + torch.tensor([0.0, 0.0, 5.0]))
    with torch.no_grad():
        gt = smpl(**{k: v.to(smpl.device) for k, v in params.items()})['vertices'].cpu()
    pred = gt + noise_mm * 1e-3 * torch.randn(gt.shape, generator=g)
    return dict(params=params, gt=gt, pred=pred)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def run(smpl_path: str, device: str, batch_sizes: Sequence[int], repeats: int, num_iters: Optional[int],
        noise_mm: float, pose_std: float, seed: int) -> dict:
    from mmpose_mpt.apis import fit_smpl
    from mmpose_mpt.body_models import SMPL
    dev = torch.device(device)
    smpl = SMPL(smpl_path).to(dev)
    data = make_predictions(smpl, max(batch_sizes), pose_std, noise_mm, seed)
    kwargs = {} if num_iters is None else dict(num_iters=num_iters)
    rows = []
    for B in batch_sizes:
        pred, gt = data['pred'][:B].to(dev), data['gt'][:B].to(dev)
        out = fit_smpl(pred, smpl, **kwargs)  # warm-up (allocator, caches, lazy imports)
        times = []
        for _ in range(repeats):
            _sync(dev)
            t0 = time.perf_counter()
            out = fit_smpl(pred, smpl, **kwargs)
            _sync(dev)
            times.append(time.perf_counter() - t0)
        t = sorted(times)[len(times) // 2]
        err_in = out['vertex_error'] * 1e3
        err_gt = (out['vertices'] - gt).norm(dim=-1).mean(-1) * 1e3
        rows.append(dict(batch_size=B, s_per_fit=round(t, 4), s_per_person=round(t / B, 4),
                         vertex_error_mm_mean=round(float(err_in.mean()), 3),
                         vertex_error_mm_max=round(float(err_in.max()), 3),
                         error_to_gt_mm_mean=round(float(err_gt.mean()), 3),
                         error_to_gt_mm_max=round(float(err_gt.max()), 3)))
    slowest = max(r['s_per_person'] for r in rows)
    worst_gt = max(r['error_to_gt_mm_mean'] for r in rows)
    return dict(
        device=str(dev) + (f' ({torch.cuda.get_device_name(dev)})' if dev.type == 'cuda' else ''),
        cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(), torch=torch.__version__,
        load_average=[round(v, 2) for v in os.getloadavg()], smpl=smpl_path,
        num_iters=num_iters if num_iters is not None else 'default', repeats=repeats,
        noise_mm=noise_mm, pose_std=pose_std, rows=rows,
        time_target_s=TIME_TARGET_S, error_target_mm=ERROR_TARGET_MM,
        accurate=bool(worst_gt <= ERROR_TARGET_MM),
        ratio=round(TIME_TARGET_S / slowest, 2) if slowest > 0 else math.inf)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch-sizes', type=positive_int, nargs='+', default=[1, 8, 32])
    p.add_argument('--repeats', type=positive_int, default=3, help='timed fits per batch size (median)')
    p.add_argument('--num-iters', type=int, default=None, help="fit_smpl's num_iters (default: its own)")
    p.add_argument('--noise-mm', type=float, default=5.0, help='Gaussian vertex noise std per coordinate')
    p.add_argument('--pose-std', type=float, default=0.4, help='std of the body joint rotations, radians')
    p.add_argument('--smpl', default=None, help='SMPL model file or directory (default: the toy model)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=positive_int, default=None, help='torch intra-op threads')
    p.add_argument('--json', action='store_true', help='print one JSON object')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        check_device(args.device)
        if args.num_iters is not None and args.num_iters < 0:
            raise MPTUserError(f'--num-iters must be >= 0, got {args.num_iters}')
        if not (args.noise_mm >= 0 and math.isfinite(args.noise_mm)):
            raise MPTUserError(f'--noise-mm must be a finite number >= 0, got {args.noise_mm}')
    except MPTUserError as e:
        print(f'benchmark_fit_smpl: error: {e}', file=sys.stderr)
        return 2
    tmp: Optional[str] = None
    smpl_path = args.smpl
    try:
        if smpl_path is None:
            from mmpose_mpt.body_models import make_toy_body_models, toy_body_model_paths
            default = toy_body_model_paths(osp.join(REPO, 'data', 'toy'))['smpl_neutral']
            if osp.isfile(default):
                smpl_path = default
            else:
                tmp = tempfile.mkdtemp(prefix='mpt_fit_bench_')
                smpl_path = make_toy_body_models(tmp)['smpl_neutral']
        res = run(smpl_path, args.device, args.batch_sizes, args.repeats, args.num_iters, args.noise_mm,
                  args.pose_std, args.seed)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"device: {res['device']}  torch threads: {res['torch_threads']}  "
              f"1-min load avg: {res['load_average'][0]}  body model: {res['smpl']}")
        print(f"toy predictions: pose std {res['pose_std']} rad, vertex noise {res['noise_mm']} mm, "
              f"num_iters {res['num_iters']}, median of {res['repeats']} fits")
        print(f"{'batch':>5} {'s/person':>9} {'s/fit':>8}  {'vertex_error mm (mean/max)':>27}  "
              f"{'to ground truth mm (mean/max)':>30}")
        for r in res['rows']:
            print(f"{r['batch_size']:>5} {r['s_per_person']:>9.3f} {r['s_per_fit']:>8.3f}  "
                  f"{r['vertex_error_mm_mean']:>13.2f} / {r['vertex_error_mm_max']:<11.2f}  "
                  f"{r['error_to_gt_mm_mean']:>14.2f} / {r['error_to_gt_mm_max']:<12.2f}")
        print(f"accuracy target (mean error to ground truth <= {ERROR_TARGET_MM:g} mm): "
              f"{'OK' if res['accurate'] else 'FAIL'}")
        print(f'(ratio = {TIME_TARGET_S:g} s target / slowest s per person)')
        print(f"ratio: {res['ratio']:.2f}")
    return 0 if res['accurate'] else 1


if __name__ == '__main__':
    from mmpose_mpt.utils.cli import run_tool
    sys.exit(run_tool(main, "benchmark_fit_smpl"))
