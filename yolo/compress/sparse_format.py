"""The sparse model file of METHODS.md: cfg text + per tensor dense or bitmask+values.

Its size is what the platform reports as ``storage_mb`` for a pruned model, so the layout is
small and explicit rather than a pickle: for every tensor of the state dict, whichever is
smaller of (a) the dense values or (b) a bitmask of non-zero positions plus the non-zero
values. Floating values are fp32, or fp16 when asked (``half=True``).

Layout (little endian)::

    b"YCTSPARSE" u8 version
    u32 len + cfg text (utf-8)
    u32 number of tensors, then per tensor:
        u16 len + name, u8 dtype code, u8 ndim, u32 * ndim shape, u8 encoding (0 dense, 1 mask)
        dense:  numel * itemsize bytes
        mask:   u32 nnz, ceil(numel / 8) bytes of packed bits, nnz * itemsize value bytes
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import torch

MAGIC = b"YCTSPARSE"
VERSION = 1
DENSE, BITMASK = 0, 1

# code -> (torch dtype, numpy dtype); floats may be stored as fp16 and restored as fp32
_DTYPES: dict[int, tuple[torch.dtype, np.dtype]] = {
    0: (torch.float32, np.dtype("<f4")),
    1: (torch.float16, np.dtype("<f2")),
    2: (torch.int64, np.dtype("<i8")),
    3: (torch.int32, np.dtype("<i4")),
    4: (torch.bool, np.dtype("bool")),
}
_CODES = {dtype: code for code, (dtype, _) in _DTYPES.items()}


def _pack_tensor(out: io.BytesIO, name: str, tensor: torch.Tensor, half: bool) -> None:
    tensor = tensor.detach().cpu().contiguous()
    original = tensor.dtype
    if original not in _CODES:
        raise TypeError(f"sparse format: tensor '{name}' has unsupported dtype {original}")
    stored = torch.float16 if half and original == torch.float32 else original
    code = _CODES[stored]
    values = tensor.to(stored).numpy().astype(_DTYPES[code][1], copy=False).reshape(-1)
    encoded_name = name.encode("utf-8")
    out.write(struct.pack("<H", len(encoded_name)) + encoded_name)
    # the original dtype is restored on load; the stored one only sets the item size
    out.write(struct.pack("<BBB", _CODES[original], code, tensor.dim()))
    out.write(struct.pack(f"<{tensor.dim()}I", *tensor.shape))
    nonzero = values != 0
    nnz = int(nonzero.sum())
    dense_size = values.nbytes
    mask_size = 4 + (values.size + 7) // 8 + nnz * values.itemsize
    if mask_size < dense_size:
        out.write(struct.pack("<BI", BITMASK, nnz))
        out.write(np.packbits(nonzero).tobytes())
        out.write(values[nonzero].tobytes())
    else:
        out.write(struct.pack("<B", DENSE))
        out.write(values.tobytes())


def encode(cfg_text: str, state_dict: dict[str, torch.Tensor], *, half: bool = False) -> bytes:
    """Serialise a model (cfg text + state dict) to the sparse format."""
    out = io.BytesIO()
    cfg = cfg_text.encode("utf-8")
    out.write(MAGIC + struct.pack("<B", VERSION))
    out.write(struct.pack("<I", len(cfg)) + cfg)
    out.write(struct.pack("<I", len(state_dict)))
    for name, tensor in state_dict.items():
        _pack_tensor(out, name, tensor, half)
    return out.getvalue()


class _Reader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError(f"{self.source}: sparse file truncated at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def decode(data: bytes, source: str = "<sparse>") -> tuple[str, dict[str, torch.Tensor]]:
    """Inverse of :func:`encode`: (cfg text, state dict)."""
    reader = _Reader(data, source)
    if reader.take(len(MAGIC)) != MAGIC:
        raise ValueError(f"{source}: not a yct sparse model file (bad magic bytes)")
    (version,) = reader.unpack("<B")
    if version != VERSION:
        raise ValueError(f"{source}: sparse format version {version}; this build reads {VERSION}")
    (cfg_len,) = reader.unpack("<I")
    cfg_text = reader.take(cfg_len).decode("utf-8")
    (count,) = reader.unpack("<I")
    state: dict[str, torch.Tensor] = {}
    for _ in range(count):
        (name_len,) = reader.unpack("<H")
        name = reader.take(name_len).decode("utf-8")
        original, code, ndim = reader.unpack("<BBB")
        if original not in _DTYPES or code not in _DTYPES:
            raise ValueError(f"{source}: tensor '{name}' has an unknown dtype code")
        shape = reader.unpack(f"<{ndim}I") if ndim else ()
        numel = int(np.prod(shape)) if shape else 1
        np_dtype = _DTYPES[code][1]
        (encoding,) = reader.unpack("<B")
        if encoding == DENSE:
            values = np.frombuffer(reader.take(numel * np_dtype.itemsize), dtype=np_dtype)
        elif encoding == BITMASK:
            (nnz,) = reader.unpack("<I")
            bits = np.frombuffer(reader.take((numel + 7) // 8), dtype=np.uint8)
            mask = np.unpackbits(bits, count=numel).astype(bool)
            values = np.zeros(numel, dtype=np_dtype)
            values[mask] = np.frombuffer(reader.take(nnz * np_dtype.itemsize), dtype=np_dtype)
        else:
            raise ValueError(f"{source}: tensor '{name}' has unknown encoding {encoding}")
        tensor = torch.from_numpy(values.copy()).reshape(shape)
        state[name] = tensor.to(_DTYPES[original][0])
    if reader.pos != len(data):
        raise ValueError(
            f"{source}: {len(data) - reader.pos} unexpected bytes after the last tensor"
        )
    return cfg_text, state


def write(
    path: str | Path, cfg_text: str, state_dict: dict[str, torch.Tensor], *, half: bool = False
) -> int:
    """Write the sparse file; returns its size in bytes."""
    data = encode(cfg_text, state_dict, half=half)
    Path(path).write_bytes(data)
    return len(data)


def read(path: str | Path) -> tuple[str, dict[str, torch.Tensor]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sparse model file not found: {path}")
    return decode(path.read_bytes(), source=str(path))
