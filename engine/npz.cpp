#include "engine/npz.h"

#include <zip.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>

#include "engine/io.h"
#include "engine/printable.h"

namespace engine {

// .npy stores little-endian data, which we copy byte for byte.
static_assert(std::endian::native == std::endian::little, "npz: little-endian host assumed");

namespace {

namespace fs = std::filesystem;

// ---- dtypes -----------------------------------------------------------------------

// A NumPy dtype string of the supported kinds, e.g. "<f4": byte order, kind
// (b bool, i int, u uint, f float), itemsize in bytes.
struct DtypeCode {
  char kind = 0;
  size_t itemsize = 0;
};

// The dtype code of a supported descr; nullopt for anything else.
std::optional<DtypeCode> parse_descr(const std::string& descr) {
  // '|' means "byte order not applicable"; NumPy accepts it, and '<', for any size.
  if (descr.size() != 3 || (descr[0] != '<' && descr[0] != '|')) return std::nullopt;
  const DtypeCode code{descr[1], static_cast<size_t>(descr[2] - '0')};
  const bool valid_size = code.itemsize == 1 || code.itemsize == 2 || code.itemsize == 4 ||
                          code.itemsize == 8;
  const bool valid = code.kind == 'b'   ? code.itemsize == 1
                     : code.kind == 'f' ? valid_size && code.itemsize >= 2
                                        : (code.kind == 'i' || code.kind == 'u') && valid_size;
  if (!valid) return std::nullopt;
  return code;
}

// The spelling numpy itself writes: '|' for one-byte types, '<' otherwise.
std::string canonical_descr(const DtypeCode& code) {
  return std::string(1, code.itemsize == 1 ? '|' : '<') + code.kind + std::to_string(code.itemsize);
}

// "float32 ('<f4')" for messages.
std::string describe_descr(const std::string& descr) {
  const auto code = parse_descr(descr);
  if (!code) return "'" + descr + "'";
  const std::string bits = std::to_string(8 * code->itemsize);
  const std::string name = code->kind == 'b' ? "bool"
                           : code->kind == 'i' ? "int" + bits
                           : code->kind == 'u' ? "uint" + bits
                                              : "float" + bits;
  return name + " ('" + descr + "')";
}

std::string descr_of(DType dtype) { return dtype == DType::f32 ? "<f4" : "<f8"; }

// numel * itemsize when it equals `available`, checked without overflow: the
// running product only grows (all dimensions >= 1 once a zero is ruled out).
bool size_matches(const Shape& shape, size_t itemsize, uint64_t available) {
  for (int64_t d : shape)
    if (d == 0) return available == 0;
  uint64_t bytes = itemsize;
  for (int64_t d : shape) {
    if (d < 0 || static_cast<uint64_t>(d) > available / bytes) return false;
    bytes *= static_cast<uint64_t>(d);
  }
  return bytes == available;
}

// "needs 24 bytes" for messages about a shape whose data has the wrong size.
std::string needed_bytes(const Shape& shape, size_t itemsize) {
  uint64_t bytes = itemsize;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes))
      return "needs an impossible size";
  return "needs " + std::to_string(bytes);
}

// 'name' for messages: text from the file, made printable.
std::string in_quotes(const std::string& name) {
  std::string out = "'";  // built by appending: "'" + string trips GCC 12's -Wrestrict
  out += printable(name);
  return out += '\'';
}

// ---- little-endian fields -------------------------------------------------------

