"""MeshInferencer end to end on rendered toy images: a real (random-weight) toy model saved as a checkpoint,
an oracle model that returns the toy images' ground truth (so the full-image geometry can be checked
against the known camera), inputs of every kind, exports written and re-read, bad inputs."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from test_inferencer_toy import inference_toy


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    """Toy body models + 4 rendered toy images (known cameras) + a checkpoint of the toy image model."""
    return inference_toy(tmp_path_factory)


@pytest.fixture(scope='module')
def inferencer(toy):
    from mmpose_mpt.apis import MeshInferencer
    return MeshInferencer(toy['cfg'], toy['ckpt'], device='cpu', det_model='whole_image',
                          render_backend='painter')


def label_box(ann, i: int, dx: float = 0.0) -> np.ndarray:
    """The x1 y1 x2 y2 box whose inferencer crop (1.2 x its side) is the label's crop (200 scale)."""
    half = 100.0 * float(ann.scale[i]) / 1.2
    c = ann.center[i].astype(np.float64) + [dx, 0]
    return np.array([c[0] - half, c[1] - half, c[0] + half, c[1] + half], np.float32)


def test_registered():
    import mmpose_mpt.apis.inferencer  # noqa: F401
    from mmpose.registry import INFERENCERS, VISUALIZERS
    from mmpose_mpt.apis import MeshInferencer
    assert INFERENCERS.get('MeshInferencer') is MeshInferencer
    assert INFERENCERS.get('mesh-estimation') is MeshInferencer
    assert VISUALIZERS.get('MeshVisualizer') is not None
    # mmengine's metaclass: disjoint kwarg sets
    sets = [MeshInferencer.preprocess_kwargs, MeshInferencer.forward_kwargs, MeshInferencer.visualize_kwargs,
            MeshInferencer.postprocess_kwargs]
    assert sum(map(len, sets)) == len(set().union(*sets))


