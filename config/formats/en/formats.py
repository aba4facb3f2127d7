"""Date formats of the back office (FORMAT_MODULE_PATH): ISO-like and short, so a changelist's date
column is one compact, sortable-looking line ("2026-12-01 10:15") instead of "Dec. 1, 2026, 10:15 a.m.".
The API is not affected (DRF writes ISO 8601 itself)."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
TIME_FORMAT = "H:i"
