"""Prepare the MoCap index for MPT pre-training from an AMASS tree (paper Sec. 3.1).

    python tools/prepare_amass.py AMASS_ROOT OUT_DIR --body-model-dir data/body_models/smpl \
        [--stride-seconds S | --target-count N] [--splits val:HumanEva,SFU test:SSM train:*] \
        [--device cpu|cuda] [--batch-size B] [--neutral-only]

    # the toy stand-in (generated motion + generated body model):
    python tools/make_toy_mocap.py data/toy/amass
    python tools/prepare_amass.py data/toy/amass data/toy/mocap --body-model-dir data/toy/body_models

AMASS_ROOT holds ``<dataset>/<subject>/*.npz`` (SMPL-H ``poses`` (N,156), SMPL-X (N,165) or SMPL (N,72);
``shape.npz`` is skipped). Meshes are sampled every S seconds of each sequence (frame-rate aware), or
with a uniform stride chosen so that the total over all splits is ~N (the paper: 2,000,000). The
paper-scale run: ``--target-count 2000000 --device cuda``.

Writes OUT_DIR/<split>/{pose,betas,gender,keypoints_3d,seq_id,frame_index}.npy + index.json (read by
``MoCapHeatmapDataset(data_root=OUT_DIR, split=...)``), OUT_DIR/report.json (files skipped per reason,
dropped non-finite frames) and OUT_DIR/.cache/ (per-file results: re-running resumes and is
idempotent). Conventions (z-up kept, translation dropped, centred on the posed SMPL pelvis, SMPL-H hand
joints -> SMPL hand joints set to zero, neutral model unless gendered files exist) are documented in
mmpose_mpt/datasets/amass_index.py. Default splits: val = HumanEva, MPI_HDM05/HDM05, SFU, MPI_mosh/MoSh
(the AMASS paper's held-out set) + ToyVal; test = Transitions_mocap/Transitions, SSM_synced/SSM;
train = everything else. Exit status 1 when no mesh could be prepared.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmpose_mpt.datasets.amass_index import parse_splits, prepare_amass  # noqa: E402
from mmpose_mpt.utils.cli import MPTUserError, check_device, one_line, positive_int  # noqa: E402


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not (v > 0 and v < float('inf')):
        raise argparse.ArgumentTypeError(f'must be a finite number > 0, got {text}')
    return v


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('amass_root', help='AMASS root holding <dataset>/<subject>/*.npz')
    p.add_argument('out_dir', help='output directory (the dataset\'s data_root)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--stride-seconds', type=_positive_float, default=None,
                   help='time between sampled meshes of a sequence (default 1.0 s)')
    g.add_argument('--target-count', type=positive_int, default=None,
                   help='total number of meshes over all splits (paper: 2000000)')
    p.add_argument('--splits', nargs='+', default=None, metavar='SPLIT:DS1,DS2',
                   help='split -> AMASS sub-dataset names; "*" = all others '
                   '(default: val:HumanEva,MPI_HDM05,HDM05,SFU,MPI_mosh,MoSh,ToyVal '
                   'test:Transitions_mocap,Transitions,SSM_synced,SSM train:*)')
    p.add_argument('--body-model-dir', required=True,
                   help='directory with SMPL_NEUTRAL.{pkl,npz} (+ optional MALE/FEMALE), or its '
                   'parent holding smpl/')
    p.add_argument('--device', default='cpu', help='torch device of the body-model forward')
    p.add_argument('--batch-size', type=positive_int, default=1024, help='meshes per body-model forward')
    p.add_argument('--neutral-only', action='store_true',
                   help='compute the joints with the neutral model even if gendered models exist')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_device(args.device)
        splits = parse_splits(args.splits)
        report = prepare_amass(args.amass_root, args.out_dir, args.body_model_dir,
                               stride_seconds=args.stride_seconds, target_count=args.target_count,
                               splits=splits, device=args.device, batch_size=args.batch_size,
                               neutral_only=args.neutral_only, progress=not args.no_progress)
    except (OSError, ValueError, MPTUserError) as e:  # bad arguments / missing inputs: one clear line
        print(f'prepare_amass: error: {one_line(e)}', file=sys.stderr)
        return 2
    if report['total_meshes'] == 0:
        print('prepare_amass: error: no mesh prepared (see the report above)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
