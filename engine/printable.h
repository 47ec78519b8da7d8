// Text from a file, made safe to quote in an error message. A damaged or
// hostile file may hold any bytes where a name or header is expected; echoed
// raw, they would break the message's one readable line (newlines, terminal
// escapes) or flood it (a 64 KiB header).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace engine {

// `bytes` with printable ASCII kept, every other byte (control characters,
// DEL, bytes >= 0x80) written as \xNN and a backslash as \\, so that the
// original bytes can be read back from the message. Input longer than
// `max_bytes` is cut there and ends in "... (N bytes)".
std::string printable(std::string_view bytes, size_t max_bytes = 200);

}  // namespace engine
