"""Imported as `proj.settings`: found because the working directory
(--chdir) is on sys.path, as under uWSGI."""
GREETING = "hello from proj.settings"