void put_u16(std::string& out, uint64_t v) {
  for (int i = 0; i < 2; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// Bounds-checked reads from a whole file or one entry (`scope`); `context`
// opens every error message.
class ByteView {
 public:
  ByteView(std::span<const char> bytes, std::string context, std::string scope = "file")
      : bytes_(bytes), context_(std::move(context)), scope_(std::move(scope)) {}

  size_t size() const { return bytes_.size(); }
  const std::string& context() const { return context_; }

  std::span<const char> range(uint64_t at, uint64_t count, const std::string& what) const {
    if (at > bytes_.size() || count > bytes_.size() - at)
      fail(what + " runs past the end of the " + scope_ + " (" + std::to_string(bytes_.size()) +
           " bytes): truncated or corrupt");
    return bytes_.subspan(at, count);
  }
  uint32_t u16(uint64_t at, const std::string& what) const { return little(range(at, 2, what)); }
  uint32_t u32(uint64_t at, const std::string& what) const { return little(range(at, 4, what)); }

  [[noreturn]] void fail(const std::string& message) const {
    throw std::runtime_error(context_ + ": " + message);
  }

 private:
  static uint32_t little(std::span<const char> b) {
    uint32_t v = 0;
    for (size_t i = b.size(); i-- > 0;) v = (v << 8) | static_cast<uint8_t>(b[i]);
    return v;
  }

  std::span<const char> bytes_;
  std::string context_;
  std::string scope_;
};

// ---- NPY ----------------------------------------------------------------------------

constexpr char kNpyMagic[] = "\x93NUMPY";
constexpr size_t kNpyMagicSize = 6;
constexpr size_t kNpyAlign = 64;  // numpy's ARRAY_ALIGN

// "()", "(5,)", "(2, 3)": Python's tuple syntax, as numpy writes the shape.
std::string python_tuple(const Shape& shape) {
  if (shape.size() == 1) return "(" + std::to_string(shape[0]) + ",)";
  return to_string(shape);
}

// Magic, version 1.0, header length, the dict, spaces and '\n' up to a multiple
// of 64 bytes. Exactly numpy's layout: at least one space of padding (a full 64
// when the dict would already end aligned).
std::string npy_header(const NpyArray& array) {
  std::string dict = "{'descr': '" + array.descr + "', 'fortran_order': False, 'shape': " +
                     python_tuple(array.shape) + ", }";
  const size_t preamble = kNpyMagicSize + 2 + 2;  // magic, version, u16 length
  dict.append(kNpyAlign - (preamble + dict.size() + 1) % kNpyAlign, ' ');
  dict += '\n';
  if (dict.size() > 0xffff)
    throw std::invalid_argument("npy header of shape " + to_string(array.shape) +
                                " exceeds the 64 KiB of NPY version 1.0");
  std::string header(kNpyMagic, kNpyMagicSize);
  header += '\x01';  // major version
  header += '\x00';  // minor version
  put_u16(header, dict.size());
  return header + dict;
}

// Parser of the header dict: a Python literal with the keys 'descr' (a string),
// 'fortran_order' (True/False) and 'shape' (a tuple of ints), in any order.
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string text, const ByteView& view) : text_(std::move(text)), view_(view) {}

  void parse(std::string& descr, bool& fortran_order, Shape& shape) {
    std::set<std::string> seen;
    expect('{');
    while (!peek('}')) {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        if (!peek('\'') && !peek('"')) fail("'descr' is not a string (structured dtypes are not supported)");
        descr = string_literal();
      } else if (key == "fortran_order") {
        fortran_order = boolean();
      } else if (key == "shape") {
        shape = tuple();
      } else {
        fail("unexpected key " + in_quotes(key));
      }
      if (!seen.insert(key).second) fail("key " + in_quotes(key) + " appears twice");
      if (!peek('}')) expect(',');
    }
    expect('}');
    skip_space();
    if (pos_ != text_.size()) fail("text after the closing '}'");
    if (seen.size() != 3) fail("needs the keys 'descr', 'fortran_order' and 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::string shown = text_;
    while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\n')) shown.pop_back();
    view_.fail("corrupt .npy header (" + what + " at character " + std::to_string(pos_) +
               " of \"" + printable(shown) + "\")");
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\t')) ++pos_;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a string");
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string::npos) fail("unterminated string");
    std::string value = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return value;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      const size_t n = std::strlen(word);
      if (text_.compare(pos_, n, word) == 0) {
        pos_ += n;
        return value;
      }
    }
    fail("expected True or False");
  }
  int64_t integer() {
    skip_space();
    int64_t value = 0;
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (value > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("dimension too large");
      value = value * 10 + (text_[pos_++] - '0');
    }
    if (pos_ == start) fail("expected a non-negative integer");
    return value;
  }
  // "()", "(5,)", "(2, 3)", "(2, 3,)"
  Shape tuple() {
    Shape shape;
    expect('(');
    while (!peek(')')) {
      shape.push_back(integer());
      if (!peek(')')) expect(',');
    }
    expect(')');
    return shape;
  }

  std::string text_;
  const ByteView& view_;
  size_t pos_ = 0;
};

