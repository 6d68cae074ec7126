"""tools/convert_body_model.py and the chumpy-free loader on pickles made like the official files.

A throw-away package named ``chumpy`` (classes pickled the way chumpy's do: ``Ch`` keeps its value in
the state key 'x', derived nodes keep their operands) is created in a tmp dir, used to write the
pickles, and removed from ``sys.modules`` / ``sys.path`` before anything is read back, so the code
under test runs without chumpy.
"""
import importlib
import os.path as osp
import pickle
import struct
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmpose_mpt.body_models import (MANO, SMPL, BodyModelFileError, build_toy_mano, build_toy_smpl,
                                    load_body_model_file)

FAKE_CHUMPY = {
    '__init__.py': 'from .ch import Ch\n',
    'ch.py': '''
        import numpy as np

        class Ch(object):
            dterms = ['x']

            def __init__(self, x=None, **terms):
                if x is not None:
                    self.x = x if isinstance(x, Ch) else np.asarray(x, np.float64)
                for k, v in terms.items():
                    setattr(self, k, v)
                self._dirty_vars = set()
                self._itr = None
                self._make_dense = False
                self._make_sparse = False
                self._depends_on_deps = {}
                self._parents = {}
                self._cache = {'r': None}

            def __getstate__(self):  # as chumpy: drop the caches, keep everything else
                d = dict(self.__dict__)
                del d['_parents'], d['_cache']
                return d
        ''',
    'reordering.py': '''
        from .ch import Ch

        class Select(Ch):
            pass

        class Reshape(Ch):
            pass
        ''',
    'ch_ops.py': '''
        from .ch import Ch

        class add(Ch):
            pass

        class sqrt(Ch):
            pass
        ''',
}


def _make_fake_chumpy(root):
    pkg = root / 'chumpy'
    pkg.mkdir()
    for name, src in FAKE_CHUMPY.items():
        (pkg / name).write_text(textwrap.dedent(src))


class _Py2Pickler(pickle._Pickler):
    """Writes str/bytes as Python-2 byte strings (BINSTRING), as the official Python-2 pickles do: they
    only load in Python 3 with encoding='latin1'."""
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode('latin1')
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


@pytest.fixture(scope='module')
def official(tmp_path_factory):
    """Official-style SMPL / MANO pickles (chumpy objects, sparse J_regressor, a py2-latin1 variant) and
    the arrays they hold."""
    root = tmp_path_factory.mktemp('official')
    _make_fake_chumpy(root)
    sys.path.insert(0, str(root))
    try:
        ch = importlib.import_module('chumpy.ch')
        reo = importlib.import_module('chumpy.reordering')
        ops = importlib.import_module('chumpy.ch_ops')
        smpl = build_toy_smpl('neutral')
        mano = build_toy_mano()
        expected = {}
        files = {}
        for name, src in (('smpl', smpl), ('mano', mano)):
            d = dict(src)
            d.pop('toy_version')
            exp = {k: (v.toarray() if sp.issparse(v) else v) for k, v in d.items()}
            d['v_template'] = ch.Ch(d['v_template'])
            d['shapedirs'] = ch.Ch(d['shapedirs'])
            d['weights'] = ch.Ch(d['weights'])
            # J as a derived node: Select(Reshape(Ch)) -> must be evaluated, not just unwrapped
            d['J'] = reo.Select(a=reo.Reshape(a=ch.Ch(d['J'].T.copy()), newshape=(-1, )),
                                idxs=np.arange(d['J'].size).reshape(3, -1).T.ravel(),
                                preferred_shape=d['J'].shape)
            d['weights_prior'] = ops.add(a=ch.Ch(exp['weights']), b=ch.Ch(np.ones_like(exp['weights'])))
            exp['weights_prior'] = exp['weights'] + 1
            d['unsupported'] = ops.sqrt(x=ch.Ch(np.ones(3)))  # no evaluator: dropped with a warning
            d['pose_training_info'] = {'num_poses': 1786}
            expected[name] = exp
            files[name] = str(root / f'{name}_official.pkl')
            with open(files[name], 'wb') as fh:
                pickle.dump(d, fh, protocol=2)
            if name == 'smpl':
                files['smpl_py2'] = str(root / 'smpl_py2.pkl')
                with open(files['smpl_py2'], 'wb') as fh:
                    _Py2Pickler(fh, protocol=2).dump(d)
    finally:
        sys.path.remove(str(root))
        for m in [m for m in sys.modules if m == 'chumpy' or m.startswith('chumpy.')]:
            del sys.modules[m]
    with pytest.raises(ImportError):
        importlib.import_module('chumpy')
    return files, expected


