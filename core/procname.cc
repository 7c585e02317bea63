#include "core/procname.hh"

#include <sys/prctl.h>

#include <cstring>

#include "core/config.hh"

namespace spindle::core {

namespace {

char* g_area = nullptr;
std::size_t g_size = 0;

}  // namespace

void procname_init(int argc, char** argv) {
  if (argc <= 0 || !argv || !argv[0]) return;
  // The argument strings are contiguous; the title may use all of them.
  char* end = argv[0] + std::strlen(argv[0]) + 1;
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != end) break;
    end = argv[i] + std::strlen(argv[i]) + 1;
  }
  g_area = argv[0];
  g_size = static_cast<std::size_t>(end - argv[0]);
}

std::string procname_for(const Config& cfg, int worker_id) {
  std::string name = worker_id == 0 ? cfg.procname_master : cfg.procname;
  if (name.empty() && worker_id != 0 && !cfg.procname.empty()) name = cfg.procname;
  if (name.empty() && cfg.auto_procname)
    name = worker_id == 0 ? "spindle master" : "spindle worker " + std::to_string(worker_id);
  if (name.empty() && (!cfg.procname_prefix.empty() || !cfg.procname_append.empty()))
    name = worker_id == 0 ? "spindle master" : "spindle worker " + std::to_string(worker_id);
  if (name.empty()) return {};
  return cfg.procname_prefix + name + cfg.procname_append;
}

void set_procname(const std::string& title) {
  if (title.empty()) return;
  prctl(PR_SET_NAME, title.substr(0, 15).c_str(), 0, 0, 0);
  if (!g_area || g_size < 2) return;
  std::size_t n = std::min(title.size(), g_size - 1);
  std::memset(g_area, 0, g_size);
  std::memcpy(g_area, title.data(), n);
}

}  // namespace spindle::core