def test_oracle_geometry_two_people(toy, inferencer, tmp_path, monkeypatch):
    """Two toy images side by side, their label boxes as bboxes=, and a model that answers with the
    ground truth (root-relative mesh + the weak-perspective camera that explains the crop): with the
    toy camera's focal length the inferencer puts both meshes where the renderer had them."""
    from mmpose_mpt.apis.full_image_camera import crop_box_of_bbox, fit_weak_perspective
    from mmpose_mpt.apis.mesh_export import load_ply, load_result_json
    from mmpose_mpt.body_models import SMPL
    ann, sc = toy['ann'], toy['scenes']
    ids = [0, 1]
    W, H = (int(v) for v in sc['image_size'])
    f = sc['cam_f'][ids].mean(0)
    # put image 1 to the right of image 0; give both the same principal point (a shifted camera
    # would not be one pinhole camera): shift image 1 so that its principal point matches image 0's
    shift = np.round(sc['cam_c'][ids[0]] - sc['cam_c'][ids[1]]).astype(int)
    img0 = cv2.imread(toy['images'][ids[0]])
    img1 = np.roll(cv2.imread(toy['images'][ids[1]]), tuple(shift[::-1]), axis=(0, 1))
    canvas = np.concatenate([img0, img1], 1)
    smpl = SMPL(osp.join(toy['root'], 'body_models', 'smpl'), gender='neutral',
                h36m_regressor=osp.join(toy['root'], 'body_models', 'J_regressor_h36m_correct.npy'))
    reg = smpl.get_regressor('h36m').double().numpy()
    gt_rel, boxes = [], []
    for k, i in enumerate(ids):
        with torch.no_grad():
            p = torch.as_tensor(ann.smpl_pose[i][None])
            v = smpl(betas=torch.as_tensor(ann.smpl_betas[i][None]), body_pose=p[:, 3:],
                     global_orient=p[:, :3])['vertices'][0].double().numpy() + sc['transl'][i]
        root = reg[0] @ v
        rel = v - root
        # where the renderer drew each vertex, in the composed image (person 1: moved by the roll and W)
        offset = np.zeros(2) if k == 0 else shift + [W, 0]
        px = v[:, :2] / v[:, 2:] * sc['cam_f'][i] + sc['cam_c'][i] + offset
        box = label_box(ann, i)
        box[[0, 2]] += offset[0]
        box[[1, 3]] += offset[1]
        boxes.append(box)
        c, side = crop_box_of_bbox(box[None])
        cam = fit_weak_perspective(rel[None], (2 * (px - c) / side)[None])[0]
        # one camera of focal f sees person k at the size the renderer's focal f_k gave it at depth z
        # when the person stands at z f / f_k
        gt_rel.append((rel.astype(np.float32), cam, px, root[2] * f.mean() / sc['cam_f'][i].mean()))
    calls = []

    def oracle(x):
        calls.append(x.shape[0])
        return dict(vertices=np.stack([g[0] for g in gt_rel]), camera=np.stack([g[1] for g in gt_rel]).astype(
            np.float32), keypoints_3d=np.stack([reg[:17] @ g[0] for g in gt_rel]).astype(np.float32))
    monkeypatch.setattr(inferencer, 'run_model', oracle)
    monkeypatch.setattr(inferencer, 'focal_length', tuple(f))
    monkeypatch.setattr(inferencer, 'principal_point', tuple(sc['cam_c'][ids[0]]))
    out = tmp_path / 'pred'
    res = next(inferencer(canvas, bboxes=[np.stack(boxes)], pred_out_dir=str(out), export='ply',
                          return_vis=True, side_view=True, draw_bbox=True))
    assert calls == [2]                                    # both persons in one forward
    persons = res['predictions'][0]
    assert len(persons) == 2
    for k, person in enumerate(persons):
        v = np.asarray(person['vertices'])
        rel, cam, px, depth = gt_rel[k]
        assert abs(person['transl'][2] - depth) / depth < 0.04, (person['transl'], depth)
        reproj = v[:, :2] / v[:, 2:] * f + sc['cam_c'][ids[0]]
        assert np.median(np.linalg.norm(reproj - px, axis=1)) < 0.02 * W
    # the farther person is farther in the output too
    assert (persons[0]['transl'][2] < persons[1]['transl'][2]) == (gt_rel[0][3] < gt_rel[1][3])
    # exports re-read
    doc = load_result_json(out / '000000.json')
    np.testing.assert_allclose(doc['vertices'], [p['vertices'] for p in persons], atol=1e-6)
    np.testing.assert_allclose(doc['boxes'], np.stack(boxes), atol=1e-4)
    assert doc['focal_length'] == pytest.approx(list(f))
    for k in range(2):
        v, faces = load_ply(out / f'000000_person{k}.ply')
        np.testing.assert_allclose(v, persons[k]['vertices'], atol=1e-6)
        np.testing.assert_array_equal(faces, inferencer.faces)
    vis = res['visualization'][0]
    assert vis.shape[0] == canvas.shape[0] and vis.shape[1] > canvas.shape[1]   # + side view
    # the meshes are drawn on the people: pixels inside both label boxes changed
    changed = np.abs(vis[:, :canvas.shape[1]].astype(int) - canvas[..., ::-1]).sum(-1) > 30
    for px_ in (gt_rel[0][2], gt_rel[1][2]):
        inside = px_[(px_[:, 0] >= 0) & (px_[:, 0] < canvas.shape[1]) & (px_[:, 1] >= 0) & (px_[:, 1] < H)]
        hit = changed[inside[:, 1].astype(int), inside[:, 0].astype(int)].mean()
        assert hit > 0.5, hit


