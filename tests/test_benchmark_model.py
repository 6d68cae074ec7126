"""tools/benchmark_model.py: JSON / text output of a tiny run, reference vs engine shapes, FLOP counts."""
import importlib.util
import json
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_model_tool',
                                                  osp.join(REPO, 'tools', 'benchmark_model.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bm = _load_tool()
QUICK = ['--small', '--iters', '1', '--warmup', '0', '--device', 'cpu', '--batch-size', '2']


@pytest.fixture(scope='module')
def json_run():
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        returned = bm.main(QUICK + ['--json', '--dtype', 'fp32'])
    return json.loads(buf.getvalue()), returned


def test_json_fields_are_positive(json_run):
    out, returned = json_run
    assert out['ratio'] == pytest.approx(returned['ratio'])
    for key in ('ratio', 'samples_per_s', 'reference_samples_per_s', 'flops_per_sample',
                'train_flops_per_sample', 'flop_counter_flops_per_sample',
                'reference_flop_counter_flops_per_sample', 'achieved_flops_per_s',
                'reference_achieved_flops_per_s', 'step_s', 'reference_step_s', 'params',
                'reference_params'):
        assert isinstance(out[key], (int, float)) and out[key] > 0, key
    assert out['ratio'] == pytest.approx(out['samples_per_s'] / out['reference_samples_per_s'])
    assert out['train_flops_per_sample'] == 3 * out['flops_per_sample']
    # no peak is known for a CPU: MFU is reported as n/a (null)
    assert 'mfu' in out and out['mfu'] is None and out['reference_mfu'] is None
    assert out['config'] == 'small' and out['dtype'] == 'fp32' and out['batch_size'] == 2


def test_reference_and_engine_outputs_have_the_same_shapes(json_run):
    out, _ = json_run
    assert out['output_shapes'] == out['reference_output_shapes']
    cfg = bm.SMALL_CFG
    assert out['output_shapes']['vertices'] == [2, cfg['num_vertices'][-1], 3]
    assert out['output_shapes']['joints_3d'] == [2, cfg['num_joints'], 3]
    assert out['output_shapes']['camera'] == [2, 3]


def test_analytic_flops_agree_with_flop_counter(json_run):
    out, _ = json_run
    analytic = out['flops_per_sample']
    for key in ('flop_counter_flops_per_sample', 'reference_flop_counter_flops_per_sample'):
        assert abs(out[key] - analytic) <= 0.15 * analytic, (key, out[key], analytic)
    assert analytic == sum(out['flops_per_sample_parts'].values())


def test_reference_uses_explicit_attention_and_matches_engine():
    torch.manual_seed(0)
    cfg = bm.SMALL_CFG
    engine = bm.MPTHead(**cfg).eval()
    reference = bm.ReferenceMETROHead(**cfg).eval()
    x = torch.rand(3, cfg['in_channels'], *cfg['input_size'])
    calls = []
    orig = F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(1)
        return orig(*args, **kwargs)

    F.scaled_dot_product_attention = spy
    try:
        with torch.no_grad():
            ref_out = reference(x)
            assert not calls                      # the reference never calls fused SDPA
            eng_out = engine(x)
            assert calls                          # the engine does
    finally:
        F.scaled_dot_product_attention = orig
    assert {k: v.shape for k, v in ref_out.items()} == {k: v.shape for k, v in eng_out.items()}
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in reference.modules())
    layers = [m for m in reference.modules() if isinstance(m, bm.BertLayer)]
    assert len(layers) == len(cfg['hidden_dims']) * cfg['num_layers']
    # the reference counts the same FLOPs as the engine's analytic formula (no SDPA in the count)
    assert bm.count_forward_flops(reference, x[:1]) == engine.flops_per_sample()[0]
    assert bm.count_forward_flops(engine, x[:1]) == engine.flops_per_sample()[0]


def test_text_report_ends_with_ratio(capsys):
    bm.main(QUICK + ['--dtype', 'bf16'])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r'ratio: \d+\.\d\d', lines[-1]), lines[-1]
    assert any('FlopCounterMode' in line for line in lines)
    assert any(line.startswith('MPTHead (engine)') and 'bf16' in line for line in lines)


