"""Creates the staff groups (support, finance, admin); `manage.py setup_staff_groups` does the same later.

It uses the live models on purpose: groups and permissions come from the app registry as it is when
the migration runs, and the command re-syncs them after new models appear.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    from audit.staff_groups import staff_groups_setup

    staff_groups_setup()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_auditlog_no_update_trigger"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
