# The Tornado loop engine: asyncio's loop on the libev engine's, in the
# embedded interpreter, so it needs both of those plugins.
ifeq ($(filter python,$(PLUGINS)),)
$(error the tornado plugin needs the python plugin: add python to PLUGINS)
endif
ifeq ($(filter ev,$(PLUGINS)),)
$(error the tornado plugin needs the ev plugin: add ev to PLUGINS)
endif
PLUGIN_SRC += $(wildcard plugin/tornado/*.cc)
