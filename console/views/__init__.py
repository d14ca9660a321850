"""The console's pages, served inside Django's admin (console/admin.py wires the URLs through
admin_site.admin_view, so every page needs a logged-in staff user). Each view checks the
input, calls the selectors and answers; the rules live in the console's other modules.

- viewer.py: who is looking (Viewer: their environments, their role, what it allows) and the
  console's URLs;
- search.py: the search page (and the search a user's timeline and the export repeat);
- users.py: a user's timeline and the erasure of their data;
- notification.py: the notification page, its live poll, reveal and resend;
- export.py: the CSV export.

Who sees what: every page reads only the viewer's environments (accounts.selectors), so
another tenant's notification answers 404. Support and viewers read with secrets masked;
owners and admins may reveal them (each reveal recorded); viewers do not export. An account may
show its viewers every email address and phone number masked (Account.viewer_addresses).

Every read of a person's data is in the access audit (audit/): the notification page, the
user's timeline, a reveal, a resend and an export each write one AccessRecord first.
"""
