"""Portal URLs of the orgs app: public pages, and org pages mounted under /o/<org_slug>/."""

from django.contrib.auth.views import LogoutView
from django.urls import path

from orgs import views

public_urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("orgs/", views.org_list, name="org_list"),
    path("invite/<str:token>/", views.accept_invite, name="accept_invite"),
]

org_urlpatterns = [
    path("", views.overview, name="overview"),
    path("members/", views.members, name="members"),
    path("members/<int:pk>/role/", views.member_role, name="member_role"),
    path("members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("audit/", views.audit, name="audit"),
    path("settings/", views.org_settings, name="settings"),
]
