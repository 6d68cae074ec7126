"""CPU training step with glibc's default malloc vs ``keep_freed_memory()``, side by side in one run.

    python tools/benchmark_cpu_allocator.py [--rounds 3] [--iters 10] [--batch-size 4] [--threads 1]
                                            [--small]

Each round starts two fresh processes one after the other (the allocator setting holds for a whole
process): one with glibc's defaults, one with :func:`mmpose_mpt.utils.keep_freed_memory`. Each times
``--iters`` training steps (forward + MPTLoss + backward + Adam, ``benchmark_model.time_training``) of
the embedded default's head (configs/mpt/pretrain_toy.py: 56 x 56 maps, hidden 96 / 48 / 24, one layer
per block, 431 / 1723 / 6890 vertices, no MVM, batch 4) on random pose maps. The last line is ``ratio: X.XX`` = the
default's step time / the tuned step time (> 1: the tuning is faster), from the median of the rounds.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

TOY_CFG = dict(in_channels=17, input_size=(56, 56), patch_size=8, num_joints=14,
               num_vertices=(431, 1723, 6890), hidden_dims=(96, 48, 24), num_layers=1,
               num_heads=(2, 2, 1), mlp_ratio=2.0, mvm_ratio=0.0, dropout=0.0)


def child(args: argparse.Namespace) -> None:
    if args.child == 'keep':
        from mmpose_mpt.utils.cpu_allocator import _ENV, keep_freed_memory
        # (already tuned when this process was started with the same MALLOC_*_ settings)
        if not (keep_freed_memory(children=False) or all(os.environ.get(k) == v for k, v in _ENV.items())):
            raise SystemExit('benchmark_cpu_allocator: mallopt is not available (not glibc)')
    import torch
    sys.path.insert(0, osp.join(REPO, 'tools'))
    from benchmark_model import SMALL_CFG, make_batch, time_training

    from mmpose_mpt.models.heads import MPTHead
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = dict(SMALL_CFG if args.small else TOY_CFG)
    device = torch.device('cpu')
    x, targets, regressor = make_batch(cfg, args.batch_size, device)
    r = time_training(MPTHead(**cfg), x, targets, regressor, device, False, args.iters, warmup=2)
    print(json.dumps(dict(step_s=r['step_s'])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--batch-size', type=int, default=4, help='4: the embedded default\'s batch')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--small', action='store_true', help='a tiny head, for a quick check')
    parser.add_argument('--child', choices=('default', 'keep'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.rounds, args.iters, args.batch_size, args.threads) < 1:
        parser.error('--rounds, --iters, --batch-size and --threads must be >= 1')
    if args.child:
        return child(args)
    env = {k: v for k, v in os.environ.items()                                   # glibc's defaults
           if not k.startswith('MALLOC_') and k not in ('GLIBC_TUNABLES', 'MMPOSE_MPT_KEEP_FREED_MEMORY')}
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO, env.get('PYTHONPATH')) if p)
    times = {'default': [], 'keep': []}
    for _ in range(args.rounds):
        for name in times:
            cmd = [sys.executable, __file__, '--child', name, '--iters', str(args.iters),
                   '--batch-size', str(args.batch_size), '--threads', str(args.threads)]
            res = subprocess.run(cmd + (['--small'] if args.small else []), env=env, capture_output=True,
                                 text=True)
            if res.returncode:
                raise SystemExit(f'benchmark_cpu_allocator: the {name} run failed:\n{res.stderr[-2000:]}')
            times[name].append(json.loads(res.stdout.strip().splitlines()[-1])['step_s'])
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'training step, batch {args.batch_size}, {args.threads} thread(s), median of {args.rounds} rounds')
    print(f'  glibc default malloc : {med["default"] * 1e3:8.1f} ms')
    print(f'  keep_freed_memory()  : {med["keep"] * 1e3:8.1f} ms')
    print(f'ratio: {med["default"] / med["keep"]:.2f}')


if __name__ == '__main__':
    main()