NpyArray parse_npy(std::span<const char> entry, const std::string& context) {
  const ByteView view(entry, context, "entry");
  if (std::memcmp(view.range(0, kNpyMagicSize, "the .npy magic").data(), kNpyMagic, kNpyMagicSize) != 0)
    view.fail("not a .npy file (bad magic)");
  const auto version = view.range(kNpyMagicSize, 2, "the .npy version");
  const int major = static_cast<uint8_t>(version[0]);
  // Version 1.0 stores the header length in 16 bits, 2.0 and 3.0 in 32 bits.
  if (major < 1 || major > 3)
    view.fail("unsupported .npy version " + std::to_string(major) + "." +
              std::to_string(static_cast<uint8_t>(version[1])));
  const uint64_t length_at = kNpyMagicSize + 2;
  const uint64_t header_length = major == 1 ? view.u16(length_at, "the .npy header length")
                                            : view.u32(length_at, "the .npy header length");
  const uint64_t header_at = length_at + (major == 1 ? 2 : 4);
  const auto header = view.range(header_at, header_length, "the .npy header");

  NpyArray array;
  bool fortran_order = false;
  NpyHeaderParser(std::string(header.begin(), header.end()), view)
      .parse(array.descr, fortran_order, array.shape);
  if (fortran_order)
    view.fail("array is stored in Fortran order (fortran_order: True), which is not supported; "
              "save np.ascontiguousarray(x) instead");
  const auto code = parse_descr(array.descr);
  if (!code)
    view.fail("unsupported dtype " + in_quotes(array.descr) +
              " (supported: little-endian bool, int, uint and float)");
  array.descr = canonical_descr(*code);

  const uint64_t data_at = header_at + header_length;
  const uint64_t data_size = entry.size() - data_at;
  if (!size_matches(array.shape, code->itemsize, data_size))
    view.fail("data has " + std::to_string(data_size) + " bytes, but shape " +
              to_string(array.shape) + " of " + describe_descr(array.descr) + " " +
              needed_bytes(array.shape, code->itemsize));
  const auto data = entry.subspan(data_at);
  array.bytes.assign(data.begin(), data.end());
  return array;
}

// ---- ZIP (libzip) --------------------------------------------------------------------
// The container is libzip's: it writes ZIP64 records where an entry, an offset
// or the archive passes 4 GiB (or 65535 entries), reads stored and deflated
// entries (np.savez, np.savez_compressed) and checks every CRC-32.

// Every entry's time, so that equal contents give equal files: 1980-01-02
// 12:00 UTC, which libzip stores in local time, the same date in every time zone.
constexpr time_t kFixedModificationTime = 315662400;
constexpr uint64_t kEndRecordSize = 22;  // an archive has at least its end record

struct DiscardArchive {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
using Archive = std::unique_ptr<zip_t, DiscardArchive>;
struct CloseEntry {
  void operator()(zip_file_t* entry) const { zip_fclose(entry); }
};
using Entry = std::unique_ptr<zip_file_t, CloseEntry>;

std::string libzip_message(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string message = zip_error_strerror(&error);
  zip_error_fini(&error);
  return message;
}

// An empty archive is its end record alone (libzip deletes the file instead).
constexpr char kEmptyArchive[kEndRecordSize] = {'P', 'K', 5, 6};

// The whole of one entry; a damaged entry throws via `fail`.
template <class Fail>
std::vector<char> read_entry(zip_t* archive, zip_uint64_t index, uint64_t size, const Fail& fail) {
  const Entry entry(zip_fopen_index(archive, index, 0));
  if (!entry) fail(std::string("cannot be opened: ") + zip_strerror(archive));
  std::vector<char> bytes(size);
  uint64_t done = 0;
  char past_end = 0;
  // The read past the end lets libzip compare the CRC-32.
  for (;;) {
    char* into = done < size ? bytes.data() + done : &past_end;
    const zip_int64_t got = zip_fread(entry.get(), into, done < size ? size - done : 1);
    if (got < 0) {
      const zip_error_t* error = zip_file_get_error(entry.get());
      if (zip_error_code_zip(error) == ZIP_ER_CRC) fail("fails its CRC-32 check: the file is corrupt");
      fail(std::string("cannot be read (truncated or corrupt): ") + zip_file_strerror(entry.get()));
    }
    if (got == 0) break;
    if (done == size) fail("holds more bytes than its directory entry says: corrupt");
    done += static_cast<uint64_t>(got);
  }
  if (done != size) fail("ends early: truncated or corrupt");
  return bytes;
}

}  // namespace

