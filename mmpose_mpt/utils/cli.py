"""Command-line plumbing shared by ``tools/*.py``: every failure a user can fix is one clear line.

A tool's ``main`` runs under :func:`run_tool`, which turns the errors of :func:`user_errors`
(bad or missing files, bad options) into ``<tool>: error: <message>`` on stderr and exit status 2
instead of a traceback; ``MPT_DEBUG=1`` shows the traceback. The argparse types and checks here give
the same one-line errors before any work starts.
"""
import argparse
import os
import os.path as osp
import re
import sys
from typing import Any, Callable, Iterable, List, Optional

__all__ = ['MPTUserError', 'user_errors', 'run_tool', 'one_line', 'positive_int', 'check_device',
           'check_output_file', 'check_output_dir', 'check_cfg_options', 'CfgOptionsAction']


class MPTUserError(Exception):
    """Base (or mixin) of the errors that mean "fix your input": the message names what and where."""


# mmengine re-raises a build error as ``type(e)(f'class `X` in path/x.py: {e}')``, once per nesting
_BUILD_PREFIX = re.compile(r'^(class `[^`]+` in [^:]+\.py: )+')


def one_line(err: BaseException) -> str:
    """The message of ``err`` without mmengine's build prefixes, on one line."""
    msg = _BUILD_PREFIX.sub('', str(err)).strip()
    if isinstance(err, OSError) and err.filename and str(err.filename) not in msg:
        msg = f'{err.filename}: {msg}'
    return ' '.join(msg.split()) or type(err).__name__


def user_errors() -> tuple:
    """The exception types :func:`run_tool` reports as one line."""
    # the project's own error types; OSErrors that name a path (missing file, a file where a directory
    # belongs, permissions) are as clear
    from ..body_models.body_model_file import BodyModelFileError
    from ..body_models.mesh_sampler import MeshSamplingFileError
    from ..datasets.amass_index import MoCapIndexError
    return (MPTUserError, BodyModelFileError, MeshSamplingFileError, MoCapIndexError, FileNotFoundError,
            NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError)


def run_tool(main: Callable[[], Any], prog: Optional[str] = None) -> int:
    """Run ``main()``; a user error (see :func:`user_errors`) becomes one line on stderr and exit 2.

    Returns:
        ``main``'s return value (0 if it returned None), or 2.
    """
    prog = prog or osp.basename(sys.argv[0])
    try:
        rc = main()
    except user_errors() as e:
        if os.environ.get('MPT_DEBUG'):
            raise
        print(f'{prog}: error: {one_line(e)} (MPT_DEBUG=1 shows the traceback)', file=sys.stderr)
        return 2
    return 0 if rc is None else int(rc)


