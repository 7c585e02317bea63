#include <cstring>

#include "core/server.hh"
#include "core/top.hh"

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "top") == 0) return spindle::core::run_top(argc - 1, argv + 1);
  return spindle::core::run_server(argc, argv);
}
