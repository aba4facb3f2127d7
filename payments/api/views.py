"""``/api/v1/payments``: parse input, call a service, shape the answer (no money decisions here)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.principal import request_principal
from core.exceptions import CardDeclined, ProcessorError
from core.idempotency import HEADER as IDEMPOTENCY_HEADER
from core.idempotency import OPENAPI_PARAMETER, idempotent
from core.replicas import read_alias, replica_queryset
from payments import services
from payments.api.serializers import (
    PaymentCancelSerializer,
    PaymentCaptureSerializer,
    PaymentCreateSerializer,
    PaymentSerializer,
    PaymentUpdateSerializer,
    RefundCreateSerializer,
)
from payments.cache import payment_cache_fill, payment_cache_read
from payments.filters import PaymentFilter
from payments.models import Payment, PaymentStatus
from payments.payloads import payment_payload, payments_payload
from payments.selectors import payment_get, payment_list

ERROR_SCHEMA = inline_serializer(
    name="PaymentError",
    fields={
        "error": inline_serializer(
            name="PaymentErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        ),
        "data": PaymentSerializer(
            required=False, help_text="The stored payment, for card_declined and processor_error."
        ),
        "request_id": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
    },
)
IDEMPOTENCY_PARAMETER = OPENAPI_PARAMETER
PAYMENT_EXAMPLE = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "external_id": "pay_2024_001",
    "amount": "25.99",
    "currency": "USD",
    "status": "captured",
    "payment_method": "credit_card",
    "customer_id": "cust_123456789",
    "customer_email": "customer@example.com",
    "customer_name": "John Doe",
    "card_last_four": "4242",
    "card_brand": "visa",
    "description": "Premium subscription payment",
    "metadata": {"order_id": "order_2024_001"},
    "processor_response_code": "1",
    "processor_response_message": "This transaction has been approved.",
    "processor_transaction_id": "60123456789",
    "authorized_amount": "25.99",
    "captured_amount": "25.99",
    "refunded_amount": "0.00",
    "refund_count": 0,
    "refunds": [],
    "subscription_id": None,
    "created_at": "2024-01-01T12:00:00Z",
    "updated_at": "2024-01-01T12:00:05Z",
    "processed_at": "2024-01-01T12:00:05Z",
    "settled_at": None,
    "is_test": True,
}
ERRORS = {
    400: OpenApiResponse(ERROR_SCHEMA, description="validation_error: details name each bad field"),
    404: OpenApiResponse(ERROR_SCHEMA, description="not_found: unknown, foreign or malformed id"),
    409: OpenApiResponse(ERROR_SCHEMA, description="invalid_state, or idempotency_conflict"),
    502: OpenApiResponse(ERROR_SCHEMA, description="processor_error, with the stored payment in data"),
    503: OpenApiResponse(ERROR_SCHEMA, description="service_unavailable: the processor circuit is open"),
}


def _created_response(created: services.ChargeResult) -> Response:
    """201 for an approval (captured or authorized) and for a charge held for review (status held)."""
    # payment_create hands back the dict it serialized for the outcome's event: the same state.
    payment = created.payment
    data = created.data or payment_payload(payment)
    if payment.status == PaymentStatus.DECLINED:
        raise CardDeclined(
            f"The card was declined: {payment.processor_response_message or 'no reason given'}",
            details={
                "processor_response_code": payment.processor_response_code,
                "processor_reason_code": payment.processor_reason_code,
            },
            data=data,
        )
    if payment.status == PaymentStatus.FAILED:
        raise ProcessorError(
            f"The payment processor could not complete the payment: {payment.processor_response_message}",
            details={"processor_response_code": payment.processor_response_code},
            data=data,
        )
    if payment.status == PaymentStatus.PENDING:
        raise ProcessorError(
            "The processor did not answer in time; the payment is pending and will be reconciled "
            "automatically. Do not retry with a new Idempotency-Key: fetch the payment instead.",
            data=data,
        )
    return Response(data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        summary="List payments",
        description="Newest first, cursor-paginated. Invalid filter values are 400 validation_error.",
        responses={200: PaymentSerializer(many=True), 400: ERRORS[400]},
    ),
    retrieve=extend_schema(summary="Get a payment", responses={200: PaymentSerializer, 404: ERRORS[404]}),
)
class PaymentViewSet(viewsets.GenericViewSet):
    read_scope = "payments:read"
    write_scope = "payments:write"
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter
    lookup_value_regex = "[^/]+"
    queryset = Payment.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        return replica_queryset(payment_list(merchant_id=request_principal(self.request).merchant_id), self.request)

    def get_object(self) -> Payment:
        return payment_get(merchant_id=request_principal(self.request).merchant_id, payment_id=self.kwargs.get("pk"))

    def list(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        assert page is not None  # the list is always paginated (core.pagination)
        return self.get_paginated_response(payments_payload(page))

    def retrieve(self, request, pk=None):
        merchant_id = request_principal(request).merchant_id
        cached, lease = payment_cache_read(merchant_id=merchant_id, payment_id=pk)
        if cached is not None:
            return Response(cached)
        alias = read_alias(merchant_id)
        payment = payment_get(merchant_id=merchant_id, payment_id=pk, using=alias)
        data = payment_payload(payment)
        if alias == "default":  # the cache is only ever filled from the primary
            payment_cache_fill(merchant_id=merchant_id, payment_id=payment.pk, data=data, lease=lease)
        return Response(data)

    @extend_schema(
        summary="Create a payment (purchase, or authorization with capture=false)",
        description=(
            "201 with status captured (purchase), authorized (capture=false) or held (held for review by the "
            "processor; it stays held until the processor's review ends). 402 card_declined carries the stored "
            "payment in data. 502 processor_error: the payment is kept as failed, or pending until reconciled "
            "when the processor's answer was lost."
        ),
        request=PaymentCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: PaymentSerializer,
            400: ERRORS[400],
            402: OpenApiResponse(ERROR_SCHEMA, description="card_declined, with the stored payment in data"),
            409: ERRORS[409],
            502: ERRORS[502],
            503: ERRORS[503],
        },
        examples=[
            OpenApiExample(
                "Purchase",
                request_only=True,
                value={
                    "amount": "25.99",
                    "currency": "USD",
                    "customer_id": "cust_123456789",
                    "customer_email": "customer@example.com",
                    "customer_name": "John Doe",
                    "card_token": "tok_visa_4242",
                    "description": "Premium subscription payment",
                    "metadata": {"order_id": "order_2024_001"},
                },
            ),
            OpenApiExample("Captured", response_only=True, status_codes=["201"], value=PAYMENT_EXAMPLE),
        ],
    )
    @idempotent(success_status=status.HTTP_201_CREATED)
    def create(self, request):
        principal = request.user
        serializer = PaymentCreateSerializer(data=request.data, context={"mode_is_test": principal.is_test})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        created = services.payment_create(
            merchant_id=principal.merchant_id,
            is_test=principal.is_test,
            amount=data["amount"],
            currency=data["currency"],
            capture=data["capture"],
            card_token=data["card_token"],
            customer_id=data["customer_id"],
            customer_email=data["customer_email"],
            customer_name=data["customer_name"],
            customer_phone=data["customer_phone"],
            description=data["description"],
            metadata=data["metadata"],
            external_id=data.get("external_id"),
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
            idempotency_claim=getattr(request, "idempotency_claim", None),  # set by @idempotent when a key was sent
        )
        return _created_response(created)

    @extend_schema(
        summary="Update a payment's description, metadata, customer_email or customer_name",
        description="Any other field is 400 validation_error naming it. PUT and PATCH behave alike.",
        request=PaymentUpdateSerializer,
        responses={200: PaymentSerializer, 400: ERRORS[400], 404: ERRORS[404]},
        examples=[OpenApiExample("Update", request_only=True, value={"description": "Order #1001", "metadata": {}})],
    )
    def update(self, request, pk=None):
        payment = self.get_object()
        serializer = PaymentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_update(payment=payment, **serializer.validated_data)
        return Response(payment_payload(payment))

    @extend_schema(
        summary="Partially update a payment's description, metadata, customer_email or customer_name",
        request=PaymentUpdateSerializer,
        responses={200: PaymentSerializer, 400: ERRORS[400], 404: ERRORS[404]},
    )
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)

    @extend_schema(
        summary="Capture an authorized payment",
        description="Only from authorized, at most the authorized amount (default: all of it); else 409.",
        request=PaymentCaptureSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: PaymentSerializer, **ERRORS},
        examples=[OpenApiExample("Partial capture", request_only=True, value={"amount": "10.00"})],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def capture(self, request, pk=None):
        payment = self.get_object()
        serializer = PaymentCaptureSerializer(data=request.data, context={"currency": payment.currency})
        serializer.is_valid(raise_exception=True)
        payment = services.payment_capture(payment=payment, amount=serializer.validated_data.get("amount"))
        return Response(payment_payload(payment))

    @extend_schema(
        summary="Refund a captured payment, fully or partially",
        description=(
            "Full by default; several partial refunds are allowed. The refunded total never exceeds the captured "
            "amount, even under concurrent requests (the excess is 409 invalid_state). A payment not yet settled "
            "at the processor is 409 invalid_state: cancel it instead."
        ),
        request=RefundCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: PaymentSerializer, **ERRORS},
        examples=[OpenApiExample("Partial refund", request_only=True, value={"amount": "5.00", "reason": "damaged"})],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def refund(self, request, pk=None):
        payment = self.get_object()
        serializer = RefundCreateSerializer(data=request.data, context={"currency": payment.currency})
        serializer.is_valid(raise_exception=True)
        services.refund_create(
            payment=payment,
            amount=serializer.validated_data.get("amount"),
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(
            payment_payload(payment_get(merchant_id=request_principal(request).merchant_id, payment_id=payment.pk))
        )

    @extend_schema(
        summary="Cancel (void) an authorized or not yet settled payment",
        description="A settled payment is 409 invalid_state: refund it instead.",
        request=PaymentCancelSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: PaymentSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        payment = self.get_object()
        serializer = PaymentCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        payment = services.payment_void(payment=payment)
        return Response(payment_payload(payment))