// ---- public API -----------------------------------------------------------------------

NpyArray to_npy(const Tensor& tensor) {
  const Tensor host = tensor.to(Device::cpu);
  NpyArray array{descr_of(tensor.dtype()), tensor.shape(), std::vector<uint8_t>(tensor.nbytes())};
  if (!array.bytes.empty()) std::memcpy(array.bytes.data(), host.raw_data(), array.bytes.size());
  return array;
}

NpyArray to_npy(const Shape& shape, std::span<const int64_t> values) {
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw std::invalid_argument("to_npy: " + std::to_string(values.size()) +
                                " values for shape " + to_string(shape));
  NpyArray array{"<i8", shape, std::vector<uint8_t>(values.size_bytes())};
  if (!values.empty()) std::memcpy(array.bytes.data(), values.data(), values.size_bytes());
  return array;
}

void save_npz(const fs::path& path, const NamedArrays& arrays) {
  const std::string context = "save_npz " + path.string();
  // Check everything and build the .npy headers before the file is touched.
  std::vector<std::string> headers;
  std::set<std::string> names;
  for (const auto& [name, array] : arrays) {
    if (name.empty()) throw std::invalid_argument(context + ": an array has an empty name");
    if (!names.insert(name).second)
      throw std::invalid_argument(context + ": two arrays are named '" + name + "'");
    const auto code = parse_descr(array.descr);
    if (!code)
      throw std::invalid_argument(context + ": array '" + name + "' has unsupported dtype '" +
                                  array.descr + "'");
    if (!size_matches(array.shape, code->itemsize, array.bytes.size()))
      throw std::invalid_argument(context + ": array '" + name + "' has " +
                                  std::to_string(array.bytes.size()) + " bytes, but shape " +
                                  to_string(array.shape) + " of " + describe_descr(array.descr) +
                                  " " + needed_bytes(array.shape, code->itemsize));
    if (name.size() + 4 > 0xffff)
      throw std::invalid_argument(context + ": array name too long: '" + name.substr(0, 64) + "...'");
    headers.push_back(npy_header(array));
  }
  if (arrays.empty()) return write_file_atomic(path, std::span<const char>(kEmptyArchive));

  // libzip writes a temporary file beside `path` and renames it over `path`
  // in zip_close: a reader sees the old file or the new one, never a part.
  int code = 0;
  Archive archive(zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code));
  if (!archive) throw std::runtime_error(context + ": " + libzip_message(code));
  const auto fail = [&](const std::string& what) {
    throw std::runtime_error(context + ": " + what + ": " + zip_strerror(archive.get()));
  };
  for (size_t i = 0; i < arrays.size(); ++i) {
    const NpyArray& array = arrays[i].second;
    // The header and the data, without copying the data; both live until zip_close.
    zip_buffer_fragment_t fragments[2] = {
        {reinterpret_cast<zip_uint8_t*>(headers[i].data()), headers[i].size()},
        {const_cast<zip_uint8_t*>(array.bytes.data()), array.bytes.size()}};
    zip_source_t* source = zip_source_buffer_fragment(archive.get(), fragments, array.bytes.empty() ? 1 : 2, 0);
    if (!source) fail("array '" + arrays[i].first + "'");
    const zip_int64_t index = zip_file_add(archive.get(), (arrays[i].first + ".npy").c_str(), source, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(source);
      fail("array '" + arrays[i].first + "'");
    }
    const auto at = static_cast<zip_uint64_t>(index);
    if (zip_set_file_compression(archive.get(), at, ZIP_CM_STORE, 0) != 0 ||
        zip_file_set_mtime(archive.get(), at, kFixedModificationTime, 0) != 0)
      fail("array '" + arrays[i].first + "'");
  }
  if (zip_close(archive.get()) != 0) fail("writing the archive");
  archive.release();  // zip_close freed it
}

