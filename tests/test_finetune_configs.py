"""The fine-tuning configs (paper Sec. 3.3, Tables 1, 2, 3b, 4, 8, 10, Fig. 4b) and mixed 2D / 3D data.

* every config parses and differs from its parent exactly where its name says;
* mmpose's CombinedDataset + the (resumable) MultiSourceSampler: batches follow the ratios, the
  sampler's epochs equal mmpose's, J24 metainfo;
* every config builds and trains a few iterations through tools/train.py on rendered toy images in
  the published formats (METRO TSV, SPIN npz), with a tiny head and pose network by config overrides;
* 2D-only samples train L_J^proj alone (the other terms exactly 0);
* the pre-trained head and the released pose-network weights are what training starts from;
* a mixed-dataset run killed mid-epoch and resumed continues the same samples and losses.
"""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config

from conftest import REPO, TOOLS
from test_configs import flatten

CFG_DIR = osp.join(REPO, 'configs', 'mpt')
J24_INFO = osp.join(CFG_DIR, '_base_', 'datasets', 'j24_info.py')
# one head per layer, no dropout: PyTorch's CPU attention is slow for head sizes < 24 and falls back to
# explicit matmuls with dropout (pretrain_toy.py)
TINY_HEAD = dict(hidden_dims=(32, 16, 8), num_layers=1, num_heads=1, dropout=0.0)
# the toy pose network's HRNet (w48's layout at 16 channels, one block per branch) + HigherHRNet's neck
# at that width, standing in for the paper configs' HigherHRNet-w48
TINY_HRNET = Config.fromfile(
    osp.join(CFG_DIR, '_base_', 'pose_nets', 'toy_hrnet.py')).toy_pose_net.backbone.extra.to_dict()
TINY_NECK = dict(type='AEHigherResolutionNeck', in_channels=16, num_joints=17, tag_per_joint=True,
                 extra=dict(final_conv_kernel=1), num_deconv_layers=1, num_deconv_filters=[16],
                 num_deconv_kernels=[4], num_basic_blocks=1, cat_output=[True],
                 with_ae_loss=[True, False], pose_maps='final')
# SimpleBaseline's layout (mmpose ResNet + HeatmapHead) at 1/4 width and 18 layers
TINY_RESNET = dict(type='ResNet', depth=18, stem_channels=16, base_channels=16)
TINY_HEATMAP_HEAD = dict(type='HeatmapHead', in_channels=128, out_channels=17,
                         deconv_out_channels=(16, 16, 16))
BATCH = 4


def cfg(name: str) -> Config:
    return Config.fromfile(osp.join(CFG_DIR, f'{name}.py'))


def diff(parent: str, child: str) -> dict:
    """{dotted key: (parent value, child value)} where the two configs differ."""
    a, b = flatten(cfg(parent).to_dict()), flatten(cfg(child).to_dict())
    return {k: (a.get(k, '<absent>'), b.get(k, '<absent>')) for k in set(a) | set(b)
            if a.get(k, '<absent>') != b.get(k, '<absent>')}


def under(keys, *prefixes) -> set:
    """The keys that are one of ``prefixes`` or below one (``prefix.``)."""
    return {k for k in keys if any(k == p or k.startswith(p + '.') for p in prefixes)}

# ======================================================================================= configs
# the paper's configs (finetune_toy.py, the embedded default, is the quickstart's)
FINETUNE_CONFIGS = sorted(osp.basename(p)[:-3] for p in glob.glob(osp.join(CFG_DIR, 'finetune_*.py'))
                          if not p.endswith('finetune_toy.py'))
SCHEDULE_KEYS = {'max_epochs', 'train_cfg.max_epochs', 'param_scheduler.0.end',
                 'param_scheduler.1.begin', 'param_scheduler.1.end'}
IMAGE_FEATURE_KEYS = {'load_from', 'model.head.in_channels', 'model.head.input_size',
                      'model.head.patch_size'}


def test_the_paper_configs_are_all_here():
    assert set(FINETUNE_CONFIGS) == {
        'finetune_mixed', 'finetune_mixed_no-pretrain', 'finetune_mixed_frozen-backbone',
        'finetune_mixed_image-features', 'finetune_mixed_simplebaseline', 'finetune_mixed_112px',
        'finetune_h36m', 'finetune_h36m_no-pretrain', 'finetune_h36m_frozen-backbone',
        'finetune_h36m_image-features', 'finetune_h36m_0.1pct-data', 'finetune_h36m_1pct-data',
        'finetune_h36m_10pct-data', 'finetune_3dpw'}


