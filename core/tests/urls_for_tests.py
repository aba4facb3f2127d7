"""Extra routes used only by core's tests: a view that fails, one that echoes parsed JSON."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class _Open(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class BoomView(_Open):
    def get(self, request):
        raise RuntimeError("secret detail that must not leak: 4111111111111111")


class EchoView(_Open):
    def post(self, request):
        return Response({"echo": request.data}, status=201)


class ProtectedView(APIView):
    read_scope = "payments:read"

    def get(self, request):
        return Response({"merchant_id": str(request.user.merchant_id)})


urlpatterns = [
    path("api/v1/test/protected", ProtectedView.as_view()),
    path("api/v1/test/boom", BoomView.as_view()),
    path("api/v1/test/echo", EchoView.as_view()),
    path("", include("config.urls")),
]
