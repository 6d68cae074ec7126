"""Convert an official SMPL / SMPL-H / MANO model file to a chumpy-free .pkl or .npz (no chumpy needed).

    python tools/convert_body_model.py basicModel_neutral_lbs_10_207_0_v1.0.0.pkl \
        data/body_models/smpl/SMPL_NEUTRAL.pkl
    python tools/convert_body_model.py MANO_RIGHT.pkl data/body_models/mano/MANO_RIGHT.npz

The official files are Python-2 pickles holding chumpy objects and a scipy.sparse J_regressor. They are
read with a restricted unpickler that rebuilds chumpy values as numpy arrays (and never runs code from
the file); J_regressor is stored dense. The output holds the same arrays (identical values and dtypes)
plus string entries such as bs_style / bs_type: ``.pkl`` is a plain numpy pickle that
``smplx.SMPL(model_path=...)`` / ``smplx.MANO(model_path=..., ext='pkl')`` load without chumpy, ``.npz``
is read with ``numpy.load(allow_pickle=False)``; both load with ``mmpose_mpt.body_models.SMPL`` / ``MANO``.
Note: the loaders of this project read the official files directly too; converting is optional
(useful for smplx itself and for faster loading).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))


def convert(src: str, dst: str, kind: str = 'auto') -> dict:
    """Convert ``src`` to ``dst`` (.pkl or .npz); returns the validated model info.

    Raises:
        BodyModelFileError (incl. the FileNotFoundError subclass): unreadable / invalid input.
    """
    from mmpose_mpt.body_models.body_model_file import (BodyModelFileError, load_body_model_file,
                                                        save_body_model_file, validate_body_model)
    if osp.splitext(dst)[1].lower() not in ('.pkl', '.npz'):
        raise BodyModelFileError(f'{dst}: output must end in .pkl or .npz')
    if osp.exists(src) and osp.exists(dst) and osp.samefile(src, dst):
        raise BodyModelFileError(f'{dst}: output would overwrite the input')
    if osp.isdir(dst):
        raise BodyModelFileError(f'{dst}: output is an existing directory')
    arrays = load_body_model_file(src)
    if kind == 'auto':
        kind = 'mano' if 'hands_components' in arrays and np.shape(arrays.get('J_regressor'))[:1] == (16, ) \
            else 'smpl'
    info = validate_body_model(arrays, src, kind=kind)
    written = save_body_model_file(dst, arrays)
    back = load_body_model_file(dst)  # read back: the copy must hold exactly the source arrays
    for k, v in written.items():
        if isinstance(v, np.ndarray) and not (k in back and back[k].dtype == v.dtype and np.array_equal(back[k], v)):
            raise BodyModelFileError(f'{dst}: written array {k!r} does not read back identically')
    info.update(kind=kind, keys=sorted(written), dropped=sorted(set(arrays) - set(written)))
    return info


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='official model file (.pkl, may contain chumpy objects) or .npz')
    parser.add_argument('output', help='output file: .pkl (plain numpy pickle) or .npz')
    parser.add_argument('--kind', choices=('auto', 'smpl', 'mano'), default='auto',
                        help='model family to validate against (default: detect)')
    args = parser.parse_args(argv)
    from mmpose_mpt.body_models.body_model_file import BodyModelFileError
    try:
        info = convert(args.input, args.output, args.kind)
    except (BodyModelFileError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f"{args.output}: {info['kind'].upper()} model, {info['num_vertices']} vertices, {info['num_joints']} "
          f"joints, {info['num_betas']} shape coefficients; keys {', '.join(info['keys'])}"
          + (f"; left out (not arrays): {', '.join(info['dropped'])}" if info['dropped'] else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
