"""API v1 routes of billing (paths relative to /api/v1/)."""

from django.urls import path

from mlmanager.billing import api, api_estimate, api_usage

urlpatterns = [
    path(
        "models/<int:machine_id>/estimate/",
        api_estimate.ModelTrainingEstimateApi.as_view(),
        name="model-estimate",
    ),
    path("billing/account/", api.BillingAccountApi.as_view(), name="billing-account"),
    path("billing/ledger/", api.BillingLedgerApi.as_view(), name="billing-ledger"),
    path("billing/prices/", api.BillingPricesApi.as_view(), name="billing-prices"),
    path("billing/credits/", api.BillingCreditCreateApi.as_view(), name="billing-credits"),
    path("billing/coupons/", api.BillingCouponCreateApi.as_view(), name="billing-coupons"),
    path(
        "billing/coupons/redeem/",
        api.BillingCouponRedeemApi.as_view(),
        name="billing-coupons-redeem",
    ),
    path("billing/payments/", api.BillingPaymentCreateApi.as_view(), name="billing-payments"),
    path("billing/usage/", api_usage.BillingUsageApi.as_view(), name="billing-usage"),
    path(
        "billing/statements/<str:month>/",
        api.BillingStatementApi.as_view(),
        name="billing-statement",
    ),
]

# GET /api/v1/ lists them (config/urls.py): resource name -> URL name.
index = {
    "billing_account": "billing-account",
    "billing_ledger": "billing-ledger",
    "billing_prices": "billing-prices",
}
