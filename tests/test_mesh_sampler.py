"""Tests of the mesh sampler (coarse levels by quadric decimation, D/U matrices, file formats, module).

Meshes are generated here: a closed UV sphere with SMPL's vertex count (6890) and an open cup with MANO's
(778, open like MANO's wrist).
"""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

sp = pytest.importorskip('scipy.sparse')
pytest.importorskip('fast_simplification')

from mmpose_mpt.body_models.mesh_sampler import (MeshSampler, MeshSamplingFileError,  # noqa: E402
                                                 build_mesh_sampling, load_mesh_sampling,
                                                 save_mesh_sampling)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _latitude_mesh(num_rings: int, num_lon: int, theta_max: float, north_pole: bool):
    """Sphere-like mesh: south pole + ``num_rings`` latitude rings (+ north pole).

    Returns vertices (V, 3) on the unit sphere and faces (F, 3) (outward orientation not needed).
    """
    thetas = np.linspace(0, theta_max, num_rings + 2)[1:-1] if north_pole else \
        np.linspace(0, theta_max, num_rings + 1)[1:]
    phis = np.linspace(0, 2 * np.pi, num_lon, endpoint=False)
    t, p = np.meshgrid(thetas, phis, indexing='ij')
    ring = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), -np.cos(t)], -1).reshape(-1, 3)
    verts = [np.array([[0.0, 0.0, -1.0]]), ring]
    idx = lambda r, j: 1 + r * num_lon + (j % num_lon)  # noqa: E731
    faces = [[0, idx(0, j + 1), idx(0, j)] for j in range(num_lon)]
    for r in range(num_rings - 1):
        for j in range(num_lon):
            a, b, c, d = idx(r, j), idx(r, j + 1), idx(r + 1, j), idx(r + 1, j + 1)
            faces += [[a, b, d], [a, d, c]]
    if north_pole:
        top = 1 + num_rings * num_lon
        verts.append(np.array([[0.0, 0.0, 1.0]]))
        faces += [[top, idx(num_rings - 1, j), idx(num_rings - 1, j + 1)] for j in range(num_lon)]
    return np.concatenate(verts), np.asarray(faces, np.int64)


@pytest.fixture(scope='module')
def sphere():
    v, f = _latitude_mesh(82, 84, np.pi, north_pole=True)  # 2 + 82 * 84 = 6890 vertices
    assert len(v) == 6890
    return v, f


@pytest.fixture(scope='module')
def smpl_like(sphere):
    return build_mesh_sampling(*sphere, num_vertices=(1723, 431))


@pytest.fixture(scope='module')
def mano_like():
    v, f = _latitude_mesh(21, 37, 0.75 * np.pi, north_pole=False)  # 1 + 21 * 37 = 778, open top
    assert len(v) == 778
    return v, f, build_mesh_sampling(v, f, num_vertices=(195,))


def _point_triangle_distance(p, a, b, c):
    """Independent reference: min(distance to the plane if the projection is inside, the 3 edges).

    p (3,), a/b/c (T, 3) -> (T,)."""
    def seg(p, u, v):
        t = np.clip(((p - u) * (v - u)).sum(-1) / ((v - u) ** 2).sum(-1), 0, 1)
        return np.linalg.norm(u + t[:, None] * (v - u) - p, axis=-1)

    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    h = ((p - a) * n).sum(-1)
    q = p - h[:, None] * n
    inside = np.ones(len(a), bool)
    for u, v in ((a, b), (b, c), (c, a)):
        inside &= (np.cross(v - u, q - u) * n).sum(-1) >= -1e-12
    edges = np.minimum(np.minimum(seg(p, a, b), seg(p, b, c)), seg(p, c, a))
    return np.where(inside, np.abs(h), edges)


