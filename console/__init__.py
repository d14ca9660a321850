"""The support console: search, the notification page, the user's timeline, export and
masking, as custom views of Django's admin (registered by console/admin.py)."""