def test_real_model_exports_and_fit(toy, inferencer, tmp_path):
    """The real toy model (random weights) on an image path with two boxes: one forward, JSON + OBJ
    written and re-read, SMPL parameters fitted, the visualisation saved."""
    from mmpose_mpt.apis.mesh_export import load_obj, load_result_json
    ann = toy['ann']
    inferencer.reset_timings()
    boxes = np.stack([label_box(ann, 0), label_box(ann, 0, dx=30)])
    res = next(inferencer(toy['images'][0], bboxes=[boxes], fit_smpl=True, export='obj',
                          pred_out_dir=str(tmp_path / 'p'), vis_out_dir=str(tmp_path / 'v')))
    assert inferencer.counts['pose_net'] == 1 and inferencer.counts['head'] == 1
    persons = res['predictions'][0]
    assert len(persons) == 2
    stem = osp.splitext(osp.basename(toy['images'][0]))[0]
    doc = load_result_json(tmp_path / 'p' / f'{stem}.json')
    assert doc['smpl']['body_pose'].shape == (2, 69) and doc['smpl']['betas'].shape == (2, 10)
    assert np.all(doc['smpl']['vertex_error'] < 0.05)
    np.testing.assert_allclose(doc['keypoints_3d'], [p['keypoints_3d'] for p in persons], atol=1e-6)
    np.testing.assert_allclose(doc['smpl']['transl'], [p['smpl']['transl'] for p in persons], atol=1e-6)
    assert doc['keypoints'].shape == (2, 17, 2)
    v, faces = load_obj(tmp_path / 'p' / f'{stem}_person1.obj')
    np.testing.assert_allclose(v, persons[1]['vertices'], atol=2e-6)
    assert (tmp_path / 'v' / osp.basename(toy['images'][0])).is_file()
    # the fitted SMPL in the camera frame reproduces the exported mesh up to its reported error
    from mmpose_mpt.body_models import SMPL
    smpl = SMPL(osp.join(toy['root'], 'body_models', 'smpl'), gender='neutral')
    s = doc['smpl']
    with torch.no_grad():
        fv = smpl(betas=torch.as_tensor(s['betas']).float(), body_pose=torch.as_tensor(s['body_pose']).float(),
                  global_orient=torch.as_tensor(s['global_orient']).float(),
                  transl=torch.as_tensor(s['transl']).float())['vertices'].numpy()
    err = np.linalg.norm(fv - doc['vertices'], axis=-1).mean(1)
    np.testing.assert_allclose(err, s['vertex_error'], rtol=0.05, atol=1e-4)


def test_input_kinds(toy, inferencer, tmp_path):
    img = cv2.imread(toy['images'][1])
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    deep = img.astype(np.uint16) * 257
    outs = [next(inferencer(x))['predictions'][0] for x in (img, gray, rgba, deep)]
    assert all(len(o) == 1 for o in outs)    # whole image = one person
    np.testing.assert_allclose(outs[0][0]['vertices'], outs[2][0]['vertices'], atol=1e-5)  # alpha dropped
    np.testing.assert_allclose(outs[0][0]['vertices'], outs[3][0]['vertices'], atol=1e-5)  # 16 bit
    # a folder with a non-image file: skipped with a warning; 16-bit PNG and grayscale files decoded
    folder = tmp_path / 'folder'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), deep)
    cv2.imwrite(str(folder / 'b.jpg'), gray)
    (folder / 'notes.txt').write_text('not an image')
    res = list(inferencer(str(folder), pred_out_dir=str(tmp_path / 'fp')))
    assert len(res) == 2 and sorted(os.listdir(tmp_path / 'fp')) == ['a.json', 'b.json']
    # a video file: one result per frame, per-frame JSON, the rendered video written
    video = str(tmp_path / 'clip.mp4')
    wr = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 10, (img.shape[1], img.shape[0]))
    for k in range(3):
        wr.write(np.roll(img, 5 * k, axis=1))
    wr.release()
    res = list(inferencer(video, pred_out_dir=str(tmp_path / 'vp'), vis_out_dir=str(tmp_path / 'vv')))
    assert len(res) == 3
    assert sorted(os.listdir(tmp_path / 'vp' / 'clip')) == ['000000.json', '000001.json', '000002.json']
    import mmcv
    assert len(mmcv.VideoReader(str(tmp_path / 'vv' / 'clip.mp4'))) == 3