def _check_levels(d, sizes):
    assert d['num_vertices'] == list(sizes)
    for k in range(len(sizes) - 1):
        D, U = d['D'][k], d['U'][k]
        assert D.shape == (sizes[k + 1], sizes[k]) and U.shape == (sizes[k], sizes[k + 1])
        for m in (D, U):
            assert m.data.min() >= 0
            np.testing.assert_allclose(np.asarray(m.sum(axis=1)).ravel(), 1.0, atol=1e-9)
        # D selects distinct existing vertices: one 1 per row, no column twice.
        assert (D.getnnz(axis=1) == 1).all() and np.allclose(D.data, 1.0)
        assert len(np.unique(D.indices)) == sizes[k + 1]
        f = d['F'][k + 1]
        assert f.ndim == 2 and f.shape[1] == 3 and f.min() >= 0 and f.max() < sizes[k + 1]
        assert len(f) > sizes[k + 1] // 2
        # Every up-sampling row is supported on one coarse triangle (barycentric) or one vertex.
        allowed = set()
        for a, b, c in f.tolist():
            allowed |= {frozenset((a, b, c)), frozenset((a, b)), frozenset((b, c)), frozenset((a, c))}
        U = U.tocsr()
        for i in range(sizes[k]):
            cols = frozenset(U.indices[U.indptr[i]:U.indptr[i + 1]].tolist())
            assert len(cols) == 1 or cols in allowed, (k, i, cols)


def test_smpl_like_levels_exact_counts(smpl_like):
    _check_levels(smpl_like, (6890, 1723, 431))


def test_mano_like_open_mesh(mano_like):
    _, _, d = mano_like
    _check_levels(d, (778, 195))


def test_coarse_vertices_are_original_vertices(sphere, smpl_like):
    v0 = sphere[0]
    for k, D in enumerate(smpl_like['D']):
        v_coarse = D @ smpl_like['vertices'][k]
        np.testing.assert_array_equal(v_coarse, smpl_like['vertices'][k + 1])
    # Level 2 via D1 D0 is a subset of the original vertices (exact positions).
    v2 = smpl_like['D'][1] @ (smpl_like['D'][0] @ v0)
    dist = np.sqrt(((v2[:, None, :] - v0[None, :, :]) ** 2).sum(-1)).min(1)
    assert dist.max() == 0.0
    # The coarse mesh still covers the sphere: every original vertex is near a coarse one.
    far = np.sqrt(((v0[:, None, :] - v2[None, :, :]) ** 2).sum(-1)).min(1)
    assert far.max() < 0.35  # 431 points on a unit sphere: mean spacing ~0.17


def test_upsampling_projects_onto_closest_coarse_triangle(sphere, smpl_like):
    v0, v1, f1 = sphere[0], smpl_like['vertices'][1], smpl_like['F'][1]
    proj = smpl_like['U'][0] @ v1
    rng = np.random.default_rng(0)
    for i in rng.choice(len(v0), 150, replace=False):
        ref = _point_triangle_distance(v0[i], v1[f1[:, 0]], v1[f1[:, 1]], v1[f1[:, 2]]).min()
        got = np.linalg.norm(proj[i] - v0[i])
        assert got <= ref + 1e-9, (i, got, ref)


def test_smooth_function_survives_down_up(sphere, smpl_like):
    """Down-sampling then barycentric up-sampling of a smooth field is accurate to O(h^2)."""
    v = sphere[0]
    f = (np.sin(2 * v[:, 0]) + np.cos(3 * v[:, 1]) + v[:, 2])[:, None]
    D0, D1, U0, U1 = smpl_like['D'] + smpl_like['U']
    rel1 = np.linalg.norm(U0 @ (D0 @ f) - f) / np.linalg.norm(f)
    rel2 = np.linalg.norm(U0 @ (U1 @ (D1 @ (D0 @ f))) - f) / np.linalg.norm(f)
    # Measured 0.0058 and 0.022 on this mesh (fast-simplification 0.2.0); bounds leave ~2.5x margin.
    assert rel1 < 0.015, rel1
    assert rel2 < 0.06, rel2
    # A non-smooth (random) field does not survive, so the test can fail.
    noise = np.random.default_rng(0).standard_normal((len(v), 1))
    assert np.linalg.norm(U0 @ (D0 @ noise) - noise) / np.linalg.norm(noise) > 0.5


