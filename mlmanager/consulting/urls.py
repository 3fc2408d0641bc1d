from django.urls import path

from mlmanager.consulting import views

app_name = "consulting"

urlpatterns = [
    path("", views.request_list, name="list"),
    path("new/", views.request_create, name="create"),
    path("queue/", views.request_queue, name="queue"),
    path("<int:request_id>/", views.request_detail, name="detail"),
    path("<int:request_id>/attachment/", views.request_attachment, name="attachment"),
    path("<int:request_id>/approve/", views.request_approve, name="approve"),
    path("<int:request_id>/contract/", views.request_contract, name="contract"),
    path("<int:request_id>/accept/", views.request_accept, name="accept"),
    path("<int:request_id>/finish/", views.request_finish, name="finish"),
    path("<int:request_id>/cancel/", views.request_cancel, name="cancel"),
]
