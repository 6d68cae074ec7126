"""2D pose networks of the image path: the HigherHRNet neck port, released-checkpoint loading, freezing.

Checkpoints are generated here in exactly the released layouts (random values): mmpose 0.x
``{'state_dict': {backbone.*, keypoint_head.*}, 'meta': {...}}`` (HigherHRNet-w48) and mmpose 1.x
``{backbone.*, head.*}`` (SimpleBaseline R101). Expected names / shapes are written out from the 0.x
head's source (open-mmlab/mmpose@0.x mmpose/models/heads/ae_higher_resolution_head.py), not derived
from the port.
"""
import argparse
import os.path as osp
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

import mmpose_mpt  # noqa: F401
from mmpose_mpt.engine.hooks.strict_checkpoint_hook import CheckpointError, CheckpointMismatchError
from mmpose_mpt.models.estimators.pose_net_checkpoint import load_pose_net_checkpoint
from mmpose_mpt.models.heads.mpt_head import vertex_level_names
from mmpose_mpt.models.necks import AEHigherResolutionNeck

CFG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', 'mpt', '_base_',
                   'pose_nets')
W48_NECK = dict(in_channels=48, num_joints=17, tag_per_joint=True, extra=dict(final_conv_kernel=1),
                num_deconv_layers=1, num_deconv_filters=[48], num_deconv_kernels=[4],
                num_basic_blocks=4, cat_output=[True], with_ae_loss=[True, False])
# a tiny MPT head: 17 pose maps of 16 x 16, 4 patch tokens
HEAD = dict(type='MPTHead', in_channels=17, input_size=(16, 16), patch_size=8, num_joints=14,
            num_vertices=(6, 12, 24), hidden_dims=(16, 8), num_layers=1, num_heads=2, dropout=0.0)


def build(cfg):
    from mmpose.registry import MODELS
    init_default_scope('mmpose')
    return MODELS.build(cfg)


def pose_net_cfg(name):
    return Config.fromfile(osp.join(CFG_DIR, f'{name}.py')).pose_net.to_dict()


def estimator_cfg(pose_net, **kw):
    return dict(type='MeshEstimator', head=HEAD, loss=dict(type='MPTLoss'), pose_map_size=(16, 16),
                backbone=pose_net['backbone'], neck=pose_net['neck'], **kw)


def random_state(module, prefix, gen):
    """``module``'s state dict under ``prefix`` with random values (finite forward passes: conv
    weights ~ N(0, 1 / fan_in), BN variances > 0)."""
    out = OrderedDict()
    for k, v in module.state_dict().items():
        if not v.is_floating_point():
            out[prefix + k] = torch.randint(0, 1000, v.shape, generator=gen, dtype=v.dtype)
        elif k.endswith('running_var'):
            out[prefix + k] = 0.5 + torch.rand(v.shape, generator=gen)
        elif v.dim() > 1:
            out[prefix + k] = torch.randn(v.shape, generator=gen) / (v[0].numel() ** 0.5)
        else:
            out[prefix + k] = 0.1 * torch.randn(v.shape, generator=gen) + (1.0 if k.endswith('weight') else 0)
    return out


def assert_state_equal(module, state, prefix):
    own = module.state_dict()
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    assert set(own) == set(sub)
    bad = [k for k in own if not torch.equal(own[k], sub[k])]
    assert not bad, bad[:3]