def test_mixed_is_testing_without_finetuning_unfrozen_and_trained():
    """finetune_mixed.py = test_wo_finetune_h36m.py's graph (head, loss, regressor, pose network,
    preprocessor, evaluation untouched) + training: the backbone unfrozen, the pre-trained head, the
    schedule of Appendix E, the mixture, the best checkpoint by PA-MPJPE."""
    d = diff('test_wo_finetune_h36m', 'finetune_mixed')
    assert set(d) - under(d, 'train_dataloader') == SCHEDULE_KEYS | {
        'load_from', 'model.freeze_backbone', 'default_hooks.checkpoint.save_best'}
    assert d['model.freeze_backbone'] == (True, False)
    c = cfg('finetune_mixed')
    assert c.optim_wrapper.optimizer == dict(type='Adam', lr=2e-4) and c.train_cfg.max_epochs == 80
    warmup, decay = c.param_scheduler
    assert (warmup.start_factor, warmup.begin, warmup.end) == (1e-3, 0, 8)     # 10 % of 80 epochs
    assert (decay.begin, decay.end, decay.end_factor) == (8, 80, 0.0)
    assert all(s.type == 'ShortEpochLinearLR' and s.convert_to_iter_based for s in c.param_scheduler)
    ckpt = c.default_hooks.checkpoint
    assert (ckpt.save_best, ckpt.rule, ckpt.interval) == ('pa_mpjpe', 'less', 1)
    assert c.train_cfg.val_interval == 1
    assert c.load_from == 'work_dirs/pretrain_amass/epoch_10.pth'
    assert c.load_partial == ['backbone.*', 'neck.*']     # the pose network: pose_net_checkpoint
    assert c.model.pose_net_checkpoint.endswith('higher_hrnet48_coco_512x512-60fedcbc_20200712.pth')
    assert c.val_dataloader.dataset.ann_file == 'data/human3.6m/valid.protocol2.yaml'
    assert c.val_evaluator == dict(type='MeshMetric', joint_set='lsp14')

    loader = c.train_dataloader
    data = loader.dataset
    assert data.type == 'CombinedDataset' and data.pipeline == c.image_train_pipeline
    assert [t['type'] for t in data.pipeline] == ['LoadMeshImage', 'MeshImageCrop', 'PackMeshInputs']
    assert data.pipeline[1]['augment'] is True
    assert data.metainfo.from_file == J24_INFO
    names = [(s.dataset_name, s.ann_file) for s in data.datasets]
    assert names == [('h36m_train', 'data/human3.6m/train.smpl.p1.yaml'),
                     ('muco_train', 'data/muco/train.img.tsv'),
                     ('up3d_trainval', 'data/up3d/trainval.img.tsv'),
                     ('coco_train', 'data/coco_smpl/train.yaml'),
                     ('mpii_train', 'data/mpii/train.img.tsv')]
    assert all(s.type == 'MeshImageDataset' and s.pipeline == [] for s in data.datasets)
    assert loader.sampler == dict(type='ResumableMultiSourceSampler', batch_size=loader.batch_size,
                                  source_ratio=[17, 11, 1, 2, 1], shuffle=True)


@pytest.mark.parametrize('child,parent,expected', [
    ('finetune_mixed_no-pretrain', 'finetune_mixed', {'load_from': (
        'work_dirs/pretrain_amass/epoch_10.pth', None)}),
    ('finetune_h36m_no-pretrain', 'finetune_h36m', {'load_from': (
        'work_dirs/pretrain_amass/epoch_10.pth', None)}),
    ('finetune_mixed_frozen-backbone', 'finetune_mixed', {'model.freeze_backbone': (False, True)}),
    ('finetune_h36m_frozen-backbone', 'finetune_h36m', {'model.freeze_backbone': (False, True)}),
    ('finetune_mixed_112px', 'finetune_mixed', {
        'heatmap_size': ((224, 224), (112, 112)), 'model.head.input_size': ((224, 224), (112, 112)),
        'load_from': ('work_dirs/pretrain_amass/epoch_10.pth',
                      'work_dirs/pretrain_amass_112px/epoch_10.pth')}),
    ('finetune_h36m_0.1pct-data', 'finetune_h36m', {
        'train_dataloader.dataset.sample_fraction': ('<absent>', 0.001)}),
    ('finetune_h36m_1pct-data', 'finetune_h36m', {
        'train_dataloader.dataset.sample_fraction': ('<absent>', 0.01)}),
    ('finetune_h36m_10pct-data', 'finetune_h36m', {
        'train_dataloader.dataset.sample_fraction': ('<absent>', 0.1)}),
])
def test_variants_change_only_what_their_name_says(child, parent, expected):
    assert diff(parent, child) == expected


def test_h36m_only_changes_the_training_data():
    d = diff('finetune_mixed', 'finetune_h36m')
    assert d and set(d) == under(d, 'train_dataloader')
    loader = cfg('finetune_h36m').train_dataloader
    assert loader.sampler == dict(type='DefaultSampler', shuffle=True)
    assert loader.dataset.ann_file == 'data/human3.6m/train.smpl.p1.yaml'
    assert loader.dataset.pipeline == cfg('finetune_mixed').train_dataloader.dataset.pipeline
    assert loader.batch_size == cfg('finetune_mixed').train_dataloader.batch_size


@pytest.mark.parametrize('child,parent', [('finetune_mixed_image-features', 'finetune_mixed'),
                                          ('finetune_h36m_image-features', 'finetune_h36m')])
