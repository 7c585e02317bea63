// --home / --virtualenv / --venv (-H): the app's imports come from a
// virtualenv, run by the embedded interpreter.
//
// A PEP 405 environment (made by `python3 -m venv`, or virtualenv >= 20) has
// a pyvenv.cfg: the interpreter is then started as if it were the venv's
// bin/python, so CPython's own start-up finds pyvenv.cfg, sets sys.prefix to
// the venv and puts its site-packages on sys.path (and the system's only if
// the venv asked for them), exactly as running that python would. A home
// without pyvenv.cfg is taken as a PYTHONHOME (a full installation prefix).
// Either way its Python must be the one spindle embeds: an extension module
// built for another version would crash or fail to import, so a mismatch is
// refused at start-up.
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <string>

#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

bool is_dir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string trim(const std::string& s) {
  std::string::size_type b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// "3.11.2" -> "3.11"; "" when it does not look like a version.
std::string major_minor(const std::string& v) {
  std::string::size_type dot = v.find('.');
  if (dot == std::string::npos || dot == 0) return {};
  std::string::size_type end = v.find_first_not_of("0123456789", dot + 1);
  std::string mm = v.substr(0, end);
  return mm.size() > dot + 1 ? mm : std::string();
}

// The version pyvenv.cfg records ("version" or, from virtualenv, "version_info").
std::string venv_version(const std::string& cfg) {
  std::ifstream in(cfg);
  std::string line;
  std::string found;
  while (std::getline(in, line)) {
    std::string::size_type eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = trim(line.substr(0, eq));
    if (key == "version" || (key == "version_info" && found.empty()))
      found = major_minor(trim(line.substr(eq + 1)));
  }
  return found;
}

// The lib/pythonX.Y directory names under home, for the error message.
std::string lib_versions(const std::string& home) {
  std::string out;
  for (int minor = 0; minor < 40; ++minor) {
    std::string v = "3." + std::to_string(minor);
    if (is_dir(home + "/lib/python" + v)) out += (out.empty() ? "" : ", ") + v;
  }
  return out;
}

}  // namespace

std::string check_home(Settings& s) {
  if (s.home.empty()) return {};
  const std::string opt = "--" + s.home_option + " " + s.home;
  std::string home = s.home;
  if (home[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd)) home = std::string(cwd) + "/" + home;
  }
  while (home.size() > 1 && home.back() == '/') home.pop_back();
  if (!is_dir(home)) return opt + ": not a directory";
  const std::string embedded =
      std::to_string(PY_MAJOR_VERSION) + "." + std::to_string(PY_MINOR_VERSION);
  const std::string mismatch = ": it is a Python %s environment and spindle embeds Python " +
                               embedded + " (make it with /usr/bin/python3 -m venv)";
  auto refuse = [&](const std::string& theirs) {
    std::string m = mismatch;
    m.replace(m.find("%s"), 2, theirs);
    return opt + m;
  };
  if (is_file(home + "/pyvenv.cfg")) {
    std::string v = venv_version(home + "/pyvenv.cfg");
    if (v.empty()) {
      std::string libs = lib_versions(home);
      if (!libs.empty() && !is_dir(home + "/lib/python" + embedded)) return refuse(libs);
    } else if (v != embedded) {
      return refuse(v);
    }
    for (const char* name : {"/bin/python", "/bin/python3"}) {
      if (access((home + name).c_str(), X_OK) == 0) {
        s.home_python = home + name;
        break;
      }
    }
    if (s.home_python.empty()) return opt + ": a virtualenv without bin/python";
  } else if (!is_dir(home + "/lib/python" + embedded)) {
    std::string libs = lib_versions(home);
    if (!libs.empty()) return refuse(libs);
    return opt + ": not a virtualenv (no pyvenv.cfg) nor a Python " + embedded +
           " prefix (no lib/python" + embedded + ")";
  }
  s.home = home;
  return {};
}

bool apply_home(PyConfig* config, const Settings& s) {
  if (s.home.empty()) return true;
  PyStatus st;
  if (!s.home_python.empty()) {
    wchar_t* exe = Py_DecodeLocale(s.home_python.c_str(), nullptr);
    if (!exe) return false;
    st = PyConfig_SetString(config, &config->program_name, exe);
    PyMem_RawFree(exe);
  } else {
    wchar_t* home = Py_DecodeLocale(s.home.c_str(), nullptr);
    if (!home) return false;
    st = PyConfig_SetString(config, &config->home, home);
    PyMem_RawFree(home);
  }
  return !PyStatus_Exception(st);
}

}  // namespace spindle::python
