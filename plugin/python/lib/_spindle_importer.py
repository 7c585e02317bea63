"""Makes the modules compiled into spindle importable, with no file on disk.

spindle runs this file itself at interpreter start (lib_importer.cc) and
calls install() with {module name: source}. The finder goes first on
sys.meta_path: `import uwsgi` gets the embedded module even if an
unrelated uwsgi.py lies on sys.path, as it would under uWSGI, where the
module is built in.
"""

import sys
from importlib.machinery import ModuleSpec

PREFIX = "<spindle>/"


class EmbeddedImporter:
    """Finder and loader for the embedded modules (PEP 451)."""

    def __init__(self, sources):
        self._sources = dict(sources)

    def _origin(self, name):
        return PREFIX + name + ".py"

    # -- finder -----------------------------------------------------------
    def find_spec(self, name, path=None, target=None):
        if path is not None or name not in self._sources:
            return None
        return ModuleSpec(name, self, origin=self._origin(name))

    # -- loader -----------------------------------------------------------
    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        exec(self.get_code(module.__spec__.name), module.__dict__)

    # -- InspectLoader, so tracebacks and inspect show the source ---------
    def get_source(self, name):
        try:
            return self._sources[name]
        except KeyError:
            raise ImportError("no embedded module named %r" % name, name=name) from None

    def get_code(self, name):
        return compile(self.get_source(name), self._origin(name), "exec", dont_inherit=True)

    def is_package(self, name):
        return False

    def names(self):
        return sorted(self._sources)


def install(sources):
    """Puts the finder first on sys.meta_path (once) and returns it."""
    for finder in sys.meta_path:
        if isinstance(finder, EmbeddedImporter):
            return finder
    finder = EmbeddedImporter(sources)
    sys.meta_path.insert(0, finder)
    return finder
