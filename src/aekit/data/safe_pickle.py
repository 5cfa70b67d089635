"""A restricted unpickler for the pickled datasets (CIFAR-10's batches, MNIST's ``mnist.pkl.gz``).

A pickle is a program: the standard ``pickle.load`` will call any importable
function it names, so loading one from the internet can run anything. This
unpickler resolves exactly the names numpy's array pickles use
(``_reconstruct``, ``ndarray``, ``dtype``, and ``_codecs.encode`` for bytes,
limited to latin-1) and refuses every other, so the
result can only be built from numpy arrays and plain containers (dicts,
lists, tuples, bytes, str, int, float). Object arrays are refused too, and so
is nesting deeper than :data:`aekit.limits.PICKLE_DEPTH`; the check visits each
container once, however often the pickle refers to it.
"""

from __future__ import annotations

import io
import pickle

import numpy as np

from aekit import limits
from aekit.errors import DataError

# numpy's own reconstructor, under both module names it has pickled with (numpy 2 renamed core to _core).
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """How Python 3 pickles ``bytes`` at protocol 2 (``_codecs.encode(text, "latin1")``), and only that."""
    if encoding != "latin1":
        raise _Refused(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


_ALLOWED = {
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _Refused(Exception):
    pass


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def loads(data: bytes, where: str):
    """Unpickle ``data`` allowing only numpy arrays and plain containers.

    Python 2 pickles (as both of these datasets are) are read with
    ``latin1``, so their byte strings come back as ``str``.

    Raises
    ------
    DataError
        The pickle names anything else, holds an object array, or is corrupt;
        the message names ``where``.
    """
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except _Refused as e:
        raise DataError(f"{where}: refused to unpickle: it calls {e}, and only numpy arrays are allowed") from None
    except Exception as e:  # a corrupt pickle raises almost anything; all of it is the file's fault
        raise DataError(f"{where}: corrupt pickle ({type(e).__name__}: {e})") from None
    _check_no_objects(obj, where)
    return obj


def _check_no_objects(obj, where: str) -> None:
    """Refuse arrays of Python objects, and containers nested deeper than plain data ever is.

    A pickle can hold one list many times over (its memo shares references): a list
    of two references to a list of two references, forty levels down, is 2**40 visits
    for a walk that does not remember what it has seen, and a list may even hold
    itself. Each container is visited once, so the walk is linear in the pickle's size.
    """
    seen: set[int] = set()
    stack = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, np.ndarray) and item.dtype.hasobject:
            raise DataError(f"{where}: refused to unpickle: it holds an array of Python objects")
        if not isinstance(item, (dict, list, tuple)) or id(item) in seen:
            continue
        if depth >= limits.PICKLE_DEPTH:
            raise DataError(f"{where}: refused to unpickle: containers nested more than {limits.PICKLE_DEPTH} "
                            "deep, which no dataset needs")
        seen.add(id(item))
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
