"""Settings for the notification log console, grouped by concern and read from the environment.

Every setting a user may change is an environment variable, documented beside it in the module
of its concern and in docs/operating.md. Two profiles: `development` (the default; what
`make run` and `make test` use, with safe embedded defaults) and `production`
(`APP_PROFILE=production`: no defaults for secrets, HTTPS-only cookies, HSTS, JSON logs on
stdout).

The modules, in the order they are read (a later one may use an earlier one's values):

- `environment`: paths, the profile, `env` and the check of the variables' names;
- `core`: Django itself (secrets, hosts, apps, middleware, templates, logging, HTTPS);
- `datastores`: PostgreSQL and Redis, with their embedded defaults;
- `worker`: Celery (queues, time limits, the beat schedule, heartbeats);
- `log`, `api`, `sending`, `webhooks`, `outbound`, `stream`, `alerts`, `insights`,
  `accounts`, `audit`: each concern's own settings and beat entries.
"""

# The order below is the order the modules are read in: not alphabetical.
# ruff: noqa: I001
from config.settings.environment import *  # noqa: F403
from config.settings.core import *  # noqa: F403
from config.settings.datastores import *  # noqa: F403
from config.settings.worker import *  # noqa: F403
from config.settings.log import *  # noqa: F403
from config.settings.api import *  # noqa: F403
from config.settings.sending import *  # noqa: F403
from config.settings.webhooks import *  # noqa: F403
from config.settings.outbound import *  # noqa: F403
from config.settings.stream import *  # noqa: F403
from config.settings.alerts import *  # noqa: F403
from config.settings.insights import *  # noqa: F403
from config.settings.accounts import *  # noqa: F403
from config.settings.audit import *  # noqa: F403
from config.settings.environment import check_names, declared

# A misspelt setting must fail loudly, not be silently ignored: any environment variable that
# is a near miss of a declared one stops start-up with the name it probably meant.
SETTINGS_FROM_ENVIRONMENT = declared()
check_names(SETTINGS_FROM_ENVIRONMENT)
