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
    v, f = np.asarray(arrays['v_template']), np.asarray(arrays['f'])
    if v.dtype.kind not in 'iuf' or f.dtype.kind not in 'iuf':
        raise ValueError(f'{path}: v_template ({v.dtype}) and f ({f.dtype}) must be numeric')
    if f.dtype.kind == 'f' and not (np.isfinite(f).all() and np.all(f == np.round(f))):
        # casting would truncate 3.7 to 3: a silently different mesh
        raise ValueError(f'{path}: face indices f hold non-integer values')
    return dict(v_template=v.astype(np.float64), f=f.astype(np.int64))


def _positive_int(text: str) -> int:
    from mmpose_mpt.utils.cli import positive_int
    return positive_int(text)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='body-model file (.pkl / .npz) with v_template and f')
    parser.add_argument('out', help='output .npz')
    parser.add_argument('--levels', type=_positive_int, nargs='+', default=[1723, 431],
                        help='vertex counts of the coarse levels (default: SMPL 1723 431; MANO: 195)')
    args = parser.parse_args(argv)

    from mmpose_mpt.body_models.mesh_sampler import (build_mesh_sampling, load_mesh_sampling,
                                                     save_mesh_sampling)
    from mmpose_mpt.utils.cli import MPTUserError, check_output_file, one_line
    stage = args.model
    try:
        check_output_file(args.out, 'output file', ('.npz', ))
        model = _load_template(args.model)
        t0 = time.time()
        sampling = build_mesh_sampling(model['v_template'], model['f'], args.levels)
        stage = args.out
        save_mesh_sampling(args.out, sampling)
        load_mesh_sampling(args.out)  # read back: the file the training will use must be valid
    except (ValueError, OSError, ImportError, MPTUserError) as e:
        msg = one_line(e)
        # every message names the file it is about (the model, or the output once writing)
        print(f'error: {msg if stage in msg or args.out in msg else f"{stage}: {msg}"}', file=sys.stderr)
        return 1
    sizes = ' -> '.join(str(n) for n in sampling['num_vertices'])
    faces = ', '.join(str(len(f)) for f in sampling['F'])
    print(f'{args.out}: vertices {sizes} (faces {faces}) in {time.time() - t0:.1f}s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
