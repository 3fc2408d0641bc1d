from django.urls import path

from mlmanager.sites import views

app_name = "sites"

urlpatterns = [
    path("", views.site_list, name="list"),
    path("new/", views.site_create, name="create"),
    path("dead-letters/", views.dead_letters, name="dead_letters"),
    path("<int:site_id>/", views.site_dashboard, name="dashboard"),
    path("<int:site_id>/start/", views.site_start_production, name="start_production"),
    path("<int:site_id>/stop/", views.site_emergency_stop, name="emergency_stop"),
    path("<int:site_id>/production/", views.site_production, name="production"),
    path("<int:site_id>/settings/", views.site_settings, name="settings"),
    path("<int:site_id>/delete/", views.site_delete, name="delete"),
    path("<int:site_id>/sensors/new/", views.sensor_add, name="sensor_add"),
    path("<int:site_id>/members/", views.member_set, name="member_set"),
    path("<int:site_id>/members/<int:user_id>/remove/", views.member_remove, name="member_remove"),
    path("<int:site_id>/keys/", views.device_key_create, name="key_create"),
    path("<int:site_id>/keys/<int:key_id>/revoke/", views.device_key_revoke, name="key_revoke"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="alert_acknowledge"),
    path("sensors/<int:sensor_id>/", views.sensor_detail, name="sensor"),
    path("sensors/<int:sensor_id>/readings.csv", views.sensor_export, name="sensor_export"),
    path("sensors/<int:sensor_id>/thresholds/", views.sensor_thresholds, name="sensor_thresholds"),
    path("sensors/<int:sensor_id>/calibrate/", views.sensor_calibrate, name="sensor_calibrate"),
    path("sensors/<int:sensor_id>/delete/", views.sensor_remove, name="sensor_remove"),
]
