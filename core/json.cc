#include "core/json.hh"

#include <cstdlib>

namespace spindle::core {

namespace {
const JsonValue& null_value() {
  static const JsonValue v;
  return v;
}
}  // namespace

const JsonValue& JsonValue::operator[](std::string_view key) const {
  for (std::size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i] == key) return items_[i];
  return null_value();
}

const JsonValue& JsonValue::operator[](std::size_t i) const {
  return type_ == Type::kArray && i < items_.size() ? items_[i] : null_value();
}

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  bool value(JsonValue* out, int depth) {
    if (depth > 64) return fail("nested too deep");
    ws();
    if (pos_ >= s_.size()) return fail("unexpected end");
    char c = s_[pos_];
    if (c == '{') return object(out, depth);
    if (c == '[') return array(out, depth);
    if (c == '"') {
      out->type_ = JsonValue::Type::kString;
      return string(&out->str_);
    }
    if (literal("true")) {
      out->type_ = JsonValue::Type::kBool;
      out->num_ = 1;
      return true;
    }
    if (literal("false")) {
      out->type_ = JsonValue::Type::kBool;
      return true;
    }
    if (literal("null")) return true;
    return number(out);
  }

  bool done() {
    ws();
    return pos_ == s_.size() || fail("trailing characters");
  }

  std::string err;

 private:
  bool fail(const char* why) {
    if (err.empty()) err = std::string(why) + " at offset " + std::to_string(pos_);
    return false;
  }
  void ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
      ++pos_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool number(JsonValue* out) {
    std::size_t start = pos_;
    while (pos_ < s_.size() &&
           (std::string_view("+-.eE0123456789").find(s_[pos_]) != std::string_view::npos))
      ++pos_;
    if (start == pos_) return fail("unexpected character");
    std::string text(s_.substr(start, pos_ - start));
    char* end = nullptr;
    out->num_ = strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return fail("bad number");
    out->type_ = JsonValue::Type::kNumber;
    return true;
  }
  static void utf8(std::string* out, unsigned cp) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xc0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *out += static_cast<char>(0xe0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  bool string(std::string* out) {
    ++pos_;  // the opening quote
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        *out += c;
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case 'n':
          *out += '\n';
          break;
        case 't':
          *out += '\t';
          break;
        case 'r':
          *out += '\r';
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return fail("bad \\u escape");
          unsigned cp =
              static_cast<unsigned>(strtoul(std::string(s_.substr(pos_, 4)).c_str(), nullptr, 16));
          pos_ += 4;
          utf8(out, cp);  // surrogate pairs come out as two code points: display only
          break;
        }
        default:
          *out += e;
      }
    }
    return fail("unterminated string");
  }
  bool array(JsonValue* out, int depth) {
    out->type_ = JsonValue::Type::kArray;
    ++pos_;
    ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      out->items_.emplace_back();
      if (!value(&out->items_.back(), depth + 1)) return false;
      ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return fail("expected , or ]");
    }
  }
  bool object(JsonValue* out, int depth) {
    out->type_ = JsonValue::Type::kObject;
    ++pos_;
    ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a key");
      out->keys_.emplace_back();
      if (!string(&out->keys_.back())) return false;
      ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected :");
      ++pos_;
      out->items_.emplace_back();
      if (!value(&out->items_.back(), depth + 1)) return false;
      ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return fail("expected , or }");
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

bool JsonValue::parse(std::string_view text, JsonValue* out, std::string* err) {
  JsonParser p(text);
  *out = JsonValue();
  if (p.value(out, 0) && p.done()) return true;
  if (err) *err = p.err;
  return false;
}

}  // namespace spindle::core
