from django.urls import path

from mlmanager.marketplace import views

app_name = "marketplace"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("mine/", views.mine, name="mine"),
    path("publish/<int:machine_id>/", views.publish, name="publish"),
    path("<int:listing_id>/", views.listing_detail, name="listing"),
    path("<int:listing_id>/try/", views.listing_try, name="try"),
    path("<int:listing_id>/buy_data/", views.listing_buy_data, name="buy_data"),
    path("<int:listing_id>/data/", views.listing_data, name="data"),
    path("<int:listing_id>/copy/", views.listing_copy, name="copy"),
    path("<int:listing_id>/toggle/", views.listing_toggle, name="toggle"),
    path("<int:listing_id>/push_update/", views.listing_push, name="push_update"),
]