def test_image_features_replace_the_pose_maps_by_the_backbone_features(child, parent):
    """Table 3b: no pose head; the head reads HRNet-w48's 48 x 56 x 56 features in 2 x 2 patches (the
    784 tokens over the same 8 x 8 crop pixels as the pose maps'), trained without MPT."""
    d = diff(parent, child)
    assert set(d) == IMAGE_FEATURE_KEYS | under(d, 'model.neck')
    assert d['model.neck'] == ('<absent>', None)
    c = cfg(child)
    head, w48 = c.model.head, c.pose_net.backbone.extra.stage4.num_channels
    assert c.load_from is None and head.in_channels == w48[0] == 48
    assert (head.input_size, head.patch_size) == ((56, 56), 2)
    assert (224 // 4 // head.patch_size) ** 2 == (224 // 8) ** 2     # tokens of the pose-map head


def test_simplebaseline_swaps_only_the_pose_network():
    d = diff('finetune_mixed', 'finetune_mixed_simplebaseline')
    assert set(d) == under(d, 'model.backbone', 'model.neck', 'model.pose_net_checkpoint', 'pose_net',
                           'pose_net_checkpoint', 'pose_net_url')
    c, sb = cfg('finetune_mixed_simplebaseline'), Config.fromfile(
        osp.join(CFG_DIR, '_base_', 'pose_nets', 'simplebaseline_r101.py'))
    # the repeated settings equal _base_/pose_nets/simplebaseline_r101.py's
    for key in ('pose_net', 'pose_net_checkpoint', 'pose_net_url'):
        assert c[key] == sb[key], key
    assert c.model.backbone == sb.pose_net.backbone and c.model.neck == sb.pose_net.neck
    assert c.model.pose_net_checkpoint == sb.pose_net_checkpoint


def test_3dpw_starts_from_the_mixed_model_and_trains_on_3dpw():
    d = diff('finetune_mixed', 'finetune_3dpw')
    assert set(d) - under(d, 'train_dataloader') == SCHEDULE_KEYS | {
        'load_from', 'load_partial', 'model.pose_net_checkpoint', 'val_dataloader.dataset.ann_file',
        'val_dataloader.dataset.dataset_name', 'test_dataloader.dataset.ann_file',
        'test_dataloader.dataset.dataset_name'}
    c = cfg('finetune_3dpw')
    assert c.load_from.startswith('work_dirs/finetune_mixed/') and c.load_partial is False
    assert c.model.pose_net_checkpoint is None            # the fine-tuned pose network is in load_from
    assert c.train_dataloader.dataset.ann_file == 'data/3dpw/train.yaml'
    w = cfg('test_wo_finetune_3dpw')                       # 3DPW test as testing without fine-tuning
    assert c.test_dataloader == w.test_dataloader and c.val_dataloader == w.val_dataloader
    assert c.model.data_preprocessor == w.model.data_preprocessor
    warmup, decay = c.param_scheduler
    assert (warmup.end, decay.begin, decay.end) == (0.5, 0.5, 5) and c.train_cfg.max_epochs == 5


@pytest.mark.parametrize('name', FINETUNE_CONFIGS)
def test_every_config_has_the_papers_numbers_and_keeps_the_graph(name):
    """The header gives the paper's figures; the head / loss / regressor / preprocessor are those of
    testing without fine-tuning except where the name says (112px, image-features)."""
    with open(osp.join(CFG_DIR, f'{name}.py')) as f:
        header = f.read().split('\n_base_ = ')[0]
    assert ('Table' in header or 'Fig. 4' in header) and 'PA-MPJPE' in header
    d = diff('test_wo_finetune_h36m', name)
    changed = under(d, 'model.head', 'model.loss', 'model.joint_regressor', 'model.data_preprocessor')
    allowed = {'finetune_mixed_112px': {'model.head.input_size'}}.get(name, set())
    if 'image-features' in name:
        allowed = {'model.head.in_channels', 'model.head.input_size', 'model.head.patch_size'}
    assert changed == allowed


# ========================================================================= sampler, metainfo
def _combined(lens):
    """A CombinedDataset over stand-in sources of the given lengths (the sampler reads only lengths)."""
    from mmpose.datasets import CombinedDataset
    data = CombinedDataset.__new__(CombinedDataset)
    data.datasets, data._lens, data._len = [range(n) for n in lens], list(lens), sum(lens)
    return data


@pytest.mark.parametrize('world_size', [1, 2])
def test_resumable_sampler_epochs_are_mmposes_epochs(monkeypatch, world_size):
    """Epoch e of ResumableMultiSourceSampler, started fresh (a resumed run) or after e epochs, is
    mmpose's MultiSourceSampler's e-th epoch of an uninterrupted run; every batch follows the ratios."""
    from mmpose.datasets.samplers import MultiSourceSampler
    from mmpose_mpt.datasets import ResumableMultiSourceSampler
    data, batch, ratio = _combined([7, 3]), 4, [3, 1]
    for rank in range(world_size):
        monkeypatch.setattr('mmpose.datasets.samplers.get_dist_info', lambda: (rank, world_size))
        ref = MultiSourceSampler(data, batch, ratio, seed=5)
        epochs = [list(ref) for _ in range(5)]
        assert epochs[0] != epochs[1]                      # the streams continue across epochs
        ours = ResumableMultiSourceSampler(data, batch, ratio, seed=5)
        assert [list(ours) for _ in range(5)] == epochs    # no set_epoch: continues as mmpose's
        for e in (4, 0, 2):                                # any order: a function of (seed, epoch)
            fresh = ResumableMultiSourceSampler(data, batch, ratio, seed=5)
            fresh.set_epoch(e)
            assert list(fresh) == epochs[e]
        assert len(ours) == len(epochs[0])                 # what one epoch yields
        for ep in epochs:
            for i in range(0, len(ep), batch):
                assert [int(j >= 7) for j in ep[i:i + batch]] == [0, 0, 0, 1]


def test_resumable_sampler_refuses_a_source_without_samples():
    """mmpose's sampler loops forever when a ratio rounds to 0 samples per batch."""
    from mmpose_mpt.datasets import ResumableMultiSourceSampler
    with pytest.raises(ValueError, match=r'source\(s\) \[1\] get 0 of the 4 samples'):
        ResumableMultiSourceSampler(_combined([7, 3]), 4, [10, 1], seed=0)
    with pytest.raises(ValueError, match='must be > 0'):
        ResumableMultiSourceSampler(_combined([7, 3]), 4, [1, 0], seed=0)


def test_j24_dataset_info_is_the_j24_set():
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    from mmpose_mpt.body_models.j24 import J24_FLIP_PERM, J24_NAMES
    meta = parse_pose_metainfo(dict(from_file=J24_INFO))
    assert [meta['keypoint_id2name'][i] for i in range(24)] == list(J24_NAMES)
    assert meta['flip_indices'] == J24_FLIP_PERM
    assert len(meta['sigmas']) == len(meta['dataset_keypoint_weights']) == 24
    assert all(0 <= a < 24 and 0 <= b < 24 for a, b in meta['skeleton_links'])


# ======================================================================== toy files, toy runs
@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """A shared 2-core machine: one OpenMP thread per process (as tests/test_pose_nets.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='module')
def toy(toy_data_root, tmp_path_factory):
    """Rendered toy images in METRO TSV (full ground truth, like Human3.6M) and as a SPIN npz with only
    2D joints (SPIN's coco_2014_train.npz / mpii_train.npz layout: imgname, center, scale, part), the
    tiny checkpoints the runs start from, and the toy body-model paths."""
    import mmpose_mpt  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmpose_mpt.datasets import make_toy_images
    init_default_scope('mmpose')
    images = osp.join(toy_data_root, 'ft_images')
    make_toy_images(images, osp.join(toy_data_root, 'body_models'), splits={'train': 12, 'test': 4},
                    formats=('tsv', 'spin'))
    full = dict(np.load(osp.join(images, 'spin', 'train.npz')))
    only_2d = osp.join(images, 'spin', 'train_2d_only.npz')
    with open(only_2d, 'wb') as f:
        np.savez(f, **{k: full[k] for k in ('imgname', 'center', 'scale', 'part')})
    bm = osp.join(toy_data_root, 'body_models')
    h36m = osp.join(bm, 'J_regressor_h36m_correct.npy')
    sampling = osp.join(bm, 'mesh_downsampling.npz')
    paths = dict(smpl=osp.join(bm, 'smpl'), h36m=h36m, sampling=sampling)
    ckpt_dir = str(tmp_path_factory.mktemp('ft_ckpts'))
    out = dict(images=images, tsv_train=osp.join(images, 'tsv', 'train.yaml'),
               tsv_test=osp.join(images, 'tsv', 'test.yaml'), spin_2d=only_2d, paths=paths,
               num_train=len(full['imgname']))
    out.update(_checkpoints(ckpt_dir, paths))
    return out


def _perturbed(module: torch.nn.Module, prefix: str, seed: int) -> dict:
    """``module``'s state with every float tensor moved off its initialisation (positive variances)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in module.state_dict().items():
        if v.is_floating_point():
            v = v + 0.05 * torch.randn(v.shape, generator=g)
            if k.endswith('running_var'):
                v = v.abs() + 0.5
        out[prefix + k] = v.clone()
    return out


def _model_overrides(paths: dict, pose_net: str = 'hrnet', head: dict = None) -> dict:
    """model = dict(...) of a toy run: toy body model, tiny head, tiny pose network."""
    model = dict(
        data_preprocessor=dict(body_model=dict(model_path=paths['smpl'], h36m_regressor=paths['h36m']),
                               mesh_sampler=paths['sampling']),
        head=dict(TINY_HEAD, upsampling_init=paths['sampling'], **(head or {})),
        joint_regressor=paths['h36m'])
    if pose_net == 'hrnet':
        model.update(backbone=dict(_delete_=True, type='HRNet', in_channels=3, extra=TINY_HRNET),
                     neck=dict(TINY_NECK, _delete_=True))
    elif pose_net == 'hrnet_features':   # no neck: the 16 channels of the tiny HRNet's 1/4 branch
        model.update(backbone=dict(_delete_=True, type='HRNet', in_channels=3, extra=TINY_HRNET))
        model['head'].update(in_channels=TINY_HRNET['stage4']['num_channels'][0])
    elif pose_net == 'resnet':
        model.update(backbone=dict(TINY_RESNET, _delete_=True),
                     neck=dict(TINY_HEATMAP_HEAD, _delete_=True))
    return model


def _build(config: str, model: dict):
    from mmengine.config import Config as C
    from mmpose.registry import MODELS
    c = C.fromfile(osp.join(CFG_DIR, config))
    c.merge_from_dict(dict(model=model))
    c.model.pop('pose_net_checkpoint', None)
    torch.manual_seed(0)
    return MODELS.build(c.model)


def _checkpoints(ckpt_dir: str, paths: dict) -> dict:
    """Tiny stand-ins of the released files the configs start from."""
    out = {}
    # the pre-trained MPT (pretrain_amass.py's model: MoCap preprocessor, no pose network), at 224 / 112
    for key, size in (('pretrained', (224, 224)), ('pretrained_112', (112, 112))):
        m = _model_overrides(paths, pose_net=None, head=dict(input_size=size))
        m['data_preprocessor']['heatmap_size'] = size
        model = _build('pretrain_amass.py', m)
        state = dict(model.state_dict())
        state.update(_perturbed(model.head, 'head.', 1))     # not the head's own initialisation
        out[key] = osp.join(ckpt_dir, f'{key}.pth')
        torch.save({'state_dict': state, 'meta': {'epoch': 10}}, out[key])
    # "released" COCO pose networks: mmpose 0.x layout (HigherHRNet), 1.x layout (SimpleBaseline)
    from mmpose.registry import MODELS
    torch.manual_seed(0)
    hrnet = MODELS.build(dict(type='HRNet', in_channels=3, extra=TINY_HRNET))
    neck = MODELS.build(TINY_NECK)
    out['pose_net'] = osp.join(ckpt_dir, 'pose_net_hrnet.pth')
    torch.save({'state_dict': {**_perturbed(hrnet, 'backbone.', 2),
                               **_perturbed(neck, 'keypoint_head.', 3)}, 'meta': {}}, out['pose_net'])
    resnet, hm_head = MODELS.build(TINY_RESNET), MODELS.build(TINY_HEATMAP_HEAD)
    out['pose_net_resnet'] = osp.join(ckpt_dir, 'pose_net_resnet.pth')
    torch.save({'state_dict': {**_perturbed(resnet, 'backbone.', 4), **_perturbed(hm_head, 'head.', 5)}},
               out['pose_net_resnet'])
    # a mixed-dataset fine-tuned model (finetune_3dpw.py starts from the whole of it)
    model = _build('finetune_mixed.py', _model_overrides(paths))
    out['finetuned'] = osp.join(ckpt_dir, 'finetune_mixed.pth')
    torch.save({'state_dict': _perturbed(model, '', 6), 'meta': {'epoch': 80}}, out['finetuned'])
    return out


PROBE = '''"""Test probe: the model as training starts, and every batch's samples and losses."""
import json
import os
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS

if os.environ.get('FINETUNE_PROBE_PLAIN_CONFIG_TEXT'):
    # mmengine formats the config text with yapf for the log, the dump and every checkpoint: ~2 s
    # each for these configs on this machine, most of a toy run; the unformatted text is as valid
    import mmengine.config.config as _config
    _config.FormatCode = lambda text, **kwargs: (text, False)


@HOOKS.register_module()
class FinetuneProbeHook(Hook):
    priority = 'LOWEST'

    def before_train(self, runner):   # after load_from / --resume
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                   osp.join(runner.work_dir, f'before_train_iter{runner.iter}.pth'))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        rec = dict(iter=runner.iter + 1, epoch=runner.epoch,
                   samples=[[s.metainfo['dataset_name'], s.metainfo['id']]
                            for s in data_batch['data_samples']],
                   losses={k: float(v.detach()) if torch.is_tensor(v) else float(v)
                           for k, v in outputs.items()})
        with open(osp.join(runner.work_dir, 'probe.jsonl'), 'a') as f:
            f.write(json.dumps(rec) + '\\n')
'''


def plain_config_text(monkeypatch) -> None:
    """The probe's FINETUNE_PROBE_PLAIN_CONFIG_TEXT, in this process, undone after the test."""
    import mmengine.config.config as config_module
    monkeypatch.setattr(config_module, 'FormatCode', lambda text, **kwargs: (text, False))


def _toy_value(value, toy: dict, kind: str):
    """The toy stand-in of a file a config names (None stays None)."""
    if value is None:
        return None
    table = {'load_from': [('pretrain_amass_112px/', 'pretrained_112'),
                           ('pretrain_amass/', 'pretrained'), ('finetune_mixed/', 'finetuned')],
             'pose_net': [('higher_hrnet48', 'pose_net'), ('td-hm_res101', 'pose_net_resnet')]}[kind]
    for pattern, key in table:
        if pattern in value:
            return toy[key]
    raise AssertionError(f'no toy stand-in for {kind} {value!r}')


@pytest.fixture(scope='module')
def probe_dir(tmp_path_factory):
    """A folder with the probe hook's module, importable here and by the runs (PYTHONPATH)."""
    d = str(tmp_path_factory.mktemp('probe'))
    with open(osp.join(d, 'finetune_probe.py'), 'w') as f:
        f.write(PROBE)
    sys.path.insert(0, d)
    yield d
    sys.path.remove(d)


def write_toy_config(name: str, toy: dict, out_dir: str, max_epochs: int = 1,
                     num_samples: tuple = (3, 1)) -> str:
    """A config inheriting configs/mpt/<name>.py that runs it on the toy images: toy body model, tiny
    head and pose network (of the config's kind), the config's checkpoints replaced by tiny stand-ins,
    mixed data = ``num_samples`` of the toy TSV (full ground truth) and of the 2D-only SPIN npz in
    ratio 3 : 1 (single-dataset configs: ``sum(num_samples)`` of the TSV), batches of 4."""
    c = cfg(name)
    pose_net = {'ResNet': 'resnet'}.get(c.model.backbone.type, 'hrnet')
    if c.model.get('neck') is None:
        pose_net = 'hrnet_features'
    model = _model_overrides(toy['paths'], pose_net)
    model['pose_net_checkpoint'] = _toy_value(c.model.get('pose_net_checkpoint'), toy, 'pose_net')
    loader = dict(batch_size=BATCH, num_workers=0, persistent_workers=False)
    tsv = dict(type='MeshImageDataset', ann_file=toy['tsv_train'], dataset_name='toy_tsv',
               max_samples=num_samples[0])
    if c.train_dataloader.dataset.type == 'CombinedDataset':
        spin = dict(type='MeshImageDataset', ann_file=toy['spin_2d'], dataset_name='toy_2d',
                    data_prefix=dict(img=toy['images']), max_samples=num_samples[1], pipeline=[])
        train = dict(loader, sampler=dict(batch_size=BATCH, source_ratio=[3, 1]),
                     dataset=dict(datasets=[dict(tsv, pipeline=[]), spin]))
    else:
        train = dict(loader, dataset=dict(tsv, max_samples=sum(num_samples)))
    val = dict(loader, dataset=dict(ann_file=toy['tsv_test']))
    hooks = [*[h.to_dict() for h in c.custom_hooks], dict(type='FinetuneProbeHook')]
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, f'toy_{name}.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = [{osp.join(CFG_DIR, name + ".py")!r}]\n'
                f'custom_imports = dict(imports=["mmpose_mpt", "finetune_probe"], '
                f'allow_failed_imports=False)\n'
                f'custom_hooks = {hooks!r}\n'
                f'model = {model!r}\n'
                f'load_from = {_toy_value(c.load_from, toy, "load_from")!r}\n'
                f'train_dataloader = {train!r}\n'
                f'val_dataloader = {val!r}\n'
                f'test_dataloader = val_dataloader\n'
                f'train_cfg = dict(max_epochs={max_epochs})\n'
                f'default_hooks = dict(logger=dict(interval=1))\n'
                f'randomness = dict(seed=0)\n')
    return path


def _env(probe_dir: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=probe_dir,
               FINETUNE_PROBE_PLAIN_CONFIG_TEXT='1')
    env.pop('CUDA_VISIBLE_DEVICES', None)
    return env


def train_cmd(config: str, work_dir: str, *args) -> list:
    return [sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir', work_dir, *args]


def probe(work_dir: str) -> list:
    path = osp.join(work_dir, 'probe.jsonl')
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith('\n')]


# ====================================================================== datasets on toy files
def test_sample_fraction_is_a_deterministic_evenly_spaced_subset(toy):
    from mmpose_mpt.datasets import MeshImageDataset
    n = toy['num_train']

    def ids(**kw):
        return MeshImageDataset(toy['tsv_train'], **kw).source_indices.tolist()

    assert ids(sample_fraction=0.25) == ids(sample_fraction=0.25) == \
        np.linspace(0, n - 1, round(0.25 * n)).round().astype(int).tolist()
    assert ids(sample_fraction=0.001) == [0]               # at least one sample
    assert ids(sample_fraction=1.0) == list(range(n))
    assert ids(sample_fraction=0.5, max_samples=2) == [0, 11]   # 6 evenly spaced, then 2 of them
    with pytest.raises(ValueError, match='sample_fraction'):
        MeshImageDataset(toy['tsv_train'], sample_fraction=0)


def test_2d_only_samples_train_the_projection_term_alone(toy, probe_dir, tmp_path):
    """MPII / COCO-style samples (SPIN npz with 2D joints only, through mmpose's CombinedDataset):
    L_V, L_J, L_J^reg are exactly 0 and L_J^proj is the same as for the same images with full ground
    truth; the gradients are finite and reach the pose network."""
    from mmengine.dataset import pseudo_collate
    from mmpose.registry import DATASETS, MODELS
    from mmpose_mpt.body_models.j24 import J24_FLIP_PERM
    c = Config.fromfile(write_toy_config('finetune_mixed', toy, str(tmp_path), num_samples=(4, 4)))
    torch.manual_seed(0)
    model = MODELS.build(c.model)
    model.train()
    data = DATASETS.build(c.train_dataloader.dataset)
    assert data.lens == [4, 4]

    def step(indices):
        np.random.seed(0)                                  # the same crops / augmentation
        batch = pseudo_collate([data[i] for i in indices])
        out = model.data_preprocessor(batch, training=True)
        torch.manual_seed(0)                               # the same MVM masks
        model.zero_grad()
        losses = model(out['inputs'], out['data_samples'], mode='loss', targets=out['targets'])
        sum(losses.values()).backward()
        return batch, out['targets'], losses

    batch, targets, losses = step([4, 5, 6, 7])            # the 2D-only source
    meta = [s.metainfo for s in batch['data_samples']]
    assert {m['dataset_name'] for m in meta} == {'toy_2d'}
    assert all(m['flip_indices'] == J24_FLIP_PERM for m in meta)    # CombinedDataset's J24 metainfo
    assert targets['joints_3d_visible'].sum() == 0 and targets['has_vertices'].sum() == 0
    assert targets['joints_2d_visible'].sum() > 0
    for key in ('loss_vertices', 'loss_joints', 'loss_joints_reg'):
        assert losses[key].item() == 0.0, key              # exact, not NaN
    proj_2d = losses['loss_joints_proj'].item()
    assert np.isfinite(proj_2d) and proj_2d > 0
    grads = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for k, g in grads.items() if k.startswith('backbone.'))

    batch, targets, losses = step([0, 1, 2, 3])            # the same images with 3D joints and SMPL
    assert {s.metainfo['dataset_name'] for s in batch['data_samples']} == {'toy_tsv'}
    assert all(losses[k].item() > 0 for k in losses)
    assert losses['loss_joints_proj'].item() == pytest.approx(proj_2d, rel=1e-5)