void save_npz(const fs::path& path, const NamedTensors& tensors) {
  NamedArrays arrays;
  arrays.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined())
      throw std::invalid_argument("save_npz " + path.string() + ": tensor '" + name + "' is undefined");
    arrays.emplace_back(name, to_npy(tensor));
  }
  save_npz(path, arrays);
}

NamedArrays read_npz(const fs::path& path) {
  const std::string context = "read_npz " + path.string();
  std::error_code error;
  if (fs::is_directory(path, error)) throw std::runtime_error(context + ": is a directory, not an .npz file");
  if (!fs::exists(path, error)) throw std::runtime_error(context + ": no such file");
  if (!fs::is_regular_file(path, error)) throw std::runtime_error(context + ": not a regular file");
  const uint64_t file_size = fs::file_size(path, error);
  if (error) throw std::runtime_error(context + ": " + error.message());
  if (file_size < kEndRecordSize)
    throw std::runtime_error(context + ": not a zip archive (" + std::to_string(file_size) + " bytes; truncated?)");

  int code = 0;
  const Archive archive(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
  if (!archive) {
    const std::string why = libzip_message(code);
    throw std::runtime_error(context + ": " +
                             (code == ZIP_ER_NOZIP ? "not a zip archive (truncated, or not an .npz file): " + why
                                                   : "damaged zip archive (truncated or corrupt): " + why));
  }
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  NamedArrays arrays;
  std::set<std::string> names;
  for (zip_int64_t i = 0; i < count; ++i) {
    const auto index = static_cast<zip_uint64_t>(i);
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive.get(), index, 0, &stat) != 0 || !(stat.valid & ZIP_STAT_NAME) ||
        !(stat.valid & ZIP_STAT_SIZE))
      throw std::runtime_error(context + ": central directory entry " + std::to_string(i) +
                               " is corrupt: " + zip_strerror(archive.get()));
    const std::string file_name = stat.name;
    const bool is_npy = file_name.size() > 4 && file_name.ends_with(".npy");
    const std::string name = is_npy ? file_name.substr(0, file_name.size() - 4) : file_name;
    const std::string entry_context = context + ": entry " + in_quotes(name);
    const auto entry_error = [&](const std::string& message) {
      throw std::runtime_error(entry_context + " " + message);
    };
    if (!is_npy) entry_error("is not a .npy array (name " + in_quotes(file_name) + ")");
    if (!names.insert(name).second) entry_error("appears twice");
    if ((stat.valid & ZIP_STAT_ENCRYPTION_METHOD) && stat.encryption_method != ZIP_EM_NONE)
      entry_error("is encrypted");
    if ((stat.valid & ZIP_STAT_COMP_METHOD) && stat.comp_method != ZIP_CM_STORE &&
        stat.comp_method != ZIP_CM_DEFLATE)
      entry_error("is compressed with zip method " + std::to_string(stat.comp_method) +
                  "; only stored and deflated entries (np.savez, np.savez_compressed) are supported");
    const std::vector<char> bytes = read_entry(archive.get(), index, stat.size, entry_error);
    arrays.emplace_back(name, parse_npy(bytes, entry_context));
    arrays.back().second.origin = path.string() + ": entry " + in_quotes(name);
  }
  return arrays;
}

