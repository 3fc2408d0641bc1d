"""Pages of charts, dashboards, alert rules and alerts, mounted at /monitoring/."""

from django.urls import path

from mlmanager.monitoring import views, views_alerts, views_notifications

app_name = "monitoring"

urlpatterns: list = [
    path("", views.index, name="index"),
    # Charts and dashboards.
    path("charts/", views.chart_list, name="charts"),
    path("charts/new/", views.chart_create, name="chart_create"),
    path("charts/<int:chart_id>/", views.chart_detail, name="chart"),
    path("charts/<int:chart_id>/panel/", views.chart_panel, name="chart_panel"),
    path("charts/<int:chart_id>/edit/", views.chart_edit, name="chart_edit"),
    path("charts/<int:chart_id>/delete/", views.chart_delete, name="chart_delete"),
    path("dashboards/", views.dashboard_list, name="dashboards"),
    path("dashboards/new/", views.dashboard_create, name="dashboard_create"),
    path("dashboards/<int:dashboard_id>/", views.dashboard_detail, name="dashboard"),
    path("dashboards/<int:dashboard_id>/edit/", views.dashboard_edit, name="dashboard_edit"),
    path("dashboards/<int:dashboard_id>/delete/", views.dashboard_delete, name="dashboard_delete"),
    # A model's monitoring tab.
    path("models/<int:machine_id>/", views.model_monitoring, name="model"),
    path("models/<int:machine_id>/suggest/", views.model_suggest_rules, name="model_suggest"),
    # Alert rules and alerts.
    path("rules/", views_alerts.rule_list, name="rules"),
    path("rules/new/", views_alerts.rule_create, name="rule_create"),
    path("rules/<int:rule_id>/", views_alerts.rule_detail, name="rule"),
    path("rules/<int:rule_id>/mute/", views_alerts.rule_mute, name="rule_mute"),
    path("rules/<int:rule_id>/unmute/", views_alerts.rule_unmute, name="rule_unmute"),
    path("rules/<int:rule_id>/delete/", views_alerts.rule_delete, name="rule_delete"),
    path("alerts/", views_alerts.alert_list, name="alerts"),
    path("alerts/<int:alert_id>/", views_alerts.alert_detail, name="alert"),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        views_alerts.alert_acknowledge,
        name="alert_acknowledge",
    ),
    path("alerts/<int:alert_id>/assign/", views_alerts.alert_assign, name="alert_assign"),
    path("alerts/<int:alert_id>/comment/", views_alerts.alert_comment, name="alert_comment"),
    path("alerts/<int:alert_id>/mute/", views_alerts.alert_mute, name="alert_mute"),
    path("alerts/<int:alert_id>/unmute/", views_alerts.alert_unmute, name="alert_unmute"),
    path("alerts/<int:alert_id>/resolve/", views_alerts.alert_resolve, name="alert_resolve"),
    # Notifications and reports.
    path("notifications/", views_notifications.notification_list, name="notifications"),
    path("notifications/bell/", views_notifications.bell, name="bell"),
    path("notifications/read/", views_notifications.notifications_read, name="notifications_read"),
    path("notifications/preferences/", views_notifications.preferences, name="preferences"),
    path("reports/", views_notifications.report_list, name="reports"),
    path("reports/new/", views_notifications.report_create, name="report_create"),
    path("reports/<int:report_id>/", views_notifications.report_detail, name="report"),
    path("reports/<int:report_id>/send/", views_notifications.report_send_now, name="report_send"),
    path(
        "reports/<int:report_id>/delete/", views_notifications.report_delete, name="report_delete"
    ),
]
