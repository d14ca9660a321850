# The console's fixtures: two tenants, each with one environment.
from tests.logs.console.conftest import tenants  # noqa: F401
