// The plugin registry: the built-in fibers engine and the embedded plugins,
// ordered by what each depends on. See plugin.hh.
#include <string>

#include "core/config.hh"
#include "core/plugin.hh"
#include "fibers/suspend.hh"

namespace spindle::core {

namespace {

// The native suspend engine, registered as any plugin is (--fibers and
// --fiber-stack-size stay core options: they are the default engine's).
class FibersPlugin final : public Plugin {
 public:
  std::string_view name() const override { return "fibers"; }
  std::vector<std::string_view> suspend_names() const override { return {"fibers"}; }
  std::unique_ptr<fibers::Engine> make_suspend(std::string_view, const Config& cfg) override {
    return fibers::make_fiber_engine(cfg.fiber_stack_size);
  }
};

struct Registry {
  std::vector<Plugin*> ordered;
  std::string error;
};

const Registry& registry() {
  static const Registry r = [] {
    static FibersPlugin fibers_plugin;
    std::vector<Plugin*> all{&fibers_plugin};
    for (Plugin* p : built_plugins()) all.push_back(p);
    Registry reg;
    reg.error = order_plugins(all, &reg.ordered);
    if (!reg.error.empty()) reg.ordered = all;
    return reg;
  }();
  return r;
}

}  // namespace

std::string order_plugins(const std::vector<Plugin*>& in, std::vector<Plugin*>* out) {
  out->clear();
  auto find = [&](std::string_view name) -> Plugin* {
    for (Plugin* p : in)
      if (p->name() == name) return p;
    return nullptr;
  };
  // Depth-first over the input order: a plugin goes in once everything it
  // depends on is in. 0 = not visited, 1 = being placed, 2 = placed.
  std::vector<int> mark(in.size(), 0);
  auto index = [&](Plugin* p) {
    for (std::size_t i = 0; i < in.size(); ++i)
      if (in[i] == p) return i;
    return in.size();
  };
  std::string err;
  auto place = [&](auto&& self, Plugin* p) -> bool {
    std::size_t i = index(p);
    if (mark[i] == 2) return true;
    if (mark[i] == 1) {
      err =
          "the plugins depend on each other in a circle (through '" + std::string(p->name()) + "')";
      return false;
    }
    mark[i] = 1;
    for (std::string_view dep : p->depends_on()) {
      Plugin* d = find(dep);
      if (!d) {
        err = "the '" + std::string(p->name()) + "' plugin needs the '" + std::string(dep) +
              "' plugin, which this binary was built without (add it to PLUGINS)";
        return false;
      }
      if (!self(self, d)) return false;
    }
    mark[i] = 2;
    out->push_back(p);
    return true;
  };
  for (Plugin* p : in)
    if (!place(place, p)) return err;
  return "";
}

const std::vector<Plugin*>& plugins() { return registry().ordered; }

const std::string& plugins_error() { return registry().error; }

}  // namespace spindle::core
