"""Cursor pagination as CONTRACT section 2 specifies: ``?limit=`` 1..100 (default 20), ``?cursor=``,
newest first, and ``"pagination": {"limit", "has_more", "next_cursor"}`` beside ``data``."""

from __future__ import annotations

from rest_framework import pagination
from rest_framework.response import Response

from .exceptions import ValidationFailed


class CursorPagination(pagination.CursorPagination):
    page_size = 20
    max_page_size = 100
    page_size_query_param = "limit"
    cursor_query_param = "cursor"
    # (created_at, id) is a total order, so pages neither repeat nor skip rows inserted meanwhile.
    ordering = ("-created_at", "-id")

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        try:
            value = int(raw)
        except ValueError:
            raise ValidationFailed(details={"limit": ["Must be an integer between 1 and 100."]}) from None
        if not 1 <= value <= self.max_page_size:
            raise ValidationFailed(details={"limit": ["Must be an integer between 1 and 100."]})
        return value

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except Exception as exc:  # DRF raises NotFound for a garbled cursor
            from rest_framework.exceptions import NotFound

            if isinstance(exc, NotFound):
                raise ValidationFailed(details={"cursor": ["Invalid cursor."]}) from None
            raise

    def encode_cursor(self, cursor):
        url = super().encode_cursor(cursor)
        from urllib.parse import parse_qs, urlparse

        return parse_qs(urlparse(url).query).get(self.cursor_query_param, [None])[0]

    def get_paginated_response(self, data):
        response = Response(
            {
                "data": data,
                "pagination": {
                    "limit": self.page_size,
                    "has_more": self.has_next,
                    "next_cursor": self.get_next_link() if self.has_next else None,
                },
            }
        )
        response.easypay_envelope = True  # type: ignore[attr-defined]  # a marker attribute the stubs cannot know
        return response

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "properties": {
                "data": schema,
                "pagination": {
                    "type": "object",
                    "properties": {
                        "limit": {"type": "integer"},
                        "has_more": {"type": "boolean"},
                        "next_cursor": {"type": "string", "nullable": True},
                    },
                },
                "request_id": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"},
            },
        }
