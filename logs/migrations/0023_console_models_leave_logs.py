# The console's tables (logs 0004) belong to the console app now (console/models.py): they
# leave the logs app's state here, and console 0001 takes them into its own. State only: the
# tables, their rows, indexes and constraints stay as they are, under the same names.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("logs", "0022_search_indexes_without_the_id")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ConsoleSettings"),
                migrations.DeleteModel(name="ResendLink"),
                migrations.DeleteModel(name="RevealRecord"),
            ],
            database_operations=[],
        )
    ]
