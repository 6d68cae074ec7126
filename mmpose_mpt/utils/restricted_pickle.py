"""Restricted unpickling: read the arrays of pickled data files without running code from them.

Body-model ``.pkl`` files (SMPL, SMPL-H, MANO: Python-2 pickles with chumpy objects and
``scipy.sparse`` matrices), METRO's ``mesh_downsampling.npz`` (pickled object arrays of sparse
matrices) and some AMASS releases (``gender`` saved as a pickled object array) are pickles. A plain
unpickle calls whatever the file names, so it can run code (``os.system``, ``eval`` ...), and even
numpy's own reconstructors are unsafe: ``numpy.ndarray(shape, 'O', buffer)``, ``_reconstruct`` with a
raw-bytes state, ``scalar`` and ``_frombuffer`` can build *object* arrays out of attacker bytes, i.e.
pointers that are dereferenced (a segfault, or worse) when the array is read.

:class:`RestrictedUnpickler` therefore resolves no callable from the file:

* every ``chumpy.*`` / ``scipy.sparse.*`` class becomes a :class:`ChumpyObject` / :class:`SparseMatrix`
  stand-in that only records its pickled state (converted to numpy / scipy by the readers, after
  validation); any other class becomes an :class:`UnknownObject` that is never called;
* numpy arrays, dtypes and scalars are rebuilt by :class:`_ArrayBuilder` / :class:`_DtypeBuilder` /
  :func:`_scalar` / :func:`_frombuffer`: plain numeric, bool, str and bytes dtypes from byte buffers
  whose length must equal ``prod(shape) * itemsize``; object arrays only from a list of already
  unpickled values (never from bytes); structured, sub-array and void dtypes are refused;
* the few builtins pickles need (``list``, ``dict``, ``set``, ``int``, ``str`` ...) are allowed;
  ``bytes`` / ``bytearray`` only from strings or bytes (``bytes(10**12)`` would allocate a terabyte)
  and ``range`` not at all (``list(range(10**12))``).

:func:`to_plain` turns what was unpickled into plain Python / numpy values, :func:`sparse_from_state`
a sparse stand-in into a validated ``scipy.sparse.csr_matrix``, and :func:`load_npz_restricted` reads
every member of an ``.npz`` (object members through this unpickler, the others with
``allow_pickle=False``). Everything raises :class:`RestrictedPickleError` (a ``ValueError``) for what
it refuses.
"""
import builtins
import codecs
import collections
import io
import pickle
import re
import zipfile
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

__all__ = [
    'RestrictedPickleError', 'RestrictedUnpickler', 'restricted_loads', 'to_plain', 'Pickled',
    'ChumpyObject', 'SparseMatrix', 'UnknownObject', 'sparse_from_state', 'validated_sparse',
    'sparse_to_dense', 'load_npz_restricted', 'refused_classes', 'check_graph'
]

# Bounds far above any body model (SMPL-X: 10 475 vertices) and far below what exhausts memory:
# a sparse matrix densified (a (1e6, 1e6) "_shape" would ask for 8 TB), a sparse matrix side (its index
# pointers), the values a pickle may stand for when written out, and the nesting of containers.
MAX_DENSE_ELEMENTS = 10**8
MAX_SPARSE_DIM = 10**7
MAX_NODES = 10**7
MAX_DEPTH = 100


class RestrictedPickleError(pickle.UnpicklingError, ValueError):
    """The pickle asks for something the restricted unpickler does not do (it is never done)."""


