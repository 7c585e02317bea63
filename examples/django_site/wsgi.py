"""WSGI entry point: spindle --pythonpath examples --module django_site.wsgi:application"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
