# The greenlet suspend engine runs the async cores in real greenlets, through
# greenlet's C API: it needs the embedded interpreter, so the python plugin.
ifeq ($(filter python,$(PLUGINS)),)
$(error the greenlet plugin needs the python plugin: add python to PLUGINS \
  (e.g. make PLUGINS="python ev greenlet"))
endif

# greenlet.h ships inside Debian's python3-greenlet package. `make deps`
# installs it, so the check is skipped for the goals that do not compile.
GREENLET_INCLUDE := /usr/lib/python3/dist-packages/greenlet
ifeq ($(filter deps deps-bench clean,$(MAKECMDGOALS)),)
ifeq ($(wildcard $(GREENLET_INCLUDE)/greenlet.h),)
$(error the greenlet plugin needs $(GREENLET_INCLUDE)/greenlet.h: run `make deps` \
  (package python3-greenlet))
endif
endif

PLUGIN_SRC += $(wildcard plugin/greenlet/*.cc)
# Only this plugin's objects see greenlet's header directory: it also holds
# greenlet's own C++ sources and private headers, which nothing else should
# find by accident. (The python flags come from plugin/python/plugin.mk.)
$(B)/plugin/greenlet/%.o: CPPFLAGS += -I$(GREENLET_INCLUDE)
