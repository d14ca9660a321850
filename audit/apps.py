from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Access audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit.services import erasure_record
        from logs.signals import erasure_done

        # A user's erasure (logs.erasure) is itself an access: who asked, how many rows went.
        erasure_done.connect(erasure_record, dispatch_uid="audit.erasure_record")
