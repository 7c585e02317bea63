// A small JSON reader for `spindle top` (it reads the stats JSON of
// core/stats_json.cc, or uWSGI's). Values are copied into a tree; lookups of
// a missing key or index give a shared null value, so a reader can chain
// them without checks.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spindle::core {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  double number(double fallback = 0) const { return type_ == Type::kNumber ? num_ : fallback; }
  long long integer(long long fallback = 0) const {
    return type_ == Type::kNumber ? static_cast<long long>(num_) : fallback;
  }
  const std::string& str() const { return str_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const JsonValue& operator[](std::string_view key) const;
  const JsonValue& operator[](std::size_t i) const;

  // Parses text; false (with *err set) if it is not one JSON value.
  static bool parse(std::string_view text, JsonValue* out, std::string* err);

 private:
  friend class JsonParser;
  Type type_ = Type::kNull;
  double num_ = 0;
  std::string str_;
  std::vector<JsonValue> items_;   // array elements, or object values
  std::vector<std::string> keys_;  // object keys, parallel to items_
};

}  // namespace spindle::core