def _int_at_least(text: str, low: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
    if v < low:
        raise argparse.ArgumentTypeError(f'must be >= {low}, got {v}')
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def check_device(device: str) -> str:
    """``device`` if torch can use it here, else :class:`MPTUserError` saying why (a CPU-only torch,
    no GPU visible, a GPU index out of range)."""
    import torch
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise MPTUserError(f'--device {device!r} is not a torch device ({e})') from None
    if dev.type == 'cuda':
        if torch.version.cuda is None:
            raise MPTUserError(f'--device {device}: this torch ({torch.__version__}) is a CPU-only build; '
                               'use --device cpu or install a CUDA build of torch')
        n = torch.cuda.device_count()
        if n == 0:
            raise MPTUserError(f'--device {device}: no GPU is visible (CUDA_VISIBLE_DEVICES='
                               f'{os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")}); use --device cpu')
        if dev.index is not None and dev.index >= n:
            raise MPTUserError(f'--device {device}: only {n} GPU(s) visible')
    elif dev.type not in ('cpu', 'meta'):
        avail = getattr(torch, dev.type, None)
        if avail is None or not getattr(avail, 'is_available', lambda: False)():
            raise MPTUserError(f'--device {device}: no {dev.type} device is available here')
    return device


def check_output_file(path: str, what: str = 'output file', suffixes: Iterable[str] = ()) -> str:
    """An output file path that can be written: not a directory, its suffix one of ``suffixes``."""
    suffixes = tuple(suffixes)
    if suffixes and not path.lower().endswith(suffixes):
        raise MPTUserError(f'{path}: the {what} must end in {" or ".join(suffixes)}')
    if osp.isdir(path):
        raise MPTUserError(f'{path}: the {what} is an existing directory')
    parent = osp.dirname(osp.abspath(path))
    if osp.exists(parent) and not osp.isdir(parent):
        raise MPTUserError(f'{path}: the {what}\'s parent {parent} is a file')
    return path


def check_output_dir(path: str, what: str = 'output directory') -> str:
    """An output directory path: not an existing file (nor under one)."""
    p = osp.abspath(path)
    while p and not osp.exists(p):
        p = osp.dirname(p) if osp.dirname(p) != p else ''
    if p and not osp.isdir(p):
        raise MPTUserError(f'{path}: the {what} is (under) an existing file {p}')
    return path


# ------------------------------------------------------------------------------------------------
# --cfg-options
# ------------------------------------------------------------------------------------------------
class CfgOptionsAction(argparse.Action):
    """mmengine's ``DictAction`` (``key=value`` pairs, lists, tuples) with one clear argparse error for
    an item without ``=`` instead of a traceback."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction
        bad = [v for v in values if '=' not in v or not v.split('=', 1)[0].strip()]
        if bad:
            parser.error(f'{option_string} expects KEY=VALUE pairs, got {" ".join(bad)!r}')
        DictAction(self.option_strings, self.dest)(parser, namespace, values, option_string)


def _leaf_paths(obj: Any, prefix: str = '') -> List[str]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f'{prefix}.{k}' if prefix else str(k)
            out.append(p)
            out.extend(_leaf_paths(v, p))
    return out


def _lookup(cfg: Any, key: str):
    cur = cfg
    for part in key.split('.'):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, (list, tuple)) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise KeyError(key)
    return cur


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return 'bool'
    if isinstance(v, (int, float)):
        return 'number'
    if isinstance(v, (list, tuple)):
        return 'list'
    if isinstance(v, str):
        return 'str'
    if isinstance(v, dict):
        return 'dict'
    return 'other'


def check_cfg_options(cfg: Any, options: Optional[dict], option: str = '--cfg-options') -> None:
    """Refuse ``--cfg-options`` that would silently do the wrong thing.

    * text where the config has a number, list, flag or dict (``hidden_dims=abc``,
      ``max_epochs=two``), or a non-dict for a dict; anything replaces ``None`` or a string, and a
      scalar may replace a list (``num_heads=2``);
    * a new top-level key, or a key under a missing parent, when the config has that name elsewhere
      (``hidden_dims`` for ``model.head.hidden_dims``, ``model.haed.hidden_dims``): most likely a typo
      that would be ignored.

    New keys under existing dicts stay allowed (optional arguments).

    Raises:
        MPTUserError: naming the option, the config's value and what was given.
    """
    if not options:
        return
    cfg = getattr(cfg, '_cfg_dict', cfg)  # mmengine's Config wraps its ConfigDict
    leaves = _leaf_paths(cfg)
    for key, new in options.items():
        try:
            old = _lookup(cfg, key)
        except KeyError:
            parent, _, name = key.rpartition('.')
            try:
                parent_exists = not parent or isinstance(_lookup(cfg, parent), dict)
            except KeyError:
                parent_exists = False
            near = [p for p in leaves if p.rsplit('.', 1)[-1] == name and p != key]
            # a new top-level key, or one under a missing parent, named like an existing key elsewhere
            # is most likely a typo that would be ignored; new keys of existing dicts are arguments
            if near and (not parent or not parent_exists):
                raise MPTUserError(f'{option} {key}=...: the config has no {key!r}, but has '
                                   f'{", ".join(near[:5])}; give the full key') from None
            continue
        ko, kn = _kind(old), _kind(new)
        # text where the config has numbers / lists / flags is what DictAction makes of a typo
        # (hidden_dims=abc, max_epochs=two); a scalar for a list (num_heads=2) is a legitimate form
        if (kn == 'str' and ko in ('number', 'bool', 'list', 'dict')) or (ko == 'dict' and kn != 'dict'):
            example = {'list': ' such as [1, 2]', 'bool': ' (True or False)'}.get(ko, '')
            raise MPTUserError(f'{option} {key}={new!r}: the config\'s value is {old!r} (a {ko}); give a '
                               f'{ko}{example}')
