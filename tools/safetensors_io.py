# SPDX-License-Identifier: MIT
"""Minimal safetensors reader/writer plus BF16 and F8_E4M3 (fn) codecs in numpy.

Used only by tools/reference.py and tools/make_cases.py to make test data.
Debian's torch 1.13 has no float8 dtype and there may be no `safetensors`
package, so the format is handled by hand:
  u64 little-endian header length N | N bytes of JSON header | data buffer.
Header: {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}
with offsets relative to the start of the data buffer.
"""

import json
import os
import struct

import numpy as np

# dtype name -> (bytes per element, numpy storage dtype)
DTYPES = {
    "F32": (4, np.dtype("<f4")),
    "F16": (2, np.dtype("<f2")),
    "BF16": (2, np.dtype("<u2")),
    "F8_E4M3": (1, np.dtype("u1")),
}

# ---------------------------------------------------------------- BF16


def bf16_encode(x):
    """float32 array -> uint16 BF16 bits, round to nearest even (NaN stays NaN)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    out = rounded.astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)  # keep a quiet NaN
    return out


def bf16_decode(bits):
    """uint16 BF16 bits -> float32 (exact: BF16 is the upper half of float32)."""
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


# ---------------------------------------------------------------- F8_E4M3 (fn)
# 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits. No infinities;
# 0x7f and 0xff are NaN; largest finite magnitude 448 (0x7e); subnormals
# (exponent field 0) are m * 2^-9.


def f8e4m3_decode(bits):
    """uint8 F8_E4M3 bits -> float32."""
    b = np.asarray(bits, dtype=np.uint8).astype(np.int32)
    s = (b >> 7) & 1
    e = (b >> 3) & 0xF
    m = b & 7
    mag = np.where(e == 0, m * 2.0 ** -9, (1.0 + m / 8.0) * np.exp2(e - 7.0))
    mag = np.where((e == 15) & (m == 7), np.nan, mag)
    return np.where(s == 1, -mag, mag).astype(np.float32)


# the 127 non-negative finite values, in code order (which is value order)
_F8_POS = f8e4m3_decode(np.arange(0x7F, dtype=np.uint8)).astype(np.float64)


def f8e4m3_encode(x):
    """float32 array -> uint8 F8_E4M3 bits.

    Round to nearest, ties to the even code; magnitudes above 448 saturate to
    448 (as torch's float8_e4m3fn cast does for the block-scaled weights, whose
    values are within range by construction); NaN -> 0x7f.
    """
    x = np.asarray(x, dtype=np.float32)
    a = np.abs(x).astype(np.float64)
    hi = np.clip(np.searchsorted(_F8_POS, a, side="left"), 0, 126)
    lo = np.clip(hi - 1, 0, 126)
    dlo = a - _F8_POS[lo]
    dhi = _F8_POS[hi] - a
    pick_hi = (dhi < dlo) | ((dhi == dlo) & (hi % 2 == 0))
    code = np.where(pick_hi, hi, lo)
    code = np.where(a >= 448.0, 126, code)
    code = code.astype(np.uint8) | (np.signbit(x).astype(np.uint8) << 7)
    code = np.where(np.isnan(x), np.uint8(0x7F), code)
    return code.astype(np.uint8)


# ---------------------------------------------------------------- files


def read_safetensors(path):
    """Read one .safetensors file -> (dict name -> (dtype str, numpy array of raw storage), metadata).

    Storage arrays: F32 float32, F16 float16, BF16 uint16 bits, F8_E4M3 uint8 bits.
    Checks every offset against the file size.
    """
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} beyond file size {len(blob)}")
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n :]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        size, npdt = DTYPES[dt]
        shape = [int(d) for d in info["shape"]]
        begin, end = (int(v) for v in info["data_offsets"])
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end <= len(data)) or end - begin != count * size:
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {begin},{end}")
        arr = np.frombuffer(data[begin:end], dtype=npdt).reshape(shape).copy()
        out[name] = (dt, arr)
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Write dict name -> (dtype str, numpy storage array) to path.

    Tensors are laid out by element size (largest first), then by name, so every
    tensor starts at a multiple of its element size; the header is padded with
    spaces to a multiple of 8 bytes (as the reference implementation does), so
    the data buffer is 8-byte aligned in the file.
    """
    order = sorted(tensors, key=lambda k: (-DTYPES[tensors[k][0]][0], k))
    header = {}
    chunks = []
    off = 0
    for name in order:
        dt, arr = tensors[name]
        size, npdt = DTYPES[dt]
        raw = np.ascontiguousarray(arr, dtype=npdt).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    full = {"__metadata__": dict(metadata or {"format": "pt"})}
    full.update(header)
    hjson = json.dumps(full, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for c in chunks:
            f.write(c)
    return off


def to_float32(dt, arr):
    """Raw storage array of dtype name dt -> float32 numpy array."""
    if dt == "F32":
        return arr.astype(np.float32)
    if dt == "F16":
        return arr.astype(np.float32)
    if dt == "BF16":
        return bf16_decode(arr)
    if dt == "F8_E4M3":
        return f8e4m3_decode(arr)
    raise ValueError(f"unsupported dtype {dt}")


def read_model_dir(path):
    """All tensors of an HF model directory -> dict name -> (dtype str, storage array).

    Reads model.safetensors.index.json (weight_map) when present, else model.safetensors.
    """
    idx = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wmap = json.load(f)["weight_map"]
        files = sorted(set(wmap.values()))
        out = {}
        for fn in files:
            part, _ = read_safetensors(os.path.join(path, fn))
            for name, v in part.items():
                if wmap.get(name) != fn:
                    raise ValueError(f"{fn}: tensor {name} not mapped to this shard in the index")
                out[name] = v
        missing = set(wmap) - set(out)
        if missing:
            raise ValueError(f"index names tensors missing from shards: {sorted(missing)[:3]}")
        return out
    out, _ = read_safetensors(os.path.join(path, "model.safetensors"))
    return out
