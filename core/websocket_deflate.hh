// permessage-deflate (RFC 7692) for websockets, with zlib: the offer a
// server accepts and whole-message compression both ways.
//
// Always without context takeover, either way: each message is compressed
// and inflated on its own, so an idle websocket keeps no zlib state. The
// streams are per serving thread and reset for every message (a message is
// inflated once it is whole, never across a park), which makes the memory
// a worker's few hundred KiB whatever the number of websockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace spindle::core::ws {

// Messages shorter than this are sent as they are (RSV1 clear), which RFC
// 7692 allows: compressing them costs more than it saves.
inline constexpr std::size_t kDeflateMin = 64;

// Reads a client's Sec-WebSocket-Extensions. True when one of its
// permessage-deflate offers can be accepted; *response is then the value
// to answer with (server_no_context_takeover and client_no_context_takeover
// always, server_max_window_bits when the offer limited it) and *window_bits
// the window to compress with. Offers with unknown or repeated parameters,
// or a window under 9 bits (zlib cannot make those streams), are declined.
bool deflate_negotiate(std::string_view offers, std::string* response, int* window_bits);

// The compressed payload of a whole message (the trailing 00 00 ff ff taken
// off). Valid until the thread's next call.
const std::string& deflate_message(std::string_view data, int window_bits);

// Inflates a whole compressed message in place. False with *close_code
// 1009 when it would exceed max_size bytes (0: no limit) — a zip bomb
// stops there, never allocating more — or 1007 when it is not valid
// deflate data.
bool inflate_message(std::string* msg, std::uint64_t max_size, int* close_code);

}  // namespace spindle::core::ws