def _dense(m):
    return np.asarray(m.todense())


def test_save_load_round_trip(tmp_path, smpl_like):
    path = str(tmp_path / 'sampling.npz')
    save_mesh_sampling(path, smpl_like)
    with np.load(path, allow_pickle=False) as z:  # pickle-free
        for k in z.files:
            z[k]
        assert int(z['version']) == 1
    d = load_mesh_sampling(path)
    assert d['num_vertices'] == [6890, 1723, 431]
    for name in ('D', 'U'):
        for a, b in zip(d[name], smpl_like[name]):
            assert abs(a - b).max() < 1e-15
    for a, b in zip(d['F'], smpl_like['F']):
        np.testing.assert_array_equal(a, b)


def _write_metro(path, D, U, with_faces=False):
    def obj(mats):
        out = np.empty(len(mats), dtype=object)
        for i, m in enumerate(mats):
            out[i] = m
        return out

    sizes = [D[0].shape[1]] + [m.shape[0] for m in D]
    A = obj([sp.csc_matrix((n, n)) for n in sizes])
    extra = {}
    if with_faces:
        extra['F'] = obj([np.zeros((1, 3), np.int64)] * len(sizes))
    np.savez(path, A=A, D=obj([sp.csc_matrix(m) for m in D]), U=obj([sp.coo_matrix(m) for m in U]),
             **extra)


def test_metro_layout_readable(tmp_path, smpl_like):
    path = str(tmp_path / 'mesh_downsampling.npz')
    _write_metro(path, smpl_like['D'], smpl_like['U'])
    d = load_mesh_sampling(path)
    assert d['num_vertices'] == [6890, 1723, 431]
    assert d['F'] == [None, None, None]
    for name in ('D', 'U'):
        for a, b in zip(d[name], smpl_like[name]):
            np.testing.assert_array_equal(_dense(a), _dense(b))
    sampler = MeshSampler(path)
    assert sampler.num_vertices == [6890, 1723, 431]
    # Ours written from a METRO file (no faces) loads again.
    save_mesh_sampling(str(tmp_path / 'ours.npz'), d)
    assert load_mesh_sampling(str(tmp_path / 'ours.npz'))['num_vertices'] == [6890, 1723, 431]


@pytest.mark.parametrize('dtype, tol', [(torch.float32, 1e-5), (torch.bfloat16, 1e-2),
                                        (torch.float64, 1e-12)])
def test_sampler_matches_scipy(smpl_like, dtype, tol):
    sampler = MeshSampler(smpl_like)
    assert sampler.num_vertices == [6890, 1723, 431]
    assert len(sampler.state_dict()) == 0  # matrices come from the file, not checkpoints
    x = torch.randn(4, 6890, 3, generator=torch.Generator().manual_seed(0)).to(dtype)
    xn = x.double().numpy()
    D0, D1, U0, U1 = smpl_like['D'] + smpl_like['U']

    def ref(mats, a):
        out = []
        for b in a:
            for m in mats:
                b = m @ b
            out.append(b)
        return np.stack(out)

    def close(got, want):
        assert got.dtype == dtype
        np.testing.assert_allclose(got.double().numpy(), want, atol=tol, rtol=tol)

    close(sampler.downsample(x), ref([D0, D1], xn))
    close(sampler.downsample(x, 0, 1), ref([D0], xn))
    x1 = torch.from_numpy(ref([D0], xn)).to(dtype)
    close(sampler.downsample(x1, 1, 2), ref([D1], x1.double().numpy()))
    x2 = torch.randn(4, 431, 3, generator=torch.Generator().manual_seed(1)).to(dtype)
    x2n = x2.double().numpy()
    close(sampler.upsample(x2), ref([U1, U0], x2n))
    close(sampler.upsample(x2, 2, 1), ref([U1], x2n))
    # Unbatched (V, C) and extra leading dims.
    close(sampler.upsample(x2[0]), ref([U1, U0], x2n[:1])[0])
    assert sampler.downsample(x.reshape(2, 2, 6890, 3)).shape == (2, 2, 431, 3)


