"""The accounts API under /api/v1/ (mounted by config/urls.py in the `api` namespace)."""

from django.urls import path

from mlmanager.accounts import api

# The resources GET /api/v1/ lists: the name it shows -> the URL name in this module.
index = {"signup": "signup", "token": "token", "me": "me", "teams": "teams"}

urlpatterns = [
    path("auth/signup/", api.SignupApi.as_view(), name="signup"),
    path("auth/token/", api.TokenCreateApi.as_view(), name="token"),
    path("me/", api.MeApi.as_view(), name="me"),
    path("teams/", api.TeamListCreateApi.as_view(), name="teams"),
    path("teams/<int:team_id>/members/", api.TeamMemberListApi.as_view(), name="team-members"),
]