# ====================================================================== runs through tools/train.py
@pytest.fixture(scope='module')
def train_tool():
    sys.path.insert(0, TOOLS)
    import train
    yield train
    sys.path.remove(TOOLS)


def train_in_process(train_tool, *argv) -> None:
    """tools/train.py's main() with these arguments, in this process (saves a start-up per config)."""
    before = sys.argv
    sys.argv = ['train.py', *argv]
    try:
        train_tool.main()
    finally:
        sys.argv = before


def _load(path: str) -> dict:
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    return ckpt.get('state_dict', ckpt)


def check_initialisation(c: Config, model_state: dict, toy: dict) -> None:
    """The model as training starts is the config's checkpoints: the head (or, from a fine-tuned model,
    everything) from load_from, the pose network from pose_net_checkpoint (after init_weights)."""
    head = {k for k in model_state if k.startswith('head.')}
    if c.load_from is not None:
        ckpt = _load(c.load_from)
        if c.load_from == toy['finetuned']:
            assert set(ckpt) == set(model_state)
        else:
            assert {k for k in ckpt if k.startswith('head.')} == head
        for k, v in ckpt.items():
            assert torch.equal(model_state[k], v), k
    else:   # trained from the head's initialisation: not the pre-trained weights
        pre = _load(toy['pretrained'])
        same_shape = [k for k in head if k in pre and pre[k].shape == model_state[k].shape]
        assert same_shape and not any(torch.equal(model_state[k], pre[k]) for k in same_shape
                                      if k.endswith('weight') and 'upsampling' not in k)
    if c.model.get('pose_net_checkpoint'):
        released = _load(c.model.pose_net_checkpoint)
        names = {}
        for k in released:
            if k.startswith('backbone.'):
                names[k] = k
            elif c.model.get('neck') is not None:       # keypoint_head.* (0.x) / head.* (1.x) -> neck
                names[k] = 'neck.' + k.split('.', 1)[1]
        assert set(names.values()) == {k for k in model_state if k.startswith(('backbone.', 'neck.'))}
        for k, name in names.items():
            assert torch.equal(model_state[name], released[k]), name


