"""Runtime helpers shared by ``tools/train.py`` and ``tools/test.py``."""
import torch
from mmengine.config import Config


def adapt_cfg_to_device(cfg: Config) -> Config:
    """Make a config runnable on the machine at hand without editing it.

    The paper's configs name ``nccl`` (GPU clusters); on a machine without a GPU, DDP falls back to
    ``gloo`` so the same config and launcher run on CPU (used by the DDP test and CPU debugging).
    """
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', None)
    if dist_cfg is not None and dist_cfg.get('backend') == 'nccl' and not torch.cuda.is_available():
        dist_cfg['backend'] = 'gloo'
    return cfg
