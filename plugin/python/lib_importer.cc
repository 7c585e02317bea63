// The Python modules shipped inside the binary (plugin/python/lib/*.py):
// made importable at interpreter start, with no file on disk.
//
// The finder itself is one of them (_spindle_importer.py), so it is run here
// by hand: compiled, executed in a fresh module registered in sys.modules,
// then asked to install itself with the table of every embedded source.
#include <cstring>
#include <string>

#include "core/log.hh"
#include "plugin/python/embedded_lib.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

constexpr const char* kImporter = "_spindle_importer";

const EmbeddedModule* find_module(const char* name) {
  for (std::size_t i = 0; i < kEmbeddedModuleCount; ++i) {
    if (std::strcmp(kEmbeddedModules[i].name, name) == 0) return &kEmbeddedModules[i];
  }
  return nullptr;
}

// {name: source} for every embedded module (new reference).
PyObject* source_table() {
  PyObject* table = PyDict_New();
  if (!table) return nullptr;
  for (std::size_t i = 0; i < kEmbeddedModuleCount; ++i) {
    const EmbeddedModule& m = kEmbeddedModules[i];
    PyObject* src = PyUnicode_DecodeUTF8(m.source, std::strlen(m.source), "strict");
    if (!src || PyDict_SetItemString(table, m.name, src) < 0) {
      Py_XDECREF(src);
      Py_DECREF(table);
      return nullptr;
    }
    Py_DECREF(src);
  }
  return table;
}

// Runs the importer's source as the module _spindle_importer (new reference).
PyObject* run_importer(const EmbeddedModule& m) {
  std::string filename = std::string("<spindle>/") + m.name + ".py";
  PyObject* code = Py_CompileString(m.source, filename.c_str(), Py_file_input);
  if (!code) return nullptr;
  PyObject* mod = PyImport_AddModule(m.name);  // borrowed, registered in sys.modules
  PyObject* r = nullptr;
  if (mod) {
    PyObject* dict = PyModule_GetDict(mod);  // borrowed
    if (PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins()) == 0) {
      r = PyEval_EvalCode(code, dict, dict);
    }
  }
  Py_DECREF(code);
  if (!r) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyObject* modules = PyImport_GetModuleDict();
    if (PyDict_GetItemString(modules, m.name)) PyDict_DelItemString(modules, m.name);
    PyErr_Clear();
    PyErr_Restore(t, v, tb);
    return nullptr;
  }
  Py_DECREF(r);
  Py_INCREF(mod);
  return mod;
}

}  // namespace

bool install_embedded_modules() {
  const EmbeddedModule* importer = find_module(kImporter);
  if (!importer) {
    SPINDLE_LOG_ERROR("python: the binary has no embedded %s module", kImporter);
    return false;
  }
  PyObject* mod = run_importer(*importer);
  PyObject* table = mod ? source_table() : nullptr;
  PyObject* r = table ? PyObject_CallMethod(mod, "install", "O", table) : nullptr;
  Py_XDECREF(r);
  Py_XDECREF(table);
  Py_XDECREF(mod);
  if (!r) {
    log_exception("python: cannot make the embedded modules importable");
    return false;
  }
  return true;
}

}  // namespace spindle::python
