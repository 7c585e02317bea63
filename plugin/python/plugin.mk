PLUGIN_SRC      += $(wildcard plugin/python/*.cc)
PLUGIN_CPPFLAGS += $(shell /usr/bin/python3-config --includes)
PLUGIN_LDLIBS   += $(shell /usr/bin/python3-config --ldflags --embed)
# plugin/python/lib/*.py, embedded by the Makefile's $(B)/python_lib.cc rule.
PLUGIN_SRC      += $(B)/python_lib.cc
