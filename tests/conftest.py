"""Shared fixtures: generated toy data in exactly the real formats (no licensed files needed)."""
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')


def _keep_freed_memory() -> None:
    """As tools/train.py does on CPU: freed memory stays in the heap, here and in the tools the tests
    start (mmpose_mpt/utils/cpu_allocator.py: large tensors are not re-faulted in at every step). Loaded
    from its file so that collecting the tests does not import the package."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_mpt_cpu_allocator', osp.join(REPO, 'mmpose_mpt', 'utils', 'cpu_allocator.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.keep_freed_memory()


_keep_freed_memory()


@pytest.fixture(scope='session')
def toy_data_root(tmp_path_factory):
    """Toy SMPL/MANO-format body models + toy AMASS-format motion + the prepared MoCap index (small)."""
    from mmpose_mpt.body_models import make_toy_body_models
    from mmpose_mpt.datasets.amass_index import prepare_amass
    from mmpose_mpt.datasets.toy_mocap import make_toy_mocap
    root = str(tmp_path_factory.mktemp('toy'))
    make_toy_body_models(root)
    make_toy_mocap(osp.join(root, 'amass'), num_sequences=6, seconds=2.0, seed=0)
    prepare_amass(osp.join(root, 'amass'), osp.join(root, 'mocap'), osp.join(root, 'body_models'),
                  stride_seconds=0.5, neutral_only=True, progress=False, verbose=False)
    return root


@pytest.fixture(scope='session')
def quickstart_module():
    sys.path.insert(0, TOOLS)
    import quickstart
    return quickstart


# A tiny model/loader on top of configs/mpt/pretrain_toy.py for the training-run tests.
TINY_OPTIONS = {
    'model.head.hidden_dims': (32, 16, 8),
    'model.head.num_layers': 1,
    'model.head.num_heads': 2,
    'train_dataloader.batch_size': 4,
    'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False,
    'train_dataloader.dataset.max_meshes': 8,
    'val_dataloader.batch_size': 8,
    'val_dataloader.num_workers': 0,
    'val_dataloader.persistent_workers': False,
    'val_dataloader.dataset.max_meshes': 4,
    'default_hooks.logger.interval': 1,
}


def cfg_options_args(options: dict) -> list:
    """``--cfg-options`` command-line form of a dotted-key dict."""
    out = []
    for k, v in options.items():
        if isinstance(v, (tuple, list)):
            v = '[' + ','.join(str(x) for x in v) + ']'
        out.append(f'{k}={v}')
    return out