# --------------------------------------------------------------------------------------------------
# Stand-ins for classes that are not imported
# --------------------------------------------------------------------------------------------------
class Pickled:
    """Stand-in for an object of a class that is not imported: records constructor args and state."""

    _qualname = '?'
    _args: tuple = ()
    _state: dict = {}

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__['_args'] = args
        obj.__dict__['_state'] = {}
        return obj

    def __init__(self, *args, **kwargs):  # REDUCE calls cls(*args); they were kept by __new__
        pass

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            a, b = state
            state = {**(a if isinstance(a, dict) else {}), **(b if isinstance(b, dict) else {})}
        self.__dict__['_state'] = state if isinstance(state, dict) else {'_state': state}

    @property
    def _items(self) -> dict:
        return self.__dict__.setdefault('_items', {})

    def __setitem__(self, key, value):  # pickles of dict subclasses use SETITEMS
        self._items[_check_key(key)] = value

    def append(self, value):  # ... and of list subclasses APPENDS
        self._items[len(self._items)] = value

    def extend(self, values):
        for v in values:
            self.append(v)

    def __repr__(self):
        return f'<pickled {self._qualname}>'


class ChumpyObject(Pickled):
    """Stand-in for ``chumpy.*`` classes."""


class SparseMatrix(Pickled):
    """Stand-in for ``scipy.sparse.*`` matrices / arrays."""


class UnknownObject(Pickled):
    """Stand-in for any other class: never called for real; readers refuse or drop it."""


_STANDIN_CACHE: Dict[Tuple[type, str], type] = {}


def _standin(base: type, module: str, name: str) -> type:
    key = (base, f'{module}.{name}')
    if key not in _STANDIN_CACHE:
        _STANDIN_CACHE[key] = type(name.replace('.', '_'), (base, ), {'_qualname': f'{module}.{name}'})
    return _STANDIN_CACHE[key]


# --------------------------------------------------------------------------------------------------
# numpy arrays, dtypes and scalars, rebuilt with checks
# --------------------------------------------------------------------------------------------------
_SAFE_KINDS = 'biufcUS'   # bool, ints, floats, complex, str, bytes (from raw buffers)
_DTYPE_STR = re.compile(r'^[<>|=]?(\?|[biufcUSO]\d*)$')


