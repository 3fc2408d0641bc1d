from django.urls import path

from mlmanager.billing import views, views_usage

app_name = "billing"

urlpatterns = [
    path("", views.index, name="index"),
    path("redeem/", views.coupon_redeem, name="redeem"),
    path("ledger/", views.ledger, name="ledger"),
    path("statements/", views.statement_list, name="statements"),
    path("statements/<str:month>/", views.statement_detail, name="statement"),
    path("staff/", views.staff, name="staff"),
    path("usage/", views_usage.usage_page, name="usage"),
]