def expected_0x_head_shapes():
    """The 0.x AEHigherResolutionHead's state dict for the w48 config, from its source."""
    e = OrderedDict()
    e['final_layers.0.weight'], e['final_layers.0.bias'] = (34, 48, 1, 1), (34, )   # 17 maps + 17 tags
    e['final_layers.1.weight'], e['final_layers.1.bias'] = (17, 48, 1, 1), (17, )
    e['deconv_layers.0.0.0.weight'] = (82, 48, 4, 4)            # ConvTranspose2d (in = 48 + 34, out)
    bn = lambda p: {f'{p}.weight': (48, ), f'{p}.bias': (48, ), f'{p}.running_mean': (48, ),  # noqa
                    f'{p}.running_var': (48, ), f'{p}.num_batches_tracked': ()}
    e.update(bn('deconv_layers.0.0.1'))
    for j in range(1, 5):
        e[f'deconv_layers.0.{j}.0.conv1.weight'] = (48, 48, 3, 3)
        e.update(bn(f'deconv_layers.0.{j}.0.bn1'))
        e[f'deconv_layers.0.{j}.0.conv2.weight'] = (48, 48, 3, 3)
        e.update(bn(f'deconv_layers.0.{j}.0.bn2'))
    return e


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """On a shared 2-core machine OpenMP threads wait for each other: a busy CPU makes HRNet-w48's
    many small convolutions 10-40x slower with 2 threads than with 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ HigherHRNet-w48 fixtures
@pytest.fixture(scope='module')
def w48_checkpoint(tmp_path_factory):
    """(path, state dict, key → shape) of a HigherHRNet-w48 checkpoint in the mmpose 0.x layout."""
    cfg = pose_net_cfg('higherhrnet_w48')
    container = nn.Module()
    container.backbone = build(cfg['backbone'])
    container.keypoint_head = build(cfg['neck'])
    shapes = OrderedDict((k, tuple(v.shape)) for k, v in container.state_dict().items())
    gen = torch.Generator().manual_seed(0)
    state = random_state(container.backbone, 'backbone.', gen)
    state.update(random_state(container.keypoint_head, 'keypoint_head.', gen))
    path = str(tmp_path_factory.mktemp('w48') / 'higher_hrnet48_coco_512x512-60fedcbc_20200712.pth')
    meta = {'epoch': 300, 'iter': 140700, 'mmcv_version': '1.0.2', 'time': 'Sun Jul 12 09:53:05 2020',
            'config': "model = dict(type='AssociativeEmbedding', ...)", 'CLASSES': None}
    torch.save({'state_dict': state, 'meta': meta}, path)
    params = (sum(p.numel() for p in container.backbone.parameters()),
              sum(p.numel() for p in container.keypoint_head.parameters()))
    return path, state, shapes, params


@pytest.fixture(scope='module')
def w48_estimator(w48_checkpoint):
    """MeshEstimator(HRNet-w48 + AEHigherResolutionNeck, frozen) loading the 0.x checkpoint."""
    path = w48_checkpoint[0]
    torch.manual_seed(0)
    return build(estimator_cfg(pose_net_cfg('higherhrnet_w48'), pose_net_checkpoint=path,
                               freeze_backbone=True))


def test_port_has_the_0x_state_dict_names_and_shapes(w48_checkpoint):
    _, _, shapes, (backbone_params, head_params) = w48_checkpoint
    assert len(shapes) == 1810
    backbone = [k for k in shapes if k.startswith('backbone.')]
    head = OrderedDict((k[len('keypoint_head.'):], v) for k, v in shapes.items()
                       if k.startswith('keypoint_head.'))
    assert len(backbone) == 1752 and len(head) == 58
    assert head == expected_0x_head_shapes()          # names, order and shapes
    assert shapes['backbone.conv1.weight'] == (64, 3, 3, 3)
    assert shapes['backbone.transition1.0.0.weight'] == (48, 256, 3, 3)
    assert shapes['backbone.transition1.1.0.0.weight'] == (96, 256, 3, 3)
    assert shapes['backbone.stage2.0.branches.0.0.conv1.weight'] == (48, 48, 3, 3)
    assert backbone[-1] == 'backbone.stage4.2.fuse_layers.0.3.1.num_batches_tracked'
    assert not any(k.startswith('backbone.stage4.2.fuse_layers.1.') for k in backbone)
    assert (backbone_params, head_params) == (63_594_912, 232_227)


def test_0x_checkpoint_loads_strictly_into_the_estimator(w48_checkpoint, w48_estimator):
    path, state, _, _ = w48_checkpoint
    est = w48_estimator
    assert_state_equal(est.backbone, state, 'backbone.')
    assert_state_equal(est.neck, state, 'keypoint_head.')
    # mmengine's runner calls init_weights before training: the released weights must survive it
    est.init_weights()
    assert_state_equal(est.backbone, state, 'backbone.')
    assert_state_equal(est.neck, state, 'keypoint_head.')
    assert load_pose_net_checkpoint(est.backbone, est.neck, path)['head_prefix'] == 'keypoint_head.'


def test_neck_output_shapes_for_224_and_256_crops(w48_estimator):
    est = w48_estimator.eval()
    with torch.no_grad():
        for size in (224, 256):
            feats = est.backbone(torch.rand(1, 3, size, size))
            assert isinstance(feats, tuple) and feats[0].shape == (1, 48, size // 4, size // 4)
            maps = est.neck(feats)
            assert maps.shape == (1, 17, size // 2, size // 2) and torch.isfinite(maps).all()
    # the estimator feeds them to the MPT head at its pose_map_size
    with torch.no_grad():
        assert est.extract_feat(torch.rand(2, 3, 64, 64)).shape == (2, 17, 16, 16)


def test_freeze_keeps_pose_net_weights_and_bn_stats(w48_estimator):
    est = w48_estimator
    pose_net = list(est.backbone.state_dict().items()) + list(est.neck.state_dict().items())
    before = [(k, v.clone()) for k, v in pose_net]
    head_before = {k: v.clone() for k, v in est.head.state_dict().items()}
    assert not any(p.requires_grad for m in (est.backbone, est.neck) for p in m.parameters())
    est.train()
    assert not est.backbone.training and not est.neck.training and est.head.training
    x = torch.rand(2, 3, 32, 32)    # small: HRNet-w48 is slow on a shared 2-core CPU
    gen = torch.Generator().manual_seed(1)
    targets = {name: torch.randn(2, v, 3, generator=gen)
               for name, v in zip(vertex_level_names(3), HEAD['num_vertices'])}
    targets['joints_3d'] = torch.randn(2, 14, 3, generator=gen)
    targets['joints_2d'] = torch.rand(2, 14, 2, generator=gen) * 2 - 1
    opt = torch.optim.Adam(est.parameters(), lr=1e-3)   # all parameters, as mmengine's builder does
    losses = est(x, mode='loss', targets=targets)
    sum(losses.values()).backward()
    opt.step()
    after = dict(list(est.backbone.state_dict().items()) + list(est.neck.state_dict().items()))
    changed = [k for k, v in before if not torch.equal(v, after[k])]
    assert not changed, changed[:3]
    head_after = est.head.state_dict()
    assert any(not torch.equal(head_before[k], head_after[k]) for k in head_before)  # it did train
    # control: without freezing, a training-mode forward moves the BN statistics
    est.freeze_backbone = False
    try:
        est.train()
        with torch.no_grad():
            est.extract_feat(x)
        now = dict(list(est.backbone.state_dict().items()) + list(est.neck.state_dict().items()))
        moved = [k for k, v in before if not torch.equal(v, now[k])]
        assert any(k.endswith('running_mean') for k in moved)
    finally:
        est.freeze_backbone = True
        est.train()


# ------------------------------------------------------------------ the neck alone
def test_neck_accepts_tensor_tuple_and_list():
    torch.manual_seed(0)
    neck = AEHigherResolutionNeck(**W48_NECK)
    neck.init_weights()
    neck.eval()
    x = torch.rand(2, 48, 14, 14)
    with torch.no_grad():
        ref = neck(x)
        assert ref.shape == (2, 17, 28, 28)
        assert torch.equal(neck((x, )), ref)
        assert torch.equal(neck([x]), ref)
        assert torch.equal(neck([x, torch.rand(2, 96, 7, 7)]), ref)   # first element = 1/4 branch


def test_pose_maps_average_is_the_mean_of_both_stages():
    torch.manual_seed(0)
    final = AEHigherResolutionNeck(**W48_NECK).eval()
    for p in final.parameters():           # O(1) outputs (the 0.x init gives ~1e-3 maps)
        nn.init.normal_(p, std=0.1)
    avg = AEHigherResolutionNeck(**W48_NECK, pose_maps='average').eval()
    avg.load_state_dict(final.state_dict())
    x = torch.rand(2, 48, 14, 14)
    with torch.no_grad():
        # the 0.x forward written out: stage 0 at 1/4, concat, deconv + 4 BasicBlocks, stage 1 at 1/2
        y0 = F.conv2d(x, final.final_layers[0].weight, final.final_layers[0].bias)
        h = final.deconv_layers[0](torch.cat([x, y0], 1))
        y1 = F.conv2d(h, final.final_layers[1].weight, final.final_layers[1].bias)
        expected = 0.5 * (y1 + F.interpolate(y0[:, :17], size=(28, 28), mode='bilinear',
                                             align_corners=False))
        assert torch.allclose(final(x), y1, atol=1e-6)
        out = avg(x)
    assert out.shape == (2, 17, 28, 28)
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, y1, atol=1e-3)
    with pytest.raises(ValueError, match='pose_maps'):
        AEHigherResolutionNeck(**W48_NECK, pose_maps='max')


def test_neck_init_is_the_0x_init():
    torch.manual_seed(0)
    neck = AEHigherResolutionNeck(**W48_NECK)
    neck.init_weights()
    for conv in neck.final_layers:
        assert conv.weight.std().item() == pytest.approx(0.001, rel=0.2) and not conv.bias.any()
    deconv, bn = neck.deconv_layers[0][0][0], neck.deconv_layers[0][0][1]
    assert deconv.weight.std().item() == pytest.approx(0.001, rel=0.1)
    assert torch.equal(bn.weight, torch.ones(48)) and not bn.bias.any()
    block = neck.deconv_layers[0][1][0]
    assert torch.equal(block.bn2.weight, torch.ones(48))
    assert block.conv1.weight.std().item() > 0.01          # PyTorch default, as in 0.x


# ------------------------------------------------------------------ SimpleBaseline R101 (1.x layout)
def test_1x_r101_checkpoint_loads_into_resnet101_and_heatmap_head(tmp_path):
    cfg = pose_net_cfg('simplebaseline_r101')
    backbone, neck = build(cfg['backbone']), build(cfg['neck'])
    gen = torch.Generator().manual_seed(0)
    state = random_state(backbone, 'backbone.', gen)
    state.update(random_state(neck, 'head.', gen))
    assert len(state) == 624 + 20 and state['head.deconv_layers.0.weight'].shape == (2048, 256, 4, 4)
    path = str(tmp_path / 'td-hm_res101_8xb64-210e_coco-256x192-065d3625_20220926.pth')
    torch.save({'meta': {'mmengine_version': '0.1.0', 'epoch': 210}, 'state_dict': state}, path)
    del backbone, neck
    est = build(estimator_cfg(cfg, pose_net_checkpoint=path))
    assert_state_equal(est.backbone, state, 'backbone.')
    assert_state_equal(est.neck, state, 'head.')
    # head.* went to the neck: the MPT head (MeshEstimator.head) has none of those names
    assert not set(est.head.state_dict()) & {k[len('head.'):] for k in state if k.startswith('head.')}
    est.eval()
    with torch.no_grad():
        assert est.neck(est.backbone(torch.rand(1, 3, 64, 64))).shape == (1, 17, 16, 16)  # 1/4


# ------------------------------------------------------------------ errors, on a tiny pose net
def tiny_pose_net():
    torch.manual_seed(0)
    backbone = build(dict(type='ResNet', depth=18, base_channels=4))
    neck = build(dict(type='HeatmapHead', in_channels=32, out_channels=17, deconv_out_channels=(8, ),
                      deconv_kernel_sizes=(4, )))
    return backbone, neck


@pytest.fixture
def tiny(tmp_path):
    backbone, neck = tiny_pose_net()
    state = random_state(backbone, 'backbone.', torch.Generator().manual_seed(0))
    state.update(random_state(neck, 'keypoint_head.', torch.Generator().manual_seed(1)))
    return backbone, neck, state, tmp_path


def save(tmp_path, name, obj):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


def test_layouts_module_prefix_and_bare_state_dict(tiny):
    backbone, neck, state, tmp = tiny
    bare = OrderedDict(('module.' + k, v) for k, v in state.items())     # DataParallel, no container
    info = load_pose_net_checkpoint(backbone, neck, save(tmp, 'bare.pth', bare))
    assert info['head_prefix'] == 'keypoint_head.' and info['num_neck_tensors'] == len(neck.state_dict())
    assert_state_equal(backbone, state, 'backbone.')
    assert_state_equal(neck, state, 'keypoint_head.')
    # backbone-only checkpoint for a network without a neck
    only = OrderedDict((k, v) for k, v in state.items() if k.startswith('backbone.'))
    assert load_pose_net_checkpoint(backbone, None, save(tmp, 'b.pth', only))['num_neck_tensors'] == 0
    both = dict(state, **{'head.final_layer.bias': torch.zeros(17)})
    with pytest.raises(CheckpointError, match='both keypoint_head'):
        load_pose_net_checkpoint(backbone, neck, save(tmp, 'both.pth', {'state_dict': both}))


@pytest.mark.parametrize('kind', ['missing', 'unexpected', 'shape'])
def test_mismatch_is_one_clear_error(tiny, kind):
    backbone, neck, state, tmp = tiny
    state = OrderedDict(state)
    if kind == 'missing':
        del state['keypoint_head.final_layer.weight']
        expect = r'1 of its \d+ tensors missing from the file, 0 unexpected, 0 with another shape.*' \
            r'missing e\.g\. keypoint_head\.final_layer\.weight'
    elif kind == 'unexpected':
        state['keypoint_head.final_layers.2.weight'] = torch.zeros(3)
        expect = r'0 of its \d+ tensors missing from the file, 1 unexpected.*' \
            r'unexpected e\.g\. keypoint_head\.final_layers\.2\.weight'
    else:
        state['backbone.conv1.weight'] = torch.zeros(64, 3, 5, 5)
        expect = r'1 with another shape.*backbone\.conv1\.weight: \(64, 3, 5, 5\) in the file vs ' \
            r'\(64, 3, 7, 7\) in the model'
    path = save(tmp, f'{kind}.pth', {'state_dict': state, 'meta': {'epoch': 1}})
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=expect) as err:
        load_pose_net_checkpoint(backbone, neck, path)
    msg = str(err.value)
    assert msg.startswith(path + ':') and '\n' not in msg
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in before.items())  # nothing loaded
    # through the estimator's config key: the same error at construction
    with pytest.raises(CheckpointMismatchError, match=expect):
        build(dict(type='MeshEstimator', head=HEAD, loss=dict(type='MPTLoss'),
                   backbone=dict(type='ResNet', depth=18, base_channels=4),
                   neck=dict(type='HeatmapHead', in_channels=32, out_channels=17,
                             deconv_out_channels=(8, ), deconv_kernel_sizes=(4, )),
                   pose_net_checkpoint=path))


class _Payload:
    """Pickles as a call of os.system: a file holding it must load without running it."""

    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        import os
        return os.system, (f'touch {self.flag}', )


@pytest.mark.parametrize('zipped', [True, False])
def test_checkpoint_meta_with_numpy_and_objects_loads_without_running_anything(tiny, zipped):
    """Released mmpose 1.x files keep mmengine's meta['dataset_meta'] (numpy arrays, which
    weights_only refuses): read through the restricted unpickler, the weights load; objects in the
    file are never called (an os.system payload stays inert)."""
    import numpy as np
    backbone, neck, state, tmp = tiny
    flag = tmp / f'ran_{zipped}'
    meta = {'dataset_meta': {'sigmas': np.linspace(0.025, 0.089, 17).astype(np.float32),
                             'keypoint_colors': np.zeros((17, 3), np.uint8),
                             'flip_indices': [0, 2, 1]},
            'hook_msgs': {'best_score': np.float64(0.728)}, 'args': argparse.Namespace(lr=1),
            'evil': _Payload(str(flag))}
    path = str(tmp / f'meta_{zipped}.pth')
    torch.save({'state_dict': state, 'meta': meta}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(Exception):      # what torch alone does with such a file
        torch.load(path, weights_only=True)
    info = load_pose_net_checkpoint(backbone, neck, path)
    assert not flag.exists()
    assert_state_equal(backbone, state, 'backbone.')
    assert_state_equal(neck, state, 'keypoint_head.')
    np.testing.assert_array_equal(info['meta']['dataset_meta']['sigmas'], meta['dataset_meta']['sigmas'])
    with pytest.raises(CheckpointError, match='local file'):
        load_pose_net_checkpoint(backbone, neck, 'https://download.openmmlab.com/x.pth')


def test_checkpoint_errors_name_the_file(tiny):
    backbone, neck, state, tmp = tiny
    path = save(tmp, 'ok.pth', {'state_dict': state})
    with pytest.raises(CheckpointError, match='not found'):
        load_pose_net_checkpoint(backbone, neck, str(tmp / 'nope.pth'))
    with pytest.raises(ValueError, match='needs a backbone'):
        build(dict(type='MeshEstimator', head=HEAD, loss=dict(type='MPTLoss'),
                   pose_net_checkpoint=path))
