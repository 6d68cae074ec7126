"""Generate the toy body models: licence-free STAND-INS for SMPL and MANO in their file formats.

    python tools/make_toy_body_model.py [OUT_DIR]      # default data/toy

writes OUT_DIR/body_models/{smpl/SMPL_{NEUTRAL,MALE,FEMALE}.pkl, smpl/J_regressor_coco.npy,
J_regressor_h36m_correct.npy, mano/MANO_RIGHT.pkl, mesh_downsampling.npz, mano_downsampling.npz}.

The toy SMPL is a generated human-like figure with SMPL's sizes, keys and conventions (6890 vertices,
24 joints, 10 betas), NOT the SMPL model; the toy MANO likewise is a generated hand. They let training,
tests and demos run without the licensed downloads. The real SMPL / MANO files are used whenever their
paths are given (data/body_models/..., see the docs); existing valid toy files are kept (idempotent).
"""
import argparse
import os.path as osp
import sys
import time
from typing import List, Optional

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', nargs='?', default='data/toy',
                        help='root directory; files go to OUT_DIR/body_models (default: data/toy)')
    parser.add_argument('--force', action='store_true', help='rewrite files even if they are valid')
    args = parser.parse_args(argv)
    from mmpose_mpt.body_models import BodyModelFileError, make_toy_body_models
    t0 = time.time()
    try:
        paths = make_toy_body_models(args.out_dir, force=args.force)
    except (BodyModelFileError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'toy body models (stand-ins for SMPL / MANO) in {paths["body_models"]} ({time.time() - t0:.1f}s):')
    for k, p in paths.items():
        if k not in ('body_models', 'smpl_dir', 'mano_dir'):
            print(f'  {k:18s} {p}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
