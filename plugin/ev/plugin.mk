PLUGIN_SRC    += $(wildcard plugin/ev/*.cc)
PLUGIN_LDLIBS += -lev
NEED_FILES    += /usr/include/ev.h:libev-dev
