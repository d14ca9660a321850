# The console's models keep their content types (and so the permissions granted on them, to
# users and groups): the rows that named them `logs` name them `console`. On a fresh install
# there are none yet (post_migrate creates them, under `console`).

from django.db import migrations

MODELS = ["consolesettings", "resendlink", "revealrecord"]


def _relabel(apps, *, old: str, new: str) -> None:
    content_types = apps.get_model("contenttypes", "ContentType").objects
    taken = content_types.filter(app_label=new, model__in=MODELS).values_list("model", flat=True)
    content_types.filter(app_label=old, model__in=MODELS).exclude(model__in=list(taken)).update(
        app_label=new
    )


def forwards(apps, schema_editor):
    _relabel(apps, old="logs", new="console")


def backwards(apps, schema_editor):
    _relabel(apps, old="console", new="logs")


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