Tensor to_tensor(const NpyArray& array) {
  const std::string context = array.origin.empty() ? "to_tensor" : "to_tensor " + array.origin;
  if (array.descr != "<f4" && array.descr != "<f8")
    throw std::invalid_argument(context + ": dtype " + describe_descr(array.descr) +
                                " is neither float32 ('<f4') nor float64 ('<f8')");
  const DType dtype = array.descr == "<f4" ? DType::f32 : DType::f64;
  if (array.bytes.size() != static_cast<size_t>(shape_numel(array.shape)) * dtype_size(dtype))
    throw std::invalid_argument(context + ": " + std::to_string(array.bytes.size()) +
                                " bytes for shape " + to_string(array.shape) + " of " +
                                describe_descr(array.descr));
  Tensor tensor = Tensor::empty(array.shape, dtype);
  if (!array.bytes.empty()) std::memcpy(tensor.raw_data(), array.bytes.data(), array.bytes.size());
  return tensor;
}

std::vector<int64_t> to_int64(const NpyArray& array) {
  const std::string context = array.origin.empty() ? "to_int64" : "to_int64 " + array.origin;
  const auto parsed = parse_descr(array.descr);
  if (!parsed || parsed->kind == 'f')
    throw std::invalid_argument(context + ": dtype " + describe_descr(array.descr) +
                                " is not a bool or integer type");
  const DtypeCode code = *parsed;
  if (!size_matches(array.shape, code.itemsize, array.bytes.size()))
    throw std::invalid_argument(context + ": " + std::to_string(array.bytes.size()) +
                                " bytes for shape " + to_string(array.shape) + " of " +
                                describe_descr(array.descr));
  std::vector<int64_t> values(array.bytes.size() / code.itemsize);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint8_t* p = array.bytes.data() + i * code.itemsize;
    // Assemble the little-endian value, then sign-extend signed kinds.
    uint64_t raw = 0;
    for (size_t b = code.itemsize; b-- > 0;) raw = (raw << 8) | p[b];
    const int shift = static_cast<int>(64 - 8 * code.itemsize);
    if (code.kind == 'i') {
      values[i] = static_cast<int64_t>(raw << shift) >> shift;
    } else {
      if (raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw std::invalid_argument(context + ": element " + std::to_string(i) + " (" +
                                    std::to_string(raw) + ") does not fit int64");
      values[i] = static_cast<int64_t>(raw);
    }
  }
  return values;
}

void load_into(const fs::path& path, const NamedTensors& destination, bool allow_unused) {
  const std::string checkpoint = "checkpoint " + path.string();
  std::set<std::string> wanted;
  for (const auto& [name, tensor] : destination) {
    if (!tensor.defined())
      throw std::invalid_argument("load_into " + path.string() + ": destination '" + name + "' is undefined");
    if (!wanted.insert(name).second)
      throw std::invalid_argument("load_into " + path.string() + ": two destinations are named '" + name + "'");
  }

  const NamedArrays arrays = read_npz(path);
  std::map<std::string, const NpyArray*> by_name;
  for (const auto& [name, array] : arrays) by_name[name] = &array;

  // Check and convert everything first: nothing is written until all is well.
  std::vector<Tensor> sources;
  for (const auto& [name, tensor] : destination) {
    const auto found = by_name.find(name);
    if (found == by_name.end()) throw std::runtime_error(checkpoint + " has no entry '" + name + "'");
    const NpyArray& array = *found->second;
    if (array.descr != descr_of(tensor.dtype()))
      throw std::runtime_error(checkpoint + ": entry '" + name + "' has dtype " +
                               describe_descr(array.descr) + ", model expects " +
                               describe_descr(descr_of(tensor.dtype())));
    if (array.shape != tensor.shape())
      throw std::runtime_error(checkpoint + ": entry '" + name + "' has shape " +
                               to_string(array.shape) + ", model expects " + to_string(tensor.shape()));
    sources.push_back(to_tensor(array).to(tensor.device()));
  }
  if (!allow_unused) {
    std::string unused;
    for (const auto& [name, array] : arrays)
      if (!wanted.count(name)) unused += (unused.empty() ? "'" : ", '") + name + "'";
    if (!unused.empty())
      throw std::runtime_error(checkpoint + " has entries the model does not use: " + unused +
                               " (pass allow_unused to ignore them)");
  }
  for (size_t i = 0; i < destination.size(); ++i) {
    Tensor target = destination[i].second;
    target.copy_(sources[i]);
  }
}

}  // namespace engine
