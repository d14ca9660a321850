# The console's own tables, created by logs 0004 when the console lived in logs/, taken over
# as they are (logs 0023 let them go): the models keep their tables' names (db_table), so this
# changes the project state only, never the database.

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import console.models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0009_environment_content_retention"),
        ("logs", "0023_console_models_leave_logs"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ConsoleSettings",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "sensitive_words",
                            django.contrib.postgres.fields.ArrayField(
                                base_field=models.CharField(max_length=50),
                                blank=True,
                                default=console.models._default_words,
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
                        "db_table": "logs_consolesettings",
                    },
                ),
                migrations.CreateModel(
                    name="ResendLink",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("original_id", models.UUIDField(verbose_name="original tracking id")),
                        (
                            "resend_id",
                            models.UUIDField(unique=True, verbose_name="resend tracking id"),
                        ),
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
                        "db_table": "logs_resendlink",
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
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
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
                        "db_table": "logs_revealrecord",
                        "ordering": ["-revealed_at"],
                        "indexes": [
                            models.Index(
                                fields=["environment", "-revealed_at"], name="reveal_env_time"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        )
    ]
