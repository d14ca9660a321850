"""The accounts app's admin pages, a module per concern:

- bases.py: the bases every app's admins build on (TenantScopedAdmin,
  HidesOutsideUsersInHistory, ShowsSecretOnce);
- tenants.py: accounts, environments and API keys;
- members.py: memberships (two-factor reset) and invitations, with the role-guarded form;
- users.py: the console's users; django-axes's and django-otp's admins narrowed.

Django's admin autodiscovery imports this package, which registers the admins by importing
their modules.
"""

# Registered in the order the single module had (the admin's URLs follow the registry's).
# isort: off
from accounts.admin import tenants  # noqa: F401  (registers the admins)
from accounts.admin import members  # noqa: F401
from accounts.admin import users  # noqa: F401
# isort: on
