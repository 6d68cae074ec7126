"""Meshes of every person in images, folders, videos or a webcam (mmpose's demo/inferencer_demo.py usage).

    python tools/demo.py INPUTS [--model CONFIG_OR_ALIAS] [--weights CKPT] [--det-model CFG|whole_image]
        [--vis-out-dir DIR] [--pred-out-dir DIR] [--device cpu] [--fit-smpl] [--export obj|ply]
        [--backend pytorch|onnxruntime --onnx-file F] [--side-view] [--draw-bbox] [--bboxes X1 Y1 X2 Y2 ...]
    [--cfg-options ...]

    # the quickstart's fine-tuned toy model on a held-out toy image, with the person's box (its label)
    python tools/demo.py data/toy/images/images/test/000000.jpg --model mpt-toy --bboxes 60 41 167 148 \\
        --vis-out-dir vis_results --pred-out-dir predictions --fit-smpl --export obj --side-view

INPUTS: an image, a folder of images, a video file or ``webcam[:id]``. ``--vis-out-dir``: the image(s) /
video with the meshes rendered over them (+ side view). ``--pred-out-dir``: one JSON per image (boxes,
2D keypoints, 3D joints and vertices in the image's camera frame, cameras, SMPL parameters with
``--fit-smpl``; read back with ``mmpose_mpt.apis.load_result_json``) and with ``--export`` one OBJ / PLY
per person. Nothing is downloaded: the model, checkpoint and detector weights must be local files.
"""
import argparse
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmpose_mpt.utils.cli import CfgOptionsAction, check_cfg_options, check_device, run_tool  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='MPT human meshes from images / videos (MeshInferencer)')
    p.add_argument('inputs', help='image file, folder, video file or webcam[:id]')
    p.add_argument('--model', default='mpt-toy', help='config file or a model alias of configs/mpt/metafile.yml '
                                                      '(default: %(default)s)')
    p.add_argument('--weights', help='checkpoint (default: the alias\'s local path in the metafile)')
    p.add_argument('--det-model', help="mmdet config of the person detector, or 'whole_image' (default: "
                                       "mmpose's RTMDet-m person config, weights under checkpoints/)")
    p.add_argument('--det-weights', help='person detector checkpoint (local file)')
    p.add_argument('--det-cat-ids', type=int, nargs='+', default=[0], help='person class ids of the detector')
    p.add_argument('--bboxes', type=float, nargs='+', metavar='X1 Y1 X2 Y2',
                   help='person boxes of a single image input in pixels, 4 numbers per person: used instead of '
                        'the detector')
    p.add_argument('--bbox-thr', type=float, default=0.3, help='detection score threshold')
    p.add_argument('--nms-thr', type=float, default=0.3, help='IoU threshold of the box NMS')
    p.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    p.add_argument('--backend', choices=['pytorch', 'onnxruntime'], default='pytorch')
    p.add_argument('--onnx-file', help='ONNX file of tools/export_onnx.py (with --backend onnxruntime)')
    p.add_argument('--focal-length', type=float, nargs='+', help='camera focal length(s) in pixels (f or fx fy); '
                                                                 'default sqrt(W^2 + H^2)')
    p.add_argument('--vis-out-dir', default='', help='where the rendered images / video go')
    p.add_argument('--pred-out-dir', default='', help='where the JSON results (and meshes) go')
    p.add_argument('--fit-smpl', action='store_true', help='fit SMPL parameters to each predicted mesh')
    p.add_argument('--export', choices=['obj', 'ply'], help='also write one mesh file per person')
    p.add_argument('--no-vertices', action='store_true', help='leave the vertices out of the JSON files')
    p.add_argument('--side-view', action='store_true', help='add a side view next to each image')
    p.add_argument('--draw-bbox', action='store_true', help='draw the person boxes')
    p.add_argument('--alpha', type=float, default=1.0, help='mesh opacity over the image')
    p.add_argument('--render-backend', default='auto',
                   choices=['auto', 'pyrender-egl', 'pyrender-osmesa', 'painter'])
    p.add_argument('--show', action='store_true', help='display the results in a window')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                   help='override settings in the model config, key=value pairs')
    args = p.parse_args(argv)
    if args.export and not args.pred_out_dir:
        p.error('--export needs --pred-out-dir (where the mesh files go)')
    if args.backend == 'onnxruntime' and not args.onnx_file:
        p.error('--backend onnxruntime needs --onnx-file')
    if args.focal_length is not None and len(args.focal_length) not in (1, 2):
        p.error('--focal-length takes f or fx fy')
    if args.bboxes is not None and len(args.bboxes) % 4:
        p.error(f'--bboxes takes 4 numbers (x1 y1 x2 y2) per person, got {len(args.bboxes)}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    check_device(args.device)
    from mmengine.config import Config

    from mmpose_mpt.apis.inferencer import MeshInferencer, load_model_config
    model, weights = args.model, args.weights
    if args.cfg_options:
        if osp.isfile(model):
            cfg = Config.fromfile(model)
        else:
            cfg, meta_weights = load_model_config(model)
            weights = weights or meta_weights
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
        model = cfg
    # given boxes replace the detector: none is built (its weights need not be here)
    det_model = args.det_model or ('whole_image' if args.bboxes is not None else None)
    inferencer = MeshInferencer(model, weights, device=args.device, det_model=det_model,
                                det_weights=args.det_weights, det_cat_ids=args.det_cat_ids, backend=args.backend,
                                onnx_file=args.onnx_file, focal_length=args.focal_length,
                                render_backend=args.render_backend, show_progress=True)
    n_img = n_person = 0
    empty = []
    bboxes = None if args.bboxes is None else [np.asarray(args.bboxes, np.float32).reshape(-1, 4)]
    for result in inferencer(args.inputs, bboxes=bboxes, bbox_thr=args.bbox_thr, nms_thr=args.nms_thr,
                             show=args.show,
                             vis_out_dir=args.vis_out_dir, pred_out_dir=args.pred_out_dir,
                             fit_smpl=args.fit_smpl, export=args.export, save_vertices=not args.no_vertices,
                             side_view=args.side_view, draw_bbox=args.draw_bbox, alpha=args.alpha):
        n_img += 1
        persons = result['predictions'][0]
        n_person += len(persons)
        if not persons:
            empty.append(n_img - 1)
    t = inferencer.timings
    total = sum(t.values())
    print(f'{n_img} image(s), {n_person} person(s), {total:.2f} s ('
          + ', '.join(f'{k} {v:.2f}' for k, v in t.items() if v > 0) + ')')
    if empty:
        print(f'no person detected in {len(empty)} image(s) (empty results); try --bbox-thr lower or '
              '--det-model whole_image')
    if args.vis_out_dir:
        print(f'visualizations: {args.vis_out_dir}')
    if args.pred_out_dir:
        print(f'predictions: {args.pred_out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(run_tool(main, 'demo.py'))
