"""What every settings module starts from: the paths, the profile and the environment.

Every setting a user may change is an environment variable, read with `env` and declared with
`declare()` beside the setting it feeds, so that a misspelt variable stops start-up with the
name it probably meant (`check_names`, run by `config/settings/__init__.py` once every module
has declared its names).
"""

import difflib
import os
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / ".var"

env = environ.Env()

# APP_PROFILE: "development" (default) or "production". Production refuses to start without
# SECRET_KEY and SECRETS_ENCRYPTION_KEY and turns on every HTTPS protection.
APP_PROFILE = env.str("APP_PROFILE", default="development")
if APP_PROFILE not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"APP_PROFILE={APP_PROFILE!r} is not a profile: use 'development' or 'production'."
    )
PRODUCTION = APP_PROFILE == "production"
TESTING = "pytest" in sys.modules or os.environ.get("APP_TESTING") == "1"

_declared: list[str] = ["APP_PROFILE"]


def declare(*names: str) -> None:
    """Declare the environment variables a settings module reads."""
    _declared.extend(names)


def declared() -> list[str]:
    """Every environment variable declared so far, in the order the modules declared them."""
    return list(_declared)


def check_names(known: list[str]) -> None:
    """Stop start-up on an environment variable that is a near miss of a setting's name."""
    names = set(known)
    for name in os.environ:
        if name in names:
            continue
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.88)
        if close:
            raise ImproperlyConfigured(
                f"Environment variable {name} is not a setting of this service; did you mean "
                f"{close[0]}? Rename it (settings are listed in docs/operating.md)."
            )
