"""Evaluate an MPT model (mmpose's tools/test.py usage).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.json] [--cfg-options ...]
    python tools/test.py configs/mpt/hand/test_freihand.py CHECKPOINT --freihand-pred pred.json
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [same args]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import Config  # noqa: E402

from mmpose_mpt.utils.cli import (CfgOptionsAction, check_cfg_options, check_output_dir,  # noqa: E402
                                  check_output_file, run_tool)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate an MPT mesh model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the directory to save evaluation results')
    parser.add_argument('--out', help='the file to save metric results (.json)')
    parser.add_argument('--dump', help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument('--freihand-pred', metavar='PRED_JSON',
                        help='also write the FreiHAND Codalab submission ([xyz list, verts list], metres, '
                             'evaluation order) of the test set to this .json')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override settings in the config, key=value pairs (xxx=yyy format)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.dump is not None and not args.dump.endswith(('.pkl', '.pickle')):
        parser.error(f'--dump {args.dump}: the dump file must end in .pkl or .pickle')
    if args.freihand_pred is not None and not args.freihand_pred.endswith('.json'):
        parser.error(f'--freihand-pred {args.freihand_pred}: the submission file must end in .json')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.dump is not None:
        dump_metric = dict(type='DumpResults', out_file_path=args.dump)
        if isinstance(cfg.test_evaluator, (list, tuple)):
            cfg.test_evaluator = [*cfg.test_evaluator, dump_metric]
        else:
            cfg.test_evaluator = [cfg.test_evaluator, dump_metric]
    if getattr(args, 'freihand_pred', None) is not None:
        pred_metric = dict(type='FreiHANDPredDump', out_file=args.freihand_pred)
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        cfg.test_evaluator = [*evaluators, pred_metric]
    if args.cfg_options is not None:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main() -> None:
    args = parse_args()
    import mmpose_mpt  # noqa: F401  registers the plugin's components
    from mmengine.fileio import dump
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmpose_mpt.engine.hooks import check_checkpoint_file
    import torch

    from mmpose_mpt.utils import (adapt_cfg_to_device, init_distributed_without_cuda,
                                  keep_freed_memory)
    if not torch.cuda.is_available():   # CPU steps: no mmap / page faults per large tensor
        keep_freed_memory()

    # the files first: a wrong path must not wait for the model and the data to be built
    check_checkpoint_file(args.checkpoint)
    for path in (args.out, args.dump, args.freihand_pred):
        if path is not None:
            check_output_file(path)
    cfg = adapt_cfg_to_device(merge_args(Config.fromfile(args.config), args))
    check_output_dir(cfg.work_dir, 'work directory')
    init_distributed_without_cuda(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    metrics = runner.test()
    if args.out is not None and runner.rank == 0:
        dump(metrics, args.out)
        print(f'metrics written to {args.out}')


if __name__ == '__main__':
    sys.exit(run_tool(main, 'test.py'))
