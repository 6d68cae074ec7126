"""Masked Heatmap Modeling (MHM, Sec. 3.1.2): joint masking, joint jitter and heatmap noise."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmpose.registry import TRANSFORMS

from .batched_transform import BatchedTransform, NotBatchable


class _GlobalRandom:
    """numpy's global random state (``np.random.*``) under the ``Generator`` method names used here.

    Drawing from it directly avoids building a ``Generator`` per sample (~25 µs of seeding each).
    """
    random = staticmethod(np.random.random)
    normal = staticmethod(np.random.normal)
    uniform = staticmethod(np.random.uniform)
    permutation = staticmethod(np.random.permutation)

    @staticmethod
    def integers(low: int, high: int) -> int:
        return np.random.randint(low, high)


@TRANSFORMS.register_module()
class MaskedHeatmapModeling(BatchedTransform):
    """Corrupt the keypoints the heatmaps are rendered from, as a 2D pose network's output would be.

    Works on the 17 keypoints (cheap, per sample or vectorised over a batch, see
    :class:`BatchedTransform`); the heatmaps themselves and their Gaussian noise are
    made on the device by :class:`MoCapHeatmapPreprocessor` from what this transform writes.

    Args:
        mask_prob: probability that each joint is masked (its heatmap is all zeros).
        num_masked: alternatively, (min, max) number of joints masked, drawn uniformly per sample;
            overrides ``mask_prob`` when given.
        jitter_std: std of the Gaussian jitter of the joint coordinates, in heatmap pixels.
        noise_std: (max) std of the Gaussian noise added to the heatmaps; per sample the std is drawn
            uniformly from [0, noise_std] so clean and noisy maps are both seen.
        enabled: False = the "w/o MHM" ablation: heatmap keypoints = clean keypoints, nothing masked,
            no noise.
        seed: None draws from numpy's global generator (mmengine seeds it per worker); an int makes
            the corruption of each sample a fixed function of (seed, sample_idx).

    Required keys: ``keypoints`` (1, K, 2), ``keypoints_visible`` (1, K).
    Added keys: ``heatmap_keypoints`` (1, K, 2), ``heatmap_keypoints_visible`` (1, K) (visible and not
    masked), ``mhm_mask`` (1, K) bool, ``heatmap_noise_std`` float.
    """

    def __init__(self, mask_prob: float = 0.15, num_masked: Optional[Sequence[int]] = None,
                 jitter_std: float = 2.0, noise_std: float = 0.1, enabled: bool = True,
                 seed: Optional[int] = None):
        if not 0.0 <= mask_prob <= 1.0:
            raise ValueError(f'mask_prob must be in [0, 1], got {mask_prob}')
        if num_masked is not None and not (0 <= num_masked[0] <= num_masked[1]):
            raise ValueError(f'num_masked must be (min, max) with 0 <= min <= max, got {num_masked}')
        if jitter_std < 0 or noise_std < 0:
            raise ValueError('jitter_std and noise_std must be >= 0')
        self.mask_prob = mask_prob
        self.num_masked = None if num_masked is None else tuple(int(v) for v in num_masked)
        self.jitter_std = jitter_std
        self.noise_std = noise_std
        self.enabled = enabled
        self.seed = seed

    def _rng(self, results: Dict):
        if self.seed is None:  # the global state, which mmengine seeds per worker
            return _GlobalRandom
        return np.random.default_rng([self.seed, int(results.get('sample_idx', 0))])

    @staticmethod
    def _keypoints_shape(results: Dict) -> Tuple[int, ...]:
        # (N, K, 2) of the keypoints; before the camera transform has run (a batch's draws are made
        # first) the (K, 3) joints it will project give it: (1, K, 2)
        if 'keypoints' in results:
            return np.shape(results['keypoints'])
        return (1, len(results['keypoints_3d']), 2)

    def draw(self, results: Dict) -> Optional[Tuple[np.ndarray, Optional[np.ndarray], float]]:
        """(mask (1, K) bool, jitter (N, K, 2) float32 or None, heatmap noise std), or None when
        disabled."""
        if not self.enabled:
            return None
        shape = self._keypoints_shape(results)
        k = shape[1]
        rng = self._rng(results)
        if self.num_masked is not None:
            n = min(k, int(rng.integers(self.num_masked[0], self.num_masked[1] + 1)))
            mask = np.zeros((1, k), bool)
            mask[0, rng.permutation(k)[:n]] = True
        else:
            mask = rng.random((1, k)) < self.mask_prob
        jitter = (rng.normal(0.0, self.jitter_std, shape).astype(np.float32)
                  if self.jitter_std > 0 else None)
        noise = float(rng.uniform(0.0, self.noise_std)) if self.noise_std > 0 else 0.0
        return mask, jitter, noise

    def transform(self, results: Dict) -> Dict:
        # one sample: transform_batch's arithmetic without the stacking
        drawn = self.draw(results)
        kp = np.asarray(results['keypoints'], np.float32)
        vis = np.asarray(results['keypoints_visible']) > 0
        if drawn is None:
            mask, noise, kp = np.zeros((1, kp.shape[1]), bool), 0.0, kp.copy()
        else:
            mask, jitter, noise = drawn
            kp = kp + jitter if jitter is not None else kp.copy()
        results['heatmap_keypoints'] = kp
        results['heatmap_keypoints_visible'] = (vis & ~mask).astype(np.float32)
        results['mhm_mask'] = mask
        results['heatmap_noise_std'] = noise
        return results

    def transform_batch(self, batch: List[Dict], draws: List) -> List[Dict]:
        kp = [np.asarray(r['keypoints'], np.float32) for r in batch]
        if len({a.shape for a in kp}) > 1:   # different keypoint layouts: one at a time
            return [self.transform_batch([r], [d])[0] for r, d in zip(batch, draws)]
        kp = np.stack(kp)                                                     # (B, N, K, 2)
        vis = np.stack([np.asarray(r['keypoints_visible']) > 0 for r in batch])
        if not self.enabled:
            mask = np.zeros((len(batch), 1, kp.shape[2]), bool)
            noise = [0.0] * len(batch)
            kp = kp.copy()
        else:
            mask = np.stack([d[0] for d in draws])
            if mask.shape[-1] != kp.shape[2]:   # drawn before an earlier transform changed K
                raise NotBatchable(f'MaskedHeatmapModeling drew masks for {mask.shape[-1]} '
                                   f'keypoints, the samples now have {kp.shape[2]}')
            noise = [d[2] for d in draws]
            if self.jitter_std > 0:
                jitter = np.stack([d[1] for d in draws])
                if jitter.shape != kp.shape:   # drawn before an earlier transform reshaped them
                    raise NotBatchable(f'MaskedHeatmapModeling drew jitter {jitter.shape[1:]} for '
                                       f'keypoints that are now {kp.shape[1:]}')
                kp = kp + jitter
            else:
                kp = kp.copy()
        hm_vis = (vis & ~mask).astype(np.float32)
        for i, r in enumerate(batch):
            r['heatmap_keypoints'] = kp[i]
            r['heatmap_keypoints_visible'] = hm_vis[i]
            r['mhm_mask'] = mask[i]
            r['heatmap_noise_std'] = noise[i]
        return batch

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mask_prob={self.mask_prob}, num_masked={self.num_masked}, '
                f'jitter_std={self.jitter_std}, noise_std={self.noise_std}, enabled={self.enabled}, '
                f'seed={self.seed})')
