"""IdempotencyRecord moves from payments to core in Django's state only: the table
``payments_idempotencyrecord`` stays as it is (no SQL runs), and its content type follows the model so
admin permissions granted on it are kept."""

import django.db.models.deletion
from django.db import migrations, models


def _move_content_type(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    if not content_type.objects.filter(app_label="core", model="idempotencyrecord").exists():
        content_type.objects.filter(app_label="payments", model="idempotencyrecord").update(app_label="core")


def _restore_content_type(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    if not content_type.objects.filter(app_label="payments", model="idempotencyrecord").exists():
        content_type.objects.filter(app_label="core", model="idempotencyrecord").update(app_label="payments")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_merchant_limits_and_key_cap"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0001_scheduler_heartbeat"),
        ("payments", "0006_payment_customer_phone"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyRecord",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("key", models.CharField(max_length=255)),
                        ("fingerprint", models.CharField(max_length=64)),
                        ("request_method", models.CharField(default="POST", max_length=10)),
                        ("request_path", models.CharField(blank=True, default="", max_length=255)),
                        (
                            "status",
                            models.CharField(
                                choices=[("in_progress", "In Progress"), ("completed", "Completed")],
                                default="in_progress",
                                max_length=20,
                            ),
                        ),
                        ("response_status", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("response_body", models.TextField(blank=True, default="")),
                        ("resource_id", models.CharField(blank=True, default="", max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("expires_at", models.DateTimeField(db_index=True)),
                        (
                            "merchant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="idempotency_records",
                                to="accounts.merchant",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "payments_idempotencyrecord",
                        "constraints": [
                            models.UniqueConstraint(fields=("merchant", "key"), name="idempotency_key_per_merchant")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(_move_content_type, _restore_content_type, elidable=True),
    ]
