// The greenlet plugin: the --greenlet option and the "greenlet" suspend
// engine (greenlet_engine.cc).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hh"
#include "core/options.hh"
#include "core/plugin.hh"
#include "plugin/greenlet/greenlet_engine.hh"

namespace spindle::greenlet {
namespace {

constexpr std::string_view kName = "greenlet";

class GreenletPlugin final : public core::Plugin {
 public:
  std::string_view name() const override { return kName; }
  std::vector<std::string_view> depends_on() const override { return {"python"}; }

  void add_engine_options(core::OptionTable& t, core::Config& cfg) override {
    t.add({"greenlet", 0, false, "", "run async cores in greenlets (same as --suspend greenlet)",
           [&cfg](std::string_view v) -> std::string {
             if (v == "true") {
               cfg.suspend = std::string(kName);
             } else if (cfg.suspend == kName) {
               // "greenlet = false" in an ini undoes only itself.
               cfg.suspend.clear();
             }
             return {};
           }});
  }

  std::vector<std::string_view> suspend_names() const override { return {kName}; }

  std::unique_ptr<fibers::Engine> make_suspend(std::string_view name,
                                               const core::Config&) override {
    if (name != kName) return nullptr;
    return make_greenlet_engine();
  }

  // The engine needs a loop that runs its callbacks on the worker's main
  // thread with the GIL held, so that they run on the main greenlet: both
  // loop engines do. A new loop engine is refused until it is checked.
  bool suspend_works_with(std::string_view suspend, std::string_view loop) const override {
    return suspend != kName || loop == "ev" || loop == "tornado";
  }
};

}  // namespace
}  // namespace spindle::greenlet

spindle::core::Plugin* spindle_plugin_greenlet() {
  static spindle::greenlet::GreenletPlugin plugin;
  return &plugin;
}
