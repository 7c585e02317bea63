#include "core/server.hh"

int main(int argc, char** argv) { return spindle::core::run_server(argc, argv); }
