// Several applications in one worker: --mount MOUNTPOINT=APP (repeatable)
// beside the main --wsgi-file / --module / --paste one, chosen per request.
//
// As in uWSGI:
//  - without --manage-script-name the frontend chooses: the app whose
//    mountpoint equals the request's SCRIPT_NAME (nginx: `uwsgi_param
//    SCRIPT_NAME /blog;`), else the app at the root. SCRIPT_NAME and
//    PATH_INFO reach the app as the frontend sent them.
//  - with it, the longest mountpoint that is a whole-segment prefix of
//    PATH_INFO wins; SCRIPT_NAME becomes the mountpoint and PATH_INFO what
//    follows it (PEP 3333: SCRIPT_NAME + PATH_INFO is the request's path).
//    "/blog" matches /blog and /blog/x, never /blogs.
// A request no app takes is answered 500 with a log line (uWSGI: "no python
// application found").
#include <string>
#include <tuple>

#include "core/log.hh"
#include "plugin/python/python.hh"

namespace spindle::python {
namespace {

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

std::string_view var(core::Exchange& ex, std::string_view name) {
  for (const core::Var& v : ex.vars())
    if (v.name == name) return v.value;
  return {};
}

std::string normalise(std::string_view mountpoint) {
  std::string m(mountpoint);
  while (!m.empty() && m.back() == '/') m.pop_back();
  return m;
}

bool add(const std::string& mountpoint, const AppSource& src) {
  Runtime& rt = runtime();
  MountedApp app;
  app.mountpoint = normalise(mountpoint);
  app.callable = load_callable(src, &app.label);
  if (!app.callable) return false;
  for (const MountedApp& other : rt.apps) {
    if (other.mountpoint == app.mountpoint) {
      SPINDLE_LOG_ERROR("python: two applications mounted at '%s' (%s and %s)",
                        app.mountpoint.empty() ? "/" : app.mountpoint.c_str(), other.label.c_str(),
                        app.label.c_str());
      Py_DECREF(app.callable);
      return false;
    }
  }
  if (app.mountpoint.empty()) rt.default_app = static_cast<int>(rt.apps.size());
  SPINDLE_LOG_INFO("python %s: loaded %s%s%s", PY_VERSION, app.label.c_str(),
                   app.mountpoint.empty() ? "" : " at ", app.mountpoint.c_str());
  rt.apps.push_back(std::move(app));
  return true;
}

}  // namespace

bool parse_mount(std::string_view value, std::string* mountpoint, AppSource* src,
                 std::string* why) {
  std::string_view::size_type eq = value.find('=');
  if (eq == std::string_view::npos) {
    *why = "expected MOUNTPOINT=APP (like /blog=blog.py or /api=api.wsgi:app), got '" +
           std::string(value) + "'";
    return false;
  }
  *mountpoint = std::string(value.substr(0, eq));
  std::string_view app = value.substr(eq + 1);
  if (!mountpoint->empty() && (*mountpoint)[0] != '/') {
    *why = "the mountpoint must start with '/', got '" + *mountpoint + "'";
    return false;
  }
  src->spec = std::string(app);
  if (ends_with(app, ".py") || ends_with(app, ".wsgi")) {
    src->kind = AppSource::kFile;
  } else if (ends_with(app, ".ini")) {
    src->kind = AppSource::kPaste;
    src->spec = "config:" + src->spec;
  } else if (app.find(':') != std::string_view::npos && app.find(':') + 1 < app.size()) {
    src->kind = AppSource::kModule;
  } else {
    *why = "the application '" + std::string(app) +
           "' is neither a .py/.wsgi file, a Paste .ini nor MODULE:CALLABLE";
    return false;
  }
  return true;
}

bool load_apps(const Settings& s) {
  if (!set_python_path(s) || !run_imports(s)) return false;
  // With several sources uWSGI loads --module first, then --wsgi-file, then
  // --paste: the first that loads is the app, the others are skipped.
  bool loaded = false;
  std::string first_label;
  for (auto [kind, spec, option] :
       {std::tuple{AppSource::kModule, &s.module, "module"},
        std::tuple{AppSource::kFile, &s.wsgi_file, "wsgi-file"},
        std::tuple{AppSource::kPaste, &s.paste, "paste"}}) {
    if (spec->empty()) continue;
    if (loaded) {
      SPINDLE_LOG_WARN("python: --%s %s skipped: the app is already loaded from %s", option,
                       spec->c_str(), first_label.c_str());
      continue;
    }
    AppSource main;
    main.callable = s.callable;
    main.kind = kind;
    main.spec = *spec;
    loaded = add("", main);
    if (loaded) first_label = runtime().apps.back().label;
  }
  int sources = !s.wsgi_file.empty() + !s.module.empty() + !s.paste.empty();
  if (sources > 0 && !loaded) return false;
  for (const std::string& m : s.mounts) {
    std::string mountpoint, why;
    AppSource src;
    src.callable = s.callable;
    if (!parse_mount(m, &mountpoint, &src, &why)) {
      SPINDLE_LOG_ERROR("python: --mount: %s", why.c_str());
      return false;
    }
    if (!add(mountpoint, src)) return false;
  }
  return true;
}

const MountedApp* choose_app(core::Exchange& ex, Route* route) {
  Runtime& rt = runtime();
  route->rewrite = false;
  if (rt.apps.size() == 1 && rt.default_app == 0) return &rt.apps[0];
  const MountedApp* best = nullptr;
  if (rt.settings.manage_script_name) {
    std::string_view path = var(ex, "PATH_INFO");
    for (const MountedApp& app : rt.apps) {
      const std::string& m = app.mountpoint;
      if (m.empty() || path.size() < m.size() || path.substr(0, m.size()) != m) continue;
      if (path.size() > m.size() && path[m.size()] != '/') continue;
      if (!best || m.size() > best->mountpoint.size()) best = &app;
    }
    if (best) {
      route->rewrite = true;
      route->script_name = best->mountpoint;
      route->path_info = path.substr(best->mountpoint.size());
      return best;
    }
  } else {
    std::string script = normalise(var(ex, "SCRIPT_NAME"));
    for (const MountedApp& app : rt.apps)
      if (!script.empty() && app.mountpoint == script) return &app;
  }
  if (rt.default_app >= 0) return &rt.apps[static_cast<std::size_t>(rt.default_app)];
  return nullptr;
}

}  // namespace spindle::python