def test_bad_inputs(toy, inferencer, tmp_path):
    from mmpose_mpt.apis.inferencer import MeshInferencerError
    from mmpose_mpt.utils.cli import MPTUserError
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(open(toy['images'][0], 'rb').read()[:3000])   # truncated JPEG
    junk = tmp_path / 'junk.png'
    junk.write_bytes(b'hello, not a png')
    bad_video = tmp_path / 'broken.mp4'
    bad_video.write_bytes(b'\x00' * 100)
    empty = tmp_path / 'empty_dir'
    empty.mkdir()
    (empty / 'readme.md').write_text('x')
    cases = [(str(corrupt), 'truncated JPEG'), (str(junk), 'not a decodable image'),
             (str(bad_video), 'cannot open the video'), (str(empty), 'has no images'),
             (str(tmp_path / 'missing.jpg'), 'no such file'), (np.zeros((4, 4, 2), np.uint8), 'expected an image'),
             (np.full((4, 4, 3), np.nan, np.float32), 'NaN')]
    for inp, msg in cases:
        with pytest.raises(MPTUserError, match=msg):
            next(inferencer(inp))
    # huge: refused from the header, before decoding
    inferencer.max_image_pixels, old = 1000, inferencer.max_image_pixels
    try:
        with pytest.raises(MeshInferencerError, match='megapixels'):
            next(inferencer(toy['images'][0]))
    finally:
        inferencer.max_image_pixels = old
    with pytest.raises(MeshInferencerError, match='bboxes must be'):
        next(inferencer(toy['images'][0], bboxes=[np.zeros((2, 3))]))
    with pytest.raises(MeshInferencerError, match='needs pred_out_dir'):
        next(inferencer(toy['images'][0], export='obj'))


def test_model_errors(toy, tmp_path):
    from mmpose_mpt.apis import MeshInferencer
    from mmpose_mpt.apis.inferencer import MeshModelNotFoundError
    from mmpose_mpt.engine.hooks.strict_checkpoint_hook import CheckpointMismatchError
    wrong = tmp_path / 'wrong.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(3, 3)}}, wrong)
    with pytest.raises(CheckpointMismatchError, match='does not fit the model'):
        MeshInferencer(toy['cfg'], str(wrong), device='cpu', det_model='whole_image')
    with pytest.raises(MeshModelNotFoundError, match='known: mpt_toy'):
        MeshInferencer('no-such-model', device='cpu', det_model='whole_image')
    # an alias whose checkpoint is not here: says where to put it (never downloads)
    with pytest.raises(MeshModelNotFoundError, match=r'put it at .*mpt_hrnet-w48_3dpw\.pth'):
        MeshInferencer('mpt-3dpw', device='cpu', det_model='whole_image')
    with pytest.raises(MeshModelNotFoundError, match='config file not found'):
        MeshInferencer('configs/nope.py', device='cpu')


def test_detector_no_person(toy, tmp_path):
    """mmdet's DetInferencer on mmpose's RTMDet person config (package data) with local (random)
    weights finds nobody on a toy image: an empty result with a note, its JSON re-read."""
    from mmengine.config import Config
    from mmengine.utils import get_installed_path
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import init_default_scope

    from mmpose_mpt.apis import MeshInferencer, load_result_json
    det_cfg = osp.join(get_installed_path('mmpose'), '.mim', 'demo', 'mmdetection_cfg',
                       'rtmdet_nano_320-8xb32_coco-person.py')
    init_default_scope('mmdet')
    det = DET_MODELS.build(Config.fromfile(det_cfg).model)
    state = det.state_dict()
    cls_bias = [k for k in state if 'rtm_cls' in k and k.endswith('bias')]
    assert cls_bias
    for k in cls_bias:   # every anchor's person score sigmoid(-20): nobody, whatever the random init
        state[k].fill_(-20.0)
    det_ckpt = tmp_path / 'det.pth'
    torch.save({'state_dict': state, 'meta': {}}, det_ckpt)
    inf = MeshInferencer(toy['cfg'], toy['ckpt'], device='cpu', det_model=det_cfg, det_weights=str(det_ckpt),
                         render_backend='painter')
    res = next(inf(toy['images'][0], pred_out_dir=str(tmp_path / 'p'), return_vis=True))
    assert res['predictions'][0] == []
    assert res['visualization'][0].shape[:2] == cv2.imread(toy['images'][0]).shape[:2]
    doc = load_result_json(tmp_path / 'p' / '000000.json')
    assert doc['vertices'].shape[0] == 0 and 'no person detected' in doc['note']


