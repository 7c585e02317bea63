PLUGIN_SRC    += $(wildcard plugin/ev/*.cc)
PLUGIN_LDLIBS += -lev