def test_peak_table():
    assert bm.peak_flops('NVIDIA H100 80GB HBM3', 'bf16') == 989e12
    assert bm.peak_flops('NVIDIA H100 80GB HBM3', 'fp32') == 67e12
    assert bm.peak_flops('NVIDIA H100 SXM5 80GB', 'tf32') == 494e12
    assert bm.peak_flops('NVIDIA H200', 'bf16') == 989e12
    assert bm.peak_flops('NVIDIA A100-SXM4-80GB', 'bf16') == 312e12
    assert bm.peak_flops('NVIDIA H100 PCIe', 'bf16') is None
    assert bm.peak_flops('NVIDIA GeForce RTX 4090', 'bf16') is None
    assert bm.peak_flops(None, 'bf16') is None
    assert bm.matmul_precision(torch.device('cpu'), 'fp32') == 'fp32'
    assert bm.matmul_precision(torch.device('cpu'), 'bf16') == 'bf16'


def test_pose_net_option_times_the_image_model(capsys):
    """--pose-net: pose network + MPT head forward, fp32 and bf16 in one run (tiny: R101 at 64 px)."""
    from mmengine.analysis import get_model_complexity_info
    before = torch.get_num_threads()
    torch.set_num_threads(1)   # small convolutions on a shared CPU: threads only wait for each other
    try:
        r = bm.main(['--pose-net', 'r101', '--small', '--image-size', '64', '--iters', '1',
                     '--warmup', '0', '--device', 'cpu', '--batch-size', '1'])
        lines = capsys.readouterr().out.strip().splitlines()
        assert re.fullmatch(r'ratio: \d+\.\d\d', lines[-1]), lines[-1]
        assert r['ratio'] == pytest.approx(r['bf16']['samples_per_s'] / r['fp32']['samples_per_s'])
        for dt in ('fp32', 'bf16'):
            assert r[dt]['samples_per_s'] > 0 and r[dt]['pose_net_step_s'] > 0
            assert any(line.startswith(dt) for line in lines)
        assert r['pose_map_shape'] == [17, 16, 16]                    # HeatmapHead: 1/4 resolution
        assert r['output_shapes']['vertices'] == [1, bm.SMALL_CFG['num_vertices'][-1], 3]
        assert r['pose_net_params'] == 42_500_160 + 10_491_665         # ResNet-101 + HeatmapHead
        # the pose network's FLOPs against an independent counter (mmengine counts multiply-adds)
        model = bm.build_image_model('r101', dict(bm.SMALL_CFG, in_channels=17)).eval()
        macs = get_model_complexity_info(bm._PoseNetOnly(model), inputs=(torch.rand(1, 3, 64, 64), ),
                                         show_table=False, show_arch=False)['flops']
        assert r['pose_net_flops_per_sample'] == pytest.approx(2 * macs, rel=0.02)
        assert r['head_flops_per_sample'] == pytest.approx(r['head_analytic_flops_per_sample'], rel=0.15)
    finally:
        torch.set_num_threads(before)


def test_benchmark_image_data_smoke(toy_data_root, capsys):
    """tools/benchmark_image_data.py: per-transform loader times and the model's step, side by side."""
    import os.path as osp
    import sys as _sys
    from conftest import TOOLS
    from mmpose_mpt.datasets import make_toy_images
    images = osp.join(toy_data_root, 'images_bench')
    make_toy_images(images, osp.join(toy_data_root, 'body_models'), splits={'test': 4},
                    formats=('tsv', ))
    _sys.path.insert(0, TOOLS)
    import benchmark_image_data
    r = benchmark_image_data.main(['--images', images, '--pose-net', 'tiny', '--small', '--samples',
                                   '4', '--batch-size', '2', '--iters', '1', '--workers', '2'])
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f'ratio: {r["ratio"]:.2f}'
    loader = r['loader_ms_per_sample']
    assert set(loader) == {'dataset', 'LoadMeshImage', 'MeshImageCrop', 'PackMeshInputs', 'total'}
    assert {'cv2', 'PIL'} <= set(r['decode_ms_per_image']) and min(r['decode_ms_per_image'].values()) > 0
    assert abs(loader['total'] - sum(v for k, v in loader.items() if k != 'total')) < 0.01
    assert r['loader_samples_per_s'] == pytest.approx(2 * 1000 / loader['total'], rel=0.01)
    assert r['ratio'] == pytest.approx(r['loader_samples_per_s'] / r['train_samples_per_s'], rel=0.02)
