"""NotificationAPI-compatible routes, under /{clientId}/ as the official SDKs build them.
User ids may contain '/' (the Python SDK does not encode it), hence <path:user_id>; the
routes with a suffix come before identify's bare /users/{userId}."""

from django.urls import path

from notifications import api

urlpatterns = [
    path("<str:client_id>/sender", api.SenderView.as_view(), name="sender"),
    path("<str:client_id>/sender/retract", api.RetractView.as_view(), name="sender-retract"),
    path("<str:client_id>/schedule/<str:tracking_id>", api.ScheduleView.as_view(), name="schedule"),
    path(
        "<str:client_id>/notifications/<str:notification_id>/subNotifications/"
        "<str:sub_notification_id>",
        api.SubNotificationView.as_view(),
        name="sub-notification",
    ),
    path(
        "<str:client_id>/user_preferences/<path:user_id>",
        api.UserPreferencesView.as_view(),
        name="user-preferences",
    ),
    path(
        "<str:client_id>/users/<path:user_id>/preferences",
        api.UserPreferencesDeleteView.as_view(),
        name="user-preferences-delete",
    ),
    path(
        "<str:client_id>/users/<path:user_id>/notifications/INAPP_WEB",
        api.InAppFeedView.as_view(),
        name="in-app-feed",
    ),
    path("<str:client_id>/users/<path:user_id>", api.IdentifyView.as_view(), name="identify"),
]

api_v1_urlpatterns = [
    path("api/v1/notifications", api.NotificationCreateView.as_view(), name="api-notifications"),
]
