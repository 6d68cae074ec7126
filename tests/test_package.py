"""The plugin installs, imports and registers its components into mmpose's registries."""
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.registry import init_default_scope

REPO = Path(__file__).resolve().parents[1]

REGISTERED = {
    'MODELS': ['MeshEstimator', 'MPTHead', 'MPTLoss', 'MoCapHeatmapPreprocessor'],
    'DATASETS': ['MoCapHeatmapDataset'],
    'TRANSFORMS': ['RandomVirtualCamera', 'MaskedHeatmapModeling', 'PackMeshInputs'],
    'METRICS': ['MeshMetric'],
    'HOOKS': ['NonFiniteLossHook'],
}


@pytest.mark.parametrize('registry,names', sorted(REGISTERED.items()))
def test_components_registered_in_mmpose_scope(registry, names):
    import mmpose.registry as mmpose_registry

    import mmpose_mpt  # noqa: F401
    init_default_scope('mmpose')
    reg = getattr(mmpose_registry, registry)
    for name in names:
        assert reg.get(name) is not None, f'{name} not in mmpose {registry}'


def test_custom_imports_in_a_fresh_interpreter():
    """What a config's custom_imports does: a fresh process imports the plugin by name."""
    code = ('from mmengine.utils import import_modules_from_strings as imp;'
            "imp(['mmpose_mpt'], allow_failed_imports=False);"
            'from mmpose.registry import MODELS;'
            "assert MODELS.get('MPTHead') is not None;"
            'import sys; assert "torchvision" not in sys.modules, "torchvision must not be imported"')
    subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO)


def test_version_and_setup_metadata():
    import mmpose_mpt
    assert mmpose_mpt.__version__.count('.') == 2
    out = subprocess.run([sys.executable, 'setup.py', '--version'], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    assert out == mmpose_mpt.__version__


def test_setup_env_reports_the_python_it_uses():
    out = subprocess.run(['bash', 'tools/setup_env.sh', '--which-python'], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out.endswith('/bin/python')


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_launch_tools_have_mmpose_usage(tool):
    out = subprocess.run([sys.executable, f'tools/{tool}', '--help'], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    for flag in ('--work-dir', '--cfg-options', '--launcher'):
        assert flag in out
    if tool == 'train.py':
        assert '--resume' in out and '--amp' in out


def test_dist_train_honours_multi_node_variables(tmp_path):
    """dist_train.sh passes NNODES / NODE_RANK / PORT / MASTER_ADDR to torchrun (checked with a fake python)."""
    fake = tmp_path / 'python'
    fake.write_text('#!/usr/bin/env bash\necho "$@"\n')
    fake.chmod(0o755)
    env = {'PATH': '/usr/bin:/bin', 'PYTHON': str(fake), 'NNODES': '2', 'NODE_RANK': '1',
           'PORT': '29555', 'MASTER_ADDR': '10.1.2.3'}
    out = subprocess.run(['bash', 'tools/dist_train.sh', 'cfg.py', '4', '--amp'], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True).stdout
    for piece in ('-m torch.distributed.run', '--nnodes=2', '--node_rank=1', '--master_port=29555',
                  '--master_addr=10.1.2.3', '--nproc_per_node=4', 'cfg.py', '--launcher pytorch',
                  '--amp'):
        assert piece in out, piece


def test_slurm_train_passes_mmposes_arguments_to_srun(tmp_path):
    """slurm_train.sh PARTITION JOB CONFIG WORK_DIR: srun with mmpose's task layout, train.py with
    --launcher slurm (checked with a fake srun)."""
    fake = tmp_path / 'srun'
    fake.write_text('#!/usr/bin/env bash\necho "$@"\n')
    fake.chmod(0o755)
    env = {'PATH': f'{tmp_path}:/usr/bin:/bin', 'GPUS': '16', 'GPUS_PER_NODE': '8', 'PYTHON': 'py'}
    out = subprocess.run(['bash', 'tools/slurm_train.sh', 'part', 'job', 'cfg.py', 'wd', '--amp'],
                         cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
    for piece in ('-p part', '--job-name=job', '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8',
                  'train.py cfg.py --work-dir=wd --launcher=slurm --amp'):
        assert piece in out, piece


def test_deepspeed_config_says_clearly_when_deepspeed_is_missing():
    import importlib.util
    if importlib.util.find_spec('deepspeed') is not None:
        pytest.skip('deepspeed is installed here')
    proc = subprocess.run([sys.executable, 'tools/train.py', 'configs/mpt/pretrain_amass_deepspeed.py'],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1
    assert 'DeepSpeed, which is not installed' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_broken_torchvision_is_not_left_half_imported(tmp_path):
    """A torchvision that raises at import (a CUDA build next to a CPU torch) leaves no module behind,
    and mmpose's visualizers still import through the SimCC stand-in."""
    pkg = tmp_path / 'torchvision'
    (pkg / 'transforms').mkdir(parents=True)
    # as the real one: submodules load first, then registering the C++ ops fails
    (pkg / '__init__.py').write_text('from torchvision import extension\n'
                                     "raise RuntimeError('operator torchvision::nms does not exist')\n")
    (pkg / 'extension.py').write_text('')
    (pkg / 'transforms' / '__init__.py').write_text('')
    code = ('import sys; sys.path.insert(0, %r);'
            'import mmpose_mpt;'
            'import mmpose.visualization;'
            "assert not [m for m in sys.modules if m.split('.')[0] == 'torchvision'], 'left behind'"
            % str(tmp_path))
    subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO)


def test_working_torchvision_is_not_imported_either(tmp_path):
    """An importable torchvision is not imported by the plugin (not even to probe it); importing
    mmpose.visualization before mmpose_mpt keeps mmpose's real SimCCVisualizer."""
    pkg = tmp_path / 'torchvision'
    (pkg / 'transforms').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'transforms' / '__init__.py').write_text('class ToPILImage:\n    pass\n')
    plugin_first = ('import sys; sys.path.insert(0, %r);'
                    'import mmpose_mpt, mmpose.visualization;'
                    "assert 'torchvision' not in sys.modules, 'imported'" % str(tmp_path))
    subprocess.run([sys.executable, '-c', plugin_first], check=True, cwd=REPO)
    mmpose_first = ('import sys; sys.path.insert(0, %r);'
                    'import mmpose.visualization, mmpose_mpt;'
                    'from mmpose.visualization.simcc_vis import SimCCVisualizer;'
                    "assert 'Unavailable' not in repr(SimCCVisualizer), SimCCVisualizer" % str(tmp_path))
    subprocess.run([sys.executable, '-c', mmpose_first], check=True, cwd=REPO)