def test_sampler_module_conversions(smpl_like):
    sampler = MeshSampler(smpl_like).bfloat16()
    assert sampler.D0_val.dtype == torch.float64  # weights stay exact under module casts
    sampler = sampler.to(torch.float64).to('cpu')
    x = torch.ones(2, 6890, 3, dtype=torch.bfloat16)
    # Constant fields are reproduced exactly (rows sum to 1), also in bf16.
    assert torch.equal(sampler.upsample(sampler.downsample(x)), x)
    assert torch.equal(sampler.downsample(x, 0, 0), x)
    with pytest.raises(ValueError, match='1723'):
        sampler.downsample(torch.zeros(2, 1700, 3), 1, 2)
    with pytest.raises(ValueError):
        sampler.upsample(torch.zeros(2, 6890, 3), 0, 2)
    with pytest.raises(TypeError):
        sampler.downsample(torch.zeros(2, 6890, 3, dtype=torch.long))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_sampler_cuda(smpl_like):
    sampler = MeshSampler(smpl_like).cuda()
    x = torch.randn(32, 6890, 3)
    want = sampler.cpu().downsample(x).double()
    sampler.cuda()
    for dtype in (torch.float32, torch.bfloat16):
        got = sampler.downsample(x.cuda().to(dtype))
        assert got.device.type == 'cuda' and got.dtype == dtype
        torch.testing.assert_close(got.double().cpu(), want, atol=2e-2, rtol=2e-2)


# ------------------------------------------------------------------------------------------ errors
def test_missing_file(tmp_path):
    path = str(tmp_path / 'nope.npz')
    with pytest.raises(MeshSamplingFileError, match='nope.npz') as e:
        load_mesh_sampling(path)
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match='nope.npz'):
        MeshSampler(path)


def test_not_an_npz(tmp_path):
    path = tmp_path / 'garbage.npz'
    path.write_text('hello')
    with pytest.raises(MeshSamplingFileError, match='garbage.npz'):
        load_mesh_sampling(str(path))
    np.save(str(tmp_path / 'single.npy'), np.zeros(3))
    with pytest.raises(MeshSamplingFileError, match='single.npy'):
        load_mesh_sampling(str(tmp_path / 'single.npy'))


def test_npz_missing_keys(tmp_path, mano_like):
    path = str(tmp_path / 'keys.npz')
    np.savez(path, foo=np.zeros(3))
    with pytest.raises(MeshSamplingFileError, match=r'keys\.npz.*foo'):
        load_mesh_sampling(path)
    good = str(tmp_path / 'good.npz')
    save_mesh_sampling(good, mano_like[2])
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith('U0_')}
    np.savez(path, **arrays)
    with pytest.raises(MeshSamplingFileError, match='U0_indices'):
        load_mesh_sampling(path)


