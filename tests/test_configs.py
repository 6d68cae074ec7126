"""Config inheritance: each ablation differs from the paper's config exactly where it should."""
from pathlib import Path

import pytest
from mmengine.config import Config

CFG_DIR = Path(__file__).resolve().parents[1] / 'configs' / 'mpt'


def flatten(obj, prefix=''):
    """Dotted-key view of a config (lists indexed), values compared with ==."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f'{prefix}{k}.'))
    elif isinstance(obj, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in obj):
        for i, v in enumerate(obj):
            out.update(flatten(v, f'{prefix}{i}.'))
    else:
        out[prefix[:-1]] = tuple(obj) if isinstance(obj, list) else obj
    return out


def diff(name):
    base = flatten(Config.fromfile(CFG_DIR / 'pretrain_amass.py').to_dict())
    cfg = flatten(Config.fromfile(CFG_DIR / f'{name}.py').to_dict())
    keys = set(base) | set(cfg)
    return {k: (base.get(k, '<absent>'), cfg.get(k, '<absent>')) for k in keys
            if base.get(k, '<absent>') != cfg.get(k, '<absent>')}


VIEW_KEYS = {'num_views', 'train_dataloader.dataset.num_views',
             'train_dataloader.dataset.pipeline.0.num_views'}


@pytest.mark.parametrize('name,views', [('pretrain_amass_8views', 8), ('pretrain_amass_2views', 2),
                                        ('pretrain_amass_1view', 1)])
def test_view_ablations(name, views):
    d = diff(name)
    assert set(d) == VIEW_KEYS
    assert all(new == views and old == 4 for old, new in d.values())


def test_wo_mhm_only_disables_mhm_in_training():
    d = diff('pretrain_amass_wo-mhm')
    assert d == {'train_dataloader.dataset.pipeline.1.enabled': ('<absent>', False)}


def test_2dcoords_switches_input_mode_of_preprocessor_and_head():
    d = diff('pretrain_amass_2dcoords')
    assert set(d) == {'input_mode', 'model.data_preprocessor.input_mode', 'model.head.input_mode'}
    assert all(v == ('heatmap', 'coords') for v in d.values())


def test_112px_changes_every_resolution_consistently():
    d = diff('pretrain_amass_112px')
    assert set(d) == {'heatmap_size', 'model.data_preprocessor.heatmap_size', 'model.head.input_size',
                      'train_dataloader.dataset.pipeline.0.input_size',
                      'val_dataloader.dataset.pipeline.0.input_size',
                      'test_dataloader.dataset.pipeline.0.input_size'}
    assert all(old == (224, 224) and new == (112, 112) for old, new in d.values())


def test_paper_settings():
    cfg = Config.fromfile(CFG_DIR / 'pretrain_amass.py')
    assert cfg.default_scope == 'mmpose' and cfg.custom_imports.imports == ['mmpose_mpt']
    assert cfg.optim_wrapper.optimizer == dict(type='Adam', lr=2e-4)
    assert cfg.train_cfg.max_epochs == 10
    warmup, decay = cfg.param_scheduler
    assert warmup.end == decay.begin == 1.0  # 10 % of 10 epochs
    assert decay.end_factor == 0.0 and decay.end == 10
    head = cfg.model.head
    assert (head.hidden_dims, head.num_layers, head.num_heads, head.patch_size) == \
        ((1024, 256, 64), 4, 4, 8)
    assert head.num_vertices == (431, 1723, 6890) and cfg.model.data_preprocessor.sigma == 3.0
    assert head.upsampling_init == cfg.model.data_preprocessor.mesh_sampler == cfg.mesh_sampling
    assert cfg.auto_scale_lr.base_batch_size == 16 * cfg.train_dataloader.batch_size


def test_every_config_parses():
    for path in sorted(CFG_DIR.glob('*.py')):
        Config.fromfile(path)


@pytest.mark.parametrize('name', ['test_wo_finetune_h36m', 'test_wo_finetune_3dpw'])
def test_wo_finetune_configs_keep_the_pretrained_head_and_add_a_frozen_pose_net(name):
    """Testing without fine-tuning (Sec. 3.2) = the pre-training model as it is + a frozen COCO pose
    network in front: no key of the head / loss / regressor may differ from pretrain_amass.py, or the
    pre-trained weights would not be the model that is scored."""
    d = diff(name)
    assert not [k for k in d if k.startswith(('model.head.', 'model.loss.', 'model.joint_regressor'))]
    cfg = Config.fromfile(CFG_DIR / f'{name}.py')
    m = cfg.model
    assert m.backbone.type == 'HRNet' and m.backbone.extra.stage4.num_channels == (48, 96, 192, 384)
    assert m.neck.type == 'AEHigherResolutionNeck' and m.neck.pose_maps == 'final'
    assert m.freeze_backbone is True and m.pose_net_checkpoint.endswith(
        'higher_hrnet48_coco_512x512-60fedcbc_20200712.pth')
    assert m.data_preprocessor.type == 'MeshImagePreprocessor'
    assert m.data_preprocessor.gendered_gt is False          # METRO's protocol by default
    assert cfg.load_partial == ['backbone.*', 'neck.*']
    assert cfg.test_dataloader.dataset.type == 'MeshImageDataset'
    assert [t['type'] for t in cfg.test_dataloader.dataset.pipeline] == \
        ['LoadMeshImage', 'MeshImageCrop', 'PackMeshInputs']
    assert cfg.test_dataloader.dataset.pipeline[1]['augment'] is False
