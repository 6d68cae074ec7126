"""Generate synthetic AMASS-format motion (the toy stand-in for AMASS).

    python tools/make_toy_mocap.py OUT_DIR [--num-sequences 12] [--seconds 4] [--fps F] [--seed 0]

Writes OUT_DIR/{ToyTrainA,ToyTrainB,ToyVal}/subject_XX/<motion>_<k>_poses.npz with the keys and dtypes
of AMASS SMPL-H files (poses (N,156) float64, trans (N,3), betas (16,), gender, mocap_framerate, dmpls
(N,8)) and a shape.npz per subject; walking, arm swings, squats, turns and reaching within joint
limits, z-up world (see mmpose_mpt/datasets/toy_mocap.py). Without --fps the files cycle through 30,
60 and 120 fps. Deterministic under --seed. Then run tools/prepare_amass.py on OUT_DIR.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmpose_mpt.datasets.toy_mocap import make_toy_mocap  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description='Generate synthetic AMASS-format motion files')
    p.add_argument('out_dir')
    p.add_argument('--num-sequences', type=int, default=12)
    p.add_argument('--seconds', type=float, default=4.0)
    p.add_argument('--fps', type=float, default=None,
                   help='frame rate of every file (default: cycle through 30, 60, 120)')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    try:
        paths = make_toy_mocap(args.out_dir, args.num_sequences, args.seconds, args.fps, args.seed)
    except ValueError as e:
        print(f'make_toy_mocap: error: {e}', file=sys.stderr)
        return 2
    print(f'wrote {len(paths)} toy AMASS sequences under {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