# One run per kind of change (the suite stays under 10 minutes): the other configs differ from one of
# these only in keys test_variants_change_only_what_their_name_says checks exactly (load_from, freeze_backbone, the data fraction,
# the training sources), each of which one of these runs exercises.
RUN_CONFIGS = ['finetune_mixed', 'finetune_mixed_frozen-backbone', 'finetune_mixed_image-features',
               'finetune_mixed_simplebaseline', 'finetune_mixed_112px', 'finetune_h36m_no-pretrain',
               'finetune_h36m_1pct-data', 'finetune_3dpw']


def test_run_configs_cover_every_kind_of_change():
    assert set(RUN_CONFIGS) <= set(FINETUNE_CONFIGS)


@pytest.mark.slow     # ~5 s each
@pytest.mark.parametrize('name', RUN_CONFIGS)
def test_every_config_trains_on_toy_files(name, toy, probe_dir, train_tool, tmp_path, monkeypatch):
    """Each config, with a tiny head / pose network and the toy files in place of its data and
    checkpoints, trains an epoch through tools/train.py and validates; training starts from the
    config's checkpoints; a frozen pose network stays exactly as released."""
    plain_config_text(monkeypatch)
    config = write_toy_config(name, toy, str(tmp_path))
    work = str(tmp_path / 'work')
    train_in_process(train_tool, config, '--work-dir', work)
    records = probe(work)
    assert records and all(np.isfinite(v) for r in records for v in r['losses'].values())
    c = Config.fromfile(config)
    before = _load(osp.join(work, 'before_train_iter0.pth'))
    check_initialisation(c, before, toy)
    after = _load(osp.join(work, 'epoch_1.pth'))
    pose_net = [k for k in before if k.startswith(('backbone.', 'neck.'))]
    moved = [k for k in pose_net if not torch.equal(before[k], after[k])]
    if c.model.freeze_backbone:
        assert not moved                          # weights and BN statistics as loaded
    else:
        assert moved and any(not torch.equal(before[k], after[k])
                             for k in before if k.startswith('head.'))
    assert glob.glob(osp.join(work, 'best_pa_mpjpe_epoch_1.pth'))     # validated, best kept


