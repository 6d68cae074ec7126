"""Render the toy mesh-image set (licence-free stand-in for Human3.6M / 3DPW / COCO images).

    python tools/make_toy_images.py OUT_DIR [--body-model-dir data/toy/body_models] [--train 200]
        [--test 100] [--smpl PATH] [--size 320 240] [--seed 1] [--formats tsv spin humandata coco]
        [--preview sheet.png]

Poses the toy SMPL-format body (or the real SMPL model given by --smpl) in held-out toy motion, renders
it with Human3.6M-like perspective cameras over procedural scenes and writes, under OUT_DIR:
images/<split>/NNNNNN.jpg, spin/<split>.npz, humandata/<split>.npz, tsv/<split>.yaml (+ its .tsv files,
the same JPEG bytes inside), coco/person_keypoints_<split>.json (2D labels for mmpose's
CocoDataset), scenes/<split>.npz (camera and placement of each image) and
toy_images.json (written last; an existing complete set with the same settings is reused). Image paths
in the annotations are relative to OUT_DIR. See mmpose_mpt/datasets/toy_images.py.
"""
import argparse
import os.path as osp
import sys
import time
from typing import List, Optional

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmpose_mpt.utils.cli import (MPTUserError, check_output_dir, check_output_file,  # noqa: E402
                                  non_negative_int, run_tool)


# = mmpose_mpt.datasets.toy_images.TOY_IMAGE_FORMATS (kept literal: --help must not import torch)
FORMATS = ('tsv', 'spin', 'humandata', 'coco')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                epilog=__doc__.split('\n\n', 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out_dir')
    p.add_argument('--body-model-dir', default='data/toy/body_models',
                   help='toy body models (tools/make_toy_body_model.py); default data/toy/body_models')
    p.add_argument('--train', type=non_negative_int, default=200, help='training images (0: no train split)')
    p.add_argument('--test', type=non_negative_int, default=100, help='test images (0: no test split)')
    p.add_argument('--smpl', default=None, help='a real SMPL model file or directory to render instead of the '
                   'toy body (its Human3.6M regressor next to it or in its parent directory)')
    p.add_argument('--size', type=int, nargs=2, default=(320, 240), metavar=('W', 'H'), help='image size')
    p.add_argument('--seed', type=int, default=1, help='random seed (the toy pre-training motion uses 0)')
    p.add_argument('--formats', nargs='+', default=list(FORMATS), choices=FORMATS)
    p.add_argument('--preview', default=None, metavar='PNG',
                   help='also save a contact sheet of 8 training (else test) images with their 2D labels')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)

    def run() -> int:
        import cv2

        from mmpose_mpt.datasets.toy_images import draw_contact_sheet, make_toy_images
        check_output_dir(args.out_dir)
        if args.preview:
            check_output_file(args.preview, 'preview image', ('.png', '.jpg'))
        splits = {k: n for k, n in (('train', args.train), ('test', args.test)) if n > 0}
        if not splits:
            raise MPTUserError('--train and --test are both 0: nothing to make')
        t0 = time.time()
        res = make_toy_images(args.out_dir, args.body_model_dir, splits=splits, image_size=tuple(args.size),
                              seed=args.seed, formats=args.formats, smpl_path=args.smpl)
        what = 'kept the existing' if res['reused'] else 'wrote the'
        print(f'{what} toy image set in {args.out_dir} ({time.time() - t0:.1f}s):')
        for split, files in res['splits'].items():
            print(f'  {split}: {splits[split]} images in {files["images"]}')
            for key in ('spin', 'humandata', 'tsv', 'coco', 'scenes'):
                if key in files:
                    print(f'    {key:10s} {files[key]}')
        print(f'  manifest   {res["manifest"]}')
        if args.preview:
            sheet = draw_contact_sheet(args.out_dir, 'train' if 'train' in splits else 'test')
            if not cv2.imwrite(args.preview, sheet):
                raise MPTUserError(f'{args.preview}: could not write the preview image')
            print(f'  preview    {args.preview}')
        return 0

    return run_tool(run, prog='make_toy_images.py')


if __name__ == '__main__':
    sys.exit(main())
