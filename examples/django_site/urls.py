from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from django_site import views

urlpatterns = [
    path("", views.index),
    path("items/<int:item_id>/", views.item),
    path("form/", csrf_exempt(views.form)),
    path("json/", csrf_exempt(views.json_echo)),
    path("stream/", views.stream),
]
