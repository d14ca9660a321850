"""Provider receivers: `base` owns size limits, authentication hooks and storing the raw
request in the inbox; each provider module only authenticates its own way, parses and maps
(the shape of django-anymail's webhooks/ package)."""
