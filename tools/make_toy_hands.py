"""Generate the toy hand data (stand-ins for Complement and FreiHAND, in their real layouts).

    python tools/make_toy_body_model.py data/toy            # the toy MANO first
    python tools/make_toy_hands.py [OUT_DIR] [--body-model-dir data/toy/body_models]

writes OUT_DIR (default data/toy/hands)/{complement,complement_val}/<part>/model_mano/<num>.obj
(camera-space, mirrored, Complement's fixed camera), mano_params_{train,val}.npz (pose (N, 48), betas),
freihand/{training,evaluation}_{K,mano,xyz,verts,scale}.json + {training,evaluation}/rgb/%08d.jpg
(rendered from the toy hand; the toy training set's version stride is its sample count) and
BODY_MODEL_DIR/mano_downsampling_metro.npz (778 -> 195 with METRO's vertex selection).
See mmpose_mpt/datasets/toy_hands.py.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out_dir', nargs='?', default='data/toy/hands')
    p.add_argument('--body-model-dir', default='data/toy/body_models')
    p.add_argument('--num-complement', type=int, default=1200)
    p.add_argument('--num-complement-val', type=int, default=200)
    p.add_argument('--num-freihand', type=int, default=48)
    p.add_argument('--num-freihand-eval', type=int, default=32)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    from mmpose_mpt.body_models import BodyModelFileError
    from mmpose_mpt.datasets.toy_hands import make_toy_hands
    from mmpose_mpt.utils.cli import MPTUserError, one_line
    for name in ('num_complement', 'num_complement_val', 'num_freihand', 'num_freihand_eval'):
        if getattr(args, name) < 1:
            print(f'error: --{name.replace("_", "-")} must be >= 1', file=sys.stderr)
            return 2
    t0 = time.time()
    try:
        paths = make_toy_hands(args.out_dir, args.body_model_dir, args.num_complement, args.num_complement_val,
                               args.num_freihand, args.num_freihand_eval, args.seed)
    except (BodyModelFileError, MPTUserError, OSError, ValueError) as e:
        print(f'error: {one_line(e)}', file=sys.stderr)
        return 1
    print(f'toy hand data ({time.time() - t0:.1f}s):')
    for k, v in paths.items():
        print(f'  {k:18s} {v}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
