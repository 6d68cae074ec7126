"""Train an MPT model (mmpose's tools/train.py usage).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    tools/dist_train.sh CONFIG GPUS [same args]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import Config  # noqa: E402

from mmpose_mpt.utils.cli import (CfgOptionsAction, check_cfg_options, check_output_dir,  # noqa: E402
                                  run_tool)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an MPT mesh model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='if a checkpoint is given, resume from it; without a value, resume from the latest '
        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='automatic mixed precision (GPU only)')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'], default=None,
                        help='dtype of --amp (default: mmengine\'s float16 with dynamic loss scale)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by (total batch size / auto_scale_lr.base_batch_size)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override settings in the config, key=value pairs (xxx=yyy format)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge CLI arguments into the config (as mmpose's tools/train.py does)."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a GPU (mmengine\'s AmpOptimWrapper); run without --amp on CPU')
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise SystemExit(f'--amp is only supported with OptimWrapper, got {optim_wrapper}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        if args.amp_dtype is not None:
            cfg.optim_wrapper.dtype = args.amp_dtype

    if args.resume == 'auto':
        cfg.resume = True   # load_from is settled below, once --cfg-options are merged
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True

    # --cfg-options before --no-validate: options may name val_dataloader keys (e.g. a data root)
    if args.cfg_options is not None:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)

    if args.resume == 'auto':
        from mmengine.runner.checkpoint import find_latest_checkpoint
        if cfg.get('load_from') and find_latest_checkpoint(cfg.work_dir) is None:
            # nothing to resume yet: a fine-tuning run starts from its load_from initialisation
            # (mmpose's train.py drops load_from here, so the first run would train from scratch)
            cfg.resume = False
        else:
            cfg.load_from = None   # mmengine resumes from work_dir's latest checkpoint

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    return cfg


def check_strategy_available(cfg: Config) -> None:
    """A DeepSpeed config without deepspeed installed: one clear message instead of a traceback."""
    strategy = cfg.get('strategy') or {}
    if 'DeepSpeed' in str(strategy.get('type', '')):
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            raise SystemExit(f'{cfg.filename}: this config trains with DeepSpeed, which is not '
                             'installed. Install it (`pip install deepspeed`, on a CUDA machine) or use '
                             'the config it inherits from (plain DDP).') from None


def main() -> None:
    args = parse_args()
    import mmpose_mpt  # noqa: F401  registers the plugin's components
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import torch

    from mmpose_mpt.utils import (adapt_cfg_to_device, init_distributed_without_cuda,
                                  keep_freed_memory)
    if not torch.cuda.is_available():   # CPU steps: no mmap / page faults per large tensor
        keep_freed_memory()

    from mmpose_mpt.engine.hooks import check_checkpoint_file
    cfg = Config.fromfile(args.config)
    cfg = adapt_cfg_to_device(merge_args(cfg, args))
    check_output_dir(cfg.work_dir, 'work directory')
    if cfg.get('load_from'):  # fine-tuning from a checkpoint, or the --resume CKPT (merge_args sets it)
        check_checkpoint_file(cfg.load_from)
    check_strategy_available(cfg)
    init_distributed_without_cuda(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    sys.exit(run_tool(main, 'train.py'))
