"""FreiHANDPredDump: write the Codalab submission ``pred.json`` of the FreiHAND evaluation set.

Format (lmb-freiburg/freihand ``pred.py`` ``dump``; what its ``eval.py`` reads from ``res/pred.json``):
one json list ``[xyz_pred_list, verts_pred_list]``, element 0 = N x (21, 3) joints, element 1 = N x
(778, 3) vertices, metres, in evaluation-index order (the sample ids 0..3959 of ``evaluation_*.json``).
The predictions are written as the model gives them (``pred_instances.keypoints_3d`` / ``vertices``:
wrist-relative, camera axes, as METRO's submission): only the aligned scores of eval.py are meaningful
for them (METRO ``docs/EXP.md``).
"""
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmpose.registry import METRICS

from ..utils.cli import MPTUserError


class FreiHANDPredDumpError(MPTUserError, ValueError):
    """The predictions cannot be written as a FreiHAND submission (missing ids, wrong shapes)."""


def write_freihand_pred(path: str, xyz: Sequence[np.ndarray], verts: Sequence[np.ndarray]) -> str:
    """Write ``[xyz list, verts list]`` (metres, 6 decimals = micrometres) atomically; returns ``path``."""
    if len(xyz) != len(verts):
        raise FreiHANDPredDumpError(f'{path}: {len(xyz)} joint sets but {len(verts)} meshes')
    body = [[np.asarray(j, np.float64).round(6).tolist() for j in xyz],
            [np.asarray(v, np.float64).round(6).tolist() for v in verts]]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as fh:
        json.dump(body, fh)
    os.replace(tmp, path)
    return path


@METRICS.register_module()
class FreiHANDPredDump(BaseMetric):
    """Collect ``pred_instances.keypoints_3d`` (1, 21, 3) and ``vertices`` (1, 778, 3) per sample, keyed by
    the sample's FreiHAND ``id`` (``FreiHANDDataset`` item, packed in the metainfo), and write them
    sorted by id to ``out_file`` (``tools/test.py --freihand-pred FILE``). Reports ``{}``.

    Args:
        out_file: the ``.json`` to write.
        collect_device, prefix: :class:`BaseMetric`'s.
    """

    default_prefix: Optional[str] = 'freihand_pred'

    def __init__(self, out_file: str, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not str(out_file).endswith('.json'):
            raise FreiHANDPredDumpError(f'{out_file}: the FreiHAND submission file must end in .json')
        self.out_file = str(out_file)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            get = ds.get if isinstance(ds, dict) else (lambda k, d=None: getattr(ds, k, d))
            pred = get('pred_instances')
            sid = get('id', None)
            if sid is None:
                sid = (get('metainfo', {}) or {}).get('id')
            if sid is None or pred is None:
                raise FreiHANDPredDumpError(f'{self.out_file}: a data sample has no FreiHAND "id" or no '
                                            'pred_instances (use FreiHANDDataset and PackMeshInputs)')
            pget = pred.get if isinstance(pred, dict) else (lambda k: getattr(pred, k))
            j = np.asarray(pget('keypoints_3d'), np.float64).reshape(-1, 21, 3)[0]
            v = np.asarray(pget('vertices'), np.float64)
            v = v.reshape(-1, v.shape[-2], 3)[0]
            self.results.append((int(sid), j, v))

    def compute_metrics(self, results: List[tuple]) -> Dict[str, float]:
        results = sorted(results, key=lambda r: r[0])
        ids = [r[0] for r in results]
        if len(set(ids)) != len(ids):
            raise FreiHANDPredDumpError(f'{self.out_file}: sample ids repeat (several versions of one sample?): '
                                        'evaluate the evaluation split once')
        if ids != list(range(len(ids))):
            print_log(f'FreiHANDPredDump: ids are not 0..{len(ids) - 1} (a subset?): written in id order anyway',
                      logger='current', level=30)
        write_freihand_pred(self.out_file, [r[1] for r in results], [r[2] for r in results])
        print_log(f'FreiHAND submission ({len(results)} samples) written to {self.out_file}', logger='current')
        return {}
