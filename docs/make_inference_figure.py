"""README figure: the quickstart's fine-tuned toy model (``mpt-toy``) through MeshInferencer on held-out
toy images, two per canvas with their label boxes, side view included.

    python docs/make_inference_figure.py docs/inference_toy.png   # after make quickstart
"""
import os.path as osp
import sys

import cv2
import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmpose_mpt.apis import MeshInferencer  # noqa: E402


def main(out_file: str) -> None:
    root = osp.join(REPO, 'data', 'toy', 'images')
    spin = np.load(osp.join(root, 'spin', 'test.npz'))
    inferencer = MeshInferencer('mpt-toy', device='cpu', det_model='whole_image')
    rows = []
    for pair in ((0, 5), (10, 20)):
        imgs = [cv2.imread(osp.join(root, str(spin['imgname'][i]))) for i in pair]
        boxes = []
        for k, i in enumerate(pair):   # the label box, shifted onto its half of the canvas
            half = 100.0 * float(spin['scale'][i]) / 1.2
            c = spin['center'][i] + [k * imgs[0].shape[1], 0]
            boxes.append([c[0] - half, c[1] - half, c[0] + half, c[1] + half])
        res = next(inferencer(np.concatenate(imgs, axis=1), bboxes=[np.array(boxes, np.float32)],
                              return_vis=True, side_view=True))
        rows.append(res['visualization'][0][..., ::-1])
    cv2.imwrite(out_file, np.concatenate(rows, axis=0))
    print('wrote', out_file)


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'docs/inference_toy.png')