class _Refused:
    """What a refused numpy global resolves to: calling it is an error (it may still be an argument:
    ``numpy.ndarray`` is the subtype argument of ``_reconstruct``)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, *args, **kwargs):
        raise RestrictedPickleError(f'the pickle calls {self.what} directly (it can build arrays out of '
                                    'raw memory); refused')

    def __setstate__(self, state):
        raise RestrictedPickleError(f'setting the state of {self.what} refused')

    def __repr__(self):
        return f'<refused {self.what}>'


_NDARRAY = _Refused('numpy.ndarray')


class _DtypeBuilder:
    """``numpy.dtype(obj, align, copy)`` + ``__setstate__`` for simple dtypes only."""

    dtype: Optional[np.dtype] = None  # also when made by NEWOBJ without __init__

    def __init__(self, obj: Any = None, align: Any = False, copy: Any = False) -> None:
        if not isinstance(obj, str) or len(obj) > 16 or not _DTYPE_STR.match(obj):
            what = repr(obj) if isinstance(obj, str) and len(obj) <= 16 else f'a {type(obj).__name__}'
            raise RestrictedPickleError(f'dtype {what} refused (only plain numeric, bool, str, bytes and '
                                        'object dtypes)')
        self.dtype = np.dtype(obj)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (8, 9):
            raise RestrictedPickleError(f'malformed dtype state (a {type(state).__name__})')
        byteorder, subarray, names, fields, elsize = state[1:6]
        if subarray is not None or names is not None or fields is not None:
            raise RestrictedPickleError('structured / sub-array dtypes refused')
        if byteorder not in ('<', '>', '|', '='):
            raise RestrictedPickleError(f'dtype byte order ({type(byteorder).__name__}) refused')
        dt = self.dtype
        if dt.kind in 'US':
            if not isinstance(elsize, int) or not 0 <= elsize < (1 << 31):
                raise RestrictedPickleError(f'dtype item size ({type(elsize).__name__}) refused')
            n = elsize // 4 if dt.kind == 'U' else elsize
            dt = np.dtype(f'{dt.kind}{n}')
        if byteorder in '<>' and dt.kind not in 'O' and dt.itemsize > 1:
            dt = dt.newbyteorder(byteorder)
        self.dtype = dt


def _dtype_of(obj: Any, what: str) -> np.dtype:
    if not isinstance(obj, _DtypeBuilder) or obj.dtype is None:
        raise RestrictedPickleError(f'{what}: dtype argument is a {type(obj).__name__}, not a dtype')
    return obj.dtype


def _shape_of(shape: Any, what: str) -> Tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape, )
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise RestrictedPickleError(f'{what}: shape (a {type(shape).__name__}) is not a tuple of '
                                    'non-negative ints')
    return tuple(int(s) for s in shape)


def _raw_bytes(raw: Any, what: str) -> bytes:
    if isinstance(raw, str):  # Python-2 pickles read with encoding='latin1'
        return raw.encode('latin1')
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if isinstance(raw, pickle.PickleBuffer):
        return bytes(raw.raw())
    raise RestrictedPickleError(f'{what}: array data is a {type(raw).__name__}, not bytes')


def _from_bytes(raw: Any, dtype: np.dtype, shape: Tuple[int, ...], fortran: bool, what: str) -> np.ndarray:
    if dtype.hasobject or dtype.kind not in _SAFE_KINDS:
        raise RestrictedPickleError(f'{what}: a {dtype} array from raw bytes refused (object arrays '
                                    'hold pointers)')
    data = _raw_bytes(raw, what)
    size = int(np.prod(shape, dtype=object)) if shape else 1
    if len(data) != size * dtype.itemsize:
        raise RestrictedPickleError(f'{what}: {len(data)} bytes of data for a {shape} {dtype} array '
                                    f'({size * dtype.itemsize} expected)')
    if size == 0:
        return np.zeros(shape, dtype)
    if dtype.kind == 'U':  # UCS4 code points beyond U+10FFFF fail (SystemError) when read as str
        u4 = np.dtype('u4').newbyteorder(dtype.byteorder if dtype.byteorder in '<>' else '=')
        cps = np.frombuffer(data, u4)
        if cps.size and int(cps.max()) > 0x10FFFF:
            raise RestrictedPickleError(f'{what}: a {dtype} array with invalid code points')
    return np.frombuffer(data, dtype).reshape(shape, order='F' if fortran else 'C').copy(order='K')


class _ArrayBuilder:
    """What ``_reconstruct(ndarray, shape, dtype)`` returns; ``__setstate__`` builds the array."""

    array: Optional[np.ndarray] = None  # until __setstate__ (also when made by NEWOBJ)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise RestrictedPickleError(f'malformed ndarray state (a {type(state).__name__})')
        shape, dtype, fortran, raw = state[-4:]
        shape = _shape_of(shape, 'ndarray')
        dtype = _dtype_of(dtype, 'ndarray')
        if dtype.hasobject:
            # object arrays pickle their elements as a list of already unpickled objects: safe
            if dtype.kind != 'O' or not isinstance(raw, (list, tuple)):
                raise RestrictedPickleError(f'an object array from {type(raw).__name__} data refused '
                                            '(object arrays hold pointers)')
            size = int(np.prod(shape, dtype=object)) if shape else 1
            if len(raw) != size:
                raise RestrictedPickleError(f'object array of shape {shape} with {len(raw)} elements')
            flat = np.empty(size, dtype=object)
            for i, v in enumerate(raw):
                flat[i] = v
            self.array = flat.reshape(shape, order='F' if fortran else 'C')
        else:
            self.array = _from_bytes(raw, dtype, shape, bool(fortran), 'ndarray')


def _reconstruct(subtype: Any, shape: Any = (0, ), dtype: Any = b'b') -> _ArrayBuilder:
    if subtype is not _NDARRAY:
        raise RestrictedPickleError(f'array subclass (a {type(subtype).__name__}) refused')
    return _ArrayBuilder()


def _scalar(dtype: Any, data: Any = None) -> np.generic:
    dt = _dtype_of(dtype, 'numpy scalar')
    arr = _from_bytes(data, dt, (), False, 'numpy scalar')
    return arr[()]


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any = 'C') -> np.ndarray:
    if order not in ('C', 'F'):
        raise RestrictedPickleError(f'array order ({type(order).__name__}) refused')
    return _from_bytes(buf, _dtype_of(dtype, '_frombuffer'), _shape_of(shape, '_frombuffer'), order == 'F',
                       '_frombuffer')


_NUMPY_HELPERS: Dict[str, Callable] = {'_reconstruct': _reconstruct, 'scalar': _scalar,
                                       '_frombuffer': _frombuffer}


# --------------------------------------------------------------------------------------------------
# Builtins, bounded
# --------------------------------------------------------------------------------------------------
def _bytes(*args):
    if not args:
        return b''
    if isinstance(args[0], str):
        return args[0].encode(*(a for a in args[1:2] if isinstance(a, str)))
    if isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    raise RestrictedPickleError(f'bytes({type(args[0]).__name__}) refused')


def _bytearray(*args):
    return bytearray(_bytes(*args))


def _codecs_encode(obj, encoding='latin1'):
    # protocol-2 pickles of bytes: _codecs.encode(str, 'latin1'); no other codec (some decompress)
    if not isinstance(obj, str) or encoding not in ('latin1', 'latin-1', 'iso8859-1', 'utf-8', 'utf8'):
        raise RestrictedPickleError(f'_codecs.encode({type(obj).__name__}, {encoding!r}) refused')
    return codecs.encode(obj, encoding)


# Dict keys and set elements are hashed while the file is read; a key nested 300 000 tuples deep
# overflows the C stack in tuple hashing (a segfault), so keys are plain scalars or flat tuples of them.
_ATOMIC = (str, bytes, int, float, bool, complex, type(None))


def _check_key(key: Any) -> Any:
    if type(key) in _ATOMIC or (type(key) is tuple and len(key) <= 64
                                and all(type(k) in _ATOMIC for k in key)):
        return key
    raise RestrictedPickleError(f'a dict key / set element of type {type(key).__name__} refused')


def _set(iterable=()):
    return set(_check_key(k) for k in _iterable(iterable))


def _frozenset(iterable=()):
    return frozenset(_check_key(k) for k in _iterable(iterable))


def _dict(*args, **kwargs):
    out = {}
    if args:
        src = args[0]
        items = src.items() if isinstance(src, dict) else _iterable(src)
        for kv in items:
            if not isinstance(kv, (tuple, list)) or len(kv) != 2:
                raise RestrictedPickleError('dict() from something that is not (key, value) pairs')
            out[_check_key(kv[0])] = kv[1]
    out.update(kwargs)
    return out


def _iterable(x: Any):
    if not isinstance(x, (list, tuple, set, frozenset, dict, str, bytes)):
        raise RestrictedPickleError(f'iterating a {type(x).__name__} refused')
    return x


def _str(*args):
    # str(x) of a container would repr it whole (exponential for shared sub-lists): scalars only
    if not args:
        return ''
    if type(args[0]) not in _ATOMIC or any(type(a) is not str for a in args[1:]):
        raise RestrictedPickleError(f'str() of a {type(args[0]).__name__} refused')
    return str(*args)


def _plain_dict(*args, **kwargs):
    """``collections.defaultdict(factory)`` / ``OrderedDict()`` become plain dicts (the factory is
    never called)."""
    return {}


def _copyreg_reconstructor(cls, base, state):
    """Protocol 0/1 ``copy_reg._reconstructor``: only for stand-ins (never ``base.__new__``)."""
    if not (isinstance(cls, type) and issubclass(cls, Pickled)):
        raise RestrictedPickleError(f'copyreg._reconstructor of a {type(cls).__name__} refused')
    obj = cls.__new__(cls)
    if isinstance(state, dict):
        obj._items.update(state)
    elif isinstance(state, (list, tuple)):
        obj.extend(state)
    return obj


_SAFE_BUILTINS = {'slice', 'complex', 'object', 'list', 'tuple', 'int', 'float', 'bool'}
_BUILTIN_WRAPPERS = {'bytes': _bytes, 'bytearray': _bytearray, 'set': _set, 'frozenset': _frozenset,
                     'dict': _dict, 'str': _str}


def _numpy_scalar_type(name: str) -> Optional[Callable]:
    """``numpy.float64(x)`` ... for one scalar argument (a list would become an array: numpy pickles
    its scalars through ``multiarray.scalar``, the type names appear in hand-written pickles only)."""
    t = getattr(np, name, None)
    if not (isinstance(t, type) and issubclass(t, (np.bool_, np.number))):  # numeric only (no void/object)
        return None

    def make(*args):
        if len(args) > 1 or (args and type(args[0]) not in _ATOMIC):
            raise RestrictedPickleError(f'numpy.{name} of a {type(args[0]).__name__ if args else "?"} refused')
        return t(*args)

    return make


class RestrictedUnpickler(pickle._Unpickler):  # noqa: SLF001 - the Python one, to restrict BUILD
    """Unpickler that calls nothing from the file (see the module docstring). Use ``encoding='latin1'``
    for Python-2 pickles.

    It is pickle's pure-Python unpickler (as fast here: body-model pickles are a few large strings) so
    that BUILD, which sets attributes, can be limited to the stand-ins and array builders: otherwise a
    file could set attributes of the allowed functions and classes themselves.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # noqa: SLF001

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if not isinstance(inst, (Pickled, _ArrayBuilder, _DtypeBuilder)):
            raise RestrictedPickleError(f'setting the state of a {type(inst).__name__} refused')
        inst.__setstate__(state)

    def load_setitem(self):
        value = self.stack.pop()
        key = _check_key(self.stack.pop())
        self.stack[-1][key] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        for i in range(0, len(items), 2):
            target[_check_key(items[i])] = items[i + 1]

    def load_dict(self):
        items = self.pop_mark()
        self.append({_check_key(items[i]): items[i + 1] for i in range(0, len(items), 2)})

    def load_additems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if not isinstance(target, set):
            raise RestrictedPickleError(f'adding set items to a {type(target).__name__} refused')
        target.update(_check_key(k) for k in items)

    def load_frozenset(self):
        self.append(frozenset(_check_key(k) for k in self.pop_mark()))

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.SETITEM[0]] = load_setitem
    dispatch[pickle.SETITEMS[0]] = load_setitems
    dispatch[pickle.DICT[0]] = load_dict
    dispatch[pickle.ADDITEMS[0]] = load_additems
    dispatch[pickle.FROZENSET[0]] = load_frozenset

    def find_class(self, module: str, name: str):
        root = module.split('.')[0]
        if root == 'chumpy':
            return _standin(ChumpyObject, module, name)
        if module.startswith('scipy.sparse'):
            return _standin(SparseMatrix, module, name)
        if root == 'numpy':
            if module == 'numpy' and name == 'ndarray':
                return _NDARRAY
            if module == 'numpy' and name == 'dtype':
                return _DtypeBuilder
            if module.startswith(('numpy.core', 'numpy._core')) and name in _NUMPY_HELPERS:
                return _NUMPY_HELPERS[name]
            if module == 'numpy' and _numpy_scalar_type(name) is not None:
                return _numpy_scalar_type(name)
        if module in ('builtins', '__builtin__'):
            if name in _SAFE_BUILTINS:
                return getattr(builtins, name)
            if name in _BUILTIN_WRAPPERS:
                return _BUILTIN_WRAPPERS[name]
        if module == '_codecs' and name == 'encode':  # Python-3 protocol-2 pickles of bytes
            return _codecs_encode
        if module in ('copy_reg', 'copyreg') and name == '_reconstructor':
            return _copyreg_reconstructor
        if module == 'collections' and name in ('OrderedDict', 'defaultdict'):
            return _plain_dict
        return _standin(UnknownObject, module, name)


