"""The monitoring API under /api/v1/ (mounted by config/urls.py in the `api` namespace): charts,
dashboards, alert rules, alerts, reports, webhooks, notification preferences and a model's
monitoring signals."""

from django.urls import path

from mlmanager.monitoring.api import alerts as alert_api
from mlmanager.monitoring.api import attachments, model_monitoring
from mlmanager.monitoring.api import charts as chart_api
from mlmanager.monitoring.api import notifications as notification_api
from mlmanager.monitoring.api import reports as report_api
from mlmanager.monitoring.api import rules as rule_api

# The resources GET /api/v1/ lists: the name it shows -> the URL name in this module.
index: dict[str, str] = {
    "charts": "charts",
    "dashboards": "dashboards",
    "alert_rules": "alert-rules",
    "alerts": "alerts",
    "model_attachments": "model-attachments",
    "reports": "reports",
    "webhooks": "webhooks",
    "notifications": "notifications",
}

urlpatterns: list = [
    # Charts, dashboards and a model's monitoring signals.
    path("charts/", chart_api.ChartListCreateApi.as_view(), name="charts"),
    path("charts/<int:chart_id>/", chart_api.ChartDetailApi.as_view(), name="chart"),
    path("charts/<int:chart_id>/data/", chart_api.ChartDataApi.as_view(), name="chart-data"),
    path("dashboards/", chart_api.DashboardListCreateApi.as_view(), name="dashboards"),
    path(
        "dashboards/<int:dashboard_id>/",
        chart_api.DashboardDetailApi.as_view(),
        name="dashboard",
    ),
    path(
        "models/<int:machine_id>/monitoring/",
        model_monitoring.ModelMonitoringApi.as_view(),
        name="model-monitoring",
    ),
    # Alert rules and alerts.
    path("alert_rules/", rule_api.RuleListCreateApi.as_view(), name="alert-rules"),
    path("alert_rules/<int:rule_id>/", rule_api.RuleDetailApi.as_view(), name="alert-rule"),
    path("alert_rules/<int:rule_id>/mute/", rule_api.RuleMuteApi.as_view(), name="alert-rule-mute"),
    path(
        "alert_rules/<int:rule_id>/unmute/",
        rule_api.RuleUnmuteApi.as_view(),
        name="alert-rule-unmute",
    ),
    path("alerts/", alert_api.AlertListApi.as_view(), name="alerts"),
    path(
        "alerts/<int:alert_id>/",
        alert_api.AlertDetailApi.as_view(),
        name="alert",
    ),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        alert_api.AlertAcknowledgeApi.as_view(),
        name="alert-acknowledge",
    ),
    path(
        "alerts/<int:alert_id>/assign/",
        alert_api.AlertAssignApi.as_view(),
        name="alert-assign",
    ),
    path(
        "alerts/<int:alert_id>/comments/",
        alert_api.AlertCommentsApi.as_view(),
        name="alert-comments",
    ),
    path(
        "alerts/<int:alert_id>/mute/",
        alert_api.AlertMuteApi.as_view(),
        name="alert-mute",
    ),
    path(
        "alerts/<int:alert_id>/unmute/",
        alert_api.AlertUnmuteApi.as_view(),
        name="alert-unmute",
    ),
    path(
        "alerts/<int:alert_id>/resolve/",
        alert_api.AlertResolveApi.as_view(),
        name="alert-resolve",
    ),
    path(
        "alerts/<int:alert_id>/events/",
        alert_api.AlertEventsApi.as_view(),
        name="alert-events",
    ),
    # Reports, webhooks, notification preferences, in-app notifications.
    path("reports/", report_api.ReportListCreateApi.as_view(), name="reports"),
    path("reports/<int:report_id>/", report_api.ReportDetailApi.as_view(), name="report"),
    path(
        "reports/<int:report_id>/send_now/",
        report_api.ReportSendNowApi.as_view(),
        name="report-send-now",
    ),
    path("webhooks/", notification_api.WebhookListCreateApi.as_view(), name="webhooks"),
    path("webhooks/<int:webhook_id>/", notification_api.WebhookDetailApi.as_view(), name="webhook"),
    path(
        "webhooks/<int:webhook_id>/test/",
        notification_api.WebhookTestApi.as_view(),
        name="webhook-test",
    ),
    path(
        "notification_preferences/",
        notification_api.NotificationPreferenceApi.as_view(),
        name="notification-preferences",
    ),
    path("notifications/", notification_api.NotificationListApi.as_view(), name="notifications"),
    path(
        "notifications/read/",
        notification_api.NotificationReadApi.as_view(),
        name="notifications-read",
    ),
    path(
        "model_attachments/",
        attachments.AttachmentListCreateApi.as_view(),
        name="model-attachments",
    ),
    path(
        "model_attachments/<int:attachment_id>/",
        attachments.AttachmentDetailApi.as_view(),
        name="model-attachment",
    ),
]
