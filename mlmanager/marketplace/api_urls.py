"""The marketplace API under /api/v1/ (mounted by config/urls.py in the `api` namespace)."""

from django.urls import path

from mlmanager.marketplace import api

index = {"marketplace": "marketplace-listings"}

urlpatterns = [
    path(
        "marketplace/listings/",
        api.ListingListCreateApi.as_view(),
        name="marketplace-listings",
    ),
    path(
        "marketplace/listings/<int:listing_id>/",
        api.ListingDetailApi.as_view(),
        name="marketplace-listing",
    ),
    path(
        "marketplace/listings/<int:listing_id>/predict/",
        api.ListingPredictApi.as_view(),
        name="marketplace-listing-predict",
    ),
    path(
        "marketplace/listings/<int:listing_id>/buy_data/",
        api.ListingBuyDataApi.as_view(),
        name="marketplace-listing-buy-data",
    ),
    path(
        "marketplace/listings/<int:listing_id>/data/",
        api.ListingDataApi.as_view(),
        name="marketplace-listing-data",
    ),
    path(
        "marketplace/listings/<int:listing_id>/copy/",
        api.ListingCopyApi.as_view(),
        name="marketplace-listing-copy",
    ),
    path(
        "marketplace/listings/<int:listing_id>/push_update/",
        api.ListingPushUpdateApi.as_view(),
        name="marketplace-listing-push-update",
    ),
]
