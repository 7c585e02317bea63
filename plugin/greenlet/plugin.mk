# The greenlet suspend engine runs the async cores in real greenlets, through
# greenlet's C API: it needs the embedded interpreter, so the python plugin.
ifeq ($(filter python,$(PLUGINS)),)
$(error the greenlet plugin needs the python plugin: add python to PLUGINS \
  (e.g. make PLUGINS="python ev greenlet"))
endif

# greenlet.h ships inside Debian's python3-greenlet package, which `make deps`
# installs; the build checks for it when it compiles, not while reading this.
GREENLET_INCLUDE := /usr/lib/python3/dist-packages/greenlet
NEED_FILES += $(GREENLET_INCLUDE)/greenlet.h:python3-greenlet

PLUGIN_SRC += $(wildcard plugin/greenlet/*.cc)
# Only this plugin's objects see greenlet's header directory: it also holds
# greenlet's own C++ sources and private headers, which nothing else should
# find by accident. (The python flags come from plugin/python/plugin.mk.)
$(B)/plugin/greenlet/%.o: CPPFLAGS += -I$(GREENLET_INCLUDE)
