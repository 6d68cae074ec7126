"""Runtime helpers shared by ``tools/train.py`` and ``tools/test.py``."""
import torch
from mmengine.config import Config


def adapt_cfg_to_device(cfg: Config) -> Config:
    """Make a config runnable on the machine at hand without editing it.

    The paper's configs name ``nccl`` (GPU clusters); on a machine without a GPU, DDP falls back to
    ``gloo`` so the same config and launcher run on CPU (used by the DDP test and CPU debugging), and
    the DDP wrapper gets CPU arguments.
    """
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', None)
    if dist_cfg is not None and dist_cfg.get('backend') == 'nccl' and not torch.cuda.is_available():
        dist_cfg['backend'] = 'gloo'
    if (cfg.get('launcher', 'none') != 'none' and not torch.cuda.is_available()
            and cfg.get('model_wrapper_cfg') is None and cfg.get('strategy') is None):
        # mmengine's default DDP wrapper passes device_ids=[LOCAL_RANK], which DDP rejects for a CPU
        # module; device_ids=None is DDP's CPU form (broadcast_buffers=False as mmengine's default)
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))
    return cfg


def init_distributed_without_cuda(cfg: Config) -> None:
    """Start the process group for a ``pytorch``-launched (torchrun) run on a machine without CUDA.

    mmengine's pytorch-launcher set-up calls ``torch.cuda.set_device`` before creating the process
    group, which fails with a CPU-only torch. Creating the group here (``env://`` from torchrun's
    RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, the config's backend, i.e. gloo after
    :func:`adapt_cfg_to_device`) makes the Runner use it as is. A no-op with CUDA or another launcher.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'gloo')
        dist.init_process_group(backend=backend)
