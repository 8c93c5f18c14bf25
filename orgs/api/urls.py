"""/api/v1/orgs/..."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from orgs.api import views

router = SimpleRouter(use_regex_path=False)
router.register("members", views.MemberViewSet, basename="member")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("tokens", views.TokenViewSet, basename="token")
router.register("audit", views.AuditViewSet, basename="audit")

app_name = "orgs-api"
urlpatterns = [
    path("current/", views.CurrentOrgView.as_view(), name="current"),
    *router.urls,
]
