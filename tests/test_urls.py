"""The URLconf: every app's routes are mounted from the app itself (config/urls.py names no app),
and every URL name and path clients and templates are written against stays what it was."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils.module_loading import module_has_submodule

# Every named route outside the admin when routes moved into the apps (issue 13, item 8), in
# resolution order within each namespace. A change here is a change of the public API or of
# links people keep: it must be deliberate.
ROUTES = {
    "healthz": "healthz",
    "readyz": "readyz",
    "metrics": "metrics",
    "accounts:login": "accounts/login/",
    "accounts:logout": "accounts/logout/",
    "accounts:signup": "accounts/signup/",
    "accounts:signup_done": "accounts/signup/sent/",
    "accounts:activate": "accounts/activate/<str:uidb64>/<str:token>/",
    "accounts:activate_choose_password": "accounts/activate/<str:uidb64>/<str:token>/password/",
    "accounts:profile": "accounts/profile/",
    "accounts:password_change": "accounts/password/change/",
    "accounts:password_change_done": "accounts/password/change/done/",
    "accounts:password_reset": "accounts/password/reset/",
    "accounts:password_reset_done": "accounts/password/reset/sent/",
    "accounts:password_reset_confirm": "accounts/password/reset/<uidb64>/<token>/",
    "accounts:password_reset_complete": "accounts/password/reset/complete/",
    "accounts:team_create": "accounts/teams/new/",
    "accounts:team_switch": "accounts/teams/switch/",
    "accounts:team": "accounts/teams/<int:team_id>/",
    "accounts:team_leave": "accounts/teams/<int:team_id>/leave/",
    "accounts:membership_update": "accounts/members/<int:membership_id>/",
    "accounts:invitation_revoke": "accounts/invitations/<int:invitation_id>/revoke/",
    "accounts:invitation_accept": "accounts/invite/<str:token>/",
    "accounts:api_tokens": "accounts/tokens/",
    "accounts:api_token_revoke": "accounts/tokens/<int:token_id>/revoke/",
    "datasets:list": "datasets/",
    "datasets:detail": "datasets/<int:dataset_id>/",
    "datasets:preview": "datasets/<int:dataset_id>/preview/",
    "datasets:rename": "datasets/<int:dataset_id>/rename/",
    "datasets:column_type": "datasets/<int:dataset_id>/column-type/",
    "datasets:delete": "datasets/<int:dataset_id>/delete/",
    "machines:list": "models/",
    "machines:create": "models/new/",
    "machines:detail": "models/<int:machine_id>/",
    "machines:train": "models/<int:machine_id>/train/",
    "machines:edit": "models/<int:machine_id>/edit/",
    "machines:delete": "models/<int:machine_id>/delete/",
    "machines:version_activate": "models/<int:machine_id>/versions/<int:number>/activate/",
    "machines:run_cancel": "models/runs/<int:run_id>/cancel/",
    "machines:version_threshold": "models/<int:machine_id>/versions/<int:number>/threshold/",
    "jobs:list": "jobs/",
    "jobs:detail": "jobs/<int:job_id>/",
    "jobs:cancel": "jobs/<int:job_id>/cancel/",
    "predictions:team_log": "predictions/",
    "predictions:predict": "models/<int:machine_id>/predict/",
    "predictions:log": "models/<int:machine_id>/predictions/",
    "predictions:feedback_dataset": "models/<int:machine_id>/predictions/feedback-dataset/",
    "predictions:batches": "models/<int:machine_id>/batches/",
    "predictions:feedback": "predictions/<uuid:prediction_id>/feedback/",
    "predictions:batch_download": "batches/<int:batch_id>/download/",
    "api:index": "api/v1/",
    "api:signup": "api/v1/auth/signup/",
    "api:token": "api/v1/auth/token/",
    "api:me": "api/v1/me/",
    "api:teams": "api/v1/teams/",
    "api:team-members": "api/v1/teams/<int:team_id>/members/",
    "api:datasets": "api/v1/datasets/",
    "api:dataset": "api/v1/datasets/<int:dataset_id>/",
    "api:dataset-preview": "api/v1/datasets/<int:dataset_id>/preview/",
    "api:models": "api/v1/models/",
    "api:model": "api/v1/models/<int:machine_id>/",
    "api:model-start-training": "api/v1/models/<int:machine_id>/start_training/",
    "api:model-training-status": "api/v1/models/<int:machine_id>/training_status/",
    "api:model-versions": "api/v1/models/<int:machine_id>/versions/",
    "api:model-version": "api/v1/models/<int:machine_id>/versions/<int:number>/",
    "api:model-version-activate": "api/v1/models/<int:machine_id>/versions/<int:number>/activate/",
    "api:model-predict": "api/v1/models/<int:machine_id>/predict/",
    "api:model-batch-predictions": "api/v1/models/<int:machine_id>/batch_predictions/",
    "api:model-feedback-dataset": "api/v1/models/<int:machine_id>/feedback_dataset/",
    "api:predictions": "api/v1/predictions/",
    "api:prediction-feedback": "api/v1/predictions/<str:prediction_id>/feedback/",
    "api:batch-prediction": "api/v1/batch_predictions/<int:batch_id>/",
    "api:batch-prediction-download": "api/v1/batch_predictions/<int:batch_id>/download/",
    "api:run": "api/v1/runs/<int:run_id>/",
    "api:run-cancel": "api/v1/runs/<int:run_id>/cancel/",
    "api:jobs": "api/v1/jobs/",
    "api:job": "api/v1/jobs/<int:job_id>/",
    "api:job-cancel": "api/v1/jobs/<int:job_id>/cancel/",
    "schema": "api/schema/",
    "api-docs": "api/docs/",
    "api-not-found": "^api(?:/|$)",
    # Issue 16: image datasets, image predictions, reviews and reports.
    "api:dataset-confirm": "api/v1/datasets/<int:dataset_id>/confirm/",
    "api:dataset-images": "api/v1/datasets/<int:dataset_id>/images/",
    "api:dataset-image-file": (
        "api/v1/datasets/<int:dataset_id>/images/<int:index>/<str:column>.png"
    ),
    "api:prediction-review": "api/v1/predictions/<str:prediction_id>/review/",
    "api:prediction-report": "api/v1/predictions/<str:prediction_id>/report.pdf",
    "api:prediction-image": "api/v1/predictions/<str:prediction_id>/image.png",
    "api:prediction-mask": "api/v1/predictions/<str:prediction_id>/mask.png",
    "api:batch-prediction-masks": "api/v1/batch_predictions/<int:batch_id>/masks/",
    "datasets:confirm": "datasets/<int:dataset_id>/confirm/",
    "datasets:gallery": "datasets/<int:dataset_id>/gallery/",
    "datasets:image": "datasets/<int:dataset_id>/images/<int:index>/",
    "datasets:image_file": "datasets/<int:dataset_id>/images/<int:index>/<str:column>.png",
    "predictions:detail": "predictions/<uuid:prediction_id>/",
    "predictions:image": "predictions/<uuid:prediction_id>/image.png",
    "predictions:overlay": "predictions/<uuid:prediction_id>/overlay.png",
    "predictions:report": "predictions/<uuid:prediction_id>/report.pdf",
    "predictions:review": "predictions/<uuid:prediction_id>/review/",
    "predictions:batch_masks": "batches/<int:batch_id>/masks/",
    # Issue 17: the platform log (staff).
    "ops:platform_log": "ops/platform-log/",
    "ops:platform_log_entry": "ops/platform-log/<int:entry_id>/",
    # Issue 17: billing (account, ledger, prices, coupons, credits, payments, statements).
    "api:billing-account": "api/v1/billing/account/",
    "api:billing-ledger": "api/v1/billing/ledger/",
    "api:billing-prices": "api/v1/billing/prices/",
    "api:billing-credits": "api/v1/billing/credits/",
    "api:billing-coupons": "api/v1/billing/coupons/",
    "api:billing-coupons-redeem": "api/v1/billing/coupons/redeem/",
    "api:billing-payments": "api/v1/billing/payments/",
    "api:billing-statement": "api/v1/billing/statements/<str:month>/",
    "billing:index": "billing/",
    "billing:redeem": "billing/redeem/",
    "billing:ledger": "billing/ledger/",
    "billing:statements": "billing/statements/",
    "billing:statement": "billing/statements/<str:month>/",
    "billing:staff": "billing/staff/",
    # Issue 17: the training estimate (billing.api_estimate).
    "api:model-estimate": "api/v1/models/<int:machine_id>/estimate/",
    # Issue 17: quotas (usage page and API).
    "api:billing-usage": "api/v1/billing/usage/",
    "billing:usage": "billing/usage/",
    # Issue 17: the marketplace.
    "api:marketplace-listings": "api/v1/marketplace/listings/",
    "api:marketplace-listing": "api/v1/marketplace/listings/<int:listing_id>/",
    "api:marketplace-listing-predict": "api/v1/marketplace/listings/<int:listing_id>/predict/",
    "api:marketplace-listing-buy-data": "api/v1/marketplace/listings/<int:listing_id>/buy_data/",
    "api:marketplace-listing-data": "api/v1/marketplace/listings/<int:listing_id>/data/",
    "api:marketplace-listing-copy": "api/v1/marketplace/listings/<int:listing_id>/copy/",
    "api:marketplace-listing-push-update": (
        "api/v1/marketplace/listings/<int:listing_id>/push_update/"
    ),
    "marketplace:catalogue": "marketplace/",
    "marketplace:mine": "marketplace/mine/",
    "marketplace:publish": "marketplace/publish/<int:machine_id>/",
    "marketplace:listing": "marketplace/<int:listing_id>/",
    "marketplace:try": "marketplace/<int:listing_id>/try/",
    "marketplace:buy_data": "marketplace/<int:listing_id>/buy_data/",
    "marketplace:data": "marketplace/<int:listing_id>/data/",
    "marketplace:copy": "marketplace/<int:listing_id>/copy/",
    "marketplace:toggle": "marketplace/<int:listing_id>/toggle/",
    "marketplace:push_update": "marketplace/<int:listing_id>/push_update/",
    # Runs, registry, retraining, dataset versions, graphs, relations, the experimenter (issue 18)
    "datasets:relations": "datasets/<int:dataset_id>/relations/",
    "datasets:versions": "datasets/<int:dataset_id>/versions/",
    "datasets:append_rows": "datasets/<int:dataset_id>/append-rows/",
    "datasets:graphs": "datasets/<int:dataset_id>/graphs/",
    "datasets:graph_delete": "datasets/<int:dataset_id>/graphs/<int:graph_id>/delete/",
    "machines:dataset": "models/<int:machine_id>/dataset/",
    "machines:dataset_change": "models/<int:machine_id>/dataset/change/",
    "machines:experimenter": "models/<int:machine_id>/experimenter/",
    "machines:aliases": "models/<int:machine_id>/aliases/",
    "machines:retraining": "models/<int:machine_id>/retraining/",
    "machines:runs": "models/<int:machine_id>/runs/",
    "machines:runs_compare": "models/runs/compare/",
    "machines:run_rerun": "models/runs/<int:run_id>/rerun/",
    "machines:run_artifact": "models/runs/<int:run_id>/artifacts/<str:name>/",
    "api:dataset-relations": "api/v1/datasets/<int:dataset_id>/relations/",
    "api:dataset-rows": "api/v1/datasets/<int:dataset_id>/rows/",
    "api:dataset-versions": "api/v1/datasets/<int:dataset_id>/versions/",
    "api:graph-types": "api/v1/graph_types/",
    "api:dataset-graphs": "api/v1/datasets/<int:dataset_id>/graphs/",
    "api:dataset-graph": "api/v1/datasets/<int:dataset_id>/graphs/<int:graph_id>/",
    "api:dataset-graph-figure": "api/v1/datasets/<int:dataset_id>/graphs/<int:graph_id>/figure/",
    "api:model-experimenter": "api/v1/models/<int:machine_id>/experimenter/",
    "api:model-version-export": "api/v1/models/<int:machine_id>/versions/<int:number>/export/",
    "api:model-version-mlflow-register": (
        "api/v1/models/<int:machine_id>/versions/<int:number>/mlflow/register/"
    ),
    "api:model-aliases": "api/v1/models/<int:machine_id>/aliases/",
    "api:model-alias": "api/v1/models/<int:machine_id>/aliases/<str:alias>/",
    "api:model-retraining": "api/v1/models/<int:machine_id>/retraining/",
    "api:model-retraining-decisions": "api/v1/models/<int:machine_id>/retraining/decisions/",
    "api:model-runs": "api/v1/models/<int:machine_id>/runs/",
    "api:runs-compare": "api/v1/runs/compare/",
    "api:run-rerun": "api/v1/runs/<int:run_id>/rerun/",
    "api:run-artifacts": "api/v1/runs/<int:run_id>/artifacts/",
    "api:run-artifact": "api/v1/runs/<int:run_id>/artifacts/<str:name>/",
    "api:model-feedback-append": "api/v1/models/<int:machine_id>/feedback/append/",
}

# Routes added since the snapshot, by apps that came later; they must not shadow the above.
ADDED_NAMESPACES = (
    "audit:",
    "api:audit",
    "sites:",
    "api:site",
    "api:sensor",
    "api:alert",
    "api:readings",
    "monitoring:",
    "api:chart",
    "api:dashboard",
    "api:model-monitoring",
    "api:alert",
    "api:model-attachment",
    "api:report",
    "api:webhook",
    "api:notification",
    "consulting:",
    "api:consulting",
)

SAMPLE_ARGUMENTS = {
    "int": "7",
    "str": "abc",
    "uuid": "0b6c7d3e-2f4a-4c4e-9a51-6f0e8f1d2c3b",
    "path": "x/y",
    "slug": "abc",
}


def _routes(
    patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif pattern.name:
            yield f"{namespace}{pattern.name}", prefix + str(pattern.pattern)


def _mounted_routes() -> dict[str, str]:
    return {
        name: path
        for name, path in _routes(get_resolver().url_patterns)
        if not name.startswith("admin:") and not name.startswith(ADDED_NAMESPACES)
    }


def test_every_route_name_and_path_is_unchanged() -> None:
    assert _mounted_routes() == ROUTES


def _example(path: str) -> str:
    """`path` with each converter filled in by a sample value."""
    return "/" + re.sub(
        r"<(?:(\w+):)?\w+>", lambda match: SAMPLE_ARGUMENTS[match.group(1) or "str"], path
    )


@pytest.mark.parametrize(
    "name", [name for name, path in ROUTES.items() if not path.startswith("^")]
)
def test_every_path_reaches_its_own_view(name: str) -> None:
    # Resolution follows the order of the patterns: a route mounted after one that also
    # matches its paths (an app mounted at "" before a prefixed one) would never be reached.
    assert resolve(_example(ROUTES[name])).view_name == name


def test_an_unknown_api_path_reaches_the_api_404() -> None:
    assert resolve("/api/v1/nothing-here/").view_name == "api-not-found"
    assert resolve("/api").view_name == "api-not-found"


def test_every_api_urls_module_is_mounted_under_the_api_namespace() -> None:
    mounted = {
        id(pattern)
        for resolver in get_resolver().url_patterns
        if isinstance(resolver, URLResolver) and resolver.namespace == "api"
        for pattern in resolver.url_patterns
    }
    modules = [
        importlib.import_module(f"{config.name}.api_urls")
        for config in apps.get_app_configs()
        if config.name.startswith("mlmanager.") and module_has_submodule(config.module, "api_urls")
    ]
    assert len(modules) >= 5
    for module in modules:
        assert module.urlpatterns, module.__name__
        for pattern in module.urlpatterns:
            assert id(pattern) in mounted, (module.__name__, pattern)
    # Each name once: two apps naming a route alike would shadow one silently.
    names = [name for name, _ in _routes(get_resolver().url_patterns) if name.startswith("api:")]
    assert len(names) == len(set(names))
    assert reverse("api:jobs") == "/api/v1/jobs/"
