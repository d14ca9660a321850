# The console's own tables: per-environment masking words, the audit of reveals, and the
# links between a notification and its resends. Written when the console lived in logs/; the
# console app owns them since (console 0001 takes them over in its state, logs 0023 lets them
# go; the tables keep their names).

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def _default_words():
    # The console's default masking words (console.models._default_words) when this migration
    # was written: a migration names no module of a higher app.
    return ["token", "password", "secret", "code", "otp"]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_tenant_deleting"),
        ("logs", "0003_sub_kinds_fit_channels"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ConsoleSettings",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "sensitive_words",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=50),
                        blank=True,
                        default=_default_words,
                        help_text="A merge tag or request field whose name contains one of these words (any case, ignoring _ and -) is masked for support and viewers, with every occurrence of its value in the content. Comma-separated.",
                    ),
                ),
                (
                    "environment",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="console_settings",
                        to="accounts.environment",
                    ),
                ),
            ],
            options={
                "verbose_name": "console settings",
                "verbose_name_plural": "console settings",
            },
        ),
        migrations.CreateModel(
            name="ResendLink",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("original_id", models.UUIDField(verbose_name="original tracking id")),
                ("resend_id", models.UUIDField(unique=True, verbose_name="resend tracking id")),
                ("username", models.CharField(max_length=150)),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                (
                    "environment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="+",
                        to="accounts.environment",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.DB_SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["created_at"],
                "indexes": [models.Index(fields=["original_id"], name="resend_original")],
            },
        ),
        migrations.CreateModel(
            name="RevealRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("username", models.CharField(max_length=150)),
                ("notification_id", models.UUIDField(verbose_name="tracking id")),
                (
                    "revealed_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                (
                    "environment",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="+",
                        to="accounts.environment",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.DB_SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "masked-value reveal",
                "ordering": ["-revealed_at"],
                "indexes": [
                    models.Index(fields=["environment", "-revealed_at"], name="reveal_env_time")
                ],
            },
        ),
    ]