def test_shape_mismatch_between_levels(tmp_path, smpl_like):
    # METRO layout whose second D does not start where the first ends.
    bad_d1 = sp.csr_matrix((431, 1700))
    path = str(tmp_path / 'metro_bad.npz')
    _write_metro(path, [smpl_like['D'][0], bad_d1], smpl_like['U'])
    with pytest.raises(MeshSamplingFileError, match=r'metro_bad\.npz.*D\[1\].*\(431, 1700\)'):
        load_mesh_sampling(path)
    # Our layout with a U of the wrong shape, and a num_vertices that disagrees with D.
    good = str(tmp_path / 'ours.npz')
    save_mesh_sampling(good, smpl_like)
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    bad = dict(arrays, U1_shape=np.array([1723, 432]))
    np.savez(str(tmp_path / 'u_bad.npz'), **bad)
    with pytest.raises(MeshSamplingFileError, match=r'u_bad\.npz.*U\[1\] has shape \(1723, 432\)'):
        load_mesh_sampling(str(tmp_path / 'u_bad.npz'))
    bad = dict(arrays, U1_shape=np.array([1723, 430]))  # indices no longer fit
    np.savez(str(tmp_path / 'u_bad2.npz'), **bad)
    with pytest.raises(MeshSamplingFileError, match=r'u_bad2\.npz.*U1_indices out of range'):
        load_mesh_sampling(str(tmp_path / 'u_bad2.npz'))
    bad = dict(arrays, num_vertices=np.array([6890, 1723, 430]))
    np.savez(str(tmp_path / 'n_bad.npz'), **bad)
    with pytest.raises(MeshSamplingFileError, match=r'n_bad\.npz.*num_vertices'):
        load_mesh_sampling(str(tmp_path / 'n_bad.npz'))
    bad = dict(arrays, F1=np.array([[0, 1, 5000]]))
    np.savez(str(tmp_path / 'f_bad.npz'), **bad)
    with pytest.raises(MeshSamplingFileError, match=r'f_bad\.npz.*F\[1\]'):
        load_mesh_sampling(str(tmp_path / 'f_bad.npz'))


def test_build_rejects_bad_levels(mano_like):
    v, f, _ = mano_like
    with pytest.raises(ValueError, match='decreasing'):
        build_mesh_sampling(v, f, num_vertices=(195, 400))
    with pytest.raises(ValueError, match='decreasing'):
        build_mesh_sampling(v, f, num_vertices=(800,))
    with pytest.raises(ValueError, match='faces'):
        build_mesh_sampling(v, f + 1000, num_vertices=(195,))


def test_cli(tmp_path, mano_like):
    v, f, _ = mano_like
    model = str(tmp_path / 'MANO_TOY.npz')
    np.savez(model, v_template=v, f=f)
    spec = importlib.util.spec_from_file_location('make_mesh_sampling',
                                                  osp.join(REPO, 'tools', 'make_mesh_sampling.py'))
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = str(tmp_path / 'mano_downsampling.npz')
    assert cli.main([model, out, '--levels', '195']) == 0
    assert MeshSampler(out).num_vertices == [778, 195]
    assert cli.main([str(tmp_path / 'missing.npz'), out]) == 1


def test_selection_matrices_take_the_gather_path_and_agree_with_scipy():
    """A down-sampling matrix with one entry per row (rows in any order, any weights) is applied as a
    gather; the result equals the sparse product, and a general matrix still takes the scatter path."""
    import scipy.sparse as sp
    rng = np.random.default_rng(0)
    n0, n1, n2 = 40, 12, 5
    rows = rng.permutation(n1)                                   # COO entries not in row order
    sel = sp.coo_matrix((rng.uniform(0.5, 2.0, n1), (rows, rng.choice(n0, n1, replace=False))),
                        shape=(n1, n0))
    general = sp.random(n2, n1, density=0.6, random_state=1, format='coo')
    general = sp.coo_matrix(general + sp.eye(n2, n1))             # every row non-empty, some rows > 1
    up = [sp.coo_matrix(np.ones((n0, n1)) / n1), sp.coo_matrix(np.ones((n1, n2)) / n2)]
    sampler = MeshSampler(dict(num_vertices=[n0, n1, n2], D=[sel, general], U=up, F=[None] * 3,
                               A=[None] * 3))
    assert sampler._selection == {'D0': True, 'D1': False, 'U0': False, 'U1': False}
    x = torch.randn(3, n0, 3, dtype=torch.float64)
    got1 = sampler.downsample(x, 0, 1)
    want1 = np.stack([sel @ xi for xi in x.numpy()])
    np.testing.assert_allclose(got1.numpy(), want1, rtol=0, atol=1e-12)
    got2 = sampler.downsample(got1, 1, 2)
    np.testing.assert_allclose(got2.numpy(), np.stack([general @ xi for xi in want1]), rtol=0, atol=1e-12)
