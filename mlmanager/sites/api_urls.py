"""The sites API under /api/v1/ (mounted by config/urls.py in the `api` namespace): sites,
sensors and the readings ingest (alerts are the monitoring app's)."""

from django.urls import path

from mlmanager.sites.api import readings, sensors, sites

# The resources GET /api/v1/ lists: the name it shows -> the URL name in this module.
index = {
    "sites": "sites",
    "sensors": "sensors",
    "readings": "readings",
}

urlpatterns = [
    path("sites/", sites.SiteListCreateApi.as_view(), name="sites"),
    path("sites/<int:site_id>/", sites.SiteDetailApi.as_view(), name="site"),
    path("sites/<int:site_id>/status/", sites.SiteStatusApi.as_view(), name="site-status"),
    path(
        "sites/<int:site_id>/start_production/",
        sites.SiteStartProductionApi.as_view(),
        name="site-start-production",
    ),
    path(
        "sites/<int:site_id>/emergency_stop/",
        sites.SiteEmergencyStopApi.as_view(),
        name="site-emergency-stop",
    ),
    path("sites/<int:site_id>/members/", sites.SiteMemberListApi.as_view(), name="site-members"),
    path(
        "sites/<int:site_id>/members/<int:user_id>/",
        sites.SiteMemberDetailApi.as_view(),
        name="site-member",
    ),
    path(
        "sites/<int:site_id>/device_keys/",
        sites.SiteDeviceKeyListApi.as_view(),
        name="site-device-keys",
    ),
    path(
        "sites/<int:site_id>/device_keys/<int:key_id>/",
        sites.SiteDeviceKeyDetailApi.as_view(),
        name="site-device-key",
    ),
    path(
        "sites/<int:site_id>/production/",
        sites.SiteProductionListApi.as_view(),
        name="site-production",
    ),
    path("sensors/", sensors.SensorListCreateApi.as_view(), name="sensors"),
    path("sensors/<int:sensor_id>/", sensors.SensorDetailApi.as_view(), name="sensor"),
    path(
        "sensors/<int:sensor_id>/readings/",
        sensors.SensorReadingsApi.as_view(),
        name="sensor-readings",
    ),
    path(
        "sensors/<int:sensor_id>/calibrate/",
        sensors.SensorCalibrateApi.as_view(),
        name="sensor-calibrate",
    ),
    path(
        "sensors/<int:sensor_id>/calibrations/",
        sensors.SensorCalibrationListApi.as_view(),
        name="sensor-calibrations",
    ),
    path("readings/", readings.ReadingIngestApi.as_view(), name="readings"),
]
