"""The sites API under /api/v1/ (mounted by config/urls.py in the `api` namespace): sites,
sensors, alerts and the readings ingest."""

from django.urls import path

from mlmanager.sites import api

# The resources GET /api/v1/ lists: the name it shows -> the URL name in this module.
index = {
    "sites": "sites",
    "sensors": "sensors",
    "alerts": "alerts",
    "readings": "readings",
}

urlpatterns = [
    path("sites/", api.SiteListCreateApi.as_view(), name="sites"),
    path("sites/<int:site_id>/", api.SiteDetailApi.as_view(), name="site"),
    path("sites/<int:site_id>/status/", api.SiteStatusApi.as_view(), name="site-status"),
    path(
        "sites/<int:site_id>/start_production/",
        api.SiteStartProductionApi.as_view(),
        name="site-start-production",
    ),
    path(
        "sites/<int:site_id>/emergency_stop/",
        api.SiteEmergencyStopApi.as_view(),
        name="site-emergency-stop",
    ),
    path("sites/<int:site_id>/members/", api.SiteMemberListApi.as_view(), name="site-members"),
    path(
        "sites/<int:site_id>/members/<int:user_id>/",
        api.SiteMemberDetailApi.as_view(),
        name="site-member",
    ),
    path(
        "sites/<int:site_id>/device_keys/",
        api.SiteDeviceKeyListApi.as_view(),
        name="site-device-keys",
    ),
    path(
        "sites/<int:site_id>/device_keys/<int:key_id>/",
        api.SiteDeviceKeyDetailApi.as_view(),
        name="site-device-key",
    ),
    path(
        "sites/<int:site_id>/production/",
        api.SiteProductionListApi.as_view(),
        name="site-production",
    ),
    path("sensors/", api.SensorListCreateApi.as_view(), name="sensors"),
    path("sensors/<int:sensor_id>/", api.SensorDetailApi.as_view(), name="sensor"),
    path(
        "sensors/<int:sensor_id>/readings/",
        api.SensorReadingsApi.as_view(),
        name="sensor-readings",
    ),
    path(
        "sensors/<int:sensor_id>/calibrate/",
        api.SensorCalibrateApi.as_view(),
        name="sensor-calibrate",
    ),
    path(
        "sensors/<int:sensor_id>/calibrations/",
        api.SensorCalibrationListApi.as_view(),
        name="sensor-calibrations",
    ),
    path("alerts/", api.AlertListApi.as_view(), name="alerts"),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        api.AlertAcknowledgeApi.as_view(),
        name="alert-acknowledge",
    ),
    path("readings/", api.ReadingIngestApi.as_view(), name="readings"),
]
