// The WSGI environ, built per request from Exchange::vars().
//
// This is the hot path of a hello-world request, so:
//  - keys are interned str objects, found in a small table by their bytes
//    (their hash is cached, and the app's environ["PATH_INFO"] lookups hit by
//    identity);
//  - the table also remembers the last value seen for each key: a client
//    sends the same Host, User-Agent, method and protocol on every request,
//    and sharing an immutable str beats decoding it again;
//  - the dict starts as a copy of a template holding the constant entries:
//    copying a dict whose keys are all str is one memcpy of its table, and
//    the copy stays a str-keyed table (16 bytes an entry, where a dict made
//    by _PyDict_NewPresized takes 24). A request parked for long keeps its
//    environ, so its size is memory per parked request.
// Both caches are bounded, so odd headers cannot grow them without limit.
#include <cstring>

#include "core/exchange.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

constexpr std::size_t kSlots = 1024;  // power of two
constexpr std::size_t kMaxKeys = kSlots / 2;
constexpr std::size_t kMaxKeyLength = 64;
constexpr std::size_t kMaxCachedValue = 256;

struct KeySlot {
  std::uint32_t hash = 0;
  PyObject* key = nullptr;    // interned str
  PyObject* value = nullptr;  // last value seen for this key, or nullptr
};

KeySlot table[kSlots];
std::size_t key_count = 0;

// Constant environ entries.
PyObject* k_version;
PyObject* k_url_scheme;
PyObject* k_input;
PyObject* k_errors;
PyObject* k_multithread;
PyObject* k_multiprocess;
PyObject* k_run_once;
PyObject* k_file_wrapper;
PyObject* k_input_terminated;
PyObject* v_version;
PyObject* v_http;
PyObject* v_https;
PyObject* environ_template = nullptr;  // the constant entries; built on first use

std::uint32_t fnv1a(std::string_view s) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

bool same(PyObject* str, std::string_view bytes) {
  return static_cast<std::size_t>(PyUnicode_GET_LENGTH(str)) == bytes.size() &&
         std::memcmp(PyUnicode_1BYTE_DATA(str), bytes.data(), bytes.size()) == 0;
}

// The table slot for a variable name, inserting it if there is room;
// nullptr when the table is full or the name is unusually long.
KeySlot* find_key(std::string_view name) {
  std::uint32_t h = fnv1a(name);
  std::size_t i = h & (kSlots - 1);
  while (table[i].key) {
    if (table[i].hash == h && same(table[i].key, name)) return &table[i];
    i = (i + 1) & (kSlots - 1);
  }
  if (key_count >= kMaxKeys || name.size() > kMaxKeyLength) return nullptr;
  PyObject* key = PyUnicode_DecodeLatin1(name.data(), name.size(), nullptr);
  if (!key) {
    PyErr_Clear();
    return nullptr;
  }
  PyUnicode_InternInPlace(&key);
  table[i].hash = h;
  table[i].key = key;
  ++key_count;
  return &table[i];
}

PyObject* latin1(std::string_view s) { return PyUnicode_DecodeLatin1(s.data(), s.size(), nullptr); }

// A new reference to the value as str, shared with the previous request's
// when the bytes match.
PyObject* value_for(KeySlot* slot, std::string_view value) {
  if (slot && slot->value && same(slot->value, value)) {
    Py_INCREF(slot->value);
    return slot->value;
  }
  PyObject* v = latin1(value);
  if (v && slot && value.size() <= kMaxCachedValue) {
    Py_INCREF(v);
    Py_XSETREF(slot->value, v);
  }
  return v;
}

// Parses CONTENT_LENGTH for wsgi.input; -1 when absent or not a number (the
// core has already refused requests with a malformed one).
std::int64_t parse_length(std::string_view s) {
  if (s.empty() || s.size() > 18) return -1;
  std::int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

bool set(PyObject* dict, PyObject* key, PyObject* value) {
  return value && PyDict_SetItem(dict, key, value) == 0;
}

PyObject* intern(const char* s) { return PyUnicode_InternFromString(s); }

}  // namespace

bool environ_init() {
  k_version = intern("wsgi.version");
  k_url_scheme = intern("wsgi.url_scheme");
  k_input = intern("wsgi.input");
  k_errors = intern("wsgi.errors");
  k_multithread = intern("wsgi.multithread");
  k_multiprocess = intern("wsgi.multiprocess");
  k_run_once = intern("wsgi.run_once");
  k_file_wrapper = intern("wsgi.file_wrapper");
  k_input_terminated = intern("wsgi.input_terminated");
  v_version = Py_BuildValue("(ii)", 1, 0);
  v_http = intern("http");
  v_https = intern("https");
  return k_version && k_url_scheme && k_input && k_errors && k_multithread && k_multiprocess &&
         k_run_once && k_file_wrapper && k_input_terminated && v_version && v_http && v_https;
}

namespace {

// What every environ holds, whatever the request: made in the worker, at its
// first request (errors_stream() and the settings are final by then).
// wsgi.url_scheme and wsgi.input are placeholders, replaced per request.
PyObject* make_template() {
  PyObject* t = PyDict_New();
  if (!t) return nullptr;
  bool ok = set(t, k_version, v_version) && set(t, k_url_scheme, Py_None) &&
            set(t, k_input, Py_None) && set(t, k_errors, errors_stream()) &&
            set(t, k_multithread, Py_False) &&
            set(t, k_multiprocess, runtime().multiprocess ? Py_True : Py_False) &&
            set(t, k_run_once, Py_False) && set(t, k_input_terminated, Py_True);
  if (ok && !runtime().settings.disable_file_wrapper)
    ok = set(t, k_file_wrapper, reinterpret_cast<PyObject*>(file_wrapper_type));
  if (!ok) Py_CLEAR(t);
  return t;
}

}  // namespace

PyObject* build_environ(CoreSlot& slot) {
  core::Exchange& ex = *slot.request.ex;
  std::span<const core::Var> vars = ex.vars();
  if (!environ_template && !(environ_template = make_template())) return nullptr;
  PyObject* env = PyDict_Copy(environ_template);
  if (!env) return nullptr;
  for (const core::Var& var : vars) {
    KeySlot* ks = find_key(var.name);
    PyObject* key;
    if (ks) {
      key = ks->key;
      Py_INCREF(key);
    } else {
      key = latin1(var.name);
      if (!key) goto fail;
    }
    // A variable named like a constant entry (a uwsgi packet may hold any
    // name) does not replace it.
    if (var.name.starts_with("wsgi.") && PyDict_Contains(environ_template, key) == 1) {
      Py_DECREF(key);
      continue;
    }
    PyObject* value = value_for(ks, var.value);
    bool ok = set(env, key, value);
    Py_DECREF(key);
    Py_XDECREF(value);
    if (!ok) goto fail;
    if (var.name == "CONTENT_LENGTH") slot.request.content_length = parse_length(var.value);
  }
  {
    std::string_view scheme = ex.url_scheme();
    PyObject* sv = scheme == "http" ? v_http : scheme == "https" ? v_https : nullptr;
    if (sv) {
      Py_INCREF(sv);
    } else {
      sv = latin1(scheme);
    }
    bool ok = set(env, k_url_scheme, sv);
    Py_XDECREF(sv);
    if (!ok) goto fail;
  }
  if (!set(env, k_input, slot.input)) goto fail;
  return env;
fail:
  Py_DECREF(env);
  return nullptr;
}

}  // namespace spindle::python
