"""IdempotencyRecord now belongs to core (core.0002): forgotten here in Django's state only, the
table ``payments_idempotencyrecord`` is kept."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_idempotency_record"),
        ("payments", "0006_payment_customer_phone"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="IdempotencyRecord")],
            database_operations=[],
        ),
    ]
