"""Reading idx files, the MNIST format that Fashion-MNIST ships in."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

# The idx format's third magic byte names the element type; all are big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: Path) -> np.ndarray:
    """The array in an idx file (the MNIST format), gzip-compressed when its name ends in .gz."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: header {data[:4].hex()} is not an idx magic number; expected 0000 then a "
            f"type byte ({', '.join(f'{t:02x}' for t in _IDX_DTYPES)}) and the number of "
            f"dimensions. Re-download or reinstall the file."
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path}: ends after {len(data)} bytes, inside its header of {header} bytes; the "
            f"file is truncated: re-download or reinstall it."
        )
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: {len(data)} bytes; its header promises shape {shape} of {dtype}, "
            f"{expected} bytes. The file is truncated or corrupt: re-download or reinstall it."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
