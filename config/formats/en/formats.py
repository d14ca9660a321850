"""The console's English formats (settings.FORMAT_MODULE_PATH): times with seconds and the
zone's name, as the support pages show them, instead of Django's "Dec. 6, 2026, 10:42 p.m.".
The zone is the active one: the viewer's on console pages (config/admin_display.py)."""

DATETIME_FORMAT = "Y-m-d H:i:s T"  # config.admin_display.MOMENT_FORMAT
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