class _ExactReader(io.BytesIO):
    """The pure-Python unpickler does not check that a read got all it asked for; at the end of a
    truncated file this says so (as the C unpickler does) instead of decoding a short string."""

    def read(self, n: Optional[int] = -1) -> bytes:
        b = super().read(n)
        if n is not None and n > 0 and len(b) < n:
            raise EOFError('pickle data was truncated')
        return b

    def readinto(self, buf) -> int:
        n = super().readinto(buf)
        if n < len(buf):
            raise EOFError('pickle data was truncated')
        return n


def restricted_loads(data: bytes, encoding: str = 'latin1') -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (nothing from the file is called).

    Returns:
        the unpickled object; numpy arrays still wrapped (use :func:`to_plain`).

    Raises:
        RestrictedPickleError: for what is refused; any other exception for a corrupt pickle.
    """
    obj = RestrictedUnpickler(_ExactReader(data), encoding=encoding).load()
    check_graph(obj)
    return obj


def _children(obj: Any) -> list:
    if isinstance(obj, _ArrayBuilder):
        obj = obj.array
    if isinstance(obj, np.ndarray):
        return list(obj.ravel()) if obj.dtype == object else []
    if isinstance(obj, dict):
        return list(obj.keys()) + list(obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, Pickled):
        return list(obj._args) + list(obj._state.values()) + list(obj.__dict__.get('_items', {}).values())
    return []


def check_graph(obj: Any, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> int:
    """Refuse an unpickled object whose nesting is deeper than ``max_depth`` or which, written out as a
    tree, has more than ``max_nodes`` nodes: shared sub-lists make a few hundred bytes stand for 2**40
    nodes, and anything that walks them (conversion, ``np.asarray``, a repr) would never finish.
    Linear in the number of distinct objects. Returns the tree size."""
    sizes: Dict[int, int] = {}
    on_path = set()

    def size(o: Any, depth: int) -> int:
        key = id(o)
        if key in sizes:
            return sizes[key]
        kids = _children(o)
        if not kids:
            return 1
        if depth > max_depth:
            raise RestrictedPickleError(f'nesting deeper than {max_depth} levels')
        if key in on_path:  # a cycle (an object array holding itself): as deep as it gets
            raise RestrictedPickleError('a self-referencing structure')
        on_path.add(key)
        total = 1
        for k in kids:
            total += size(k, depth + 1)
            if total > max_nodes:
                raise RestrictedPickleError(f'more than {max_nodes} nested values (shared sub-structures '
                                            'expand beyond what a data file holds)')
        on_path.discard(key)
        sizes[key] = total
        return total

    return size(obj, 0)


# --------------------------------------------------------------------------------------------------
# Turning the result into plain values
# --------------------------------------------------------------------------------------------------
def to_plain(obj: Any, convert: Optional[Callable[[Pickled], Any]] = None,
             memo: Optional[Dict[int, Any]] = None, _depth: int = 0) -> Any:
    """Replace array builders by their arrays, recursively (object arrays element-wise, containers
    keep their structure); stand-ins are passed to ``convert`` (default: kept as they are).

    ``memo`` ({id: result}) converts an object the file shares between several places once (shared
    operands would otherwise be converted once per path: exponential); pass the same dict to every
    call made for one file.

    Raises:
        RestrictedPickleError: an array whose state never arrived, or nesting deeper than 200 levels.
    """
    if _depth > 200:
        raise RestrictedPickleError('nesting deeper than 200 levels')
    if memo is None:
        memo = {}
    key = id(obj)
    if key in memo:
        return memo[key][1]
    d = _depth + 1
    out = obj
    if isinstance(obj, _ArrayBuilder):
        if obj.array is None:
            raise RestrictedPickleError('an ndarray without its data')
        out = to_plain(obj.array, convert, memo, d)
    elif isinstance(obj, _DtypeBuilder):
        if obj.dtype is None:
            raise RestrictedPickleError('a dtype without its type')
        out = obj.dtype
    elif isinstance(obj, Pickled):
        out = convert(obj) if convert is not None else obj
    elif isinstance(obj, np.ndarray) and obj.dtype == object:
        flat = np.empty(obj.size, dtype=object)
        for i, v in enumerate(obj.ravel()):
            flat[i] = to_plain(v, convert, memo, d)
        out = flat.reshape(obj.shape)
    elif isinstance(obj, dict):
        out = {k: to_plain(v, convert, memo, d) for k, v in obj.items()}
    elif isinstance(obj, (list, tuple)):
        out = type(obj)(to_plain(v, convert, memo, d) for v in obj)
    memo[key] = (obj, out)  # the source is kept alive so that its id is not reused meanwhile
    return out


def refused_classes(obj: Any) -> list:
    """Names of the classes of the :class:`UnknownObject` stand-ins inside ``obj`` (what a plain
    unpickle would have called); each distinct object is visited once."""
    seen, out, todo = set(), set(), [obj]
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, UnknownObject):
            out.add(o._qualname)
        todo.extend(_children(o))
    return sorted(out)


# --------------------------------------------------------------------------------------------------
# Sparse matrices
# --------------------------------------------------------------------------------------------------
def _int_array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in 'iu' or a.ndim != 1:
        raise RestrictedPickleError(f'{what} must be a 1-D integer array, got {a.shape} {a.dtype}')
    return a.astype(np.int64)


def validated_sparse(fmt: str, shape: Any, data: Any, indices: Any = None, indptr: Any = None,
                     row: Any = None, col: Any = None):
    """A ``scipy.sparse.csr_matrix`` from its parts, every index checked first (scipy's constructors
    check only the outline, and its kernels write wherever a bad index points).

    Args:
        fmt: 'csr' | 'csc' | 'coo'.
        shape: (rows, cols).
        data: (nnz,) numeric values; ``indices``/``indptr`` (csr/csc) or ``row``/``col`` (coo).

    Raises:
        RestrictedPickleError: naming the first inconsistency.
    """
    import scipy.sparse as sp
    shape = _shape_of(shape, f'{fmt} matrix')
    if len(shape) != 2:
        raise RestrictedPickleError(f'a sparse matrix needs a 2-D shape, got {shape}')
    if max(shape) > MAX_SPARSE_DIM:  # its index pointers alone would take max(shape) * 8 bytes
        raise RestrictedPickleError(f'a sparse matrix of shape {shape} (sides up to {MAX_SPARSE_DIM})')
    data = np.asarray(data)
    if data.ndim != 1 or data.dtype.kind not in 'biuf':
        raise RestrictedPickleError(f'sparse data must be a 1-D numeric array, got {data.shape} {data.dtype}')
    nnz = len(data)
    if fmt in ('csr', 'csc'):
        indices, indptr = _int_array(indices, 'indices'), _int_array(indptr, 'indptr')
        major, minor = shape if fmt == 'csr' else shape[::-1]
        if len(indptr) != major + 1 or indptr[0] != 0 or indptr[-1] != nnz or len(indices) != nnz \
                or np.any(np.diff(indptr) < 0):
            raise RestrictedPickleError(f'{fmt} index pointers do not fit {nnz} entries of shape {shape}')
        if nnz and (indices.min() < 0 or indices.max() >= minor):
            raise RestrictedPickleError(f'{fmt} indices outside [0, {minor})')
        counts = np.diff(indptr)
        majors = np.repeat(np.arange(major), counts)
        row, col = (majors, indices) if fmt == 'csr' else (indices, majors)
    elif fmt == 'coo':
        row, col = _int_array(row, 'row'), _int_array(col, 'col')
        if len(row) != nnz or len(col) != nnz:
            raise RestrictedPickleError(f'coo row/col lengths {len(row)}/{len(col)} != {nnz} values')
        if nnz and (row.min() < 0 or row.max() >= shape[0] or col.min() < 0 or col.max() >= shape[1]):
            raise RestrictedPickleError(f'coo indices outside the shape {shape}')
    else:
        raise RestrictedPickleError(f'unsupported sparse format {fmt!r}')
    # duplicates sum, as in scipy
    return sp.csr_matrix((data, (row, col)), shape=shape)


def sparse_to_dense(m, max_elements: int = MAX_DENSE_ELEMENTS) -> np.ndarray:
    """``m.toarray()`` when the dense array has at most ``max_elements`` elements."""
    n = int(m.shape[0]) * int(m.shape[1])
    if n > max_elements:
        raise RestrictedPickleError(f'a sparse matrix of shape {tuple(m.shape)} is too large to densify '
                                    f'({n} > {max_elements} elements)')
    return m.toarray()


def sparse_from_state(obj: SparseMatrix):
    """The ``scipy.sparse.csr_matrix`` a pickled scipy csr / csc / coo matrix (any scipy module path,
    old and new) describes, validated by :func:`validated_sparse`."""
    st = to_plain(obj._state)
    if not isinstance(st, dict):
        raise RestrictedPickleError(f'{obj._qualname} with a {type(st).__name__} state')
    name = obj._qualname.rsplit('.', 1)[-1]
    fmt = name.split('_')[0]
    shape = st.get('_shape', st.get('shape'))
    if shape is None or 'data' not in st:
        raise RestrictedPickleError(f'{obj._qualname} without a shape or data')
    if fmt == 'coo':
        if 'coords' in st:
            coords = st['coords']
            if not isinstance(coords, (tuple, list)) or len(coords) != 2:
                raise RestrictedPickleError(f'{obj._qualname}: coords is not (row, col)')
            row, col = coords
        else:
            row, col = st.get('row'), st.get('col')
        return validated_sparse('coo', shape, st['data'], row=row, col=col)
    if fmt in ('csr', 'csc'):
        return validated_sparse(fmt, shape, st['data'], st.get('indices'), st.get('indptr'))
    raise RestrictedPickleError(f'unsupported sparse format {obj._qualname}')


# --------------------------------------------------------------------------------------------------
# .npz archives
# --------------------------------------------------------------------------------------------------
def _read_npy(f) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    return np.lib.format._read_array_header(f, version)  # noqa: SLF001  (3, 0): no public reader


def load_npz_restricted(path: str, keys: Optional[Tuple[str, ...]] = None,
                        max_member_bytes: Optional[int] = None) -> Dict[str, Any]:
    """Read the members of an ``.npz`` (all, or ``keys``): plain arrays with ``allow_pickle=False``,
    object arrays through :class:`RestrictedUnpickler` (``encoding='latin1'``, as numpy's
    ``np.load(encoding='latin1')``).

    Args:
        max_member_bytes: refuse a pickled member that decompresses to more than this (a deflated
            member can grow ~1000x).

    Returns:
        {name: array}; object arrays' elements are unpickled but not converted (stand-ins stay, see
        :func:`to_plain`).

    Raises:
        RestrictedPickleError: a refused pickle; OSError / zipfile.BadZipFile / ValueError for corrupt
        files.
    """
    out = {}
    with zipfile.ZipFile(path) as zf:
        names = {n[:-4] if n.endswith('.npy') else n: n for n in zf.namelist()}
        for key in (keys if keys is not None else tuple(names)):
            if key not in names:
                continue
            with zf.open(names[key]) as f:
                shape, fortran, dtype = _read_npy(f)
                if dtype.hasobject:
                    data = f.read() if max_member_bytes is None else f.read(max_member_bytes + 1)
                    if max_member_bytes is not None and len(data) > max_member_bytes:
                        raise RestrictedPickleError(f'{key!r}: a pickled member of more than '
                                                    f'{max_member_bytes} bytes')
                    arr = to_plain(restricted_loads(data))
                    if not isinstance(arr, np.ndarray):
                        raise RestrictedPickleError(f'{key!r} holds a pickled {type(arr).__name__}, '
                                                    'not an array')
                    if arr.shape != tuple(shape):
                        raise RestrictedPickleError(f'{key!r}: pickled array {arr.shape} != header {shape}')
                else:
                    f.seek(0)
                    arr = np.lib.format.read_array(f, allow_pickle=False)
            out[key] = arr
    return out
