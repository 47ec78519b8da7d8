// Checkpoints and arrays as NumPy .npz files, readable with numpy.load.
//
// An .npz is a zip archive of .npy files, one per named array ("<name>.npy").
// The zip container is libzip's: entries "stored" (no compression), with ZIP64
// records wherever an entry, an offset or the archive passes 4 GiB, so
// checkpoints of any size work. Each entry is NPY format version 1.0: the
// magic "\x93NUMPY", version 1 0, a 16-bit header length, then a Python dict
// literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and a final '\n' so that the data starts at a multiple of
// 64 bytes, then the elements in C order, little-endian.
//
// Reading accepts what numpy.savez and numpy.savez_compressed write (NPY
// versions 1.0 to 3.0, stored or deflated entries, ZIP64 or not), checks
// every CRC and every size, and throws std::runtime_error naming the file and
// the entry for anything wrong with the file; errors in the caller's arguments
// throw std::invalid_argument.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace engine {

// One array as a .npy file holds it.
struct NpyArray {
  std::string descr;  // NumPy dtype: "<f4", "<f8", "<i8", "|u1", "|b1", ...
  Shape shape;        // C order; {} is a 0-d array (one element)
  std::vector<uint8_t> bytes;  // numel * itemsize little-endian bytes
  // Where it came from, for messages: "FILE: entry 'NAME'" when read_npz
  // made it, else empty.
  std::string origin{};
};

using NamedArrays = std::vector<std::pair<std::string, NpyArray>>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// float32 -> "<f4", float64 -> "<f8"; copied to the host from any device.
NpyArray to_npy(const Tensor& tensor);
// Integers such as labels -> "<i8" of the given shape.
NpyArray to_npy(const Shape& shape, std::span<const int64_t> values);

// Writes the arrays, in this order, atomically: libzip writes a temporary file
// beside `path` and renames it (as engine/io.h does). Names must be unique and
// non-empty; they may contain dots ("features.0.running_mean").
void save_npz(const std::filesystem::path& path, const NamedArrays& arrays);
void save_npz(const std::filesystem::path& path, const NamedTensors& tensors);

// Every array of the file, in file order, with ".npy" taken off the names.
// Supported dtypes: little-endian bool, signed and unsigned integers, floats.
NamedArrays read_npz(const std::filesystem::path& path);

// "<f4" -> a float32 and "<f8" -> a float64 CPU tensor; other dtypes throw
// std::invalid_argument naming the array's origin (file and entry).
Tensor to_tensor(const NpyArray& array);
// Any bool or integer dtype -> int64 values in C order ("<u8" above INT64_MAX
// throws); errors name the array's origin.
std::vector<int64_t> to_int64(const NpyArray& array);

// Copies the file's arrays into the destination tensors (any device), matched
// by name. Everything is checked before anything is written, so on any error
// the destination is unchanged: every name must be in the file, with the
// tensor's shape and exactly its dtype (float32 <-> "<f4", float64 <-> "<f8";
// no silent conversion). Entries of the file that no destination names are an
// error unless allow_unused.
void load_into(const std::filesystem::path& path, const NamedTensors& destination,
               bool allow_unused = false);

}  // namespace engine
