"""PostgreSQL refuses UPDATE on audit rows too (defence in depth behind the model's own refusal).

DELETE stays possible at the database level: the retention purge is the one path that removes rows.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_auditlog_refuse_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_auditlog rows are append-only';
END;
$$ LANGUAGE plpgsql;
"""
TRIGGER = """
CREATE TRIGGER audit_auditlog_no_update BEFORE UPDATE ON audit_auditlog
FOR EACH ROW EXECUTE FUNCTION audit_auditlog_refuse_update();
"""
DROP = """
DROP TRIGGER IF EXISTS audit_auditlog_no_update ON audit_auditlog;
DROP FUNCTION IF EXISTS audit_auditlog_refuse_update();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)
        schema_editor.execute(TRIGGER)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
