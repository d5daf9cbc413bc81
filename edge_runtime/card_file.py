"""Rewrite the model card inside an ONNX file without the onnx package.

An ONNX file is one serialized ``ModelProto``. Its field 14 is the repeated ``metadata_props``
(``StringStringEntryProto``: field 1 key, field 2 value). Rewriting the card means walking the
message's top-level fields, dropping the entries under the card key, and appending a new one:
the weights and the graph are copied byte for byte. The result is written beside the target and
renamed into place only after onnxruntime has opened it and read the new card back.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_runtime.card import CARD_KEY, ModelCard, card_from_metadata
from edge_runtime.errors import ModelCardError, ModelLoadError
from edge_runtime.files import atomic_path, check_writable, same_file

METADATA_PROPS = 14  # ModelProto.metadata_props
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _read_varint(data: bytes, pos: int, source: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            msg = f"{source}: truncated ONNX file (a varint runs past the end)"
            raise ModelLoadError(msg)
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            msg = f"{source}: not an ONNX file (a varint longer than 10 bytes)"
            raise ModelLoadError(msg)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fields(data: bytes, source: str = "model") -> list[tuple[int, int, int, int]]:
    """Top-level fields of a serialized message: (number, wire type, start, end) byte spans, in order.

    For length-delimited fields ``start``..``end`` covers the whole field (tag, length, payload).
    """
    out = []
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _read_varint(data, pos, source)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            msg = f"{source}: not an ONNX file (field number 0 at byte {start})"
            raise ModelLoadError(msg)
        if wire == _VARINT:
            _, pos = _read_varint(data, pos, source)
        elif wire == _I64:
            pos += 8
        elif wire == _I32:
            pos += 4
        elif wire == _LEN:
            size, pos = _read_varint(data, pos, source)
            pos += size
        else:
            msg = f"{source}: not an ONNX file (wire type {wire} at byte {start})"
            raise ModelLoadError(msg)
        if pos > len(data):
            msg = f"{source}: truncated ONNX file (field {number} at byte {start} runs past the end)"
            raise ModelLoadError(msg)
        out.append((number, wire, start, pos))
    return out


def _payload(data: bytes, start: int, source: str) -> bytes:
    _, pos = _read_varint(data, start, source)
    size, pos = _read_varint(data, pos, source)
    return data[pos : pos + size]


def _entry_key(entry: bytes, source: str) -> str | None:
    for number, wire, start, _ in fields(entry, source):
        if number == 1 and wire == _LEN:
            return _payload(entry, start, source).decode("utf-8", errors="replace")
    return None


def _length_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def replace_metadata(data: bytes, key: str, value: str, source: str = "model") -> bytes:
    """``data`` (a serialized ModelProto) with every metadata entry under ``key`` replaced by one holding ``value``."""
    kept = bytearray()
    for number, wire, start, end in fields(data, source):
        if number == METADATA_PROPS and wire == _LEN and _entry_key(_payload(data, start, source), source) == key:
            continue
        kept += data[start:end]
    entry = _length_field(1, key.encode("utf-8")) + _length_field(2, value.encode("utf-8"))
    return bytes(kept) + _length_field(METADATA_PROPS, entry)


def read_card(path: str | Path) -> ModelCard:
    """The card of an ONNX file, read through onnxruntime (the file must load)."""
    import onnxruntime as ort

    source = str(path)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = f"{source}: not a loadable ONNX model ({first})"
        raise ModelLoadError(msg) from None
    return card_from_metadata(session.get_modelmeta().custom_metadata_map, source)


def write_card(model: str | Path, card: ModelCard, out: str | Path | None = None, overwrite: bool = True) -> Path:
    """Write ``model`` with ``card`` to ``out`` (default: replace ``model``), atomically; unless ``overwrite``, an
    existing ``out`` other than ``model`` is refused.

    The new file is checked by opening it with onnxruntime and reading the card back before it
    is renamed into place; a failed check leaves every file as it was.
    """
    import onnxruntime as ort

    src = Path(model)
    dst = Path(out) if out is not None else src
    card.validate(str(dst))
    try:
        data = src.read_bytes()
    except OSError as e:
        msg = f"{src}: cannot read the model ({e.strerror})"
        raise ModelLoadError(msg) from None
    new = replace_metadata(data, CARD_KEY, card.to_json(), str(src))
    check_writable(dst)
    mode = dst.stat().st_mode & 0o777 if dst.exists() else None  # a recalibrated model keeps its mode
    with atomic_path(dst, mode=mode, overwrite=overwrite or same_file(dst, src)) as tmp:
        with open(tmp, "wb") as f:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
        try:
            session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            got = session.get_modelmeta().custom_metadata_map.get(CARD_KEY)
        except Exception as e:  # the rewrite broke the file: never put it in place
            msg = f"{dst}: the rewritten model does not load ({str(e).strip().splitlines()[0]}); nothing was written"
            raise ModelCardError(msg) from None
        if got != card.to_json():
            msg = f"{dst}: the rewritten model does not carry the new card; nothing was written"
            raise ModelCardError(msg)
    return dst