def test_metafile_cfg_options(tmp_path):
    """A metafile entry's Cfg Options are merged; their *.pth files must exist (never downloaded)."""
    import yaml

    from mmpose_mpt.apis.inferencer import MeshModelNotFoundError, load_model_config
    (tmp_path / 'configs').mkdir()
    (tmp_path / 'configs' / 'm.py').write_text("model = dict(type='MeshEstimator', pose_net_checkpoint=None)\n")
    (tmp_path / 'model-index.yml').write_text('Import:\n  - configs/metafile.yml\n')
    entry = dict(Name='m', Alias=['em'], Config='configs/m.py', Weights='w.pth',
                 **{'Cfg Options': {'model.pose_net_checkpoint': 'pose.pth'}})
    (tmp_path / 'configs' / 'metafile.yml').write_text(yaml.safe_dump(dict(Models=[entry])))
    with pytest.raises(MeshModelNotFoundError, match=r'pose\.pth is not on this machine'):
        load_model_config('em', str(tmp_path))
    (tmp_path / 'pose.pth').write_bytes(b'')
    cfg, weights = load_model_config('EM', str(tmp_path))
    assert cfg.model.pose_net_checkpoint == str(tmp_path / 'pose.pth')
    assert weights == str(tmp_path / 'w.pth')


def test_metafile_model_paths_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    """An alias's relative data paths (body models, mesh sampling) are the repository's, so the demo
    works from any directory; absolute paths, missing files and plain strings are left alone."""
    from mmpose_mpt.apis.inferencer import _anchor_paths
    repo = tmp_path / 'repo'
    (repo / 'data' / 'toy' / 'body_models' / 'smpl').mkdir(parents=True)
    (repo / 'data' / 'toy' / 'body_models' / 'mesh_downsampling.npz').write_bytes(b'x')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = dict(type='MeshEstimator', head=dict(upsampling_init='data/toy/body_models/mesh_downsampling.npz',
                                                 input_size=(56, 56)),
                 data_preprocessor=dict(body_model=dict(model_path='data/toy/body_models/smpl',
                                                        gender='neutral')),
                 joint_regressor='data/not_there.npy', other=['/abs/path.npz'])
    out = _anchor_paths(model, str(repo))
    assert out['head']['upsampling_init'] == str(repo / 'data/toy/body_models/mesh_downsampling.npz')
    assert out['data_preprocessor']['body_model']['model_path'] == str(repo / 'data/toy/body_models/smpl')
    assert out['joint_regressor'] == 'data/not_there.npy' and out['other'] == ['/abs/path.npz']
    assert out['type'] == 'MeshEstimator' and out['data_preprocessor']['body_model']['gender'] == 'neutral'
    assert out['head']['input_size'] == (56, 56)


def test_a_head_only_checkpoint_without_a_pose_network_is_refused(toy, tmp_path):
    """A pre-trained MPT (no backbone / neck) behind the config's random pose network would give
    meaningless meshes: one clear error, unless the config names the pose network's checkpoint."""
    from mmpose_mpt.apis import MeshInferencer
    from mmpose_mpt.apis.inferencer import MeshInferencerError
    ckpt = torch.load(toy['ckpt'], map_location='cpu', weights_only=True)
    state = {k: v for k, v in ckpt['state_dict'].items() if not k.startswith(('backbone.', 'neck.'))}
    head_only = tmp_path / 'head_only.pth'
    torch.save({'state_dict': state, 'meta': {}}, str(head_only))
    with pytest.raises(MeshInferencerError, match='no pose-network weights'):
        MeshInferencer(toy['cfg'], str(head_only), device='cpu', det_model='whole_image')
