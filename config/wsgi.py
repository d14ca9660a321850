import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
_project = get_wsgi_application()

from webhooks.handler import application_with_webhooks  # noqa: E402 (apps must be set up)

# Provider callbacks skip the console's middleware (webhooks/handler.py).
application = application_with_webhooks(_project)
