PLUGIN_SRC      += $(wildcard plugin/python/*.cc)
# python3-config comes with python3-dev, which `make deps` installs: it is
# asked once, when a recipe first needs the flags, never while the Makefile is
# read (a fresh machine must still reach `make deps`).
PYTHON_CONFIG   := /usr/bin/python3-config
PYTHON_INCLUDES  = $(eval PYTHON_INCLUDES := $$(shell $(PYTHON_CONFIG) --includes 2>/dev/null))$(PYTHON_INCLUDES)
PYTHON_LDFLAGS   = $(eval PYTHON_LDFLAGS := $$(shell $(PYTHON_CONFIG) --ldflags --embed 2>/dev/null))$(PYTHON_LDFLAGS)
PLUGIN_CPPFLAGS += $(PYTHON_INCLUDES)
PLUGIN_LDLIBS   += $(PYTHON_LDFLAGS)
NEED_FILES      += $(PYTHON_CONFIG):python3-dev
# plugin/python/lib/*.py, embedded by the Makefile's $(B)/python_lib.cc rule.
PLUGIN_SRC      += $(B)/python_lib.cc
