ifeq ($(filter python,$(PLUGINS)),)
$(error the tornado plugin needs the python plugin: add python to PLUGINS)
endif
PLUGIN_SRC += $(wildcard plugin/tornado/*.cc)
