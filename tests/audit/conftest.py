# The console's fixtures: two tenants, each with one environment.
from tests.console.conftest import tenants  # noqa: F401