def _tool():
    spec = importlib.util.spec_from_file_location(
        'convert_body_model', osp.join(osp.dirname(__file__), '..', 'tools', 'convert_body_model.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _assert_same(arrays, expected):
    for k, v in expected.items():
        if isinstance(v, np.ndarray):
            assert k in arrays, k
            assert arrays[k].shape == v.shape and np.array_equal(arrays[k], v), k
            assert arrays[k].dtype == v.dtype, (k, arrays[k].dtype, v.dtype)
        else:
            assert str(arrays[k]) == v


def test_fixture_needs_chumpy_and_latin1(official, tmp_path):
    files, _ = official
    for name in ('smpl', 'smpl_py2'):
        with open(files[name], 'rb') as fh, pytest.raises(ModuleNotFoundError, match='chumpy'):
            pickle.load(fh, encoding='latin1')
    # Python-2 byte strings (array data) need encoding='latin1'
    p = tmp_path / 'py2.pkl'
    with open(p, 'wb') as fh:
        _Py2Pickler(fh, protocol=2).dump({'v_template': np.linspace(0, 1, 30).reshape(10, 3)})
    with open(p, 'rb') as fh, pytest.raises(UnicodeDecodeError):
        pickle.load(fh)
    np.testing.assert_array_equal(load_body_model_file(str(p))['v_template'], np.linspace(0, 1, 30).reshape(10, 3))


@pytest.mark.parametrize('src', ['smpl', 'smpl_py2'])
def test_loader_reads_official_style_pickles(official, src):
    files, expected = official
    with pytest.warns(UserWarning, match='unsupported'):
        arrays = load_body_model_file(files[src])
    _assert_same(arrays, expected['smpl'])
    assert 'unsupported' not in arrays and arrays['pose_training_info'] == {'num_poses': 1786}
    assert 'chumpy' not in sys.modules


@pytest.mark.parametrize('ext', ['.pkl', '.npz'])
def test_convert_smpl(official, tmp_path, ext, capsys):
    import smplx
    files, expected = official
    out = str(tmp_path / f'SMPL_NEUTRAL{ext}')
    with pytest.warns(UserWarning):
        assert _tool().main([files['smpl'], out]) == 0
    assert 'SMPL model, 6890 vertices, 24 joints' in capsys.readouterr().out
    assert 'chumpy' not in sys.modules
    if ext == '.npz':
        with np.load(out, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        assert str(arrays['bs_style']) == 'lbs'
    else:
        with open(out, 'rb') as fh:
            arrays = pickle.load(fh)  # plain pickle: numpy only
    expected_arrays = {k: v for k, v in expected['smpl'].items() if isinstance(v, np.ndarray)}
    _assert_same(arrays, expected_arrays)
    # smplx loads it without chumpy (.npz through data_struct: smplx.SMPL reads only pickles itself)
    from smplx.utils import Struct
    data_struct = Struct(**arrays) if ext == '.npz' else None
    model = smplx.SMPL(model_path=out, data_struct=data_struct)
    with torch.no_grad():
        joints = model().joints[0, :24].numpy()
    np.testing.assert_allclose(joints, expected['smpl']['J_regressor'] @ expected['smpl']['v_template'], atol=1e-5)
    # and our wrapper gives the same mesh from the official-style file and the converted one
    pose = 0.3 * torch.randn(2, 69, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning):
        a = SMPL(files['smpl'])(body_pose=pose)['vertices']
    b = SMPL(out)(body_pose=pose)['vertices']
    assert torch.equal(a, b)


def test_convert_mano(official, tmp_path):
    import smplx
    files, expected = official
    out = str(tmp_path / 'MANO_RIGHT.pkl')
    with pytest.warns(UserWarning):
        assert _tool().main([files['mano'], out]) == 0
    with open(out, 'rb') as fh:
        arrays = pickle.load(fh)
    _assert_same(arrays, {k: v for k, v in expected['mano'].items() if isinstance(v, np.ndarray)})
    ref = smplx.MANO(model_path=out, ext='pkl', use_pca=False)
    with torch.no_grad():
        v = ref().vertices
    assert v.shape == (1, 778, 3)
    assert MANO(out)()['joints'].shape == (1, 21, 3)


def test_convert_errors(official, tmp_path, capsys):
    files, _ = official
    tool = _tool()
    cases = []
    txt = tmp_path / 'model.txt'
    txt.write_text('not a model')
    cases.append(([str(txt), str(tmp_path / 'a.pkl')], 'unsupported body-model file type'))
    # (the file named in the message is the input, except for a bad output name)
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(b'\x80\x02}q\x00(X\x01\x00')  # truncated
    cases.append(([str(bad), str(tmp_path / 'b.pkl')], 'truncated'))
    nokey = tmp_path / 'nokey.pkl'
    with open(nokey, 'wb') as fh:
        pickle.dump({'v_template': np.zeros((10, 3))}, fh)
    cases.append(([str(nokey), str(tmp_path / 'c.pkl')], 'missing key'))
    cases.append(([files['smpl'], str(tmp_path / 'd.txt')], 'must end in .pkl or .npz'))
    cases.append(([str(tmp_path / 'missing.pkl'), str(tmp_path / 'e.pkl')], 'not found'))
    for argv, msg in cases:
        assert tool.main(argv) == 1, argv
        err = capsys.readouterr().err
        named = argv[1] if argv[1].endswith('.txt') else argv[0]
        assert msg in err and named in err and 'Traceback' not in err, (argv, err)
        assert len(err.strip().splitlines()) == 1
        assert not osp.exists(argv[1])


def test_sparse_matrix_formats_without_scipy_classes(tmp_path):
    """csr / coo matrices (any scipy module path) are densified by the stand-in, duplicates summed."""
    dense = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 3.0]])
    coo = sp.coo_matrix((np.array([1.0, 0.5, 2.0, 3.0]), (np.array([0, 0, 1, 1]), np.array([1, 1, 0, 2]))),
                        shape=(2, 3))
    p = tmp_path / 'x.pkl'
    with open(p, 'wb') as fh:
        pickle.dump(dict(a=sp.csr_matrix(dense), b=coo, c=sp.csc_matrix(dense)), fh, protocol=2)
    d = load_body_model_file(str(p))
    for k in 'abc':
        np.testing.assert_array_equal(d[k], dense)


def test_loader_never_runs_code_from_the_file(tmp_path):
    class Evil:
        def __reduce__(self):
            return (eval, ("open('pwned', 'w')", ))

    p = tmp_path / 'evil.pkl'
    with open(p, 'wb') as fh:
        pickle.dump({'v_template': Evil()}, fh)
    with pytest.raises(BodyModelFileError, match="cannot convert 'v_template'"):
        load_body_model_file(str(p))
    assert not osp.exists('pwned')
