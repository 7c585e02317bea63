PLUGIN_SRC      += $(wildcard plugin/python/*.cc)
PLUGIN_CPPFLAGS += $(shell /usr/bin/python3-config --includes)
PLUGIN_LDLIBS   += $(shell /usr/bin/python3-config --ldflags --embed)
