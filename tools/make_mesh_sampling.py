"""Build the coarse mesh levels of a body model and cache their sampling matrices.

    python tools/make_mesh_sampling.py data/body_models/smpl/SMPL_NEUTRAL.pkl \
        data/body_models/mesh_downsampling.npz                        # SMPL: 6890 -> 1723 -> 431
    python tools/make_mesh_sampling.py data/body_models/mano/MANO_RIGHT.pkl \
        data/body_models/mano_downsampling.npz --levels 195           # MANO: 778 -> 195

MODEL is a body-model file (.pkl or .npz) with ``v_template`` (V, 3) and ``f`` (F, 3).
The output (pickle-free .npz) is read by ``mmpose_mpt.body_models.MeshSampler``.
"""
import argparse
import sys
import time
from typing import Dict, List, Optional

import numpy as np


def _load_template(path: str) -> Dict[str, np.ndarray]:
    """Return dict(v_template (V, 3), f (F, 3)) of a body-model file."""
    try:
        from mmpose_mpt.body_models.body_model_file import load_body_model_file
    except ImportError:  # body-model reader not available: plain .npz only
        import os.path as osp
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: body-model file not found')
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # noqa: BLE001 - turned into one clear message
            raise ValueError(f'{path}: cannot read body-model file ({type(e).__name__}: {e})') from None
    else:
        arrays = load_body_model_file(path)
    missing = [k for k in ('v_template', 'f') if k not in arrays]
    if missing:
        raise ValueError(f'{path}: body-model file lacks {missing}')
    return dict(v_template=np.asarray(arrays['v_template'], np.float64),
                f=np.asarray(arrays['f']).astype(np.int64))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='body-model file (.pkl / .npz) with v_template and f')
    parser.add_argument('out', help='output .npz')
    parser.add_argument('--levels', type=int, nargs='+', default=[1723, 431],
                        help='vertex counts of the coarse levels (default: SMPL 1723 431; MANO: 195)')
    args = parser.parse_args(argv)

    from mmpose_mpt.body_models.mesh_sampler import (build_mesh_sampling, load_mesh_sampling,
                                                     save_mesh_sampling)
    try:
        model = _load_template(args.model)
        t0 = time.time()
        sampling = build_mesh_sampling(model['v_template'], model['f'], args.levels)
        save_mesh_sampling(args.out, sampling)
        load_mesh_sampling(args.out)  # read back: the file the training will use must be valid
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    sizes = ' -> '.join(str(n) for n in sampling['num_vertices'])
    faces = ', '.join(str(len(f)) for f in sampling['F'])
    print(f'{args.out}: vertices {sizes} (faces {faces}) in {time.time() - t0:.1f}s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
