"""Plain data: the only thing that crosses from the sandbox to a verdict.

`plain_encode`/`plain_decode` are JSON with tagged containers, so tuples, sets, dicts with non-string keys, bytes,
inf, nan, Fraction and Decimal survive, and numpy arrays and scalars stay numpy (so `==` against a list behaves as
in the references, which compare the real object). Decoding builds only those types (an object "equal to
everything" cannot cross), refuses keys built to collide, and stops at its deadline.

The same source runs on both sides: `_CODEC` is executed here and shipped, as text, at the head of the in-sandbox
server (`server.py`), so it must import only the stdlib.

>>> plain_decode(plain_encode({(1, 2): {3}, "x": b"\\x00"}))
{(1, 2): {3}, 'x': b'\\x00'}
"""

from __future__ import annotations

from typing import Any


_CODEC = r'''
import base64 as _b64
import sys as _sys
import time as _time

_NUMPY_KINDS = "biufcmMUS"  # numbers, bools, dates, strings: rebuilt from their bytes; "O" items one by one
_MAX_SAME_HASH = 64  # distinct keys sharing one hash in a set/dict: more is an attack on the table, not data


def _numpy_for(value):
    np = _sys.modules.get("numpy")
    return np if np is not None and isinstance(value, (np.ndarray, np.generic)) else None


def plain_encode(value, _depth=0):
    """A JSON-able form of built-in data, numpy values, Fraction and Decimal; subclasses are read through their
    base type's own methods (an overridden __eq__ does not cross)."""
    if _depth > 200:
        raise ValueError("nested too deeply")
    if value is None or value is True or value is False:
        return value
    t = type(value)
    np = _numpy_for(value)
    if np is not None:  # kept as numpy, so the comparison sees what the reference's would (an array vs a list)
        tag = "ns" if isinstance(value, np.generic) else "na"
        arr = np.asarray(value)
        if arr.dtype.kind in _NUMPY_KINDS and arr.dtype.fields is None and arr.dtype.subdtype is None:
            raw = _b64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()
            return [tag, arr.dtype.str, list(arr.shape), raw]
        if arr.dtype.kind == "O":
            return [tag + "o", list(arr.shape), [plain_encode(v, _depth + 1) for v in arr.ravel().tolist()]]
        raise TypeError(f"not plain data: numpy {arr.dtype}")
    fractions, decimal = _sys.modules.get("fractions"), _sys.modules.get("decimal")
    if fractions is not None and isinstance(value, fractions.Fraction):  # exact numbers, compared as exact numbers
        return ["fr", int.__int__(value.numerator), int.__int__(value.denominator)]
    if decimal is not None and isinstance(value, decimal.Decimal):
        return ["dec", decimal.Decimal.__str__(value)]
    if isinstance(value, bool):
        return bool.__bool__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return ["s", str.__str__(value)]
    if isinstance(value, complex):
        return ["c", complex.__getattribute__(value, "real"), complex.__getattribute__(value, "imag")]
    if isinstance(value, (bytes, bytearray)):
        return ["b", bytes(value).hex()]
    if isinstance(value, list):
        return ["l", [plain_encode(v, _depth + 1) for v in list.__iter__(value)]]
    if isinstance(value, tuple):
        return ["t", [plain_encode(v, _depth + 1) for v in tuple.__iter__(value)]]
    if isinstance(value, frozenset):
        return ["f", [plain_encode(v, _depth + 1) for v in frozenset.__iter__(value)]]
    if isinstance(value, set):
        return ["e", [plain_encode(v, _depth + 1) for v in set.__iter__(value)]]
    if isinstance(value, dict):
        return ["d", [[plain_encode(k, _depth + 1), plain_encode(v, _depth + 1)] for k, v in dict.items(value)]]
    raise TypeError(f"not plain data: {t.__name__}")


def _check_hashes(keys):
    """Refuse keys built to collide: many distinct keys with one hash make each insertion walk the same chain
    (quadratic time). Sorting the hashes costs n log n whatever they are."""
    hashes = sorted(hash(k) for k in keys)
    run = 1
    for a, b in zip(hashes, hashes[1:]):
        run = run + 1 if a == b else 1
        if run > _MAX_SAME_HASH:
            raise ValueError(f"not plain data: more than {_MAX_SAME_HASH} keys share one hash")


def _numpy_decode(tag, rest, deadline, depth):
    try:
        import numpy as np
    except ImportError:
        raise ValueError("not plain data: a numpy value, and numpy is not installed here") from None
    if tag in ("na", "ns"):
        if len(rest) != 3 or type(rest[0]) is not str or type(rest[1]) is not list or type(rest[2]) is not str:
            raise ValueError("not plain data: numpy value")
        try:
            dtype = np.dtype(rest[0])
        except (TypeError, ValueError):
            raise ValueError("not plain data: numpy dtype") from None
        if dtype.kind not in _NUMPY_KINDS or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.itemsize == 0:  # numpy itself never makes a zero-width array: a forged one
            raise ValueError("not plain data: numpy dtype")
        shape = rest[1]
    else:
        if len(rest) != 2 or type(rest[0]) is not list or type(rest[1]) is not list:
            raise ValueError("not plain data: numpy value")
        dtype, shape = np.dtype(object), rest[0]
    if len(shape) > 32 or not all(type(n) is int and 0 <= n < 1 << 40 for n in shape):
        raise ValueError("not plain data: numpy shape")
    if tag[1] == "s" and shape:
        raise ValueError("not plain data: numpy scalar with a shape")
    count = 1
    for n in shape:
        count *= n
    if tag in ("na", "ns"):
        raw = _b64.b64decode(rest[2].encode(), validate=True)
        if len(raw) != count * dtype.itemsize:
            raise ValueError("not plain data: numpy size")
        flat = np.frombuffer(raw, dtype).copy()
    else:
        if len(rest[1]) != count:
            raise ValueError("not plain data: numpy size")
        flat = np.empty(count, dtype=object)
        for i, item in enumerate(rest[1]):
            flat[i] = plain_decode(item, deadline, depth + 1)
    arr = flat.reshape(shape)
    return arr[()] if tag[1] == "s" else arr


def plain_decode(data, deadline=None, _depth=0):
    """Built-in values (and numpy values) from `plain_encode`'s form; anything else raises ValueError, as does
    running past `deadline` (time.monotonic()) or keys built to collide."""
    if _depth > 200:
        raise ValueError("nested too deeply")
    if data is None or type(data) in (bool, int, float):
        return data
    if type(data) is not list or not data or type(data[0]) is not str:
        raise ValueError(f"not plain data: {type(data).__name__}")
    if deadline is not None and _time.monotonic() > deadline:
        raise ValueError("not plain data: decoding ran past its deadline")
    tag, rest = data[0], data[1:]
    if tag == "s" and len(rest) == 1 and type(rest[0]) is str:
        return rest[0]
    if tag == "c" and len(rest) == 2 and all(type(x) in (int, float) for x in rest):
        return complex(rest[0], rest[1])
    if tag == "b" and len(rest) == 1 and type(rest[0]) is str:
        return bytes.fromhex(rest[0])
    if tag in ("na", "ns", "nao", "nso"):
        return _numpy_decode(tag, rest, deadline, _depth)
    if tag == "fr" and len(rest) == 2 and type(rest[0]) is int and type(rest[1]) is int and rest[1] > 0:
        from fractions import Fraction
        return Fraction(rest[0], rest[1])
    if tag == "dec" and len(rest) == 1 and type(rest[0]) is str and len(rest[0]) < 10_000:
        from decimal import Decimal, InvalidOperation
        try:
            return Decimal(rest[0])
        except InvalidOperation:
            raise ValueError("not plain data: decimal") from None
    if len(rest) != 1 or type(rest[0]) is not list:
        raise ValueError(f"not plain data: tag {tag!r}")
    items = rest[0]
    if tag == "d":
        if not all(type(p) is list and len(p) == 2 for p in items):
            raise ValueError("not plain data: dict items")
        pairs = [(plain_decode(k, deadline, _depth + 1), plain_decode(v, deadline, _depth + 1)) for k, v in items]
        _check_hashes(k for k, _ in pairs)
        return dict(pairs)
    values = [plain_decode(v, deadline, _depth + 1) for v in items]
    kinds = {"l": list, "t": tuple, "f": frozenset, "e": set}
    if tag not in kinds:
        raise ValueError(f"not plain data: tag {tag!r}")
    if tag in ("f", "e"):
        _check_hashes(values)
    return kinds[tag](values)
'''
_codec: dict[str, Any] = {}
exec(compile(_CODEC, __name__ + "._CODEC", "exec"), _codec)  # one source for the harness and the server
plain_encode = _codec["plain_encode"]
plain_decode = _codec["plain_decode"]
