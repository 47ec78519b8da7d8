#!/usr/bin/env python3
"""Prints the name, dtype and shape of every array of .npz files.

With numpy installed it opens them with numpy.load (the real test of
compatibility); without, it checks them with the standard library the way
numpy.lib.format does: zip CRCs, the NPY magic, the header dict and its
64-byte alignment, and the data size. Exit status 1 on any problem.

usage: scripts/check_npz.py FILE.npz [FILE.npz ...]
"""
import ast
import struct
import sys
import zipfile

SIZES = {"b1": 1, "i1": 1, "u1": 1, "i2": 2, "u2": 2, "f2": 2, "i4": 4, "u4": 4,
         "f4": 4, "i8": 8, "u8": 8, "f8": 8}


def arrays_with_numpy(path):
    import numpy
    with numpy.load(path) as archive:
        return [(name, archive[name].dtype.str, archive[name].shape) for name in archive.files]


def arrays_with_stdlib(path):
    result = []
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()  # reads every entry and checks its CRC
        if bad is not None:
            raise ValueError(f"{bad}: CRC mismatch")
        for info in archive.infolist():
            data = archive.read(info)
            if data[:6] != b"\x93NUMPY":
                raise ValueError(f"{info.filename}: bad magic")
            major = data[6]
            length_format, start = ("<H", 10) if major == 1 else ("<I", 12)
            (length,) = struct.unpack(length_format, data[8:start])
            if (start + length) % 64 != 0 or data[start + length - 1:start + length] != b"\n":
                raise ValueError(f"{info.filename}: header not padded to 64 bytes with a final newline")
            header = ast.literal_eval(data[start:start + length].decode("latin1"))
            if set(header) != {"descr", "fortran_order", "shape"} or header["fortran_order"]:
                raise ValueError(f"{info.filename}: unexpected header {header}")
            count = 1
            for dim in header["shape"]:
                count *= dim
            if len(data) - start - length != count * SIZES[header["descr"][1:]]:
                raise ValueError(f"{info.filename}: data size does not match {header}")
            result.append((info.filename.removesuffix(".npy"), header["descr"], header["shape"]))
    return result


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) == 2 else 2
    try:
        import numpy  # noqa: F401
        reader, how = arrays_with_numpy, "numpy.load"
    except ImportError:
        reader, how = arrays_with_stdlib, "standard library (numpy not installed)"
    status = 0
    for path in sys.argv[1:]:
        try:
            arrays = reader(path)
        except Exception as error:  # report every file, then fail
            print(f"{path}: {error}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: {len(arrays)} arrays, read with {how}")
        for name, dtype, shape in arrays:
            print(f"  {name} {dtype} {shape}")
    return status


if __name__ == "__main__":
    sys.exit(main())
