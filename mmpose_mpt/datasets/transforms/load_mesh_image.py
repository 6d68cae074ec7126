"""LoadMeshImage: decode a mesh dataset's image (TSV bytes or a file) into a 3-channel BGR uint8 array."""
from typing import Dict, Optional, Union

import cv2
import numpy as np
from mmpose.registry import TRANSFORMS

from ...utils.cli import MPTUserError
from .batched_transform import BatchedTransform

ImageBytes = Union[bytes, bytearray, memoryview, np.ndarray]

_JPEG_SOI = b'\xff\xd8\xff'
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_IEND = b'IEND\xaeB`\x82'        # the IEND chunk type and its (fixed) CRC


class MeshImageError(MPTUserError, ValueError):
    """A mesh sample's image cannot be used (missing, unreadable, corrupt, truncated, or its box is
    unusable); the message names the image and the sample index."""


def describe_sample(results: Dict) -> str:
    """``'<img_path> (sample <idx>)'``: how errors name a sample."""
    return f"{results.get('img_path', '<no img_path>')} (sample {results.get('sample_idx', '?')})"


def truncation_problem(data: bytes) -> Optional[str]:
    """Why encoded image bytes are incomplete, or None.

    OpenCV decodes a truncated JPEG partially (the missing rows come out grey) without an error, so
    a JPEG must have its end-of-image marker (0xFFD9) after the start of its last scan (0xFFDA; entropy-
    coded data cannot contain 0xFFD9, and an EXIF thumbnail's own markers come before the main image's
    scans). Bytes after the end marker (some cameras pad files) are allowed. A PNG must have its IEND
    chunk. Other formats are left to the decoder.
    """
    if data.startswith(_JPEG_SOI):
        last_scan = data.rfind(b'\xff\xda')
        if last_scan < 0:
            return 'a JPEG without image data (no start-of-scan marker)'
        if data.find(b'\xff\xd9', last_scan + 2) < 0:
            return 'a truncated JPEG (no end-of-image marker 0xFFD9 after the last scan)'
    elif data.startswith(_PNG_SIGNATURE) and data.rfind(_PNG_IEND) < 0:
        return 'a truncated PNG (no IEND chunk)'
    return None


def decode_image(data: ImageBytes, where: str = '<bytes>') -> np.ndarray:
    """Decode encoded image bytes into a (H, W, 3) uint8 BGR array.

    Grayscale, gray+alpha, palette, RGBA (alpha dropped) and 16-bit files (high byte kept) are converted
    by OpenCV's ``IMREAD_COLOR``: the flag SPIN's ``cv2.imread`` and METRO's ``img_from_base64`` use
    (it also applies an EXIF orientation, as they do).

    Raises:
        MeshImageError: empty, truncated or undecodable data (the message starts with ``where``).
    """
    buf = data if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    if buf.size == 0:
        raise MeshImageError(f'{where}: empty image data')
    problem = truncation_problem(buf.tobytes() if isinstance(data, np.ndarray) else bytes(data))
    if problem is not None:
        raise MeshImageError(f'{where}: {problem} ({buf.size} bytes); re-extract or re-download the image')
    img = cv2.imdecode(buf.reshape(-1).view(np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise MeshImageError(f'{where}: not a decodable image (corrupt or unsupported format, '
                             f'{buf.size} bytes)')
    return img


@TRANSFORMS.register_module()
class LoadMeshImage(BatchedTransform):
    """Load the image of a mesh sample (:class:`MeshImageDataset` output).

    Reads ``img_bytes`` (METRO TSV: the base64-decoded JPEG) when present, else the file ``img_path``
    (through ``mmengine.fileio`` with ``backend_args``, so remote backends work as in mmpose's
    ``LoadImage``).

    Adds ``img`` (H, W, 3) uint8 BGR, ``img_shape`` and ``ori_shape`` (H, W).

    Args:
        backend_args: mmengine file backend arguments (None: local files).
        drop_bytes: remove ``img_bytes`` from the results once decoded (they are not needed later
            and would otherwise travel through the rest of the pipeline).

    Raises:
        MeshImageError: missing / unreadable file, empty, corrupt or truncated data; the message names
            the image (``img_path``) and the sample index.
    """

    def __init__(self, backend_args: Optional[dict] = None, drop_bytes: bool = True):
        self.backend_args = None if backend_args is None else dict(backend_args)
        self.drop_bytes = bool(drop_bytes)

    def _read(self, results: Dict) -> ImageBytes:
        where = describe_sample(results)
        data = results.get('img_bytes')
        if data is not None:
            return data
        path = results.get('img_path')
        if path is None:
            raise MeshImageError(f'{where}: the sample has neither img_bytes nor img_path')
        from mmengine import fileio
        try:
            return fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError:
            raise MeshImageError(f'{where}: image file not found (check data_root / data_prefix.img)'
                                 ) from None
        except (OSError, ValueError) as e:
            raise MeshImageError(f'{where}: cannot read the image file ({type(e).__name__}: {e})'
                                 ) from None

    def load(self, results: Dict) -> Dict:
        """Decode one sample's image into ``results`` (see the class docstring)."""
        data = self._read(results)
        img = decode_image(data, describe_sample(results))
        if self.drop_bytes:
            results.pop('img_bytes', None)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def transform_batch(self, batch, draws):
        return [self.load(r) for r in batch]

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(backend_args={self.backend_args}, drop_bytes={self.drop_bytes})'