@pytest.mark.slow
def test_kill_and_resume_of_a_mixed_run_continues_the_same_samples_and_losses(toy, probe_dir, tmp_path):
    """finetune_mixed.py on two sources (toy TSV with full ground truth, 2D-only SPIN npz; 8 samples
    each, ratio 3 : 1, batches of 4: 4 iterations per epoch, 2 epochs, validating every epoch) trained
    uninterrupted, and the same run killed (SIGKILL) in epoch 2 and resumed with --resume (with a seed
    of its own: the checkpoint's is adopted): epoch 2 has the same samples, in the same batches, and
    bit-identical losses."""
    config = write_toy_config('finetune_mixed', toy, str(tmp_path), max_epochs=2, num_samples=(8, 8))
    env = _env(probe_dir)
    full, killed = str(tmp_path / 'full'), str(tmp_path / 'killed')
    subprocess.run(train_cmd(config, full), cwd=REPO, env=env, check=True, capture_output=True,
                   timeout=600)
    ref = {r['iter']: r for r in probe(full)}
    assert sorted(ref) == list(range(1, 9))
    # every batch: 3 samples of the first source, then 1 of the second (MultiSourceSampler's layout);
    # each source drawn as seeded permutations that continue across the epochs: the TSV's 12 draws
    # per epoch make 3 permutations of its 8 samples in 2 epochs, the middle one across the epochs
    assert all([s[0] for s in r['samples']] == ['toy_tsv'] * 3 + ['toy_2d'] for r in ref.values())
    tsv = [s[1] for it in range(1, 9) for s in ref[it]['samples'][:3]]
    two_d = [ref[it]['samples'][3][1] for it in range(1, 9)]
    assert all(len(set(tsv[i:i + 8])) == 8 for i in (0, 8, 16))
    assert len(set(two_d)) == 8                                    # 2 x 4 draws = 1 permutation
    check_initialisation(Config.fromfile(config), _load(osp.join(full, 'before_train_iter0.pth')), toy)
    assert glob.glob(osp.join(full, 'best_pa_mpjpe_epoch_*.pth'))

    proc = subprocess.Popen(train_cmd(config, killed), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if osp.isfile(osp.join(killed, 'epoch_1.pth')) and max(
                (r['iter'] for r in probe(killed)), default=0) >= 6:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
    assert not osp.isfile(osp.join(killed, 'epoch_2.pth'))

    proc = subprocess.run(train_cmd(config, killed, '--resume', '--cfg-options', 'randomness.seed=None'),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'resumed' in log.lower() and 'metainfo from the resumed checkpoint is different' not in log
    got = {}
    for r in probe(killed):    # the killed run's iterations, then the resumed run's (later wins)
        got[r['iter']] = r
    assert sorted(got) == list(range(1, 9))
    for it in range(1, 9):
        assert got[it]['samples'] == ref[it]['samples'], it
        assert got[it]['losses'] == ref[it]['losses'], (it, got[it]['losses'], ref[it]['losses'])
    # everything restored: the resumed run starts from exactly epoch_1.pth's model
    start = _load(osp.join(killed, 'before_train_iter4.pth'))
    saved = _load(osp.join(killed, 'epoch_1.pth'))
    assert set(start) == set(saved) and all(torch.equal(start[k], saved[k]) for k in saved)


@pytest.mark.slow
def test_the_real_higherhrnet_w48_model_builds(toy):
    """finetune_mixed.py's model as configured (HigherHRNet-w48 + the paper-sized head), unfrozen; the
    pose maps of a crop reach the head's 224 x 224 input (a small crop here: w48 is slow on 2 cores)."""
    from mmpose.registry import MODELS
    c = cfg('finetune_mixed')
    p = toy['paths']
    c.merge_from_dict({'model.data_preprocessor.body_model.model_path': p['smpl'],
                       'model.data_preprocessor.body_model.h36m_regressor': p['h36m'],
                       'model.data_preprocessor.mesh_sampler': p['sampling'],
                       'model.head.upsampling_init': p['sampling'], 'model.joint_regressor': p['h36m'],
                       'model.pose_net_checkpoint': None})    # the released file is not here
    model = MODELS.build(c.model)
    count = lambda m: sum(t.numel() for t in m.parameters())   # noqa: E731
    assert count(model.backbone) == 63_594_912                 # HRNet-w48 (research note 1.4)
    assert count(model.neck) == 232_227                        # AEHigherResolutionHead (1.2)
    assert model.head.hidden_dims == [1024, 256, 64] and model.head.in_channels == 17
    model.train()
    assert all(t.requires_grad for t in model.parameters())
    assert model.backbone.training and model.neck.training     # BN statistics train too
    with torch.no_grad():
        maps = model.extract_feat(torch.rand(1, 3, 64, 64))
    assert maps.shape == (1, 17, 224, 224)


def test_auto_resume_keeps_load_from_until_there_is_a_checkpoint(tmp_path):
    """`tools/train.py CFG --resume` of a fine-tuning run: with no checkpoint in work_dir yet it starts
    from load_from (the pre-trained head), not from nothing; once there is one, it resumes from it."""
    import argparse
    import importlib.util
    spec = importlib.util.spec_from_file_location('mpt_train_tool', osp.join(REPO, 'tools', 'train.py'))
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    work = tmp_path / 'work'
    args = argparse.Namespace(launcher='none', work_dir=str(work), amp=False, amp_dtype=None,
                              resume='auto', auto_scale_lr=False, no_validate=False,
                              cfg_options={'load_from': 'pretrained.pth'}, config='x.py')
    cfg = train.merge_args(Config(dict(load_from=None, auto_scale_lr=dict(enable=False))), args)
    assert cfg.load_from == 'pretrained.pth' and cfg.resume is False
    work.mkdir()
    (work / 'epoch_1.pth').write_bytes(b'')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    cfg = train.merge_args(Config(dict(load_from=None, auto_scale_lr=dict(enable=False))), args)
    assert cfg.load_from is None and cfg.resume is True
