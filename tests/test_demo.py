"""tools/demo.py and tools/benchmark_inference.py on rendered toy images with a toy checkpoint made here."""
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools'))


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    from test_inferencer_toy import inference_toy
    t = inference_toy(tmp_path_factory)
    return dict(t, cfg=t['cfg_file'], images=t['images_dir'])


def test_demo_folder_with_exports(toy, tmp_path, capsys):
    import demo

    from mmpose_mpt.apis import load_obj, load_result_json
    folder = tmp_path / 'in'
    folder.mkdir()
    for name in sorted(os.listdir(toy['images'])):
        os.symlink(osp.join(toy['images'], name), folder / name)
    (folder / 'list.txt').write_text('not an image')
    rc = demo.main([str(folder), '--model', toy['cfg'], '--weights', toy['ckpt'], '--det-model', 'whole_image',
                    '--vis-out-dir', str(tmp_path / 'vis'), '--pred-out-dir', str(tmp_path / 'pred'),
                    '--fit-smpl', '--export', 'obj', '--side-view', '--render-backend', 'painter'])
    assert rc == 0
    out = capsys.readouterr()
    assert '4 image(s), 4 person(s)' in out.out
    assert 'MeshInferencer' in out.err    # the progress bar
    assert sorted(os.listdir(tmp_path / 'vis')) == ['000000.jpg', '000001.jpg', '000002.jpg', '000003.jpg']
    vis = cv2.imread(str(tmp_path / 'vis' / '000000.jpg'))
    assert vis.shape[1] > cv2.imread(osp.join(toy['images'], '000000.jpg')).shape[1]   # side view
    doc = load_result_json(tmp_path / 'pred' / '000001.json')
    assert doc['vertices'].shape == (1, 6890, 3) and doc['smpl']['betas'].shape == (1, 10)
    v, _ = load_obj(tmp_path / 'pred' / '000001_person0.obj')
    np.testing.assert_allclose(v, doc['vertices'][0], atol=2e-6)
    with open(tmp_path / 'pred' / '000001.json') as fh:
        assert json.load(fh)['format'] == 'mmpose-mpt-result'


def test_demo_errors_are_one_line(toy, tmp_path, capsys):
    import demo

    from mmpose_mpt.utils.cli import run_tool
    cases = [([str(tmp_path / 'nope.jpg'), '--model', toy['cfg'], '--det-model', 'whole_image'], 'no such file'),
             ([osp.join(toy['images'], '000000.jpg'), '--model', 'mpt-3dpw'], 'put it at'),
             ([osp.join(toy['images'], '000000.jpg'), '--model', toy['cfg'], '--weights', str(tmp_path / 'x.pth')],
              'checkpoint not found')]
    for argv, msg in cases:
        assert run_tool(lambda: demo.main(argv), 'demo.py') == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith('demo.py: error: ') and msg in err, err
    with pytest.raises(SystemExit):
        demo.main(['x.jpg', '--export', 'obj'])
    assert '--export needs --pred-out-dir' in capsys.readouterr().err


def test_demo_with_given_boxes_needs_no_detector(toy, tmp_path, capsys):
    """--bboxes: the person boxes of one image replace the detector (none built, no weights needed)."""
    import demo

    from mmpose_mpt.apis import load_result_json
    image = osp.join(toy['images'], '000000.jpg')
    boxes = [[10, 20, 110, 140], [150, 30, 260, 200]]
    rc = demo.main([image, '--model', toy['cfg'], '--weights', toy['ckpt'], '--bboxes',
                    *[str(v) for b in boxes for v in b], '--pred-out-dir', str(tmp_path / 'pred')])
    assert rc == 0 and '1 image(s), 2 person(s)' in capsys.readouterr().out
    doc = load_result_json(tmp_path / 'pred' / '000000.json')
    np.testing.assert_allclose(doc['boxes'][:, :4], boxes)
    with pytest.raises(SystemExit):
        demo.main([image, '--bboxes', '1', '2', '3'])
    assert '--bboxes takes 4 numbers (x1 y1 x2 y2) per person, got 3' in capsys.readouterr().err


def test_benchmark_prints_every_stage(toy, capsys):
    import benchmark_inference
    rc = benchmark_inference.main(['--model', toy['cfg'], '--weights', toy['ckpt'], '--images', toy['images'],
                                   '--num-images', '2', '--warmup', '1', '--det-model', 'none', '--fit-smpl',
                                   '--render-backend', 'painter'])
    assert rc == 0
    out = capsys.readouterr().out
    for stage in ('decode', 'detect', 'crop', 'pose_net', 'head', 'camera', 'fit', 'render', 'export',
                  'images/s'):
        assert f'\n{stage}' in out, stage
    row = [line for line in out.splitlines() if line.startswith('pose_net')][0]
    assert float(row.split()[1]) > 0
